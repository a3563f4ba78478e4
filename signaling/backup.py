"""``tsunagu admin export-records`` and ``import-records``: the finished-call records as the
CSV of PROTOCOL.md section 11, for backup and restore. The CSV is the whole of what a record
keeps but the kiosk id (ward and counter name the tablet), with times to the second: an
exported, deleted and imported range exports to the same bytes again."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from signaling.ledger import CallRecord
from signaling.records import write_records
from signaling.report import HEADER, finished_calls, rows, to_csv, uncell
from tsunagu.languages import Language
from tsunagu.redis_keys import Keys
from tsunagu.store import RedisClient

# The columns a CSV must have (a version 1.0 CSV has only these; the rest read as empty).
REQUIRED = HEADER[:13]


class BackupError(ValueError):
    """The CSV cannot be read back; the message says where."""


# Exported a month at a time: five years of a busy city's records never sit in memory at once.
CHUNK_DAYS = 31


def chunks(first: date, last: date, days: int = CHUNK_DAYS) -> list[tuple[date, date]]:
    """``first``..``last`` cut into consecutive ranges of at most ``days`` days."""
    out, start = [], first
    while start <= last:
        end = min(last, start + timedelta(days=days - 1))
        out.append((start, end))
        start = end + timedelta(days=1)
    return out


async def export_records(redis: RedisClient, keys: Keys, *, first: date, last: date,
                         tz: ZoneInfo, catalogue: dict[str, Language]
                         ) -> AsyncIterator[tuple[bytes, int]]:
    """The CSV of the calls that ended on local dates ``first``..``last`` (inclusive), in
    pieces with their number of records: the header, then each month's rows. Rows sort by
    their end, so the pieces joined are the CSV of the whole range (``calls_csv``) byte for
    byte."""
    header = to_csv([]).encode()
    yield header, 0
    for start, end in chunks(first, last):
        records = await finished_calls(redis, keys, first=start, last=end, tz=tz)
        table = rows(records, first=start, last=end, tz=tz, catalogue=catalogue)
        if table:
            yield to_csv(table).encode()[len(header):], len(table)


def _ms(text: str) -> int | None:
    return None if not text else int(datetime.fromisoformat(text).timestamp() * 1000)


def from_row(row: dict[str, str]) -> CallRecord:
    """One CSV row back as the record it was written from (times to the second)."""
    v = {name: uncell(row.get(name) or "") for name in HEADER}
    enqueued, ended = _ms(v["enqueued"]), _ms(v["ended"])
    if not v["call_id"] or enqueued is None or ended is None:
        raise BackupError("a row needs call_id, enqueued and ended")
    answered = _ms(v["answered"])
    wait_ms = round(float(v["wait_s"]) * 1000) if v["wait_s"] else None
    rating = int(v["rating"]) if v["rating"] else None
    if rating is not None and not 1 <= rating <= 5:
        raise BackupError(f"rating {rating} is not 1-5")
    return CallRecord(
        v["call_id"], language=v["language"], ward=v["ward"], counter=v["counter"],
        enqueued_ms=enqueued, answered_ms=answered, interpreter=v["interpreter_id"],
        ended_ms=ended, outcome=v["outcome"], reason=v["end_reason"],
        exit_ms=None if wait_ms is None else enqueued + wait_ms,
        exit_outcome="answered" if answered is not None else v["outcome"],
        talk_ms=round(float(v["talk_s"] or 0) * 1000), modality=v["modality"],
        procedure=v["procedure"], priority=v["priority"], transferred_to=v["transferred_to"],
        rating=rating)


def parse_csv(text: str) -> list[CallRecord]:
    """The records of an exported CSV; ``BackupError`` naming the first bad line."""
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or ())]
    if missing:
        raise BackupError(f"not a calls CSV: no column {missing[0]}")
    out = []
    for row in reader:
        try:
            out.append(from_row(row))
        except (ValueError, TypeError) as exc:
            raise BackupError(f"line {reader.line_num}: {exc}") from None
    return out


async def import_records(redis: RedisClient, keys: Keys,
                         records: Iterable[CallRecord]) -> tuple[int, int]:
    """Store the records whose call ids are not stored yet; (added, skipped)."""
    items = list(records)
    added = await write_records(redis, keys, items)
    return added, len(items) - added
