"""The windowed kiosk's handling of taps and keys (no window is opened)."""

from __future__ import annotations

import asyncio
from typing import Any

from kiosk_client.display import Display, WindowedKiosk
from kiosk_client.screen import ScreenState
from kiosk_client.session import KioskSession


class ScriptedClient:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.welcome = {"languages": [{"code": "jsl", "name": "日本手話",
                                       "name_en": "Japanese Sign Language"}]}

    async def request(self, type_: str, **fields: Any) -> dict[str, Any]:
        self.sent.append((type_, fields))
        if type_ == "call.request":
            return {"type": "call.queued", "call_id": "c9", "language": "jsl", "position": 1,
                    "estimated_wait_s": 20}
        return {"type": "ack"}


def kiosk() -> tuple[WindowedKiosk, ScriptedClient]:
    client = ScriptedClient()
    session = KioskSession(client, make_tracks=list)  # type: ignore[arg-type]
    display = Display((1280, 720), fullscreen=False, on_input=lambda _: None)
    return WindowedKiosk(session, display, None, asyncio.Queue()), client


async def test_a_language_tap_places_the_call_and_the_screen_follows() -> None:
    k, client = kiosk()
    k.publish()
    assert k.display.view.state is ScreenState.HOME
    assert [lang.code for lang in k.display.view.languages] == ["jsl"]
    assert await k.act("language:jsl")
    assert client.sent[0] == ("call.request", {"language": "jsl", "priority": "normal"})
    k.publish()
    assert k.display.view.state is ScreenState.WAITING and k.display.view.position == 1
    await k.act("cancel")
    assert client.sent[-1] == ("call.cancel", {"call_id": "c9"})


async def test_typed_keys_make_a_chat_line_sent_on_enter_in_a_call() -> None:
    k, client = kiosk()
    await k.act("language:jsl")
    await k.session.handle({"type": "chat", "call_id": "c9", "from": {"name": "A"},
                            "text": "hi", "at_ms": 0})
    k.session.state = ScreenState.IN_CALL  # as after call.connected (no media here)
    for key in "Tanaka":
        await k.act("key:" + key)
    await k.act("key:backspace")
    assert k.draft == "Tanak"
    await k.act("key:enter")
    assert client.sent[-1] == ("chat.send", {"call_id": "c9", "text": "Tanak"})
    assert k.draft == ""
    assert await k.act("quit") is False


async def test_an_unreachable_service_shows_a_plain_error_and_keeps_trying() -> None:
    import contextlib
    import socket

    from kiosk_client.display import connect_until_up
    from kiosk_client.session import CLOSED
    from tsunagu.client import SignalingClient

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once closed
    client = SignalingClient(f"ws://127.0.0.1:{port}/ws", "token")
    session = KioskSession(client, make_tracks=list)
    display = Display((1280, 720), fullscreen=False, on_input=lambda _: None)
    k = WindowedKiosk(session, display, None, asyncio.Queue())
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(connect_until_up(session, k), timeout=1.5)
        assert display.view.state is ScreenState.ERROR
        assert display.view.message == CLOSED
    finally:
        await client.close()
