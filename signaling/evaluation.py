"""The month's evaluation figures from finished-call records: pure, no I/O (docs/report.md).

A call counts in the month its queue exit falls in, exactly as ``/api/stats`` counts it on
that day (``ledger.summarise``), and with the same definitions (``ledger._counts``): offered
is every queue exit, service level is the share of offered calls answered within the service
level seconds, mean wait is the mean time to answer of answered calls. Hours are the local
hour the call arrived in. Calls of the test language (section 14) never count.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from signaling import erlang
from signaling.ledger import CallRecord, _counts, local_date

TEST_LANGUAGE = "test"
# The wait distribution's bucket edges in seconds (the last bucket is open).
WAIT_EDGES = (0, 10, 20, 30, 60, 120, 300)
EQUAL_ACCESS_GAP_POINTS = 10.0
CUTS = ("language", "modality", "ward", "counter", "procedure", "hour")

Counts = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Month:
    """A calendar month and the settings its report is figured with."""

    year: int
    month: int
    tz: ZoneInfo
    service_level_s: float = 30.0
    goal_pct: float = 80.0
    wrapup_s: float = 15.0

    @classmethod
    def parse(cls, text: str, **kw: Any) -> Month:
        """``YYYY-MM``; ValueError otherwise."""
        year, sep, month = text.partition("-")
        if not sep or len(year) != 4 or len(month) != 2 or not (year + month).isdigit():
            raise ValueError("month must be YYYY-MM")
        if not 1 <= int(month) <= 12 or int(year) < 1970:
            raise ValueError("month must be YYYY-MM")
        return cls(int(year), int(month), **kw)

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last(self) -> date:
        nxt = date(self.year + self.month // 12, self.month % 12 + 1, 1)
        return nxt - timedelta(days=1)

    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


@dataclass(slots=True)
class Rating:
    count: int = 0
    total: int = 0
    dist: list[int] = field(default_factory=lambda: [0] * 5)
    answered: int = 0

    @property
    def mean(self) -> float | None:
        return round(self.total / self.count, 2) if self.count else None


@dataclass(frozen=True, slots=True)
class EqualAccess:
    """Sign-language beside spoken-language calls in one ward (``ward`` "" for all wards)."""

    ward: str
    sign: Counts
    spoken: Counts
    gap_points: float | None  # spoken service level minus sign service level
    wait_gap_s: float | None  # sign mean wait minus spoken mean wait
    sentence_ja: str
    sentence_en: str


@dataclass(frozen=True, slots=True)
class Staffing:
    """Erlang C for one language in one hour of the day."""

    language: str
    hour: int
    calls: int
    open_days: int
    per_hour: float
    handle_s: float | None
    erlangs: float
    needed: int | None
    service_level_pct: float | None  # what ``needed`` interpreters would reach
    active: float  # mean distinct interpreters who talked in this hour, per open day


@dataclass(slots=True)
class Evaluation:
    month: Month
    totals: Counts
    cuts: dict[str, list[tuple[str, Counts]]]
    waits: list[tuple[str, int, int]]  # bucket label, answered, abandoned
    equal_access: list[EqualAccess]
    occupancy: dict[str, dict[int, float]]  # language -> hour -> 0-100
    ratings: dict[str, list[tuple[str, Rating]]]  # "language"/"ward" -> rows
    staffing: list[Staffing]
    hours: list[int]
    open_days: int


def real_calls(records: Iterable[CallRecord], month: Month) -> list[CallRecord]:
    """The queue exits of the month, test calls left out."""
    return [r for r in records if r.exit_ms is not None and r.language != TEST_LANGUAGE
            and month.first <= local_date(r.exit_ms, month.tz) <= month.last]


def modality_of(r: CallRecord, modalities: dict[str, str]) -> str:
    return r.modality or modalities.get(r.language, "")


def hour_of(ms: int, tz: ZoneInfo) -> int:
    return datetime.fromtimestamp(ms / 1000, tz).hour


def evaluate(records: Iterable[CallRecord], month: Month,
             modalities: dict[str, str]) -> Evaluation:
    """Every figure of the month's report; ``modalities`` maps language code -> sign/spoken
    for records written before the modality was kept."""
    exits = real_calls(records, month)
    sl = month.service_level_s
    keys: dict[str, Callable[[CallRecord], str]] = {
        "language": lambda r: r.language,
        "modality": lambda r: modality_of(r, modalities),
        "ward": lambda r: r.ward,
        "counter": lambda r: f"{r.ward} {r.counter}".strip(),
        "procedure": lambda r: r.procedure,
        "hour": lambda r: f"{hour_of(r.enqueued_ms, month.tz):02d}",
    }
    cuts = {name: [(label, _counts(group, sl)) for label, group in _group(exits, key)]
            for name, key in keys.items()}
    hours = sorted({hour_of(r.enqueued_ms, month.tz) for r in exits})
    open_days = len({local_date(r.enqueued_ms, month.tz) for r in exits})
    occupancy, active = _occupancy(exits, month.tz, open_days)
    return Evaluation(
        month=month, totals=_counts(exits, sl), cuts=cuts, waits=wait_histogram(exits),
        equal_access=equal_access(exits, modalities, sl), occupancy=occupancy,
        ratings={"language": _ratings(exits, lambda r: r.language),
                 "ward": _ratings(exits, lambda r: r.ward)},
        staffing=staffing(exits, month, hours, open_days, active), hours=hours,
        open_days=open_days)


def _group(exits: list[CallRecord], key: Callable[[CallRecord], str]
           ) -> list[tuple[str, list[CallRecord]]]:
    groups: dict[str, list[CallRecord]] = defaultdict(list)
    for r in exits:
        groups[key(r)].append(r)
    return sorted(groups.items(), key=lambda item: natural(item[0]))


def natural(label: str) -> list[tuple[int, int | str]]:
    """Sort key putting "窓口 2" before "窓口 10"."""
    return [(0, int(part)) if part.isdigit() else (1, part)
            for part in re.split(r"(\d+)", label) if part]


def bucket_labels() -> list[str]:
    edges = WAIT_EDGES
    return [f"{a}-{b}" for a, b in zip(edges, edges[1:], strict=False)] + [f"{edges[-1]}+"]


def wait_histogram(exits: list[CallRecord]) -> list[tuple[str, int, int]]:
    """How long answered calls waited for their answer and abandoned calls waited before
    giving up, in ``WAIT_EDGES`` buckets; a wait on an edge goes in the bucket below it, as
    the service level counts a wait of exactly its seconds as within."""
    labels = bucket_labels()
    answered, abandoned = [0] * len(labels), [0] * len(labels)
    for r in exits:
        wait = r.wait_s or 0.0
        i = sum(1 for edge in WAIT_EDGES[1:] if wait > edge)
        if r.exit_outcome == "answered":
            answered[i] += 1
        elif r.exit_outcome == "abandoned":
            abandoned[i] += 1
    return list(zip(labels, answered, abandoned, strict=True))


def equal_access(exits: list[CallRecord], modalities: dict[str, str],
                 sl: float) -> list[EqualAccess]:
    """All wards, then each ward: sign beside spoken, with the gap in words past 10 points."""
    out = [_compare("", exits, modalities, sl)]
    out += [_compare(ward, group, modalities, sl) for ward, group in
            _group(exits, lambda r: r.ward)]
    return out


def _compare(ward: str, calls: list[CallRecord], modalities: dict[str, str],
             sl: float) -> EqualAccess:
    sign: Counts = _counts([r for r in calls if modality_of(r, modalities) == "sign"], sl)
    spoken: Counts = _counts([r for r in calls if modality_of(r, modalities) == "spoken"], sl)
    gap = wait_gap = None
    if sign["service_level_pct"] is not None and spoken["service_level_pct"] is not None:
        gap = round(spoken["service_level_pct"] - sign["service_level_pct"], 1)
    if sign["asa_s"] is not None and spoken["asa_s"] is not None:
        wait_gap = round(sign["asa_s"] - spoken["asa_s"], 1)
    ja = en = ""
    if gap is not None and abs(gap) > EQUAL_ACCESS_GAP_POINTS:
        where_ja, where_en = (ward or "全区"), (ward or "All wards")
        lower = gap > 0
        ja = (f"{where_ja}: 手話の通話で{sl:g}秒以内に応答した割合は"
              f"{sign['service_level_pct']:.1f}%で、音声言語の{spoken['service_level_pct']:.1f}%"
              f"より{abs(gap):.1f}ポイント{'低い' if lower else '高い'}。")
        en = (f"{where_en}: sign-language calls were answered within {sl:g} s "
              f"{sign['service_level_pct']:.1f}% of the time, {abs(gap):.1f} points "
              f"{'below' if lower else 'above'} spoken-language calls "
              f"({spoken['service_level_pct']:.1f}%).")
        if wait_gap is not None:
            ja += f"平均待ち時間は手話{sign['asa_s']:.1f}秒、音声言語{spoken['asa_s']:.1f}秒。"
            en += (f" Mean wait {sign['asa_s']:.1f} s for sign against "
                   f"{spoken['asa_s']:.1f} s for spoken.")
    return EqualAccess(ward, sign, spoken, gap, wait_gap, ja, en)


def _ratings(exits: list[CallRecord], key: Callable[[CallRecord], str]
             ) -> list[tuple[str, Rating]]:
    out = []
    for label, group in _group([r for r in exits if r.exit_outcome == "answered"], key):
        rating = Rating(answered=len(group))
        for r in group:
            if r.rating is not None and 1 <= r.rating <= 5:
                rating.count += 1
                rating.total += r.rating
                rating.dist[r.rating - 1] += 1
        out.append((label, rating))
    return out


def talk_by_hour(r: CallRecord, tz: ZoneInfo) -> list[tuple[date, int, float]]:
    """The call's talk time split over the local clock hours it fell in, from its first
    answer: ``[(date, hour, seconds)]``."""
    if r.answered_ms is None or r.talk_ms <= 0:
        return []
    start, end = r.answered_ms, r.answered_ms + r.talk_ms
    out = []
    while start < end:
        local = datetime.fromtimestamp(start / 1000, tz)
        top = local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        stop = min(end, int(top.timestamp() * 1000))
        out.append((local.date(), local.hour, (stop - start) / 1000))
        start = stop
    return out


def _occupancy(exits: list[CallRecord], tz: ZoneInfo, open_days: int
               ) -> tuple[dict[str, dict[int, float]], dict[tuple[str, int], float]]:
    """Occupancy per language and hour: the talk time in that hour of the day over the hours
    of the interpreters who talked in it (each (day, hour) counts each such interpreter once,
    for 3600 s). Signed-in time is not recorded, so an interpreter who took no call in an hour
    is not counted: this is the occupancy of the interpreters who worked that hour."""
    talk: dict[tuple[str, date, int], float] = defaultdict(float)
    who: dict[tuple[str, date, int], set[str]] = defaultdict(set)
    for r in exits:
        for day, hour, seconds in talk_by_hour(r, tz):
            talk[r.language, day, hour] += seconds
            who[r.language, day, hour].add(r.interpreter)
    sums: dict[tuple[str, int], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for (lang, day, hour), seconds in talk.items():
        sums[lang, hour][0] += seconds
        sums[lang, hour][1] += len(who[lang, day, hour]) * 3600
    occupancy: dict[str, dict[int, float]] = defaultdict(dict)
    active: dict[tuple[str, int], float] = {}
    for (lang, hour), (seconds, capacity) in sorted(sums.items()):
        occupancy[lang][hour] = round(100 * seconds / capacity, 1)
        active[lang, hour] = capacity / 3600 / open_days if open_days else 0.0
    return dict(occupancy), active


def staffing(exits: list[CallRecord], month: Month, hours: list[int], open_days: int,
             active: dict[tuple[str, int], float]) -> list[Staffing]:
    """Erlang C per language and hour: arrivals per hour = the calls that arrived in that hour
    of the day over the days the service took calls; handling time = the language's mean
    talk time this month plus the wrap-up time."""
    out = []
    goal = month.goal_pct / 100
    for lang, calls in _group(exits, lambda r: r.language):
        talks = [r.talk_ms / 1000 for r in calls if r.exit_outcome == "answered"]
        handle = sum(talks) / len(talks) + month.wrapup_s if talks else None
        for hour in hours:
            n = sum(1 for r in calls if hour_of(r.enqueued_ms, month.tz) == hour)
            if not n:
                continue
            per_hour = n / open_days
            erlangs = per_hour * handle / 3600 if handle else 0.0
            needed = sl = None
            if handle:
                needed = erlang.agents_needed(erlangs, month.service_level_s, handle, goal)
                sl = round(100 * erlang.service_level(needed, erlangs, month.service_level_s,
                                                      handle), 1)
            out.append(Staffing(lang, hour, n, open_days, round(per_hour, 2),
                                round(handle, 1) if handle else None, round(erlangs, 3),
                                needed, sl, round(active.get((lang, hour), 0.0), 2)))
    return out
