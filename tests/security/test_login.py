"""Issue 9 item 6: login throttle per username and per address, audit lines, scrypt 2^17."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
import redis.asyncio as aioredis

from signaling.accounts import SCRYPT_N, Accounts, hash_password
from tests.conftest import TEST_SECRET
from tests.support.stack import Stack, running
from tsunagu.redis_keys import Keys
from tsunagu.redis_server import RedisServer
from tsunagu.settings import SignalingSettings

PASSWORD = "the-right-password"


@pytest.fixture
async def stack(redis_server: RedisServer, redis: aioredis.Redis) -> AsyncIterator[Stack]:
    settings = SignalingSettings(secret=TEST_SECRET, redis_url=redis_server.url)
    async with running(settings) as st:
        yield st


async def attempt(stack: Stack, username: str, password: str,
                  headers: dict[str, str] | None = None) -> tuple[int, str | None]:
    async with aiohttp.ClientSession() as http, http.post(
            stack.nodes[0].base_url + "/api/login", headers=headers or {},
            json={"username": username, "password": password}) as r:
        return r.status, r.headers.get("Retry-After")


async def test_five_failures_lock_a_username_even_for_the_right_password(
        stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    await stack.add_interpreter("alice", ["jsl"], password=PASSWORD)
    caplog.set_level(logging.INFO)
    for n in range(5):
        assert (await attempt(stack, "alice", f"wrong-{n}-secret"))[0] == 401
    status, retry = await attempt(stack, "alice", PASSWORD)
    assert status == 429 and retry is not None
    status, later = await attempt(stack, "alice", PASSWORD)
    assert status == 429 and later is not None and int(later) >= 2 * int(retry) - 1
    lines = [r.getMessage() for r in caplog.records if "login failed" in r.getMessage()]
    assert len(lines) == 7
    assert all("alice" in line and "127.0.0.1" in line for line in lines)
    text = caplog.text
    assert "wrong-0-secret" not in text and PASSWORD not in text
    assert (await attempt(stack, "bob", "anything-else"))[0] == 401  # another user is free


async def test_twenty_failures_lock_an_address(stack: Stack) -> None:
    await stack.add_interpreter("carol", ["jsl"], password=PASSWORD)
    for n in range(20):
        assert (await attempt(stack, f"user{n}", "wrong-password"))[0] == 401
    status, retry = await attempt(stack, "carol", PASSWORD)
    assert status == 429 and retry is not None


async def test_forwarded_address_counts_only_behind_a_trusted_proxy(
        stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    from signaling.node import NODE

    # Untrusted peer: X-Forwarded-For is ignored, every attempt counts for 127.0.0.1.
    for n in range(20):
        await attempt(stack, f"u{n}", "wrong-password", {"X-Forwarded-For": f"198.18.0.{n}"})
    assert (await attempt(stack, "x", "y-wrong-pass", {"X-Forwarded-For": "198.18.1.1"}))[0] \
        == 429
    runner = stack.nodes[0].runner
    assert runner is not None
    runner.app[NODE].proxies = frozenset({"127.0.0.1"})
    assert (await attempt(stack, "x2", "y-wrong-pass", {"X-Forwarded-For": "198.18.1.1"}))[0] \
        == 401


async def test_older_hashes_are_raised_at_the_next_good_login(stack: Stack,
                                                               redis: aioredis.Redis) -> None:
    await stack.add_interpreter("dave", ["jsl"], password=PASSWORD)
    key = Keys().user("dave")
    await redis.hset(key, "password", hash_password(PASSWORD, n=2**10))
    assert (await attempt(stack, "dave", PASSWORD))[0] == 200
    stored = await redis.hget(key, "password")
    assert stored.split("$")[1] == str(stack.settings.scrypt_n)
    assert (await attempt(stack, "dave", PASSWORD))[0] == 200


def test_the_default_work_factor_is_2_17(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TSUNAGU_SCRYPT_N", raising=False)
    assert SCRYPT_N == 2**17
    assert SignalingSettings(secret=TEST_SECRET).scrypt_n == 2**17
    assert Accounts  # the accounts use settings.scrypt_n for new hashes
