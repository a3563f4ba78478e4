"""A real tsunagu service for end-to-end tests: one signaling node and one relay, as subprocesses.

Launched through the operator CLI (``tsunagu signaling``, ``tsunagu relay``,
``tsunagu admin ...``) against the session's real Redis, with logs kept in
a temporary directory for the failure message.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from signaling.redis_server import free_port

CLI = str(Path(sys.executable).with_name("tsunagu"))


@dataclass
class Service:
    """Running signaling + relay processes."""

    redis_url: str
    workdir: Path
    url: str = ""
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def _spawn(self, name: str, *args: str) -> None:
        log = (self.workdir / f"{name}.log").open("wb")
        self.procs.append(subprocess.Popen([CLI, *args], stdout=log, stderr=subprocess.STDOUT,
                                           env=os.environ.copy()))

    def start(self) -> None:
        """Start a signaling node and a relay; wait until the node answers /readyz."""
        sig_port, relay_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{sig_port}"
        self._spawn("signaling", "signaling", "--host", "127.0.0.1", "--port", str(sig_port),
                    "--redis-url", self.redis_url)
        self._spawn("relay", "relay", "--host", "127.0.0.1", "--port", str(relay_port),
                    "--redis-url", self.redis_url)
        self._wait_ready(f"{self.url}/readyz", timeout=20.0)
        self._wait_port(relay_port, timeout=20.0)

    def _check_alive(self) -> None:
        for proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args} exited {proc.returncode}:\n{self.logs()}")

    def _wait_ready(self, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                with urllib.request.urlopen(url, timeout=1.0) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"{url} not ready:\n{self.logs()}")

    def _wait_port(self, port: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
                return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"relay port {port} not open:\n{self.logs()}")

    def admin(self, *args: str, stdin: str | None = None) -> str:
        """Run ``tsunagu admin ...`` and return its standard output."""
        done = subprocess.run([CLI, "admin", *args, "--redis-url", self.redis_url],
                              input=stdin, capture_output=True, text=True, timeout=30,
                              env=os.environ.copy())
        if done.returncode != 0:
            raise RuntimeError(f"tsunagu admin {args[0]} failed: {done.stderr}")
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
        parts = []
        for path in sorted(self.workdir.glob("*.log")):
            parts.append(f"--- {path.name}\n" + path.read_text(errors="replace")[-3000:])
        return "\n".join(parts)

    def stop(self) -> None:
        """Stop every process."""
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
