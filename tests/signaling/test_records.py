"""Finished-call records (PROTOCOL.md section 15): the pure parts, the rating and record
scripts against real Redis, retention, and the whole over sockets."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis

from signaling import retention
from signaling.backup import BackupError, chunks, export_records, parse_csv
from signaling.ledger import CallRecord, Ledger
from signaling.recorder import Recorder
from signaling.records import from_json, load_records, utc_day, write_records
from signaling.report import calls_csv, rows, to_csv
from signaling.routing import Router
from tests.signaling.conftest import T0
from tsunagu.languages import DEFAULT_CATALOGUE
from tsunagu.protocol import CallRate, ErrorCode, ProtocolError, parse_message
from tsunagu.redis_keys import Keys

K = Keys()
TZ = ZoneInfo("Asia/Tokyo")
CATALOGUE = {lang.code: lang for lang in DEFAULT_CATALOGUE}
_ops = itertools.count()


def op() -> str:
    return f"rop{next(_ops)}"


# -- pure ---------------------------------------------------------------------------------------

def test_call_rate_parses_and_refuses_scores_outside_1_to_5() -> None:
    m = parse_message('{"type":"call.rate","call_id":"c_1","score":4,"rid":"r"}')
    assert m == CallRate(rid="r", call_id="c_1", score=4)
    for bad in ("0", "6", "4.5", '"4"', "true", "null"):
        with pytest.raises(ProtocolError) as caught:
            parse_message('{"type":"call.rate","call_id":"c_1","score":' + bad + "}")
        assert caught.value.code is ErrorCode.BAD_REQUEST


def test_ledger_keeps_procedure_priority_and_transfer() -> None:
    ledger = Ledger()
    ledger.fold_all([
        ("1000-0", {"ev": "enqueued", "call": "a", "lang": "en", "prio": "urgent",
                    "proc": "転入届", "at": "1000"}),
        ("2000-0", {"ev": "answered", "call": "a", "interp": "x", "at": "2000"}),
        ("3000-0", {"ev": "transferred", "call": "a", "from": "en", "to": "vi", "at": "3000"}),
        ("4000-0", {"ev": "answered", "call": "a", "interp": "y", "at": "4000"}),
        ("9000-0", {"ev": "ended", "call": "a", "outcome": "answered", "reason": "hangup",
                    "at": "9000"}),
    ])
    r = ledger.records["a"]
    assert (r.procedure, r.priority, r.transferred_to, r.interpreter) == (
        "転入届", "urgent", "vi", "y")
    assert r.talk_ms == 1000 + 5000 and r.language == "en"


def test_retention_cutoffs() -> None:
    now = int(datetime(2031, 12, 2, 3, 0, tzinfo=UTC).timestamp() * 1000)
    c = retention.cutoffs(now, events_days=35, record_days=1826)
    assert c.events_min_id == f"{now - 35 * 86_400_000}-0"
    assert c.records_before_day == "2026-12-02"  # 1826 days (5 years, one Feb 29) before


def test_events_are_never_trimmed_past_what_the_records_need() -> None:
    day = 86_400_000
    now = 100 * day
    limits = retention.cutoffs(now, events_days=35, record_days=1826)
    assert retention.events_floor(limits, None) is None
    assert retention.events_floor(limits, f"{now - day}-3") == f"{now - 35 * day}-0"
    # The writers are 40 days behind: keep from two days before their cursor.
    assert retention.events_floor(limits, f"{now - 40 * day}-0") == f"{now - 42 * day}-0"


def _record(call_id: str, ended: datetime, **kw: object) -> CallRecord:
    end = int(ended.timestamp() * 1000) + 437  # not on a whole second, as calls are
    record = CallRecord(call_id, language="jsl", ward="北区", counter="3", kiosk="k1",
                        enqueued_ms=end - 95_250, answered_ms=end - 80_000,
                        exit_ms=end - 80_000, exit_outcome="answered", interpreter="alice",
                        ended_ms=end, outcome="answered", reason="hangup", talk_ms=80_000,
                        modality="sign", procedure="転入届", priority="normal")
    for name, value in kw.items():
        setattr(record, name, value)
    return record


def test_csv_columns_and_reading_back() -> None:
    day = datetime(2026, 11, 30, 10, 0, tzinfo=TZ)
    recs = [_record("c_a", day, rating=4, transferred_to="vi"),
            _record("c_b", day, answered_ms=None, exit_ms=None, exit_outcome="",
                    outcome="abandoned", reason="cancelled", interpreter="", talk_ms=0,
                    procedure="=HYPERLINK(1)", priority="urgent")]
    recs[1].exit_ms, recs[1].exit_outcome = recs[1].ended_ms, "abandoned"
    text = to_csv(rows(recs, first=day.date(), last=day.date(), tz=TZ, catalogue=CATALOGUE))
    table = list(csv.reader(io.StringIO(text)))
    assert table[0][:13] == ["call_id", "ward", "counter", "language", "modality", "enqueued",
                             "answered", "ended", "wait_s", "talk_s", "outcome", "end_reason",
                             "interpreter_id"]
    assert table[0][13:] == ["procedure", "priority", "rating", "transferred_to"]
    a, b = table[1], table[2]
    assert a[13:] == ["転入届", "normal", "4", "vi"] and a[8] == "15.2"
    assert b[13] == "'=HYPERLINK(1)" and b[15] == "" and b[6] == "" and b[10] == "abandoned"
    back = parse_csv(text)
    assert back[1].procedure == "=HYPERLINK(1)" and back[0].rating == 4
    again = to_csv(rows(back, first=day.date(), last=day.date(), tz=TZ, catalogue=CATALOGUE))
    assert again == text
    with pytest.raises(BackupError):
        parse_csv("call_id,ward\r\nx,y\r\n")


async def test_export_in_monthly_pieces_is_the_csv_of_the_whole_range(
        redis: aioredis.Redis) -> None:
    days = [datetime(2026, m, d, h, 59, 59, tzinfo=TZ) for m, d, h in (
        (1, 1, 0), (1, 31, 23), (2, 1, 0), (2, 28, 12), (3, 15, 9), (4, 30, 23))]
    await write_records(redis, K, [_record(f"c_{n}", day, procedure="line one\nline two")
                                   for n, day in enumerate(days)])
    await write_records(redis, K, [_record("c_same_second", days[3])])
    whole = await calls_csv(redis, K, first=date(2026, 1, 1), last=date(2026, 4, 30), tz=TZ,
                            catalogue=CATALOGUE)
    pieces = [p async for p in export_records(redis, K, first=date(2026, 1, 1),
                                              last=date(2026, 4, 30), tz=TZ,
                                              catalogue=CATALOGUE)]
    assert len(pieces) == 1 + 4 and sum(n for _, n in pieces) == 7
    assert b"".join(p for p, _ in pieces).decode() == whole
    assert len(chunks(date(2026, 1, 1), date(2026, 4, 30))) == 4
    assert chunks(date(2026, 1, 1), date(2026, 4, 30))[1] == (date(2026, 2, 1),
                                                              date(2026, 3, 3))


# -- the rating script, against real Redis --------------------------------------------------------

async def _finished_call(router: Router, kiosk: str, *, now: int, lang: str = "jsl",
                         answer: bool = True) -> str:
    await router.interp_connect("alice", [lang], "Alice", resumed=False, now=now)
    assert (await router.presence("alice", "available", op=op(), now=now)).ok
    cid = f"c_{kiosk}_{now}"
    out = await router.enqueue(kiosk=kiosk, ward="北区", counter="1", language=lang,
                               priority="normal", procedure="転入届", call_id=cid, op=op(),
                               now=now + 1)
    assert out.ok, out.data
    if not answer:
        assert (await router.cancel(kiosk, cid, op=op(), now=now + 2)).ok
        return cid
    offer_id = await router.redis.hget(K.call(cid), "offer_id")
    assert (await router.accept("alice", cid, offer_id, op=op(), now=now + 2)).ok
    assert (await router.hangup("kiosk", kiosk, cid, op=op(), now=now + 60_000)).ok
    await router.run("wrapup_end", "alice", now=now + 120_000)
    return cid


async def test_rate_takes_one_score_for_a_finished_answered_call(
        router: Router, redis: aioredis.Redis) -> None:
    cid = await _finished_call(router, "k1", now=T0)
    ended = T0 + 60_000
    # Before the record is written: the score waits for the writer.
    out = await router.rate("k1", cid, 4, op=op(), now=ended + 5_000)
    assert out.ok, out.data
    assert await redis.get(K.rating_pending(cid)) == "4"
    assert (await router.rate("k1", cid, 5, op=op(), now=ended + 6_000)).err == "conflict"
    # The writer folds the end: the record gets the score, and the pending key goes.
    ledger = Ledger()
    ledger.fold_all(await redis.xrange(K.events))
    assert await Recorder(redis, K, DEFAULT_CATALOGUE).record(ledger,
                                                              await redis.xrange(K.events)) == 1
    stored = from_json(await redis.hget(K.records(utc_day(ended)), cid))
    assert stored.rating == 4 and stored.modality == "sign" and stored.procedure == "転入届"
    assert await redis.get(K.rating_pending(cid)) is None


async def test_rate_after_the_record_sets_it_in_place(router: Router, redis: aioredis.Redis
                                                      ) -> None:
    cid = await _finished_call(router, "k1", now=T0)
    events = await redis.xrange(K.events)
    ledger = Ledger()
    ledger.fold_all(events)
    await Recorder(redis, K, DEFAULT_CATALOGUE).record(ledger, events)
    assert (await router.rate("k1", cid, 2, op=op(), now=T0 + 60_000 + 119_000)).ok
    assert from_json(await redis.hget(K.records(utc_day(T0 + 60_000)), cid)).rating == 2
    assert await redis.get(K.rating_pending(cid)) is None


async def test_rate_finds_the_record_of_any_utc_day(router: Router, redis: aioredis.Redis
                                                     ) -> None:
    """rate.lua computes the UTC day of the end itself: it must name the same hash as
    records.utc_day, across month, year and leap-day edges."""
    edges = [datetime(2024, 2, 29, 23, 59, 59, 999_000, tzinfo=UTC),
             datetime(2024, 3, 1, 0, 0, tzinfo=UTC), datetime(2000, 2, 29, 12, 0, tzinfo=UTC),
             datetime(2100, 3, 1, 0, 0, 0, 1000, tzinfo=UTC),
             datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC),
             datetime(1999, 12, 31, 15, 0, tzinfo=UTC)]
    for n, when in enumerate(edges):
        cid = f"c_edge{n}"
        record = _record(cid, when, kiosk="k1")
        record.ended_ms = ended = int(when.timestamp() * 1000)
        await redis.hset(K.call(cid), mapping={"kiosk": "k1", "state": "ended", "ended_ms": ended,
                                               "outcome": "answered", "language": "jsl"})
        await write_records(redis, K, [record])
        day = utc_day(ended)
        assert day == when.date().isoformat()
        assert (await router.rate("k1", cid, 1 + n % 5, op=op(), now=ended + 1000)).ok
        assert from_json(await redis.hget(K.records(day), cid)).rating == 1 + n % 5, when
    assert await redis.keys(K.rating_pending("*")) == []


async def test_rate_refusals(router: Router, redis: aioredis.Redis) -> None:
    cid = await _finished_call(router, "k1", now=T0)
    ended = T0 + 60_000
    # another kiosk's call, an unknown call
    assert (await router.rate("k2", cid, 3, op=op(), now=ended + 1)).err == "not_found"
    assert (await router.rate("k1", "c_nope", 3, op=op(), now=ended + 1)).err == "not_found"
    # after 120 s
    assert (await router.rate("k1", cid, 3, op=op(), now=ended + 120_001)).err == "conflict"
    # a call never answered
    gone = await _finished_call(router, "k3", now=T0 + 200_000, answer=False)
    assert (await router.rate("k3", gone, 3, op=op(), now=T0 + 200_010)).err == "not_found"
    # a call still live
    await router.interp_connect("bob", ["en"], "Bob", resumed=False, now=T0)
    await router.presence("bob", "available", op=op(), now=T0)
    live = "c_live"
    await router.enqueue(kiosk="k4", ward="W", counter="1", language="en", priority="normal",
                         procedure=None, call_id=live, op=op(), now=T0 + 300_000)
    assert (await router.rate("k4", live, 3, op=op(), now=T0 + 300_001)).err == "not_found"
    # the daily test call
    test = await _finished_call(router, "k5", now=T0 + 400_000, lang="test")
    assert (await router.rate("k5", test, 3, op=op(), now=T0 + 460_010)).err == "not_found"
    # none of the refusals left a score anywhere
    assert await redis.keys(K.rating_pending("*")) == []
    assert await redis.hget(K.call(cid), "rating") is None


# -- records and retention against real Redis ---------------------------------------------------

async def test_recorder_skips_test_calls_backfills_and_keeps_its_cursor(
        router: Router, redis: aioredis.Redis) -> None:
    real = await _finished_call(router, "k1", now=T0)
    test = await _finished_call(router, "k2", now=T0 + 200_000, lang="test")
    recorder = Recorder(redis, K, DEFAULT_CATALOGUE)
    # No node ran: a starting one backfills from the stream's start.
    assert await recorder.backfill() == 1
    day = utc_day(T0 + 60_000)
    assert set(await redis.hkeys(K.records(day))) == {real}
    assert test not in set(await redis.hkeys(K.records(utc_day(T0 + 260_000))))
    last = (await redis.xrevrange(K.events, count=1))[0][0]
    assert await recorder.cursor() == last
    # Later calls end while no node runs; the next start records them (and only them).
    later = await _finished_call(router, "k3", now=T0 + 500_000)
    assert await recorder.backfill() == 1
    assert later in await redis.hkeys(K.records(utc_day(T0 + 560_000)))
    # The cursor never goes back.
    await recorder._advance(keys=[K.records_upto], args=["1-0"])
    assert await recorder.cursor() == (await redis.xrevrange(K.events, count=1))[0][0]


async def test_records_outlive_the_events_and_old_days_go(redis: aioredis.Redis) -> None:
    now = datetime.now(UTC)
    old = datetime(2026, 9, 1, 3, 0, tzinfo=UTC)  # older than 35 days of events
    ancient = datetime(2020, 1, 5, 3, 0, tzinfo=UTC)  # older than 1826 days
    await write_records(redis, K, [_record("c_old", old), _record("c_ancient", ancient)])
    # events older than the limit, and one from now
    old_ms = int(old.timestamp() * 1000)
    await redis.xadd(K.events, {"ev": "presence"}, id=f"{old_ms}-0")
    await redis.xadd(K.events, {"ev": "presence"}, id="*")
    limits = retention.cutoffs(int(now.timestamp() * 1000), events_days=35, record_days=1826)
    # Nothing recorded yet (an upgraded deployment): the events stay until they are.
    assert await retention.apply(redis, K, limits) == (0, 1) and await redis.xlen(K.events) == 2
    await redis.set(K.records_upto, (await redis.xrevrange(K.events, count=1))[0][0])
    assert await retention.apply(redis, K, limits) == (1, 0) and await redis.xlen(K.events) == 1
    text = await calls_csv(redis, K, first=date(2026, 9, 1), last=date(2026, 9, 1), tz=TZ,
                           catalogue=CATALOGUE)
    assert [r[0] for r in csv.reader(io.StringIO(text))][1:] == ["c_old"]
    assert await load_records(redis, K, first=date(2020, 1, 5), last=date(2020, 1, 5),
                              tz=TZ) == []
    assert await redis.zrange(K.record_days, 0, -1) == [old.date().isoformat()]


async def test_events_cap_comes_from_the_settings(router: Router, redis: aioredis.Redis) -> None:
    assert await redis.hget(K.cfg, "events_max") == "1000000"
    await redis.hset(K.cfg, "events_max", 3)
    for n in range(400):
        await router.presence("alice", "available" if n % 2 else "away", op=op(), now=T0 + n)
    # MAXLEN ~ trims whole stream nodes (100 entries each): far below 400, above 3.
    assert await redis.xlen(K.events) < 200


async def test_settings_refuse_bad_retention() -> None:
    from tests.conftest import TEST_SECRET
    from tsunagu.settings import ConfigError, SignalingSettings
    with pytest.raises(ConfigError):
        SignalingSettings(secret=TEST_SECRET, events_retention_days=1)
    with pytest.raises(ConfigError):
        SignalingSettings(secret=TEST_SECRET, record_retention_days=10)
    with pytest.raises(ConfigError):
        SignalingSettings(secret=TEST_SECRET, events_max_entries=5)
    assert asyncio.iscoroutinefunction(retention.apply)
