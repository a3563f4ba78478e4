"""The relay's presence in Redis: registration and heartbeat, leg events, call quality."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from tsunagu.redis_keys import Keys
from tsunagu.tokens import relay_registration_key

logger = logging.getLogger(__name__)

HEARTBEAT_S = 2.0
RELAY_TTL_S = 10
QUALITY_TTL_S = 10
EVENTS_MAXLEN = 10_000
REDIS_TIMEOUT_S = 2.0


def now_ms() -> int:
    return int(time.time() * 1000)


class Registry:
    """Writes what signaling reads about this relay; every call bounded in time."""

    def __init__(self, redis: aioredis.Redis, relay_id: str, url: str,
                 keys: Keys | None = None, secret: bytes | None = None) -> None:
        self.redis = redis
        self.relay_id = relay_id
        self.url = url
        self.keys = keys or Keys()
        # Signaling posts only to a registration whose key proves it knows the secret.
        self.key = relay_registration_key(secret, relay_id, url) if secret else ""

    async def heartbeat(self, capacity: int, calls: int, cpu: float) -> None:
        """Refresh this relay's hash (TTL 10 s) and its entry in the relay set."""
        key = self.keys.relay(self.relay_id)
        at = now_ms()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"url": self.url, "key": self.key,
                                    "capacity": capacity, "calls": calls,
                                    "cpu": f"{cpu:.3f}", "updated_ms": at})
            pipe.expire(key, RELAY_TTL_S)
            pipe.zadd(self.keys.relays, {self.relay_id: at})
            await asyncio.wait_for(pipe.execute(), REDIS_TIMEOUT_S)

    async def unregister(self) -> None:
        """Remove this relay's hash and set entry (clean shutdown)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.relay(self.relay_id))
            pipe.zrem(self.keys.relays, self.relay_id)
            await asyncio.wait_for(pipe.execute(), REDIS_TIMEOUT_S)

    async def event(self, call_id: str, party: str, event: str, reason: str) -> None:
        """Tell signaling that a leg connected or failed."""
        fields: dict[Any, Any] = {"relay_id": self.relay_id, "call_id": call_id,
                                  "party": party, "event": event, "reason": reason,
                                  "at_ms": now_ms()}
        try:
            await asyncio.wait_for(
                self.redis.xadd(self.keys.relay_events, fields, maxlen=EVENTS_MAXLEN,
                                approximate=True),
                REDIS_TIMEOUT_S)
        except (RedisError, OSError, TimeoutError) as exc:
            logger.warning("call %s: could not record %s %s: %s", call_id, party, event, exc)

    async def quality(self, reports: dict[str, dict[str, Any]]) -> None:
        """Publish each call's quality JSON (TTL 10 s)."""
        if not reports:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for call_id, report in reports.items():
                pipe.set(self.keys.quality(call_id), json.dumps(report), ex=QUALITY_TTL_S)
            await asyncio.wait_for(pipe.execute(), REDIS_TIMEOUT_S)
