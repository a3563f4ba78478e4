"""Relay test fixtures: WebRTC tests must run in a loopback-only network namespace."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from relay.node import RelayNode
from relay.server import run
from tests.conftest import TEST_SECRET
from tests.relay.relay_peers import RELAY_IDS
from tsunagu.redis_keys import Keys
from tsunagu.rtc_internals import install_early_frame_release, restrict_ice_addresses

IFF_UP = 0x1
SIOCGIFFLAGS = 0x8913


def non_loopback_interfaces_up() -> list[str]:
    """Interfaces of this network namespace, other than lo, that are up."""
    lines = Path("/proc/self/net/dev").read_text().splitlines()[2:]
    names = [line.split(":", 1)[0].strip() for line in lines]
    up = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for name in names:
            if name == "lo":
                continue
            request = struct.pack("16sH14x", name.encode()[:15], 0)
            flags = struct.unpack("16sH14x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
            if flags & IFF_UP:
                up.append(name)
    return up


@pytest.fixture(autouse=True)
def _loopback_only(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("webrtc") is None:
        return
    up = non_loopback_interfaces_up()
    if up:
        pytest.fail(
            f"WebRTC test with non-loopback interfaces up ({', '.join(up)}); run under "
            "`unshare -n sh -c 'ip link set lo up && .venv/bin/python -m pytest tests/relay'`",
            pytrace=False,
        )
    restrict_ice_addresses(["127.0.0.1"])
    install_early_frame_release()


@dataclass
class RunningRelay:
    """A relay node serving in this event loop."""

    url: str
    node: RelayNode
    task: asyncio.Task[None]


async def start_relay(redis_url: str, relay_id: str, capacity: int | None = None) -> RunningRelay:
    """Start ``relay.node.serve`` on a free port; its URL is read from its registration."""
    node = RelayNode(relay_id, capacity or 4, [])
    task = asyncio.ensure_future(run(node, "127.0.0.1", 0, redis_url, TEST_SECRET))
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        for _ in range(100):
            url = await client.hget(Keys().relay(relay_id), "url")
            if url:
                RELAY_IDS[url] = relay_id
                return RunningRelay(url, node, task)
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()
    task.cancel()
    raise AssertionError("relay did not register")


async def stop_relay(relay: RunningRelay) -> None:
    relay.task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await relay.task


@pytest.fixture
async def relay(redis: aioredis.Redis, redis_server: Any) -> AsyncIterator[RunningRelay]:
    """A relay node with a capacity of 4 calls, registered in a flushed Redis."""
    running = await start_relay(redis_server.url, "r_test", capacity=4)
    yield running
    await stop_relay(running)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
