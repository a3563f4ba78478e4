"""tsunagu.store: pooled connections survive a Redis restart unseen by their callers."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tsunagu import store
from tsunagu.redis_server import RedisServer


async def test_pooled_connections_are_checked_after_a_redis_restart(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", persist=True)
    server.start()
    client = store.connect(server.url)
    try:
        async def burst() -> list[object]:
            return await asyncio.gather(*(client.get("x") for _ in range(20)),
                                        return_exceptions=True)

        assert await burst() == [None] * 20  # 20 pooled connections
        server.kill()
        server.start()
        await asyncio.sleep(getattr(store, "IDLE_CHECK_S", 1.0) + 0.2)
        assert await burst() == [None] * 20
    finally:
        await client.aclose()
        server.stop()
