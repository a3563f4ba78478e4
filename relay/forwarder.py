"""RTP packet rewriting between two legs: pure bytes in, bytes out, no I/O.

A packet received on one leg keeps its payload, marker and padding; its
SSRC, sequence number, timestamp and payload type become those the other leg
negotiated, and its one-byte header extensions are renumbered to the other
leg's ids (the ``mid`` is replaced by the other leg's). RTX packets are
unwrapped to the original packet first. Sequence numbers and timestamps stay
continuous on the outgoing side when the source changes (a leg re-offered).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

ONE_BYTE_PROFILE = 0xBEDE
MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
CACHE_SIZE = 1024  # about 3 s of 1.2 Mbps video
_HEADER = struct.Struct("!BBHII")
_EXT_HEADER = struct.Struct("!HH")

CodecKey = tuple[str, int, str]


def codec_key(mime_type: str, clock_rate: int, parameters: Mapping[str, object]) -> CodecKey:
    """What must match for a payload to be forwarded unchanged between two legs."""
    mime = mime_type.lower()
    detail = ""
    if mime == "video/h264":
        detail = (f"{parameters.get('packetization-mode', 0)}/"
                  f"{str(parameters.get('profile-level-id', ''))[:2]}")
    return (mime, clock_rate, detail)


@dataclass(frozen=True, slots=True)
class InboundCodec:
    """How a payload type received on a leg is to be read."""

    kind: str
    key: CodecKey
    clock_rate: int
    rtx_apt: int | None = None  # set for RTX payload types: the original payload type


class RtpHeader(NamedTuple):
    """The fields of a received RTP packet the forwarder needs (a tuple: cheap to make)."""

    marker: int
    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    padding: int
    extension_profile: int
    extension: bytes
    payload: bytes
    raw_extension: bytes  # the whole extension block as received (header included)


def parse_header(data: bytes) -> RtpHeader:
    """Split an RTP packet; ValueError when it is not one."""
    if len(data) < 12:
        raise ValueError("short RTP packet")
    b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data)
    if b0 >> 6 != 2:
        raise ValueError("not RTP version 2")
    pos = start = 12 + 4 * (b0 & 0x0F)
    profile, extension = 0, b""
    if b0 & 0x10:
        if len(data) < pos + 4:
            raise ValueError("truncated RTP extension")
        profile, length = _EXT_HEADER.unpack_from(data, pos)
        extension = data[pos + 4:pos + 4 + 4 * length]
        pos += 4 + 4 * length
    if pos > len(data):
        raise ValueError("truncated RTP packet")
    return RtpHeader(b1 >> 7, b1 & 0x7F, seq, ts, ssrc, b0 & 0x20, profile, extension,
                     data[pos:], data[start:pos])


def media_length(data: bytes, header: RtpHeader) -> int:
    """Bytes of payload once RTP padding (RFC 3550 5.1) is taken off; 0 for padding-only
    packets such as the bandwidth probes Chrome sends on its RTX stream."""
    payload = header.payload
    if not header.padding or not payload:
        return len(payload)
    return max(0, len(payload) - payload[-1])


def unwrap_rtx(header: RtpHeader, payload_type: int, ssrc: int) -> RtpHeader:
    """The original packet carried in an RTX packet (RFC 4588)."""
    if len(header.payload) < 2:
        raise ValueError("short RTX packet")
    (osn,) = struct.unpack_from("!H", header.payload)
    return header._replace(payload_type=payload_type, sequence_number=osn, ssrc=ssrc,
                           payload=header.payload[2:])


def translate_extensions(header: RtpHeader, id_map: dict[int, int] | None, mid: bytes) -> bytes:
    """The outgoing extension block: ids renumbered, unknown ones dropped, mid replaced.

    ``id_map`` maps incoming to outgoing ids; ``mid`` is the full outgoing mid element
    (id/length byte and value), or empty. ``id_map`` None means both legs negotiated the
    same ids and the same mid (clients of one kind): the block is kept as received.
    """
    if id_map is None:
        return header.raw_extension
    out = bytearray(mid)
    if header.extension_profile == ONE_BYTE_PROFILE:
        ext = header.extension
        pos, end = 0, len(ext)
        while pos < end:
            byte = ext[pos]
            if byte == 0:  # padding
                pos += 1
                continue
            x_id, length = byte >> 4, (byte & 0x0F) + 1
            if x_id == 15:
                break
            out_id = id_map.get(x_id)
            if out_id is not None:
                out.append((out_id << 4) | (length - 1))
                out += ext[pos + 1:pos + 1 + length]
            pos += 1 + length
    if not out:
        return b""
    out += b"\x00" * (-len(out) % 4)
    return _EXT_HEADER.pack(ONE_BYTE_PROFILE, len(out) // 4) + bytes(out)


def abs_send_time(header: RtpHeader, x_id: int) -> float | None:
    """The packet's abs-send-time (seconds, modulo 64: 6.18 fixed point) carried in the
    one-byte extension ``x_id``; None when it carries none."""
    if header.extension_profile != ONE_BYTE_PROFILE:
        return None
    ext = header.extension
    pos, end = 0, len(ext)
    while pos < end:
        byte = ext[pos]
        if byte == 0:
            pos += 1
            continue
        length = (byte & 0x0F) + 1
        if byte >> 4 == x_id:
            if length != 3 or pos + 4 > end:
                return None
            return int.from_bytes(ext[pos + 1:pos + 4], "big") / (1 << 18)
        if byte >> 4 == 15:
            return None
        pos += 1 + length
    return None


def mid_element(mid_id: int | None, mid: str | None) -> bytes:
    """The one-byte header extension element carrying ``mid`` (empty if not negotiated)."""
    if not mid_id or not mid or not 0 < mid_id < 15:
        return b""
    value = mid.encode()[:16]
    return bytes([(mid_id << 4) | (len(value) - 1)]) + value


def starts_keyframe(mime: str, payload: bytes) -> bool:
    """Whether an RTP payload is the first packet of a keyframe: the one point where a new
    receiver can start decoding (VP8: RFC 7741 section 4; H.264: RFC 6184 section 5)."""
    if not payload:
        return False
    if mime == "video/vp8":
        first = payload[0]
        if not first & 0x10 or first & 0x07:  # S: start of a partition; PID 0: the first
            return False
        i = 1
        if first & 0x80:  # X: extensions follow
            if len(payload) < 2:
                return False
            ext = payload[1]
            i = 2
            if ext & 0x80:  # I: picture id, 7 or 15 bits
                i += 2 if len(payload) > i and payload[i] & 0x80 else 1
            if ext & 0x40:  # L: TL0PICIDX
                i += 1
            if ext & 0x30:  # T or K: TID/Y/KEYIDX
                i += 1
        return len(payload) > i and not payload[i] & 0x01  # P = 0: a key frame
    if mime == "video/h264":
        nal = payload[0] & 0x1F
        if nal == 24:  # STAP-A: the first NAL unit aggregated
            return len(payload) > 3 and payload[3] & 0x1F in (5, 7)
        if nal == 28:  # FU-A: its start fragment
            return len(payload) > 1 and bool(payload[1] & 0x80) and payload[1] & 0x1F in (5, 7)
        return nal in (5, 7)  # IDR slice, or the SPS in front of one
    return True  # a codec without frames spread over packets (audio): start anywhere


@dataclass(slots=True)
class StreamAnchor:
    """Keeps outgoing sequence numbers and timestamps continuous across source changes."""

    source_ssrc: int | None = None
    seq_offset: int = 0
    ts_offset: int = 0
    last_seq: int = 0
    last_ts: int = 0
    last_ms: float = 0.0
    started: bool = False

    def map(self, ssrc: int, seq: int, ts: int, now_ms: float, clock_rate: int) -> tuple[int, int]:
        """The outgoing (sequence number, timestamp) for an incoming packet."""
        if ssrc != self.source_ssrc:
            self._reanchor(ssrc, seq, ts, now_ms, clock_rate)
        out_seq = (seq + self.seq_offset) & 0xFFFF
        out_ts = (ts + self.ts_offset) & 0xFFFFFFFF
        if ((out_seq - self.last_seq) & 0xFFFF) < 0x8000:
            self.last_seq, self.last_ts, self.last_ms = out_seq, out_ts, now_ms
        return out_seq, out_ts

    def unmap_seq(self, out_seq: int) -> int:
        """The incoming sequence number an outgoing one was made from."""
        return (out_seq - self.seq_offset) & 0xFFFF

    def _reanchor(self, ssrc: int, seq: int, ts: int, now_ms: float, clock_rate: int) -> None:
        if self.started:
            elapsed = max(1, int((now_ms - self.last_ms) * clock_rate / 1000))
            self.seq_offset = (self.last_seq + 1 - seq) & 0xFFFF
            self.ts_offset = (self.last_ts + elapsed - ts) & 0xFFFFFFFF
        self.source_ssrc = ssrc
        self.last_seq = (seq + self.seq_offset - 1) & 0xFFFF
        self.started = True


@dataclass(slots=True)
class PacketCache:
    """The last packets sent on a stream, by outgoing sequence number, for NACKs."""

    size: int = CACHE_SIZE
    slots: list[tuple[int, bytes] | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.slots = [None] * self.size

    def put(self, seq: int, data: bytes) -> None:
        self.slots[seq % self.size] = (seq, data)

    def get(self, seq: int) -> bytes | None:
        entry = self.slots[seq % self.size]
        return entry[1] if entry is not None and entry[0] == seq else None


def build_packet(header: RtpHeader, payload_type: int, seq: int, ts: int, ssrc: int,
                 extension: bytes) -> bytes:
    """An RTP packet with the given header fields around the received payload."""
    b0 = 0x80 | header.padding | (0x10 if extension else 0)
    return (_HEADER.pack(b0, (header.marker << 7) | payload_type, seq, ts, ssrc)
            + extension + header.payload)
