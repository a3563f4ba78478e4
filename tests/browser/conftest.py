"""Browser tests: the real signaling server (and relay) as subprocesses, Debian's Chromium.

Run inside a loopback-only network namespace:

    unshare -n sh -c 'ip link set lo up && .venv/bin/python -m pytest tests/browser'

Each test module gets its own server processes (timers from the module's
``STACK_ENV``) against the session's redis-server, flushed first, and one
browser; tests open several pages (one context each) in it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.support.firefox import Firefox
from tests.support.service import Service
from tsunagu.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("TSUNAGU_TEST_ARTIFACTS", ROOT / "test-artifacts"))
SCREENSHOTS = ARTIFACTS / "screenshots"
SECRET = "browser-test-secret-0123456789abcdef0123"
PASSWORD = "correct horse battery staple"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--use-fake-ui-for-media-stream",
    # The fake camera runs at 20 fps unless told otherwise; the product aims
    # at 30 (sign language), and ">= 20 fps decoded" must not sit on the edge.
    "--use-fake-device-for-media-stream=fps=30",
    "--allow-loopback-in-peer-connection",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--mute-audio",
    "--disable-gpu",
]

# Short timers so a whole module runs in seconds; modules override via STACK_ENV.
DEFAULT_ENV = {
    "TSUNAGU_OFFER_TIMEOUT_S": "15",
    "TSUNAGU_WRAPUP_S": "3",
    "TSUNAGU_KIOSK_GRACE_S": "30",
    "TSUNAGU_CALL_GRACE_S": "20",
    "TSUNAGU_HEARTBEAT_S": "3",
    "TSUNAGU_STATS_INTERVAL_S": "1",
    # a page test taps one language after another on one kiosk: above the field's 6 a minute
    "TSUNAGU_CALLS_PER_MINUTE": "120",
}

SIOCGIFFLAGS = 0x8913
IFF_UP = 0x1


def _interface_is_up(name: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH14s", name.encode()[:15], 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req))[1]
    return bool(flags & IFF_UP)


@pytest.fixture(scope="session", autouse=True)
def _loopback_only() -> None:
    """Refuse to run with a real network: media must never leave loopback here."""
    # if_nameindex and SIOCGIFFLAGS see the caller's network namespace
    # (/sys/class/net would show the namespace sysfs was mounted in).
    up = [name for _, name in socket.if_nameindex() if name != "lo" and _interface_is_up(name)]
    if up:
        pytest.fail(
            f"non-loopback interfaces are up ({', '.join(up)}); run the browser tests with "
            "unshare -n sh -c 'ip link set lo up && .venv/bin/python -m pytest tests/browser'",
            pytrace=False,
        )
    if not _interface_is_up("lo"):
        pytest.fail("loopback is down: run `ip link set lo up` first", pytrace=False)


@dataclass
class Stack(Service):
    """The server side of one test module: the service's processes, and its kiosks' tokens."""

    relay_error: str | None = None
    kiosks: dict[str, str] = field(default_factory=dict, repr=False)  # device tokens

    def start_relay(self) -> None:
        """Start the relay; a relay that cannot start is reported by the tests that need it."""
        try:
            super().start_relay()
        except (RuntimeError, TimeoutError, OSError) as exc:
            self.relay_error = f"{str(exc)[:300]}; see {self.logdir / 'relay.log'}"
            _stop(self.relay)
            self.relay = None


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait(5)


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest, redis_server: RedisServer) -> Iterator[Stack]:
    """Signaling + relay for this module, with interpreters alice (jsl, en) and bob (en),
    supervisor sup, and kiosks k1 (北区 3) and k2 (南区 5)."""
    client = sync_redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    env = {
        **os.environ,
        "TSUNAGU_SECRET": SECRET,
        "TSUNAGU_ICE_ADDRESSES": "127.0.0.1",
        "TSUNAGU_ICE_SERVERS": "[]",
        "PYTHONUNBUFFERED": "1",
        **DEFAULT_ENV,
        **getattr(request.module, "STACK_ENV", {}),
    }
    env.pop("REDIS_URL", None)
    logdir = ARTIFACTS / "logs" / request.module.__name__.rsplit(".", 1)[-1]
    logdir.mkdir(parents=True, exist_ok=True)
    for old in logdir.glob("*.log"):
        old.unlink()
    st = Stack(redis_url=redis_server.url, logdir=logdir, env=env, cwd=ROOT)
    for user, role, name, langs in (
        ("alice", "interpreter", "Alice", "jsl,en"),
        ("bob", "interpreter", "Bob", "en"),
        ("sup", "supervisor", "Sue", None),
    ):
        args = ["add-user", user, "--role", role, "--name", name, "--password-stdin"]
        if langs:
            args += ["--languages", langs]
        st.admin(*args, stdin=PASSWORD + "\n")
    for kiosk, ward, counter in (("k1", "北区", "3"), ("k2", "南区", "5")):
        st.kiosks[kiosk] = st.add_kiosk(kiosk, ward=ward, counter=counter)
    try:
        st.start_signaling()
        if getattr(request.module, "NEEDS_RELAY", False):
            st.start_relay()
        yield st
    finally:
        st.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per test module."""
    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        yield b
        b.close()


@dataclass
class Pages:
    """Opens pages, each in its own context (own storage), and closes them after the test."""

    browser: Browser
    stack: Stack
    contexts: list[BrowserContext] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def new(
        self,
        path: str,
        *,
        width: int = 1280,
        height: int = 800,
        init_script: str | None = None,
        **context_args: Any,
    ) -> Page:
        ctx = self.browser.new_context(
            viewport={"width": width, "height": height},
            locale="ja-JP",
            timezone_id="Asia/Tokyo",
            accept_downloads=True,
            **context_args,
        )
        self.contexts.append(ctx)
        page = ctx.new_page()
        page.on("pageerror", lambda exc: self.errors.append(f"{path}: {exc}"))
        if init_script:
            page.add_init_script(init_script)
        page.goto(self.stack.url + path)
        return page

    def kiosk(
        self, kiosk: str = "k1", *, portrait: bool = True, init_script: str | None = None
    ) -> Page:
        """A counter tablet, signed in with its device token through /kiosk#token=…."""
        width, height = (800, 1180) if portrait else (1180, 800)
        page = self.new(
            f"/kiosk#token={self.stack.kiosks[kiosk]}",
            width=width,
            height=height,
            has_touch=True,
            init_script=init_script,
        )
        page.wait_for_selector("[data-language=jsl]:not([disabled])")
        return page

    def staff(self, path: str, username: str, password: str = PASSWORD) -> Page:
        page = self.new(path)
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        return page

    def console(self, username: str = "alice", *, ensure_away: bool = True) -> Page:
        """An interpreter signed in. A fresh session starts away; with `ensure_away`, one that
        found its user still in wrap-up from an earlier test is set away, so calls wait."""
        page = self.staff("/console", username)
        root = page.locator("html")
        expect(root).to_have_attribute("data-state", re.compile(r"^\S+$"))
        expect(page.locator("#conn")).to_have_attribute("data-status", "open")
        if ensure_away and root.get_attribute("data-state") != "away":
            page.click("[data-action=away]")
        if ensure_away:
            page.wait_for_selector("html[data-state=away]")
        return page

    def supervisor(self) -> Page:
        page = self.staff("/supervisor", "sup")
        expect(page.locator("[data-stat=answered]")).to_have_attribute(
            "data-value", re.compile(r"^\d+$"), timeout=10_000
        )
        return page

    def available(self, console: Page) -> None:
        """The interpreter presses 受付可 and the console says so."""
        console.click("[data-action=available]")
        console.wait_for_selector("html[data-state=available]")

    def connect(self, kiosk: Page, console: Page, language: str = "jsl") -> None:
        """The resident taps a language, the interpreter (already available) accepts."""
        kiosk.click(f"[data-language={language}]")
        console.wait_for_selector("html[data-state=ringing]")
        console.click("[data-action=accept]")
        console.wait_for_selector("html[data-state=in-call]")
        kiosk.wait_for_selector("html[data-state=in-call]")

    @staticmethod
    def wait_js(page: Page, script: str, timeout: float = 20.0) -> object:
        """Poll `script` until truthy (evaluated by CDP, which the page CSP allows)."""
        deadline = time.monotonic() + timeout
        while True:
            value = page.evaluate(script)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"still false after {timeout} s: {script[:80]}")
            time.sleep(0.2)

    def close(self) -> None:
        for ctx in self.contexts:
            with contextlib.suppress(Exception):
                ctx.close()


@pytest.fixture
def pages(browser: Browser, stack: Stack) -> Iterator[Pages]:
    """Pages for one test; fails the test if any page threw an uncaught exception."""
    p = Pages(browser, stack)
    yield p
    p.close()
    assert not p.errors, f"uncaught errors in pages: {p.errors}"


def _screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def shot() -> Callable[[Page, str], None]:
    """shot(page, name): save what the person sees to test-artifacts/screenshots/<name>.png."""
    return _screenshot


@pytest.fixture(scope="module")
def firefox() -> Iterator[Firefox]:
    """One headless firefox-esr per test module (puppeteer-core over WebDriver BiDi)."""
    ff = Firefox()
    try:
        yield ff
    finally:
        ff.close()


LAB_LINK = "tsulab0"
LAB_ADDRESS = "198.18.0.1/32"


@pytest.fixture(scope="module")
def lab_link() -> Iterator[str]:
    """A veth pair with 198.18.0.1 and a default route through it, inside this test's own
    network namespace (the session checked that only loopback was up): Firefox offers no
    127.0.0.1 ICE candidate, and this gives it one address that leads nowhere outside."""
    peer = LAB_LINK + "p"
    commands = [
        ["ip", "link", "add", LAB_LINK, "type", "veth", "peer", "name", peer],
        ["ip", "addr", "add", LAB_ADDRESS, "dev", LAB_LINK],
        ["ip", "link", "set", LAB_LINK, "up"],
        ["ip", "link", "set", peer, "up"],
        ["ip", "route", "add", "default", "dev", LAB_LINK],
    ]
    try:
        for cmd in commands:
            subprocess.run(cmd, check=True, capture_output=True, timeout=10)
        yield LAB_ADDRESS.split("/")[0]
    finally:
        subprocess.run(["ip", "link", "del", LAB_LINK], capture_output=True, timeout=10,
                       check=False)


def screenshot_path(name: str) -> Path:
    """Where a screenshot called `name` goes (test-artifacts/screenshots/<name>.png)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{name}.png"
