"""Debian's firefox-esr for the browser tests, driven by puppeteer-core over WebDriver BiDi.

``tests/browser/firefox/driver.mjs`` (installed by ``scripts/bootstrap test``: npm
``puppeteer-core`` with ``PUPPETEER_SKIP_DOWNLOAD=1``) reads one JSON command per line
and answers one JSON line; this class is its Python end. Pages are named; each has its
own browser context (own storage).

Firefox never offers a 127.0.0.1 ICE candidate, so a test that makes a call from
Firefox also needs ``lab_link`` (a veth address in 198.18.0.0/15 inside the test's own
network namespace).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "tests" / "browser" / "firefox" / "driver.mjs"
FIREFOX = "/usr/bin/firefox-esr"


class FirefoxError(RuntimeError):
    """The driver or the page refused a command."""


class Firefox:
    """One headless firefox-esr; every call waits for the driver's answer (with a timeout)."""

    def __init__(self, timeout: float = 60.0) -> None:
        if not Path(FIREFOX).exists():
            raise FirefoxError(f"{FIREFOX} is missing: run scripts/bootstrap test")
        if not (DRIVER.parent / "node_modules" / "puppeteer-core").exists():
            raise FirefoxError("puppeteer-core is missing: run scripts/bootstrap test")
        env = {**os.environ, "PUPPETEER_SKIP_DOWNLOAD": "1", "FIREFOX": FIREFOX}
        self.proc = subprocess.Popen(
            ["node", str(DRIVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=env, cwd=DRIVER.parent)
        self.timeout = timeout
        self._next = 0
        self._lock = threading.Lock()

    def _call(self, op: str, timeout: float | None = None, **fields: Any) -> Any:
        with self._lock:
            self._next += 1
            cmd = {"id": self._next, "op": op, **fields}
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
            line = _readline(self.proc, timeout or self.timeout)
        reply = json.loads(line)
        if not reply.get("ok"):
            raise FirefoxError(f"{op}: {reply.get('error')}")
        return reply.get("value")

    def open(self, name: str, url: str, width: int, height: int) -> None:
        """A new page (own context) at `url` with the given viewport."""
        self._call("open", page=name, url=url, width=width, height=height)

    def evaluate(self, name: str, fn: str, arg: Any = None) -> Any:
        """Run the JavaScript function source `fn(arg)` in the page; its (awaited) value."""
        return self._call("eval", page=name, fn=fn, arg=arg)

    def click(self, name: str, selector: str) -> None:
        self._call("click", page=name, selector=selector)

    def viewport(self, name: str, width: int, height: int) -> None:
        self._call("viewport", page=name, width=width, height=height)

    def screenshot(self, name: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._call("screenshot", page=name, path=str(path))

    def errors(self) -> list[str]:
        """Uncaught page errors since the last call."""
        return list(self._call("errors"))

    def close_page(self, name: str) -> None:
        self._call("close_page", page=name)

    def wait(self, name: str, fn: str, timeout: float = 20.0, arg: Any = None) -> Any:
        """Poll `fn` in the page until it returns something truthy."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(name, fn, arg)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"firefox {name}: still false after {timeout} s: {fn[:100]}")
            time.sleep(0.2)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._call("close", timeout=20)
        with contextlib.suppress(Exception):
            self.proc.wait(10)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def _readline(proc: subprocess.Popen[str], timeout: float) -> str:
    """One line from the driver, or an error with its standard error if none comes in time."""
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(proc.stdout.readline()  # type: ignore[union-attr]
                                                            ), daemon=True)
    reader.start()
    reader.join(timeout)
    if not result or not result[0]:
        err = ""
        if proc.poll() is not None and proc.stderr is not None:
            err = proc.stderr.read()[-2000:]
        raise FirefoxError(f"firefox driver gave no answer in {timeout} s {err}")
    return result[0]
