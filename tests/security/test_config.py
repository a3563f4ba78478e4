"""Issue 9 items 4, 5 (registration), 9, 10, 11: secrets, relay registrations, CSV escaping,
/metrics access, TURN credential lifetime."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import make_mocked_request

from signaling.media import RelayPool, ice_servers_for
from signaling.report import HEADER, to_csv
from signaling.routing import Router
from tests.conftest import TEST_SECRET
from tsunagu.access import metrics_allowed
from tsunagu.redis_keys import Keys
from tsunagu.redis_server import RedisServer
from tsunagu.settings import SAMPLE_SECRETS, ConfigError, SignalingSettings, check_secret
from tsunagu.tokens import relay_registration_key

ROOT = Path(__file__).resolve().parents[2]


def sample_secret() -> str:
    """The placeholder the deployment files shipped (today's sample leaves it empty)."""
    for line in (ROOT / "deploy" / "tsunagu.env").read_text().splitlines():
        if line.startswith("TSUNAGU_SECRET="):
            assert len(line.split("=", 1)[1].strip()) < 32  # no usable secret in the sample
    return next(iter(SAMPLE_SECRETS)).decode()


@pytest.mark.parametrize("bad", [sample_secret(), "a" * 64, "abababababcdcdcdcd" * 3,
                                 "0123456789a" * 4, "short"])
def test_weak_secrets_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError):
        check_secret(bad.encode())


def test_random_secrets_pass() -> None:
    for _ in range(50):
        check_secret(secrets.token_hex(32).encode())  # openssl rand -hex 32
        check_secret(secrets.token_urlsafe(32).encode())


def test_a_node_with_the_sample_secret_exits_2_with_one_line() -> None:
    env = dict(os.environ, TSUNAGU_SECRET=sample_secret())
    done = subprocess.run([sys.executable, "-m", "tsunagu", "signaling", "--redis-url",
                           "redis://127.0.0.1:1/0"], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "sample" in done.stderr, done.stderr


def test_csv_fields_that_look_like_formulas_are_escaped() -> None:
    row = ["c1", "=HYPERLINK(\"x\")", "+1", "-2", "@SUM(A1)", "\tx", "\rx", "plain",
           "", "", "", "", ""]
    text = to_csv([row])
    body = text.split("\r\n", 1)[1]
    for bad in ("=HYPERLINK", "+1", "-2", "@SUM", "\tx", "\rx"):
        assert f"'{bad}" in body, bad
    assert ",plain," in body and text.startswith(",".join(HEADER))


def request_from(peer: str, headers: dict[str, str] | None = None) -> object:
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        (peer, 40000) if name == "peername" else default)
    return make_mocked_request("GET", "/metrics", headers=headers or {}, transport=transport)


def test_metrics_access() -> None:
    assert metrics_allowed(request_from("127.0.0.1"), None)  # type: ignore[arg-type]
    assert not metrics_allowed(request_from("198.18.0.7"), None)  # type: ignore[arg-type]
    assert not metrics_allowed(  # type: ignore[arg-type]
        request_from("198.18.0.7", {"X-Forwarded-For": "127.0.0.1"}), None)
    token = "metrics-" + secrets.token_hex(8)
    assert not metrics_allowed(request_from("127.0.0.1"), token)  # type: ignore[arg-type]
    good = {"Authorization": f"Bearer {token}"}
    assert metrics_allowed(request_from("198.18.0.7", good), token)  # type: ignore[arg-type]
    assert not metrics_allowed(  # type: ignore[arg-type]
        request_from("127.0.0.1", {"Authorization": "Bearer nope"}), token)


def test_nginx_sample_blocks_metrics() -> None:
    conf = (ROOT / "deploy" / "nginx" / "tsunagu.conf").read_text()
    assert "location = /metrics" in conf


async def test_signaling_metrics_need_the_token_when_set(
        redis_server: RedisServer, redis: aioredis.Redis,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import aiohttp

    from tests.support.stack import running

    settings = SignalingSettings(secret=TEST_SECRET, redis_url=redis_server.url,
                                 metrics_token="m-" + "x1y2z3" * 4)
    async with running(settings) as stack, aiohttp.ClientSession() as http:
        url = stack.nodes[0].base_url + "/metrics"
        async with http.get(url) as r:
            assert r.status == 401
        async with http.get(url, headers={"Authorization": "Bearer " + "m-" + "x1y2z3" * 4}
                            ) as r:
            assert r.status == 200
    plain = SignalingSettings(secret=TEST_SECRET, redis_url=redis_server.url)
    async with running(plain) as stack, aiohttp.ClientSession() as http, \
            http.get(stack.nodes[0].base_url + "/metrics") as r:
        assert r.status == 200  # loopback, no token configured


async def test_unsigned_relay_registrations_are_never_posted_to(
        redis_server: RedisServer, redis: aioredis.Redis) -> None:
    k = Keys()
    now = int(time.time() * 1000)
    settings = SignalingSettings(secret=TEST_SECRET, redis_url=redis_server.url)
    pool = RelayPool(redis, settings, Router(redis, settings))
    good = "http://127.0.0.1:9001"
    await redis.hset(k.relay("r_good"), mapping={
        "url": good, "key": relay_registration_key(TEST_SECRET, "r_good", good),
        "capacity": 4, "calls": 0, "cpu": "0"})
    await redis.hset(k.relay("r_evil"), mapping={"url": "http://127.0.0.2:9001", "key": "0",
                                                  "capacity": 4, "calls": 0, "cpu": "0"})
    await redis.hset(k.relay("r_moved"), mapping={  # a real key, but for another URL
        "url": "http://127.0.0.3:9001", "key": relay_registration_key(TEST_SECRET, "r_moved", good),
        "capacity": 4, "calls": 0, "cpu": "0"})
    await redis.zadd(k.relays, {"r_good": now, "r_evil": now, "r_moved": now})
    assert await pool.trusted_ids() == ["r_good"]
    allowed = SignalingSettings(secret=TEST_SECRET, redis_url=redis_server.url,
                                relay_urls=frozenset({"http://127.0.0.2:9001"}))
    ids = sorted(await RelayPool(redis, allowed, Router(redis, allowed)).trusted_ids())
    assert ids == ["r_evil", "r_good"]  # an allow-listed URL needs no key


def test_turn_credentials_live_as_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSUNAGU_TURN_TTL_S", "120")
    monkeypatch.setenv("TSUNAGU_ICE_SERVERS", '[{"urls": ["turn:turn.example.jp:3478"]}]')
    monkeypatch.setenv("TSUNAGU_TURN_SECRET", "coturn-secret")
    settings = SignalingSettings.from_env()
    assert settings.turn_ttl_s == 120
    (turn,) = ice_servers_for(settings, "c_1")
    assert 110 <= int(turn["username"].split(":")[0]) - time.time() <= 121


async def test_relay_metrics_need_the_token_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from relay.control import make_app
    from relay.node import RelayNode

    node = RelayNode("r_m", 2, [])
    async with TestClient(TestServer(make_app(node, TEST_SECRET))) as client:
        assert (await client.get("/metrics")).status == 200  # loopback, no token
    monkeypatch.setenv("TSUNAGU_METRICS_TOKEN", "relay-metrics-token")
    async with TestClient(TestServer(make_app(node, TEST_SECRET))) as client:
        assert (await client.get("/metrics")).status == 401
        ok = await client.get("/metrics",
                              headers={"Authorization": "Bearer relay-metrics-token"})
        assert ok.status == 200 and "tsunagu_relay_calls" in await ok.text()
