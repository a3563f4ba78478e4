"""Pictures for the camera check."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt
import pytest

Image = npt.NDArray[np.uint8]


def draw_person(features: bool = True, scale: float = 1.0, facing: bool = True,
                present: bool = True) -> Image:
    """A head-and-shoulders picture (640x480 BGR) the frontal-face Haar cascade finds.

    No face photograph ships on this machine, so the face is drawn: skin oval, hair,
    eyebrows, eyes with iris, nose shadow and mouth, then blurred and noised like a
    cheap camera. ``facing=False`` shows the back of the head, ``present=False`` the
    empty chair (shoulders of a coat left on it), ``features=False`` a blank oval.
    """
    cx, cy, s = 320, 250, scale
    img = np.full((480, 640, 3), (90, 110, 120), np.uint8)

    def p(dx: float, dy: float) -> tuple[int, int]:
        return int(cx + dx * s), int(cy + dy * s)

    def ax(a: float, b: float) -> tuple[int, int]:
        return int(a * s), int(b * s)

    cv2.ellipse(img, p(0, 230), ax(190, 110), 0, 0, 360, (60, 50, 40), -1)
    if not present:
        return _camera_look(img)
    cv2.rectangle(img, p(-35, 80), p(35, 150), (120, 150, 190), -1)
    cv2.ellipse(img, p(0, -20), ax(100, 125), 0, 0, 360, (30, 30, 35), -1)
    if not facing:
        cv2.ellipse(img, p(0, 0), ax(95, 118), 0, 0, 360, (32, 30, 36), -1)
        return _camera_look(img)
    cv2.ellipse(img, p(0, 0), ax(82, 108), 0, 0, 360, (140, 170, 215), -1)
    if features:
        for side in (-1, 1):
            cv2.ellipse(img, p(side * 33, -43), ax(20, 5), 0, 0, 360, (40, 45, 55), -1)
            cv2.ellipse(img, p(side * 33, -25), ax(17, 8), 0, 0, 360, (235, 235, 235), -1)
            cv2.circle(img, p(side * 33, -25), int(7 * s), (40, 30, 25), -1)
            cv2.ellipse(img, p(side * 33, -16), ax(18, 6), 0, 0, 180, (110, 135, 175), -1)
        cv2.line(img, p(0, -10), p(-6, 25), (110, 135, 180), max(int(4 * s), 1))
        cv2.ellipse(img, p(0, 30), ax(14, 6), 0, 0, 360, (100, 125, 170), -1)
        cv2.ellipse(img, p(0, 58), ax(26, 8), 0, 0, 360, (80, 80, 160), -1)
    return _camera_look(img)


def _camera_look(img: Image) -> Image:
    """Soft focus and sensor noise."""
    img = np.asarray(cv2.GaussianBlur(img, (0, 0), 3), dtype=np.uint8)
    noise = np.random.default_rng(1).normal(0, 4, img.shape)
    return np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)


@pytest.fixture
def person() -> Image:
    return draw_person()


@pytest.fixture(params=["empty chair", "back of the head"])
def faceless(request: pytest.FixtureRequest) -> Image:
    if request.param == "empty chair":
        return draw_person(present=False)
    return draw_person(facing=False)


@pytest.fixture
def draw() -> object:
    """The person-drawing function itself, for variations."""
    return draw_person


