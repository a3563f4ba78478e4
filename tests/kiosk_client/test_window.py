"""The kiosk's real full-screen window on a virtual X screen, tapped like a counter tablet.

``python -m kiosk_client`` (not ``--headless``) runs against a real signaling node and
relay with DISPLAY set to an Xvfb screen; an answering bot takes the call. The test
finds the window with ``xdotool``, grabs the screen with PyAV's ``x11grab``, compares
what is on screen with what ``kiosk_client.screen.render`` draws for the same state,
taps with ``xdotool click`` and quits with Esc. Nothing skips: without Xvfb or xdotool
(``scripts/bootstrap test`` installs both) the test fails. Run it in a loopback-only
namespace (Xvfb's unix socket works there):
    unshare -n sh -c 'ip link set lo up && .venv/bin/python -m pytest tests/kiosk_client'
Screenshots go to test-artifacts/screenshots/kiosk-window-*.png.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
import redis.asyncio as aioredis

from interpreter_console.bot import AnsweringBot
from kiosk_client.screen import Button, ScreenState, View, render
from kiosk_client.session import end_message, languages_of
from kiosk_client.typeface import Typeface
from tests.support.service import Service
from tsunagu.languages import load_catalogue
from tsunagu.redis_keys import Keys
from tsunagu.settings import BotSettings

pytestmark = pytest.mark.webrtc
Image = npt.NDArray[np.uint8]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("TSUNAGU_TEST_ARTIFACTS", ROOT / "test-artifacts"))
SCREENSHOTS = ARTIFACTS / "screenshots"
WIDTH, HEIGHT = 1280, 800
PR_SET_PDEATHSIG = 1

# The grab runs in its own interpreter that never imports cv2: OpenCV's and PyAV's wheels
# bundle libxcb-shm/-xfixes/-shape under the same names but against different libxcb
# copies, and x11grab hangs in a process that loaded OpenCV's first (as this one has).
GRAB = """
import sys, av
with av.open(sys.argv[1], format="x11grab",
             options={"video_size": sys.argv[2], "draw_mouse": "0"}) as container:
    frame = next(container.decode(video=0))
    sys.stdout.buffer.write(frame.to_ndarray(format="bgr24").tobytes())
"""


def _die_with_parent() -> None:
    """In the Xvfb child: get SIGTERM if the test process dies, so no server is left over."""
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@pytest.fixture
def xvfb() -> Iterator[str]:
    """A virtual 1280x800 screen on a free display number (Xvfb picks it: -displayfd)."""
    for tool in ("Xvfb", "xdotool"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: scripts/bootstrap test installs xvfb and xdotool")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", f"{WIDTH}x{HEIGHT}x24",
         "-nolisten", "tcp", "-noreset"],
        pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        preexec_fn=_die_with_parent,
    )
    os.close(write_fd)
    try:
        ready, _, _ = select.select([read_fd], [], [], 15.0)
        number = os.read(read_fd, 32).decode().strip() if ready else ""
        if not number:
            proc.kill()
            _, err = proc.communicate(timeout=5)
            pytest.fail(f"Xvfb did not start: {err.decode(errors='replace')[-2000:]}")
        yield f":{number}"
    finally:
        os.close(read_fd)
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def run(*cmd: str, env: dict[str, str] | None = None, within_s: float = 10.0) -> bytes:
    """Run a short command; its standard output (a failure names the command)."""
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, env=env)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), within_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} {cmd[1]} exited {proc.returncode}: {err.decode()[-500:]}")
    return out


class Screen:
    """The virtual screen, seen and touched from outside the kiosk process."""

    def __init__(self, display: str) -> None:
        self.display = display
        self.env = {**os.environ, "DISPLAY": display}

    async def xdotool(self, *args: str) -> str:
        return (await run("xdotool", *args, env=self.env)).decode()

    async def window(self, name: str) -> str | None:
        """The id of the visible window called exactly ``name``, if there is one."""
        try:
            ids = (await self.xdotool("search", "--onlyvisible", "--name", f"^{name}$")).split()
        except RuntimeError:  # xdotool search exits 1 when nothing matches
            return None
        return ids[0] if ids else None

    async def geometry(self, window: str) -> dict[str, int]:
        """X, Y, WIDTH, HEIGHT of a window."""
        out = await self.xdotool("getwindowgeometry", "--shell", window)
        return {k: int(v) for k, v in re.findall(r"^(\w+)=(-?\d+)$", out, re.MULTILINE)
                if k in ("X", "Y", "WIDTH", "HEIGHT")}

    async def grab(self) -> Image:
        """The whole screen as BGR, through PyAV's x11grab."""
        raw = await run(sys.executable, "-c", GRAB, self.display, f"{WIDTH}x{HEIGHT}")
        return np.frombuffer(raw, dtype=np.uint8).reshape(HEIGHT, WIDTH, 3)

    async def tap(self, button: Button) -> None:
        """Click the middle of a button (mouse down and up, as a finger on a touch screen)."""
        x, y, w, h = button.rect
        await self.xdotool("mousemove", str(x + w // 2), str(y + h // 2), "click", "1")


def region(image: Image, rect: tuple[int, int, int, int]) -> Image:
    x, y, w, h = rect
    return image[y : y + h, x : x + w]


def same_pixels(shown: Image, expected: Image, rect: tuple[int, int, int, int]) -> float:
    """Share of the pixels in ``rect`` that are exactly what the renderer drew."""
    return float((region(shown, rect) == region(expected, rect)).all(axis=2).mean())


def save(image: Image, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(SCREENSHOTS / f"kiosk-window-{name}.png"), image)


async def until(check: Callable[[], Awaitable[bool]], within_s: float, what: str,
                explain: Callable[[], str]) -> None:
    """Poll ``check`` until it holds; fail with ``what`` and the kiosk's log otherwise."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not await check():
        if loop.time() > deadline:
            pytest.fail(f"{what} (within {within_s:.0f} s)\n{explain()}")
        await asyncio.sleep(0.2)


@pytest.mark.timeout(60)
async def test_the_full_screen_window_places_a_call_by_touch_and_hangs_up(
        loopback_only: None, xvfb: str, service: Service, tmp_path: Path,
        redis: aioredis.Redis) -> None:
    service.add_interpreter("bot1", "pw-bot1-secret", "jsl,en")
    token_file = tmp_path / "kiosk.token"
    token_file.write_text(service.add_kiosk("k-window") + "\n")
    bot = AnsweringBot(BotSettings(server=service.url, username="bot1", password="pw-bot1-secret",
                                 media=True, talk_s=None, max_calls=1, wrapup_s=0.0))
    bot_task = asyncio.create_task(bot.run())
    await asyncio.wait_for(bot.ready.wait(), timeout=15)

    screen = Screen(xvfb)
    env = {k: v for k, v in screen.env.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    kiosk_log = tmp_path / "kiosk.log"
    with kiosk_log.open("wb") as log_file:
        kiosk = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "kiosk_client", "--server", service.url,
            "--token-file", str(token_file), "--source", "synthetic",
            stdout=log_file, stderr=subprocess.STDOUT, env=env,
        )

    def explain() -> str:
        state = "running" if kiosk.returncode is None else f"exited {kiosk.returncode}"
        return (f"kiosk {state}; its log:\n{kiosk_log.read_text(errors='replace')[-3000:]}\n"
                f"{service.logs()}")

    typeface = Typeface.default()
    languages = languages_of({"languages": [lang.to_wire() for lang in load_catalogue(None)]})
    home, home_buttons = render(View(languages=languages), typeface, (WIDTH, HEIGHT))
    in_call, (hangup,) = render(View(state=ScreenState.IN_CALL), typeface, (WIDTH, HEIGHT))
    # after a real answered call: the rating (five faces and skip, PROTOCOL.md section 15)
    ended, rating_buttons = render(View(state=ScreenState.ENDED, message=end_message("hangup"),
                                        rating=True), typeface, (WIDTH, HEIGHT))
    faces = [b for b in rating_buttons if b.action.startswith("rate:")]
    (skip,) = [b for b in rating_buttons if b.action == "skip-rating"]
    assert len(faces) == 5
    shown: Image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)

    async def showing(expected: Image, buttons: list[Button]) -> bool:
        nonlocal shown
        if kiosk.returncode is not None:
            pytest.fail(f"the kiosk exited\n{explain()}")
        shown = await screen.grab()
        return all(same_pixels(shown, expected, b.rect) > 0.99 for b in buttons)

    try:
        # The window: found by its title, covering the whole screen.
        window: str | None = None

        async def window_up() -> bool:
            nonlocal window
            if kiosk.returncode is not None:
                pytest.fail(f"the kiosk exited\n{explain()}")
            window = await screen.window("tsunagu")
            return window is not None

        await until(window_up, 20, "no kiosk window appeared", explain)
        assert window is not None
        geometry: dict[str, int] = {}

        async def full_screen() -> bool:
            nonlocal geometry
            geometry = await screen.geometry(str(window))
            return geometry == {"X": 0, "Y": 0, "WIDTH": WIDTH, "HEIGHT": HEIGHT}

        await until(full_screen, 5, f"the window is not full screen: {geometry}", explain)

        # Home: one button per language, pixel for pixel what the renderer draws.
        def explain_home() -> str:
            save(shown, "home-not-matching")
            return explain()

        await until(lambda: showing(home, home_buttons), 15,
                    "the language buttons are not on screen", explain_home)
        save(shown, "home")
        assert [b.action for b in home_buttons][0] == "language:jsl"
        background = np.array((40, 32, 24), np.uint8)
        for b in home_buttons:
            assert (region(shown, b.rect) != background).any(axis=2).mean() > 0.9

        # A tap on 日本手話 places the call; the bot answers; the interpreter's video plays.
        await screen.tap(home_buttons[0])

        async def answered() -> bool:
            return bool(bot.report.calls) and bot.state == "in_call"

        await until(answered, 15, "the bot was not offered or did not take the call", explain)
        assert bot.report.calls[0].language == "jsl"
        await until(lambda: showing(in_call, [hangup]), 15, "no in-call screen", explain)
        video = (80, 60, 600, 520)  # inside the remote picture, clear of self-view and text
        first = shown.copy()

        async def video_moves() -> bool:
            await showing(in_call, [hangup])
            moved = np.abs(region(shown, video).astype(np.int16)
                           - region(first, video).astype(np.int16)).mean()
            return bool(moved > 2.0)

        await until(video_moves, 10, "the interpreter's video does not move on screen", explain)
        save(first, "in-call")
        assert (region(shown, video) != background).any(axis=2).mean() > 0.9

        # Hang up by touch: the call ends for both sides; the screen offers a way back.
        await screen.tap(hangup)
        report = await asyncio.wait_for(bot_task, timeout=15)
        record = report.calls[0]
        assert record.end_reason == "hangup", record
        assert record.media is not None
        assert record.media["received"]["video"]["frames"] > 0  # the kiosk's camera reached it
        await until(lambda: showing(ended, [*faces, skip]), 10, "no rating screen", explain)
        save(shown, "ended")
        await screen.tap(skip)  # skip the rating: home again
        await until(lambda: showing(home, home_buttons), 10, "not home after skip", explain)

        # The fleet heard from it (kiosk.health on connect): the X screen's size, its app.
        health = json.loads(await redis.get(Keys().kiosk_health("k-window")) or "null")
        assert health is not None, explain()
        assert health["app"]["kind"] == "python" and health["screen"] == {"w": WIDTH,
                                                                          "h": HEIGHT}
        assert health["camera"] == "unknown"  # the synthetic picture is no camera
        assert health["microphone"] == "ok"  # the synthetic tone

        # Esc closes the app cleanly.
        await screen.xdotool("key", "Escape")
        code = await asyncio.wait_for(kiosk.wait(), timeout=15)
        assert code == 0, explain()
        assert await screen.window("tsunagu") is None
    finally:
        if kiosk.returncode is None:
            kiosk.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(kiosk.wait(), timeout=5)
            except TimeoutError:
                kiosk.kill()
                await kiosk.wait()
        if not bot_task.done():
            bot_task.cancel()
            await asyncio.gather(bot_task, return_exceptions=True)


def test_keys_become_actions_and_keysyms_no_longer_type_letters() -> None:
    from kiosk_client.display import key_action

    assert key_action(-1) is None
    assert key_action(27) == "quit"
    assert key_action(ord("a")) == "key:a" and key_action(ord(" ")) == "key: "
    assert key_action(13) == key_action(0xFF0D) == "key:enter"  # Return: ASCII or keysym
    assert key_action(8) == key_action(0xFF08) == "key:backspace"
    # Left arrow (keysym 0xFF51) and Shift (0xFFE1): cv2.waitKey's 0xFF mask made them "Q", "á"
    assert key_action(0xFF51) is None and key_action(0xFFE1) is None
