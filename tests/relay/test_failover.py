"""Media through the real signaling server and two relays: a relay dies mid-call and both
parties move to the other one; a relay at capacity is refused through signaling."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.conftest import TEST_SECRET
from tests.support.stack import Stack, running
from tsunagu.client import ServerError, SignalingClient
from tsunagu.endpoint.leg import MediaLeg
from tsunagu.endpoint.tracks import SyntheticVideoTrack, ToneAudioTrack
from tsunagu.redis_keys import Keys
from tsunagu.redis_server import RedisServer, free_port
from tsunagu.settings import SignalingSettings

K = Keys()
pytestmark = [pytest.mark.webrtc, pytest.mark.timeout(120)]


def start_relay(redis_url: str, log_dir: Path, capacity: int) -> subprocess.Popen[bytes]:
    port = free_port()
    with (log_dir / f"relay-{port}.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "relay", "--host", "127.0.0.1", "--port", str(port),
             "--redis-url", redis_url, "--capacity", str(capacity)],
            stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))


@pytest.fixture
def relays(redis_server: RedisServer, tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs = [start_relay(redis_server.url, tmp_path, capacity=1) for _ in range(2)]
    yield procs
    for p in procs:
        p.kill()
        p.wait()


async def wait_registered(redis: aioredis.Redis, n: int) -> None:
    for _ in range(200):
        if await redis.zcard(K.relays) >= n:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError("relays did not register")


async def flowing(leg: MediaLeg, frames: int, within_s: float) -> bool:
    start = leg.video.frames
    for _ in range(int(within_s * 10)):
        if leg.video.frames - start >= frames:
            return True
        await asyncio.sleep(0.1)
    return False


async def connected_call(stack: Stack, name: str, kiosk: str, lang: str
                         ) -> tuple[SignalingClient, SignalingClient, str]:
    i = await stack.client(await stack.add_interpreter(name, [lang]))
    k = await stack.client(await stack.add_kiosk(kiosk))
    await i.request("presence.set", status="available")
    queued = await k.request("call.request", language=lang)
    offer = await i.next("call.offer")
    await i.request("call.accept", call_id=offer["call_id"], offer_id=offer["offer_id"])
    await k.next("call.connected")
    await i.next("call.connected")
    return k, i, queued["call_id"]


def leg(client: SignalingClient, call_id: str) -> MediaLeg:
    return MediaLeg(client, call_id, [], [SyntheticVideoTrack(320, 240, 30), ToneAudioTrack()])


async def test_relay_dies_and_both_parties_move(redis_server: RedisServer,
                                                redis: aioredis.Redis,
                                                relays: list[subprocess.Popen[bytes]]) -> None:
    settings = SignalingSettings(secret=TEST_SECRET, redis_url=redis_server.url, relay_dead_s=3.0,
                        sweep_interval_s=0.1)
    await wait_registered(redis, 2)
    async with running(settings) as stack:
        k, i, call_id = await connected_call(stack, "alice", "k1", "jsl")
        k_leg, i_leg = leg(k, call_id), leg(i, call_id)
        refused: MediaLeg | None = None
        try:
            await asyncio.gather(k_leg.start(), i_leg.start())
            assert await flowing(k_leg, 30, 15) and await flowing(i_leg, 30, 15)
            assert await redis.hget(K.call(call_id), "state") == "connected"
            first = await redis.hget(K.call(call_id), "relay")
            victim = await relay_process(redis, relays, first)
            victim.kill()
            failed_k = await k.next("media.failed", timeout=20, call_id=call_id)
            failed_i = await i.next("media.failed", timeout=20, call_id=call_id)
            assert failed_k["reason"] == failed_i["reason"] == "relay_lost"
            await asyncio.gather(k_leg.start(), i_leg.start())
            second = await redis.hget(K.call(call_id), "relay")
            assert second and second != first
            assert await flowing(k_leg, 30, 15) and await flowing(i_leg, 30, 15)
            assert all(t.readyState == "live" for t in k_leg.tracks + i_leg.tracks)
            assert await redis.hget(K.call(call_id), "state") == "connected"  # never re-queued
            # the surviving relay is full (capacity 1): a second call is refused, not squeezed in
            k2, _i2, call2 = await connected_call(stack, "bob", "k2", "en")
            refused = leg(k2, call2)
            with pytest.raises(ServerError) as exc:
                await refused.start()
            assert exc.value.code == "unavailable"
        finally:
            await asyncio.gather(*(x.close() for x in (k_leg, i_leg, refused) if x))


async def relay_process(redis: aioredis.Redis, procs: list[subprocess.Popen[bytes]],
                        relay_id: str | None) -> subprocess.Popen[bytes]:
    """The process of the relay registered as ``relay_id`` (matched by its control port)."""
    url = await redis.hget(K.relay(str(relay_id)), "url")
    port = str(url).rsplit(":", 1)[1].strip("/")
    return next(p for p in procs if port in [str(a) for a in p.args])
