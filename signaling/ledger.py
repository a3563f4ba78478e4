"""Call records folded from the events stream: pure, no I/O.

A call leaves the queue once, at its first answer or at its end if it was
never answered; that exit decides its outcome for the day's statistics
(PROTOCOL.md section 8). A transferred call was answered, so it counts once
as answered; its later queue time is not counted again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from tsunagu.languages import TEST_LANGUAGE


@dataclass(slots=True)
class CallRecord:
    """What the events say about one call."""

    call_id: str
    language: str = ""
    ward: str = ""
    counter: str = ""
    kiosk: str = ""
    enqueued_ms: int = 0
    answered_ms: int | None = None
    interpreter: str = ""
    ended_ms: int | None = None
    outcome: str = ""
    reason: str = ""
    exit_ms: int | None = None
    exit_outcome: str = ""
    talk_ms: int = 0
    segment_ms: int | None = None  # when the current interpreter answered
    offered_ms: int | None = None  # when the latest offer began to ring
    # Kept in the finished-call record (signaling/records.py, PROTOCOL.md section 15).
    modality: str = ""
    procedure: str = ""
    priority: str = ""
    transferred_to: str = ""  # the language of the last transfer, if any
    rating: int | None = None  # 1-5 from call.rate; None when not rated

    @property
    def wait_s(self) -> float | None:
        """Seconds from entering the queue to leaving it (answer or end)."""
        return None if self.exit_ms is None else (self.exit_ms - self.enqueued_ms) / 1000


@dataclass(slots=True)
class Ledger:
    """Folds events into call records; keeps recent ones only."""

    records: dict[str, CallRecord] = field(default_factory=dict)
    last_id: str = "0-0"
    recent_talks_ms: list[int] = field(default_factory=list)  # newest last, at most 20
    # When each language's recent calls were answered (newest last, at most 30), and how long
    # the last 20 answered offers rang: what the wait estimate measures its rates on.
    recent_answers: dict[str, list[int]] = field(default_factory=dict)
    recent_rings_ms: list[int] = field(default_factory=list)

    def fold(self, event_id: str, fields: Mapping[str, str]) -> None:
        """Apply one event (idempotent per event id: older ids are ignored)."""
        if _id_tuple(event_id) <= _id_tuple(self.last_id):
            return
        self.last_id = event_id
        ev, call_id = fields.get("ev"), fields.get("call")
        if not call_id or ev not in _FOLDS:
            return
        at = int(fields.get("at", event_id.split("-")[0]))
        rec = self.records.get(call_id)
        if rec is None:
            if ev != "enqueued":
                return  # the call began before the window we loaded (or is a test call)
            if fields.get("lang") == TEST_LANGUAGE:
                return  # test calls never count: no record, so no stats, CSV or report

            rec = self.records[call_id] = CallRecord(call_id)
        if ev == "answered" and rec.offered_ms is not None:
            self.recent_rings_ms = [*self.recent_rings_ms[-19:], max(0, at - rec.offered_ms)]
        _FOLDS[ev](rec, at, fields)
        if ev == "answered":
            times = self.recent_answers.setdefault(rec.language, [])
            times[:] = [*times[-29:], at]
        elif ev == "ended" and rec.talk_ms:
            self.recent_talks_ms = [*self.recent_talks_ms[-19:], rec.talk_ms]

    def fold_all(self, entries: Iterable[tuple[str, Mapping[str, str]]]) -> None:
        for event_id, fields in entries:
            self.fold(event_id, fields)

    def forget_before(self, ms: int) -> None:
        """Drop records of calls that ended before ``ms``."""
        self.records = {k: r for k, r in self.records.items()
                        if r.ended_ms is None or r.ended_ms >= ms}

    def recent_handle_s(self, default: float) -> float:
        """Mean talk time of the last 20 finished answered calls."""
        talks = self.recent_talks_ms
        return sum(talks) / 1000 / len(talks) if talks else default


def event_order(event_id: str) -> tuple[int, int]:
    """A stream entry id as a sortable (ms, sequence) pair."""
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


_id_tuple = event_order


def _enqueued(rec: CallRecord, at: int, f: Mapping[str, str]) -> None:
    rec.language, rec.ward, rec.counter = f.get("lang", ""), f.get("ward", ""), f.get("counter", "")
    rec.kiosk, rec.enqueued_ms = f.get("kiosk", ""), at
    rec.priority, rec.procedure = f.get("prio", ""), f.get("proc", "")


def _offered(rec: CallRecord, at: int, f: Mapping[str, str]) -> None:
    rec.offered_ms = at


def _answered(rec: CallRecord, at: int, f: Mapping[str, str]) -> None:
    rec.interpreter = f.get("interp", "")
    if rec.answered_ms is None:
        rec.answered_ms = at
    if rec.exit_ms is None:
        rec.exit_ms, rec.exit_outcome = at, "answered"
    rec.segment_ms = at


def _close_segment(rec: CallRecord, at: int) -> None:
    if rec.segment_ms is not None:
        rec.talk_ms += at - rec.segment_ms
        rec.segment_ms = None


def _transferred(rec: CallRecord, at: int, f: Mapping[str, str]) -> None:
    _close_segment(rec, at)
    rec.transferred_to = f.get("to", "")


def _ended(rec: CallRecord, at: int, f: Mapping[str, str]) -> None:
    _close_segment(rec, at)
    rec.ended_ms, rec.outcome, rec.reason = at, f.get("outcome", ""), f.get("reason", "")
    if rec.exit_ms is None:
        rec.exit_ms, rec.exit_outcome = at, rec.outcome


_FOLDS = {"enqueued": _enqueued, "offered": _offered, "answered": _answered,
          "transferred": _transferred, "ended": _ended}


def local_date(ms: int, tz: ZoneInfo) -> date:
    """The calendar date of an epoch-ms instant in the deployment's time zone."""
    return datetime.fromtimestamp(ms / 1000, tz).date()


def summarise(records: Iterable[CallRecord], *, day: date, tz: ZoneInfo,
              service_level_s: float) -> dict[str, object]:
    """Today's numbers (PROTOCOL.md section 8 ``today``), overall and by language."""
    exits = [r for r in records if r.exit_ms is not None and local_date(r.exit_ms, tz) == day]
    summary = _counts(exits, service_level_s)
    by_language = {}
    for code in sorted({r.language for r in exits}):
        by_language[code] = _counts([r for r in exits if r.language == code], service_level_s)
    summary["by_language"] = by_language
    summary["waits"] = sorted([r.exit_ms, round(r.wait_s or 0, 1)] for r in exits
                              if r.exit_outcome == "answered")
    return summary


def _counts(exits: list[CallRecord], service_level_s: float) -> dict[str, object]:
    answered = [r for r in exits if r.exit_outcome == "answered"]
    abandoned = sum(1 for r in exits if r.exit_outcome == "abandoned")
    failed = len(exits) - len(answered) - abandoned
    offered = len(exits)
    within = sum(1 for r in answered if (r.wait_s or 0) <= service_level_s)
    return {
        "offered": offered, "answered": len(answered), "abandoned": abandoned, "failed": failed,
        "service_level_s": service_level_s,
        "service_level_pct": round(100 * within / offered, 1) if offered else None,
        "asa_s": round(sum(r.wait_s or 0 for r in answered) / len(answered), 1)
        if answered else None,
        "abandon_rate_pct": round(100 * abandoned / offered, 1) if offered else None,
    }


# The state each call event leaves its call in (None: read from the event's own fields).
_CALL_EVENT_STATE: dict[str, str | None] = {
    "enqueued": "queued", "offered": "offered", "declined": "queued",
    "offer_timeout": "queued", "withdrawn": "queued", "answered": "connecting",
    "media": None, "transferred": "queued", "ended": None,
}


def replay_changes(events: Iterable[tuple[str, Mapping[str, str]]]
                   ) -> tuple[list[tuple[str, str | None, str]], list[tuple[str, str, str]]]:
    """The call and interpreter state changes an events stream records, in order:
    ``[(call_id, old, new)]`` (old None for a new call) and ``[(interp_id, old, new)]``.

    A call's old state is the one its previous event left it in, so a script that skipped a
    step, or wrote an event for a call in another state than it said, shows as an illegal
    change (the ``ended`` event names the state it ended from)."""
    calls: dict[str, str] = {}
    call_changes: list[tuple[str, str | None, str]] = []
    interp_changes: list[tuple[str, str, str]] = []
    for _event_id, f in events:
        ev = f.get("ev", "")
        if ev == "presence":
            interp_changes.append((f.get("interp", ""), f.get("from", ""), f.get("to", "")))
            continue
        if ev not in _CALL_EVENT_STATE:
            continue
        call_id = f.get("call", "")
        new = _CALL_EVENT_STATE[ev]
        if ev == "media":
            new = f.get("state", "")
        elif ev == "ended":
            new = "ended" if f.get("outcome") == "answered" else f.get("outcome", "")
        old = calls.get(call_id)
        if ev == "enqueued" and old is not None:
            old = f"{old}|enqueued again"
        if ev == "ended" and old is not None and f.get("from", old) != old:
            old = f"{old}|{f['from']}"
        assert new is not None
        call_changes.append((call_id, old, new))
        calls[call_id] = new
    return call_changes, interp_changes
