"""The month's figures against a hand count of a synthetic month (bench/synthetic_month.py),
against ``/api/stats``'s own fold (``summarise``) and the CSV rows for the same days, and the
HTML's totals and equal-access sentences. Pure: no Redis, no loop."""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta

import pytest

from bench import synthetic_month as synth
from signaling.evaluation import Evaluation, Month, evaluate, talk_by_hour
from signaling.ledger import CallRecord, summarise
from signaling.report import rows as csv_rows
from signaling.report_html import render
from tests.signaling.test_erlang import textbook_needed
from tsunagu.languages import DEFAULT_CATALOGUE

TZ = synth.TZ
CATALOGUE = {lang.code: lang for lang in DEFAULT_CATALOGUE}
MODALITIES = {code: lang.modality for code, lang in CATALOGUE.items()}
MONTH = Month.parse("2026-10", tz=TZ, service_level_s=30, goal_pct=80, wrapup_s=15)


@pytest.fixture(scope="module")
def records() -> list[CallRecord]:
    return synth.generate(MONTH, seed=7)


@pytest.fixture(scope="module")
def evaluation(records: list[CallRecord]) -> Evaluation:
    return evaluate(records, MONTH, MODALITIES)


def real(records: list[CallRecord]) -> list[CallRecord]:
    """The month's real calls, by hand: every generated call leaves the queue the day it
    arrives, on a weekday of October."""
    out = []
    for r in records:
        if r.language == "test":
            continue
        left = datetime.fromtimestamp(r.exit_ms / 1000, TZ)  # type: ignore[operator]
        assert left.date().month == 10
        out.append(r)
    return out


def hand(calls: list[CallRecord]) -> dict[str, object]:
    """Offered, answered, abandoned, failed, service level and mean wait, counted here."""
    offered = len(calls)
    answered = [r for r in calls if r.outcome == "answered"]
    waits = [(r.answered_ms - r.enqueued_ms) / 1000 for r in answered]  # type: ignore[operator]
    abandoned = sum(1 for r in calls if r.outcome == "abandoned")
    return {
        "offered": offered, "answered": len(answered), "abandoned": abandoned,
        "failed": sum(1 for r in calls if r.outcome == "failed"),
        "service_level_pct": round(100 * sum(1 for w in waits if w <= 30) / offered, 1)
        if offered else None,
        "asa_s": round(sum(waits) / len(waits), 1) if waits else None,
        "abandon_rate_pct": round(100 * abandoned / offered, 1) if offered else None,
    }


def same(counts: dict[str, object], expected: dict[str, object]) -> bool:
    return all(counts[k] == v for k, v in expected.items())


def test_the_generator_draws_the_known_rates(records: list[CallRecord]) -> None:
    calls = real(records)
    days = len(synth.weekdays(MONTH))
    assert days == 22
    for lang, rates in synth.RATES.items():
        expected = sum(rates.values()) * days
        got = sum(1 for r in calls if r.language == lang)
        assert abs(got - expected) < 4 * math.sqrt(expected), (lang, got, expected)
    assert sum(1 for r in records if r.language == "test") == days * len(synth.KIOSKS)


def test_totals_and_every_cut_equal_a_hand_count(records: list[CallRecord],
                                                 evaluation: Evaluation) -> None:
    calls = real(records)
    assert same(evaluation.totals, hand(calls))
    assert evaluation.totals["offered"] == len(calls) > 900
    keys = {
        "language": lambda r: r.language,
        "modality": lambda r: synth.MODALITY[r.language],
        "ward": lambda r: r.ward,
        "counter": lambda r: f"{r.ward} {r.counter}",
        "procedure": lambda r: r.procedure,
        "hour": lambda r: datetime.fromtimestamp(r.enqueued_ms / 1000, TZ).strftime("%H"),
    }
    for cut, key in keys.items():
        groups: dict[str, list[CallRecord]] = defaultdict(list)
        for r in calls:
            groups[key(r)].append(r)
        got = dict(evaluation.cuts[cut])
        assert sorted(got) == sorted(groups), cut
        for label, group in groups.items():
            assert same(got[label], hand(group)), (cut, label)
    assert [h for h, _ in evaluation.cuts["hour"]] == [f"{h:02d}" for h in synth.HOURS]


def test_the_month_equals_stats_and_the_csv_for_the_same_days(
        records: list[CallRecord], evaluation: Evaluation) -> None:
    totals: Counter[str] = Counter()
    by_language: dict[str, Counter[str]] = defaultdict(Counter)
    day = MONTH.first
    while day <= MONTH.last:
        today = summarise([r for r in records if r.language != "test"], day=day, tz=TZ,
                          service_level_s=30)
        for k in ("offered", "answered", "abandoned", "failed"):
            totals[k] += today[k]  # type: ignore[operator]
            for code, c in today["by_language"].items():  # type: ignore[attr-defined]
                by_language[code][k] += c[k]
        day += timedelta(days=1)
    for k in ("offered", "answered", "abandoned", "failed"):
        assert evaluation.totals[k] == totals[k]
        for code, c in evaluation.cuts["language"]:
            assert c[k] == by_language[code][k]
    table = [row for row in csv_rows(records, first=MONTH.first, last=MONTH.last, tz=TZ,
                                     catalogue=CATALOGUE) if row[3] != "test"]
    outcomes = Counter(row[10] for row in table)
    assert len(table) == evaluation.totals["offered"]
    assert outcomes["answered"] == evaluation.totals["answered"]
    assert outcomes["abandoned"] == evaluation.totals["abandoned"]
    assert outcomes["failed"] == evaluation.totals["failed"]


def test_test_calls_never_count(records: list[CallRecord]) -> None:
    only_tests = [r for r in records if r.language == "test"]
    ev = evaluate(only_tests, MONTH, MODALITIES)
    assert ev.totals["offered"] == 0 and ev.staffing == [] and ev.occupancy == {}


def test_equal_access_per_ward_and_the_gap_in_words(records: list[CallRecord],
                                                    evaluation: Evaluation) -> None:
    calls = real(records)
    rows = {row.ward: row for row in evaluation.equal_access}
    assert sorted(rows) == ["", *sorted(synth.WARDS)]
    for ward, row in rows.items():
        here = [r for r in calls if not ward or r.ward == ward]
        sign = hand([r for r in here if synth.MODALITY[r.language] == "sign"])
        spoken = hand([r for r in here if synth.MODALITY[r.language] == "spoken"])
        assert same(row.sign, sign) and same(row.spoken, spoken), ward
        gap = round(spoken["service_level_pct"] - sign["service_level_pct"], 1)  # type: ignore[operator]
        assert row.gap_points == gap
        if abs(gap) > 10:
            assert f"{abs(gap):.1f}ポイント" in row.sentence_ja
            side = "below" if gap > 0 else "above"
            assert f"{abs(gap):.1f} points {side}" in row.sentence_en
            assert f"Mean wait {sign['asa_s']:.1f} s for sign against {spoken['asa_s']:.1f} s" \
                in row.sentence_en
            assert f"平均待ち時間は手話{sign['asa_s']:.1f}秒" in row.sentence_ja
        else:
            assert row.sentence_ja == row.sentence_en == ""
    # sign-language callers in 北区 wait four times as long: the gap must be called out there
    assert rows[synth.SLOW_SIGN_WARD].gap_points > 10  # type: ignore[operator]
    assert rows[synth.SLOW_SIGN_WARD].sentence_en.startswith("北区: sign-language calls")


def test_the_wait_distribution_is_a_hand_count(records: list[CallRecord],
                                               evaluation: Evaluation) -> None:
    calls = real(records)
    edges = [10, 20, 30, 60, 120, 300, math.inf]
    answered, abandoned = [0] * 7, [0] * 7
    for r in calls:
        wait = (r.exit_ms - r.enqueued_ms) / 1000  # type: ignore[operator]
        i = next(n for n, top in enumerate(edges) if wait <= top)
        if r.outcome == "answered":
            answered[i] += 1
        elif r.outcome == "abandoned":
            abandoned[i] += 1
    assert [a for _, a, _ in evaluation.waits] == answered
    assert [b for _, _, b in evaluation.waits] == abandoned
    # the service level's "within 30 s" is the first three buckets
    within = sum(answered[:3])
    assert round(100 * within / len(calls), 1) == evaluation.totals["service_level_pct"]


def test_ratings_by_language_and_ward(records: list[CallRecord],
                                      evaluation: Evaluation) -> None:
    calls = [r for r in real(records) if r.outcome == "answered"]
    for cut, key in (("language", lambda r: r.language), ("ward", lambda r: r.ward)):
        got = dict(evaluation.ratings[cut])
        for label, rating in got.items():
            group = [r for r in calls if key(r) == label]
            scores = [r.rating for r in group if r.rating is not None]
            assert rating.answered == len(group)
            assert rating.count == len(scores) > 0
            assert rating.mean == round(sum(scores) / len(scores), 2)  # type: ignore[arg-type]
            assert rating.dist == [scores.count(n) for n in range(1, 6)]


def test_occupancy_is_talk_over_the_hours_of_the_interpreters_who_talked() -> None:
    def call(cid: str, interp: str, day: int, hour: int, minute: int, talk_min: int
             ) -> CallRecord:
        at = int(datetime(2026, 10, day, hour, minute, tzinfo=TZ).timestamp() * 1000)
        return CallRecord(cid, language="jsl", enqueued_ms=at - 5000, exit_ms=at,
                          exit_outcome="answered", outcome="answered", answered_ms=at,
                          ended_ms=at + talk_min * 60_000, talk_ms=talk_min * 60_000,
                          interpreter=interp)
    calls = [call("a1", "a", 1, 10, 30, 45), call("b1", "b", 1, 10, 0, 20),
             call("a2", "a", 2, 10, 0, 30)]
    assert talk_by_hour(calls[0], TZ) == [(date(2026, 10, 1), 10, 1800.0),
                                          (date(2026, 10, 1), 11, 900.0)]
    ev = evaluate(calls, MONTH, MODALITIES)
    # 10:00: (30 + 20) + 30 minutes over 2 + 1 interpreter-hours; 11:00: 15 minutes over 1
    assert ev.occupancy["jsl"][10] == round(100 * 80 / 180, 1)
    assert ev.occupancy["jsl"][11] == 25.0
    # calls arrived at 10:00 only, but the talk ran into 11:00: the table shows both hours
    page = render(ev, catalogue=CATALOGUE, kiosks=None, generated="now")
    assert "<td class='l'>11:00</td><td>25.0 %</td>" in page


def test_staffing_is_the_textbook_erlang_c_of_the_months_rates(
        records: list[CallRecord], evaluation: Evaluation) -> None:
    calls = real(records)
    open_days = len({datetime.fromtimestamp(r.enqueued_ms / 1000, TZ).date() for r in calls})
    assert open_days == 22 == evaluation.open_days
    seen = set()
    for s in evaluation.staffing:
        mine = [r for r in calls if r.language == s.language]
        talks = [r.talk_ms / 1000 for r in mine if r.outcome == "answered"]
        aht = sum(talks) / len(talks) + 15
        n = sum(1 for r in mine
                if datetime.fromtimestamp(r.enqueued_ms / 1000, TZ).hour == s.hour)
        a = n / open_days * aht / 3600
        assert (s.calls, s.handle_s) == (n, round(aht, 1))
        assert s.erlangs == round(a, 3)
        assert s.needed == textbook_needed(a, 30, aht, 0.80), (s.language, s.hour)
        seen.add((s.language, s.hour))
    assert seen == {(lang, h) for lang in synth.RATES for h in synth.HOURS}


def test_staffing_meets_the_textbook_case_from_records() -> None:
    # 200 calls an hour on each of 2 days, each answered at once with 165 s of talk
    # (+ 15 s wrap-up = 180 s): A = 10 Erlangs, 80 % in 20 s -> 14 interpreters.
    month = Month.parse("2026-10", tz=TZ, service_level_s=20, goal_pct=80, wrapup_s=15)
    calls = []
    for day in (1, 2):
        start = int(datetime(2026, 10, day, 10, tzinfo=TZ).timestamp() * 1000)
        for n in range(200):
            at = start + n * 18_000
            calls.append(CallRecord(f"{day}-{n}", language="en", enqueued_ms=at, exit_ms=at,
                                    exit_outcome="answered", outcome="answered",
                                    answered_ms=at, ended_ms=at + 165_000, talk_ms=165_000,
                                    interpreter=f"i{n % 12}"))
    (s,) = evaluate(calls, month, MODALITIES).staffing
    assert (s.per_hour, s.handle_s, s.erlangs, s.needed) == (200, 180, 10, 14)
    assert s.service_level_pct == 88.8


def test_the_html_carries_the_totals_the_gap_and_escapes_names(
        records: list[CallRecord], evaluation: Evaluation) -> None:
    html = render(evaluation, catalogue=CATALOGUE, kiosks=None, generated="now")
    totals = dict(re.findall(r'data-total="(\w+)">(\d+)<', html))
    assert totals == {k: str(evaluation.totals[k])
                      for k in ("offered", "answered", "abandoned", "failed")}
    north = next(r for r in evaluation.equal_access if r.ward == synth.SLOW_SIGN_WARD)
    assert north.sentence_ja in html and north.sentence_en in html
    assert "データなし / no data" in html  # no fleet rollup given
    assert "@page { size: A4" in html
    assert html.count("<svg") >= 5
    hostile = CallRecord("x", language="en", ward="<script>alert(1)</script>",
                         counter='1" onclick="x', procedure="A&B", enqueued_ms=records[0]
                         .enqueued_ms, exit_ms=records[0].enqueued_ms + 1000,
                         exit_outcome="abandoned", outcome="abandoned",
                         ended_ms=records[0].enqueued_ms + 1000)
    page = render(evaluate([hostile], MONTH, MODALITIES), catalogue=CATALOGUE, kiosks=None,
                  generated="now")
    assert "<script>" not in page and 'onclick="x' not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "A&amp;B" in page


def test_a_month_is_parsed_strictly() -> None:
    assert Month.parse("2026-02", tz=TZ).last == date(2026, 2, 28)
    assert Month.parse("2024-12", tz=TZ).last == date(2024, 12, 31)
    for bad in ("2026-13", "2026-1", "202610", "2026-00", "abcd-ef", "", "2026-10-01"):
        with pytest.raises(ValueError):
            Month.parse(bad, tz=TZ)
