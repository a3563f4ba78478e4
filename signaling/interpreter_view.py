"""What an interpreter's console is told about the queues: pure, no I/O.

The ``queue`` message (docs/protocol.md): how many calls wait for each of the
interpreter's languages, the oldest wait, and the interpreter's own calls today, built
from the supervisor's ``stats`` snapshot and the day's call records. It carries no names
of residents and nothing that was said; other interpreters are not listed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from signaling.ledger import CallRecord, local_date


def queue_message(snapshot: dict[str, Any], records: Iterable[CallRecord], *,
                  interpreter: str, languages: Iterable[str], day: date,
                  tz: ZoneInfo) -> dict[str, Any]:
    """The ``queue`` payload for one interpreter (without ``type``)."""
    mine = set(languages)
    rows = [r for r in snapshot.get("languages", []) if r.get("code") in mine]
    return {
        "at_ms": snapshot.get("at_ms"),
        "languages": {r["code"]: int(r.get("waiting") or 0) for r in rows},
        "oldest_wait_s": {r["code"]: r.get("oldest_wait_s") or 0 for r in rows},
        "today_calls": own_calls_today(records, interpreter=interpreter, day=day, tz=tz),
    }


def own_calls_today(records: Iterable[CallRecord], *, interpreter: str, day: date,
                    tz: ZoneInfo) -> list[dict[str, Any]]:
    """The calls this interpreter answered today, oldest first."""
    calls = [r for r in records if r.interpreter == interpreter and r.answered_ms is not None
             and local_date(r.answered_ms, tz) == day]
    calls.sort(key=lambda r: r.answered_ms or 0)
    return [{
        "call_id": r.call_id, "language": r.language, "ward": r.ward, "counter": r.counter,
        "answered_ms": r.answered_ms, "ended_ms": r.ended_ms,
        "talk_s": round(r.talk_ms / 1000, 1) if r.ended_ms is not None else None,
        "reason": r.reason or None,
    } for r in calls]
