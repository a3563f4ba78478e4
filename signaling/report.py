"""The city's report: one CSV row per finished call, no conversation content."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from signaling.ledger import CallRecord, Ledger, local_date
from tsunagu.languages import Language
from tsunagu.redis_keys import Keys
from tsunagu.store import RedisClient

HEADER = ["call_id", "ward", "counter", "language", "modality", "enqueued", "answered", "ended",
          "wait_s", "talk_s", "outcome", "end_reason", "interpreter_id"]
# Calls are read from this long before the range, so a call that ends in it has its start.
LOOKBACK = timedelta(days=2)


def iso(ms: int | None, tz: ZoneInfo) -> str:
    """ISO 8601 with the zone's offset, to the second."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz).isoformat(timespec="seconds")


def day_start_ms(day: date, tz: ZoneInfo) -> int:
    return int(datetime.combine(day, time.min, tz).timestamp() * 1000)


def rows(records: Iterable[CallRecord], *, first: date, last: date, tz: ZoneInfo,
         catalogue: dict[str, Language]) -> list[list[str]]:
    """CSV rows of the calls that ended between ``first`` and ``last`` (inclusive)."""
    out = []
    for r in sorted(records, key=lambda r: r.ended_ms or 0):
        if r.ended_ms is None or not first <= local_date(r.ended_ms, tz) <= last:
            continue
        lang = catalogue.get(r.language)
        out.append([
            r.call_id, r.ward, r.counter, r.language, lang.modality if lang else "",
            iso(r.enqueued_ms, tz), iso(r.answered_ms, tz), iso(r.ended_ms, tz),
            f"{r.wait_s:.1f}" if r.wait_s is not None else "",
            f"{r.talk_ms / 1000:.1f}", r.outcome, r.reason, r.interpreter,
        ])
    return out


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: str) -> str:
    """A field a spreadsheet will not run: one that begins like a formula gets a leading
    ``'`` (OWASP's CSV injection advice; PROTOCOL.md section 13)."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def to_csv(table: list[list[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerows([cell(v) for v in row] for row in table)
    return buf.getvalue()


async def calls_csv(redis: RedisClient, keys: Keys, *, first: date, last: date,
                    tz: ZoneInfo, catalogue: dict[str, Language]) -> str:
    """Read the events covering the range and build the CSV."""
    start = day_start_ms(first, tz) - int(LOOKBACK.total_seconds() * 1000)
    end = day_start_ms(last + timedelta(days=1), tz) + 1
    ledger = Ledger()
    cursor = str(start)
    while True:
        batch = await redis.xrange(keys.events, min=cursor, max=str(end), count=5000)
        ledger.fold_all(batch)
        if len(batch) < 5000:
            break
        cursor = "(" + batch[-1][0]
    return to_csv(rows(ledger.records.values(), first=first, last=last, tz=tz,
                       catalogue=catalogue))
