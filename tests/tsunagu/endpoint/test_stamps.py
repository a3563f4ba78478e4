"""Stamps: encode/decode round trip, rejection of misreads, and survival through VP8."""

from __future__ import annotations

import fractions

import av
import cv2
import numpy as np
import pytest

from tsunagu.endpoint.stamps import (
    TIME_MOD,
    Stamp,
    read_bits,
    read_stamp,
    stamp_bits,
    stamp_height,
    synthetic_luma,
    write_stamp,
)
from tsunagu.endpoint.tracks import i420_frame

NOW = 1_790_000_000_123


@pytest.mark.parametrize("size", [(640, 480), (1280, 720), (320, 240)])
def test_round_trip_at_several_sizes(size: tuple[int, int]) -> None:
    luma = synthetic_luma(*size, index=7)
    write_stamp(luma, Stamp(time_ms=NOW, counter=4242))
    assert read_stamp(luma, now_ms=NOW + 50) == Stamp(time_ms=NOW, counter=4242)


def test_stamp_only_touches_the_top_rows() -> None:
    luma = synthetic_luma(640, 480, index=3)
    before = luma.copy()
    write_stamp(luma, Stamp(time_ms=NOW, counter=1))
    rows = stamp_height(480)
    assert rows == 40
    assert np.array_equal(luma[rows:], before[rows:])
    assert not np.array_equal(luma[:rows], before[:rows])


def test_counter_wraps_at_16_bits_and_time_unwraps_near_now() -> None:
    luma = synthetic_luma(640, 480, index=0)
    write_stamp(luma, Stamp(time_ms=NOW, counter=65536 + 5))
    got = read_stamp(luma, now_ms=NOW + 1000)
    assert got == Stamp(time_ms=NOW, counter=5)
    # a capture just before a 2**40 boundary, read just after it
    boundary = 2 * TIME_MOD
    write_stamp(luma, Stamp(time_ms=boundary - 10, counter=0))
    got = read_stamp(luma, now_ms=boundary + 20)
    assert got is not None and got.time_ms == boundary - 10


def test_black_frame_and_flipped_bit_are_rejected() -> None:
    assert read_stamp(np.full((480, 640), 16, np.uint8), now_ms=NOW) is None
    luma = synthetic_luma(640, 480, index=0)
    write_stamp(luma, Stamp(time_ms=NOW, counter=9))
    bits = read_bits(luma)
    assert bits == stamp_bits(Stamp(time_ms=NOW, counter=9))
    luma[0:20, 100:120] = 255 - luma[0:20, 100:120]  # flip block 5 of the first row
    assert read_stamp(luma, now_ms=NOW) is None


def test_survives_scaling_down() -> None:
    luma = synthetic_luma(640, 480, index=0)
    write_stamp(luma, Stamp(time_ms=NOW, counter=77))
    small = np.asarray(cv2.resize(luma, (320, 240), interpolation=cv2.INTER_AREA), np.uint8)
    assert read_stamp(small, now_ms=NOW) == Stamp(time_ms=NOW, counter=77)


def test_survives_a_real_vp8_encode_and_decode_at_low_bitrate() -> None:
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 640, 480, "yuv420p"
    encoder.bit_rate = 250_000
    encoder.time_base = fractions.Fraction(1, 30)
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    decoder = av.CodecContext.create("vp8", "r")
    rng = np.random.default_rng(0)
    decoded = []
    for i in range(45):
        luma = synthetic_luma(640, 480, index=i)
        luma = np.clip(luma + rng.integers(0, 40, luma.shape), 0, 255).astype(np.uint8)  # noisy
        write_stamp(luma, Stamp(time_ms=NOW + i * 33, counter=i))
        frame = i420_frame(luma)
        frame.pts = i
        for packet in encoder.encode(frame):
            for out in decoder.decode(packet):
                gray = np.asarray(out.to_ndarray(format="gray"), np.uint8)
                decoded.append(read_stamp(gray, now_ms=NOW))
    assert len(decoded) == 45
    assert decoded == [Stamp(time_ms=NOW + i * 33, counter=i) for i in range(45)]
