"""The transcoding fallback: when two legs share no codec for a kind, decode and re-encode.

The relay forwards packets unchanged whenever it can (relay/call.py). When the
receiving leg negotiated no codec the sending leg uses (an H.264-only kiosk and a
VP8-only interpreter; PCMU and Opus), one ``Transcoder`` per direction and kind
takes that stream's packets instead:

- on the event loop, per packet: video is depayloaded and reassembled into frames
  (aiortc's jitter buffer, released on the marker packet), audio packets are frames;
  a complete frame goes to a small bounded queue, or is dropped when the queue is full;
- in a worker thread (one job at a time per transcoder, a shared executor): decode with
  aiortc's decoder, encode with aiortc's encoder for the receiving leg's preferred codec;
- back on the event loop: the payloads become RTP packets on the receiving leg, numbered
  through the same ``StreamAnchor`` as forwarded packets (under a synthetic source SSRC,
  so a switch between the two paths re-anchors), kept in its ``PacketCache`` for NACKs.

Video waits for a keyframe at its start, after loss and after an overload drop (asking
the sender with a PLI, at most every KEYFRAME_REQUEST_MS); a keyframe request from the
receiver makes the transcoder's own encoder send one. Every aiortc internal used here is
reached through relay/rtc_internals.py.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import os
import random
import struct
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from aiortc import RTCRtpCodecParameters
from av import AudioFrame, VideoFrame
from av.frame import Frame
from av.video.frame import PictureType

from relay.forwarder import ABS_SEND_TIME_URI, ONE_BYTE_PROFILE, RtpHeader, build_packet
from tsunagu import rtc_internals

if TYPE_CHECKING:
    from relay.leg import Leg, OutStream
    from relay.quality import LegCounters

logger = logging.getLogger(__name__)

VIDEO_QUEUE = 4  # reassembled frames waiting for the worker: 133 ms of 30 fps video
AUDIO_QUEUE = 10  # 200 ms of 20 ms audio frames
REASSEMBLY_PACKETS = 256  # jitter buffer capacity (a power of 2)
BITRATE_STEP = 0.25  # relative REMB change the transcoder's encoder follows
KEYFRAME_REQUEST_MS = 300.0  # at most one PLI upstream per transcoder in this time
MAX_NACK = 64  # a larger gap is left to the keyframe request
AUDIO_PACKET_S = 0.02  # aiortc's audio encoders emit 20 ms payloads
SYNTHETIC_SSRC_BASE = 1 << 32  # above any real SSRC: the anchor re-anchors on a switch
_NTP_EPOCH_S = 2208988800
_EXT_HEADER = struct.Struct("!HH")
_synthetic_ssrcs = itertools.count(SYNTHETIC_SSRC_BASE)
_executor: ThreadPoolExecutor | None = None

KeyframeRequest = Callable[[], Coroutine[Any, Any, None]]
ResendRequest = Callable[[list[int]], Coroutine[Any, Any, None]]


def executor() -> ThreadPoolExecutor:
    """The threads that decode and encode for every transcoder of this process."""
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=os.cpu_count() or 2,
                                       thread_name_prefix="transcode")
    return _executor


# -- pure helpers -----------------------------------------------------------------------


def is_synthetic_source(ssrc: int | None) -> bool:
    """Whether an anchor's source is a transcoder (its numbering is the relay's own)."""
    return ssrc is not None and ssrc >= SYNTHETIC_SSRC_BASE


def is_keyframe(mime_type: str, data: bytes) -> bool:
    """Whether a reassembled frame can be decoded on its own (audio frames always can)."""
    mime = mime_type.lower()
    if mime == "video/vp8":
        return bool(data) and not data[0] & 0x01  # frame tag P bit: 0 for a key frame
    if mime == "video/h264":
        return any(t in (5, 7) for t in h264_nal_types(data))  # IDR slice or SPS
    return True


def h264_nal_types(data: bytes) -> list[int]:
    """The NAL unit types of an Annex B bitstream (as aiortc's depayloader writes it)."""
    types = []
    pos = data.find(b"\x00\x00\x01")
    while pos != -1 and pos + 3 < len(data):
        types.append(data[pos + 3] & 0x1F)
        pos = data.find(b"\x00\x00\x01", pos + 3)
    return types


def missing_sequence_numbers(highest: int | None, seq: int, limit: int = MAX_NACK) -> list[int]:
    """Sequence numbers skipped between the highest seen and ``seq`` (none for a late
    packet, or for a gap larger than ``limit``: that one is left to a keyframe)."""
    if highest is None:
        return []
    delta = (seq - highest) & 0xFFFF
    if delta <= 1 or delta >= 0x8000 or delta - 1 > limit:
        return []
    return [(highest + i) & 0xFFFF for i in range(1, delta)]


def output_timestamp(relative: int, in_clock: int, out_clock: int) -> int:
    """A source timestamp (since the stream's first frame) on the output codec's clock."""
    return relative * out_clock // in_clock


def abs_send_time_element(ext_id: int | None, now_s: float) -> bytes:
    """The one-byte abs-send-time element (6.18 fixed-point seconds), empty if not negotiated."""
    if not ext_id or not 0 < ext_id < 15:
        return b""
    ntp = int((now_s + _NTP_EPOCH_S) * (1 << 32))
    return bytes([(ext_id << 4) | 2]) + ((ntp >> 14) & 0xFFFFFF).to_bytes(3, "big")


def extension_block(elements: bytes) -> bytes:
    """A one-byte-header extension block around ``elements`` (empty for none)."""
    if not elements:
        return b""
    padded = elements + b"\x00" * (-len(elements) % 4)
    return _EXT_HEADER.pack(ONE_BYTE_PROFILE, len(padded) // 4) + padded


@dataclass(slots=True)
class TimestampUnwrapper:
    """RTP timestamps as a count since the first one, across 32-bit wraps."""

    last: int | None = None
    extended: int = 0

    def unwrap(self, ts: int) -> int:
        if self.last is not None:
            delta = (ts - self.last) & 0xFFFFFFFF
            self.extended += delta - (1 << 32) if delta >= 0x80000000 else delta
        self.last = ts
        return self.extended


@dataclass(slots=True)
class FrameGate:
    """Which reassembled frames go to the decoder.

    Video waits for a keyframe at its start, after loss, and after a frame was dropped
    because the worker fell behind (the frames after it would not decode). Audio frames
    stand alone: only a full queue drops them.
    """

    video: bool
    waiting: bool = field(init=False)

    def __post_init__(self) -> None:
        self.waiting = self.video

    def admit(self, keyframe: bool, room: bool) -> bool:
        if self.waiting and not keyframe:
            return False
        if not room:
            self.waiting = self.video
            return False
        self.waiting = False
        return True

    def lost(self) -> None:
        self.waiting = self.video


@dataclass(slots=True)
class Throttle:
    """Allows an action at most once per ``interval_ms``."""

    interval_ms: float
    next_ms: float = -math.inf

    def ready(self, now_ms: float) -> bool:
        if now_ms < self.next_ms:
            return False
        self.next_ms = now_ms + self.interval_ms
        return True


@dataclass(slots=True)
class Job:
    """A reassembled frame for the worker."""

    data: bytes
    timestamp: int  # as received (the decoder's packet time)
    relative: int  # unwrapped, since the stream's first frame, source clock


@dataclass(slots=True)
class Coded:
    """What the worker made of one job: each decoded frame's payloads."""

    frames: list[list[bytes]]
    failed: bool = False
    forced: bool = False


# -- sending ----------------------------------------------------------------------------


class TranscodedOutput:
    """Turns encoded payloads into RTP packets on the receiving leg, numbered like
    forwarded packets (the OutStream's anchor), cached for NACKs."""

    def __init__(self, dst: Leg, out: OutStream, payload_type: int, clock_rate: int) -> None:
        self.dst, self.out = dst, out
        self.payload_type = payload_type
        self.clock_rate = clock_rate
        self.video = out.kind == "video"
        self.source_ssrc = next(_synthetic_ssrcs)
        self._seq = random.randrange(1 << 16)
        self._ts_base = random.randrange(1 << 32)
        self._abs_id = out.ext_ids.get(ABS_SEND_TIME_URI)

    def send(self, payloads: list[bytes], timestamp: int) -> None:
        """Send one frame's payloads (the last one marked, for video)."""
        out = self.out
        now_ms = time.monotonic() * 1000
        ext = extension_block(out.mid_elem + abs_send_time_element(self._abs_id, time.time()))
        ts = (self._ts_base + timestamp) & 0xFFFFFFFF
        last = len(payloads) - 1
        for i, payload in enumerate(payloads):
            marker = int(self.video and i == last)
            seq, out_ts = out.anchor.map(self.source_ssrc, self._seq, ts, now_ms,
                                         self.clock_rate)
            self._seq = (self._seq + 1) & 0xFFFF
            header = RtpHeader(marker, self.payload_type, seq, out_ts, out.ssrc, 0,
                               ONE_BYTE_PROFILE, b"", payload, b"")
            packet = build_packet(header, self.payload_type, seq, out_ts, out.ssrc, ext)
            out.cache.put(seq, packet)
            self.dst.send_rtp(out, packet, out_ts, len(payload), bool(marker))


# -- the transcoder ---------------------------------------------------------------------


class Transcoder:
    """Decodes one leg's stream of one kind and re-encodes it for the other leg."""

    def __init__(self, kind: str, source_pt: int, source: RTCRtpCodecParameters,
                 target: RTCRtpCodecParameters, output: TranscodedOutput,
                 counters: LegCounters, request_keyframe: KeyframeRequest,
                 request_resend: ResendRequest, source_ssrc: int = 0) -> None:
        self.kind = kind
        self.source_pt = source_pt
        self.source_ssrc = source_ssrc  # a new source stream needs a new transcoder
        self.source, self.target = source, target
        self.output = output
        self.counters = counters  # the receiving leg's
        self.video = kind == "video"
        self.keyframes_forced = 0  # keyframes the encoder made on the receiver's request
        self.closed = False
        self._request_keyframe, self._request_resend = request_keyframe, request_resend
        self._decoder = rtc_internals.new_decoder(source)
        self._encoder = rtc_internals.new_encoder(target)
        self._buffer = rtc_internals.video_reassembler(REASSEMBLY_PACKETS) if self.video else None
        self._queue: asyncio.Queue[Job] = asyncio.Queue(VIDEO_QUEUE if self.video else AUDIO_QUEUE)
        self._gate = FrameGate(self.video)
        self._keyframe_throttle = Throttle(KEYFRAME_REQUEST_MS)
        self._unwrapper = TimestampUnwrapper()
        self._highest: int | None = None
        self._force = False
        self._bitrate: int | None = None
        self._applied_bitrate: int | None = None
        self._samples = 0  # audio pts for the encoder's resampler (worker thread only)
        self._last_pts: int | None = None  # video pts (worker thread only)
        self._worker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._errors = 0

    def describe(self) -> str:
        """What is transcoded, for the log (codec names only)."""
        return f"{self.kind} {self.source.mimeType} -> {self.target.mimeType}"

    # -- event loop, per packet

    def push(self, seq: int, timestamp: int, marker: int, payload: bytes) -> None:
        """Take one packet of the source stream (RTX already unwrapped, padding removed)."""
        if self.closed:
            return
        if self.video:
            self._push_video(seq, timestamp, marker, payload)
        elif self._highest is None or 0 < (seq - self._highest) & 0xFFFF < 0x8000:
            # audio: each packet is a frame; a late or repeated one is dropped
            self._highest = seq
            self._offer(payload, timestamp)

    def _push_video(self, seq: int, timestamp: int, marker: int, payload: bytes) -> None:
        missing = missing_sequence_numbers(self._highest, seq)
        if self._highest is None or ((seq - self._highest) & 0xFFFF) < 0x8000:
            self._highest = seq
        if missing:
            self._spawn(self._request_resend(missing))
        try:
            data = rtc_internals.depayload_packet(self.source, payload)
        except ValueError:
            return
        assert self._buffer is not None
        lost, frame = rtc_internals.reassemble(self._buffer, seq, timestamp, marker, data)
        if lost:
            self._gate.lost()
            self._ask_keyframe()
        if frame is not None:
            self._offer(*frame)

    def _offer(self, data: bytes, timestamp: int) -> None:
        keyframe = is_keyframe(self.source.mimeType, data)
        room = not self._queue.full()
        if not self._gate.admit(keyframe, room):
            self.counters.transcode_dropped += 1
            if self._gate.waiting:
                self._ask_keyframe()
            return
        relative = self._unwrapper.unwrap(timestamp)
        self._queue.put_nowait(Job(data, timestamp, relative))
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._work())
            self._worker.add_done_callback(self._worker_ended)

    def _worker_ended(self, task: asyncio.Task[None]) -> None:
        """A worker that ended while the transcoder is open is restarted by the next frame."""
        if self._worker is task:
            self._worker = None
        if not task.cancelled() and task.exception() is not None:
            logger.error("transcoder %s: worker stopped", self.describe(),
                         exc_info=task.exception())

    def _ask_keyframe(self) -> None:
        if self.video and self._keyframe_throttle.ready(time.monotonic() * 1000):
            self._spawn(self._request_keyframe())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- feedback from the receiving leg

    def force_keyframe(self) -> None:
        """The receiver lost the picture: the next encoded frame is a keyframe."""
        self._force = True

    def set_target_bitrate(self, bitrate: int) -> None:
        """The receiver's bandwidth estimate (REMB), for the encoder (applied by the worker).

        Only a change of more than BITRATE_STEP is applied: aiortc reopens its video encoder
        (and so sends a keyframe) on each change, and REMB moves a little all the time.
        """
        applied = self._applied_bitrate
        if applied is not None and abs(bitrate - applied) <= BITRATE_STEP * applied:
            return
        self._applied_bitrate = bitrate
        self._bitrate = bitrate

    # -- the worker

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            job = await self._queue.get()
            force, self._force = self._force, False
            bitrate, self._bitrate = self._bitrate, None
            try:
                coded = await loop.run_in_executor(executor(), self._code, job, force, bitrate)
            except Exception:  # never let one bad frame stop the worker (the queue would fill)
                self._log_error("coding failed")
                coded = Coded([], failed=True)
            if self.closed:
                return
            if coded.failed:
                self._gate.lost()
                self._ask_keyframe()
            if force and not coded.forced:
                self._force = True  # nothing was encoded: keep the request for the next frame
            self.keyframes_forced += coded.forced
            try:
                self._send(coded, job)
            except Exception:  # a send that fails must not end the worker either
                self._log_error("sending failed")

    def _send(self, coded: Coded, job: Job) -> None:
        ts = output_timestamp(job.relative, self.source.clockRate, self.target.clockRate)
        step = 0 if self.video else int(self.target.clockRate * AUDIO_PACKET_S)
        for payloads in coded.frames:
            if self.video:
                self.output.send(payloads, ts)
            else:
                for i, payload in enumerate(payloads):
                    self.output.send([payload], ts + i * step)
            self.counters.transcoded_frames += 1

    def _code(self, job: Job, force: bool, bitrate: int | None) -> Coded:
        """Decode one frame and encode what it gives (in a worker thread)."""
        if bitrate is not None:
            rtc_internals.set_target_bitrate(self._encoder, bitrate)
        try:
            frames = rtc_internals.decode(self._decoder, job.data, job.timestamp)
        except Exception:  # av.FFmpegError, or a decoder's own ValueError
            return Coded([], failed=True)
        coded = Coded([])
        for frame in frames:
            self._restamp(frame, job)
            try:
                payloads = rtc_internals.encode(self._encoder, frame, force)
            except Exception:
                self._log_error("encoding failed")
                coded.failed = True
                return coded
            coded.forced = coded.forced or force
            force = False
            if payloads:
                coded.frames.append(payloads)
        return coded

    def _log_error(self, what: str) -> None:
        """Log the first error of this transcoder (with its traceback); count the others."""
        self._errors += 1
        if self._errors == 1:
            logger.warning("transcoder %s: %s", self.describe(), what, exc_info=True)

    def _restamp(self, frame: Frame, job: Job) -> None:
        """Give the encoder increasing timestamps of its own (RTP's are the relay's job)."""
        if isinstance(frame, VideoFrame):
            pts = job.relative
            if self._last_pts is not None:
                pts = max(pts, self._last_pts + self.source.clockRate // 30)
            self._last_pts = pts
            frame.pts, frame.time_base = pts, Fraction(1, self.source.clockRate)
            frame.pict_type = PictureType.NONE  # the encoder chooses its own keyframes
        elif isinstance(frame, AudioFrame):
            frame.pts, frame.time_base = self._samples, Fraction(1, frame.sample_rate)
            self._samples += frame.samples

    # -- lifetime

    def close(self) -> None:
        """Stop the worker (a frame being coded in a thread is finished and discarded)."""
        self.closed = True
        if self._worker is not None:
            self._worker.cancel()
        for task in list(self._tasks):
            task.cancel()


def start_transcoder(call_id: str, src: Leg, dst: Leg, kind: str, source_pt: int,
                     request_keyframe: KeyframeRequest,
                     request_resend: ResendRequest, source_ssrc: int = 0) -> Transcoder | None:
    """A transcoder from ``src``'s ``source_pt`` to ``dst``'s first codec of ``kind`` that
    aiortc can encode; None when there is none (the packets are then dropped)."""
    out = dst.out.get(kind)
    source = src.codecs.get(source_pt)
    if out is None or source is None or not rtc_internals.can_decode(source):
        return None
    for pt in out.pt_by_key.values():
        target = dst.codecs.get(pt)
        if target is not None and rtc_internals.can_encode(target):
            output = TranscodedOutput(dst, out, pt, target.clockRate)
            transcoder = Transcoder(kind, source_pt, source, target, output, dst.counters,
                                    request_keyframe, request_resend, source_ssrc)
            logger.info("call %s: transcoding %s for %s", call_id, transcoder.describe(),
                        dst.party)
            return transcoder
    return None

