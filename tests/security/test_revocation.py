"""Issue 9 item 3: revocation ends what is open, on every node, within 2 s."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiohttp
import jwt
import pytest
import redis.asyncio as aioredis

from signaling.accounts import Accounts
from tests.conftest import TEST_SECRET
from tests.support.stack import Stack, running
from tsunagu import tokens
from tsunagu.client import SignalingClient, login
from tsunagu.redis_server import RedisServer
from tsunagu.settings import SignalingSettings
from tsunagu.store import connect

PASSWORD = "pw-" * 3


@pytest.fixture
async def stack(redis_server: RedisServer, redis: aioredis.Redis) -> AsyncIterator[Stack]:
    settings = SignalingSettings(secret=TEST_SECRET, redis_url=redis_server.url)
    async with running(settings, inprocess=1, processes=1) as st:
        yield st


@pytest.fixture
async def accounts(stack: Stack) -> AsyncIterator[Accounts]:
    """What ``tsunagu admin`` uses: its own Redis connection, no node of its own."""
    redis = connect(stack.settings.redis_url)
    yield Accounts(redis, stack.settings)
    await redis.aclose()


async def closed_within(client: SignalingClient, seconds: float) -> None:
    """The server said ``error unauthorized`` and closed with 4401 within ``seconds``."""
    error = await client.next("error", timeout=seconds)
    assert error["code"] == "unauthorized"
    closed = await client.next("_closed", timeout=2)
    assert closed["code"] == 4401


async def refused(stack: Stack, token: str) -> bool:
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(stack.nodes[0].ws_url)
        await ws.send_json({"type": "hello", "token": token})
        reply = await ws.receive(timeout=5)
        await ws.close()
        return '"unauthorized"' in reply.data


async def test_revoked_and_rotated_kiosks_are_closed_on_every_node(
        stack: Stack, accounts: Accounts) -> None:
    first = await stack.add_kiosk("k1")
    on_process = await stack.client(first, node=1, reconnect=False)
    started = time.monotonic()
    rotated = await accounts.add_kiosk("k1", ward="北区", counter="1", rotate=True)
    await closed_within(on_process, 2.0)
    assert time.monotonic() - started < 2.0
    assert await refused(stack, first)
    fresh = await stack.client(rotated, node=0, reconnect=False)  # the new token works
    await accounts.revoke_kiosk("k1")
    await closed_within(fresh, 2.0)
    assert await refused(stack, rotated)


async def test_password_set_and_disable_close_staff_sockets(stack: Stack,
                                                            accounts: Accounts) -> None:
    token = await stack.add_interpreter("alice", ["jsl"], password=PASSWORD)
    sup_token = await stack.add_staff("sue", "supervisor", password=PASSWORD)
    alice = await stack.client(token, node=1, reconnect=False)
    sue = await stack.client(sup_token, node=0, reconnect=False)
    await sue.request("stats.subscribe")
    await accounts.set_password("alice", "another-password")
    await closed_within(alice, 2.0)
    assert await refused(stack, token)
    newer = await login(stack.nodes[0].base_url, "alice", "another-password")
    await accounts.disable_user("sue")
    await closed_within(sue, 2.0)
    async with aiohttp.ClientSession() as http, http.post(
            stack.nodes[0].base_url + "/api/login",
            json={"username": "sue", "password": PASSWORD}) as r:
        assert r.status == 403
    await accounts.enable_user("sue")
    assert await refused(stack, sup_token)  # issued before the disable: refused for good
    assert not await refused(stack, newer)
    sue_again = await login(stack.nodes[0].base_url, "sue", PASSWORD)
    assert not await refused(stack, sue_again)


async def test_a_socket_closes_when_its_token_expires(stack: Stack) -> None:
    long_token = await stack.add_kiosk("k1")
    gen = jwt.decode(long_token, options={"verify_signature": False})["gen"]
    short = tokens.mint(TEST_SECRET, sub="k1", role="kiosk", ttl_s=2, gen=gen)
    exp = jwt.decode(short, options={"verify_signature": False})["exp"]
    client = await stack.client(short, node=1, reconnect=False)
    await closed_within(client, exp - time.time() + 2.0)
    assert time.time() < exp + 2.0


def test_lifetimes_are_capped_by_role() -> None:
    now = int(time.time())
    base = {"sub": "u", "aud": "tsunagu", "iss": "tsunagu", "iat": now, "jti": "j", "gen": 1}
    too_long = {"interpreter": 12 * 3600 + 1, "supervisor": 12 * 3600 + 1,
                "admin": 12 * 3600 + 1, "kiosk": 400 * 86400 + 1}
    for role, life in too_long.items():
        token = jwt.encode({**base, "role": role, "exp": now + life}, TEST_SECRET)
        with pytest.raises(tokens.TokenError):
            tokens.verify(TEST_SECRET, token)
        ok = jwt.encode({**base, "role": role, "exp": now + life - 1}, TEST_SECRET)
        assert tokens.verify(TEST_SECRET, ok).role == role
    no_jti = jwt.encode({**base, "role": "kiosk", "exp": now + 60, "jti": None}, TEST_SECRET)
    with pytest.raises(tokens.TokenError):
        tokens.verify(TEST_SECRET, no_jti)
    minted = jwt.decode(tokens.mint(TEST_SECRET, sub="k", role="kiosk", ttl_s=10**9),
                        options={"verify_signature": False})
    assert minted["exp"] - minted["iat"] == 400 * 86400 and minted["jti"]
    with pytest.raises(ValueError):
        SignalingSettings(secret=TEST_SECRET, staff_token_ttl_s=12 * 3600 + 1)
