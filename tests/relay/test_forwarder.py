"""Packet rewriting between legs (pure, no network)."""

from __future__ import annotations

import struct

import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from relay.forwarder import (
    ONE_BYTE_PROFILE,
    PacketCache,
    StreamAnchor,
    abs_send_time,
    build_packet,
    mid_element,
    parse_header,
    starts_keyframe,
    translate_extensions,
    unwrap_rtx,
)

ABS = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
MID = "urn:ietf:params:rtp-hdrext:sdes:mid"


def ext_map(ids: dict[str, int]) -> HeaderExtensionsMap:
    m = HeaderExtensionsMap()
    m.configure(RTCRtpParameters(headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=i, uri=u) for u, i in ids.items()]))
    return m


def test_packet_rewritten_with_other_legs_fields_and_extension_ids() -> None:
    incoming = RtpPacket(payload_type=96, marker=1, sequence_number=65535, timestamp=90000,
                         ssrc=1111, payload=b"\x10vp8-payload")
    incoming.extensions.mid = "0"
    incoming.extensions.abs_send_time = 0x123456
    data = incoming.serialize(ext_map({MID: 1, ABS: 3}))

    h = parse_header(data)
    assert (h.payload_type, h.sequence_number, h.ssrc, h.marker) == (96, 65535, 1111, 1)
    ext = translate_extensions(h, {3: 2}, mid_element(4, "video"))
    out = build_packet(h, 120, 7, 1234, 2222, ext)

    parsed = RtpPacket.parse(out, ext_map({ABS: 2, MID: 4}))
    assert (parsed.payload_type, parsed.sequence_number, parsed.timestamp, parsed.ssrc) == (
        120, 7, 1234, 2222)
    assert parsed.marker == 1 and parsed.payload == b"\x10vp8-payload"
    assert parsed.extensions.abs_send_time == 0x123456
    assert parsed.extensions.mid == "video"


def test_rtx_is_unwrapped_to_the_original_packet() -> None:
    rtx = RtpPacket(payload_type=97, sequence_number=5, timestamp=10, ssrc=9,
                    payload=struct.pack("!H", 4242) + b"data")
    h = unwrap_rtx(parse_header(rtx.serialize()), payload_type=96, ssrc=1111)
    assert (h.payload_type, h.sequence_number, h.ssrc, h.payload) == (96, 4242, 1111, b"data")


def test_anchor_keeps_output_continuous_when_the_source_changes() -> None:
    anchor = StreamAnchor()
    assert anchor.map(1, 100, 5000, 0.0, 90000) == (100, 5000)
    assert anchor.map(1, 101, 8000, 33.0, 90000) == (101, 8000)
    # a re-offered leg: new SSRC, random sequence numbers and timestamps
    seq, ts = anchor.map(2, 40000, 777, 66.0, 90000)
    assert seq == 102 and ts == 8000 + 33 * 90
    assert anchor.map(2, 40001, 777 + 3000, 99.0, 90000) == (103, ts + 3000)
    assert anchor.unmap_seq(103) == 40001


def test_packet_cache_answers_only_what_it_holds() -> None:
    cache = PacketCache(size=4)
    cache.put(10, b"a")
    cache.put(14, b"b")  # evicts 10
    assert cache.get(14) == b"b" and cache.get(10) is None and cache.get(11) is None


def test_extension_block_kept_when_both_legs_negotiated_the_same_ids() -> None:
    incoming = RtpPacket(payload_type=96, sequence_number=1, timestamp=2, ssrc=3, payload=b"x")
    incoming.extensions.mid = "1"
    incoming.extensions.abs_send_time = 42
    data = incoming.serialize(ext_map({MID: 1, ABS: 3}))
    h = parse_header(data)
    out = build_packet(h, 96, 9, 2, 4, translate_extensions(h, None, b""))
    parsed = RtpPacket.parse(out, ext_map({MID: 1, ABS: 3}))
    assert parsed.extensions.mid == "1" and parsed.extensions.abs_send_time == 42
    assert (parsed.sequence_number, parsed.ssrc, parsed.payload) == (9, 4, b"x")


def test_padding_only_packets_carry_no_media() -> None:
    """Chrome's RTX bandwidth probes are all padding: never forwarded as a packet."""
    import struct as _struct

    from relay.forwarder import media_length, parse_header

    header = _struct.pack("!BBHII", 0xA0, 97, 7, 1000, 1234)  # V=2, P=1
    probe = header + bytes(255) + bytes([0] * 0)  # 255 bytes of padding ...
    probe = probe[:-1] + bytes([255])  # ... the last byte says how many
    assert media_length(probe, parse_header(probe)) == 0
    media = _struct.pack("!BBHII", 0x80, 97, 8, 1000, 1234) + b"\x01\x02\x03"
    assert media_length(media, parse_header(media)) == 3
    padded = _struct.pack("!BBHII", 0xA0, 97, 9, 1000, 1234) + b"\x01\x02" + b"\x00\x02"
    assert media_length(padded, parse_header(padded)) == 2


def encoded_packets(mime: str, frames: int) -> list[list[bytes]]:
    """Packets of real frames from aiortc's encoders: a forced keyframe, then deltas."""
    import fractions

    import av
    import numpy as np
    from aiortc.codecs import get_encoder
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters

    encoder = get_encoder(RTCRtpCodecParameters(mimeType=mime, clockRate=90000,
                                                payloadType=96))
    out = []
    for n in range(frames):
        img = np.zeros((240, 320, 3), np.uint8)
        img[100:140, n * 8:n * 8 + 20] = 255
        frame = av.VideoFrame.from_ndarray(img, format="bgr24").reformat(format="yuv420p")
        frame.pts, frame.time_base = n * 3000, fractions.Fraction(1, 90000)
        packets, _ts = encoder.encode(frame, force_keyframe=n == 0)
        out.append(packets)
    return out


@pytest.mark.parametrize("mime", ["video/VP8", "video/H264"])
def test_only_the_first_packet_of_a_keyframe_starts_a_receiver(mime: str) -> None:
    frames = encoded_packets(mime, 4)
    key = mime.lower()
    assert starts_keyframe(key, frames[0][0])
    assert not any(starts_keyframe(key, p) for p in frames[0][1:])  # the rest of the frame
    assert not any(starts_keyframe(key, p) for f in frames[1:] for p in f)  # delta frames


def test_keyframe_start_of_hand_made_payloads() -> None:
    assert starts_keyframe("video/vp8", bytes([0x10, 0x00]))  # S, PID 0, P=0
    assert not starts_keyframe("video/vp8", bytes([0x10, 0x01]))  # an interframe
    assert not starts_keyframe("video/vp8", bytes([0x00, 0x00]))  # not a start
    assert not starts_keyframe("video/vp8", bytes([0x90]))  # truncated
    assert starts_keyframe("video/h264", bytes([0x65]))  # an IDR slice
    assert starts_keyframe("video/h264", bytes([0x7C, 0x85]))  # FU-A start of an IDR
    assert not starts_keyframe("video/h264", bytes([0x7C, 0x05]))  # FU-A middle
    assert not starts_keyframe("video/h264", bytes([0x41]))  # a non-IDR slice
    assert starts_keyframe("audio/opus", b"\x01")


def test_abs_send_time_is_read_from_its_one_byte_extension() -> None:
    value = int(12.5 * (1 << 18))  # 6.18 fixed point
    ext = bytes([0x10, 0xAA]) + bytes([(3 << 4) | 2]) + value.to_bytes(3, "big") + b"\x00\x00"
    packet = (bytes([0x90, 96]) + (1).to_bytes(2, "big") + (0).to_bytes(4, "big")
              + (5).to_bytes(4, "big") + ONE_BYTE_PROFILE.to_bytes(2, "big")
              + (len(ext) // 4).to_bytes(2, "big") + ext + b"payload")
    header = parse_header(packet)
    assert abs_send_time(header, 3) == 12.5
    assert abs_send_time(header, 4) is None
