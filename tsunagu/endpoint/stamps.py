"""Frame stamps: a capture time and frame counter drawn into a video frame's luma.

The stamp is two rows of 32 large black/white blocks across the top of the
picture: 40 bits of the capture time in ms (mod 2**40, about 34 years), 16
bits of frame counter and an 8-bit CRC. Blocks are 1/32 of the width and
1/24 of the height (20x20 px at 640x480), large enough that VP8 at a low
bitrate keeps them readable; the reader samples the middle of each block and
thresholds at mid-grey, and the CRC rejects anything it misread. Block
geometry is relative, so a stamp survives scaling the frame.

Pure numpy: no event loop, no av.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

COLUMNS = 32
ROWS = 2
TIME_BITS = 40
COUNTER_BITS = 16
CRC_BITS = 8
TOTAL_BITS = TIME_BITS + COUNTER_BITS + CRC_BITS
TIME_MOD = 1 << TIME_BITS
BLACK = 16
WHITE = 235
ROWS_PER_HEIGHT = 24  # one stamp row is 1/24 of the frame height

assert TOTAL_BITS == COLUMNS * ROWS

Luma = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class Stamp:
    """What a stamp carries: capture time (ms since the epoch) and frame counter."""

    time_ms: int
    counter: int


def crc8(data: bytes) -> int:
    """CRC-8 (polynomial 0x07) with output XOR 0x55, so an all-black frame is no valid stamp."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc ^ 0x55


def _payload(time_ms: int, counter: int) -> int:
    return ((time_ms % TIME_MOD) << COUNTER_BITS) | (counter & 0xFFFF)


def stamp_bits(stamp: Stamp) -> list[int]:
    """The 64 bits of a stamp, most significant first."""
    payload = _payload(stamp.time_ms, stamp.counter)
    value = (payload << CRC_BITS) | crc8(payload.to_bytes(7, "big"))
    return [(value >> (TOTAL_BITS - 1 - i)) & 1 for i in range(TOTAL_BITS)]


def block_geometry(width: int, height: int) -> tuple[int, int]:
    """Block width and height in pixels for a frame of this size."""
    return width // COLUMNS, max(height // ROWS_PER_HEIGHT, 2)


def stamp_height(height: int) -> int:
    """Rows of pixels the stamp covers at the top of a frame this tall."""
    return ROWS * block_geometry(COLUMNS, height)[1]


def write_stamp(luma: Luma, stamp: Stamp) -> None:
    """Draw ``stamp`` into the top rows of ``luma`` (a writable 2-D uint8 array) in place."""
    height, width = luma.shape
    bw, bh = block_geometry(width, height)
    bits = np.array(stamp_bits(stamp), dtype=np.uint8).reshape(ROWS, COLUMNS)
    levels = np.where(bits == 1, WHITE, BLACK).astype(np.uint8)
    block = np.repeat(np.repeat(levels, bh, axis=0), bw, axis=1)
    luma[: ROWS * bh, : COLUMNS * bw] = block
    luma[: ROWS * bh, COLUMNS * bw :] = BLACK


def read_bits(luma: Luma) -> list[int]:
    """Threshold the middle half of every block; 1 where it is brighter than mid-grey."""
    height, width = luma.shape
    bw, bh = block_geometry(width, height)
    top = luma[: ROWS * bh, : COLUMNS * bw].astype(np.float32)
    blocks = top.reshape(ROWS, bh, COLUMNS, bw)
    inner = blocks[:, bh // 4 : bh - bh // 4, :, bw // 4 : bw - bw // 4]
    means = inner.mean(axis=(1, 3))
    return [int(v) for v in (means.reshape(-1) > (BLACK + WHITE) / 2)]


def _unwrap_time(time_mod: int, now_ms: int) -> int:
    """The time congruent to ``time_mod`` (mod 2**40) nearest to ``now_ms``."""
    base = now_ms - now_ms % TIME_MOD
    candidates = (base - TIME_MOD + time_mod, base + time_mod, base + TIME_MOD + time_mod)
    return min(candidates, key=lambda t: abs(t - now_ms))


def read_stamp(luma: Luma, now_ms: int) -> Stamp | None:
    """The stamp in ``luma``, or None when there is none or it was misread (bad CRC)."""
    height, width = luma.shape
    if width < COLUMNS * 2 or height < ROWS_PER_HEIGHT * 2:
        return None
    value = 0
    for bit in read_bits(luma):
        value = (value << 1) | bit
    payload, crc = value >> CRC_BITS, value & 0xFF
    if crc8(payload.to_bytes(7, "big")) != crc:
        return None
    time_mod, counter = payload >> COUNTER_BITS, payload & 0xFFFF
    return Stamp(time_ms=_unwrap_time(time_mod, now_ms), counter=counter)


@lru_cache(maxsize=4)
def _gradient(width: int, height: int) -> Luma:
    ys = np.arange(height, dtype=np.int32)[:, None]
    xs = np.arange(width + 160, dtype=np.int32)[None, :]
    return ((xs + ys) % 160 + 48).astype(np.uint8)


def synthetic_luma(width: int, height: int, index: int) -> Luma:
    """A moving test picture (diagonal gradient and a bouncing bar), so the encoder has work."""
    shift = (index * 4) % 160
    luma = _gradient(width, height)[:, shift : shift + width].copy()
    bar = (index * 8) % max(width - 40, 1)
    luma[:, bar : bar + 40] = 200
    return luma
