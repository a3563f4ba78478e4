"""The Python kiosk's kiosk.health: the mapping of its own checks to section 14 (pure), then
reports over a real socket to a real signaling node and Redis, on connect and on reconnect."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import cv2
import numpy as np
import redis.asyncio as aioredis

from kiosk_client.camera_check import FaceDetector, Problem, check_picture
from kiosk_client.health import (
    HealthReporter,
    battery,
    camera_state,
    microphone_state,
    network_of,
    report,
)
from kiosk_client.session import KioskSession
from tests.kiosk_client.conftest import Image, draw_person
from tests.signaling.test_server import make_settings
from tests.support.stack import running
from tsunagu.fleet import check_health
from tsunagu.redis_server import RedisServer


def test_camera_check_results_map_to_section_14(person: Image) -> None:
    detector = FaceDetector()
    assert camera_state(check_picture(person, detector)) == "ok"
    assert camera_state(check_picture(None, detector)) == "missing"
    dark = np.asarray(cv2.convertScaleAbs(person, alpha=0.25), dtype=np.uint8)
    assert Problem.TOO_DARK in check_picture(dark, detector).problems
    assert camera_state(check_picture(dark, detector)) == "dark"
    black = np.zeros((480, 640, 3), np.uint8)
    assert camera_state(check_picture(black, detector)) == "dark"  # covered lens
    assert camera_state(check_picture(draw_person(present=False), detector)) == "no_face"
    assert camera_state(None) == "unknown"
    assert camera_state(check_picture(person, detector), synthetic=True) == "unknown"


def test_microphone_words() -> None:
    assert microphone_state("tone", None) == "ok"
    assert microphone_state("none", None) == "missing"
    assert microphone_state("default", None) == "ok"
    assert microphone_state("default", "cannot open: Permission denied") == "denied"
    assert microphone_state("hw:1", "cannot open: No such file or directory") == "missing"
    assert microphone_state("default", "gives no sound (timed out)") == "missing"


def test_battery_from_sys_class_power_supply(tmp_path: Path) -> None:
    assert battery(tmp_path / "none") is None
    ac = tmp_path / "AC"
    ac.mkdir()
    (ac / "type").write_text("Mains\n")
    assert battery(tmp_path) is None
    bat = tmp_path / "BAT0"
    bat.mkdir()
    (bat / "type").write_text("Battery\n")
    (bat / "capacity").write_text("57\n")
    (bat / "status").write_text("Discharging\n")
    assert battery(tmp_path) == {"level_pct": 57, "charging": False}
    (bat / "status").write_text("Charging\n")
    assert battery(tmp_path) == {"level_pct": 57, "charging": True}


def test_network_from_the_last_calls_receiver_reports() -> None:
    assert network_of({}) is None
    out = {"video": {"packets_sent": 900, "acknowledged": True, "rtt_ms": 21.0,
                     "packets_lost": 9},
           "audio": {"packets_sent": 100, "acknowledged": True, "rtt_ms": 25.5,
                     "packets_lost": 1}}
    assert network_of(out) == {"rtt_ms": 25.5, "loss_pct": 1.0}
    # a report is valid for the server whatever parts are known
    msg = report(camera="ok", microphone="ok", version="0.1.0", screen=(1920, 1080),
                 power={"level_pct": 57, "charging": True}, network=network_of(out))
    assert check_health(msg) == msg
    bare = report(camera="unknown", microphone="missing", version="0.1.0", screen=None,
                  power=None, network=None)
    assert check_health(bare) == bare == {"camera": "unknown", "microphone": "missing",
                                          "app": {"kind": "python", "version": "0.1.0"}}


async def test_reports_reach_the_server_on_connect_and_on_reconnect(
        redis_server: RedisServer, redis: aioredis.Redis, person: Image) -> None:
    settings = make_settings(redis_server)
    async with running(settings) as stack:
        token = await stack.add_kiosk("k9", ward="北区", counter="7")
        client = await stack.client(token)
        session = KioskSession(client, make_tracks=list)
        checked = [check_picture(person, FaceDetector())]
        reporter = HealthReporter(client, camera=lambda: camera_state(checked[-1]),
                                  microphone=lambda: microphone_state("tone", None),
                                  screen=(1280, 800), power=lambda: None, every_s=3600)
        sent: set[asyncio.Task[object]] = set()
        session.on_reconnected = lambda: sent.add(asyncio.ensure_future(reporter.send()))
        reader = asyncio.create_task(session.run())
        runner = asyncio.create_task(reporter.run())
        key = settings.keys.kiosk_health("k9")
        for _ in range(300):
            if await redis.get(key):
                break
            await asyncio.sleep(0.05)
        first = json.loads(await redis.get(key))
        assert first["camera"] == "ok" and first["app"]["kind"] == "python"
        assert first["screen"] == {"w": 1280, "h": 800} and "battery" not in first

        # the camera check finds it dark: reported (and only when it changed)
        checked.append(check_picture(np.zeros((480, 640, 3), np.uint8), FaceDetector()))
        await reporter.camera_checked()
        dark = json.loads(await redis.get(key))
        assert dark["camera"] == "dark" and dark["at_ms"] >= first["at_ms"]
        await reporter.camera_checked()
        assert json.loads(await redis.get(key))["at_ms"] == dark["at_ms"]

        # a reconnect reports again
        checked.append(check_picture(person, FaceDetector()))
        await client.drop()
        for _ in range(300):
            now = json.loads(await redis.get(key))
            if now["camera"] == "ok":
                break
            await asyncio.sleep(0.05)
        assert now["camera"] == "ok" and client.reconnects == 1
        runner.cancel()
        reader.cancel()
