"""The operator's command: `tsunagu up` on a fresh data directory, admin commands, Ctrl-C."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from signaling.media import ice_servers_for
from tests.conftest import TEST_SECRET
from tsunagu.redis_server import free_port
from tsunagu.settings import SignalingSettings

CLI = [sys.executable, "-m", "tsunagu"]


def env_without_secret() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TSUNAGU_SECRET", "REDIS_URL")}
    env["TSUNAGU_ICE_ADDRESSES"] = "127.0.0.1"
    return env


def admin(data: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "admin", *args, "--data-dir", str(data)], input=stdin,
                          capture_output=True, text=True, timeout=60, env=env_without_secret())


def wait_ready(url: str, proc: subprocess.Popen[bytes], within_s: float = 30) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, "tsunagu up exited early"
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(url)


def assert_one_line_failure(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    for word in words:
        assert word in done.stderr, done.stderr


@pytest.mark.timeout(120)
def test_up_runs_everything_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    data = tmp_path / "var"
    # admin before `up`: never starts a Redis of its own, says so in one line
    before = admin(data, "add-user", "alice", "--role", "interpreter", "--languages", "jsl",
                   "--password-stdin", stdin="a-long-password\n")
    assert_one_line_failure(before, "no Redis", "tsunagu up")
    assert not (data / "redis.sock").exists()
    port, relay_port = free_port(), free_port()
    with (tmp_path / "up.log").open("wb") as log:
        proc = subprocess.Popen([*CLI, "up", "--data-dir", str(data), "--port", str(port),
                                 "--relay-port", str(relay_port)], stdout=log, stderr=log,
                                env=env_without_secret())
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
        wait_ready(f"http://127.0.0.1:{relay_port}/healthz", proc)
        started = (tmp_path / "up.log").read_text()
        assert f"tsunagu is up at http://127.0.0.1:{port}. Next: add accounts" in started
        assert len((data / "secret").read_text().strip()) >= 32
        done = admin(data, "add-user", "alice", "--role", "interpreter", "--languages", "jsl",
                     "--password-stdin", stdin="a-long-password\n")
        assert done.returncode == 0, done.stderr
        short = admin(data, "add-user", "bob", "--role", "interpreter", "--languages", "en",
                      "--password-stdin", stdin="short\n")
        assert_one_line_failure(short, "8 characters")
        token = admin(data, "add-kiosk", "k1", "--ward", "北区", "--counter", "3")
        assert token.returncode == 0 and token.stdout.count("\n") == 1
        assert token.stdout.count(".") == 2  # one JWT on one line, nothing else
        body = b'{"username": "alice", "password": "a-long-password"}'
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/login", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as r:
            assert r.status == 200
        assert (data / "appendonlydir").is_dir()  # AOF persistence is on
        assert admin(data, "revoke-kiosk", "k1").returncode == 0
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(30)
    assert code == 0, (tmp_path / "up.log").read_text()[-3000:]
    leftovers = subprocess.run(["pgrep", "-f", str(data / "redis.sock")], capture_output=True)
    assert leftovers.stdout.strip() == b"", "redis-server left running"
    # private files: the directory 0700, every file in it 0600 (the AOF holds password hashes)
    assert data.stat().st_mode & 0o777 == 0o700
    for item in data.rglob("*"):
        if item.is_socket():
            continue
        want = 0o700 if item.is_dir() else 0o600
        assert item.stat().st_mode & 0o777 == want, item
    # and the data survives, but admin after `up` has stopped starts nothing
    assert_one_line_failure(admin(data, "list-users"), "no Redis")


def test_turn_credentials_are_minted_per_call() -> None:
    settings = SignalingSettings(secret=TEST_SECRET, turn_secret="coturn-secret", turn_ttl_s=600,
                        ice_servers=[{"urls": ["stun:stun.example.jp:3478"]},
                                     {"urls": ["turn:turn.example.jp:3478"]}])
    stun, turn = ice_servers_for(settings, "c_1")
    assert "username" not in stun
    expiry, call = turn["username"].split(":")
    assert call == "c_1" and 590 <= int(expiry) - time.time() <= 601
    expected = hmac.new(b"coturn-secret", turn["username"].encode(), hashlib.sha1).digest()
    assert base64.b64decode(turn["credential"]) == expected
    assert ice_servers_for(settings, "c_2")[1]["username"].endswith(":c_2")
    assert ice_servers_for(SignalingSettings(secret=TEST_SECRET), "c_1") == []


def test_bootstrap_installs_nothing_when_nothing_changed() -> None:
    """`scripts/up` runs bootstrap at every start: with the project installed and
    pyproject.toml unchanged it must not reinstall (and print setuptools' warnings)."""
    root = Path(__file__).resolve().parents[2]
    started = time.monotonic()
    done = subprocess.run(["bash", "scripts/bootstrap"], cwd=root, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and "editable" not in done.stderr.lower(), done.stderr
    assert time.monotonic() - started < 20
