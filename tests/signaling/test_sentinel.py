"""``store.connect`` through a real Sentinel: the client follows a failover by itself and drops
its pooled connections to the old primary (a primary, a replica and one Sentinel on loopback)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tsunagu import store
from tsunagu.redis_server import find_binary, free_port

DATA_PASSWORD = "data-pw-for-tests-only"
SENTINEL_PASSWORD = "sentinel-pw-for-tests-only"


@dataclass
class Sentinelled:
    primary: subprocess.Popen[bytes]
    primary_port: int
    replica_port: int
    sentinel_port: int

    @property
    def url(self) -> str:
        return f"redis+sentinel://:{DATA_PASSWORD}@127.0.0.1:{self.sentinel_port}/tsunagu/0"


def _node(tmp: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    args = [find_binary(), "--bind", "127.0.0.1", "--port", str(port), "--dir", str(tmp),
            "--save", "", "--appendonly", "no", "--requirepass", DATA_PASSWORD,
            "--masterauth", DATA_PASSWORD, "--logfile", str(tmp / f"{port}.log"), *extra]
    return subprocess.Popen(args)


def _wait(check: object, what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except redis.RedisError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def sentinelled(tmp_path: Path) -> Iterator[Sentinelled]:
    ports = [free_port() for _ in range(3)]
    primary_port, replica_port, sentinel_port = ports
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {sentinel_port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"requirepass {SENTINEL_PASSWORD}\n"
        f"sentinel monitor tsunagu 127.0.0.1 {primary_port} 1\n"
        f"sentinel auth-pass tsunagu {DATA_PASSWORD}\n"
        "sentinel down-after-milliseconds tsunagu 1000\n"
        "sentinel failover-timeout tsunagu 5000\n")
    procs = [_node(tmp_path, primary_port)]
    procs.append(_node(tmp_path, replica_port, "--replicaof", "127.0.0.1", str(primary_port)))
    procs.append(subprocess.Popen([find_binary(), str(conf), "--sentinel",
                                   "--logfile", str(tmp_path / "sentinel.log")]))
    sentinel = redis.Redis(port=sentinel_port, password=SENTINEL_PASSWORD)
    primary = redis.Redis(port=primary_port, password=DATA_PASSWORD)
    try:
        _wait(lambda: (primary.info("replication").get("slave0") or {}).get("state") == "online",
              "the replica in sync")
        _wait(lambda: len(sentinel.sentinel_slaves("tsunagu")) == 1, "the Sentinel's replica")
        yield Sentinelled(procs[0], primary_port, replica_port, sentinel_port)
    finally:
        sentinel.close()
        primary.close()
        for proc in procs:
            proc.kill()
            proc.wait()


@pytest.fixture
def sentinel_password() -> Iterator[None]:
    os.environ["TSUNAGU_SENTINEL_PASSWORD"] = SENTINEL_PASSWORD
    yield
    del os.environ["TSUNAGU_SENTINEL_PASSWORD"]


async def test_client_follows_a_failover_and_drops_old_connections(
        sentinelled: Sentinelled, sentinel_password: None) -> None:
    client = store.connect(sentinelled.url, timeout_s=1.0, max_connections=8)
    try:
        # Several connections in the pool, all to the first primary.
        await asyncio.gather(*(client.incr("n") for _ in range(6)))
        pool = client.connection_pool
        ports = {c.port for c in pool._available_connections}
        assert ports == {sentinelled.primary_port} and len(pool._available_connections) > 1
        assert await client.wait(1, 5000) == 1  # replicated before the crash

        sentinelled.primary.send_signal(signal.SIGKILL)
        started = time.monotonic()
        failures = 0
        while True:
            assert time.monotonic() - started < 30, "no failover within 30 s"
            try:
                await client.incr("n")
                break
            except store.REDIS_ERRORS:
                failures += 1
                await asyncio.sleep(0.2)
        assert failures > 0  # the client did see the primary go
        # Every pooled connection now points at the promoted replica.
        live = [c for c in (*pool._available_connections, *pool._in_use_connections)
                if c.is_connected]
        assert live and {c.port for c in live} == {sentinelled.replica_port}
        results = await asyncio.gather(*(client.incr("n") for _ in range(6)))
        assert max(results) == 13  # 6 + 1 + 6: nothing lost, nothing counted twice
        assert {c.port for c in pool._available_connections
                if c.is_connected} == {sentinelled.replica_port}
    finally:
        await client.aclose()


async def test_wrong_sentinel_password_is_refused(sentinelled: Sentinelled) -> None:
    os.environ["TSUNAGU_SENTINEL_PASSWORD"] = "wrong"
    try:
        client = store.connect(sentinelled.url, timeout_s=1.0)
        with pytest.raises(store.REDIS_ERRORS):
            await client.ping()
        await client.aclose()
    finally:
        del os.environ["TSUNAGU_SENTINEL_PASSWORD"]


async def test_what_a_failover_loses_is_measured(sentinelled: Sentinelled,
                                                 sentinel_password: None) -> None:
    """Acknowledged writes against what the promoted replica holds: replication is
    asynchronous, so a kill -9 of the primary loses what it had not yet sent. Measured with
    writes back to back (the worst case for one client) and bounded by what one second of
    them is; docs/deploy.md reports the figure."""
    client = store.connect(sentinelled.url, timeout_s=1.0)
    acked: list[float] = []
    stop = asyncio.Event()

    async def writer() -> None:
        while not stop.is_set():
            try:
                await client.incr("w")
                acked.append(time.monotonic())
            except store.REDIS_ERRORS:
                return

    try:
        task = asyncio.create_task(writer())
        await asyncio.sleep(1.5)
        sentinelled.primary.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        await asyncio.wait_for(task, 5)
        stop.set()
        deadline = time.monotonic() + 30
        while True:
            assert time.monotonic() < deadline, "no failover within 30 s"
            try:
                held = int(await client.get("w") or 0)
                break
            except store.REDIS_ERRORS:
                await asyncio.sleep(0.2)
        lost = len(acked) - held
        last_second = sum(1 for t in acked if t > killed - 1.0)
        print(f"failover: {len(acked)} writes acknowledged, {held} held by the new primary, "
              f"{lost} lost ({last_second} in the last second before the kill)")
        assert 0 <= lost <= last_second
    finally:
        await client.aclose()
