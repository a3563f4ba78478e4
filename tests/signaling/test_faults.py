"""Redis going away and coming back: readyz, `unavailable`, recovery without a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from tests.signaling.test_server import make_settings
from tests.support.stack import running
from tsunagu.client import ServerError
from tsunagu.redis_server import RedisServer


async def ready(base: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(base + "/readyz") as r:
        return r.status


async def test_redis_outage_and_recovery(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", persist=True)
    server.start()
    try:
        async with running(make_settings(server)) as stack:
            base = stack.nodes[0].base_url
            i = await stack.client(await stack.add_interpreter("alice", ["jsl"]))
            k = await stack.client(await stack.add_kiosk("k1"))
            await i.request("presence.set", status="available")
            await asyncio.sleep(1.2)  # let AOF (everysec) write the accounts
            assert await ready(base) == 200
            server.kill()
            assert await ready(base) == 503
            with pytest.raises(ServerError) as exc:
                await k.request("call.request", language="jsl")
            assert exc.value.code == "unavailable"
            server.start()
            for _ in range(50):
                if await ready(base) == 200:
                    break
                await asyncio.sleep(0.1)
            assert await ready(base) == 200
            queued = await k.request("call.request", language="jsl")
            offer = await i.next("call.offer", timeout=10)
            assert offer["call_id"] == queued["call_id"]
    finally:
        server.stop()
