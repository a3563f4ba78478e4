"""Media tracks the Python clients send: stamped synthetic or camera video, a tone for audio.

Every video frame carries a stamp (tsunagu.endpoint.stamps) with its capture time
and a counter, so the far end can measure delivered fps and latency.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import time
from typing import Protocol

import av
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from tsunagu.endpoint.stamps import Luma, Stamp, synthetic_luma, write_stamp

VIDEO_CLOCK_RATE = 90_000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK_RATE)
AUDIO_RATE = 48_000
AUDIO_PTIME = 0.020
AUDIO_TIME_BASE = fractions.Fraction(1, AUDIO_RATE)


def now_ms() -> int:
    """Wall-clock time in ms: stamps compare capture and display on the same machine clock."""
    return time.time_ns() // 1_000_000


def i420_frame(luma: Luma, chroma: npt.NDArray[np.uint8] | None = None) -> av.VideoFrame:
    """An av yuv420p frame from a luma plane and optional packed U+V rows (grey if None)."""
    height, width = luma.shape
    if chroma is None:
        chroma = np.full((height // 2, width), 128, dtype=np.uint8)
    return av.VideoFrame.from_ndarray(np.vstack((luma, chroma)), format="yuv420p")


class FrameSource(Protocol):
    """Where video pictures come from: gives the latest I420 picture and when it was taken."""

    async def latest(self) -> tuple[npt.NDArray[np.uint8], int] | None:
        """The newest (I420 array of shape (h*3/2, w), capture ms), or None if none yet."""
        ...


class _PacedVideoTrack(MediaStreamTrack):
    """A video track that produces frames at a fixed rate and stamps each one."""

    kind = "video"

    def __init__(self, fps: float) -> None:
        super().__init__()
        self.fps = fps
        self.frames_sent = 0
        self._start: float | None = None

    async def _pace(self) -> int:
        """Sleep until the next frame is due; return its pts in 90 kHz units."""
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self.frames_sent / self.fps
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -1.0:  # fell far behind (suspended loop): restart the clock, don't burst
            self._start = time.monotonic() - self.frames_sent / self.fps
        return int(self.frames_sent * VIDEO_CLOCK_RATE / self.fps)

    def _finish(self, frame: av.VideoFrame, pts: int) -> av.VideoFrame:
        frame.pts = pts
        frame.time_base = VIDEO_TIME_BASE
        self.frames_sent += 1
        return frame


class SyntheticVideoTrack(_PacedVideoTrack):
    """A moving synthetic picture, 640x480 at 30 fps by default, stamped at capture."""

    def __init__(self, width: int = 640, height: int = 480, fps: float = 30.0) -> None:
        super().__init__(fps)
        self.width = width
        self.height = height

    async def recv(self) -> av.VideoFrame:
        pts = await self._pace()
        luma = synthetic_luma(self.width, self.height, self.frames_sent)
        write_stamp(luma, Stamp(time_ms=now_ms(), counter=self.frames_sent))
        return self._finish(i420_frame(luma), pts)


class SourceVideoTrack(_PacedVideoTrack):
    """Frames from a FrameSource (a camera or a file), stamped with their capture time."""

    def __init__(self, source: FrameSource, fps: float = 30.0) -> None:
        super().__init__(fps)
        self.source = source
        self.frames_repeated = 0
        self._last: tuple[npt.NDArray[np.uint8], int] | None = None

    async def recv(self) -> av.VideoFrame:
        pts = await self._pace()
        latest = await self.source.latest()
        if latest is None:
            latest = self._last or (np.full((720, 640), 16, dtype=np.uint8), now_ms())
        elif self._last is not None and latest[1] == self._last[1]:
            self.frames_repeated += 1
        self._last = latest
        i420, captured_ms = latest
        i420 = i420.copy()
        height = i420.shape[0] * 2 // 3
        write_stamp(i420[:height], Stamp(time_ms=captured_ms, counter=self.frames_sent))
        return self._finish(av.VideoFrame.from_ndarray(i420, format="yuv420p"), pts)


def tone_samples(start: int, count: int, freq: float = 440.0, level: float = 0.2) -> bytes:
    """``count`` samples of a sine tone (s16 mono, 48 kHz) starting at sample ``start``."""
    n = np.arange(start, start + count, dtype=np.float64)
    wave = np.sin(2 * math.pi * freq * n / AUDIO_RATE) * level * 32767
    return wave.astype("<i2").tobytes()


class ToneAudioTrack(MediaStreamTrack):
    """A steady sine tone in 20 ms frames (aiortc encodes it as Opus)."""

    kind = "audio"

    def __init__(self, freq: float = 440.0) -> None:
        super().__init__()
        self.freq = freq
        self.frames_sent = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        samples = int(AUDIO_RATE * AUDIO_PTIME)
        if self._start is None:
            self._start = time.monotonic()
        delay = self._start + self.frames_sent * AUDIO_PTIME - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -1.0:
            self._start = time.monotonic() - self.frames_sent * AUDIO_PTIME
        pts = self.frames_sent * samples
        frame = av.AudioFrame(format="s16", layout="mono", samples=samples)
        frame.planes[0].update(tone_samples(pts, samples, self.freq))
        frame.pts = pts
        frame.sample_rate = AUDIO_RATE
        frame.time_base = AUDIO_TIME_BASE
        self.frames_sent += 1
        return frame
