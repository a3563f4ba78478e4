"""The fault drill (issue 10): each fault in turn under a steady call load, then the
invariants from the clients' view and the events stream (see tests/faults/drill.py)."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest

from tests.conftest import TEST_SECRET
from tests.faults.drill import open_drill
from tsunagu.redis_server import RedisServer
from tsunagu.settings import SignalingSettings


def _settings(server: RedisServer) -> SignalingSettings:
    return SignalingSettings(secret=TEST_SECRET, redis_url=server.url)


@pytest.mark.timeout(360)
async def test_fault_drill(tmp_path: Path) -> None:
    drill, server, stack = await open_drill(tmp_path, _settings, kiosks=16, interpreters=6)
    try:
        await asyncio.sleep(4)
        await drill.kill_node(1, signal.SIGKILL)
        await asyncio.sleep(4)
        await drill.pause_redis(3.0)
        await asyncio.sleep(4)
        await drill.restart_redis()
        await asyncio.sleep(4)
        for _ in range(3):  # whatever state each is in: waiting, ringing, in a call
            await drill.drop_sockets(4)
            await asyncio.sleep(1.5)
        await asyncio.sleep(3)
        await drill.kill_node(0, signal.SIGTERM, down_s=0.5)  # drains with 1012
        await asyncio.sleep(5)
        await drill.finish()
        report = await drill.check()
        print("drill:", json.dumps(report))
        assert report["calls"] > 30
    finally:
        await drill.close()
        await stack.close()
        server.stop()
