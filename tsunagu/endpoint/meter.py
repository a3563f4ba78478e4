"""What arrives: count decoded frames, read their stamps, compute fps and latency.

``ReceiveStats`` is pure (feed it observations, ask for a summary);
``TrackMeter`` pulls a remote aiortc track and feeds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from tsunagu.endpoint.stamps import Luma, read_stamp
from tsunagu.endpoint.tracks import now_ms

log = logging.getLogger(__name__)


def percentile(values: list[float], pct: float) -> float | None:
    """The ``pct`` percentile (nearest rank) of ``values``, None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = math.ceil(pct / 100 * len(ordered)) - 1
    return ordered[max(0, min(len(ordered) - 1, rank))]


class Spectrum:
    """The dominant frequency of received audio: Hann-windowed power spectra of
    ``block``-sample blocks, summed; the peak refined by parabolic interpolation."""

    def __init__(self, block: int = 4096, min_hz: float = 50.0) -> None:
        self.block = block
        self.min_hz = min_hz
        self.rate: int | None = None
        self.blocks = 0
        self._power: npt.NDArray[np.float64] = np.zeros(block // 2 + 1)
        self._pending: list[npt.NDArray[np.float32]] = []
        self._pending_n = 0
        self._window = np.hanning(block)

    def add(self, mono: npt.NDArray[np.float32], rate: int) -> None:
        """Mono samples (any scale) at ``rate``; a change of rate starts over."""
        if rate != self.rate:
            self.reset()
            self.rate = rate
        self._pending.append(mono)
        self._pending_n += mono.size
        if self._pending_n < self.block:
            return
        samples = np.concatenate(self._pending)
        whole = samples.size // self.block * self.block
        for start in range(0, whole, self.block):
            chunk = samples[start:start + self.block] * self._window
            self._power += np.abs(np.fft.rfft(chunk)) ** 2
            self.blocks += 1
        rest = samples[whole:]
        self._pending, self._pending_n = [rest], rest.size

    def dominant_hz(self) -> float | None:
        """The strongest frequency above ``min_hz``, None before one whole block."""
        if self.blocks == 0 or self.rate is None or not self._power.any():
            return None
        bin_hz = self.rate / self.block
        low = int(self.min_hz / bin_hz) + 1
        peak = low + int(np.argmax(self._power[low:-1]))
        a, b, c = np.log(self._power[peak - 1:peak + 2] + 1e-12)
        shift = 0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c != 0 else 0.0
        return float((peak + shift) * bin_hz)

    def reset(self) -> None:
        """Forget everything."""
        self.rate, self.blocks = None, 0
        self._power = np.zeros(self.block // 2 + 1)
        self._pending, self._pending_n = [], 0


@dataclass
class ReceiveStats:
    """Decoded frames of one kind, their arrival times, stamps and latencies."""

    kind: str
    frames: int = 0
    stamped: int = 0
    first_at: float | None = None
    last_at: float | None = None
    latencies_ms: list[float] = field(default_factory=list)
    last_counter: int | None = None
    gaps: int = 0
    level_sum: float = 0.0
    spectrum: Spectrum = field(default_factory=Spectrum, repr=False)

    def add(self, at: float, latency_ms: float | None = None, counter: int | None = None,
            level: float | None = None) -> None:
        """One decoded frame at monotonic time ``at``, with what its stamp said."""
        self.frames += 1
        if self.first_at is None:
            self.first_at = at
        self.last_at = at
        if latency_ms is not None:
            self.stamped += 1
            self.latencies_ms.append(latency_ms)
        if counter is not None:
            if self.last_counter is not None and counter > self.last_counter + 1:
                self.gaps += counter - self.last_counter - 1
            self.last_counter = counter
        if level is not None:
            self.level_sum += level

    def reset(self) -> None:
        """Forget everything so far (e.g. after a warm-up)."""
        self.frames = self.stamped = self.gaps = 0
        self.first_at = self.last_at = self.last_counter = None
        self.latencies_ms = []
        self.level_sum = 0.0
        self.spectrum.reset()

    def fps(self) -> float:
        """Frames per second between the first and last decoded frame."""
        if self.first_at is None or self.last_at is None or self.frames < 2:
            return 0.0
        span = self.last_at - self.first_at
        return (self.frames - 1) / span if span > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        out: dict[str, Any] = {"frames": self.frames, "fps": round(self.fps(), 2)}
        if self.kind == "video":
            p50 = percentile(self.latencies_ms, 50)
            p95 = percentile(self.latencies_ms, 95)
            out.update(stamped=self.stamped, skipped=self.gaps,
                       latency_ms_p50=None if p50 is None else round(p50, 1),
                       latency_ms_p95=None if p95 is None else round(p95, 1))
        else:
            out["mean_level"] = round(self.level_sum / self.frames, 4) if self.frames else 0.0
            dominant = self.spectrum.dominant_hz()
            out["dominant_hz"] = None if dominant is None else round(dominant, 1)
        return out


def frame_luma(frame: av.VideoFrame) -> Luma:
    """The luma plane of a decoded frame, without converting the whole picture if possible."""
    if frame.format.name in ("yuv420p", "yuvj420p", "nv12"):
        plane = frame.planes[0]
        rows = np.frombuffer(memoryview(plane), dtype=np.uint8)
        return rows.reshape(plane.height, plane.line_size)[:, : plane.width]
    return np.asarray(frame.to_ndarray(format="gray"), dtype=np.uint8)


def mono_samples(frame: av.AudioFrame) -> npt.NDArray[np.float32]:
    """A decoded audio frame as mono float samples, -1..1 of full scale (channels averaged)."""
    raw = frame.to_ndarray()
    samples = raw.astype(np.float32)
    if np.issubdtype(raw.dtype, np.integer):
        samples /= 32768.0
    channels = len(frame.layout.channels)
    if samples.shape[0] == 1 and channels > 1:  # packed: channels interleaved in one row
        return np.asarray(samples.reshape(-1, channels).mean(axis=1), dtype=np.float32)
    return np.asarray(samples.mean(axis=0), dtype=np.float32)


def audio_level(frame: av.AudioFrame) -> float:
    """RMS of a decoded audio frame, 0..1 of full scale."""
    raw = frame.to_ndarray()
    if raw.size == 0:
        return 0.0
    samples = raw.astype(np.float32)
    if np.issubdtype(raw.dtype, np.integer):
        samples /= 32768.0
    return float(np.sqrt(np.mean(samples * samples)))


class TrackMeter:
    """Pull a remote track until it ends, recording each frame in ``stats``."""

    def __init__(self, track: MediaStreamTrack, stats: ReceiveStats,
                 on_video: Callable[[av.VideoFrame], None] | None = None,
                 on_audio: Callable[[av.AudioFrame], None] | None = None) -> None:
        self.track = track
        self.stats = stats
        self.on_video = on_video
        self.on_audio = on_audio
        self.task: asyncio.Task[None] = asyncio.create_task(self._run(), name=f"meter-{track.kind}")

    async def _run(self) -> None:
        while True:
            try:
                frame = await self.track.recv()
            except MediaStreamError:
                return
            at = time.monotonic()
            if isinstance(frame, av.VideoFrame):
                stamp = read_stamp(frame_luma(frame), now_ms())
                if stamp is None:
                    self.stats.add(at)
                else:
                    self.stats.add(at, latency_ms=now_ms() - stamp.time_ms, counter=stamp.counter)
                if self.on_video is not None:
                    self.on_video(frame)
            elif isinstance(frame, av.AudioFrame):
                self.stats.add(at, level=audio_level(frame))
                self.stats.spectrum.add(mono_samples(frame), int(frame.sample_rate))
                if self.on_audio is not None:
                    self.on_audio(frame)

    async def stop(self) -> None:
        """Stop pulling."""
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
