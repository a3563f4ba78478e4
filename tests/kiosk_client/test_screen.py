"""The kiosk screen: language buttons in their own script, queue line, taps, font fallback."""

from __future__ import annotations

import numpy as np
import pytest

from kiosk_client.screen import BACKGROUND, Language, ScreenState, View, hit, render, wait_text
from kiosk_client.typeface import Typeface, find_font

LANGS = (
    Language("jsl", "日本手話", "Japanese Sign Language"),
    Language("vi", "Tiếng Việt", "Vietnamese"),
    Language("ko", "한국어", "Korean"),
    Language("en", "English", "English"),
)


@pytest.fixture(scope="module")
def cjk() -> Typeface:
    path = find_font()
    assert path is not None, "fonts-noto-cjk is expected on this machine"
    return Typeface(path)


def test_home_has_one_large_button_per_language(cjk: Typeface) -> None:
    canvas, buttons = render(View(languages=LANGS), cjk, (1280, 720))
    assert canvas.shape == (720, 1280, 3)
    assert [b.action for b in buttons] == ["language:jsl", "language:vi", "language:ko",
                                           "language:en"]
    for b in buttons:
        _, _, w, h = b.rect
        assert w >= 300 and h >= 90  # large touch targets
    x, y, w, h = buttons[1].rect
    assert hit(buttons, x + w // 2, y + h // 2) == "language:vi"
    assert hit(buttons, 1, 1) is None


def test_native_names_are_drawn_with_the_cjk_font(cjk: Typeface) -> None:
    mask = cjk._mask("日本手話", 40)
    assert mask.max() == 255 and mask.shape[1] > 100  # four real glyphs, not empty boxes
    tofu = cjk._mask("\U000f0000", 40)
    for text in ("日本手話", "Tiếng Việt", "한국어"):
        glyphs = cjk._mask(text, 40)
        assert glyphs.shape != tofu.shape or not np.array_equal(glyphs, tofu)
    canvas, buttons = render(View(languages=LANGS[:1]), cjk, (1280, 720))
    x, y, w, h = buttons[0].rect
    inside = canvas[y : y + h, x : x + w]
    assert (inside > 240).all(axis=2).sum() > 500  # white label pixels on the button


def test_a_script_the_font_lacks_falls_back_to_the_english_name(cjk: Typeface) -> None:
    assert cjk.can_draw("日本手話") and cjk.can_draw("Tiếng Việt") and cjk.can_draw("한국어")
    assert not cjk.can_draw("नेपाली")  # Noto Sans CJK has no Devanagari
    nepali = Language("ne", "नेपाली", "Nepali")
    with_font, _ = render(View(languages=(nepali,)), cjk)
    english, _ = render(View(languages=(Language("ne", "Nepali", "Nepali"),)), cjk)
    assert (with_font == english).all()  # drawn exactly as if the name were "Nepali"


def test_without_a_font_the_english_name_is_shown_instead_of_boxes() -> None:
    ascii_only = Typeface(None)
    assert not ascii_only.can_draw("日本手話") and ascii_only.can_draw("English")
    canvas, buttons = render(View(languages=LANGS), ascii_only, (1280, 720))
    assert len(buttons) == 4
    x, y, w, h = buttons[0].rect
    assert (canvas[y : y + h, x : x + w] > 200).all(axis=2).sum() > 200  # something legible


def test_waiting_screen_states_place_and_estimate(cjk: Typeface) -> None:
    assert wait_text(2, 170) == ("あなたは 2 番目です・約 3 分",
                                 "You are number 2 in line, about 3 min")
    assert wait_text(1, None)[1] == "You are number 1 in line"
    # The server's range wins over its single figure, never narrowed.
    assert wait_text(3, 400, (240, 600)) == ("あなたは 3 番目です・4〜10 分",
                                             "You are number 3 in line, 4 to 10 min")
    assert wait_text(1, 5, (0, 20))[1] == "You are number 1 in line, under 1 min"
    assert wait_text(2, 90, (30, 100))[1] == "You are number 2 in line, up to 2 min"
    busy = View(state=ScreenState.WAITING, position=2, none_available=True)
    plain = View(state=ScreenState.WAITING, position=2)
    assert not (render(busy, cjk)[0] == render(plain, cjk)[0]).all()  # says nobody is free
    canvas, buttons = render(View(state=ScreenState.WAITING, position=2, estimated_wait_s=170),
                             cjk)
    assert [b.action for b in buttons] == ["cancel"]
    assert not (canvas == np.array(BACKGROUND, np.uint8)).all()


def test_in_call_shows_remote_video_large_and_self_view_small(cjk: Typeface) -> None:
    remote = np.full((480, 640, 3), (0, 255, 0), np.uint8)
    self_view = np.full((480, 640, 3), (255, 0, 255), np.uint8)
    view = View(state=ScreenState.IN_CALL, remote=remote, self_view=self_view,
                chat=("通訳: 山田", "me: hello"), peer_name="通訳者 A")
    canvas, buttons = render(view, cjk, (1280, 720))
    green = (canvas == (0, 255, 0)).all(axis=2).sum()
    magenta = (canvas == (255, 0, 255)).all(axis=2).sum()
    assert green > 4 * magenta > 0
    assert [b.action for b in buttons] == ["hangup"]
    assert buttons[0].rect[0] >= 960  # beside the video, not over it


def test_ended_screen_offers_a_way_back(cjk: Typeface) -> None:
    view = View(state=ScreenState.ENDED, message=("通話が終わりました。", "The call has ended."))
    _, buttons = render(view, cjk)
    assert [b.action for b in buttons] == ["home"]
