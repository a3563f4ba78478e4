"""The kiosk's side of the protocol: place a call, follow the queue, run media, end.

``KioskSession`` reads the server's pushed messages and keeps what the
screen needs (state, queue position, chat, the media leg). It is shared by
the windowed app and the headless runner. Reconnecting and resuming is done
by the SignalingClient underneath; after a resume the server resends the
call's state and this class carries on from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import av
from aiortc.mediastreams import MediaStreamTrack

from kiosk_client.screen import Language, ScreenState
from kiosk_client.test_call import run_test_call
from tsunagu.client import Message, ServerError, SignalingClient
from tsunagu.endpoint.leg import MediaLeg
from tsunagu.languages import TEST_LANGUAGE
from tsunagu.protocol import ProtocolError
from tsunagu.server_messages import (
    CallConnected,
    CallEnded,
    CallPosition,
    CallQueued,
    Chat,
    KioskTestDue,
    MediaFailed,
    parse_server_message,
)

log = logging.getLogger(__name__)

PUSHED = ("call.queued", "call.position", "call.connected", "call.ended", "media.failed",
          "chat", "kiosk.test_due", "_closed", "_reconnected")

END_MESSAGES: dict[str, tuple[str, str]] = {
    "hangup": ("通話が終わりました。", "The call has ended."),
    "cancelled": ("呼び出しをやめました。", "The call was cancelled."),
    "no_interpreter": ("ただいまこの言語の通訳者がいません。窓口の職員にお知らせください。",
                       "No interpreter for this language is available now. Please tell the staff."),
    "timeout": ("お待たせしました。ただいま通訳者につながりません。",
                "Sorry, no interpreter could take the call in time."),
    "peer_lost": ("通訳者との接続が切れました。", "The connection to the interpreter was lost."),
    "transferred": ("別の通訳者におつなぎします。", "Transferring you to another interpreter."),
    "failed": ("通話できませんでした。もう一度お試しください。",
               "The call failed. Please try again."),
}
CLOSED = ("サーバーに接続できません。職員にお知らせください。",
          "Cannot reach the service. Please tell the staff.")

# The one-tap rating after a real answered call (PROTOCOL.md section 15): up this long.
RATING_S = 20.0


def rating_offered(was_in_call: bool, reason: str | None, language: str | None) -> bool:
    """Whether the resident is asked to rate the call that just ended: only a real call that
    was answered (the kiosk was in it), never a cancelled or unanswered one, nor a test."""
    return was_in_call and reason not in ("cancelled", "transferred") \
        and language != TEST_LANGUAGE


def end_message(reason: str | None) -> tuple[str, str]:
    """What to tell the resident when a call ends for ``reason``."""
    return END_MESSAGES.get(reason or "", END_MESSAGES["hangup"])


def languages_of(welcome: Message) -> tuple[Language, ...]:
    """The language buttons from ``welcome.languages``."""
    return tuple(
        Language(code=str(lang["code"]), name=str(lang.get("name") or lang["code"]),
                 name_en=str(lang.get("name_en") or lang.get("name") or lang["code"]))
        for lang in welcome.get("languages", [])
    )


class KioskSession:
    """One kiosk's calls over one signaling connection."""

    def __init__(self, client: SignalingClient,
                 make_tracks: Callable[[], list[MediaStreamTrack]],
                 on_video: Callable[[av.VideoFrame], None] | None = None,
                 on_audio: Callable[[av.AudioFrame], None] | None = None) -> None:
        self.client = client
        self.make_tracks = make_tracks
        self.on_video = on_video
        self.on_audio = on_audio
        self.state = ScreenState.HOME
        self.call_id: str | None = None
        self.language: str | None = None
        self.position: int | None = None
        self.estimated_wait_s: float | None = None
        self.wait_range_s: tuple[float, float] | None = None
        self.none_available = False
        self.peer: dict[str, Any] = {}
        self.chat: list[str] = []
        self.message: tuple[str, str] | None = None
        self.end_reason: str | None = None
        self.leg: MediaLeg | None = None
        self.changed = asyncio.Event()
        self._leg_task: asyncio.Task[None] | None = None
        self._tracks: list[MediaStreamTrack] = []
        self._early: list[Message] = []
        self._adopt = False
        self.rating_s = RATING_S
        self.rating_call: str | None = None  # the call the faces rate while they are up
        self.rating_until = 0.0  # loop time when the faces go
        # the fleet's health report: the last call's RTCP figures, and a hook on reconnect
        self.last_outbound: dict[str, dict[str, Any]] = {}
        self.on_reconnected: Callable[[], None] | None = None
        self._test: asyncio.Task[Any] | None = None  # the test call running, if any
        self.test_results: list[dict[str, Any]] = []  # what this kiosk's test calls reported
        self._strays: set[asyncio.Task[None]] = set()

    @property
    def testing(self) -> bool:
        """A test call is running (the screen shows 点検中 / Self-check, not a call)."""
        return self._test is not None and not self._test.done()

    @property
    def idle(self) -> bool:
        """No call live and no test running: a ``kiosk.test_due`` may place the test call."""
        return not self.testing and (self.state is ScreenState.HOME
                                     or (self.state is ScreenState.ENDED))

    def _set_state(self, state: ScreenState) -> None:
        if state is not self.state:
            log.info("kiosk call %s: %s -> %s", self.call_id, self.state, state)
            self.state = state
        self.changed.set()

    async def run(self) -> None:
        """Handle pushed messages until the connection closes for good."""
        while True:
            try:
                msg = await self.client.next(*PUSHED, timeout=3600)
            except TimeoutError:
                continue
            if msg["type"] == "_closed":
                self.message = CLOSED
                self._set_state(ScreenState.ERROR)
                return
            await self.handle(msg)

    async def handle(self, msg: Message) -> None:
        """Apply one pushed message."""
        if self._stray_test(msg):
            return
        if msg["type"] == "_reconnected":
            if self.on_reconnected is not None:
                self.on_reconnected()
            return
        if not self._ours(msg):
            return
        try:
            typed = parse_server_message(msg)
        except ProtocolError as exc:
            log.warning("kiosk call %s: unreadable %s (%s)", self.call_id, msg["type"], exc)
            return
        match typed:
            case KioskTestDue(test_id=test_id):
                self._test_due(test_id)
            case CallQueued() | CallPosition():
                self.position = typed.position
                self.estimated_wait_s = typed.estimated_wait_s
                lo, hi = typed.estimated_wait_min_s, typed.estimated_wait_max_s
                self.wait_range_s = None if lo is None or hi is None else (lo, hi)
                self.none_available = typed.reason == "none_available"
                self._set_state(ScreenState.WAITING)
            case CallConnected(peer=peer, ice_servers=ice_servers):
                self.peer = dict(peer)
                self._set_state(ScreenState.IN_CALL)
                if self.leg is None or self.leg.state != "connected":
                    self._start_leg(list(ice_servers or []))
            case MediaFailed(reason=reason):
                log.info("kiosk call %s: media failed (%s)", self.call_id, reason)
                self._start_leg(self.leg.ice_servers if self.leg else [])
            case Chat(sender=sender, text=text):
                self.chat.append(f"{sender.get('name') or ''}: {text}")
                self.changed.set()
            case CallEnded(reason="transferred"):
                await self._stop_media()
                self.leg, self._adopt = None, True
                self.message = end_message("transferred")
                self._set_state(ScreenState.WAITING)
            case CallEnded(reason=reason):
                await self._ended(reason)

    def _test_due(self, test_id: str) -> None:
        if not self.idle:
            log.info("kiosk: test %s skipped (busy); the server tries again", test_id)
            return
        async def run() -> None:
            try:
                self.test_results.append(await run_test_call(self, test_id))
            except (ServerError, TimeoutError, ConnectionError) as exc:
                log.warning("kiosk: test %s not completed (%s)", test_id, exc)
            finally:
                self.home()

        self._test = asyncio.create_task(run(), name=f"test-call {test_id}")
        self.changed.set()

    def _stray_test(self, msg: Message) -> bool:
        """A test call this kiosk is not running (it restarted, or lost the test in a
        reconnect) is told again on connect: hang it up, so residents can call."""
        if self.testing or msg["type"] not in ("call.queued", "call.connected"):
            return False
        language = msg.get("language") or (msg.get("peer") or {}).get("language")
        if language != TEST_LANGUAGE or msg.get("call_id") == self.call_id:
            return False
        log.info("kiosk: hanging up a stray test call %s", msg.get("call_id"))

        async def hang_up() -> None:
            with contextlib.suppress(ServerError, TimeoutError, ConnectionError):
                await self.client.request("call.hangup", call_id=msg["call_id"])
        self._strays.add(task := asyncio.create_task(hang_up(), name="stray test call"))
        task.add_done_callback(self._strays.discard)
        return True

    async def stop_test(self) -> None:
        """End a running test call unreported (a resident tapped a language)."""
        task, self._test = self._test, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await self._stop_media()  # its call.ended may come after our next call began
            log.info("kiosk: test call ended for a resident's call")

    def _ours(self, msg: Message) -> bool:
        """Whether ``msg`` is about our call; keep messages that may be (see request_call)."""
        call_id = msg.get("call_id")
        if call_id is None or call_id == self.call_id:
            return True
        if self._adopt and msg["type"] in ("call.queued", "call.connected"):
            log.info("kiosk call %s: continues as %s", self.call_id, call_id)
            self.call_id, self._adopt = str(call_id), False
            return True
        # A push can overtake the reply to call.request: keep it until the call id is known.
        self._early = [*self._early[-15:], msg]
        return False

    def _start_leg(self, ice_servers: list[dict[str, Any]]) -> None:
        assert self.call_id is not None
        if self.leg is None:
            self._tracks = self.make_tracks()
            self.leg = MediaLeg(self.client, self.call_id, ice_servers, self._tracks,
                                on_video=self.on_video, on_audio=self.on_audio)
        if self._leg_task is not None and not self._leg_task.done():
            self._leg_task.cancel()
        self._leg_task = asyncio.create_task(self._offer(), name="kiosk-media-offer")

    async def _offer(self) -> None:
        assert self.leg is not None
        try:
            await self.leg.start()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the server answers media.failed or we offer on resume
            log.warning("kiosk call %s: media offer failed: %s", self.call_id,
                        type(exc).__name__)

    async def _ended(self, reason: str | None) -> None:
        call_id = self.call_id
        self.end_reason = reason
        self.message = end_message(reason)
        if rating_offered(self.state is ScreenState.IN_CALL, reason, self.language):
            self.rating_call = self.call_id
            self.rating_until = asyncio.get_running_loop().time() + self.rating_s
        if self.leg is not None:
            with contextlib.suppress(Exception):  # figures for the health report, if any
                async with asyncio.timeout(2.0):
                    self.last_outbound = await self.leg.outbound() or self.last_outbound
        await self._stop_media()
        if call_id is not None and self.call_id is None:
            return  # sent home meanwhile (a finished test call): stay there
        self._set_state(ScreenState.ENDED)

    async def rate(self, score: int) -> None:
        """The resident tapped a face: send the score (only the score), then home."""
        call_id = self.rating_call
        self.home()
        if call_id is not None:
            await self.client.request("call.rate", call_id=call_id, score=score)

    def rating_over(self, now: float) -> bool:
        """Whether the faces are up past their time (then the caller goes home)."""
        return self.rating_call is not None and now >= self.rating_until

    async def _stop_media(self) -> None:
        if self._leg_task is not None:
            self._leg_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._leg_task
        if self.leg is not None:
            await self.leg.close()
        for track in self._tracks:
            track.stop()

    async def request_call(self, language: str, priority: str = "normal",
                           test_id: str | None = None) -> Message:
        """Ask for an interpreter; returns ``call.queued``. A resident's call ends a running
        test call first (a real call wins); ``test_id``: the test call itself."""
        if test_id is None and self.testing:
            await self.stop_test()
        self.leg, self._tracks, self.chat, self.end_reason = None, [], [], None
        self.language = language
        fields: dict[str, Any] = {"language": language, "priority": priority}
        if test_id is not None:
            fields["test_id"] = test_id
        queued = await self.client.request("call.request", **fields)
        self.call_id = str(queued["call_id"])
        await self.handle(queued)
        early, self._early = self._early, []
        for msg in early:
            if msg.get("call_id") == self.call_id:
                await self.handle(msg)
        return queued

    async def cancel(self) -> None:
        """Give up while waiting (hang up if the call was answered meanwhile)."""
        if self.call_id is not None:
            kind = "call.hangup" if self.state is ScreenState.IN_CALL else "call.cancel"
            await self.client.request(kind, call_id=self.call_id)

    async def hangup(self) -> None:
        """End the call."""
        if self.call_id is not None:
            await self.client.request("call.hangup", call_id=self.call_id)

    async def send_chat(self, text: str) -> None:
        """Send a chat line to the interpreter."""
        if self.call_id is not None and text.strip():
            await self.client.request("chat.send", call_id=self.call_id, text=text[:2000])

    def home(self) -> None:
        """Back to the language buttons."""
        self.call_id, self.position, self.estimated_wait_s = None, None, None
        self.wait_range_s, self.none_available = None, False
        self.message = None
        self.rating_call = None
        self._set_state(ScreenState.HOME)

    async def wait_for(self, *states: ScreenState, within_s: float) -> ScreenState:
        """Wait until the session is in one of ``states``; TimeoutError otherwise."""
        async with asyncio.timeout(within_s):
            while self.state not in states:
                self.changed.clear()
                await self.changed.wait()
        return self.state

    async def close(self) -> None:
        """Stop media."""
        await self._stop_media()
