"""Pictures for the kiosk: a camera or a file read by OpenCV in its own thread, or synthetic.

The event loop never waits on a camera: a worker thread reads, converts to
I420 and keeps only the newest picture; the loop takes a reference to it.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from tsunagu.endpoint.stamps import synthetic_luma
from tsunagu.endpoint.tracks import now_ms

log = logging.getLogger(__name__)

Image = npt.NDArray[np.uint8]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def bgr_to_i420(bgr: Image, width: int, height: int) -> Image:
    """Resize a BGR picture to ``width`` x ``height`` and convert it to planar I420."""
    if bgr.shape[1] != width or bgr.shape[0] != height:
        bgr = np.asarray(cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA),
                         dtype=np.uint8)
    return np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420), dtype=np.uint8)


def is_image(path: str) -> bool:
    """Whether ``path`` names a still picture (shown repeatedly) rather than a video."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def synthetic_bgr(width: int, height: int, index: int) -> Image:
    """The synthetic moving picture as BGR."""
    luma = synthetic_luma(width, height, index)
    return np.asarray(cv2.cvtColor(luma, cv2.COLOR_GRAY2BGR), dtype=np.uint8)


class Camera:
    """A picture source read in a worker thread: a device index, a video or image file,
    or ``"synthetic"``."""

    def __init__(self, source: str | int, width: int = 640, height: int = 480,
                 fps: float = 30.0) -> None:
        self.source = source
        self.width = width
        self.height = height
        self.fps = fps
        self.frames_read = 0
        self.failed: str | None = None
        self._lock = threading.Lock()
        self._latest: tuple[Image, Image, int] | None = None  # (bgr, i420, captured ms)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the reader thread."""
        self._thread = threading.Thread(target=self._run, name="camera", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the reader thread and release the device."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)

    async def latest(self) -> tuple[Image, int] | None:
        """The newest (I420 picture, capture ms), or None before the first picture."""
        with self._lock:
            latest = self._latest
        return None if latest is None else (latest[1], latest[2])

    def latest_bgr(self) -> Image | None:
        """The newest picture as BGR (for the self-view and the camera check)."""
        with self._lock:
            latest = self._latest
        return None if latest is None else latest[0]

    def _publish(self, bgr: Image) -> None:
        if bgr.shape[1] != self.width or bgr.shape[0] != self.height:
            bgr = np.asarray(cv2.resize(bgr, (self.width, self.height),
                                        interpolation=cv2.INTER_AREA), dtype=np.uint8)
        i420 = bgr_to_i420(bgr, self.width, self.height)
        with self._lock:
            self._latest = (bgr, i420, now_ms())
        self.frames_read += 1

    def _run(self) -> None:
        try:
            if self.source == "synthetic":
                self._run_synthetic()
            elif isinstance(self.source, str) and is_image(self.source):
                self._run_image(self.source)
            else:
                self._run_capture()
        except Exception as exc:  # the thread must say why it stopped, not die silently
            self.failed = f"{type(exc).__name__}: {exc}"
            log.exception("camera %s stopped", self.source)

    def _tick(self, start: float) -> None:
        due = start + self.frames_read / self.fps
        self._stop.wait(max(due - time.monotonic(), 0.0))

    def _run_synthetic(self) -> None:
        start = time.monotonic()
        while not self._stop.is_set():
            self._publish(synthetic_bgr(self.width, self.height, self.frames_read))
            self._tick(start)

    def _run_image(self, path: str) -> None:
        raw = cv2.imread(path, cv2.IMREAD_COLOR)
        if raw is None:
            self.failed = f"cannot read image {path}"
            return
        picture = np.asarray(raw, dtype=np.uint8)
        start = time.monotonic()
        while not self._stop.is_set():
            self._publish(picture)
            self._tick(start)

    def _open(self) -> Any:
        capture = cv2.VideoCapture(self.source)
        if isinstance(self.source, int):
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            capture.set(cv2.CAP_PROP_FPS, self.fps)
        return capture

    def _run_capture(self) -> None:
        capture = self._open()
        is_file = isinstance(self.source, str)
        start = time.monotonic()
        try:
            while not self._stop.is_set():
                ok, bgr = capture.read()
                if not ok:
                    if is_file and self.frames_read > 0:  # loop a video file
                        capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
                        continue
                    self.failed = f"no picture from {self.source}"
                    self._stop.wait(0.5)  # a device that comes back is read again
                    capture.release()
                    capture = self._open()
                    continue
                self.failed = None
                self._publish(np.asarray(bgr, dtype=np.uint8))
                if is_file:  # a file reads faster than real time; pace it
                    self._tick(start)
        finally:
            capture.release()


def parse_source(raw: str) -> str | int:
    """``--source``: "synthetic", a device index ("0") or a file path."""
    return int(raw) if raw.isdigit() else raw
