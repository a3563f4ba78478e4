"""Browsers in the lab: Chromium started inside a lab namespace (through deploy/lab/exec),
trusting the lab CA through an NSS database (no certificate error is ignored); a kiosk page
calling a console page; frames decoded, measured from getStats."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, Playwright, expect

from tests.deploy.lab import ADDR, LAB, REPO, Lab, clean_env
from tests.deploy.steady_load import LANGUAGES as LOAD_LANGUAGES

PASSWORD = "lab interpreter password"
FLOWING_FPS = 3.0  # media is back: frames decoded on both ends, at least 3 in 1 s (the
# rate itself depends on the CPU left on this shared machine: 8-30 fps measured)
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
    state = page.locator("html").get_attribute("data-state")
    if state == "wrapup":  # the previous call's wrap-up: ready now
        page.click("[data-action=ready]")
    elif state != "available":
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
          language: str, kiosk_id: str | None = None) -> tuple[Page, Page, float]:
    """ward's kiosk calls ``language``; ``user`` answers in ``interp_ns``. Returns the pages
    and the set-up time (tap to the first frame decoded on both ends)."""
    base = lab.info["base_url"]
    token = lab.run("dc1", "tsunagu", "admin", "add-kiosk", kiosk_id or f"k-{interp_ns}",
                    "--ward", "北区", "--counter", "1").stdout.strip()
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


class Media:
    """Frames decoded on each page, sampled; whether media flows (>= FLOWING_FPS on every
    page over the last second)."""

    def __init__(self, pages: list[Page]) -> None:
        self.pages = pages
        self.history: list[list[tuple[float, int]]] = [[] for _ in pages]

    def flowing(self) -> tuple[bool, list[float], list[str]]:
        """Sample every page once: (flowing, fps per page over the last second, pc states)."""
        now = time.monotonic()
        ok, rates, states = True, [], []
        for h, page in zip(self.history, self.pages, strict=True):
            r = page.evaluate(STATS)
            if h and r["frames"] < h[-1][1]:
                h.clear()  # a new peer connection: its counters start again
            h.append((now, r["frames"]))
            del h[:-40]
            old = [s for s in h if now - s[0] >= 1.0]
            rate = (r["frames"] - old[-1][1]) / (now - old[-1][0]) if old else 0.0
            ok &= rate >= FLOWING_FPS
            rates.append(round(rate, 1))
            states.append(r["state"])
        return ok, rates, states

    def watch(self, since: float, at_least_s: float, at_most_s: float) -> dict[str, Any]:
        """Sample for at least ``at_least_s`` and until media flows (at most ``at_most_s``).
        ``recovered_s``: from ``since`` to the start of the flowing stretch media is in at
        the end (0 if it never stopped; None if it is not flowing); ``longest_gap_s``."""
        flow_since: float | None = since
        gap_start: float | None = None
        longest_gap = 0.0
        trace = []
        while True:
            now = time.monotonic()
            ok, rates, states = self.flowing()
            trace.append([round(now - since, 2), *rates, *states])
            if ok:
                if flow_since is None:
                    flow_since = max(since, now - 1.0)
                if gap_start is not None:
                    longest_gap = max(longest_gap, now - 1.0 - gap_start)
                    gap_start = None
                if now - since >= at_least_s:
                    break
            else:
                flow_since = None
                if gap_start is None:
                    gap_start = now
            if now - since >= at_most_s:
                if gap_start is not None:
                    longest_gap = max(longest_gap, now - gap_start)
                break
            time.sleep(0.25)
        return {"recovered_s": None if flow_since is None else round(flow_since - since, 2),
                "longest_gap_s": round(max(0.0, longest_gap), 2), "trace": trace}


STATS = """async () => {
  const leg = window.tsunagu && window.tsunagu.leg;
  if (!leg || !leg.pc) return {frames: 0, state: "none"};
  const report = await leg.pc.getStats();
  let frames = 0;
  report.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
  });
  return {frames, state: leg.pc.connectionState};
}"""


def _still_the_same_call(kiosk: Page, console: Page) -> None:
    for page in (kiosk, console):
        expect(page.locator("html")).to_have_attribute("data-state", "in-call",
                                                       timeout=30_000)


def _relay_of(console: Page) -> str:
    pair = wait_js(console, SELECTED_PAIR)
    return next(ns for ns in ("dc1", "dc2") if ADDR[ns] == pair["remoteAddress"])


def live_calls(lab: Lab) -> int:
    """How many calls Redis holds as live (asked of the current primary)."""
    primary = lab.primary()
    out = lab.run(primary, "redis-cli", "-h", ADDR[primary], "--user", "operator", "--pass",
                  lab.env["TSUNAGU_REDIS_OPERATOR_PASSWORD"], "--no-auth-warning", "scard",
                  "{tsunagu}:calls:live").stdout.strip()
    return int(out)


def drill(lab: Lab, browsers: dict[str, Browser], load: SteadyLoad | None = None
          ) -> dict[str, Any]:
    """A live ward-home call through four failures in turn: the Redis primary killed, the
    signaling node on dc1 killed, the relay serving the call killed, home's link cut for
    10 s, with ``load`` (a :class:`SteadyLoad`) placing calls all along. Returns the set-up
    time, and per failure ``recovered_s`` (from the failure, or for the cut from the link's
    return, to media flowing both ways again), ``longest_gap_s`` and the sampled trace;
    ``load``: what the load's clients saw, checked (:func:`check_load`); ``live_calls`` at
    the end (1: the call, never two, and no load call left live)."""
    kiosk, console, setup_s = call(lab, browsers, "home", "alice", "jsl", kiosk_id="k-drill")
    media = Media([kiosk, console])
    results: dict[str, dict[str, Any]] = {}
    failed_at: dict[str, float] = {}
    assert media.watch(time.monotonic(), 2, 30)["recovered_s"] is not None
    if load is not None:
        load.start()
        time.sleep(5)  # calls under way before the first failure

    # 1. The Redis primary dies: media does not depend on Redis; signaling follows Sentinel.
    primary = lab.primary()
    lab.run(primary, "kill", "-9", str(lab.pid_listening(primary, 6379)))
    t, failed_at["redis_primary_killed"] = time.monotonic(), time.time()
    results["redis_primary_killed"] = media.watch(t, 12, 45)
    _still_the_same_call(kiosk, console)

    # 2. The signaling node on dc1 dies: clients on it resume on dc2 through nginx.
    lab.run("dc1", "kill", "-9", str(lab.pid_listening("dc1", 8080)))
    t, failed_at["signaling_dc1_killed"] = time.monotonic(), time.time()
    results["signaling_dc1_killed"] = media.watch(t, 12, 45)
    expect(kiosk.locator("html")).to_have_attribute("data-connection", "open", timeout=30_000)
    expect(console.locator("#conn")).to_have_attribute("data-status", "open", timeout=30_000)
    _still_the_same_call(kiosk, console)

    # 3. The relay serving the call dies: both parties re-offer to the other relay.
    serving = _relay_of(console)
    lab.run(serving, "kill", "-9", str(lab.pid_listening(serving, 8081)))
    t, failed_at["serving_relay_killed"] = time.monotonic(), time.time()
    results["serving_relay_killed"] = media.watch(t, 3, 45)
    _still_the_same_call(kiosk, console)
    assert _relay_of(console) != serving

    # 4. home's link is cut for 10 s, then restored.
    lab.run("core", "ip", "link", "set", "c-homegw", "down")
    t, failed_at["home_link_cut_10s"] = time.monotonic(), time.time()
    time.sleep(10)
    lab.run("core", "ip", "link", "set", "c-homegw", "up")
    restored = time.monotonic()
    home = media.watch(restored, 3, 45)
    home["recovered_from_cut_s"] = (None if home["recovered_s"] is None
                                    else round(home["recovered_s"] + restored - t, 2))
    results["home_link_cut_10s"] = home
    _still_the_same_call(kiosk, console)

    if load is not None:
        results["load"] = load.stop(failed_at)
    results["live_calls"] = live_calls(lab)  # type: ignore[assignment]
    hang_up(kiosk, console)
    return {"setup_s": round(setup_s, 2), **results}


FAILURES = ("redis_primary_killed", "signaling_dc1_killed", "serving_relay_killed",
            "home_link_cut_10s")


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The drill's report without the traces."""
    return {k: {n: v for n, v in r.items() if n != "trace"} if isinstance(r, dict) else r
            for k, r in report.items()}


class SteadyLoad:
    """tests/deploy/steady_load.py during the drill: ``kiosks`` kiosks in ward calling
    (vi, zh), ``bots`` answering bots in home, through https://tsunagu.lab.test."""

    def __init__(self, lab: Lab, tmp: Path, kiosks: int = 3, bots: int = 3,
                 max_s: float = 420) -> None:
        self.lab, self.tmp, self.max_s = lab, tmp, max_s
        self.n_kiosks, self.bots = kiosks, [f"loadbot{i}" for i in range(bots)]
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.stop_file = tmp / "stop"

    def _args(self, role: str) -> list[str]:
        return [str(LAB / "exec"), "ward" if role == "kiosks" else "home", sys.executable,
                "-m", "tests.deploy.steady_load", role, "--base", self.lab.info["base_url"],
                "--ca-file", self.lab.info["ca_file"], "--out", str(self.tmp / f"{role}.json"),
                "--stop-file", str(self.stop_file), "--max-s", str(self.max_s)]

    def start(self) -> None:
        """Accounts (bots, a supervisor for the statistics), kiosk tokens; both processes."""
        secret = self.tmp / "password"
        secret.write_text(PASSWORD + "\n")
        secret.chmod(0o600)
        for bot in self.bots:
            self.lab.run("dc1", "tsunagu", "admin", "add-user", bot, "--role", "interpreter",
                         "--languages", ",".join(LOAD_LANGUAGES), "--password-stdin",
                         input=PASSWORD + "\n")
        self.lab.run("dc1", "tsunagu", "admin", "add-user", "loadsup", "--role", "supervisor",
                     "--password-stdin", input=PASSWORD + "\n")
        tokens = [self.lab.run("dc1", "tsunagu", "admin", "add-kiosk", f"load{i}", "--ward",
                               "北区", "--counter", str(10 + i)).stdout.strip()
                  for i in range(self.n_kiosks)]
        (self.tmp / "tokens").write_text("\n".join(tokens) + "\n")
        (self.tmp / "tokens").chmod(0o600)
        env = {**clean_env(), "PYTHONPATH": str(REPO)}
        self.procs["bots"] = subprocess.Popen(
            [*self._args("bots"), "--bots", ",".join(self.bots), "--password-file",
             str(secret)], cwd=REPO, env=env, stderr=(self.tmp / "bots.log").open("wb"))
        time.sleep(3)  # the bots sign in and say they are available before the first call
        self.procs["kiosks"] = subprocess.Popen(
            [*self._args("kiosks"), "--tokens", str(self.tmp / "tokens"),
             "--password-file", str(secret)], cwd=REPO, env=env,
            stderr=(self.tmp / "kiosks.log").open("wb"))

    def stop(self, failed_at: dict[str, float] | None = None) -> dict[str, Any]:
        """Stop placing calls, let the calls in flight end, and check what both sides saw."""
        self.stop_file.touch()
        for role, proc in self.procs.items():
            try:
                code = proc.wait(timeout=180)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
            log = (self.tmp / f"{role}.log").read_text()[-2000:]
            assert code == 0, f"steady load ({role}) exited {code}: {log}"
        kiosks = json.loads((self.tmp / "kiosks.json").read_text())
        bots = json.loads((self.tmp / "bots.json").read_text())
        return check_load(kiosks, bots, failed_at or {})


def check_load(kiosks: dict[str, Any], bots: dict[str, Any], failed_at: dict[str, float]
               ) -> dict[str, Any]:
    """What both sides of the steady load saw, checked: calls placed, answered, ended (each with
    a reason), double-assigned (a call connected to two bots, or a bot in two calls at once),
    lost (no end seen), and whether today's statistics for the load's languages match the
    kiosks' own count of calls that left the queue; per failure (``failed_at``, wall clock),
    the calls in flight when it happened and those placed in the 20 s after it."""
    calls = kiosks["calls"]
    taken: dict[str, list[str]] = {}
    for bot, ids in bots["connected"].items():
        for cid in ids:
            taken.setdefault(cid, []).append(bot)
    double = sum(1 for who in taken.values() if len(who) > 1) + bots["overlaps"]
    ended = {cid: c for cid, c in calls.items() if c["reason"] is not None}
    answered = {cid for cid, c in ended.items() if c["connected"]}
    reasons = Counter(c["reason"] for c in ended.values())
    stats = kiosks["stats_today"]["by_language"]
    counted = {k: sum(stats.get(lang, {}).get(k, 0) for lang in LOAD_LANGUAGES)
               for k in ("offered", "answered")}
    mine = {"offered": len(ended), "answered": len(answered)}
    return {
        "seconds": kiosks["seconds"], "calls": len(calls), "answered": len(answered),
        "ended_by_reason": dict(reasons), "refused": kiosks["refused"],
        "unconfirmed_requests": kiosks["unconfirmed"], "stray_calls": kiosks["stray_calls"],
        "lost": len(calls) - len(ended),
        "double_assigned": double,
        "answered_unknown_to_a_bot": sorted(answered - set(taken)),
        "taken_unknown_to_a_kiosk": sorted(set(taken) - set(calls)),
        "stats": counted, "counted_by_clients": mine, "stats_add_up": counted == mine,
        "reconnects": {"kiosks": kiosks["reconnects"], "bots": bots["reconnects"]},
        "during": {name: {
            "in_flight": sum(1 for c in calls.values() if c["placed_at"] <= at
                             and (c["ended_at"] is None or c["ended_at"] > at)),
            "placed_within_20s": sum(1 for c in calls.values()
                                     if at < c["placed_at"] <= at + 20)}
            for name, at in failed_at.items()},
    }
