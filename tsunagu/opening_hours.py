"""Opening hours per ward, and the holidays when every counter is closed (docs/fleet.md).

Pure: parsing and "is it open at this moment" only, no I/O beyond what the caller hands in.
The fleet rates a kiosk that is offline during its ward's opening hours red, and amber
outside them (PROTOCOL.md section 14).

A schedule is written as comma-separated rules ``DAYS HH:MM-HH:MM``, ``DAYS`` one day
(``Mon``) or a range (``Mon-Fri``, ``Fri-Mon`` wraps), for example
``Mon-Fri 08:45-17:30, Sat 09:00-12:00``. The deployment's default is
``TSUNAGU_OPENING_HOURS`` (``Mon-Fri 08:45-17:30`` when unset), each ward's own schedule
is in ``TSUNAGU_WARD_OPENING_HOURS`` (JSON ``{"ward": "schedule"}``; ``""`` or ``"closed"``
for a ward with no opening hours), and ``TSUNAGU_HOLIDAYS`` (comma-separated
``YYYY-MM-DD``) plus ``TSUNAGU_HOLIDAYS_FILE`` (one date a line, ``#`` comments) list the
days every ward is closed. Times are in the deployment's time zone (``TSUNAGU_TIMEZONE``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_SCHEDULE = "Mon-Fri 08:45-17:30"
_RULE = re.compile(r"^\s*([A-Za-z]{3})(?:\s*-\s*([A-Za-z]{3}))?\s+"
                   r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
CLOSED = ("", "closed")


class OpeningHoursError(ValueError):
    """A schedule, ward table or holiday list that cannot be read (the message says where)."""


@dataclass(frozen=True, slots=True)
class Rule:
    """Open on ``days`` (0 = Monday) from ``opens`` until just before ``closes``."""

    days: frozenset[int]
    opens: time
    closes: time

    def covers(self, local: datetime) -> bool:
        return local.weekday() in self.days and self.opens <= local.time() < self.closes

    def __str__(self) -> str:
        return (f"{','.join(DAYS[d].title() for d in sorted(self.days))} "
                f"{self.opens:%H:%M}-{self.closes:%H:%M}")


def _day(name: str, text: str) -> int:
    try:
        return DAYS.index(name.lower())
    except ValueError:
        raise OpeningHoursError(f"{text!r}: {name!r} is not a day (Mon, Tue, ... Sun)") from None


def _clock(hours: str, minutes: str, text: str) -> time:
    h, m = int(hours), int(minutes)
    if h == 24 and m == 0:
        return time.max
    if not (0 <= h < 24 and 0 <= m < 60):
        raise OpeningHoursError(f"{text!r}: {hours}:{minutes} is not a time of day")
    return time(h, m)


def parse_schedule(text: str) -> tuple[Rule, ...]:
    """``Mon-Fri 08:45-17:30, Sat 09:00-12:00`` as rules; ``""``/``closed``: never open."""
    if text.strip().lower() in CLOSED:
        return ()
    rules = []
    for part in text.split(","):
        match = _RULE.match(part)
        if match is None:
            raise OpeningHoursError(f"{part.strip()!r} is not DAYS HH:MM-HH:MM "
                                    "(for example Mon-Fri 08:45-17:30)")
        first_name, last_name, oh, om, ch, cm = match.groups()
        first = _day(first_name, part.strip())
        last = _day(last_name, part.strip()) if last_name else first
        days = frozenset((first + i) % 7 for i in range((last - first) % 7 + 1))
        opens, closes = _clock(oh, om, part.strip()), _clock(ch, cm, part.strip())
        if closes <= opens:
            raise OpeningHoursError(f"{part.strip()!r}: closes before it opens")
        rules.append(Rule(days, opens, closes))
    return tuple(rules)


def parse_holidays(lines: Iterable[str]) -> frozenset[date]:
    """Dates ``YYYY-MM-DD``, one per item (items may hold several, comma-separated); blank
    items and ``#`` comments are skipped."""
    out = set()
    for line in lines:
        for item in line.split("#", 1)[0].split(","):
            item = item.strip()
            if not item:
                continue
            try:
                out.add(date.fromisoformat(item))
            except ValueError:
                raise OpeningHoursError(f"holiday {item!r} is not a date YYYY-MM-DD") from None
    return frozenset(out)


def parse_ward_schedules(raw: str) -> dict[str, tuple[Rule, ...]]:
    """``TSUNAGU_WARD_OPENING_HOURS``: JSON ``{"ward": "schedule", ...}``."""
    try:
        table = json.loads(raw)
    except ValueError as exc:
        raise OpeningHoursError(f"TSUNAGU_WARD_OPENING_HOURS is not JSON: {exc}") from exc
    if not isinstance(table, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in table.items()):
        raise OpeningHoursError('TSUNAGU_WARD_OPENING_HOURS must be a JSON object '
                                '{"ward": "Mon-Fri 08:45-17:30", ...}')
    out = {}
    for ward, schedule in table.items():
        try:
            out[ward] = parse_schedule(schedule)
        except OpeningHoursError as exc:
            raise OpeningHoursError(f"ward {ward}: {exc}") from None
    return out


@dataclass(frozen=True, slots=True)
class OpeningHours:
    """The deployment's opening hours: a default schedule, per-ward ones, and holidays."""

    default: tuple[Rule, ...] = field(default_factory=lambda: parse_schedule(DEFAULT_SCHEDULE))
    wards: Mapping[str, tuple[Rule, ...]] = field(default_factory=dict)
    holidays: frozenset[date] = frozenset()
    timezone: str = "Asia/Tokyo"

    def schedule(self, ward: str) -> tuple[Rule, ...]:
        return self.wards.get(ward, self.default)

    def is_open(self, ward: str, at_ms: int) -> bool:
        """Whether the ward's counters are open at ``at_ms`` (epoch milliseconds)."""
        local = datetime.fromtimestamp(at_ms / 1000, ZoneInfo(self.timezone))
        if local.date() in self.holidays:
            return False
        return any(rule.covers(local) for rule in self.schedule(ward))

    def describe(self, ward: str) -> str:
        """The ward's schedule written back (``closed`` for none)."""
        return ", ".join(str(r) for r in self.schedule(ward)) or "closed"

    @classmethod
    def from_env(cls, env: Mapping[str, str], timezone: str) -> OpeningHours:
        """From ``TSUNAGU_OPENING_HOURS``, ``TSUNAGU_WARD_OPENING_HOURS``,
        ``TSUNAGU_HOLIDAYS`` and ``TSUNAGU_HOLIDAYS_FILE``; OpeningHoursError if malformed."""
        default = parse_schedule(env.get("TSUNAGU_OPENING_HOURS") or DEFAULT_SCHEDULE)
        wards = parse_ward_schedules(env["TSUNAGU_WARD_OPENING_HOURS"]) \
            if env.get("TSUNAGU_WARD_OPENING_HOURS") else {}
        holidays = parse_holidays([env.get("TSUNAGU_HOLIDAYS", "")])
        path = env.get("TSUNAGU_HOLIDAYS_FILE")
        if path:
            try:
                with open(path, encoding="utf-8") as f:
                    holidays |= parse_holidays(f)
            except OSError as exc:
                raise OpeningHoursError(f"TSUNAGU_HOLIDAYS_FILE {path}: {exc.strerror}") from None
        try:
            ZoneInfo(timezone)
        except (KeyError, ValueError) as exc:
            raise OpeningHoursError(f"unknown time zone {timezone!r}") from exc
        return cls(default=default, wards=wards, holidays=holidays, timezone=timezone)
