"""Session-wide fixtures: a real redis-server on a free port, settings, the loopback guard."""

from __future__ import annotations

import asyncio
import fcntl
import os
import socket
import struct
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.support.service import Service
from tsunagu.redis_server import RedisServer

SIOCGIFFLAGS = 0x8913
IFF_UP = 0x1
IFF_LOOPBACK = 0x8
TEST_SECRET = b"test-secret-0123456789abcdef0123456789"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server for the whole test session (no persistence)."""
    server = RedisServer(tmp_path_factory.mktemp("redis"), persist=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """A client on a flushed database: every test starts from nothing."""
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture(scope="session", autouse=True)
def _secret_env() -> Iterator[None]:
    os.environ["TSUNAGU_SECRET"] = TEST_SECRET.decode()
    os.environ["TSUNAGU_ICE_ADDRESSES"] = "127.0.0.1"
    os.environ["TSUNAGU_ICE_SERVERS"] = "[]"
    os.environ["TSUNAGU_SCRYPT_N"] = "16384"  # the default 2**17 costs ~0.5 s per login
    yield


ARTIFACTS = Path(os.environ.get("TSUNAGU_TEST_ARTIFACTS", "test-artifacts"))


@pytest.fixture
async def service(redis: aioredis.Redis, redis_server: RedisServer,
                  tmp_path: Path) -> AsyncIterator[Service]:
    """The whole service as processes (a signaling node and a relay) on a flushed Redis (the
    ``redis`` fixture flushes it); their logs in ``tmp_path``."""
    svc = Service(redis_server.url, tmp_path)
    try:
        await asyncio.to_thread(svc.start)
        yield svc
    finally:
        await asyncio.to_thread(svc.stop)


def up_interfaces() -> list[str]:
    """Interfaces of this process's network namespace, other than loopback, that are up.

    Asked with SIOCGIFFLAGS (namespace-aware; /sys/class/net keeps showing the host's).
    """
    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            request = struct.pack("16sH14x", name.encode()[:15], 0)
            flags = struct.unpack("16sH14x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
            if flags & IFF_UP and not flags & IFF_LOOPBACK:
                found.append(name)
    return found


@pytest.fixture
def loopback_only() -> None:
    """Fail (never skip) a WebRTC test outside a loopback-only network namespace."""
    others = up_interfaces()
    if others:
        pytest.fail(
            f"interfaces {others} are up: run WebRTC tests in a loopback-only namespace: "
            "unshare -n sh -c 'ip link set lo up && .venv/bin/python -m pytest tests'"
        )
