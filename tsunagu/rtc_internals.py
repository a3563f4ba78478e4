"""Every aiortc / aioice internal that tsunagu relies on, in one place.

aiortc 1.16.0 (pinned) has no public API for packets beneath its frame
pipeline, for the ICE host addresses, or for releasing a video frame on its
marker packet. Everything private that the relay and the Python endpoints
touch is reached through the functions here, and ``tests/relay/test_rtc_internals.py``
checks each of them, so an aiortc upgrade fails there first.

Seams used (see docs/media.md):

- ``aioice.ice.get_host_addresses``: module global looked up by
  ``Connection.gather_candidates``; replaced to restrict host candidates.
- ``aiortc.jitterbuffer.JitterBuffer.add``: wrapped to release a video frame
  on its marker packet when the frame's packets are contiguous.
- ``RTCDtlsTransport._handle_rtp_data`` / ``_handle_rtcp_data``: per-instance
  override, called after SRTP removal with the plain packet bytes.
- ``RTCDtlsTransport._send_rtp``: SRTP protect + send of plain RTP/RTCP bytes.
- ``RTCRtpSender`` name-mangled report state (``__ntp_timestamp``,
  ``__rtp_timestamp``, ``__packet_count``, ``__octet_count``, ``__rtt``),
  so the relay's own Sender Reports and RTT follow the forwarded stream.
- ``aiortc.codecs`` ``depayload`` / ``get_decoder`` / ``get_encoder``, the
  encoders' ``encode`` and ``target_bitrate``, ``JitterBuffer`` and
  ``JitterFrame``: the transcoding fallback (relay/transcode.py); and
  ``H264Encoder.codec`` / ``buffer_data`` / ``buffer_pts``, to open x264 with a
  faster preset than aiortc's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from fractions import Fraction
from typing import Any

import aioice.ice
import av
import pylibsrtp
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCRtpCodecParameters
from aiortc import clock as rtc_clock
from aiortc.codecs import depayload, get_decoder, get_encoder
from aiortc.codecs.base import Decoder, Encoder
from aiortc.codecs.h264 import MAX_FRAME_RATE as H264_MAX_FRAME_RATE
from aiortc.codecs.h264 import H264Encoder
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import RtpPacket
from aiortc.utils import uint16_add
from av.frame import Frame
from av.video.frame import VideoFrame

RtpHandler = Callable[[bytes, int], Awaitable[None]]
RtcpHandler = Callable[[bytes], Awaitable[None]]

_ORIGINAL_GET_HOST_ADDRESSES = aioice.ice.get_host_addresses
_ORIGINAL_JITTER_ADD = JitterBuffer.add


# -- ICE -----------------------------------------------------------------------


def restrict_ice_addresses(addresses: list[str] | None) -> None:
    """Make aioice gather host candidates only on ``addresses`` (None: aioice's default)."""
    if addresses is None:
        aioice.ice.get_host_addresses = _ORIGINAL_GET_HOST_ADDRESSES
        return
    chosen = list(addresses)

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = get_host_addresses


def rtc_configuration(ice_servers: list[dict[str, Any]]) -> RTCConfiguration:
    """An RTCConfiguration with explicit iceServers (an empty list contacts no STUN server)."""
    servers = [
        RTCIceServer(
            urls=s["urls"], username=s.get("username"), credential=s.get("credential")
        )
        for s in ice_servers
    ]
    return RTCConfiguration(iceServers=servers)


# -- early frame release ---------------------------------------------------------


def _early_add(self: JitterBuffer, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
    pli_flag, frame = _ORIGINAL_JITTER_ADD(self, packet)
    if frame is not None or not self._is_video or not packet.marker or self._origin is None:
        return pli_flag, frame
    return pli_flag, _release_marked_frame(self, packet)


def _release_marked_frame(buffer: JitterBuffer, marker: RtpPacket) -> JitterFrame | None:
    """The frame ending at ``marker`` if every packet from the origin up to it is there."""
    origin = buffer._origin
    assert origin is not None
    count = uint16_add(marker.sequence_number, -origin) + 1
    if count > buffer.capacity:
        return None
    packets: list[Any] = []
    for i in range(count):
        packet = buffer._packets[(origin + i) % buffer.capacity]
        if packet is None or packet.timestamp != marker.timestamp:
            return None
        packets.append(packet)
    buffer.remove(count)
    return JitterFrame(data=b"".join(p._data for p in packets), timestamp=marker.timestamp)


def install_early_frame_release() -> None:
    """Release each video frame on its marker packet when complete (idempotent)."""
    JitterBuffer.add = _early_add  # type: ignore[method-assign]


def uninstall_early_frame_release() -> None:
    """Restore aiortc's own jitter buffer (release on the next frame's first packet)."""
    JitterBuffer.add = _ORIGINAL_JITTER_ADD  # type: ignore[method-assign]


# -- packet seams beneath the frame pipeline ----------------------------------------


def dtls_transports(pc: RTCPeerConnection) -> list[Any]:
    """The distinct DTLS transports of a peer connection's media transceivers."""
    seen: dict[int, Any] = {}
    for transceiver in pc.getTransceivers():
        transport = transceiver.receiver.transport
        seen.setdefault(id(transport), transport)
    return list(seen.values())


def tap_transport(dtls: Any, on_rtp: RtpHandler, on_rtcp: RtcpHandler) -> None:
    """Hand this transport's decrypted RTP and RTCP to the handlers instead of aiortc's."""
    dtls._handle_rtp_data = on_rtp
    dtls._handle_rtcp_data = on_rtcp


async def deliver_rtcp_to_aiortc(dtls: Any, data: bytes) -> None:
    """Let aiortc's own routing see an RTCP compound packet (RTT, reports)."""
    await type(dtls)._handle_rtcp_data(dtls, data)


async def send_plain(dtls: Any, data: bytes) -> None:
    """SRTP-protect plain RTP or RTCP bytes and send them; ConnectionError if not connected."""
    await dtls._send_rtp(data)


def note_sent(sender: RTCRtpSender, rtp_timestamp: int | None, payload_bytes: int) -> None:
    """Keep the sender's Sender Report state in step with a forwarded packet.

    ``rtp_timestamp`` None (a late packet, a resend) counts the packet but leaves the
    report's NTP/RTP timestamp pair on the newest packet sent.
    """
    state: Any = sender
    if rtp_timestamp is not None:
        state._RTCRtpSender__ntp_timestamp = rtc_clock.current_ntp_time()
        state._RTCRtpSender__rtp_timestamp = rtp_timestamp
    state._RTCRtpSender__octet_count += payload_bytes
    state._RTCRtpSender__packet_count += 1


def sender_rtt(sender: RTCRtpSender) -> float | None:
    """The sender's smoothed round-trip time in seconds, from the far end's reports."""
    rtt: float | None = getattr(sender, "_RTCRtpSender__rtt", None)
    return rtt


def sender_ssrc(sender: RTCRtpSender) -> int:
    """The SSRC an aiortc sender announced in its SDP."""
    ssrc: int = getattr(sender, "_ssrc")  # noqa: B009 - private, reached only here
    return ssrc


# -- the synchronous fast path: SRTP in, SRTP out, no task switch per packet ---------------

MAX_SEND_BUFFER = 256 * 1024  # bytes queued in a UDP transport before packets are dropped


def install_rtp_fast_path(dtls: Any, on_rtp: Callable[[bytes], None]) -> None:
    """Decrypt this leg's SRTP as aioice receives it and call ``on_rtp`` synchronously.

    Skips aioice's receive queue and the DTLS transport's receive task: the packet is
    unprotected and handed over in the same event-loop callback that read it. SRTCP,
    DTLS and everything else still take aiortc's own path.
    """
    connection = dtls.transport._connection
    original = connection.data_received

    def data_received(data: bytes, component: int) -> None:
        rx = dtls._rx_srtp
        if rx is not None and len(data) > 1 and 127 < data[0] < 192 and not 192 <= data[1] <= 223:
            try:
                plain = rx.unprotect(data)
            except pylibsrtp.Error:
                return
            on_rtp(plain)
            return
        original(data, component)

    connection.data_received = data_received


def send_rtp_now(dtls: Any, data: bytes) -> bool:
    """SRTP-protect and send at once on the selected pair; False (dropped) if it cannot."""
    tx = dtls._tx_srtp
    pair = dtls.transport._connection._nominated.get(1)
    if tx is None or pair is None or dtls.state != "connected":
        return False
    transport = pair.protocol.transport
    if transport is None or transport.get_write_buffer_size() > MAX_SEND_BUFFER:
        return False
    try:
        protected = tx.protect(data)
    except pylibsrtp.Error:
        return False  # e.g. a sequence number libsrtp's replay window refuses: drop it
    transport.sendto(protected, pair.remote_addr)
    return True


def send_queue_bytes(dtls: Any) -> int:
    """Bytes waiting in the UDP transport of the selected pair (0 when not connected)."""
    pair = dtls.transport._connection._nominated.get(1)
    transport = pair.protocol.transport if pair is not None else None
    return 0 if transport is None else int(transport.get_write_buffer_size())


# -- transcoding: aiortc's depayloaders, jitter buffer, decoders and encoders ---------------

H264_PRESET = "veryfast"
DECODABLE = ("audio/opus", "audio/pcmu", "audio/pcma", "audio/g722", "video/vp8", "video/h264")


def can_decode(codec: RTCRtpCodecParameters) -> bool:
    """Whether aiortc can depayload and decode ``codec``."""
    return codec.mimeType.lower() in DECODABLE


def can_encode(codec: RTCRtpCodecParameters) -> bool:
    """Whether aiortc can encode and packetize ``codec`` (H.264: packetization mode 1 only)."""
    if codec.mimeType.lower() == "video/h264":
        return str(codec.parameters.get("packetization-mode", "0")) == "1"
    return can_decode(codec)


def depayload_packet(codec: RTCRtpCodecParameters, payload: bytes) -> bytes:
    """The codec bitstream carried by one RTP payload (VP8/H.264 descriptors removed);
    ValueError when the payload is malformed."""
    return depayload(codec, payload)


def video_reassembler(capacity: int) -> JitterBuffer:
    """aiortc's jitter buffer, for video (capacity: a power of 2, in packets)."""
    return JitterBuffer(capacity=capacity, is_video=True)


def reassemble(buffer: JitterBuffer, seq: int, timestamp: int, marker: int,
               data: bytes) -> tuple[bool, tuple[bytes, int] | None]:
    """Add one depayloaded video packet: (keyframe needed, complete frame or None).

    The frame is (bitstream, RTP timestamp). It is released on its marker packet when
    complete, as with install_early_frame_release (installed or not), else by aiortc's rule.
    The flag is aiortc's: packets were lost beyond what the buffer can hold.
    """
    packet = RtpPacket(sequence_number=seq, timestamp=timestamp, marker=marker)
    state: Any = packet
    state._data = data
    pli_flag, frame = _ORIGINAL_JITTER_ADD(buffer, packet)
    if frame is None and marker and buffer._origin is not None:
        frame = _release_marked_frame(buffer, packet)
    return pli_flag, None if frame is None else (frame.data, frame.timestamp)


def new_decoder(codec: RTCRtpCodecParameters) -> Decoder:
    """aiortc's decoder for ``codec`` (PyAV: FFmpeg/libvpx/libopus)."""
    return get_decoder(codec)


def new_encoder(codec: RTCRtpCodecParameters) -> Encoder:
    """aiortc's encoder and packetizer for ``codec``."""
    return get_encoder(codec)


def decode(decoder: Decoder, data: bytes, timestamp: int) -> list[Frame]:
    """Decode one encoded frame; av.FFmpegError when it cannot be decoded."""
    return decoder.decode(JitterFrame(data=data, timestamp=timestamp))


def encode(encoder: Encoder, frame: Frame, force_keyframe: bool) -> list[bytes]:
    """Encode one frame into RTP payloads (empty while an audio encoder buffers)."""
    if isinstance(encoder, H264Encoder) and isinstance(frame, VideoFrame):
        _prepare_h264(encoder, frame)
    payloads, _timestamp = encoder.encode(frame, force_keyframe)
    return payloads


def _prepare_h264(encoder: H264Encoder, frame: VideoFrame) -> None:
    """Open x264 as aiortc's H264Encoder would, but with H264_PRESET (aiortc sets none:
    x264's "medium", about 4x the CPU at 640x480). aiortc keeps a context whose size and
    bitrate (within 10%) still fit, so it encodes with this one."""
    codec = encoder.codec
    if (codec is not None and codec.bit_rate
            and (codec.width, codec.height) == (frame.width, frame.height)
            and abs(encoder.target_bitrate - codec.bit_rate) / codec.bit_rate <= 0.1):
        return
    encoder.buffer_data, encoder.buffer_pts = b"", None
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height = frame.width, frame.height
    codec.bit_rate = encoder.target_bitrate
    codec.pix_fmt = "yuv420p"
    codec.framerate = Fraction(H264_MAX_FRAME_RATE, 1)
    codec.time_base = Fraction(1, H264_MAX_FRAME_RATE)
    codec.options = {"level": "31", "tune": "zerolatency", "preset": H264_PRESET}
    codec.profile = "Baseline"
    encoder.codec = codec


def set_target_bitrate(encoder: Encoder, bitrate: int) -> int | None:
    """Set a video encoder's target bitrate; the value it keeps (clamped), None for audio."""
    if not hasattr(encoder, "target_bitrate"):
        return None
    encoder.target_bitrate = bitrate
    kept: int = encoder.target_bitrate
    return kept
