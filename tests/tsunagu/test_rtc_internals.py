"""The aiortc seams the relay and the Python endpoints rely on."""

from __future__ import annotations

import asyncio
import struct
from fractions import Fraction

import aioice.ice
import numpy as np
import pytest
from aiortc import RTCPeerConnection, RTCRtpCodecParameters
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket
from av import AudioFrame, VideoFrame

from tsunagu import rtc_internals
from tsunagu.rtc_internals import (
    dtls_transports,
    install_early_frame_release,
    install_rtp_fast_path,
    restrict_ice_addresses,
    rtc_configuration,
    send_queue_bytes,
    send_rtp_now,
    uninstall_early_frame_release,
)


def video_packet(seq: int, ts: int, marker: bool, data: bytes) -> RtpPacket:
    packet = RtpPacket(payload_type=96, sequence_number=seq, timestamp=ts, marker=int(marker))
    packet._data = data
    return packet


@pytest.fixture
def early_release() -> object:
    install_early_frame_release()
    yield None
    install_early_frame_release()


def test_stock_jitter_buffer_holds_frame_until_next_frame() -> None:
    uninstall_early_frame_release()
    try:
        jb = JitterBuffer(capacity=128, is_video=True)
        assert jb.add(video_packet(10, 1000, False, b"a"))[1] is None
        assert jb.add(video_packet(11, 1000, True, b"b"))[1] is None
        frame = jb.add(video_packet(12, 4000, False, b"c"))[1]
        assert frame is not None and frame.data == b"ab"
    finally:
        install_early_frame_release()


def test_frame_released_on_marker_packet(early_release: object) -> None:
    jb = JitterBuffer(capacity=128, is_video=True)
    assert jb.add(video_packet(10, 1000, False, b"a"))[1] is None
    frame = jb.add(video_packet(11, 1000, True, b"b"))[1]
    assert frame is not None and frame.data == b"ab" and frame.timestamp == 1000
    # the next frame is assembled on its own marker packet too
    assert jb.add(video_packet(12, 4000, False, b"c"))[1] is None
    frame = jb.add(video_packet(13, 4000, True, b"d"))[1]
    assert frame is not None and frame.data == b"cd" and frame.timestamp == 4000


def test_frame_with_gap_is_not_released_until_complete(early_release: object) -> None:
    jb = JitterBuffer(capacity=128, is_video=True)
    jb.add(video_packet(20, 1000, False, b"a"))
    assert jb.add(video_packet(22, 1000, True, b"c"))[1] is None  # 21 missing
    frame = jb.add(video_packet(21, 1000, False, b"b"))[1]  # retransmission fills it
    assert frame is None  # released only on a marker packet...
    frame = jb.add(video_packet(23, 4000, True, b"d"))[1]
    assert frame is not None and frame.data == b"abc"  # ...or by aiortc's own rule


def test_install_is_idempotent(early_release: object) -> None:
    install_early_frame_release()
    install_early_frame_release()
    jb = JitterBuffer(capacity=128, is_video=True)
    frame = jb.add(video_packet(1, 10, True, b"x"))[1]
    assert frame is not None and frame.data == b"x"


def test_audio_buffer_is_unchanged(early_release: object) -> None:
    jb = JitterBuffer(capacity=16, prefetch=4)
    assert jb.add(video_packet(1, 10, True, b"x"))[1] is None


def test_restrict_ice_addresses_replaces_and_restores() -> None:
    restrict_ice_addresses(["127.0.0.1", "::1"])
    try:
        assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False) == ["127.0.0.1"]
        assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True) == [
            "127.0.0.1", "::1"]
    finally:
        restrict_ice_addresses(None)
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)
    restrict_ice_addresses(["127.0.0.1"])


def test_rtc_configuration_is_explicit() -> None:
    assert rtc_configuration([]).iceServers == []
    config = rtc_configuration([{"urls": ["turn:t.example:3478"], "username": "u",
                                 "credential": "c"}])
    assert config.iceServers[0].urls == ["turn:t.example:3478"]
    assert config.iceServers[0].username == "u"


@pytest.mark.webrtc
async def test_offer_has_only_loopback_host_candidates() -> None:
    restrict_ice_addresses(["127.0.0.1"])
    pc = RTCPeerConnection(rtc_configuration([]))
    try:
        pc.addTransceiver("video")
        await pc.setLocalDescription(await pc.createOffer())
        candidates = [line for line in pc.localDescription.sdp.splitlines()
                      if line.startswith("a=candidate:")]
        assert candidates
        assert all(" 127.0.0.1 " in c and " typ host" in c for c in candidates)
    finally:
        await pc.close()


@pytest.mark.webrtc
async def test_fast_path_receives_plain_rtp_and_send_now_delivers() -> None:
    a = RTCPeerConnection(rtc_configuration([]))
    b = RTCPeerConnection(rtc_configuration([]))
    try:
        a.addTransceiver("video", direction="sendrecv")
        await a.setLocalDescription(await a.createOffer())
        await b.setRemoteDescription(a.localDescription)
        await b.setLocalDescription(await b.createAnswer())
        await a.setRemoteDescription(b.localDescription)
        received: list[bytes] = []
        (dtls_b,) = dtls_transports(b)
        install_rtp_fast_path(dtls_b, received.append)
        (dtls_a,) = dtls_transports(a)
        packet = struct.pack("!BBHII", 0x80, 0x80 | 96, 7, 9000, 1234) + b"payload"
        for _ in range(200):
            if send_rtp_now(dtls_a, packet):
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("never connected")
        for _ in range(100):
            if received:
                break
            await asyncio.sleep(0.01)
        assert received == [packet]  # decrypted, byte for byte, beneath aiortc's pipeline
        assert send_queue_bytes(dtls_a) == 0  # nothing waits in loopback's socket
    finally:
        await a.close()
        await b.close()


async def test_only_the_newest_packet_dates_the_sender_report() -> None:
    """A late packet or a resend is counted but never moves the SR's NTP/RTP pair back."""
    from types import SimpleNamespace

    from aiortc.rtcrtpsender import RTCRtpSender

    from tsunagu.rtc_internals import note_sent

    sender = RTCRtpSender("video", SimpleNamespace(state="new"))
    note_sent(sender, 9000, 100)
    state = vars(sender)
    ntp = state["_RTCRtpSender__ntp_timestamp"]
    assert state["_RTCRtpSender__rtp_timestamp"] == 9000 and ntp > 0
    note_sent(sender, None, 50)
    assert state["_RTCRtpSender__rtp_timestamp"] == 9000
    assert state["_RTCRtpSender__ntp_timestamp"] == ntp
    assert state["_RTCRtpSender__packet_count"] == 2
    assert state["_RTCRtpSender__octet_count"] == 150


@pytest.mark.webrtc
async def test_relay_answer_negotiates_remb_not_transport_cc() -> None:
    """Chrome runs REMB congestion control with the relay (whose feedback the relay
    forwards) because aiortc's answer never negotiates transport-cc."""
    from relay.leg import Leg

    offerer = RTCPeerConnection(rtc_configuration([]))
    offerer.addTransceiver("audio")
    offerer.addTransceiver("video")
    offer = (await offerer.createOffer()).sdp
    lines = offer.split("\r\n")
    video = next(i for i, line in enumerate(lines) if line.startswith("m=video"))
    pt = lines[video].split()[3]
    # what Chrome adds to its offer
    lines[video + 1:video + 1] = [
        f"a=rtcp-fb:{pt} transport-cc",
        "a=extmap:5 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
    ]
    leg = Leg("c", "kiosk", [], lambda *a: None, lambda *a: asyncio.sleep(0),
              lambda *a: asyncio.sleep(0))
    try:
        answer = await leg.answer("\r\n".join(lines))
        assert "goog-remb" in answer
        assert "transport-cc" not in answer and "transport-wide-cc" not in answer
    finally:
        await leg.close()
        await offerer.close()


# -- the transcoding fallback's seams (relay/transcode.py) -----------------------------------

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
H264 = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=102,
                             parameters={"packetization-mode": "1",
                                         "profile-level-id": "42e01f"})
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2,
                             payloadType=111)
PCMU = RTCRtpCodecParameters(mimeType="audio/PCMU", clockRate=8000, channels=1, payloadType=0)


def test_transcodable_codecs() -> None:
    for codec in (VP8, H264, OPUS, PCMU):
        assert rtc_internals.can_decode(codec) and rtc_internals.can_encode(codec)
    h264_mode0 = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=103)
    assert rtc_internals.can_decode(h264_mode0) and not rtc_internals.can_encode(h264_mode0)
    vp9 = RTCRtpCodecParameters(mimeType="video/VP9", clockRate=90000, payloadType=98)
    assert not rtc_internals.can_decode(vp9) and not rtc_internals.can_encode(vp9)


def test_reassemble_releases_frame_on_marker_whether_installed_or_not() -> None:
    uninstall_early_frame_release()
    try:
        buffer = rtc_internals.video_reassembler(64)
        assert rtc_internals.reassemble(buffer, 10, 1000, 0, b"a") == (False, None)
        assert rtc_internals.reassemble(buffer, 11, 1000, 1, b"b") == (False, (b"ab", 1000))
        assert rtc_internals.reassemble(buffer, 13, 4000, 1, b"d") == (False, None)  # 12 lost
        assert rtc_internals.reassemble(buffer, 12, 4000, 0, b"c")[1] is None
        assert rtc_internals.reassemble(buffer, 14, 7000, 1, b"e")[1] == (b"cd", 4000)
    finally:
        install_early_frame_release()


@pytest.mark.parametrize("codec", [VP8, H264], ids=["vp8", "h264"])
def test_video_round_trip_through_aiortc_codecs(codec: RTCRtpCodecParameters) -> None:
    encoder = rtc_internals.new_encoder(codec)
    frame = VideoFrame.from_ndarray(np.full((48, 64, 3), 90, dtype=np.uint8), format="bgr24")
    frame.pts, frame.time_base = 0, Fraction(1, 90000)
    payloads = rtc_internals.encode(encoder, frame, True)
    assert payloads
    data = b"".join(rtc_internals.depayload_packet(codec, p) for p in payloads)
    (decoded,) = rtc_internals.decode(rtc_internals.new_decoder(codec), data, 1234)
    assert isinstance(decoded, VideoFrame) and (decoded.width, decoded.height) == (64, 48)
    if codec is H264:  # x264 ran with veryfast, not aiortc's medium (its SEI says so)...
        assert b"subme=2 " in b"".join(payloads)  # medium: subme=7
        context = encoder.codec  # type: ignore[attr-defined]
        rtc_internals.encode(encoder, frame, False)
        assert encoder.codec is context  # type: ignore[attr-defined]  # ...and kept
    assert rtc_internals.set_target_bitrate(encoder, 100_000_000) in (1_500_000, 3_000_000)


def test_audio_round_trip_pcmu_to_opus() -> None:
    samples = np.zeros((1, 160), dtype=np.int16)
    frame = AudioFrame.from_ndarray(samples, format="s16", layout="mono")
    frame.sample_rate, frame.pts, frame.time_base = 8000, 0, Fraction(1, 8000)
    (payload,) = rtc_internals.encode(rtc_internals.new_encoder(PCMU), frame, False)
    assert len(payload) == 160
    (decoded,) = rtc_internals.decode(rtc_internals.new_decoder(PCMU), payload, 0)
    assert isinstance(decoded, AudioFrame) and decoded.samples == 160
    opus = rtc_internals.new_encoder(OPUS)
    encoded: list[bytes] = []
    for i in range(4):  # the resampler holds back a little at first
        decoded.pts = i * 160
        encoded += rtc_internals.encode(opus, decoded, False)
    assert encoded
    assert rtc_internals.set_target_bitrate(opus, 64_000) is None
