"""Size of finished-call records in Redis: prints one JSON line.

Writes 1,000 realistic records (signaling/records.py ``write_records``) into one day's hash
of a fresh redis-server and reports ``MEMORY USAGE`` of that hash (every field sampled) per
record, the JSON size of one record, and the same for a day of 100 calls (a small hash is a
compact listpack in Redis). With ``--days N`` it also prints what N days of such days take.

    .venv/bin/python -m bench.record_size [--calls 1000] [--days 1826]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from signaling.ledger import CallRecord
from signaling.records import to_json, utc_day, write_records
from tsunagu.redis_keys import Keys
from tsunagu.redis_server import RedisServer
from tsunagu.store import connect

WARDS = ["北区", "中央区", "港区", "新宿区", "世田谷区"]
LANGS = [("jsl", "sign"), ("en", "spoken"), ("zh", "spoken"), ("vi", "spoken"),
         ("pt", "spoken"), ("ko", "spoken")]
PROCEDURES = ["転入届", "転出届", "国民健康保険", "児童手当", "印鑑登録", ""]


def record(day_ms: int, rng: random.Random) -> CallRecord:
    """A call as the events fold it: answered (most), abandoned or failed."""
    lang, modality = rng.choice(LANGS)
    enqueued = day_ms + rng.randrange(9 * 3_600_000)
    wait = rng.randrange(5_000, 120_000)
    kind = rng.random()
    r = CallRecord("c_" + secrets.token_hex(16), language=lang, ward=rng.choice(WARDS),
                   counter=str(rng.randrange(1, 12)), kiosk=f"kiosk-{rng.randrange(200):03d}",
                   enqueued_ms=enqueued, modality=modality, procedure=rng.choice(PROCEDURES),
                   priority="urgent" if rng.random() < 0.05 else "normal")
    if kind < 0.85:
        talk = rng.randrange(60_000, 900_000)
        r.answered_ms = r.exit_ms = enqueued + wait
        r.exit_outcome = r.outcome = "answered"
        r.interpreter = f"interp{rng.randrange(40):02d}"
        r.ended_ms, r.talk_ms, r.reason = enqueued + wait + talk, talk, "hangup"
        r.rating = rng.randrange(1, 6) if rng.random() < 0.6 else None
        r.transferred_to = "en" if rng.random() < 0.03 else ""
    else:
        r.exit_outcome = r.outcome = "abandoned" if kind < 0.95 else "failed"
        r.exit_ms = r.ended_ms = enqueued + wait
        r.reason = "cancelled" if r.outcome == "abandoned" else "timeout"
    return r


async def measure(url: str, calls: int, seed: int) -> dict[str, float]:
    redis, keys, rng = connect(url), Keys(), random.Random(seed)
    day_ms = int(datetime(2026, 12, 1, 0, tzinfo=UTC).timestamp() * 1000)
    try:
        records = [record(day_ms, rng) for _ in range(calls)]
        await write_records(redis, keys, records)
        key = keys.records(utc_day(records[0].ended_ms or day_ms))
        assert await redis.hlen(key) == calls
        usage = await redis.memory_usage(key, samples=0)
        encoding = await redis.object("encoding", key)
        return {"calls": calls, "bytes_per_record": round(usage / calls, 1),
                "json_bytes_per_record": round(sum(len(to_json(r).encode()) for r in records)
                                               / calls, 1),
                "hash_bytes": usage, "encoding": encoding}
    finally:
        await redis.flushall()
        await redis.aclose()


async def main(calls: int, days: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp, RedisServer(Path(tmp), persist=False) as server:
        big = await measure(server.url, calls, 1)
        small = await measure(server.url, 100, 2)
    per = float(big["bytes_per_record"])
    return {"day_of_many": big, "day_of_100": small, "days": days,
            f"mib_for_{days}_days_of_{calls}_calls": round(per * calls * days / 2**20, 1)}


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=1000)
    p.add_argument("--days", type=int, default=1826)
    a = p.parse_args()
    print(json.dumps(asyncio.run(main(a.calls, a.days)), ensure_ascii=False))
