"""The kiosk session's reading of the protocol, driven by a scripted client (no sockets)."""

from __future__ import annotations

from typing import Any

from kiosk_client.screen import ScreenState
from kiosk_client.session import KioskSession, end_message, languages_of


class ScriptedClient:
    """Answers requests from a script and records what was sent."""

    def __init__(self, replies: dict[str, dict[str, Any]]) -> None:
        self.replies = replies
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.welcome: dict[str, Any] = {}

    async def request(self, type_: str, **fields: Any) -> dict[str, Any]:
        self.sent.append((type_, fields))
        return self.replies.get(type_, {"type": "ack"})


def session_with(replies: dict[str, dict[str, Any]]) -> tuple[KioskSession, ScriptedClient]:
    client = ScriptedClient(replies)
    return KioskSession(client, make_tracks=list), client  # type: ignore[arg-type]


QUEUED = {"type": "call.queued", "call_id": "c1", "language": "vi", "position": 3,
          "estimated_wait_s": 240, "estimated_wait_min_s": 100, "estimated_wait_max_s": 400,
          "reason": "none_available"}


async def test_request_call_shows_the_queue_position() -> None:
    session, client = session_with({"call.request": QUEUED})
    await session.request_call("vi")
    assert client.sent == [("call.request", {"language": "vi", "priority": "normal"})]
    assert session.state is ScreenState.WAITING
    assert (session.call_id, session.position, session.estimated_wait_s) == ("c1", 3, 240)
    assert session.wait_range_s == (100, 400) and session.none_available
    await session.handle({"type": "call.position", "call_id": "c1", "position": 1,
                          "estimated_wait_s": 30})
    assert session.position == 1


async def test_a_push_that_overtakes_the_reply_is_applied_once_the_call_id_is_known() -> None:
    session, _ = session_with({"call.request": QUEUED})
    await session.handle({"type": "call.position", "call_id": "c1", "position": 2,
                          "estimated_wait_s": 60})
    assert session.position is None  # not known to be ours yet
    await session.request_call("vi")
    assert session.position == 2


async def test_messages_for_another_call_are_ignored() -> None:
    session, _ = session_with({"call.request": QUEUED})
    await session.request_call("vi")
    await session.handle({"type": "call.ended", "call_id": "other", "reason": "hangup"})
    assert session.state is ScreenState.WAITING


async def test_no_interpreter_ends_with_a_plain_message() -> None:
    session, _ = session_with({"call.request": QUEUED})
    await session.request_call("vi")
    await session.handle({"type": "call.ended", "call_id": "c1", "reason": "no_interpreter"})
    assert session.state is ScreenState.ENDED
    assert session.end_reason == "no_interpreter"
    assert session.message == end_message("no_interpreter")
    assert "通訳者がいません" in session.message[0]
    session.home()
    assert session.state is ScreenState.HOME and session.call_id is None


async def test_cancel_while_waiting_and_chat_lines() -> None:
    session, client = session_with({"call.request": QUEUED})
    await session.request_call("vi")
    await session.cancel()
    assert client.sent[-1] == ("call.cancel", {"call_id": "c1"})
    await session.handle({"type": "chat", "call_id": "c1", "from": {"role": "interpreter",
                          "name": "Lan"}, "text": "xin chào", "at_ms": 1})
    assert session.chat == ["Lan: xin chào"]


async def test_a_transfer_keeps_waiting_and_follows_the_new_call() -> None:
    session, _ = session_with({"call.request": QUEUED})
    await session.request_call("vi")
    await session.handle({"type": "call.ended", "call_id": "c1", "reason": "transferred"})
    assert session.state is ScreenState.WAITING
    await session.handle({"type": "call.queued", "call_id": "c2", "language": "en",
                          "position": 1, "estimated_wait_s": 10})
    assert session.call_id == "c2" and session.position == 1


def test_languages_come_from_welcome() -> None:
    welcome = {"languages": [{"code": "jsl", "name": "日本手話",
                              "name_en": "Japanese Sign Language", "modality": "sign"},
                             {"code": "ne", "name": "नेपाली"}]}
    langs = languages_of(welcome)
    assert [(lang.code, lang.name, lang.name_en) for lang in langs] == [
        ("jsl", "日本手話", "Japanese Sign Language"), ("ne", "नेपाली", "नेपाली")]
