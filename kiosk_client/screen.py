"""The kiosk screen: a pure function from what to show (``View``) to pixels and buttons.

No window, no event loop: ``render`` returns a BGR canvas and the buttons on
it, and ``hit`` maps a tap to a button's action. The display thread in
``kiosk_client.display`` shows the canvas and feeds taps back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

import cv2
import numpy as np

from kiosk_client.typeface import Canvas, Color, Typeface

BACKGROUND: Color = (40, 32, 24)
TEXT: Color = (245, 245, 245)
MUTED: Color = (190, 190, 190)
BUTTON: Color = (150, 90, 30)
DANGER: Color = (40, 40, 200)
WARNING: Color = (0, 200, 255)


class ScreenState(StrEnum):
    """What the kiosk is doing (the same names as the web kiosk's ``data-state``)."""

    HOME = "home"
    WAITING = "waiting"
    IN_CALL = "in-call"
    ENDED = "ended"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Language:
    """A language button: code, own-script name, English name."""

    code: str
    name: str
    name_en: str


@dataclass(frozen=True, slots=True)
class Button:
    """A tappable rectangle (x, y, w, h) and the action it stands for."""

    action: str
    rect: tuple[int, int, int, int]


@dataclass(frozen=True)
class View:
    """Everything the screen shows at one moment."""

    state: ScreenState = ScreenState.HOME
    languages: tuple[Language, ...] = ()
    position: int | None = None
    estimated_wait_s: float | None = None
    wait_range_s: tuple[float, float] | None = None  # the server's honest range, if any
    none_available: bool = False  # nobody for the language is free now
    message: tuple[str, str] | None = None  # (Japanese, English)
    advice: tuple[tuple[str, str], ...] = ()
    peer_name: str | None = None
    chat: tuple[str, ...] = ()
    chat_draft: str = ""
    remote: Canvas | None = field(default=None, repr=False)
    self_view: Canvas | None = field(default=None, repr=False)
    call_s: float = 0.0
    rating: bool = False  # after a real answered call: five faces and skip


def hit(buttons: list[Button], x: int, y: int) -> str | None:
    """The action of the button under (x, y), if any."""
    for b in buttons:
        bx, by, bw, bh = b.rect
        if bx <= x < bx + bw and by <= y < by + bh:
            return b.action
    return None


def wait_text(position: int | None, wait_s: float | None,
              wait_range_s: tuple[float, float] | None = None) -> tuple[str, str]:
    """The queue line in Japanese and in English, with the estimate in minutes: the server's
    range when it sent one (never narrower than it), else its single figure rounded."""
    if position is None:
        return "順番を確認しています…", "Checking your place in line..."
    jp = f"あなたは {position} 番目です"
    en = f"You are number {position} in line"
    if wait_range_s is not None:
        lo, hi = min(wait_range_s), max(wait_range_s)
        a, b = math.floor(lo / 60), max(1, math.ceil(hi / 60))
        if hi < 60:
            return jp + "・1 分以内", en + ", under 1 min"
        if a <= 0:
            return jp + f"・{b} 分以内", en + f", up to {b} min"
        if a == b:
            return jp + f"・約 {b} 分", en + f", about {b} min"
        return jp + f"・{a}〜{b} 分", en + f", {a} to {b} min"
    if wait_s is not None:
        minutes = max(1, round(wait_s / 60))
        jp += f"・約 {minutes} 分"
        en += f", about {minutes} min"
    return jp, en


NONE_AVAILABLE = ("ただいま通訳者は全員対応中か不在です。順番はそのままです",
                  "Every interpreter is busy or away now. You keep your place in line")


def _paste(canvas: Canvas, image: Canvas, box: tuple[int, int, int, int]) -> None:
    """Scale ``image`` to fit ``box`` keeping its aspect ratio, centred."""
    bx, by, bw, bh = box
    ih, iw = image.shape[:2]
    scale = min(bw / iw, bh / ih)
    w, h = max(int(iw * scale), 1), max(int(ih * scale), 1)
    if image.ndim == 2:
        image = np.asarray(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
    x, y = bx + (bw - w) // 2, by + (bh - h) // 2
    canvas[y : y + h, x : x + w] = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)


def _button(canvas: Canvas, tf: Typeface, action: str, rect: tuple[int, int, int, int],
            lines: tuple[str, str], color: Color = BUTTON) -> Button:
    x, y, w, h = rect
    cv2.rectangle(canvas, (x, y), (x + w, y + h), color, -1)
    big, small = lines
    if not small:
        tf.draw_centered(canvas, big, (x, y, w, h), max(h // 3, 14), TEXT)
        return Button(action, rect)
    tf.draw_centered(canvas, big, (x, y, w, h * 2 // 3), max(h // 3, 14), TEXT)
    tf.draw_centered(canvas, small, (x, y + h // 2, w, h // 2), max(h // 6, 10), MUTED)
    return Button(action, rect)


def _lines(canvas: Canvas, tf: Typeface, pairs: tuple[tuple[str, str], ...] | list[tuple[str, str]],
           origin: tuple[int, int], size: int, color: Color = TEXT) -> None:
    x, y = origin
    for jp, en in pairs:
        if tf.can_draw(jp):
            tf.draw(canvas, jp, (x, y), size, color)
            y += int(size * 1.4)
        tf.draw(canvas, en, (x, y), int(size * 0.75), MUTED)
        y += int(size * 1.3)


def _home(canvas: Canvas, tf: Typeface, view: View) -> list[Button]:
    height, width = canvas.shape[:2]
    title = ("通訳を呼ぶ：ことばを選んでください", "Call an interpreter: choose a language")
    _lines(canvas, tf, [title], (40, 24), height // 18)
    cols, gap = 3, 20
    bw = (width - 80 - gap * (cols - 1)) // cols
    bh = height // 7
    buttons = []
    for i, lang in enumerate(view.languages):
        x = 40 + (i % cols) * (bw + gap)
        y = height // 6 + (i // cols) * (bh + gap)
        native = lang.name if tf.can_draw(lang.name) else lang.name_en
        english = "" if native == lang.name_en else lang.name_en
        buttons.append(_button(canvas, tf, f"language:{lang.code}", (x, y, bw, bh),
                               (native, english)))
    if view.advice:
        _lines(canvas, tf, view.advice, (40, height * 3 // 4), height // 28, WARNING)
    return buttons


def _waiting(canvas: Canvas, tf: Typeface, view: View) -> list[Button]:
    height, width = canvas.shape[:2]
    lines = [("通訳者を呼んでいます", "Calling an interpreter"),
             wait_text(view.position, view.estimated_wait_s, view.wait_range_s)]
    if view.none_available:
        lines.append(NONE_AVAILABLE)
    _lines(canvas, tf, lines, (60, height // 6), height // 14)
    rect = (60, height * 3 // 4, width // 3, height // 7)
    return [_button(canvas, tf, "cancel", rect, ("やめる", "Cancel"), DANGER)]


def _in_call(canvas: Canvas, tf: Typeface, view: View) -> list[Button]:
    height, width = canvas.shape[:2]
    video_w = width * 3 // 4
    if view.remote is not None:
        _paste(canvas, view.remote, (0, 0, video_w, height))
    else:
        _lines(canvas, tf, [("映像を待っています", "Waiting for video")], (40, height // 2),
               height // 20)
    if view.self_view is not None:
        _paste(canvas, view.self_view, (video_w - width // 5 - 10, height - height // 5 - 10,
                                        width // 5, height // 5))
    if view.advice:  # e.g. a microphone or speaker that does not work, over the video
        _lines(canvas, tf, view.advice, (20, 12), max(height // 36, 12), WARNING)
    side_x, size = video_w + 12, max(height // 40, 12)
    if view.peer_name:
        tf.draw(canvas, view.peer_name, (side_x, 12), size + 4, TEXT)
    y = 12 + size * 3
    for line in view.chat[-12:]:
        tf.draw(canvas, line[:28], (side_x, y), size, TEXT)
        y += int(size * 1.5)
    tf.draw(canvas, "> " + view.chat_draft[-26:], (side_x, height * 3 // 4 - size * 2), size, MUTED)
    rect = (video_w + 10, height * 3 // 4, width - video_w - 20, height // 5)
    return [_button(canvas, tf, "hangup", rect, ("終了", "Hang up"), DANGER)]


def _notice(canvas: Canvas, tf: Typeface, view: View, action: str,
            label: tuple[str, str]) -> list[Button]:
    height, width = canvas.shape[:2]
    if view.message:
        _lines(canvas, tf, [view.message], (60, height // 4), height // 14)
    rect = (60, height * 3 // 4, width // 3, height // 7)
    return [_button(canvas, tf, action, rect, label)]


# The faces' colours (BGR), very unhappy (1) to very happy (5), and their mouths' bend.
FACE_COLORS: tuple[Color, ...] = ((30, 38, 179), (0, 94, 194), (0, 107, 107), (35, 125, 59),
                                  (58, 110, 27))
RATING_QUESTION = ("通訳はいかがでしたか", "How was the interpreting?")


def _face(canvas: Canvas, score: int, rect: tuple[int, int, int, int]) -> Button:
    x, y, w, h = rect
    color = FACE_COLORS[score - 1]
    cv2.rectangle(canvas, (x, y), (x + w, y + h), (250, 250, 250), -1)
    cx, cy, r = x + w // 2, y + h // 2, min(w, h) * 2 // 5
    thick = max(2, r // 10)
    cv2.circle(canvas, (cx, cy), r, color, thick, cv2.LINE_AA)
    for ex in (cx - r // 3, cx + r // 3):
        cv2.circle(canvas, (ex, cy - r // 4), max(2, r // 12), color, -1, cv2.LINE_AA)
    bend = (score - 3) * r // 6  # a frown for 1-2, flat for 3, a smile for 4-5
    mouth = np.array([(cx + int(t * r / 2), cy + r // 3 + int(bend * (1 - t * t)))
                      for t in np.linspace(-1.0, 1.0, 9)], dtype=np.int32)
    cv2.polylines(canvas, [mouth], False, color, thick, cv2.LINE_AA)
    return Button(f"rate:{score}", rect)


def _rating(canvas: Canvas, tf: Typeface, view: View) -> list[Button]:
    height, width = canvas.shape[:2]
    if view.message:
        _lines(canvas, tf, [view.message], (60, height // 14), height // 18)
    _lines(canvas, tf, [RATING_QUESTION], (60, height // 3), height // 18)
    size = min((width - 120 - 4 * 24) // 5, height // 4)
    left = (width - (5 * size + 4 * 24)) // 2
    buttons = [_face(canvas, n, (left + (n - 1) * (size + 24), height // 2, size, size))
               for n in range(1, 6)]
    rect = (width // 2 - width // 6, height // 2 + size + 30, width // 3, height // 9)
    buttons.append(_button(canvas, tf, "skip-rating", rect, ("答えない", "Skip")))
    return buttons


def render(view: View, tf: Typeface, size: tuple[int, int] = (1280, 720)) -> tuple[Canvas,
                                                                                 list[Button]]:
    """Draw ``view`` on a fresh canvas of ``size`` (width, height); return it and its buttons."""
    width, height = size
    canvas = np.empty((height, width, 3), dtype=np.uint8)
    canvas[:] = BACKGROUND
    match view.state:
        case ScreenState.HOME:
            buttons = _home(canvas, tf, view)
        case ScreenState.WAITING:
            buttons = _waiting(canvas, tf, view)
        case ScreenState.IN_CALL:
            buttons = _in_call(canvas, tf, view)
        case ScreenState.ENDED if view.rating:
            buttons = _rating(canvas, tf, view)
        case ScreenState.ENDED:
            buttons = _notice(canvas, tf, view, "home", ("はじめに戻る", "Back to start"))
        case ScreenState.ERROR:
            buttons = _notice(canvas, tf, view, "home", ("もう一度", "Try again"))
    if view.self_view is not None and view.state is not ScreenState.IN_CALL:
        _paste(canvas, view.self_view, (width - width // 5 - 20, height - height // 5 - 20,
                                        width // 5, height // 5))
    return canvas, buttons
