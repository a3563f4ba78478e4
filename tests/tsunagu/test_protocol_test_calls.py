"""Parsing the test-call messages (PROTOCOL.md section 14): pure, no loop."""

from __future__ import annotations

import json

import pytest

from tsunagu.protocol import (
    ALLOWED,
    CallRequest,
    ErrorCode,
    Hello,
    KioskTest,
    KioskTestResult,
    ProtocolError,
    TestMedia,
    parse_message,
)


def parse(**fields: object) -> object:
    return parse_message(json.dumps(fields))


def test_a_full_result_parses_with_numbers_as_floats() -> None:
    m = parse(type="kiosk.test_result", rid="r1", test_id="t_1", ok=True, fps_in=29,
              fps_out=30.5, rtt_ms=1.2, loss_pct=0, setup_ms=1041)
    assert m == KioskTestResult(rid="r1", test_id="t_1", ok=True, fps_in=29.0, fps_out=30.5,
                                rtt_ms=1.2, loss_pct=0.0, setup_ms=1041.0)


def test_unmeasured_figures_may_be_null_or_absent() -> None:
    m = parse(type="kiosk.test_result", test_id="t_1", ok=False, fps_in=None,
              reason="no video from the bot")
    assert isinstance(m, KioskTestResult)
    assert m.fps_in is None and m.setup_ms is None and m.reason == "no video from the bot"


@pytest.mark.parametrize("fields", [
    {"ok": "yes"},  # not a boolean
    {"ok": 1},
    {"ok": True, "fps_in": "29"},  # not a number
    {"ok": True, "fps_in": True},
    {"ok": True, "rtt_ms": -1},
    {"ok": True, "loss_pct": 1e400},  # read as infinity
    {"ok": True, "reason": "x" * 201},
    {},  # ok missing
])
def test_bad_results_are_bad_requests(fields: dict[str, object]) -> None:
    raw = json.dumps({"type": "kiosk.test_result", "test_id": "t_1", "rid": "r2", **fields})
    with pytest.raises(ProtocolError) as err:
        parse_message(raw.replace("Infinity", "1e400"))
    assert err.value.code is ErrorCode.BAD_REQUEST and err.value.rid == "r2"


def test_the_other_messages() -> None:
    assert parse(type="kiosk.test", kiosk_id="kita-3") == KioskTest(rid=None, kiosk_id="kita-3")
    assert parse(type="test.media", call_id="c_1", video_frames=150, audio_frames=0) == \
        TestMedia(rid=None, call_id="c_1", video_frames=150.0, audio_frames=0.0)
    req = parse(type="call.request", language="test", test_id="t_1")
    assert isinstance(req, CallRequest) and req.test_id == "t_1"
    hello = parse(type="hello", token="x", answers="test")
    assert isinstance(hello, Hello) and hello.answers == "test"


def test_who_may_send_them() -> None:
    assert ALLOWED["kiosk.test"] == {"supervisor", "admin"}
    assert ALLOWED["kiosk.test_result"] == {"kiosk"}
    assert ALLOWED["test.media"] == {"interpreter"}
