"""Finished-call records, kept by time (PROTOCOL.md section 15).

One compact JSON record per finished real call, in a Redis hash per UTC day of its end
(``Keys.records(day)``), with the days listed in ``Keys.record_days``. The CSV, the export
and the monthly report read these records, never the events stream, which is trimmed by age.
A record holds who was served, where, how fast, and the rating: never anything that was said.

Writing is idempotent (``HSETNX`` by call id), so every node that folds an ``ended`` event
may write the same record. The rating is the one field written later (by ``call.rate``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import fields
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from signaling.ledger import CallRecord, local_date
from tsunagu.redis_keys import Keys
from tsunagu.store import RedisClient

# The fields a record keeps (a CallRecord's, less the in-progress bookkeeping).
STORED = ("call_id", "kiosk", "ward", "counter", "language", "modality", "procedure",
          "priority", "enqueued_ms", "answered_ms", "exit_ms", "exit_outcome", "ended_ms",
          "talk_ms", "outcome", "reason", "interpreter", "transferred_to", "rating")
_TYPES = {f.name: f for f in fields(CallRecord)}
assert set(STORED) <= set(_TYPES), set(STORED) - set(_TYPES)


def utc_day(ms: int) -> str:
    """The UTC calendar day (YYYY-MM-DD) of an epoch-ms instant: the records hash it is in."""
    return datetime.fromtimestamp(ms / 1000, UTC).date().isoformat()


def day_score(day: str) -> int:
    """Epoch seconds of a UTC day's midnight (the score in ``Keys.record_days``)."""
    return int(datetime.combine(date.fromisoformat(day), datetime.min.time(), UTC).timestamp())


def to_json(record: CallRecord) -> str:
    """A record as stored: compact JSON, empty and absent values left out."""
    out = {}
    for name in STORED:
        value = getattr(record, name)
        if value is None or value == "":
            continue
        out[name] = value
    return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


def from_json(text: str | bytes) -> CallRecord:
    """A stored record back as a CallRecord (unknown keys are ignored)."""
    data = json.loads(text)
    return CallRecord(**{k: v for k, v in data.items() if k in STORED})


async def write_records(redis: RedisClient, keys: Keys, records: Iterable[CallRecord]) -> int:
    """Store finished records (``ended_ms`` set) that are not stored yet; how many were new."""
    pipe = redis.pipeline(transaction=False)
    count = 0
    for r in records:
        if r.ended_ms is None:
            continue
        day = utc_day(r.ended_ms)
        pipe.hsetnx(keys.records(day), r.call_id, to_json(r))
        pipe.zadd(keys.record_days, {day: day_score(day)})
        count += 1
    if not count:
        return 0
    results = await pipe.execute()
    return sum(1 for added in results[::2] if added)


def utc_days_covering(first: date, last: date) -> list[str]:
    """The UTC days whose records may hold calls that ended on local dates first..last (a
    zone's day straddles two UTC days)."""
    day, out = first - timedelta(days=1), []
    while day <= last + timedelta(days=1):
        out.append(day.isoformat())
        day += timedelta(days=1)
    return out


async def load_records(redis: RedisClient, keys: Keys, *, first: date, last: date,
                       tz: ZoneInfo) -> list[CallRecord]:
    """The records of calls that ended on local dates ``first``..``last`` (inclusive), oldest
    end first."""
    out = []
    for day in utc_days_covering(first, last):
        stored = await redis.hgetall(keys.records(day))
        for text in stored.values():
            r = from_json(text)
            if r.ended_ms is not None and first <= local_date(r.ended_ms, tz) <= last:
                out.append(r)
    out.sort(key=lambda r: (r.ended_ms or 0, r.call_id))
    return out
