"""The kiosk window: an OpenCV window driven by its own thread, taps sent to the event loop.

HighGUI wants every window call on one thread, and converting and scaling
video is CPU work, so a display thread renders ``screen.render`` at about
30 fps from the latest state and remote frame, and turns mouse clicks and
key presses into actions for the asyncio side (``loop.call_soon_threadsafe``).
Needs an OpenCV build with HighGUI (``opencv-python``, not ``-headless``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import av
import cv2
import numpy as np

from kiosk_client.camera import Camera, parse_source
from kiosk_client.camera_check import FaceDetector, check_picture
from kiosk_client.endpoints import server_urls
from kiosk_client.media import prepare_rtc
from kiosk_client.screen import ScreenState, View, hit, render
from kiosk_client.session import CLOSED, KioskSession, languages_of
from kiosk_client.typeface import Typeface
from signaling.client import ServerError, SignalingClient

log = logging.getLogger(__name__)
WINDOW = "tsunagu"
CHECK_EVERY_S = 2.0


class DisplayUnavailable(RuntimeError):
    """This OpenCV build cannot open windows."""


class Display:
    """Owns the window; ``view`` and ``remote`` are set from the event loop."""

    def __init__(self, size: tuple[int, int], fullscreen: bool,
                 on_input: Callable[[str], None]) -> None:
        self.size = size
        self.fullscreen = fullscreen
        self.on_input = on_input
        self.view = View()
        self.remote: av.VideoFrame | None = None
        self.self_view: Callable[[], Any] = lambda: None
        self._buttons: list[Any] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="display", daemon=True)

    def start(self) -> None:
        """Open the window (fails early if HighGUI is missing) and start drawing."""
        try:
            cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            raise DisplayUnavailable(
                "this OpenCV has no window support; install opencv-python or use --headless"
            ) from exc
        cv2.destroyWindow(WINDOW)
        self._thread.start()

    def stop(self) -> None:
        """Close the window."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)

    def _on_mouse(self, event: int, x: int, y: int, _flags: int, _param: Any) -> None:
        if event == cv2.EVENT_LBUTTONUP and (action := hit(self._buttons, x, y)):
            self.on_input(action)

    def _open(self) -> None:
        cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
        if self.fullscreen:
            cv2.setWindowProperty(WINDOW, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN)
        else:
            cv2.resizeWindow(WINDOW, *self.size)
        cv2.setMouseCallback(WINDOW, self._on_mouse)

    def _frame(self) -> View:
        view, remote = self.view, self.remote
        picture = None
        if remote is not None:
            picture = np.asarray(remote.to_ndarray(format="bgr24"), dtype=np.uint8)
        return dataclasses.replace(view, remote=picture, self_view=self.self_view())

    def _run(self) -> None:
        self._open()
        typeface = Typeface.default()
        while not self._stop.is_set():
            started = time.monotonic()
            canvas, self._buttons = render(self._frame(), typeface, self.size)
            cv2.imshow(WINDOW, canvas)
            key = cv2.waitKey(max(1, int(33 - (time.monotonic() - started) * 1000)))
            if key == 27:  # Esc: staff closes the app
                self.on_input("quit")
            elif key in (8, 127):
                self.on_input("key:backspace")
            elif key in (10, 13):
                self.on_input("key:enter")
            elif 32 <= key < 127:
                self.on_input("key:" + chr(key))
        cv2.destroyAllWindows()


class WindowedKiosk:
    """Glue between the session (asyncio) and the display thread."""

    def __init__(self, session: KioskSession, display: Display, camera: Camera | None,
                 actions: asyncio.Queue[str]) -> None:
        self.session = session
        self.display = display
        self.camera = camera
        self.actions = actions
        self.advice: tuple[tuple[str, str], ...] = ()
        self.draft = ""

    def publish(self) -> None:
        """Hand the display the current state."""
        s = self.session
        peer = s.peer.get("name") if s.peer else None
        self.display.view = View(
            state=s.state, languages=languages_of(s.client.welcome), position=s.position,
            estimated_wait_s=s.estimated_wait_s, message=s.message, advice=self.advice,
            peer_name=peer, chat=tuple(s.chat), chat_draft=self.draft,
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
                self.publish()
            await asyncio.sleep(CHECK_EVERY_S)

    async def act(self, action: str) -> bool:
        """Carry out one tap or key; False to quit."""
        s = self.session
        if action == "quit":
            return False
        if action.startswith("language:"):
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


async def run_windowed(args: argparse.Namespace) -> int:
    """The full-screen counter app."""
    from kiosk_client.app import make_tracks_factory

    loop = asyncio.get_running_loop()
    _, ws_url = server_urls(args.server)
    client = SignalingClient(ws_url, args.token_file.read_text().strip())
    source = parse_source(args.source)
    camera = Camera(source, fps=args.fps)
    width, height = (int(v) for v in args.size.split("x"))
    actions: asyncio.Queue[str] = asyncio.Queue()

    def on_input(action: str) -> None:
        loop.call_soon_threadsafe(actions.put_nowait, action)

    display = Display((width, height), not args.windowed, on_input)
    display.self_view = camera.latest_bgr
    session = KioskSession(client, make_tracks_factory(camera, args.fps),
                           on_video=lambda f: setattr(display, "remote", f))
    kiosk = WindowedKiosk(session, display, camera, actions)
    display.start()  # first: without window support, fail before starting anything else
    camera.start()
    tasks: list[asyncio.Task[None]] = []
    try:
        await connect_until_up(session, kiosk)
        prepare_rtc(early_release=not args.no_early_release)
        tasks = [asyncio.create_task(session.run(), name="kiosk-session"),
                 asyncio.create_task(kiosk.check_camera_forever(), name="camera-check")]
        await kiosk.run()
        return 0
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await session.close()
        await client.close()
        display.stop()
        camera.stop()
