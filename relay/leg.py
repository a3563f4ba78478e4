"""One party's WebRTC leg at the relay: an aiortc peer connection answered from an
offer, whose decrypted packets go to the call instead of aiortc's frame pipeline."""

from __future__ import annotations

import asyncio
import logging
import time
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
from relay.estimate import ONE_WAY_QUEUE_S, LegEstimate
from relay.forwarder import (
    ABS_SEND_TIME_URI,
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
NTP_EPOCH_S = 2_208_988_800  # 1900 to 1970: NTP timestamps (as aiortc's) from the Unix clock
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
        self.in_abs_send_id = 0  # abs-send-time's id in this party's video packets, 0: none
        self.out: dict[str, OutStream] = {}
        self.counters = LegCounters()
        self.rates = LegRates()
        # the relay's estimates of the paths from the relay to this party and back
        self.downlink = LegEstimate()
        self.uplink = LegEstimate(delay_queue_s=ONE_WAY_QUEUE_S)
        self.report_rtt_s = float("inf")  # the least round trip reported since the last update
        self.reports_from: float | None = None  # when the relay's next RR to this party is due
        self.remb_sent: tuple[int, float] = (0, float("-inf"))  # the last REMB to it, when
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
            if m.kind == "video" and not self.in_abs_send_id:
                self.in_abs_send_id = ext_ids.get(ABS_SEND_TIME_URI, 0)
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
        """Report blocks from this party's SR/RR on what the relay sends it: the video's
        loss, and each block's round trip (RFC 3550 6.4.1: now - LSR - DLSR), unsmoothed:
        Chromium reports with every NACK, so a queue shows within a fraction of a second
        (aiortc's own smoothed figure takes seconds)."""
        now_ntp = int((time.time() + NTP_EPOCH_S) * 65536) & 0xFFFFFFFF
        for report in reports:
            kind = self.out_kind_of(report.ssrc)
            if kind == "video":
                self.downlink.on_loss_report(report.highest_sequence, report.packets_lost)
            if kind is not None and report.lsr:
                rtt = ((now_ntp - report.lsr - report.dlsr) & 0xFFFFFFFF) / 65536
                if rtt < self.report_rtt_s:
                    self.report_rtt_s = rtt

    def update_estimates(self, now: float) -> None:
        """Update both estimates with this interval's signals.

        Downlink: this party's reports on what the relay sends it (loss, the least round
        trip of the interval), the relay's send queue. (The loss it reports includes what
        the other party's packets lost on their way to the relay: sequence numbers pass
        through unchanged, so the downlink estimate is really of the path from the other
        party's sender to this one.)
        Uplink: what the relay itself receives of this party's video, how much of it, and
        how late its frames arrive after the sender's pacer sent them (abs-send-time: the
        RTP timestamp would count the encoder's and pacer's own delays, which a slow
        endpoint or a lowered target lengthen, as a queue).
        """
        if self.report_rtt_s != float("inf"):
            self.downlink.on_delay(self.report_rtt_s)
            self.report_rtt_s = float("inf")
        for out in self.out.values():
            self.downlink.on_send_queue(rtc_internals.send_queue_bytes(out.dtls))
            break  # one transport carries every kind (BUNDLE)
        self._update(self.downlink, "down", now, self.counters.bytes_out)
        ssrc = self.in_ssrc.get("video")
        loss = self.counters.loss.get(ssrc) if ssrc is not None else None
        if loss is not None and loss.base is not None:
            self.uplink.on_loss_report(loss.highest, loss.expected - loss.received)
        if self.counters.frame_delay_s != float("inf"):
            self.uplink.on_delay(self.counters.frame_delay_s)
            self.counters.frame_delay_s = float("inf")
        self._update(self.uplink, "up", now, self.counters.bytes_in)

    def _update(self, est: LegEstimate, way: str, now: float, total_bytes: int) -> None:
        old, decreases = est.bps, est.decreases
        new = est.update(now, total_bytes)
        if est.decreases != decreases:
            logger.info("call %s leg %s: %slink estimate %d -> %d kbps (%s, %d kbps)",
                        self.call_id, self.party, way, old // 1000, new // 1000, est.reason,
                        est.delivered_bps // 1000)
        else:
            logger.debug("call %s leg %s: %slink estimate %d -> %d kbps (%d kbps)",
                         self.call_id, self.party, way, old // 1000, new // 1000,
                         est.delivered_bps // 1000)

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
