"""The kiosk window: an OpenCV window driven by its own thread, taps sent to the event loop.

HighGUI wants every window call on one thread (with the Qt backend of the
``opencv-python`` wheel, the thread that makes the first window owns the Qt
application), and converting and scaling video is CPU work, so a display
thread opens the window, renders ``screen.render`` at about 30 fps from the
latest state and remote frame, and turns mouse clicks and key presses into
actions for the asyncio side (``loop.call_soon_threadsafe``). The event loop
never calls HighGUI and never waits on ``cv2.waitKey``.

Needs an OpenCV build with HighGUI (``opencv-python``, not ``-headless``) and
an X display (``DISPLAY``). Both are checked before Qt is touched: Qt aborts
the whole process when it cannot reach a display. Full screen means covering
the X screen: the window asks the window manager for full screen and, for a
kiosk session without a window manager, is also placed at 0,0 with the
screen's size; the canvas is rendered at the window's own size, so a tap's
coordinates are the canvas's.

``kiosk_client.app`` imports ``cv2`` before ``av`` on purpose: both wheels
bundle libxcb-shm/-xfixes/-shape under the same names but linked against
different libxcb copies, the first loaded is used by both, and with PyAV's
loaded first the Qt window hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import dataclasses
import logging
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import av
import cv2
import numpy as np

from kiosk_client.audio import audio_from_args
from kiosk_client.camera import Camera, parse_source
from kiosk_client.camera_check import CheckResult, FaceDetector, check_picture
from kiosk_client.health import (
    HealthReporter,
    camera_state,
    microphone_state,
    network_of,
    spawn_report,
)
from kiosk_client.screen import Button, ScreenState, View, hit, render
from kiosk_client.session import CLOSED, KioskSession, languages_of
from kiosk_client.sources import make_tracks_factory
from kiosk_client.typeface import Typeface
from tsunagu.client import ServerError, SignalingClient, server_urls
from tsunagu.endpoint.leg import prepare_rtc
from tsunagu.settings import KioskSettings

log = logging.getLogger(__name__)
WINDOW = "tsunagu"
CHECK_EVERY_S = 2.0
FRAME_MS = 33
OPEN_TIMEOUT_S = 10.0
# cv2.waitKeyEx codes: ASCII, or X keysyms (Qt and GTK backends) for keys without one.
KEY_QUIT = {27, 0xFF1B}
KEY_BACKSPACE = {8, 127, 0xFF08, 0xFFFF}
KEY_ENTER = {10, 13, 0xFF0D, 0xFF8D}


class DisplayUnavailable(RuntimeError):
    """This OpenCV build or this machine cannot open the kiosk window."""


def highgui_backend() -> str:
    """The GUI line of OpenCV's build information: "QT5", "GTK3"..., or "NONE" (headless)."""
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GUI:"):
            return line.split(":", 1)[1].strip()
    return "NONE"


def screen_size(display: str | None = None) -> tuple[int, int]:
    """(width, height) of the X screen, asked through Xlib; DisplayUnavailable without one."""
    display = display if display is not None else os.environ.get("DISPLAY")
    if not display:
        raise DisplayUnavailable("no display (DISPLAY is not set); use --headless without a screen")
    try:
        xlib = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
    except OSError as exc:
        raise DisplayUnavailable(f"no Xlib (libX11) on this machine: {exc}") from exc
    xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    xlib.XOpenDisplay.restype = ctypes.c_void_p
    xlib.XDefaultScreen.argtypes = [ctypes.c_void_p]
    xlib.XDisplayWidth.argtypes = [ctypes.c_void_p, ctypes.c_int]
    xlib.XDisplayHeight.argtypes = [ctypes.c_void_p, ctypes.c_int]
    xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    handle = xlib.XOpenDisplay(display.encode())
    if not handle:
        raise DisplayUnavailable(f"cannot open display {display}; use --headless without a screen")
    try:
        number = xlib.XDefaultScreen(handle)
        return int(xlib.XDisplayWidth(handle, number)), int(xlib.XDisplayHeight(handle, number))
    finally:
        xlib.XCloseDisplay(handle)


def key_action(key: int) -> str | None:
    """The action for a ``cv2.waitKeyEx`` code (-1: none): quit, chat keys, else nothing."""
    if key in KEY_QUIT:
        return "quit"  # Esc: staff closes the app
    if key in KEY_BACKSPACE:
        return "key:backspace"
    if key in KEY_ENTER:
        return "key:enter"
    if 32 <= key < 127:
        return "key:" + chr(key)
    return None  # arrows, modifiers, function keys (keysyms the old 0xFF mask turned into letters)


class Display:
    """Owns the window; ``view`` and ``remote`` are set from the event loop."""

    def __init__(self, size: tuple[int, int], fullscreen: bool,
                 on_input: Callable[[str], None]) -> None:
        self.size = size  # windowed size; full screen uses the screen's
        self.fullscreen = fullscreen
        self.on_input = on_input
        self.view = View()
        self.remote: av.VideoFrame | None = None
        self.self_view: Callable[[], Any] = lambda: None
        self.failed: str | None = None  # why the display thread stopped, if it did
        self.frames = 0
        self._screen = size
        self._buttons: list[Button] = []
        self._stop = threading.Event()
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._run, name="display", daemon=True)

    def start(self) -> None:
        """Check for HighGUI and a display, then open the window in the display thread.

        Raises DisplayUnavailable before any HighGUI call when either is missing, or
        when the window does not open.
        """
        backend = highgui_backend()
        if backend == "NONE":
            raise DisplayUnavailable(
                "this OpenCV has no window support (opencv-python-headless); install "
                "opencv-python (scripts/bootstrap does) or use --headless"
            )
        self._screen = screen_size()
        log.info("kiosk window: HighGUI %s, screen %dx%d", backend, *self._screen)
        self._thread.start()
        if not self._opened.wait(OPEN_TIMEOUT_S) or self.failed:
            self._stop.set()
            raise DisplayUnavailable(f"the window did not open: {self.failed or 'timeout'}")

    def stop(self) -> None:
        """Close the window."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=3.0)

    def _on_mouse(self, event: int, x: int, y: int, _flags: int, _param: Any) -> None:
        if event == cv2.EVENT_LBUTTONUP and (action := hit(self._buttons, x, y)):
            self.on_input(action)

    def _open(self) -> None:
        flags = cv2.WINDOW_NORMAL | cv2.WINDOW_FREERATIO | cv2.WINDOW_GUI_NORMAL
        cv2.namedWindow(WINDOW, flags)  # no toolbar, picture stretched to the window: 1:1
        if self.fullscreen:
            cv2.moveWindow(WINDOW, 0, 0)
            cv2.resizeWindow(WINDOW, *self._screen)  # what full screen means without a WM
            cv2.setWindowProperty(WINDOW, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN)
        else:
            cv2.resizeWindow(WINDOW, *self.size)
        cv2.setMouseCallback(WINDOW, self._on_mouse)

    def canvas_size(self) -> tuple[int, int]:
        """The window's picture area (width, height); the screen or --size until it shows."""
        _, _, width, height = cv2.getWindowImageRect(WINDOW)
        if width > 0 and height > 0:
            return int(width), int(height)
        return self._screen if self.fullscreen else self.size

    def _frame(self) -> View:
        view, remote = self.view, self.remote
        picture = None
        if remote is not None:
            picture = np.asarray(remote.to_ndarray(format="bgr24"), dtype=np.uint8)
        return dataclasses.replace(view, remote=picture, self_view=self.self_view())

    def _run(self) -> None:
        try:
            self._open()
            self._opened.set()
            self._loop()
        except Exception as exc:  # the app must hear that its window is gone, then quit
            self.failed = f"{type(exc).__name__}: {exc}"
            log.exception("kiosk window failed")
            self._opened.set()
            self.on_input("quit")
        finally:
            with contextlib.suppress(cv2.error):
                cv2.destroyAllWindows()
                cv2.waitKey(1)  # let HighGUI process the close

    def _loop(self) -> None:
        typeface = Typeface.default()
        while not self._stop.is_set():
            started = time.monotonic()
            canvas, self._buttons = render(self._frame(), typeface, self.canvas_size())
            cv2.imshow(WINDOW, canvas)
            self.frames += 1
            spent_ms = int((time.monotonic() - started) * 1000)
            action = key_action(cv2.waitKeyEx(max(1, FRAME_MS - spent_ms)))
            if action is not None:
                self.on_input(action)


RATING_KEYS = {**{f"key:{n}": f"rate:{n}" for n in range(1, 6)}, "key:s": "skip-rating"}
SELF_CHECK = ("点検中です。言語を選ぶと通話できます。", "Self-check. Tap a language to call.")


class WindowedKiosk:
    """Glue between the session (asyncio) and the display thread."""

    def __init__(self, session: KioskSession, display: Display, camera: Camera | None,
                 actions: asyncio.Queue[str]) -> None:
        self.session = session
        self.display = display
        self.camera = camera
        self.actions = actions
        self.advice: tuple[tuple[str, str], ...] = ()
        self.audio_notices: Callable[[], tuple[tuple[str, str], ...]] = lambda: ()
        self.draft = ""
        self.last_check: CheckResult | None = None  # for the fleet's health report
        self.health: HealthReporter | None = None

    def publish(self) -> None:
        """Hand the display the current state."""
        s = self.session
        peer = s.peer.get("name") if s.peer else None
        if s.testing:  # the daily test call: the home screen, with a small notice
            self.display.view = View(state=ScreenState.HOME,
                                     languages=languages_of(s.client.welcome),
                                     advice=(SELF_CHECK, *self.advice))
            return
        self.display.view = View(
            state=s.state, languages=languages_of(s.client.welcome), position=s.position,
            estimated_wait_s=s.estimated_wait_s, wait_range_s=s.wait_range_s,
            none_available=s.none_available, message=s.message,
            advice=(() if s.state is ScreenState.IN_CALL else self.advice) + self.audio_notices(),
            peer_name=peer, chat=tuple(s.chat), chat_draft=self.draft,
            rating=s.rating_call is not None,
        )

    async def check_camera_forever(self) -> None:
        """On the home screen, check the camera every few seconds (in a worker thread)."""
        detector: FaceDetector | None = None
        while True:
            if self.session.state is ScreenState.HOME and self.camera is not None:
                if detector is None:
                    detector = await asyncio.to_thread(FaceDetector)
                picture = self.camera.latest_bgr()
                result = await asyncio.to_thread(check_picture, picture, detector)
                self.advice = tuple(result.advice())
                self.last_check = result
                self.publish()
                if self.health is not None:
                    await self.health.camera_checked()
            await asyncio.sleep(CHECK_EVERY_S)

    async def act(self, action: str) -> bool:
        """Carry out one tap or key; False to quit."""
        s = self.session
        if action == "quit":
            return False
        if s.rating_call is not None and action in RATING_KEYS:
            action = RATING_KEYS[action]  # keys 1-5 rate, s skips, while the faces are up
        if action.startswith("rate:"):
            await s.rate(int(action[5:]))
        elif action == "skip-rating":
            s.home()
        elif action.startswith("language:"):
            await s.request_call(action.split(":", 1)[1])
        elif action == "cancel":
            await s.cancel()
        elif action == "hangup":
            await s.hangup()
        elif action == "home":
            s.home()
        elif action == "key:enter" and s.state is ScreenState.IN_CALL:
            await s.send_chat(self.draft)
            self.draft = ""
        elif action == "key:backspace":
            self.draft = self.draft[:-1]
        elif action.startswith("key:"):
            self.draft += action[4:]
        return True

    async def run(self) -> None:
        """Serve taps and state changes until the staff quits."""
        while True:
            self.publish()
            if self.session.rating_over(asyncio.get_running_loop().time()):
                self.session.home()  # nobody tapped a face: the next resident's screen
                continue
            try:
                action = await asyncio.wait_for(self.actions.get(), timeout=0.25)
            except TimeoutError:
                continue
            try:
                if not await self.act(action):
                    return
            except ServerError as exc:
                log.warning("kiosk action %s refused: %s", action, exc.code)


async def connect_until_up(session: KioskSession, kiosk: WindowedKiosk) -> None:
    """Connect, showing a plain error and retrying while the service cannot be reached."""
    delay = 1.0
    while True:
        try:
            await session.client.connect()
            session.home()
            return
        except (OSError, TimeoutError, aiohttp.ClientError, ServerError) as exc:
            log.warning("kiosk cannot connect: %s", type(exc).__name__)
            session.message = CLOSED
            session.state = ScreenState.ERROR
            kiosk.publish()
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 30.0)


async def run_windowed(args: KioskSettings) -> int:
    """The full-screen counter app."""
    loop = asyncio.get_running_loop()
    _, ws_url = server_urls(args.server)
    client = SignalingClient(ws_url, args.token_file.read_text().strip())
    source = parse_source(args.source)
    camera = Camera(source, fps=args.fps)
    width, height = (int(v) for v in args.size.split("x"))
    actions: asyncio.Queue[str] = asyncio.Queue()

    def on_input(action: str) -> None:
        with contextlib.suppress(RuntimeError):  # the loop already closed: nothing to tell
            loop.call_soon_threadsafe(actions.put_nowait, action)

    display = Display((width, height), not args.windowed, on_input)
    display.self_view = camera.latest_bgr
    audio = audio_from_args(args)
    session = KioskSession(client, make_tracks_factory(camera, args.fps, audio),
                           on_video=lambda f: setattr(display, "remote", f),
                           on_audio=audio.play)
    kiosk = WindowedKiosk(session, display, camera, actions)
    kiosk.audio_notices = audio.notices
    display.start()  # first: without window support, fail before starting anything else
    camera.start()
    audio.start()
    tasks: list[asyncio.Task[None]] = []
    try:
        await connect_until_up(session, kiosk)
        prepare_rtc(early_release=not args.no_early_release)
        await audio.check_async()  # done before any call can open the microphone itself
        screen: tuple[int, int] | None = None
        with contextlib.suppress(DisplayUnavailable):
            screen = screen_size()
        kiosk.health = HealthReporter(
            client, camera=lambda: camera_state(kiosk.last_check,
                                                synthetic=source == "synthetic"),
            microphone=lambda: microphone_state(audio.mic, audio.mic_problem),
            screen=screen, network=lambda: network_of(session.last_outbound))
        reports: set[asyncio.Task[Any]] = set()
        session.on_reconnected = lambda: spawn_report(kiosk.health, reports) \
            if kiosk.health is not None else None
        # kiosk.health: on connect, every 5 minutes, after a camera check that changed it
        tasks = [asyncio.create_task(session.run(), name="kiosk-session"),
                 asyncio.create_task(kiosk.check_camera_forever(), name="camera-check"),
                 asyncio.create_task(kiosk.health.run(), name="kiosk-health")]
        await kiosk.run()
        if display.failed:
            print(f"kiosk: the window failed: {display.failed}", file=sys.stderr)
            return 1
        return 0
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await session.close()
        await client.close()
        await asyncio.to_thread(audio.stop)
        display.stop()
        camera.stop()
