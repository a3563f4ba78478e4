"""The city's CSV: one row per finished call, no conversation content (PROTOCOL.md sections 11
and 15). Read from the finished-call records (``signaling.records``), kept by time; the ends
the record writers have not reached yet are folded from the events stream, so the CSV always
agrees with ``/api/stats``."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from signaling.ledger import CallRecord, Ledger, event_order, local_date
from signaling.records import load_records
from tsunagu.languages import TEST_LANGUAGE, Language
from tsunagu.redis_keys import Keys
from tsunagu.store import RedisClient

HEADER = ["call_id", "ward", "counter", "language", "modality", "enqueued", "answered", "ended",
          "wait_s", "talk_s", "outcome", "end_reason", "interpreter_id",
          # version 1.1 (section 15): after the existing columns
          "procedure", "priority", "rating", "transferred_to"]
# Calls are read from this long before the range, so a call that ends in it has its start.
LOOKBACK = timedelta(days=2)
PAGE = 5000


def iso(ms: int | None, tz: ZoneInfo) -> str:
    """ISO 8601 with the zone's offset, to the second."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz).isoformat(timespec="seconds")


def day_start_ms(day: date, tz: ZoneInfo) -> int:
    return int(datetime.combine(day, time.min, tz).timestamp() * 1000)


def _order(r: CallRecord) -> tuple[int, str]:
    # By the second of the end (what the CSV shows), then call id: an exported and imported
    # record, whose times are whole seconds, sorts where it did.
    return ((r.ended_ms or 0) // 1000, r.call_id)


def rows(records: Iterable[CallRecord], *, first: date, last: date, tz: ZoneInfo,
         catalogue: dict[str, Language]) -> list[list[str]]:
    """CSV rows of the calls that ended between ``first`` and ``last`` (inclusive)."""
    out = []
    for r in sorted(records, key=_order):
        if r.ended_ms is None or not first <= local_date(r.ended_ms, tz) <= last:
            continue
        lang = catalogue.get(r.language)
        out.append([
            r.call_id, r.ward, r.counter, r.language,
            r.modality or (lang.modality if lang else ""),
            iso(r.enqueued_ms, tz), iso(r.answered_ms, tz), iso(r.ended_ms, tz),
            f"{r.wait_s:.1f}" if r.wait_s is not None else "",
            f"{r.talk_ms / 1000:.1f}", r.outcome, r.reason, r.interpreter,
            r.procedure, r.priority, "" if r.rating is None else str(r.rating), r.transferred_to,
        ])
    return out


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: str) -> str:
    """A field a spreadsheet will not run: one that begins like a formula gets a leading
    ``'`` (OWASP's CSV injection advice; PROTOCOL.md section 13)."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def uncell(value: str) -> str:
    """The field ``cell`` was given (for reading a CSV back)."""
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_STARTS) else value


def to_csv(table: list[list[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerows([cell(v) for v in row] for row in table)
    return buf.getvalue()


async def unrecorded(redis: RedisClient, keys: Keys, *, first: date, last: date,
                     tz: ZoneInfo) -> list[CallRecord]:
    """Calls whose end is in the events after the records cursor (a writer is a moment behind,
    or no node runs): folded here as the writer will fold them. Empty when the range ends
    before the cursor."""
    cursor: str | None = await redis.get(keys.records_upto)
    cursor_ms = int(cursor.partition("-")[0]) if cursor else 0
    end = day_start_ms(last + timedelta(days=1), tz)
    if cursor and end <= cursor_ms:
        return []
    ledger, after = Ledger(), []
    pos = str(max(cursor_ms, day_start_ms(first, tz)) - int(LOOKBACK.total_seconds() * 1000))
    while True:
        batch = await redis.xrange(keys.events, min=pos, max=str(end + 1), count=PAGE)
        ledger.fold_all(batch)
        after += [f.get("call", "") for i, f in batch if f.get("ev") == "ended"
                  and (not cursor or event_order(i) > event_order(cursor))]
        if len(batch) < PAGE:
            break
        pos = "(" + batch[-1][0]
    found = (ledger.records.get(c) for c in after)
    return [r for r in found if r is not None and r.language != TEST_LANGUAGE]


async def finished_calls(redis: RedisClient, keys: Keys, *, first: date, last: date,
                         tz: ZoneInfo) -> list[CallRecord]:
    """Every finished real call that ended on local dates ``first``..``last``: the records,
    and the ends not recorded yet (a record, which may hold a rating, wins)."""
    stored = await load_records(redis, keys, first=first, last=last, tz=tz)
    have = {r.call_id for r in stored}
    tail = await unrecorded(redis, keys, first=first, last=last, tz=tz)
    return stored + [r for r in tail if r.call_id not in have]


async def calls_csv(redis: RedisClient, keys: Keys, *, first: date, last: date,
                    tz: ZoneInfo, catalogue: dict[str, Language]) -> str:
    """The CSV of the calls that ended on local dates ``first``..``last``."""
    records = await finished_calls(redis, keys, first=first, last=last, tz=tz)
    return to_csv(rows(records, first=first, last=last, tz=tz, catalogue=catalogue))
