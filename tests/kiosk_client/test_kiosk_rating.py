"""The Python kiosk's rating screen: five faces and skip after a real answered call, keys 1-5
and taps send call.rate, 20 s then home; no faces after a cancelled or a test call."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kiosk_client.display import Display, WindowedKiosk
from kiosk_client.screen import ScreenState, View, hit, render
from kiosk_client.session import RATING_S, KioskSession, rating_offered
from kiosk_client.typeface import Typeface, find_font


class ScriptedClient:
    def __init__(self, language: str = "jsl") -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.language = language
        self.welcome = {"languages": [{"code": language, "name": language, "name_en": language}]}

    async def request(self, type_: str, **fields: Any) -> dict[str, Any]:
        self.sent.append((type_, fields))
        if type_ == "call.request":
            return {"type": "call.queued", "call_id": "c9", "language": self.language,
                    "position": 1}
        return {"type": "ack"}


async def _ended_call(language: str = "jsl", *, answered: bool = True,
                      reason: str = "hangup") -> tuple[WindowedKiosk, ScriptedClient]:
    client = ScriptedClient(language)
    session = KioskSession(client, make_tracks=list)  # type: ignore[arg-type]
    display = Display((1280, 720), fullscreen=False, on_input=lambda _: None)
    k = WindowedKiosk(session, display, None, asyncio.Queue())
    await k.act(f"language:{language}")
    if answered:
        session.state = ScreenState.IN_CALL  # as after call.connected (no media here)
    await session.handle({"type": "call.ended", "call_id": "c9", "reason": reason,
                          "by": "interpreter"})
    k.publish()
    return k, client


def test_rating_rules_and_time() -> None:
    assert RATING_S == 20.0
    assert rating_offered(True, "hangup", "jsl") and rating_offered(True, "peer_lost", "en")
    assert not rating_offered(False, "hangup", "jsl")  # never answered
    assert not rating_offered(False, "cancelled", "jsl")
    assert not rating_offered(True, "hangup", "test")  # the daily test call


def test_the_rating_screen_has_five_big_faces_and_skip() -> None:
    path = find_font()
    assert path is not None
    canvas, buttons = render(View(state=ScreenState.ENDED, rating=True,
                                  message=("通話が終わりました。", "The call has ended.")),
                             Typeface(path), (1280, 720))
    assert [b.action for b in buttons] == ["rate:1", "rate:2", "rate:3", "rate:4", "rate:5",
                                           "skip-rating"]
    for b in buttons[:5]:
        x, y, w, h = b.rect
        assert w >= 150 and h >= 150  # large touch targets
        assert hit(buttons, x + w // 2, y + h // 2) == b.action
        face = canvas[y:y + h, x:x + w]
        assert (face.max(axis=2) - face.min(axis=2) > 60).sum() > 500  # a coloured face drawn
    plain, plain_buttons = render(View(state=ScreenState.ENDED), Typeface(path), (1280, 720))
    assert [b.action for b in plain_buttons] == ["home"]


async def test_a_tap_sends_the_score_and_goes_home() -> None:
    k, client = await _ended_call()
    assert k.display.view.state is ScreenState.ENDED and k.display.view.rating
    await k.act("rate:4")
    assert client.sent[-1] == ("call.rate", {"call_id": "c9", "score": 4})
    assert k.session.state is ScreenState.HOME and k.session.rating_call is None


async def test_key_2_rates_and_s_skips() -> None:
    k, client = await _ended_call("en")
    await k.act("key:2")
    assert client.sent[-1] == ("call.rate", {"call_id": "c9", "score": 2})
    k, client = await _ended_call()
    await k.act("key:s")
    assert k.session.state is ScreenState.HOME
    assert not [m for m, _ in client.sent if m == "call.rate"]


@pytest.mark.parametrize(("language", "answered", "reason"), [
    ("jsl", False, "cancelled"), ("jsl", False, "timeout"), ("test", True, "hangup")])
async def test_no_faces_after_an_unanswered_or_test_call(language: str, answered: bool,
                                                         reason: str) -> None:
    k, _ = await _ended_call(language, answered=answered, reason=reason)
    assert not k.display.view.rating and k.session.rating_call is None


async def test_the_faces_go_by_themselves() -> None:
    client = ScriptedClient()
    session = KioskSession(client, make_tracks=list)  # type: ignore[arg-type]
    session.rating_s = 0.3  # shortened here; the 20 s default is checked as a value above
    display = Display((1280, 720), fullscreen=False, on_input=lambda _: None)
    k = WindowedKiosk(session, display, None, asyncio.Queue())
    await k.act("language:jsl")
    session.state = ScreenState.IN_CALL
    await session.handle({"type": "call.ended", "call_id": "c9", "reason": "hangup",
                          "by": "kiosk"})
    runner = asyncio.create_task(k.run())
    try:
        await asyncio.sleep(0.15)
        assert session.state is ScreenState.ENDED and session.rating_call == "c9"
        await session.wait_for(ScreenState.HOME, within_s=2.0)
    finally:
        runner.cancel()
    assert not [m for m, _ in client.sent if m == "call.rate"]
