"""One party's WebRTC leg at the relay: an aiortc peer connection answered from an
offer, whose decrypted packets go to the call instead of aiortc's frame pipeline."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCPeerConnection,
    RTCRtpCodecParameters,
    RTCSessionDescription,
)
from aiortc.sdp import SessionDescription

from relay.errors import BadOffer
from relay.estimate import LegEstimate
from relay.forwarder import (
    MID_URI,
    CodecKey,
    InboundCodec,
    PacketCache,
    StreamAnchor,
    codec_key,
    mid_element,
)
from relay.quality import LegCounters, LegRates
from tsunagu import rtc_internals

logger = logging.getLogger(__name__)

KINDS = ("audio", "video")
SSRC_TAKEOVER_MS = 1000.0  # silence after which another SSRC of one kind becomes the source
PacketSink = Callable[["Leg", bytes], Awaitable[None]]
RtpSink = Callable[["Leg", bytes], None]
StateSink = Callable[["Leg", str], Awaitable[None]]


class IdleTrack(MediaStreamTrack):
    """A track that never yields: the sender negotiates and reports, the relay sends."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def recv(self) -> Any:
        await self._never


@dataclass(slots=True)
class OutStream:
    """What the relay sends on one leg for one kind of media."""

    kind: str
    sender: Any
    dtls: Any
    ssrc: int
    mid: str
    mid_elem: bytes
    ext_ids: dict[str, int]
    pt_by_key: dict[CodecKey, int]
    anchor: StreamAnchor = field(default_factory=StreamAnchor)
    cache: PacketCache = field(default_factory=PacketCache)
    # Video reaches this receiver from a keyframe on: the source stream and incoming sequence
    # number it started at (None: waiting for a keyframe), and when a keyframe was last asked.
    start: tuple[int, int] | None = None
    asked_keyframe_ms: float = 0.0


class Leg:
    """A party's leg: answers its offer and hands packets to the call."""

    def __init__(self, call_id: str, party: str, ice_servers: list[dict[str, Any]],
                 on_rtp: RtpSink, on_rtcp: PacketSink, on_state: StateSink) -> None:
        self.call_id = call_id
        self.party = party
        self.pc = RTCPeerConnection(rtc_internals.rtc_configuration(ice_servers))
        self.inbound: dict[int, InboundCodec] = {}
        self.codecs: dict[int, RTCRtpCodecParameters] = {}  # by payload type (transcoding)
        self.in_ext_uris: dict[int, str] = {}
        self.in_ssrc: dict[str, int] = {}
        self.in_seen_ms: dict[str, float] = {}
        self.in_mids: dict[str, str] = {}
        self.in_ext_by_kind: dict[str, dict[int, str]] = {}
        self.out: dict[str, OutStream] = {}
        self.counters = LegCounters()
        self.rates = LegRates()
        self.estimate = LegEstimate()  # of the path from the relay to this party
        self.connected = False
        self.was_connected = False
        self.closed = False
        self._on_rtp, self._on_rtcp, self._on_state = on_rtp, on_rtcp, on_state
        self.pc.on("connectionstatechange", self._state_changed)

    async def answer(self, offer_sdp: str) -> str:
        """Apply the offer, answer it sendrecv, and start taking its packets."""
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        except Exception as exc:  # aiortc raises ValueError, KeyError, InvalidStateError...
            raise BadOffer(type(exc).__name__) from exc
        media = [t for t in self.pc.getTransceivers() if t.kind in KINDS]
        if not media:
            raise BadOffer("no audio or video")
        for transceiver in media:
            transceiver.direction = "sendrecv"
            transceiver.sender.replaceTrack(IdleTrack(transceiver.kind))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        answer: str = self.pc.localDescription.sdp
        self._learn(answer)
        for dtls in rtc_internals.dtls_transports(self.pc):
            rtc_internals.tap_transport(dtls, self._rtp_handler(), self._rtcp_handler(dtls))
            rtc_internals.install_rtp_fast_path(dtls, self._take_rtp)
        return answer

    def _learn(self, answer_sdp: str) -> None:
        description = SessionDescription.parse(answer_sdp)
        transceivers = {t.mid: t for t in self.pc.getTransceivers()}
        for m in description.media:
            transceiver = transceivers.get(m.rtp.muxId)
            if m.kind not in KINDS or m.port == 0 or transceiver is None:
                continue
            ext_ids = {x.uri: x.id for x in m.rtp.headerExtensions}
            self.in_mids.setdefault(m.kind, m.rtp.muxId)
            self.in_ext_by_kind.setdefault(m.kind, {x.id: x.uri for x in m.rtp.headerExtensions})
            self.in_ext_uris.update({x.id: x.uri for x in m.rtp.headerExtensions})
            pt_by_key: dict[CodecKey, int] = {}
            for c in m.rtp.codecs:
                if c.payloadType is None:
                    continue
                key = codec_key(c.mimeType, c.clockRate, c.parameters)
                apt = c.parameters.get("apt") if key[0].endswith("/rtx") else None
                self.codecs[c.payloadType] = c
                self.inbound[c.payloadType] = InboundCodec(
                    m.kind, key, c.clockRate, int(apt) if apt is not None else None)
                if apt is None:
                    pt_by_key.setdefault(key, c.payloadType)
            if m.kind not in self.out:
                sender = transceiver.sender
                self.out[m.kind] = OutStream(
                    kind=m.kind, sender=sender, dtls=sender.transport,
                    ssrc=rtc_internals.sender_ssrc(sender),
                    mid=transceiver.mid or "",
                    mid_elem=mid_element(ext_ids.get(MID_URI), transceiver.mid),
                    ext_ids=ext_ids, pt_by_key=pt_by_key)

    def _take_rtp(self, data: bytes) -> None:
        self._on_rtp(self, data)

    def _rtp_handler(self) -> rtc_internals.RtpHandler:
        async def handle(data: bytes, arrival_time_ms: int) -> None:
            self._on_rtp(self, data)
        return handle

    def _rtcp_handler(self, dtls: Any) -> rtc_internals.RtcpHandler:
        async def handle(data: bytes) -> None:
            await self._on_rtcp(self, data)
            if _has_reports(data):
                await rtc_internals.deliver_rtcp_to_aiortc(dtls, data)
        return handle

    def out_kind_of(self, ssrc: int) -> str | None:
        """The kind of media the relay sends on this leg with ``ssrc``."""
        for kind, out in self.out.items():
            if out.ssrc == ssrc:
                return kind
        return None

    def accept_ssrc(self, kind: str, ssrc: int, now_ms: float) -> bool:
        """Whether a packet from ``ssrc`` is this leg's source of ``kind``.

        The first SSRC seen is pinned. Another takes over only once the pinned one has been
        silent for SSRC_TAKEOVER_MS (the endpoint restarted its sender): two streams of one
        kind interleaved would re-anchor the outgoing numbering on every packet.
        """
        pinned = self.in_ssrc.get(kind)
        if pinned != ssrc:
            if pinned is not None and now_ms - self.in_seen_ms[kind] < SSRC_TAKEOVER_MS:
                self.counters.other_ssrc_in += 1
                return False
            self.in_ssrc[kind] = ssrc
        self.in_seen_ms[kind] = now_ms
        return True

    def send_rtp(self, out: OutStream, packet: bytes, timestamp: int | None, payload: int,
                 frame_end: bool) -> None:
        """Send a rewritten packet now; dropped (and counted) when the leg cannot take it.

        ``timestamp`` is the packet's RTP timestamp when it is the newest of its stream (it
        then dates the next Sender Report), None for a late packet or a resend.
        """
        if not rtc_internals.send_rtp_now(out.dtls, packet):
            self.counters.dropped_out += 1
            return
        rtc_internals.note_sent(out.sender, timestamp, payload)
        c = self.counters
        c.packets_out += 1
        c.bytes_out += len(packet)
        if frame_end:
            c.frames_out += 1

    async def send_rtcp(self, kind: str, packet: bytes) -> None:
        """Send an RTCP packet on the transport that carries ``kind``."""
        out = self.out.get(kind) or next(iter(self.out.values()), None)
        if out is None or not self.connected:
            return
        try:
            await rtc_internals.send_plain(out.dtls, packet)
        except ConnectionError:
            return

    def take_reports(self, reports: list[Any]) -> None:
        """Report blocks from this party's SR/RR: the loss on what the relay sends it."""
        for report in reports:
            if self.out_kind_of(report.ssrc) == "video":
                self.estimate.on_loss_report(report.fraction_lost)

    def update_estimate(self, now: float) -> int:
        """Feed this interval's round trip and send queue to the estimate, and update it."""
        rtt = self.rtt_s()
        if rtt is not None:
            self.estimate.on_rtt(rtt)
        for out in self.out.values():
            self.estimate.on_send_queue(rtc_internals.send_queue_bytes(out.dtls))
            break  # one transport carries every kind (BUNDLE)
        return self.estimate.update(now, self.counters.bytes_out)

    def rtt_s(self) -> float | None:
        """Round-trip time to this party, from its reports on what the relay sends."""
        values = [r for o in self.out.values()
                  if (r := rtc_internals.sender_rtt(o.sender)) is not None]
        return min(values) if values else None

    async def _state_changed(self) -> None:
        state = self.pc.connectionState
        logger.info("call %s leg %s: connection %s", self.call_id, self.party, state)
        self.connected = state == "connected"
        self.was_connected = self.was_connected or self.connected
        await self._on_state(self, state)

    def failure_reason(self) -> str:
        """Why the leg failed, in the words of the relay events stream."""
        return "ice_failed" if self.pc.iceConnectionState == "failed" else "dtls_failed"

    async def close(self) -> None:
        """Close the peer connection (idempotent)."""
        if not self.closed:
            self.closed = True
            self.connected = False
            await self.pc.close()


def _has_reports(data: bytes) -> bool:
    """Whether an RTCP compound packet carries an SR or RR (for aiortc's RTT bookkeeping)."""
    pos = 0
    while pos + 4 <= len(data):
        if data[pos + 1] in (200, 201):
            return True
        pos += 4 + 4 * int.from_bytes(data[pos + 2:pos + 4], "big")
    return False
