"""A call at the relay: two legs, and the packets and feedback forwarded between them."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPacket,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    pack_remb_fci,
    unpack_remb_fci,
)

from relay.errors import Stale
from relay.estimate import FLOOR_BPS, INTERVAL_S, START_BPS
from relay.forwarder import (
    MID_URI,
    RtpHeader,
    abs_send_time,
    build_packet,
    media_length,
    parse_header,
    starts_keyframe,
    translate_extensions,
    unwrap_rtx,
)
from relay.leg import Leg, OutStream
from relay.quality import InboundLoss, call_flags
from relay.transcode import Transcoder, is_synthetic_source, start_transcoder

logger = logging.getLogger(__name__)

PARTIES = ("kiosk", "interpreter")
# Chromium trusts REMB over its loss-based estimate only in its "start phase", the 2 s after
# the first receiver report it gets; after that it raises its target at most 8 % a second
# (over the lowest of the last second). The relay's first RR waits this long after the
# sender's media started, so the sender ramps on the relay's REMB first (docs/media.md).
FIRST_REPORT_S = 2.5
REPORT_S = 0.5  # then a receiver report this often
REMB_STEP = 0.03  # the relay's REMB is sent when it moved this much (relative)...
REMB_REFRESH_S = 1.0  # ...or this long after the last one
KEYFRAME_ASK_MS = 300.0  # while a receiver waits for its first keyframe, ask this often
CONNECT_TIMEOUT_S = 15.0  # a leg not connected this long after its answer is reported failed
EventSink = Callable[[str, str, str, str], Awaitable[None]]  # call_id, party, event, reason


def other_party(party: str) -> str:
    return "interpreter" if party == "kiosk" else "kiosk"


class Call:
    """Forwards RTP from each leg to the other without decoding, and feedback upstream."""

    def __init__(self, call_id: str, ice_servers: list[dict[str, Any]],
                 on_event: EventSink, connect_timeout_s: float = CONNECT_TIMEOUT_S, *,
                 drop_kinds: frozenset[str] = frozenset()) -> None:
        self.call_id = call_id
        self.drop_kinds = drop_kinds  # TEST ONLY fault injection: forward none of these
        self.modality: str | None = None
        self.legs: dict[str, Leg] = {}
        self.created = time.monotonic()
        self.last_live = self.created  # when a leg was last seen connected
        self.pending = 0  # offers being answered
        self._generation: dict[str, int] = {}
        self._ice_servers = ice_servers
        self._on_event = on_event
        self._id_maps: dict[tuple[int, int], dict[int, int] | None] = {}
        self._transcoders: dict[tuple[str, str], Transcoder] = {}  # by (sending party, kind)
        self._connect_timeout_s = connect_timeout_s
        self._watchdogs: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def offer(self, party: str, sdp: str, modality: str | None) -> str:
        """Answer a party's offer with a new leg, replacing its previous leg if any."""
        if modality:
            self.modality = modality
        generation = self._generation[party] = self._generation.get(party, 0) + 1
        self.pending += 1
        leg = Leg(self.call_id, party, self._ice_servers, self._forward_rtp,
                  self._handle_rtcp, self._leg_state)
        try:
            answer = await leg.answer(sdp)
        except BaseException:
            await leg.close()
            raise
        finally:
            self.pending -= 1
        if self._generation[party] != generation:
            # A newer offer from this party is being answered (or was): never let the older
            # one replace it; the party already dropped this offer's answer.
            await leg.close()
            raise Stale("superseded")
        old = self.legs.get(party)
        self.legs[party] = leg
        self._id_maps.clear()
        self._stop_transcoders()
        self._watch_connect(leg)
        if old is not None:
            logger.info("call %s: %s leg replaced", self.call_id, party)
            await old.close()
        return answer

    async def close(self) -> None:
        """Close both legs."""
        self._stop_transcoders()
        for handle in self._watchdogs.values():
            handle.cancel()
        self._watchdogs.clear()
        for task in list(self._tasks):
            task.cancel()
        legs, self.legs = list(self.legs.values()), {}
        for leg in legs:
            await leg.close()

    # -- media ------------------------------------------------------------------

    def _forward_rtp(self, src: Leg, data: bytes) -> None:
        if self.legs.get(src.party) is not src:
            return  # a replaced leg, still closing
        try:
            self._forward_parsed(src, data)
        except Exception:
            # A malformed packet must never escape into aiortc's transport (which would close
            # the leg) nor flood the log: count it and log the first of each leg.
            src.counters.bad_in += 1
            if src.counters.bad_in == 1:
                logger.warning("call %s leg %s: unforwardable packet", self.call_id, src.party,
                               exc_info=True)

    def _forward_parsed(self, src: Leg, data: bytes) -> None:
        try:
            h = parse_header(data)
        except ValueError:
            return
        now_ms = time.monotonic() * 1000
        codec = src.inbound.get(h.payload_type)
        length = media_length(data, h)
        if codec is None or length == 0:
            return  # padding only (bandwidth probes): nothing to forward or count
        if codec.rtx_apt is not None:
            if length < 2 or not src.accept_ssrc(codec.kind + "/rtx", h.ssrc, now_ms):
                return  # RTX of a second stream must not land in the pinned one
            main_ssrc = src.in_ssrc.get(codec.kind)
            original = src.inbound.get(codec.rtx_apt)
            if main_ssrc is None or original is None:
                return
            h, codec = unwrap_rtx(h, codec.rtx_apt, main_ssrc), original
            length -= 2  # the original sequence number RTX carried in front
        elif not src.accept_ssrc(codec.kind, h.ssrc, now_ms):
            return  # a second stream of one kind: never interleave it with the first
        c = src.counters
        c.packets_in += 1
        c.bytes_in += len(data)
        video = codec.kind == "video"
        if video and h.marker:
            c.frames_in += 1
            if src.in_abs_send_id:  # how late the frame's last packet arrives: a queue
                sent = abs_send_time(h, src.in_abs_send_id)
                if sent is not None:
                    delay = (now_ms / 1000 - sent) % 64.0
                    if delay < c.frame_delay_s:
                        c.frame_delay_s = delay
        loss = c.loss.get(h.ssrc)
        if loss is None:
            loss = c.loss[h.ssrc] = InboundLoss()
        loss.add(h.sequence_number)

        dst = self.legs.get(other_party(src.party))
        if dst is None or not dst.connected or codec.kind in self.drop_kinds:
            return
        out = dst.out.get(codec.kind)
        pt = out.pt_by_key.get(codec.key) if out is not None else None
        if out is None:
            dst.counters.dropped_out += 1
            return
        if pt is None:  # no codec in common: decode and re-encode
            self._transcode(src, dst, codec.kind, h, length)
            return
        if self._transcoders:
            self._stop_transcoder(src.party, codec.kind)  # the sender moved to a shared codec
        if video and not self._from_keyframe(src, dst, out, codec.key[0], h, length, now_ms):
            return
        seq, ts = out.anchor.map(h.ssrc, h.sequence_number, h.timestamp, now_ms,
                                 codec.clock_rate)
        ext = translate_extensions(h, self._id_map(src, dst, codec.kind), out.mid_elem)
        packet = build_packet(h, pt, seq, ts, out.ssrc, ext)
        out.cache.put(seq, packet)
        # only the newest packet moves the Sender Report's clock; a late one just counts
        newest = ts if seq == out.anchor.last_seq else None
        dst.send_rtp(out, packet, newest, len(h.payload), video and h.marker == 1)

    def _from_keyframe(self, src: Leg, dst: Leg, out: OutStream, mime: str, h: RtpHeader,
                       length: int, now_ms: float) -> bool:
        """Whether a video packet may go to ``dst``: a receiver's video starts at the first
        packet of a keyframe (of each new source stream), never in the middle of a frame;
        until one comes its packets are dropped and a keyframe is asked for."""
        start = out.start
        if start is not None and start[0] == h.ssrc:
            # resends of packets from before the start would hand the decoder a fragment
            return ((h.sequence_number - start[1]) & 0xFFFF) < 0x8000
        if starts_keyframe(mime, h.payload[:min(length, 32)]):
            out.start = (h.ssrc, h.sequence_number)
            return True
        dst.counters.waiting_keyframe += 1
        if now_ms - out.asked_keyframe_ms >= KEYFRAME_ASK_MS:
            out.asked_keyframe_ms = now_ms
            task = asyncio.ensure_future(self.request_keyframe(src.party))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return False

    def _id_map(self, src: Leg, dst: Leg, kind: str) -> dict[int, int] | None:
        """Incoming to outgoing extension ids; None when the block can pass unchanged."""
        key = (id(src), id(dst.out[kind]))
        if key in self._id_maps:
            return self._id_maps[key]
        out = dst.out[kind]
        id_map: dict[int, int] | None = {
            i: out.ext_ids[uri] for i, uri in src.in_ext_uris.items()
            if uri in out.ext_ids and uri != MID_URI}
        same_ids = src.in_ext_by_kind.get(kind) == {i: u for u, i in out.ext_ids.items()}
        if same_ids and src.in_mids.get(kind) == out.mid:
            id_map = None
        self._id_maps[key] = id_map
        return id_map

    # -- transcoding (relay/transcode.py) --------------------------------------------

    def _transcode(self, src: Leg, dst: Leg, kind: str, h: RtpHeader, length: int) -> None:
        """Hand a packet the other leg cannot take as it is to this direction's transcoder,
        started on the first such packet (and again if the sender changes codec)."""
        transcoder = self._transcoders.get((src.party, kind))
        if (transcoder is None or transcoder.source_pt != h.payload_type
                or transcoder.source_ssrc != h.ssrc):  # another codec, or a restarted sender
            if transcoder is not None:
                transcoder.close()
            transcoder = start_transcoder(
                self.call_id, src, dst, kind, h.payload_type,
                lambda: self.request_keyframe(src.party),
                lambda seqs: self._nack_upstream(src.party, kind, seqs), h.ssrc)
            if transcoder is None:
                self._transcoders.pop((src.party, kind), None)
                dst.counters.dropped_out += 1  # nothing aiortc can decode or encode
                return
            self._transcoders[(src.party, kind)] = transcoder
        transcoder.push(h.sequence_number, h.timestamp, h.marker, h.payload[:length])

    def _stop_transcoder(self, party: str, kind: str) -> None:
        transcoder = self._transcoders.pop((party, kind), None)
        if transcoder is not None:
            transcoder.close()

    def _stop_transcoders(self) -> None:
        """Close every transcoder (a leg was replaced, or the call ends)."""
        transcoders, self._transcoders = list(self._transcoders.values()), {}
        for transcoder in transcoders:
            transcoder.close()

    def transcoding(self) -> list[str]:
        """The kinds of media this call transcodes (in either direction)."""
        return sorted({kind for _party, kind in self._transcoders})

    # -- feedback ------------------------------------------------------------------

    async def _handle_rtcp(self, src: Leg, data: bytes) -> None:
        try:
            packets = RtcpPacket.parse(data)
        except ValueError:
            return
        for p in packets:
            if isinstance(p, RtcpSrPacket):
                loss = src.counters.loss.get(p.ssrc)
                if loss is not None:
                    loss.last_sr = ((p.sender_info.ntp_timestamp >> 16) & 0xFFFFFFFF,
                                    time.monotonic())
                src.take_reports(p.reports)
            elif isinstance(p, RtcpRrPacket):
                src.take_reports(p.reports)
            elif isinstance(p, RtcpPsfbPacket) and p.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
                src.counters.plis += 1
                transcoder = self._transcoders.get((other_party(src.party), "video"))
                if transcoder is not None:
                    transcoder.force_keyframe()  # the relay's own encoder makes the picture
                else:
                    await self.request_keyframe(other_party(src.party))
            elif isinstance(p, RtcpPsfbPacket) and p.fmt == RTCP_PSFB_APP:
                self._receiver_remb(src, p)
            elif isinstance(p, RtcpRtpfbPacket) and p.fmt == RTCP_RTPFB_NACK:
                src.counters.nacks += 1
                await self._answer_nack(src, p)

    async def send_feedback(self, now: float) -> None:
        """Every INTERVAL_S: update each leg's estimates (relay/estimate.py); tell each
        sending endpoint, every REPORT_S, what the relay received of its streams (RTCP RR:
        its loss and round trip to the relay, as to a peer) and, on video, what it may send
        (the relay's own REMB) whenever that moved or every REMB_REFRESH_S."""
        for leg in self.legs.values():
            if leg.connected:
                leg.update_estimates(now)
        for party in PARTIES:
            sender = self.legs.get(party)
            if sender is None or not sender.connected or not sender.in_ssrc:
                continue
            if sender.reports_from is None:
                sender.reports_from = now + FIRST_REPORT_S
            report = now >= sender.reports_from
            if report:
                sender.reports_from = now + REPORT_S - INTERVAL_S / 2
            for kind in ("audio", "video"):
                up = self._upstream(party, kind)
                if up is not None:
                    await self._feedback(party, kind, *up, now, report)

    async def _feedback(self, party: str, kind: str, leg: Leg, sender_ssrc: int,
                        media_ssrc: int, now: float, report: bool) -> None:
        packet = b""
        loss = leg.counters.loss.get(media_ssrc)
        if report and loss is not None:
            fraction, lost, highest, lsr, dlsr = loss.report_block(now)
            packet = bytes(RtcpRrPacket(ssrc=sender_ssrc, reports=[RtcpReceiverInfo(
                ssrc=media_ssrc, fraction_lost=fraction, packets_lost=lost,
                highest_sequence=highest, jitter=0, lsr=lsr, dlsr=dlsr)]))
        if kind == "video":
            bps, (last_bps, last_at) = self._allowed_bps(party), leg.remb_sent
            if abs(bps - last_bps) > REMB_STEP * last_bps or now - last_at >= REMB_REFRESH_S:
                leg.remb_sent = (bps, now)
                packet += self._remb(party, sender_ssrc, media_ssrc)
        if packet:
            await leg.send_rtcp(kind, packet)

    async def _send_rembs(self) -> None:
        """The relay's REMB alone to each video sender, now."""
        for party in PARTIES:
            up = self._upstream(party, "video")
            if up is not None:
                leg, sender_ssrc, media_ssrc = up
                await leg.send_rtcp("video", self._remb(party, sender_ssrc, media_ssrc))

    def _remb(self, party: str, sender_ssrc: int, media_ssrc: int) -> bytes:
        return bytes(RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=sender_ssrc, media_ssrc=0,
                                    fci=pack_remb_fci(self._allowed_bps(party), [media_ssrc])))

    def _allowed_bps(self, party: str) -> int:
        """What ``party``'s endpoint may send: the lower of the estimates of its path to the
        relay and of the relay's path to the other party."""
        src, dst = self.legs.get(party), self.legs.get(other_party(party))
        bps = dst.downlink.bps if dst is not None else START_BPS
        if src is not None:
            bps = min(bps, src.uplink.bps)
        if (party, "video") in self._transcoders and dst is not None and \
                dst.counters.remb_bps is not None:
            # the relay's encoder sends the other leg what that leg's REMB allows: more
            # from the sender than that would only be decoded and thrown away
            bps = min(bps, max(dst.counters.remb_bps, FLOOR_BPS))
        return bps

    def _upstream(self, party: str, kind: str) -> tuple[Leg, int, int] | None:
        """``party``'s leg if it is connected and sends ``kind``, with the SSRCs feedback to
        it carries: the relay's own sender SSRC on that leg and the endpoint's media SSRC."""
        leg = self.legs.get(party)
        if leg is None or not leg.connected or kind not in leg.in_ssrc:
            return None
        sender_ssrc = leg.out[kind].ssrc if kind in leg.out else 1
        return leg, sender_ssrc, leg.in_ssrc[kind]

    async def request_keyframe(self, party: str) -> None:
        """Ask ``party``'s endpoint for a keyframe (PLI) on the video it sends."""
        up = self._upstream(party, "video")
        if up is not None:
            leg, sender_ssrc, media_ssrc = up
            pli = RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=sender_ssrc, media_ssrc=media_ssrc)
            await leg.send_rtcp("video", bytes(pli))

    def _receiver_remb(self, src: Leg, p: RtcpPsfbPacket) -> None:
        """A receiver's REMB is no longer passed upstream (it cannot grow past what the
        receiver gets, so it held senders low): it is one congestion signal of this leg's
        estimate, and the target of a transcoder's encoder sending to it."""
        try:
            bitrate, _ssrcs = unpack_remb_fci(p.fci)
        except ValueError:
            return
        src.counters.remb_bps = bitrate
        src.downlink.on_receiver_remb(bitrate)
        transcoder = self._transcoders.get((other_party(src.party), "video"))
        if transcoder is not None:
            transcoder.set_target_bitrate(bitrate)

    async def _answer_nack(self, src: Leg, p: RtcpRtpfbPacket) -> None:
        """Resend what the relay still holds; ask the sending endpoint for the rest."""
        kind = src.out_kind_of(p.media_ssrc)
        if kind is None:
            return
        out = src.out[kind]
        missing = []
        for seq in sorted({s & 0xFFFF for s in p.lost}):  # aiortc does not wrap pid + d
            cached = out.cache.get(seq)
            if cached is None:
                missing.append(out.anchor.unmap_seq(seq))
            elif not src.downlink.allow_resend(len(cached)):
                src.counters.resends_skipped += 1  # the leg's share for resends is spent
            elif src.connected:
                src.send_rtp(out, cached, None, 0, False)
        if missing and not is_synthetic_source(out.anchor.source_ssrc):
            # (a transcoded stream's numbering is the relay's own: the sender cannot resend)
            await self._nack_upstream(other_party(src.party), kind, sorted(set(missing)))

    async def _nack_upstream(self, party: str, kind: str, lost: list[int]) -> None:
        """Ask ``party``'s endpoint to resend these packets (its own sequence numbers)."""
        up = self._upstream(party, kind)
        if up is not None:
            leg, sender_ssrc, media_ssrc = up
            nack = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=sender_ssrc, media_ssrc=media_ssrc)
            nack.lost = lost
            await leg.send_rtcp(kind, bytes(nack))

    # -- state -----------------------------------------------------------------------

    def _watch_connect(self, leg: Leg) -> None:
        """Report the leg failed if it has not connected in time: aioice alone gives up
        only after its checks time out (tens of seconds), or never when the party vanished
        before applying the answer; meanwhile the party would wait without a picture."""
        previous = self._watchdogs.pop(leg.party, None)
        if previous is not None:
            previous.cancel()
        loop = asyncio.get_running_loop()
        self._watchdogs[leg.party] = loop.call_later(
            self._connect_timeout_s, self._connect_overdue, leg)

    def _connect_overdue(self, leg: Leg) -> None:
        self._watchdogs.pop(leg.party, None)
        if self.legs.get(leg.party) is not leg or leg.closed or leg.was_connected:
            return
        if leg.pc.connectionState not in ("new", "connecting"):
            return  # failed already: that was reported by the state change
        task = asyncio.create_task(self._fail_unconnected(leg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fail_unconnected(self, leg: Leg) -> None:
        logger.info("call %s leg %s: not connected after %.0f s", self.call_id, leg.party,
                    self._connect_timeout_s)
        await leg.close()  # closed first, so its own state change reports nothing more
        if self.legs.get(leg.party) is leg:  # not replaced, nor the call closed, meanwhile
            await self._on_event(self.call_id, leg.party, "leg_failed", "connect_timeout")

    async def _leg_state(self, leg: Leg, state: str) -> None:
        if self.legs.get(leg.party) is not leg:
            return  # a replaced leg closing
        if state == "connected":
            # the new leg needs a picture now, not at the sender's next keyframe (nor after a
            # slow Redis write)
            await self.request_keyframe(other_party(leg.party))
            await self._send_rembs()  # senders start low (Chromium: 300 kbps): not 0.5 s more
            await self._on_event(self.call_id, leg.party, "leg_connected", "")
        elif state == "failed":
            await self._on_event(self.call_id, leg.party, "leg_failed", leg.failure_reason())
        elif state == "closed" and not leg.closed:
            await self._on_event(self.call_id, leg.party, "leg_failed", "closed")

    def quality(self, relay_id: str) -> dict[str, Any]:
        """Per-leg rates since the last call, and the call's flags (call every interval)."""
        legs = {party: leg.rates.update(leg.counters, leg.rtt_s())
                for party, leg in self.legs.items()}
        return {"relay_id": relay_id, "legs": legs,
                "flags": call_flags(self.modality, legs), "transcoding": self.transcoding()}
