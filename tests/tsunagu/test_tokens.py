"""Token attacks: each refused by the checks, and over the wire with close code 4401."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import jwt
import pytest

from signaling.accounts import check_password, hash_password
from tests.conftest import TEST_SECRET
from tests.support.stack import Stack, running
from tsunagu import tokens
from tsunagu.redis_server import RedisServer
from tsunagu.settings import ConfigError, SignalingSettings, load_secret

NOW = int(time.time())
GOOD = {"sub": "k1", "role": "kiosk", "aud": "tsunagu", "iss": "tsunagu", "iat": NOW,
        "exp": NOW + 86400, "gen": 1, "jti": "t1"}  # good for a long suite


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def forged() -> dict[str, str]:
    return {
        "expired": jwt.encode({**GOOD, "exp": NOW - 60}, TEST_SECRET, algorithm="HS256"),
        "bad_signature": jwt.encode(GOOD, b"another-secret-another-secret-0123", algorithm="HS256"),
        "alg_none": b64({"alg": "none", "typ": "JWT"}) + "." + b64(GOOD) + ".",
        "wrong_audience": jwt.encode({**GOOD, "aud": "someone-else"}, TEST_SECRET,
                                     algorithm="HS256"),
        "missing_exp": jwt.encode({k: v for k, v in GOOD.items() if k != "exp"}, TEST_SECRET,
                                  algorithm="HS256"),
        "unknown_role": jwt.encode({**GOOD, "role": "root"}, TEST_SECRET, algorithm="HS256"),
        "hs512_instead": jwt.encode(GOOD, TEST_SECRET, algorithm="HS512"),
    }


@pytest.mark.parametrize("name", sorted(forged()))
def test_verify_refuses(name: str) -> None:
    with pytest.raises(tokens.TokenError):
        tokens.verify(TEST_SECRET, forged()[name])


def test_verify_accepts_a_good_token() -> None:
    claims = tokens.verify(TEST_SECRET, jwt.encode(GOOD, TEST_SECRET, algorithm="HS256"))
    assert (claims.sub, claims.role, claims.extra["gen"]) == ("k1", "kiosk", 1)


def test_service_token_is_not_a_client_token() -> None:
    service = tokens.mint_service_token(TEST_SECRET, relay_id="r1", call_id="c1",
                                        party="kiosk", method="POST")
    with pytest.raises(tokens.TokenError):
        tokens.verify(TEST_SECRET, service)
    client = tokens.mint(TEST_SECRET, sub="k1", role="kiosk", ttl_s=60)
    with pytest.raises(tokens.TokenError):
        tokens.verify_service_token(TEST_SECRET, client, relay_id="r1", call_id="c1",
                                    party="kiosk", method="POST")


def test_password_hashing() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("scrypt$") and "correct" not in stored
    assert check_password("correct horse", stored)
    assert not check_password("correct hors", stored)


def test_short_secret_is_refused(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSUNAGU_SECRET", "short")
    with pytest.raises(ConfigError):
        load_secret(None, create=False)


def test_generated_secret_is_kept(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    monkeypatch.delenv("TSUNAGU_SECRET")
    folder = Path(str(tmp_path))
    first = load_secret(folder, create=True)
    assert len(first) >= 32 and load_secret(folder, create=False) == first
    assert (folder / "secret").stat().st_mode & 0o077 == 0


@pytest.fixture
async def stack(redis_server: RedisServer, redis: object) -> AsyncIterator[Stack]:
    async with running(SignalingSettings(secret=TEST_SECRET, redis_url=redis_server.url)) as st:
        yield st


async def refused(stack: Stack, token: str) -> tuple[str, int | None]:
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(stack.nodes[0].ws_url)
        await ws.send_str(json.dumps({"type": "hello", "token": token}))
        reply = json.loads((await ws.receive(timeout=5)).data)
        await ws.receive(timeout=5)
        return reply["code"], ws.close_code


async def test_forged_tokens_are_refused_on_the_wire(stack: Stack) -> None:
    await stack.add_kiosk("k1")
    for name, token in forged().items():
        assert await refused(stack, token) == ("unauthorized", 4401), name


async def test_revoked_kiosk_is_refused(stack: Stack) -> None:
    from signaling.accounts import Accounts
    from tsunagu.store import connect

    token = await stack.add_kiosk("k1")
    client = await stack.client(token)
    assert client.welcome["role"] == "kiosk"
    redis = connect(stack.settings.redis_url)
    try:
        assert await Accounts(redis, stack.settings).revoke_kiosk("k1")
    finally:
        await redis.aclose()
    assert await refused(stack, token) == ("unauthorized", 4401)
    fresh = await stack.add_kiosk("k1")  # re-registering issues a new working token
    assert (await stack.client(fresh)).welcome["role"] == "kiosk"
    assert await refused(stack, token) == ("unauthorized", 4401)


async def test_stats_api_needs_a_supervisor(stack: Stack) -> None:
    kiosk = await stack.add_kiosk("k1")
    sup = await stack.add_staff("sue", "supervisor")
    url = stack.nodes[0].base_url + "/api/stats"
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as r:
            assert r.status == 401
        async with http.get(url, headers={"Authorization": "Bearer " + kiosk}) as r:
            assert r.status == 403
        async with http.get(url, headers={"Authorization": "Bearer " + sup}) as r:
            assert r.status == 200 and "today" in await r.json()
