"""``python -m kiosk_client``: the counter app, windowed or headless.

    python -m kiosk_client --server http://127.0.0.1:8080 --token-file kiosk.token
    python -m kiosk_client --server URL --token-file F --headless --source synthetic \
        --call jsl --duration 10        # one call, then a JSON summary on stdout
"""

from __future__ import annotations

# OpenCV before PyAV (aiortc): their wheels bundle libxcb-shm/-xfixes/-shape under the same
# names, linked to different libxcb copies; with PyAV's loaded first the kiosk window hangs.
import cv2  # noqa: F401

# isort: split
import asyncio
import errno
import json
import logging
import random
import socket
import sys
import time
from collections.abc import Sequence
from typing import Any

import aiohttp

from kiosk_client.audio import audio_check, audio_from_args
from kiosk_client.camera import Camera, parse_source
from kiosk_client.camera_check import CheckResult, FaceDetector, check_picture
from kiosk_client.health import (
    HealthReporter,
    camera_state,
    cancel,
    microphone_state,
    network_of,
    spawn_report,
)
from kiosk_client.screen import ScreenState
from kiosk_client.self_test import verdict
from kiosk_client.session import KioskSession
from kiosk_client.sources import make_tracks_factory
from tsunagu.client import ServerError, SignalingClient, server_urls
from tsunagu.endpoint.leg import prepare_rtc
from tsunagu.settings import KioskSettings

log = logging.getLogger(__name__)


def parse_args(argv: Sequence[str] | None) -> KioskSettings:
    """The kiosk's command line (tsunagu.settings.KioskSettings)."""
    return KioskSettings.from_argv(None if argv is None else list(argv))


async def check_camera(camera: Camera, wait_s: float = 1.5) -> CheckResult:
    """Check the camera's picture (in a worker thread)."""
    for _ in range(int(wait_s / 0.05)):  # the camera thread publishes; poll its slot
        if camera.latest_bgr() is not None:
            break
        await asyncio.sleep(0.05)
    return await asyncio.to_thread(lambda: check_picture(camera.latest_bgr(), FaceDetector()))


async def camera_check(camera: Camera | None, wait_s: float = 1.5,
                       result: CheckResult | None = None) -> dict[str, Any]:
    """Check the camera's picture (unless ``result`` is that check) and describe it."""
    if camera is None:
        return {"skipped": "synthetic source"}
    if result is None:
        result = await check_camera(camera, wait_s)
    return {"ok": result.ok, "problems": [str(p) for p in result.problems],
            "brightness": round(result.brightness, 1), "faces": len(result.faces),
            "advice": [en for _, en in result.advice()]}


async def _one_call(session: KioskSession, args: KioskSettings) -> dict[str, Any]:
    started = time.monotonic()
    assert args.call is not None
    queued = await session.request_call(args.call, priority=args.priority)
    out: dict[str, Any] = {"call_id": session.call_id, "position": queued.get("position"),
                           "estimated_wait_s": queued.get("estimated_wait_s"),
                           "estimated_wait_min_s": queued.get("estimated_wait_min_s"),
                           "estimated_wait_max_s": queued.get("estimated_wait_max_s")}
    state = await session.wait_for(ScreenState.IN_CALL, ScreenState.ENDED, ScreenState.ERROR,
                                   within_s=args.max_wait)
    if state is ScreenState.IN_CALL:
        out["answered_after_s"] = round(time.monotonic() - started, 3)
        assert session.leg is not None
        out["media_connected"] = await session.leg.wait_connected(within_s=20.0)
        try:
            await session.wait_for(ScreenState.ENDED, ScreenState.ERROR, within_s=args.duration)
        except TimeoutError:
            out["outbound"] = await session.leg.outbound()
            await session.hangup()
            await session.wait_for(ScreenState.ENDED, ScreenState.ERROR, within_s=15.0)
    out["media"] = session.leg.summary() if session.leg is not None else None
    out["end_reason"] = session.end_reason
    out["state"] = str(session.state)
    return out


async def run_headless(args: KioskSettings) -> dict[str, Any]:
    """Connect, check the camera, place one call if asked, and return a summary."""
    _, ws_url = server_urls(args.server)
    client = SignalingClient(ws_url, args.token_file.read_text().strip())
    source = parse_source(args.source)
    camera = None if source == "synthetic" else Camera(source, fps=args.fps)
    if camera is not None:
        camera.start()
    audio = audio_from_args(args)
    audio.start()
    session = KioskSession(client, make_tracks_factory(camera, args.fps, audio),
                           on_audio=audio.play)
    checked: list[CheckResult] = []
    reporter = HealthReporter(
        client, camera=lambda: camera_state(checked[-1] if checked else None,
                                            synthetic=camera is None),
        microphone=lambda: microphone_state(audio.mic, audio.mic_problem),
        network=lambda: network_of(session.last_outbound))
    reports: set[asyncio.Task[Any]] = set()
    session.on_reconnected = lambda: spawn_report(reporter, reports)
    health: asyncio.Task[None] | None = None
    try:
        welcome = await connect_with_backoff(client, args.server, within_s=args.max_wait)
        prepare_rtc(early_release=not args.no_early_release)
        reader = asyncio.create_task(session.run(), name="kiosk-session")
        if camera is not None:
            checked.append(await check_camera(camera))
        summary: dict[str, Any] = {"kiosk": (welcome.get("user") or {}).get("id"),
                                   "camera_check": await camera_check(
                                       camera, result=checked[-1] if checked else None),
                                   "audio_check": await audio_check(audio)}
        # kiosk.health: now (after the camera check), every 5 minutes, on each reconnect
        health = asyncio.create_task(reporter.run(), name="kiosk-health")
        if args.call:
            summary["call"] = await _one_call(session, args)
            summary["call"]["audio"] = audio.summary()
        else:
            await reader  # a screenless kiosk: stay connected until stopped
        summary["reconnects"] = client.reconnects
        summary["health"] = reporter.last
        reader.cancel()
        return summary
    finally:
        await cancel(health)
        await session.close()
        await client.close()
        await asyncio.to_thread(audio.stop)
        if camera is not None:
            camera.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point (``tsunagu kiosk`` and ``python -m kiosk_client``)."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        if args.headless:
            summary = asyncio.run(run_headless(args))
            if args.call is None:
                print(json.dumps(summary, ensure_ascii=False))
                return 0
            result = verdict(summary.get("call"), language=args.call)
            summary["self_test"] = {"ok": result.ok, "findings": result.lines}
            print("\n".join(result.lines))  # for the person who ran it; the JSON last
            print(json.dumps(summary, ensure_ascii=False))
            return 0 if result.ok else 1
        from kiosk_client.display import DisplayUnavailable, run_windowed

        try:
            return asyncio.run(run_windowed(args))
        except DisplayUnavailable as exc:
            print(f"kiosk: {exc}", file=sys.stderr)
            return 2
    except KeyboardInterrupt:
        return 130
    except Unreachable as exc:
        print(f"kiosk: {exc}", file=sys.stderr)
        return 1
    except ServerError as exc:
        print(f"kiosk: the server at {args.server} refused: {exc.message or exc.code}",
              file=sys.stderr)
        return 1
    except (TimeoutError, OSError, aiohttp.ClientError) as exc:
        print(f"kiosk: {describe_network_error(args.server, exc)}", file=sys.stderr)
        return 1


class Unreachable(Exception):
    """The signaling server could not be reached in time (the message says how and where)."""


def describe_network_error(server: str, exc: BaseException) -> str:
    """A plain sentence for a connection failure, naming the server, never a class."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        why = "its HTTPS certificate is not trusted on this PC (install the service's CA)"
    else:
        cause: BaseException | None = exc
        if isinstance(exc, aiohttp.ClientConnectorError):
            cause = exc.os_error
        number = getattr(cause, "errno", None)
        if isinstance(cause, TimeoutError) or number == errno.ETIMEDOUT:
            why = "it did not answer in time"
        elif isinstance(cause, ConnectionRefusedError) or number == errno.ECONNREFUSED:
            why = "the connection was refused (is the service running, and the port right?)"
        elif isinstance(cause, socket.gaierror) or "not known" in str(cause).lower():
            why = "the host name cannot be found"
        elif number in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            why = "the network cannot reach it"
        else:
            why = "the connection failed"
    return f"cannot reach the signaling server at {server}: {why}"


async def connect_with_backoff(client: SignalingClient, server: str, *, within_s: float,
                               first_delay_s: float = 0.5) -> dict[str, Any]:
    """Connect, retrying with exponential backoff and jitter (as the web page does) until
    ``within_s`` has passed; then :class:`Unreachable` with what went wrong."""
    loop = asyncio.get_running_loop()
    deadline, delay = loop.time() + within_s, first_delay_s
    while True:
        try:
            return await client.connect()
        except ServerError:
            raise  # refused (a revoked token, say): retrying does not help
        except (TimeoutError, OSError, aiohttp.ClientError) as exc:
            problem = describe_network_error(server, exc)
            if loop.time() + delay > deadline:
                raise Unreachable(problem) from exc
            log.warning("%s; trying again in %.0f s", problem, delay)
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 30.0)
