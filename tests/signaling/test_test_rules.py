"""The test-call scheduling decision and verdict (signaling/test_rules.py): pure, no loop."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from signaling.test_rules import (
    Action,
    DayState,
    KioskNow,
    Rules,
    decide,
    parse_hhmm,
    verdict,
)

TZ = ZoneInfo("Asia/Tokyo")
AT = time(8, 30)
RULES = Rules(days=frozenset(range(5)), retry_s=300, max_tries=3, result_timeout_s=180)
IDLE = KioskNow(online=True)
BUSY = KioskNow(online=True, in_real_call=True)
OFFLINE = KioskNow(online=False)
MONDAY = datetime(2026, 11, 30, tzinfo=TZ)  # a Monday


def at(hh: int, mm: int, ss: int = 0, day: datetime = MONDAY) -> datetime:
    return day.replace(hour=hh, minute=mm, second=ss)


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def test_not_due_before_its_time_then_sent_at_it() -> None:
    assert decide(at(8, 29, 59), AT, DayState(), IDLE, RULES).action is Action.WAIT
    d = decide(at(8, 30), AT, DayState(), IDLE, RULES, new_test_id="t_1")
    assert d.action is Action.SEND
    assert d.state == DayState(tries=1, sent_ms=ms(at(8, 30)), test_id="t_1")


def test_sent_test_waits_for_its_result_then_nothing_once_done() -> None:
    sent = decide(at(8, 30), AT, DayState(), IDLE, RULES, new_test_id="t_1").state
    assert decide(at(8, 31), AT, sent, IDLE, RULES).action is Action.WAIT
    assert decide(at(8, 31), AT, sent, IDLE, RULES).why == "waiting for the result"
    done = replace(sent, done=True, sent_ms=0)
    assert decide(at(12, 0), AT, done, IDLE, RULES).action is Action.WAIT


def test_no_test_on_days_the_rules_leave_out() -> None:
    saturday = MONDAY + timedelta(days=5)
    assert decide(at(8, 30, day=saturday), AT, DayState(), IDLE, RULES).action is Action.WAIT
    every_day = replace(RULES, days=frozenset(range(7)))
    assert decide(at(8, 30, day=saturday), AT, DayState(), IDLE,
                  every_day).action is Action.SEND


def test_kiosk_in_a_real_call_is_skipped_and_retried_after_it() -> None:
    d = decide(at(8, 30), AT, DayState(), BUSY, RULES)
    assert d.action is Action.SKIP_BUSY
    assert d.state.tries == 1 and d.state.next_ms == ms(at(8, 35))
    # before the retry time nothing happens, even with the kiosk free again
    assert decide(at(8, 34), AT, d.state, IDLE, RULES).action is Action.WAIT
    again = decide(at(8, 35), AT, d.state, IDLE, RULES, new_test_id="t_2")
    assert again.action is Action.SEND and again.state.tries == 2


def test_at_most_three_tries_a_day() -> None:
    state = DayState()
    actions = []
    for minute in (30, 35, 40, 45):
        d = decide(at(8, minute), AT, state, BUSY, RULES)
        actions.append(d.action)
        state = d.state
    assert actions == [Action.SKIP_BUSY, Action.SKIP_BUSY, Action.GIVE_UP, Action.WAIT]
    assert state.done and state.tries == 3


def test_offline_at_its_time_is_tested_when_it_comes_back_the_same_day() -> None:
    d = decide(at(8, 30), AT, DayState(), OFFLINE, RULES)
    assert d.action is Action.WAIT and d.state == DayState()
    later = decide(at(10, 12), AT, d.state, IDLE, RULES, new_test_id="t_9")
    assert later.action is Action.SEND and later.state.tries == 1


def test_unreported_test_is_tried_again_and_the_last_one_recorded_lost() -> None:
    sent = decide(at(8, 30), AT, DayState(), IDLE, RULES, new_test_id="t_1").state
    # a resident tapped a language: the test was ended unreported, the kiosk is in a call
    d = decide(at(8, 33, 1), AT, sent, BUSY, RULES)
    assert d.action is Action.SKIP_BUSY and d.state.sent_ms == 0 and d.state.tries == 2
    d = decide(at(8, 38, 1), AT, d.state, IDLE, RULES, new_test_id="t_2")
    assert d.action is Action.SEND and d.state.tries == 3
    assert decide(at(8, 40), AT, d.state, IDLE, RULES).action is Action.WAIT
    lost = decide(at(8, 41, 2), AT, d.state, IDLE, RULES)
    assert lost.action is Action.LOST and lost.state.done


def test_a_running_test_call_is_waited_for_past_the_result_timeout() -> None:
    sent = decide(at(8, 30), AT, DayState(), IDLE, RULES, new_test_id="t_1").state
    testing = KioskNow(online=True, in_test_call=True)
    assert decide(at(8, 40), AT, sent, testing, RULES).action is Action.WAIT


def test_kiosk_added_after_todays_test_time_waits_for_tomorrow() -> None:
    added = ms(at(14, 0))
    assert decide(at(15, 0), AT, DayState(), IDLE, RULES,
                  added_ms=added).why == "added after today's test time"
    tomorrow = MONDAY + timedelta(days=1)
    assert decide(at(8, 30, day=tomorrow), AT, DayState(), IDLE, RULES,
                  added_ms=added).action is Action.SEND


def test_parse_hhmm() -> None:
    assert parse_hhmm("08:30") == time(8, 30)
    assert parse_hhmm("23:05") == time(23, 5)


GOOD = {"ok": True, "fps_in": 24.04, "fps_out": 29.9, "rtt_ms": 3.2, "loss_pct": 0.0,
        "setup_ms": 812.0}
BOT_GOOD = {"bot_video": "150", "bot_audio": "250", "bot_fps": "29.8"}


def test_verdict_passes_when_both_ends_received() -> None:
    last = verdict(GOOD, BOT_GOOD, at_ms=5)
    assert last == {"at_ms": 5, "ok": True, "fps_in": 24.0, "fps_out": 29.9, "rtt_ms": 3.2,
                    "loss_pct": 0.0, "setup_ms": 812.0}


def test_verdict_fails_when_the_bot_got_no_video() -> None:
    last = verdict(GOOD, {**BOT_GOOD, "bot_video": "0"}, at_ms=5)
    assert not last["ok"] and last["reason"] == "no video from the tablet"


def test_verdict_keeps_the_kiosks_reason_and_adds_the_bots() -> None:
    kiosk = {**GOOD, "ok": False, "fps_in": 0, "reason": "no video from the bot"}
    last = verdict(kiosk, {**BOT_GOOD, "bot_video": "0"}, at_ms=5)
    assert not last["ok"]
    assert last["reason"] == "no video from the bot; no video from the tablet"


def test_verdict_fails_without_a_bot_report() -> None:
    last = verdict(GOOD, {}, at_ms=5)
    assert not last["ok"] and "did not say" in last["reason"]


def test_verdict_of_an_unanswered_test() -> None:
    kiosk = {"ok": False, "setup_ms": None, "reason": "the answering bot did not answer in time"}
    last = verdict(kiosk, {}, at_ms=5)
    assert last["ok"] is False and last["reason"] == "the answering bot did not answer in time"
    assert last["fps_in"] is None
