"""The relay's control API, admission control and registration in Redis."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import jwt
import pytest
import redis.asyncio as aioredis

from relay.errors import AtCapacity
from relay.node import RelayNode
from tests.conftest import TEST_SECRET
from tests.relay.conftest import RunningRelay, start_relay, stop_relay
from tests.relay.relay_peers import Peer, post_offer, service_headers
from tsunagu.redis_keys import Keys
from tsunagu.redis_server import RedisServer
from tsunagu.tokens import mint, mint_service_token

pytestmark = pytest.mark.webrtc


async def new_offer() -> tuple[Peer, str]:
    peer = Peer("p")
    return peer, await peer.offer()


async def test_admission_refuses_call_past_capacity(
        redis: aioredis.Redis, redis_server: RedisServer, http: aiohttp.ClientSession) -> None:
    relay = await start_relay(redis_server.url, "r_small", capacity=2)
    peers: list[Peer] = []
    try:
        for call_id in ("a", "b"):
            peer, sdp = await new_offer()
            peers.append(peer)
            status, _ = await post_offer(http, relay.url, TEST_SECRET, call_id, "kiosk", sdp)
            assert status == 200
        peer, sdp = await new_offer()
        peers.append(peer)
        status, body = await post_offer(http, relay.url, TEST_SECRET, "c", "kiosk", sdp)
        assert (status, body) == (503, {"error": "capacity"})
        # a party of an admitted call may still offer (it is not a new call)
        status, _ = await post_offer(http, relay.url, TEST_SECRET, "b", "interpreter", sdp)
        assert status == 200
        assert sorted(relay.node.calls) == ["a", "b"]
        def headers() -> dict[str, str]:
            return service_headers(relay.url, TEST_SECRET, "a", "*", "DELETE")
        async with http.delete(f"{relay.url}/v1/calls/a", headers=headers()) as resp:
            assert resp.status == 200
        async with http.delete(f"{relay.url}/v1/calls/a", headers=headers()) as resp:
            assert resp.status == 200  # idempotent
        status, _ = await post_offer(http, relay.url, TEST_SECRET, "c", "kiosk", sdp)
        assert status == 200
    finally:
        for peer in peers:
            await peer.close()
        await stop_relay(relay)


async def test_requests_need_a_service_token(relay: RunningRelay,
                                             http: aiohttp.ClientSession) -> None:
    async with http.get(f"{relay.url}/v1/calls") as resp:
        assert resp.status == 401
    kiosk_token = mint(TEST_SECRET, sub="k1", role="kiosk", ttl_s=60)
    async with http.get(f"{relay.url}/v1/calls",
                        headers={"Authorization": f"Bearer {kiosk_token}"}) as resp:
        assert resp.status == 403
    forged = mint_service_token(b"another-secret-0123456789abcdef0123",
                                relay_id=relay.node.relay_id, call_id="*", party="*",
                                method="GET")
    async with http.get(f"{relay.url}/v1/calls",
                        headers={"Authorization": f"Bearer {forged}"}) as resp:
        assert resp.status == 403
    headers = service_headers(relay.url, TEST_SECRET, "*", "*", "GET")
    async with http.get(f"{relay.url}/v1/calls", headers=headers) as resp:
        assert resp.status == 200
        assert (await resp.json())["calls"] == []
    async with http.get(f"{relay.url}/healthz") as resp:
        assert resp.status == 200


async def test_bad_sdp_is_refused_and_leaves_no_call(relay: RunningRelay,
                                                     http: aiohttp.ClientSession) -> None:
    for sdp in ("hello", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video x\r\n"):
        status, body = await post_offer(http, relay.url, TEST_SECRET, "bad", "kiosk", sdp)
        assert (status, body) == (400, {"error": "bad_sdp"})
    assert relay.node.calls == {}


async def test_metrics_report_relay_and_legs(relay: RunningRelay,
                                             http: aiohttp.ClientSession) -> None:
    peer, sdp = await new_offer()
    try:
        status, _ = await post_offer(http, relay.url, TEST_SECRET, "m1", "kiosk", sdp)
        assert status == 200
        await relay.node.tick()
        async with http.get(f"{relay.url}/metrics") as resp:
            text = await resp.text()
        assert "tsunagu_relay_calls 1" in text
        assert "tsunagu_relay_capacity 4" in text
        assert 'tsunagu_relay_leg_fps_in{call_id="m1",party="kiosk"} 0.0' in text
    finally:
        await peer.close()


async def test_registration_heartbeat_and_clean_shutdown(
        redis: aioredis.Redis, redis_server: RedisServer) -> None:
    keys = Keys()
    relay = await start_relay(redis_server.url, "r_reg", capacity=7)
    try:
        fields = await redis.hgetall(keys.relay("r_reg"))
        assert fields["url"] == relay.url and fields["capacity"] == "7"
        assert fields["calls"] == "0" and float(fields["cpu"]) >= 0.0
        assert 0 < await redis.ttl(keys.relay("r_reg")) <= 10
        first = int(fields["updated_ms"])
        await asyncio.sleep(2.3)  # one heartbeat period
        assert int(await redis.hget(keys.relay("r_reg"), "updated_ms")) > first
        assert await redis.zscore(keys.relays, "r_reg") is not None
    finally:
        await stop_relay(relay)
    assert not await redis.exists(keys.relay("r_reg"))
    assert await redis.zscore(keys.relays, "r_reg") is None


async def test_busy_relay_refuses_new_calls_before_saturating() -> None:
    node = RelayNode("r_busy", capacity=10, ice_servers=[], cpu_limit=0.85)
    node.cpu.value = 0.9  # the forwarding loop used 90% of its core last interval
    with pytest.raises(AtCapacity):
        await node.offer("new", "kiosk", "v=0\r\n", "sign")
    assert node.calls == {}


async def test_call_with_no_leg_connected_is_reaped(
        redis: aioredis.Redis, redis_server: RedisServer, http: aiohttp.ClientSession) -> None:
    """A call signaling forgot (its legs never connect) must not hold capacity for ever."""
    relay = await start_relay(redis_server.url, "r_reap", capacity=1)
    peer, sdp = await new_offer()
    try:
        status, _ = await post_offer(http, relay.url, TEST_SECRET, "orphan", "kiosk", sdp)
        assert status == 200  # answered, but the peer never applies the answer
        assert await relay.node.reap(idle_s=60) == []  # too young to be an orphan
        assert await relay.node.reap(idle_s=0) == ["orphan"]
        assert relay.node.calls == {}
        status, _ = await post_offer(http, relay.url, TEST_SECRET, "next", "kiosk", sdp)
        assert status == 200  # its place is free again
    finally:
        await peer.close()
        await stop_relay(relay)


async def test_an_older_offer_never_replaces_a_newer_one(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """Two offers of one party in flight: whichever finishes last, the newer leg stays."""
    import relay.call as call_module
    from relay.call import Call
    from relay.errors import Stale

    gates: dict[str, asyncio.Event] = {}
    closed: list[str] = []

    class SlowLeg:
        def __init__(self, call_id: str, party: str, *args: object) -> None:
            self.name = ""
            self.party = party

        async def answer(self, sdp: str) -> str:
            self.name = sdp
            gates[sdp] = asyncio.Event()
            await gates[sdp].wait()
            return "answer-" + sdp

        async def close(self) -> None:
            closed.append(self.name)

    monkeypatch.setattr(call_module, "Leg", SlowLeg)
    call = Call("c", [], lambda *a: asyncio.sleep(0))
    older = asyncio.ensure_future(call.offer("kiosk", "old", None))
    await asyncio.sleep(0)
    newer = asyncio.ensure_future(call.offer("kiosk", "new", None))
    await asyncio.sleep(0)
    gates["new"].set()
    assert await newer == "answer-new"
    gates["old"].set()
    with pytest.raises(Stale):
        await older
    assert call.legs["kiosk"].name == "new" and closed == ["old"]
    await call.close()


async def test_a_relay_token_opens_one_request_once(
        redis: aioredis.Redis, redis_server: RedisServer, relay: RunningRelay,
        http: aiohttp.ClientSession) -> None:
    """PROTOCOL.md section 13: bound to relay, call, party and method, used once; else 403."""
    other = await start_relay(redis_server.url, "r_other")
    peer, sdp = await new_offer()
    try:
        body = {"sdp": sdp, "language_modality": "sign"}
        token = mint_service_token(TEST_SECRET, relay_id=relay.node.relay_id, call_id="live",
                                   party="kiosk", method="POST")
        auth = {"Authorization": f"Bearer {token}"}
        async with http.post(f"{relay.url}/v1/calls/live/legs/kiosk", json=body,
                             headers=auth) as resp:
            assert resp.status == 200
        replays = [
            ("POST", f"{relay.url}/v1/calls/other/legs/kiosk"),  # another call
            ("POST", f"{relay.url}/v1/calls/live/legs/interpreter"),  # another party
            ("POST", f"{other.url}/v1/calls/live/legs/kiosk"),  # another relay
            ("POST", f"{relay.url}/v1/calls/live/legs/kiosk"),  # a second time
            ("DELETE", f"{relay.url}/v1/calls/live"),  # another method
            ("GET", f"{relay.url}/v1/calls"),
        ]
        for method, url in replays:
            async with http.request(method, url, json=body, headers=auth) as resp:
                assert resp.status == 403, (method, url)
        fresh = mint_service_token(TEST_SECRET, relay_id=other.node.relay_id, call_id="other",
                                   party="kiosk", method="POST")
        # a token for another relay, replayed on this one before that relay saw it: 403 too
        async with http.post(f"{relay.url}/v1/calls/other/legs/kiosk", json=body,
                             headers={"Authorization": f"Bearer {fresh}"}) as resp:
            assert resp.status == 403
        assert sorted(relay.node.calls) == ["live"] and other.node.calls == {}
        now = int(time.time())
        long_lived = jwt.encode(
            {"sub": relay.node.relay_id, "role": "signaling", "iat": now, "exp": now + 31,
             "aud": "tsunagu-relay", "iss": "tsunagu", "jti": "j1", "call": "x",
             "party": "kiosk", "method": "POST"}, TEST_SECRET, algorithm="HS256")
        async with http.post(f"{relay.url}/v1/calls/x/legs/kiosk", json=body,
                             headers={"Authorization": f"Bearer {long_lived}"}) as resp:
            assert resp.status == 403  # valid for more than 30 s
    finally:
        await peer.close()
        await stop_relay(other)
