"""Text on the kiosk screen in any script: Pillow with a Noto CJK font, else OpenCV's Hershey.

``cv2.putText`` draws ASCII only. Japanese, Chinese, Korean and Vietnamese
labels are rendered by Pillow (once per text and size, then cached as an
alpha mask) and blended into the BGR canvas. Without a usable font the
typeface falls back to Hershey and reports that it cannot draw non-ASCII
text, so callers show the English name instead of boxes.
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

log = logging.getLogger(__name__)

Canvas = npt.NDArray[np.uint8]
Color = tuple[int, int, int]

NOT_A_CHARACTER = "\U000f0000"  # private use: no font maps it
FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
)


def find_font() -> str | None:
    """A CJK-capable font file: ``TSUNAGU_FONT`` if set, else a known Noto CJK path."""
    env = os.environ.get("TSUNAGU_FONT")
    for path in ((env,) if env else ()) + FONT_CANDIDATES:
        if path and Path(path).is_file():
            return path
    return None


class Typeface:
    """Draws and measures text; ``font_path=None`` means Hershey (ASCII only)."""

    def __init__(self, font_path: str | None) -> None:
        self.font_path = font_path
        if font_path is not None:
            try:
                ImageFont.truetype(font_path, 12)
            except OSError:
                log.warning("font %s unusable; falling back to ASCII text", font_path)
                self.font_path = None
        self._mask = lru_cache(maxsize=512)(self._render_mask)
        self._glyphs: dict[str, bool] = {}
        self._tofu: bytes | None = None

    @classmethod
    def default(cls) -> Typeface:
        """The best typeface this machine has."""
        return cls(find_font())

    def can_draw(self, text: str) -> bool:
        """Whether the font has a glyph for every character of ``text`` (ASCII only without)."""
        if self.font_path is None:
            return text.isascii()
        return all(self._has_glyph(ch) for ch in set(text) if not ch.isspace())

    def _has_glyph(self, ch: str) -> bool:
        if ch not in self._glyphs:
            # A missing glyph renders as the font's .notdef box: compare with that.
            self._glyphs[ch] = bool(
                ch.isascii() or self._render_mask(ch, 24).tobytes() != self._notdef()
            )
        return self._glyphs[ch]

    def _notdef(self) -> bytes:
        if self._tofu is None:
            self._tofu = self._render_mask(NOT_A_CHARACTER, 24).tobytes()
        return self._tofu

    def _render_mask(self, text: str, size: int) -> npt.NDArray[np.uint8]:
        assert self.font_path is not None
        font = ImageFont.truetype(self.font_path, size)
        left, top, right, bottom = (int(v) for v in font.getbbox(text))
        image = Image.new("L", (max(right - left, 1), max(bottom - top, 1)), 0)
        ImageDraw.Draw(image).text((-left, -top), text, font=font, fill=255)
        return np.asarray(image, dtype=np.uint8)

    def measure(self, text: str, size: int) -> tuple[int, int]:
        """(width, height) in pixels of ``text`` at ``size`` px."""
        if self.font_path is None:
            (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, size / 30, 2)
            return int(w), int(h)
        mask = self._mask(text, size)
        return int(mask.shape[1]), int(mask.shape[0])

    def draw(self, canvas: Canvas, text: str, origin: tuple[int, int], size: int,
             color: Color) -> None:
        """Draw ``text`` with its top-left corner at ``origin``, clipped to the canvas."""
        x, y = origin
        if self.font_path is None:
            safe = text.encode("ascii", "replace").decode()
            _, h = self.measure(safe, size)
            cv2.putText(canvas, safe, (x, y + h), cv2.FONT_HERSHEY_SIMPLEX, size / 30, color, 2,
                        cv2.LINE_AA)
            return
        mask = self._mask(text, size)
        h = min(mask.shape[0], canvas.shape[0] - y)
        w = min(mask.shape[1], canvas.shape[1] - x)
        if h <= 0 or w <= 0 or x < 0 or y < 0:
            return
        alpha = mask[:h, :w, None].astype(np.float32) / 255.0
        region = canvas[y : y + h, x : x + w].astype(np.float32)
        blended = region * (1.0 - alpha) + np.array(color, dtype=np.float32) * alpha
        canvas[y : y + h, x : x + w] = blended.astype(np.uint8)

    def draw_centered(self, canvas: Canvas, text: str, box: tuple[int, int, int, int],
                      size: int, color: Color) -> None:
        """Draw ``text`` centred in ``box`` = (x, y, w, h)."""
        w, h = self.measure(text, size)
        bx, by, bw, bh = box
        self.draw(canvas, text, (bx + max((bw - w) // 2, 0), by + max((bh - h) // 2, 0)),
                  size, color)
