"""Browsers in the lab: Chromium started inside a lab namespace (through deploy/lab/exec),
trusting the lab CA through an NSS database (no certificate error is ignored); a kiosk page
calling a console page; frames decoded, measured from getStats."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, Playwright, expect

from tests.deploy.lab import LAB, Lab

PASSWORD = "lab interpreter password"
CHROMIUM_ARGS = [  # as tests/browser, minus loopback: the lab has real (198.18/15) addresses
    "--no-sandbox", "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream=fps=30", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
    "--mute-audio", "--disable-gpu",
]

INBOUND_VIDEO = """async () => {
  const leg = window.tsunagu && window.tsunagu.leg;
  if (!leg || !leg.pc) return {frames: 0, t: performance.now()};
  const report = await leg.pc.getStats();
  let frames = 0;
  report.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
  });
  return {frames, t: performance.now()};
}"""

OUTBOUND_VIDEO = """async () => {
  const report = await window.tsunagu.leg.pc.getStats();
  let out = null;
  report.forEach((s) => {
    if (s.type === "outbound-rtp" && s.kind === "video") {
      out = {fps: s.framesPerSecond, sent: s.framesSent, limit: s.qualityLimitationReason,
             width: s.frameWidth, bytes: s.bytesSent};
    }
  });
  return out;
}"""

SELECTED_PAIR = """async () => {
  const report = await window.tsunagu.leg.pc.getStats();
  const byId = new Map();
  report.forEach((s) => byId.set(s.id, s));
  for (const s of byId.values()) {
    if (s.type !== "transport" || !s.selectedCandidatePairId) continue;
    const pair = byId.get(s.selectedCandidatePairId);
    const local = byId.get(pair.localCandidateId), remote = byId.get(pair.remoteCandidateId);
    return {localType: local.candidateType, relayProtocol: local.relayProtocol || null,
            localAddress: local.address, remoteAddress: remote.address,
            remoteType: remote.candidateType};
  }
  return null;
}"""


def _nss_home(tmp: Path, ca_file: str) -> Path:
    """A HOME whose NSS database trusts the lab CA (how Chromium on Linux trusts a CA)."""
    nssdb = tmp / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-N", "--empty-password"], check=True)
    subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-A", "-t", "C,,", "-n", "tsunagu-lab",
                    "-i", ca_file], check=True)
    return tmp


def _browser(pw: Playwright, ns: str, home: Path, tmp: Path) -> Browser:
    """Chromium started inside lab namespace ``ns`` (through deploy/lab/exec)."""
    wrapper = tmp / f"chromium-{ns}"
    wrapper.write_text(f'#!/bin/sh\nexec {LAB / "exec"} {ns} /usr/bin/chromium "$@"\n')
    wrapper.chmod(0o755)
    return pw.chromium.launch(executable_path=str(wrapper), headless=True, args=CHROMIUM_ARGS,
                              env={"HOME": str(home), "PATH": "/usr/bin:/bin"})


def launch_browsers(pw: Playwright, lab: Lab, tmp: Path) -> dict[str, Browser]:
    """One Chromium in each of ward, home and strict, all trusting the lab CA; interpreters
    alice (jsl) and carol (en) exist."""
    for user, langs in (("alice", "jsl"), ("carol", "en")):
        lab.run("dc1", "tsunagu", "admin", "add-user", user, "--role", "interpreter",
                "--name", user.title(), "--languages", langs, "--password-stdin",
                input=PASSWORD + "\n")
    home = _nss_home(tmp / "home", lab.info["ca_file"])
    return {ns: _browser(pw, ns, home, tmp) for ns in ("ward", "home", "strict")}


def open_page(browser: Browser, url: str) -> Page:
    ctx = browser.new_context(viewport={"width": 1180, "height": 800}, locale="ja-JP",
                              timezone_id="Asia/Tokyo")
    page = ctx.new_page()
    page.goto(url)
    return page


def open_console(browser: Browser, base: str, user: str) -> Page:
    page = open_page(browser, base + "/console")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("html")).to_have_attribute("data-state", re.compile(r"^\S+$"))
    if page.locator("html").get_attribute("data-state") != "available":
        page.click("[data-action=available]")
    page.wait_for_selector("html[data-state=available]")
    return page


def wait_js(page: Page, script: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(script)
        if value:
            return value
        assert time.monotonic() < deadline, f"still false after {timeout} s: {script[:60]}"
        time.sleep(0.2)


def decoded_fps(pages: list[Page], seconds: float = 4.0) -> list[float]:
    """Frames decoded per second by each page over the same ``seconds``."""
    for page in pages:
        wait_js(page, f"async () => ({INBOUND_VIDEO})().then((r) => r.frames > 10)")
    first = [page.evaluate(INBOUND_VIDEO) for page in pages]
    time.sleep(seconds)
    second = [page.evaluate(INBOUND_VIDEO) for page in pages]
    return [(b["frames"] - a["frames"]) / ((b["t"] - a["t"]) / 1000)
            for a, b in zip(first, second, strict=True)]


def steady_fps(pages: list[Page], windows: int = 8, seconds: float = 3.0
                ) -> tuple[list[float], list[list[float]]]:
    """Decoded fps of each page in consecutive ``seconds`` windows until one window has all
    pages at >= 20 fps (at most ``windows``). The machine's cores are shared, and a sender's
    rate ramps up (more slowly over TCP): this waits for steady state, and returns the first
    passing window (or the best) and every window measured."""
    seen: list[list[float]] = []
    for _ in range(windows):
        seen.append([round(f, 1) for f in decoded_fps(pages, seconds)])
        if min(seen[-1]) >= 20:
            return seen[-1], seen
    return max(seen, key=min), seen


def call(lab: Lab, browsers: dict[str, Browser], interp_ns: str, user: str,
          language: str) -> tuple[Page, Page, float]:
    """ward's kiosk calls ``language``; ``user`` answers in ``interp_ns``. Returns the pages
    and the set-up time (tap to the first frame decoded on both ends)."""
    base = lab.info["base_url"]
    token = lab.run("dc1", "tsunagu", "admin", "add-kiosk", f"k-{interp_ns}", "--ward", "北区",
                    "--counter", "1").stdout.strip()
    console = open_console(browsers[interp_ns], base, user)
    kiosk = open_page(browsers["ward"], f"{base}/kiosk#token={token}")
    kiosk.wait_for_selector(f"[data-language={language}]:not([disabled])")
    tapped = time.monotonic()
    kiosk.click(f"[data-language={language}]")
    console.wait_for_selector("html[data-state=ringing]")
    console.click("[data-action=accept]")
    for page in (kiosk, console):
        page.wait_for_selector("html[data-state=in-call]")
    for page in (kiosk, console):
        wait_js(page, f"async () => ({INBOUND_VIDEO})().then((r) => r.frames > 0)")
    return kiosk, console, time.monotonic() - tapped


def hang_up(kiosk: Page, console: Page) -> None:
    kiosk.click("[data-action=hangup]")
    kiosk.wait_for_selector("html[data-state=ended]")
    console.wait_for_selector("html[data-state=wrapup]")
    kiosk.context.close()
    console.context.close()
