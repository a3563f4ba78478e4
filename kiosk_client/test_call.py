"""The kiosk's daily test call (PROTOCOL.md section 14): on ``kiosk.test_due``, if idle, call
the answering bot (language ``test``), measure a few seconds of media both ways, send
``kiosk.test_result`` and hang up. A resident's tap cancels it: the test is then ended
unreported (the server tries again later).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Protocol

from kiosk_client.screen import ScreenState
from kiosk_client.self_test import judge_test_call
from tsunagu.client import Message, ServerError, SignalingClient
from tsunagu.endpoint.leg import MediaLeg
from tsunagu.languages import TEST_LANGUAGE

log = logging.getLogger(__name__)

MEDIA_S = 5.0  # media measured after the first decoded frame
ANSWER_S = 60.0  # the bot must answer within this (the server ends the call then, too)
FIRST_FRAME_S = 15.0  # after the answer, the bot's first frame must arrive within this


class KioskSession(Protocol):
    """What the test call uses of ``kiosk_client.session.KioskSession``."""

    client: SignalingClient
    state: ScreenState
    call_id: str | None
    leg: MediaLeg | None
    end_reason: str | None

    async def request_call(self, language: str, priority: str = "normal",
                           test_id: str | None = None) -> Message: ...

    async def wait_for(self, *states: ScreenState, within_s: float) -> ScreenState: ...

    async def cancel(self) -> None: ...


async def run_test_call(session: KioskSession, test_id: str, *, media_s: float = MEDIA_S,
                        answer_s: float = ANSWER_S,
                        first_frame_s: float = FIRST_FRAME_S) -> dict[str, Any]:
    """Place one test call, report it and hang up; return the result sent."""
    started = time.monotonic()
    measured: dict[str, Any] = {"answered": False}
    try:
        await session.request_call(TEST_LANGUAGE, test_id=test_id)
        try:
            state = await session.wait_for(ScreenState.IN_CALL, ScreenState.ENDED,
                                           ScreenState.ERROR, within_s=answer_s)
        except TimeoutError:
            state = None
        if state is ScreenState.IN_CALL and session.leg is not None:
            measured = await _measure(session, started, media_s, first_frame_s)
        else:
            measured["end_reason"] = session.end_reason or "timeout"
        result = judge_test_call(measured)
        await session.client.request("kiosk.test_result", test_id=test_id, **result)
        log.info("test %s: %s", test_id, "passed" if result["ok"] else result.get("reason"))
        return result
    finally:
        if session.call_id is not None and session.state is not ScreenState.ENDED:
            with contextlib.suppress(ServerError, TimeoutError, ConnectionError):
                await session.cancel()  # hang up (or cancel while it still waits)


async def _measure(session: KioskSession, started: float, media_s: float,
                   first_frame_s: float) -> dict[str, Any]:
    leg = session.leg
    assert leg is not None
    for _ in range(int(first_frame_s / 0.05)):  # the meter counts frames: poll it
        if leg.video.frames or session.state is not ScreenState.IN_CALL:
            break
        await asyncio.sleep(0.05)
    first = leg.video.first_at
    setup_ms = (first - started) * 1000 if first is not None else None
    sent_before = _video_sent(leg)
    t0 = time.monotonic()
    await asyncio.sleep(media_s)
    span = time.monotonic() - t0
    outbound = (await leg.outbound()).get("video") or {}
    sent = outbound.get("packets_sent") or 0
    lost = outbound.get("packets_lost")
    video = leg.video.summary()
    return {
        "answered": True, "frames_in": video["frames"], "audio_in": leg.audio.frames,
        "fps_in": video["fps"], "fps_out": (_video_sent(leg) - sent_before) / span,
        "rtt_ms": outbound.get("rtt_ms"),
        "loss_pct": (100.0 * max(lost, 0) / sent) if sent and lost is not None else None,
        "setup_ms": setup_ms,
    }


def _video_sent(leg: Any) -> int:
    """Frames our video track has produced so far (sent to the relay)."""
    return int(leg.summary()["sent"].get("video") or 0)
