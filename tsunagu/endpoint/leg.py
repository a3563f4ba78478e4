"""One party's media leg to the relay (PROTOCOL.md section 6), shared by kiosk and bot.

On ``call.connected`` the party makes an RTCPeerConnection with its audio and
video tracks (sendrecv), a complete offer, sends ``media.offer`` and applies
the relay's ``media.answer``. On ``media.failed`` it offers again with a fresh
peer connection. Received tracks are metered (frames, fps, stamp latency).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from typing import Any

import av
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamTrack

from tsunagu.client import SignalingClient
from tsunagu.endpoint.meter import ReceiveStats, TrackMeter
from tsunagu.rtc_internals import (
    install_early_frame_release,
    restrict_ice_addresses,
    rtc_configuration,
    uninstall_early_frame_release,
)
from tsunagu.settings import parse_ice_addresses

log = logging.getLogger(__name__)

OFFER_TIMEOUT_S = 20.0
PREFERRED = {"audio": ("audio/opus",), "video": ("video/VP8", "video/rtx")}


def prepare_rtc(*, early_release: bool = True) -> None:
    """Process-wide aiortc setup: ICE addresses from TSUNAGU_ICE_ADDRESSES, frame release.

    Both settings are process-wide (module globals of aioice and aiortc): every
    endpoint in one process shares them, so the last call wins.
    """
    restrict_ice_addresses(parse_ice_addresses(os.environ.get("TSUNAGU_ICE_ADDRESSES")))
    if early_release:
        install_early_frame_release()
    else:
        uninstall_early_frame_release()


def _prefer_codecs(pc: RTCPeerConnection) -> None:
    """Offer Opus and VP8 only: what the relay forwards without transcoding."""
    for transceiver in pc.getTransceivers():
        kind = transceiver.kind
        codecs = RTCRtpSender.getCapabilities(kind).codecs
        transceiver.setCodecPreferences([c for c in codecs if c.mimeType in PREFERRED[kind]])


class MediaLeg:
    """Send our tracks to the relay for one call and meter what comes back."""

    def __init__(self, client: SignalingClient, call_id: str, ice_servers: list[dict[str, Any]],
                 tracks: list[MediaStreamTrack],
                 on_video: Callable[[av.VideoFrame], None] | None = None,
                 on_audio: Callable[[av.AudioFrame], None] | None = None) -> None:
        self.client = client
        self.call_id = call_id
        self.ice_servers = ice_servers
        self.tracks = tracks
        self.on_video = on_video
        self.on_audio = on_audio  # each decoded audio frame (the kiosk's speaker)
        self.video = ReceiveStats("video")
        self.audio = ReceiveStats("audio")
        self.offers = 0
        self.pc: RTCPeerConnection | None = None
        # Closing a peer connection ends the tracks it sends, so each connection gets its own
        # proxies of the sources: a re-offer after media.failed still has a camera to send.
        self._fanout = MediaRelay()
        self._meters: list[TrackMeter] = []

    @property
    def state(self) -> str:
        """The peer connection's state, ``new`` before the first offer."""
        return "new" if self.pc is None else str(self.pc.connectionState)

    async def start(self) -> None:
        """(Re)build the peer connection, offer it and apply the relay's answer."""
        await self._close_pc()
        pc = RTCPeerConnection(rtc_configuration(self.ice_servers))
        self.pc = pc
        pc.on("track", lambda track: self._on_track(pc, track))
        pc.on("connectionstatechange", lambda: self._log_state(pc))
        for track in self.tracks:
            pc.addTransceiver(self._fanout.subscribe(track, buffered=False), direction="sendrecv")
        _prefer_codecs(pc)
        await pc.setLocalDescription(await pc.createOffer())  # gathers all candidates
        self.offers += 1
        reply = await self.client.request(
            "media.offer", timeout=OFFER_TIMEOUT_S, call_id=self.call_id,
            sdp=pc.localDescription.sdp,
        )
        if pc is not self.pc:  # replaced while we waited
            return
        await pc.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type="answer"))
        log.info("call %s: media leg offered (offer %d)", self.call_id, self.offers)

    def _log_state(self, pc: RTCPeerConnection) -> None:
        log.info("call %s: media leg -> %s", self.call_id, pc.connectionState)

    def _on_track(self, pc: RTCPeerConnection, track: MediaStreamTrack) -> None:
        if pc is not self.pc:
            return  # a replaced connection's late track: its meters are gone with it
        stats = self.video if track.kind == "video" else self.audio
        on_video = self.on_video if track.kind == "video" else None
        on_audio = self.on_audio if track.kind == "audio" else None
        self._meters.append(TrackMeter(track, stats, on_video, on_audio))

    async def wait_connected(self, within_s: float) -> bool:
        """Wait until the peer connection reports connected; False if not within ``within_s``.

        A failed connection does not end the wait: the relay reports it (``media.failed``)
        and the session offers again, so the leg may still connect in time.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while loop.time() < deadline:
            if self.state == "connected":
                return True
            await asyncio.sleep(0.05)
        return False

    async def outbound(self) -> dict[str, dict[str, Any]]:
        """Per kind, what this leg sent and whether the relay's receiver reports (RTCP RR)
        acknowledge it: ``{packets_sent, acknowledged, rtt_ms, packets_lost}``."""
        out: dict[str, dict[str, Any]] = {}
        if self.pc is None:
            return out
        for sender in self.pc.getSenders():
            if sender.track is None:
                continue
            entry: dict[str, Any] = {"packets_sent": 0, "acknowledged": False,
                                     "rtt_ms": None, "packets_lost": None}
            for stat in (await sender.getStats()).values():
                if stat.type == "outbound-rtp":
                    entry["packets_sent"] = stat.packetsSent
                elif stat.type == "remote-inbound-rtp":
                    entry["acknowledged"] = True
                    entry["packets_lost"] = stat.packetsLost
                    if stat.roundTripTime is not None:
                        entry["rtt_ms"] = round(stat.roundTripTime * 1000, 1)
            out[sender.track.kind] = entry
        return out

    async def _close_pc(self) -> None:
        for meter in self._meters:
            await meter.stop()
        self._meters.clear()
        if self.pc is not None:
            pc, self.pc = self.pc, None
            with contextlib.suppress(Exception):
                await pc.close()

    async def close(self) -> None:
        """Close the peer connection; the tracks stay usable for another leg."""
        await self._close_pc()

    def summary(self) -> dict[str, Any]:
        """Frames sent and received, fps and latency of this leg."""
        sent = {t.kind: getattr(t, "frames_sent", None) for t in self.tracks}
        return {
            "offers": self.offers,
            "sent": sent,
            "received": {"video": self.video.summary(), "audio": self.audio.summary()},
        }
