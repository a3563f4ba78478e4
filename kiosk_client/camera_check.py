"""The camera check before a call: is there a picture, is it bright enough, is a face in it.

Pure functions over a BGR picture plus a Haar-cascade face detector. Face
detection costs tens of milliseconds: callers run ``check_picture`` in a
thread (``asyncio.to_thread``), never on the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]

DARK_MEAN = 50.0  # mean luma below this: faces are lost in noise on cheap cameras
BRIGHT_MEAN = 215.0  # above: washed out, usually a window or lamp behind the person
FLAT_STD = 4.0  # so little variation that the lens is covered or the feed is dead
BLACK_MEAN = 12.0


class Problem(StrEnum):
    """What the camera check can find wrong."""

    NO_PICTURE = "no_picture"
    COVERED = "covered"
    TOO_DARK = "too_dark"
    TOO_BRIGHT = "too_bright"
    NO_FACE = "no_face"


ADVICE: dict[Problem, tuple[str, str]] = {
    Problem.NO_PICTURE: (
        "カメラの映像が届いていません。カメラのケーブルを確認してください。",
        "No picture from the camera. Check that the camera is plugged in.",
    ),
    Problem.COVERED: (
        "映像が真っ暗です。カメラのカバーやレンズをふさぐ物を外してください。",
        "The picture is black. Open the lens cover or remove what blocks the camera.",
    ),
    Problem.TOO_DARK: (
        "暗すぎます。照明をつけるか、明るい場所に移動してください。",
        "Too dark. Turn on a light or move to a brighter place.",
    ),
    Problem.TOO_BRIGHT: (
        "明るすぎます。後ろの窓や照明を避けてください。",
        "Too bright. Avoid a window or lamp behind you.",
    ),
    Problem.NO_FACE: (
        "顔が映っていません。カメラの正面に座ってください。",
        "No face in view. Please sit facing the camera.",
    ),
}


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome: problems found (empty when fine), with the measures behind them."""

    problems: tuple[Problem, ...]
    brightness: float = 0.0
    contrast: float = 0.0
    faces: list[tuple[int, int, int, int]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing needs fixing."""
        return not self.problems

    def advice(self) -> list[tuple[str, str]]:
        """What to tell the person, in Japanese and English, most important first."""
        return [ADVICE[p] for p in self.problems]


def default_cascade_path() -> str:
    """The frontal-face Haar cascade shipped with opencv-python 4.x."""
    return str(Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml")  # type: ignore[attr-defined]


class FaceDetector:
    """A Haar-cascade frontal-face detector (one per thread: cascades are not thread-safe)."""

    def __init__(self, cascade_path: str | None = None) -> None:
        self.cascade = cv2.CascadeClassifier(cascade_path or default_cascade_path())
        if self.cascade.empty():
            raise FileNotFoundError(f"no Haar cascade at {cascade_path or default_cascade_path()}")

    def faces(self, gray: Image) -> list[tuple[int, int, int, int]]:
        """Face rectangles (x, y, w, h) in a grey picture."""
        # A face smaller than 1/8 of the picture is too far away to sign to anyway.
        # minNeighbors 5: fewer false faces (a featureless oval) than OpenCV's default 3.
        min_side = max(24, min(gray.shape[:2]) // 8)
        found = self.cascade.detectMultiScale(
            gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side)
        )
        return [(int(x), int(y), int(w), int(h)) for (x, y, w, h) in found]


def light_problem(gray: Image) -> Problem | None:
    """A lighting problem of a grey picture, if any."""
    mean, std = float(gray.mean()), float(gray.std())
    if mean < BLACK_MEAN and std < FLAT_STD:
        return Problem.COVERED
    if mean < DARK_MEAN:
        return Problem.TOO_DARK
    if mean > BRIGHT_MEAN:
        return Problem.TOO_BRIGHT
    if std < FLAT_STD:
        return Problem.COVERED
    return None


def check_picture(bgr: Image | None, detector: FaceDetector) -> CheckResult:
    """Check one BGR picture: a picture at all, then light, then a face."""
    if bgr is None or bgr.size == 0:
        return CheckResult(problems=(Problem.NO_PICTURE,))
    gray = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if bgr.ndim == 3 else bgr,
                      dtype=np.uint8)
    mean, std = float(gray.mean()), float(gray.std())
    light = light_problem(gray)
    if light is Problem.COVERED:
        return CheckResult(problems=(light,), brightness=mean, contrast=std)
    faces = detector.faces(gray)
    problems = tuple(p for p in (light, None if faces else Problem.NO_FACE) if p is not None)
    return CheckResult(problems=problems, brightness=mean, contrast=std, faces=faces)
