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
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from kiosk_client.stamps import Luma, read_stamp
from kiosk_client.tracks import now_ms

log = logging.getLogger(__name__)


def percentile(values: list[float], pct: float) -> float | None:
    """The ``pct`` percentile (nearest rank) of ``values``, None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = math.ceil(pct / 100 * len(ordered)) - 1
    return ordered[max(0, min(len(ordered) - 1, rank))]


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
        return out


def frame_luma(frame: av.VideoFrame) -> Luma:
    """The luma plane of a decoded frame, without converting the whole picture if possible."""
    if frame.format.name in ("yuv420p", "yuvj420p", "nv12"):
        plane = frame.planes[0]
        rows = np.frombuffer(memoryview(plane), dtype=np.uint8)
        return rows.reshape(plane.height, plane.line_size)[:, : plane.width]
    return np.asarray(frame.to_ndarray(format="gray"), dtype=np.uint8)


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
                 on_video: Callable[[av.VideoFrame], None] | None = None) -> None:
        self.track = track
        self.stats = stats
        self.on_video = on_video
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

    async def stop(self) -> None:
        """Stop pulling."""
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
