"""The fleet's rating rules (PROTOCOL.md section 14) and the health report's checks: pure."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tsunagu.fleet import (
    DAY_MS,
    HealthError,
    KioskFacts,
    check_health,
    counts,
    entry,
    failed_test_words,
    ordered,
    rate,
)
from tsunagu.protocol import ErrorCode, KioskHealth, ProtocolError, parse_message

TOKYO = ZoneInfo("Asia/Tokyo")
NOW = int(datetime(2027, 3, 1, 10, 0, tzinfo=TOKYO).timestamp() * 1000)  # Monday 10:00
OK_HEALTH: dict[str, Any] = {"camera": "ok", "microphone": "ok",
                             "app": {"kind": "web", "version": "1.1"}, "at_ms": NOW - 1000}
PASSED = {"at_ms": NOW - 3600_000, "ok": True, "fps_in": 30, "fps_out": 30, "rtt_ms": 12,
          "loss_pct": 0, "setup_ms": 900}
GOOD = KioskFacts(kiosk_id="k1", ward="北区", counter="3", online=True, last_seen_ms=NOW,
                  health=OK_HEALTH, last_test=None, token_exp_ms=NOW + 200 * DAY_MS,
                  open_now=True)


def facts(**kw: Any) -> KioskFacts:
    return replace(GOOD, **kw)


def test_green_needs_nothing_more_and_never_tested_is_no_reason() -> None:
    assert rate(GOOD, NOW, TOKYO) == ("green", [])
    assert rate(facts(last_test=PASSED), NOW, TOKYO) == ("green", [])
    assert rate(facts(open_now=False), NOW, TOKYO) == ("green", [])


@pytest.mark.parametrize("device", ["camera", "microphone"])
@pytest.mark.parametrize("state", ["missing", "denied"])
def test_missing_or_denied_device_is_red(device: str, state: str) -> None:
    status, reasons = rate(facts(health={**OK_HEALTH, device: state}), NOW, TOKYO)
    assert status == "red"
    ja = {"camera": "カメラ", "microphone": "マイク"}[device]
    ja += "が見つかりません" if state == "missing" else "の使用が許可されていません"
    en = f"{device} {'missing' if state == 'missing' else 'access denied'}"
    assert reasons == [f"{ja} / {en}"]


def test_dark_no_face_unknown_are_amber_with_plain_reasons() -> None:
    assert rate(facts(health={**OK_HEALTH, "camera": "dark"}), NOW, TOKYO) == (
        "amber", ["カメラが暗すぎます / camera too dark"])
    assert rate(facts(health={**OK_HEALTH, "camera": "no_face"}), NOW, TOKYO) == (
        "amber", ["カメラに顔が映っていません / no face in the camera picture"])
    assert rate(facts(health={**OK_HEALTH, "microphone": "unknown"}), NOW, TOKYO) == (
        "amber", ["マイクの状態がわかりません / microphone state unknown"])
    assert rate(facts(health=None), NOW, TOKYO) == (
        "amber", ["状態の報告がまだありません / no health report yet"])


def test_offline_is_red_in_opening_hours_and_amber_outside() -> None:
    seen = int(datetime(2027, 3, 1, 8, 12, tzinfo=TOKYO).timestamp() * 1000)
    status, reasons = rate(facts(online=False, last_seen_ms=seen), NOW, TOKYO)
    assert (status, reasons) == ("red", [
        "08:12 から接続がありません（開庁時間中） / not seen since 08:12 during opening hours"])
    status, reasons = rate(facts(online=False, last_seen_ms=seen, open_now=False), NOW, TOKYO)
    assert status == "amber"
    assert reasons == ["オフライン（開庁時間外、最終接続 08:12） / "
                       "offline outside opening hours, last seen 08:12"]
    # seen on an earlier day: the date is given; never seen: said so
    _, reasons = rate(facts(online=False, last_seen_ms=seen - 3 * DAY_MS), NOW, TOKYO)
    assert reasons[0].endswith("not seen since 02/26 08:12 during opening hours")
    assert rate(facts(online=False, last_seen_ms=None, health=None), NOW, TOKYO) == (
        "red", ["一度も接続していません / never connected",
                "状態の報告がまだありません / no health report yet"])


def test_failed_test_is_red_with_the_reason() -> None:
    failed = {**PASSED, "ok": False, "fps_out": 0, "reason": "no_video_from_kiosk"}
    assert rate(facts(last_test=failed), NOW, TOKYO) == (
        "red", ["テスト通話に失敗しました: タブレットからの映像が届きません / "
                "test call failed: no video from the tablet"])
    # a code this module does not know is still said, as words
    odd = {**PASSED, "ok": False, "reason": "relay_unreachable"}
    assert rate(facts(last_test=odd), NOW, TOKYO)[1] == [
        "テスト通話に失敗しました: relay unreachable / test call failed: relay unreachable"]
    # no code: the figures say which way nothing came
    silent = {**PASSED, "ok": False, "fps_out": 0}
    assert rate(facts(last_test=silent), NOW, TOKYO)[1][0].endswith("no video from the tablet")


def test_token_within_30_days_is_amber() -> None:
    assert rate(facts(token_exp_ms=NOW + 12 * DAY_MS), NOW, TOKYO) == (
        "amber", ["端末トークンの期限まであと 12 日です: 更新してください / "
                  "token expires in 12 days: rotate it"])
    assert rate(facts(token_exp_ms=NOW + 30 * DAY_MS + 1), NOW, TOKYO) == ("green", [])
    assert rate(facts(token_exp_ms=NOW + 3600_000), NOW, TOKYO)[1] == [
        "端末トークンの期限まであと 1 日です: 更新してください / token expires in 1 day: rotate it"]
    assert rate(facts(token_exp_ms=NOW - 1), NOW, TOKYO)[1] == [
        "端末トークンの期限が切れています: 更新してください / token expired: rotate it"]


def test_red_reasons_come_before_amber_ones() -> None:
    status, reasons = rate(facts(health={**OK_HEALTH, "camera": "dark", "microphone": "denied"},
                                 token_exp_ms=NOW + 5 * DAY_MS), NOW, TOKYO)
    assert status == "red"
    assert [r.split(" / ")[1] for r in reasons] == [
        "microphone access denied", "camera too dark", "token expires in 5 days: rotate it"]


def test_entry_shape_order_and_counts() -> None:
    e = entry(GOOD, NOW, TOKYO)
    assert set(e) == {"kiosk_id", "ward", "counter", "online", "last_seen_ms", "health",
                      "status", "reasons", "last_test"}
    entries = [entry(facts(kiosk_id="a", ward="南区", counter="10"), NOW, TOKYO),
               entry(facts(kiosk_id="b", ward="南区", counter="2"), NOW, TOKYO),
               entry(facts(kiosk_id="c", health={**OK_HEALTH, "camera": "dark"}), NOW, TOKYO),
               entry(facts(kiosk_id="d", ward="西区", online=False), NOW, TOKYO)]
    assert [x["kiosk_id"] for x in ordered(entries)] == ["d", "c", "b", "a"]
    assert counts(entries) == {"red": 1, "amber": 1, "green": 2}
    assert counts([]) == {"red": 0, "amber": 0, "green": 0}


def test_health_report_is_checked_and_kept_to_section_14() -> None:
    full = {"camera": "no_face", "microphone": "ok", "app": {"kind": "python", "version": "0.1"},
            "browser": "Chromium 120", "screen": {"w": 1280, "h": 800},
            "battery": {"level_pct": 55, "charging": False},
            "network": {"rtt_ms": 21.5, "loss_pct": 0.4}, "extra": "dropped"}
    out = check_health(full)
    assert out == {k: v for k, v in full.items() if k != "extra"}
    assert check_health({"camera": "ok", "microphone": "ok",
                         "app": {"kind": "web", "version": "x"}})["app"]["kind"] == "web"
    for bad in ({**full, "camera": "broken"}, {**full, "microphone": "no_face"},
                {**full, "app": {"kind": "ios", "version": "1"}}, {**full, "app": "web"},
                {**full, "screen": {"w": "big", "h": 1}}, {**full, "battery": {"level_pct": 120,
                                                                             "charging": True}},
                {**full, "battery": {"level_pct": 50, "charging": "yes"}},
                {**full, "network": {"rtt_ms": -1, "loss_pct": 0}},
                {k: v for k, v in full.items() if k != "camera"}):
        with pytest.raises(HealthError):
            check_health(bad)


def test_the_parser_answers_bad_request_for_a_bad_report() -> None:
    msg = parse_message('{"type":"kiosk.health","rid":"r1","camera":"ok","microphone":"denied",'
                        '"app":{"kind":"web","version":"1"}}')
    assert isinstance(msg, KioskHealth) and msg.rid == "r1"
    assert msg.report["microphone"] == "denied"
    with pytest.raises(ProtocolError) as err:
        parse_message('{"type":"kiosk.health","rid":"r2","camera":"ok","microphone":"ok",'
                      '"app":{"kind":"web","version":"1"},"screen":{"w":true,"h":1}}')
    assert err.value.code is ErrorCode.BAD_REQUEST and err.value.rid == "r2"
    assert "screen.w" in err.value.message


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                    | st.text(max_size=8) | st.sampled_from(["ok", "dark", "web", "python"]),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.sampled_from(["kind", "version", "w", "h", "level_pct",
                                                       "charging", "rtt_ms", "loss_pct", "x"]),
                                      inner, max_size=4), max_leaves=12)
FIELDS = ["camera", "microphone", "app", "browser", "screen", "battery", "network"]


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELDS + ["other"]), JSON, max_size=8))
def test_any_report_is_checked_or_refused_with_health_error(data: dict[str, Any]) -> None:
    try:
        out = check_health(data)
    except HealthError:
        return
    assert check_health(out) == out  # what is stored passes again, unchanged
    assert set(out) <= set(FIELDS)


def test_a_failed_test_calls_plain_sentences_are_said_in_japanese_too() -> None:
    """The test-call side writes sentences joined with "; " (docs/testcall.md): each one
    known is put in Japanese; an unknown one is shown as written."""
    ja, en = failed_test_words({"reason": "no video from the bot; no video from the tablet"})
    assert en == "no video from the bot; no video from the tablet"
    assert ja == "テスト応答ボットからの映像が届きません、タブレットからの映像が届きません"
    assert failed_test_words({"reason": "no answering bot is signed in"})[0] == \
        "テスト応答ボットがサインインしていません"
    assert failed_test_words({"reason": "no video from the bot; cosmic rays"}) == (
        "no video from the bot; cosmic rays", "no video from the bot; cosmic rays")
