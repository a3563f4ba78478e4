"""The server's messages typed: parse, dump, drift caught, newer fields and types tolerated."""

from __future__ import annotations

import json

import pytest

from tsunagu.protocol import ProtocolError
from tsunagu.server_messages import (
    SERVER_MESSAGES,
    CallEnded,
    CallOffer,
    Chat,
    KioskTestDue,
    Stats,
    Unknown,
    dump_server_message,
    parse_server_message,
)

OFFER = {"type": "call.offer", "call_id": "c1", "offer_id": "o1", "language": "jsl",
         "ward": "北区", "counter": "3", "waited_s": 2, "expires_in_s": 19.5}


def test_a_message_round_trips() -> None:
    msg = parse_server_message(json.dumps(OFFER))
    assert isinstance(msg, CallOffer) and msg.waited_s == 2 and msg.procedure is None
    assert json.loads(dump_server_message(msg)) == OFFER


def test_chat_keeps_its_wire_name_from() -> None:
    wire = {"type": "chat", "call_id": "c1", "from": {"role": "kiosk", "name": "北区 3"},
            "text": "山田です", "at_ms": 5}
    msg = parse_server_message(wire)
    assert isinstance(msg, Chat) and msg.sender["role"] == "kiosk"
    assert json.loads(dump_server_message(msg)) == wire


@pytest.mark.parametrize("broken", [
    {k: v for k, v in OFFER.items() if k != "offer_id"},  # a field missing
    {**OFFER, "waited_s": "2"},  # a number as a string
    {**OFFER, "ward": None},
    {"type": "call.ended", "call_id": "c1", "reason": "hangup", "duration_s": True},
])
def test_drift_is_an_error(broken: dict[str, object]) -> None:
    with pytest.raises(ProtocolError):
        parse_server_message(broken)


def test_newer_fields_and_types_are_kept_not_refused() -> None:
    msg = parse_server_message({"type": "call.ended", "call_id": "c1", "reason": "hangup",
                                "rating_due_s": 120})
    assert isinstance(msg, CallEnded) and msg.extra == {"rating_due_s": 120}
    other = parse_server_message({"type": "kiosk.future_thing", "test_id": "t1", "rid": "r9"})
    assert isinstance(other, Unknown) and other.rid == "r9"
    assert json.loads(dump_server_message(other)) == {"type": "kiosk.future_thing",
                                                     "test_id": "t1", "rid": "r9"}
    due = parse_server_message({"type": "kiosk.test_due", "test_id": "t1"})
    assert isinstance(due, KioskTestDue) and due.test_id == "t1"


def test_of_keeps_what_the_class_does_not_name() -> None:
    stats = Stats.of(at_ms=1, languages=[], interpreters=[], calls=[], today={}, fleet=[])
    assert stats.extra == {"fleet": []}
    assert "fleet" in json.loads(dump_server_message(stats))


def test_every_documented_server_message_has_a_class() -> None:
    assert set(SERVER_MESSAGES) >= {
        "welcome", "ack", "error", "presence", "call.queued", "call.position", "call.offer",
        "call.offer_cancelled", "call.connected", "call.ended", "media.answer",
        "media.failed", "chat", "stats"}
