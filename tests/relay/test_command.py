"""One relay entry point: `tsunagu relay` and `python -m relay` share flags and settings, and
the relay registers the control URL it is given, never a loopback one beyond loopback."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import pytest
from redis import Redis as SyncRedis

from relay.commands import parser
from tsunagu.redis_keys import Keys
from tsunagu.redis_server import RedisServer, free_port
from tsunagu.settings import ConfigError, RelaySettings

K = Keys()


def args(*argv: str) -> argparse.Namespace:
    return parser().parse_args(list(argv))


def test_both_entry_points_take_the_same_flags() -> None:
    for cmd in ([sys.executable, "-m", "tsunagu", "relay", "--help"],
                [sys.executable, "-m", "relay", "--help"]):
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
        for flag in ("--public-url", "--relay-id", "--capacity", "--redis-url", "--host"):
            assert flag in out, (cmd, flag)


def test_settings_from_flags_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSUNAGU_RELAY_CAPACITY", "7")
    monkeypatch.setenv("TSUNAGU_ICE_ADDRESSES", "127.0.0.1")
    s = RelaySettings.from_args(args("--relay-id", "r-dc1", "--port", "0"), "redis://x/0")
    assert (s.relay_id, s.capacity, s.ice_addresses) == ("r-dc1", 7, ["127.0.0.1"])
    assert s.control_url(8123) == "http://127.0.0.1:8123"
    monkeypatch.setenv("TSUNAGU_RELAY_PUBLIC_URL", "http://198.18.1.10:8081")
    monkeypatch.setenv("TSUNAGU_RELAY_HOST", "198.18.1.10")
    s = RelaySettings.from_args(args(), "redis://x/0")
    assert (s.host, s.control_url(8081)) == ("198.18.1.10", "http://198.18.1.10:8081")


@pytest.mark.parametrize("argv, why", [
    (("--host", "0.0.0.0"), "--public-url"),
    (("--host", "198.18.1.10"), "--public-url"),
    (("--host", "198.18.1.10", "--public-url", "http://127.0.0.1:8081"), "loopback"),
    (("--host", "0.0.0.0", "--public-url", "http://localhost:8081"), "loopback"),
])
def test_a_loopback_url_beyond_loopback_is_refused(argv: tuple[str, ...], why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        RelaySettings.from_args(args(*argv), "redis://x/0")


def test_the_command_says_why_and_exits_2(redis_server: RedisServer) -> None:
    done = subprocess.run([sys.executable, "-m", "tsunagu", "relay", "--host", "0.0.0.0",
                           "--redis-url", redis_server.url], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "--public-url" in done.stderr, done.stderr


def test_the_relay_registers_its_public_url_and_id(redis_server: RedisServer) -> None:
    redis = SyncRedis.from_url(redis_server.url, decode_responses=True)
    port = free_port()
    url = f"http://127.0.0.2:{port}"  # what other machines would be told (any non-default)
    proc = subprocess.Popen([sys.executable, "-m", "tsunagu", "relay", "--port", str(port),
                             "--relay-id", "r-test", "--public-url", url,
                             "--redis-url", redis_server.url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if redis.hget(K.relay("r-test"), "url") == url:
                break
            time.sleep(0.1)
        assert redis.hget(K.relay("r-test"), "url") == url
    finally:
        proc.terminate()
        proc.wait(10)
        redis.close()
