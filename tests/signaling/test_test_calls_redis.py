"""The test-call scheduler against a real Redis: two nodes tick at once, one acts."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from signaling.bus import Bus
from signaling.test_calls import TestCalls
from tests.conftest import TEST_SECRET
from tsunagu.protocol import now_ms
from tsunagu.settings import SignalingSettings

TZ = ZoneInfo("Asia/Tokyo")


def node(redis: aioredis.Redis, settings: SignalingSettings, name: str) -> TestCalls:
    return TestCalls(redis, settings, Bus(redis, redis, settings.keys, name))


async def test_two_nodes_send_one_test_due_and_skip_a_busy_kiosk(redis: aioredis.Redis) -> None:
    settings = SignalingSettings(secret=TEST_SECRET, test_clock=True, test_retry_s=300)
    k = settings.keys
    a, b = node(redis, settings, "n_a"), node(redis, settings, "n_b")
    for kiosk in ("k1", "k2"):
        await redis.hset(k.kiosk(kiosk), mapping={"ward": "W", "counter": "1", "gen": 1,
                                                  "test_at": "08:30", "added_ms": 1})
        await redis.set(k.client_node("k:" + kiosk), "n_c")  # online, held by node n_c
    await redis.set(k.kiosk_call("k2"), "c_real")  # k2 is in a real call
    await redis.hset(k.call("c_real"), mapping={"language": "jsl", "state": "connected"})
    tomorrow = datetime.now(TZ).date() + timedelta(days=1)
    at = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 8, 29, 59, 900_000, tzinfo=TZ)
    await redis.set(k.test_clock, int(at.timestamp() * 1000) - now_ms())
    await asyncio.gather(a.tick(), b.tick())
    assert await redis.xlen(k.node_inbox("n_c")) == 0  # 08:29:59.9: not yet
    await asyncio.sleep(0.2)
    for _ in range(5):
        await asyncio.gather(a.tick(), b.tick(), a.tick(), b.tick())
    entries = await redis.xrange(k.node_inbox("n_c"))
    assert [(f["to"], json.loads(f["msg"])["type"]) for _, f in entries] == [
        ("k:k1", "kiosk.test_due")]
    test_id = json.loads(entries[0][1]["msg"])["test_id"]
    day = tomorrow.isoformat()
    k1 = await redis.hgetall(k.test_day("k1", day))
    assert k1["tries"] == "1" and k1["test_id"] == test_id and k1["sent_ms"] != "0"
    assert (await redis.hgetall(k.test_run(test_id)))["kiosk"] == "k1"
    k2 = await redis.hgetall(k.test_day("k2", day))
    assert k2["tries"] == "1" and k2["sent_ms"] == "0" and int(k2["next_ms"]) > 0
    assert await redis.ttl(k.test_day("k1", day)) > 86400
