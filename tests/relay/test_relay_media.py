"""Two aiortc peers through the relay: media both ways, keyframe recovery, re-offer."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiortc.rtp import RtcpPsfbPacket

from relay.forwarder import parse_header, starts_keyframe
from tests.conftest import TEST_SECRET
from tests.relay.conftest import RunningRelay
from tests.relay.relay_peers import Peer, connect, post_offer, wait_for
from tsunagu.redis_keys import Keys

pytestmark = pytest.mark.webrtc


async def published_quality(redis: aioredis.Redis, call_id: str) -> dict[str, Any]:
    """The call's quality JSON once the relay has published a full interval of both legs."""
    for _ in range(60):
        raw = await redis.get(Keys().quality(call_id))
        if raw:
            quality: dict[str, Any] = json.loads(raw)
            if all(q["fps_in"] > 0 for q in quality["legs"].values()):
                return quality
        await asyncio.sleep(0.1)
    raise AssertionError("no quality published")


async def test_audio_and_video_both_ways(relay: RunningRelay, http: aiohttp.ClientSession,
                                         redis: aioredis.Redis) -> None:
    kiosk, interp = Peer("kiosk"), Peer("interpreter")
    try:
        await connect(http, relay.url, TEST_SECRET, "c1", kiosk, "kiosk")
        await connect(http, relay.url, TEST_SECRET, "c1", interp, "interpreter")
        await wait_for(lambda: min(kiosk.frames["video"], interp.frames["video"]) >= 30
                       and min(kiosk.frames["audio"], interp.frames["audio"]) >= 50,
                       20, "frames decoded on both ends")
        call = relay.node.calls["c1"]
        # forwarded, not transcoded: the relay's aiortc receivers decoded nothing
        for leg in call.legs.values():
            assert leg.counters.frames_in >= 30 and leg.counters.packets_out > 0
            for t in leg.pc.getTransceivers():
                assert t.receiver.track is None or t.receiver.track._queue.qsize() == 0
        events = await redis.xrange(Keys().relay_events)
        connected = {e[1]["party"] for e in events if e[1]["event"] == "leg_connected"}
        assert connected == {"kiosk", "interpreter"}
        # quality is published every 2 s while the call runs
        quality = await published_quality(redis, "c1")
        assert quality["relay_id"] == relay.node.relay_id
        assert quality["legs"]["kiosk"]["fps_in"] > 5
        assert quality["legs"]["kiosk"]["kbps_out"] > 0
        assert quality["transcoding"] == []  # Opus and VP8 both ways: forwarded as is
        # the kiosk hangs up its connection: signaling hears that the leg failed
        await kiosk.close()
        for _ in range(100):
            events = await redis.xrange(Keys().relay_events)
            failed = [e[1] for e in events if e[1]["event"] == "leg_failed"]
            if failed:
                break
            await asyncio.sleep(0.05)
        assert [(f["party"], f["reason"], f["call_id"]) for f in failed] == [
            ("kiosk", "closed", "c1")]
    finally:
        await kiosk.close()
        await interp.close()


async def test_receiver_loss_brings_keyframe_from_sender(
        relay: RunningRelay, http: aiohttp.ClientSession) -> None:
    kiosk, interp = Peer("kiosk"), Peer("interpreter")
    try:
        await connect(http, relay.url, TEST_SECRET, "c2", kiosk, "kiosk")
        await connect(http, relay.url, TEST_SECRET, "c2", interp, "interpreter")
        await wait_for(lambda: interp.frames["video"] >= 20, 20, "video at the interpreter")
        keyframe_requests = count_keyframe_requests(kiosk)
        call = relay.node.calls["c2"]
        plis_before = call.legs["interpreter"].counters.plis
        # the interpreter now sees a burst of 1000 lost video packets...
        call.legs["interpreter"].out["video"].anchor.seq_offset += 1000
        # ...asks for a picture (PLI), which the relay carries to the kiosk's encoder
        await wait_for(lambda: call.legs["interpreter"].counters.plis > plis_before, 10,
                       "PLI from the interpreter")
        await wait_for(lambda: keyframe_requests[0] > 0, 10, "keyframe request at the kiosk")
        decoded = interp.frames["video"]
        await wait_for(lambda: interp.frames["video"] >= decoded + 20, 10,
                       "video decoded again after the loss")
    finally:
        await kiosk.close()
        await interp.close()


def count_keyframe_requests(peer: Peer) -> list[int]:
    """Count the keyframe requests reaching ``peer``'s video encoder."""
    sender = peer.video_sender()
    count = [0]
    original = sender._send_keyframe

    def send_keyframe() -> None:
        count[0] += 1
        original()

    sender._send_keyframe = send_keyframe
    return count


async def test_reoffer_replaces_leg_and_media_resumes(
        relay: RunningRelay, http: aiohttp.ClientSession) -> None:
    kiosk, interp = Peer("kiosk"), Peer("interpreter")
    interp2 = Peer("interpreter-2")
    try:
        await connect(http, relay.url, TEST_SECRET, "c3", kiosk, "kiosk")
        await connect(http, relay.url, TEST_SECRET, "c3", interp, "interpreter")
        await wait_for(lambda: min(kiosk.frames["video"], interp.frames["video"]) >= 10, 20,
                       "video both ways")
        old_leg = relay.node.calls["c3"].legs["interpreter"]
        # the interpreter's network changed: it offers again from a new connection
        await connect(http, relay.url, TEST_SECRET, "c3", interp2, "interpreter")
        assert old_leg.closed and relay.node.calls["c3"].legs["interpreter"] is not old_leg
        await interp.close()
        at_kiosk = kiosk.frames["video"]
        await wait_for(lambda: interp2.frames["video"] >= 20, 20, "video on the new leg")
        await wait_for(lambda: kiosk.frames["video"] >= at_kiosk + 20, 20,
                       "kiosk receiving from the new leg")
        assert len(relay.node.calls) == 1
    finally:
        for peer in (kiosk, interp, interp2):
            await peer.close()


async def test_a_receiver_that_joins_late_starts_at_a_keyframe(
        relay: RunningRelay, http: aiohttp.ClientSession) -> None:
    """The kiosk has been sending for a while when the interpreter's leg comes up: the first
    video packet the interpreter gets is the first packet of a keyframe, never the middle of
    a frame or a frame that needs the ones before it."""
    kiosk, interp = Peer("kiosk"), Peer("interpreter")
    # The kiosk answers keyframe requests only after a second (as a busy encoder may): until
    # its keyframe comes, the relay must hold the interpreter's video back.
    sender = kiosk.video_sender()
    handle = sender._handle_rtcp_packet
    deaf_until = [0.0]

    async def slow_keyframes(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and time.monotonic() < deaf_until[0]:
            return
        await handle(packet)

    sender._handle_rtcp_packet = slow_keyframes
    try:
        await connect(http, relay.url, TEST_SECRET, "ck", kiosk, "kiosk")
        await asyncio.sleep(1.5)  # the kiosk's first keyframe is long gone
        deaf_until[0] = time.monotonic() + 1.0
        offer = await interp.offer()
        received: list[bytes] = []
        dtls = interp.pc.getTransceivers()[0].receiver.transport
        deliver = dtls._handle_rtp_data

        async def tap(data: bytes, arrival_time_ms: int) -> None:
            received.append(bytes(data))
            await deliver(data, arrival_time_ms)

        dtls._handle_rtp_data = tap
        status, body = await post_offer(http, relay.url, TEST_SECRET, "ck", "interpreter",
                                        offer)
        assert status == 200, body
        await interp.accept(body["sdp"])
        vp8 = int(re.search(r"a=rtpmap:(\d+) VP8/90000", body["sdp"]).group(1))  # type: ignore[union-attr]
        await wait_for(lambda: interp.frames["video"] >= 10, 20, "the interpreter decodes")
        video = [p for p in received if parse_header(p).payload_type == vp8]
        first = parse_header(video[0])
        assert starts_keyframe("video/vp8", first.payload), video[0][:24].hex()
        leg = relay.node.calls["ck"].legs["interpreter"]
        assert leg.counters.waiting_keyframe > 0  # it did drop the middle of the stream
    finally:
        await kiosk.close()
        await interp.close()
