"""A relay leg's own rules, without media: which stream is the source of a kind, and a
leg that never connects."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from relay.call import Call
from relay.leg import SSRC_TAKEOVER_MS, Leg
from tests.conftest import TEST_SECRET
from tests.relay.conftest import start_relay, stop_relay
from tests.relay.relay_peers import Peer, post_offer, wait_for
from tsunagu.redis_keys import Keys
from tsunagu.redis_server import RedisServer

pytestmark = pytest.mark.webrtc  # legs gather ICE candidates: loopback namespace only


def new_leg() -> Leg:
    return Leg("c", "kiosk", [], lambda *a: None, lambda *a: asyncio.sleep(0),
               lambda *a: asyncio.sleep(0))


async def test_first_stream_of_a_kind_is_pinned_until_it_falls_silent() -> None:
    leg = new_leg()
    try:
        assert leg.accept_ssrc("video", 111, 0.0)
        assert leg.accept_ssrc("audio", 222, 1.0)  # each kind has its own source
        # a second video stream while the first is live is refused, not interleaved
        assert not leg.accept_ssrc("video", 333, 10.0)
        assert leg.accept_ssrc("video", 111, 20.0)
        assert not leg.accept_ssrc("video", 333, 20.0 + SSRC_TAKEOVER_MS - 1)
        assert leg.counters.other_ssrc_in == 2
        # the first stopped (its sender restarted): the new one takes over, for good
        assert leg.accept_ssrc("video", 333, 20.0 + SSRC_TAKEOVER_MS + 1)
        assert leg.in_ssrc["video"] == 333
        assert not leg.accept_ssrc("video", 111, 30.0 + SSRC_TAKEOVER_MS)
    finally:
        await leg.close()


async def test_leg_that_never_connects_is_reported_and_closed() -> None:
    events: list[tuple[str, str, str, str]] = []

    async def on_event(call_id: str, party: str, event: str, reason: str) -> None:
        events.append((call_id, party, event, reason))

    peer = Peer("p")
    call = Call("c1", [], on_event, connect_timeout_s=0.5)
    try:
        await call.offer("kiosk", await peer.offer(), "sign")  # the answer is never applied
        leg = call.legs["kiosk"]
        await wait_for(lambda: bool(events), 5, "the leg reported")
        assert events == [("c1", "kiosk", "leg_failed", "connect_timeout")]
        assert leg.closed
        await asyncio.sleep(0.5)
        assert len(events) == 1  # the leg's own close reports nothing more
    finally:
        await call.close()
        await peer.close()


async def test_connect_timeout_reaches_the_relay_events_stream(
        redis: aioredis.Redis, redis_server: RedisServer) -> None:
    import aiohttp

    relay = await start_relay(redis_server.url, "r_slow", capacity=2)
    relay.node.connect_timeout_s = 0.5
    peer = Peer("p")
    try:
        async with aiohttp.ClientSession() as http:
            status, _ = await post_offer(http, relay.url, TEST_SECRET, "c2", "kiosk",
                                         await peer.offer())
        assert status == 200
        for _ in range(40):
            entries = await redis.xrange(Keys().relay_events)
            if entries:
                break
            await asyncio.sleep(0.1)
        fields = [f for _, f in entries]
        assert [(f["call_id"], f["party"], f["event"], f["reason"]) for f in fields] == [
            ("c2", "kiosk", "leg_failed", "connect_timeout")]
    finally:
        await peer.close()
        await stop_relay(relay)
