"""The whole tsunagu service as real processes, for end-to-end and browser tests.

A signaling node and a relay started through the operator CLI (``tsunagu
signaling``, ``tsunagu relay``; accounts with ``tsunagu admin``) against the
session's real Redis. Each process logs to a file in ``logdir``, whose tail goes
into failure messages. The signaling-only tests use ``tests/support/stack.py``
instead (in-process nodes with settings of their own).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tsunagu.redis_server import free_port

TSUNAGU = str(Path(sys.executable).with_name("tsunagu"))


@dataclass
class Service:
    """Signaling and relay processes sharing one Redis."""

    redis_url: str
    logdir: Path
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ), repr=False)
    cwd: Path | None = None
    port: int = field(default_factory=free_port)
    relay_port: int = field(default_factory=free_port)
    signaling: subprocess.Popen[bytes] | None = None
    relay: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The signaling node's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the signaling node and the relay; return once both answer."""
        self.start_signaling()
        self.start_relay()

    def start_signaling(self) -> None:
        self.signaling = self._spawn("signaling", "signaling", "--host", "127.0.0.1",
                                     "--port", str(self.port))
        self._wait(self.signaling, lambda: _http_ok(f"{self.url}/readyz"), f"{self.url}/readyz")

    def start_relay(self) -> None:
        self.relay = self._spawn("relay", "relay", "--host", "127.0.0.1",
                                 "--port", str(self.relay_port))
        self._wait(self.relay, lambda: _port_open(self.relay_port), f"relay port {self.relay_port}")

    def kill_signaling(self) -> None:
        """Crash the signaling node (SIGKILL): clients see their sockets drop."""
        _kill(self.signaling)

    def kill_relay(self) -> None:
        """Crash the relay (SIGKILL): media legs through it die."""
        _kill(self.relay)

    def admin(self, *args: str, stdin: str | None = None) -> str:
        """Run ``tsunagu admin ...``; return its standard output."""
        done = subprocess.run([TSUNAGU, "admin", *args, "--redis-url", self.redis_url],
                              input=stdin, capture_output=True, text=True, timeout=60,
                              env=self.env, cwd=self.cwd, check=False)
        if done.returncode != 0:  # stderr only: stdout may carry a token
            raise RuntimeError(f"tsunagu admin {args[0]} failed: {done.stderr[-800:]}")
        return done.stdout

    def add_interpreter(self, username: str, password: str, languages: str) -> None:
        """An interpreter account."""
        self.admin("add-user", username, "--role", "interpreter", "--languages", languages,
                   "--password-stdin", stdin=password + "\n")

    def add_kiosk(self, kiosk_id: str, ward: str = "Kita", counter: str = "3") -> str:
        """A kiosk; returns its device token."""
        return self.admin("add-kiosk", kiosk_id, "--ward", ward, "--counter", counter).strip()

    def logs(self) -> str:
        """The tail of every process log."""
        return "\n".join(f"--- {path.name}\n" + path.read_text(errors="replace")[-3000:]
                         for path in sorted(self.logdir.glob("*.log")))

    def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL after 10 s)."""
        for proc in (self.signaling, self.relay):
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        self.logdir.mkdir(parents=True, exist_ok=True)
        with (self.logdir / f"{name}.log").open("ab") as log:
            return subprocess.Popen([TSUNAGU, *args, "--redis-url", self.redis_url],
                                    stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                    cwd=self.cwd)

    def _wait(self, proc: subprocess.Popen[bytes], ready: Callable[[], bool], what: str,
              timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args!r} exited {proc.returncode}:\n{self.logs()}")
            if ready():
                return
            time.sleep(0.1)
        raise TimeoutError(f"{what} not ready in {timeout} s:\n{self.logs()}")


def _http_ok(url: str) -> bool:
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1.0) as resp:
        return bool(resp.status == 200)
    return False


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


def _kill(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
