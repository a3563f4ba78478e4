"""The headless self-test's verdict: passed only when answered, connected, media both ways."""

from __future__ import annotations

from typing import Any

import pytest

from kiosk_client.app import describe_network_error
from kiosk_client.self_test import verdict

GOOD: dict[str, Any] = {
    "answered_after_s": 1.2, "media_connected": True, "end_reason": "hangup",
    "media": {"received": {"video": {"frames": 240, "fps": 29.8},
                           "audio": {"frames": 480}}},
    "outbound": {"video": {"packets_sent": 900, "acknowledged": True, "rtt_ms": 3.0}},
}


def test_a_good_call_passes() -> None:
    result = verdict(GOOD, language="jsl")
    assert result.ok and result.lines[0].startswith("PASSED")


@pytest.mark.parametrize("change, words", [
    ({"answered_after_s": None}, "not answered"),
    ({"media_connected": False}, "media connection"),
    ({"media": {"received": {"video": {"frames": 0}, "audio": {"frames": 10}}}},
     "no video arrived"),
    ({"outbound": {"video": {"packets_sent": 900, "acknowledged": False}}},
     "did not confirm"),
    ({"outbound": {}}, "did not confirm"),
])
def test_each_missing_piece_fails_and_says_what(change: dict[str, Any], words: str) -> None:
    call = {**GOOD, **change}
    if call["answered_after_s"] is None:
        call = {"end_reason": "no_interpreter"}
    result = verdict(call, language="jsl")
    assert not result.ok
    assert result.lines[0].startswith("FAILED")
    assert any(words in line for line in result.lines), result.lines


def test_nobody_answering_is_said_plainly() -> None:
    result = verdict({"end_reason": "no_interpreter", "state": "ended"}, language="vi")
    assert not result.ok
    assert "nobody who interprets this language is signed in" in result.lines[0]


@pytest.mark.parametrize("exc, words", [
    (ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 9)"), "refused"),
    (TimeoutError(), "did not answer in time"),
    (OSError("Name or service not known"), "host name cannot be found"),
])
def test_network_errors_name_the_server_not_a_class(exc: BaseException, words: str) -> None:
    text = describe_network_error("http://ward.example:8080", exc)
    assert text.startswith("cannot reach the signaling server at http://ward.example:8080")
    assert words in text and "Error" not in text
