"""The Python kiosk's health report, ``kiosk.health`` (PROTOCOL.md section 14): on connect
(and every reconnect), every 5 minutes, and after a camera check that changed what it found.

The mapping from what the kiosk measures to the section's words is pure (tested without a
loop): the camera check's problems (``camera_check.Problem``), the microphone probe's
problem sentence, the battery under ``/sys/class/power_supply``, the last call's RTCP
figures. ``HealthReporter`` sends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from kiosk_client.camera_check import CheckResult, Problem
from tsunagu.client import Disconnected, ServerError, SignalingClient

log = logging.getLogger(__name__)
REPORT_EVERY_S = 300.0
POWER_SUPPLY = Path("/sys/class/power_supply")


def app_version() -> str:
    """The installed package's version."""
    try:
        return metadata.version("tsunagu")
    except metadata.PackageNotFoundError:
        return "unknown"


def camera_state(result: CheckResult | None, *, synthetic: bool = False) -> str:
    """Section 14's camera word for a camera check: no picture -> ``missing``; covered or
    too dark -> ``dark``; no face -> ``no_face``; else ``ok`` (too bright has no word of its
    own: the picture is there). No check yet -> ``unknown``; the synthetic test picture is
    no camera -> ``unknown``."""
    if synthetic or result is None:
        return "unknown"
    problems = set(result.problems)
    if Problem.NO_PICTURE in problems:
        return "missing"
    if problems & {Problem.COVERED, Problem.TOO_DARK}:
        return "dark"
    if Problem.NO_FACE in problems:
        return "no_face"
    return "ok"


def microphone_state(device: str, problem: str | None, *, tone: str = "tone",
                     off: str = "none") -> str:
    """Section 14's microphone word: the synthetic tone is ``ok``; no microphone configured
    (``--mic none``) is ``missing``; a probe that failed for permissions is ``denied``, for
    any other reason ``missing``."""
    if device == tone:
        return "ok"
    if device == off:
        return "missing"
    if problem is None:
        return "ok"
    lowered = problem.lower()
    if "permission" in lowered or "denied" in lowered or "not permitted" in lowered:
        return "denied"
    return "missing"


def battery(root: Path = POWER_SUPPLY) -> dict[str, Any] | None:
    """``{level_pct, charging}`` of the first battery under ``root``, or None (no battery,
    or the platform does not say)."""
    try:
        supplies = sorted(root.iterdir())
    except OSError:
        return None
    for supply in supplies:
        try:
            if (supply / "type").read_text().strip() != "Battery":
                continue
            level = int((supply / "capacity").read_text().strip())
            status = (supply / "status").read_text().strip().lower()
        except (OSError, ValueError):
            continue
        return {"level_pct": max(0, min(100, level)),
                "charging": status in ("charging", "full")}
    return None


def network_of(outbound: Mapping[str, Mapping[str, Any]]) -> dict[str, Any] | None:
    """``{rtt_ms, loss_pct}`` from a leg's ``outbound()`` (what the relay's receiver reports
    acknowledged): the worst round trip, lost over sent packets; None if nothing was told."""
    rtts = [float(v["rtt_ms"]) for v in outbound.values() if v.get("rtt_ms") is not None]
    sent = sum(int(v.get("packets_sent") or 0) for v in outbound.values())
    lost = sum(max(0, int(v.get("packets_lost") or 0)) for v in outbound.values()
               if v.get("acknowledged"))
    if not rtts or sent <= 0:
        return None
    return {"rtt_ms": round(max(rtts), 1), "loss_pct": round(min(100.0, 100.0 * lost / sent), 2)}


def report(*, camera: str, microphone: str, version: str, screen: tuple[int, int] | None,
           power: dict[str, Any] | None, network: dict[str, Any] | None) -> dict[str, Any]:
    """The ``kiosk.health`` fields."""
    msg: dict[str, Any] = {"camera": camera, "microphone": microphone,
                           "app": {"kind": "python", "version": version}}
    if screen is not None:
        msg["screen"] = {"w": int(screen[0]), "h": int(screen[1])}
    if power is not None:
        msg["battery"] = power
    if network is not None:
        msg["network"] = network
    return msg


class HealthReporter:
    """Sends ``kiosk.health``; the kiosk hands in how to read each part."""

    def __init__(self, client: SignalingClient, *,
                 camera: Callable[[], str], microphone: Callable[[], str],
                 screen: tuple[int, int] | None = None,
                 network: Callable[[], dict[str, Any] | None] = lambda: None,
                 power: Callable[[], dict[str, Any] | None] = battery,
                 every_s: float = REPORT_EVERY_S) -> None:
        self.client = client
        self.camera = camera
        self.microphone = microphone
        self.screen = screen
        self.network = network
        self.power = power
        self.every_s = every_s
        self.version = app_version()
        self.last: dict[str, Any] | None = None
        self._lock = asyncio.Lock()

    async def send(self) -> dict[str, Any] | None:
        """Report now; the report, or None if it did not reach the server."""
        async with self._lock:
            msg = report(camera=self.camera(), microphone=self.microphone(),
                         version=self.version, screen=self.screen,
                         power=await asyncio.to_thread(self.power), network=self.network())
            try:
                await self.client.request("kiosk.health", **msg)
            except (Disconnected, ServerError, TimeoutError) as exc:
                log.info("kiosk.health not sent: %s", type(exc).__name__)
                return None
            self.last = msg
            return msg

    async def camera_checked(self) -> None:
        """After a camera check: report if the camera's word changed since the last report
        (a check every few seconds must not become a report every few seconds)."""
        if self.last is None or self.last.get("camera") != self.camera():
            await self.send()

    async def run(self) -> None:
        """Report now and every ``every_s`` until cancelled."""
        while True:
            await self.send()
            # a cancel that landed inside the request can be swallowed on the way out (the
            # client's own clean-up); without this the task slept 5 minutes "cancelling"
            # and the headless self-test never exited
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise asyncio.CancelledError
            await asyncio.sleep(self.every_s)


def spawn_report(reporter: HealthReporter, tasks: set[asyncio.Task[Any]]) -> None:
    """Send a report beside the caller (a reconnect); the task is kept until done."""
    task = asyncio.get_running_loop().create_task(reporter.send(), name="kiosk-health")
    tasks.add(task)
    task.add_done_callback(tasks.discard)


async def cancel(task: asyncio.Task[Any] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


