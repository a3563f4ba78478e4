"""Synthetic tracks: paced, stamped video frames and a real tone."""

from __future__ import annotations

import asyncio
import time

import av
import numpy as np

from kiosk_client.camera import Camera
from tsunagu.endpoint.meter import audio_level, frame_luma
from tsunagu.endpoint.stamps import read_stamp
from tsunagu.endpoint.tracks import SourceVideoTrack, SyntheticVideoTrack, ToneAudioTrack, now_ms


async def test_synthetic_video_is_paced_and_stamped_at_capture() -> None:
    track = SyntheticVideoTrack(width=640, height=480, fps=30)
    started = time.monotonic()
    frames = [await track.recv() for _ in range(16)]
    elapsed = time.monotonic() - started
    assert 0.45 < elapsed < 0.8  # 15 intervals of 1/30 s
    stamps = [read_stamp(frame_luma(f), now_ms()) for f in frames]
    assert [s.counter for s in stamps if s] == list(range(16))
    assert all(s is not None and 0 <= now_ms() - s.time_ms < 2000 for s in stamps)
    assert frames[1].pts - frames[0].pts == 3000  # 90 kHz clock
    assert (frames[0].width, frames[0].height) == (640, 480)
    assert track.frames_sent == 16
    track.stop()


async def test_tone_is_20ms_of_audible_audio() -> None:
    track = ToneAudioTrack()
    frame = await track.recv()
    assert isinstance(frame, av.AudioFrame)
    assert frame.samples == 960 and frame.sample_rate == 48000
    assert 0.12 < audio_level(frame) < 0.16  # RMS of a 0.2 sine
    assert (await track.recv()).pts == 960


async def test_camera_track_stamps_the_camera_capture_time() -> None:
    camera = Camera("synthetic", width=320, height=240, fps=30)
    camera.start()
    try:
        for _ in range(100):
            if camera.latest_bgr() is not None:
                break
            await asyncio.sleep(0.01)
        track = SourceVideoTrack(camera, fps=30)
        frame = await track.recv()
        latest = await camera.latest()
        assert latest is not None
        stamp = read_stamp(frame_luma(frame), now_ms())
        assert stamp is not None and stamp.counter == 0
        assert latest[1] - 100 <= stamp.time_ms <= latest[1]
        assert (frame.width, frame.height) == (320, 240)
        assert np.asarray(latest[0]).shape == (360, 320)  # I420: 1.5 x height
    finally:
        camera.stop()
