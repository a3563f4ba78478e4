"""The aiortc seams the relay and the Python endpoints rely on."""

from __future__ import annotations

import asyncio
import struct

import aioice.ice
import pytest
from aiortc import RTCPeerConnection
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket

from relay.rtc_internals import (
    dtls_transports,
    install_early_frame_release,
    install_rtp_fast_path,
    restrict_ice_addresses,
    rtc_configuration,
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
    finally:
        await a.close()
        await b.close()


async def test_only_the_newest_packet_dates_the_sender_report() -> None:
    """A late packet or a resend is counted but never moves the SR's NTP/RTP pair back."""
    from types import SimpleNamespace

    from aiortc.rtcrtpsender import RTCRtpSender

    from relay.rtc_internals import note_sent

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
