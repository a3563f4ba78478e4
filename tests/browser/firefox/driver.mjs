// A small line-oriented bridge from the Python browser tests to Debian's
// firefox-esr, driven by puppeteer-core over WebDriver BiDi.
//
// Reads one JSON command per line on stdin, answers one JSON line on stdout:
//   {"id": 1, "op": "open", "page": "k", "url": "...", "width": 800, "height": 600}
//   {"id": 2, "op": "eval", "page": "k", "fn": "() => document.title"}   (async allowed)
//   {"id": 3, "op": "click", "page": "k", "selector": "[data-language=jsl]"}
//   {"id": 4, "op": "viewport", "page": "k", "width": 390, "height": 844}
//   {"id": 5, "op": "screenshot", "page": "k", "path": "/…/x.png"}
//   {"id": 6, "op": "close"}
// -> {"id": 1, "ok": true, "value": …} or {"id": 1, "ok": false, "error": "…"}
// Each page gets its own browser context (own storage). Nothing is downloaded:
// PUPPETEER_SKIP_DOWNLOAD=1 at install, executablePath points at Debian's build.

import readline from "node:readline";
import puppeteer from "puppeteer-core";

const browser = await puppeteer.launch({
  browser: "firefox",
  executablePath: process.env.FIREFOX || "/usr/bin/firefox-esr",
  headless: true,
  extraPrefsFirefox: {
    "media.navigator.streams.fake": true,
    "media.navigator.permission.disabled": true,
    // Real host candidates (198.18.0.1 in the test namespace), not mDNS names the relay cannot resolve.
    "media.peerconnection.ice.obfuscate_host_addresses": false,
    // The relay answers from 127.0.0.1 in the tests: accept loopback remote candidates.
    "media.peerconnection.ice.loopback": true,
    "media.autoplay.default": 0,
    "media.autoplay.block-webaudio": false,
    "network.captive-portal-service.enabled": false,
    "browser.safebrowsing.update.enabled": false,
    "app.update.enabled": false,
    "datareporting.policy.dataSubmissionEnabled": false,
    "extensions.getAddons.cache.enabled": false,
  },
});
const pages = new Map();
const errors = [];

async function run(cmd) {
  switch (cmd.op) {
    case "open": {
      const ctx = await browser.createBrowserContext();
      const page = await ctx.newPage();
      await page.setViewport({ width: cmd.width, height: cmd.height });
      page.on("pageerror", (err) => errors.push(`${cmd.page}: ${err.message || err}`));
      await page.goto(cmd.url);
      pages.set(cmd.page, { ctx, page });
      return null;
    }
    case "eval": {
      const { page } = pages.get(cmd.page);
      // The function arrives as source text; evaluate it in the page.
      return await page.evaluate(`(${cmd.fn})(${JSON.stringify(cmd.arg ?? null)})`);
    }
    case "click": {
      const { page } = pages.get(cmd.page);
      await page.click(cmd.selector);
      return null;
    }
    case "viewport": {
      const { page } = pages.get(cmd.page);
      await page.setViewport({ width: cmd.width, height: cmd.height });
      return null;
    }
    case "screenshot": {
      const { page } = pages.get(cmd.page);
      await page.screenshot({ path: cmd.path });
      return null;
    }
    case "errors":
      return errors.splice(0);
    case "close_page": {
      const entry = pages.get(cmd.page);
      if (entry) await entry.ctx.close();
      pages.delete(cmd.page);
      return null;
    }
    case "close":
      await browser.close();
      return null;
    default:
      throw new Error(`unknown op ${cmd.op}`);
  }
}

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  let cmd;
  try { cmd = JSON.parse(line); } catch { continue; }
  let reply;
  try {
    reply = { id: cmd.id, ok: true, value: (await run(cmd)) ?? null };
  } catch (err) {
    reply = { id: cmd.id, ok: false, error: String(err && err.message ? err.message : err) };
  }
  process.stdout.write(`${JSON.stringify(reply)}\n`);
  if (cmd.op === "close") break;
}
process.exit(0);
