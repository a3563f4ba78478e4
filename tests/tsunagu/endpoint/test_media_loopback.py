"""Two aiortc peers in one process: stamps read back, and what early frame release saves.

Needs a loopback-only network namespace:
    unshare -n sh -c 'ip link set lo up && .venv/bin/python -m pytest tests/kiosk_client'
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from aiortc import RTCPeerConnection

from tsunagu.endpoint.meter import ReceiveStats, TrackMeter
from tsunagu.endpoint.tracks import SyntheticVideoTrack, ToneAudioTrack
from tsunagu.rtc_internals import (
    install_early_frame_release,
    restrict_ice_addresses,
    rtc_configuration,
    uninstall_early_frame_release,
)

pytestmark = pytest.mark.webrtc


@pytest.fixture
def loopback_ice(loopback_only: None) -> Iterator[None]:
    restrict_ice_addresses(["127.0.0.1"])
    yield
    uninstall_early_frame_release()
    restrict_ice_addresses(None)


async def measure(seconds: float) -> dict[str, ReceiveStats]:
    """Send stamped video + tone from one peer to another for ``seconds``."""
    sender, receiver = (RTCPeerConnection(rtc_configuration([])) for _ in range(2))
    video, audio = SyntheticVideoTrack(), ToneAudioTrack()
    sender.addTrack(audio)
    sender.addTrack(video)
    stats = {"video": ReceiveStats("video"), "audio": ReceiveStats("audio")}
    meters: list[TrackMeter] = []
    receiver.on("track", lambda t: meters.append(TrackMeter(t, stats[t.kind])))
    try:
        await sender.setLocalDescription(await sender.createOffer())
        await receiver.setRemoteDescription(sender.localDescription)
        await receiver.setLocalDescription(await receiver.createAnswer())
        await sender.setRemoteDescription(receiver.localDescription)
        await asyncio.sleep(1.0)  # warm-up: first keyframe, bitrate ramp
        for s in stats.values():
            s.reset()
        await asyncio.sleep(seconds)
    finally:
        for m in meters:
            await m.stop()
        await sender.close()
        await receiver.close()
    return stats


async def test_stamps_come_back_and_early_release_cuts_a_frame_of_delay(
        loopback_ice: None) -> None:
    uninstall_early_frame_release()
    stock = await measure(4.0)
    install_early_frame_release()
    early = await measure(4.0)
    for stats in (stock, early):
        video = stats["video"].summary()
        assert video["frames"] >= 100 and video["fps"] >= 25
        # the stamps are read back: a frame encoded while the bitrate ramps (or the machine
        # is busy) may be too blurred to read, and its CRC then refuses it, never misreads
        assert video["stamped"] >= 0.97 * video["frames"], video
        assert stats["audio"].summary()["frames"] >= 180
        assert stats["audio"].summary()["mean_level"] > 0.05  # the tone, not silence
    stock_p50 = stock["video"].summary()["latency_ms_p50"]
    early_p50 = early["video"].summary()["latency_ms_p50"]
    print(f"capture-to-decoded p50: stock {stock_p50} ms, early release {early_p50} ms")
    assert early_p50 < stock_p50 - 15  # at 30 fps the stock buffer holds each frame ~33 ms
