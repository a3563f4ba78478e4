"""An automatic answering interpreter: tests, load runs and the kiosks' self-test call.

It logs in, goes available, accepts offers (after an optional delay, declining
a configurable share), sends synthetic video and audio and measures what it
receives, hangs up after a talk time (or waits for the other side), then goes
through wrap-up. With ``media=False`` it answers without WebRTC, so one
process can run many bots cheaply.

    echo pw | python -m interpreter_console.bot --server http://127.0.0.1:8080 \
        --username alice --password-stdin --talk 30
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from tsunagu.client import Message, ServerError, SignalingClient, login, server_urls
from tsunagu.endpoint.leg import MediaLeg, prepare_rtc
from tsunagu.endpoint.tracks import SyntheticVideoTrack, ToneAudioTrack
from tsunagu.languages import TEST_LANGUAGE
from tsunagu.runtime import release_free_heap
from tsunagu.settings import BotSettings

log = logging.getLogger(__name__)

IDLE_TYPES = ("call.offer", "call.offer_cancelled", "presence", "_closed", "_reconnected")
CALL_TYPES = ("call.ended", "media.failed", "call.connected", "chat")
TEST_REPORT_S = 1.0  # on a test call, tell the server what arrived this often
TEST_CALL_MAX_S = 90.0  # the kiosk ends a test call; hang up ourselves after this


class BotError(Exception):
    """The bot cannot go on (refused login, socket closed for good)."""


@dataclass
class CallRecord:
    """One answered call, as the bot saw it."""

    call_id: str
    language: str
    ward: str | None
    counter: str | None
    waited_s: float | None
    end_reason: str | None = None
    ended_by: str | None = None
    duration_s: float | None = None
    media: dict[str, Any] | None = None


@dataclass
class BotReport:
    """Everything a bot did."""

    offers: int = 0
    declined: int = 0
    lost_offers: int = 0
    calls: list[CallRecord] = field(default_factory=list)


class AnsweringBot:
    """One answering interpreter on one signaling connection."""

    def __init__(self, config: BotSettings) -> None:
        self.config = config
        self.report = BotReport()
        self.client: SignalingClient | None = None
        self.state = "offline"
        self.leg: MediaLeg | None = None  # the current call's media, when media is on
        self._rng = random.Random(config.seed)
        self.ready = asyncio.Event()

    async def run(self) -> BotReport:
        """Log in, serve calls until ``max_calls`` (or cancellation), and return the report."""
        http_base, ws_url = server_urls(self.config.server)
        token = await login(http_base, self.config.username, self.config.password)
        self.client = SignalingClient(
            ws_url, token, answers=TEST_LANGUAGE if self.config.test_calls else None)
        try:
            await self.client.connect()
            if self.config.media:
                prepare_rtc(early_release=self.config.early_release)
            await self.client.request("presence.set", status="available")
            self.ready.set()
            while self.config.max_calls is None or len(self.report.calls) < self.config.max_calls:
                await self._serve_one()
        finally:
            await self.client.close()
        return self.report

    async def _next_idle(self) -> Message:
        assert self.client is not None
        while True:
            msg = await self.client.next(*IDLE_TYPES, timeout=self.config.max_call_s)
            kind = msg["type"]
            if kind == "_closed":
                raise BotError(f"connection closed for good (code {msg.get('code')})")
            if kind == "presence":
                self._set_state(str(msg.get("state")))
            elif kind == "call.offer":
                return msg

    def _set_state(self, state: str) -> None:
        if state != self.state:
            log.info("bot %s: %s -> %s", self.config.username, self.state, state)
            self.state = state

    async def _serve_one(self) -> None:
        offer = await self._next_idle()
        self.report.offers += 1
        assert self.client is not None
        ids = {"call_id": offer["call_id"], "offer_id": offer["offer_id"]}
        if self._rng.random() < self.config.decline_rate:
            with contextlib.suppress(ServerError):
                await self.client.request("call.decline", **ids)
            self.report.declined += 1
            return
        if self.config.accept_delay_s > 0:
            await asyncio.sleep(self.config.accept_delay_s)
        try:
            reply = await self.client.request("call.accept", **ids)
        except ServerError as exc:
            if exc.code not in ("conflict", "not_found"):
                raise
            log.info("call %s: offer lost (%s)", offer["call_id"], exc.code)
            self.report.lost_offers += 1
            return
        if reply.get("type") != "call.connected":
            reply = await self.client.next("call.connected", call_id=offer["call_id"])
        record = CallRecord(
            call_id=offer["call_id"], language=str(offer.get("language")),
            ward=offer.get("ward"), counter=offer.get("counter"), waited_s=offer.get("waited_s"),
        )
        self.report.calls.append(record)
        self._set_state("in_call")
        await self._talk(reply, record)
        if record.language == TEST_LANGUAGE:
            # nobody talked: ready for the next call (a resident's, or another test) at once
            with contextlib.suppress(ServerError):
                await self.client.request("presence.set", status="available")
            self._set_state("available")
            return
        await self._wrapup()

    async def _talk(self, connected: Message, record: CallRecord) -> None:
        assert self.client is not None
        leg = self.leg = self._media_leg(connected) if self.config.media else None
        try:
            if leg is not None:
                try:
                    await leg.start()
                except ServerError as exc:  # a call ended before its media: wait for the end
                    log.info("call %s: media offer refused (%s)", record.call_id, exc.code)
            ended = await self._until_end(record.call_id, leg,
                                          test=record.language == TEST_LANGUAGE)
        finally:
            if leg is not None:
                record.media = leg.summary()
                self.leg = None
                await leg.close()
                for track in leg.tracks:
                    track.stop()
                # the call's decoder and encoder memory is free now; without handing it back
                # a bot answering calls all day grows by megabytes a call (allocator arenas)
                release_free_heap()
        record.end_reason = ended.get("reason")
        record.ended_by = ended.get("by")
        record.duration_s = ended.get("duration_s")
        log.info("call %s: ended (%s)", record.call_id, record.end_reason)

    def _media_leg(self, connected: Message) -> MediaLeg:
        assert self.client is not None
        tracks = [ToneAudioTrack(freq=660.0), SyntheticVideoTrack()]
        ice = list(connected.get("ice_servers") or [])
        return MediaLeg(self.client, connected["call_id"], ice, tracks)

    async def _until_end(self, call_id: str, leg: MediaLeg | None, *, test: bool = False
                         ) -> Message:
        """Handle the call's messages until ``call.ended``; hang up when the talk time is over.
        A test call is the kiosk's to end: meanwhile say what arrives, each second."""
        assert self.client is not None
        loop = asyncio.get_running_loop()
        talk = self.config.talk_s if self.config.talk_s is not None else self.config.max_call_s
        if test:
            talk = TEST_CALL_MAX_S
        hangup_at = loop.time() + talk
        report_at = loop.time() + TEST_REPORT_S
        hung_up = False
        while True:
            wait = 30.0 if hung_up else max(hangup_at - loop.time(), 0.0)
            if test and not hung_up:
                wait = min(wait, max(report_at - loop.time(), 0.0))
            try:
                msg = await self.client.next(*CALL_TYPES, timeout=wait, call_id=call_id)
            except TimeoutError:
                if hung_up:
                    raise BotError(f"call {call_id}: no call.ended after hangup") from None
                if test and loop.time() < hangup_at:
                    await self._test_media(call_id, leg)
                    report_at = loop.time() + TEST_REPORT_S
                    continue
                hung_up = True
                with contextlib.suppress(ServerError):
                    await self.client.request("call.hangup", call_id=call_id)
                continue
            if msg["type"] == "call.ended":
                return msg
            await self._call_message(call_id, msg, leg)

    async def _call_message(self, call_id: str, msg: Message, leg: MediaLeg | None) -> None:
        if leg is not None and msg["type"] == "media.failed":
            log.info("call %s: media failed (%s), offering again", call_id, msg.get("reason"))
            await leg.start()
        elif leg is not None and msg["type"] == "call.connected" and leg.state != "connected":
            await leg.start()

    async def _test_media(self, call_id: str, leg: MediaLeg | None) -> None:
        """``test.media``: the frames of the kiosk's video and sound received so far."""
        assert self.client is not None
        video = leg.video.summary() if leg is not None else {"frames": 0, "fps": 0.0}
        audio = leg.audio.summary() if leg is not None else {"frames": 0}
        with contextlib.suppress(ServerError, TimeoutError):
            await self.client.request("test.media", call_id=call_id,
                                      video_frames=video["frames"],
                                      audio_frames=audio["frames"], fps_in=video["fps"])

    async def _wrapup(self) -> None:
        assert self.client is not None
        self._set_state("wrapup")
        if self.config.wrapup_s is not None:
            await asyncio.sleep(self.config.wrapup_s)
            await self.client.request("presence.set", status="available")
        self._set_state("available")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The bot's command line (tsunagu.settings.BotSettings)."""
    return BotSettings.parser().parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m interpreter_console.bot``: run one bot and print its report as JSON."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    password = sys.stdin.readline().rstrip("\n")
    config = BotSettings.from_args(args, password)
    bot = AnsweringBot(config)
    try:
        report = asyncio.run(bot.run())
    except KeyboardInterrupt:
        report = bot.report
    except (BotError, ServerError) as exc:
        print(f"bot: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(asdict(report), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
