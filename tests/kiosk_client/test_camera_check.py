"""The camera check on a drawn face, the same scene without a face, black and dark pictures."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from kiosk_client.camera_check import FaceDetector, Problem, check_picture

Image = np.ndarray


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


def test_a_face_in_good_light_passes(person: Image, detector: FaceDetector) -> None:
    result = check_picture(person, detector)
    assert result.ok, result
    assert len(result.faces) == 1
    x, y, w, h = result.faces[0]
    assert x < 320 < x + w and y < 250 < y + h  # it found the face where it was drawn
    assert result.advice() == []


@pytest.mark.parametrize("scale", [0.6, 1.2])
def test_faces_near_and_far_pass(draw: Callable[..., Image], detector: FaceDetector,
                                 scale: float) -> None:
    assert check_picture(draw(scale=scale), detector).ok


def test_the_same_scene_without_a_face_says_sit_in_front(faceless: Image,
                                                         detector: FaceDetector) -> None:
    result = check_picture(faceless, detector)
    assert result.problems == (Problem.NO_FACE,)
    jp, en = result.advice()[0]
    assert "顔" in jp and "face" in en


def test_black_picture_is_a_covered_lens(detector: FaceDetector) -> None:
    result = check_picture(np.zeros((480, 640, 3), np.uint8), detector)
    assert result.problems == (Problem.COVERED,)
    assert "カバー" in result.advice()[0][0]


def test_too_dark_face_is_reported_as_dark(person: Image, detector: FaceDetector) -> None:
    dark = (person.astype(np.float32) * 0.25).astype(np.uint8)
    result = check_picture(dark, detector)
    assert result.problems[0] is Problem.TOO_DARK
    assert result.brightness < 50


def test_washed_out_picture_is_too_bright(person: Image, detector: FaceDetector) -> None:
    bright = np.clip(person.astype(np.int16) + 140, 0, 255).astype(np.uint8)
    assert Problem.TOO_BRIGHT in check_picture(bright, detector).problems


def test_no_picture_at_all(detector: FaceDetector) -> None:
    result = check_picture(None, detector)
    assert result.problems == (Problem.NO_PICTURE,)
    assert not result.ok
