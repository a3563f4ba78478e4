"""The daily test call through the real service: signaling and relay processes, the answering
bot with media, the Python kiosk (KioskSession) answering ``kiosk.test_due``.

The scheduler's clock is the test clock (TSUNAGU_TEST_CLOCK=1): each test puts it just before
a kiosk's test time, tomorrow (a kiosk added today after its time is first tested tomorrow).
Run in a loopback-only namespace:
    unshare -rn sh -c 'ip link set lo up && .venv/bin/python -m pytest tests/kiosk_client'
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
import redis.asyncio as aioredis

from interpreter_console.bot import AnsweringBot
from kiosk_client.display import SELF_CHECK, Display, WindowedKiosk
from kiosk_client.screen import ScreenState
from kiosk_client.self_test import judge_test_call
from kiosk_client.session import KioskSession
from tests.support.service import Service
from tsunagu.client import ServerError, SignalingClient, login, server_urls
from tsunagu.endpoint.leg import prepare_rtc
from tsunagu.endpoint.tracks import SyntheticVideoTrack, ToneAudioTrack
from tsunagu.protocol import now_ms
from tsunagu.redis_keys import Keys
from tsunagu.redis_server import RedisServer
from tsunagu.settings import BotSettings

pytestmark = pytest.mark.webrtc
TZ = ZoneInfo("Asia/Tokyo")
ARTIFACTS = Path(os.environ.get("TSUNAGU_TEST_ARTIFACTS",
                                Path(__file__).resolve().parents[2] / "test-artifacts"))
KEYS = Keys()
MIN_FPS = 12.0  # both ways, measured by the kiosk over 5 s of media (sources run at 30)
ENV = {"TSUNAGU_TEST_CLOCK": "1", "TSUNAGU_TEST_TICK_S": "0.25", "TSUNAGU_TEST_RETRY_S": "4",
       "TSUNAGU_WRAPUP_S": "1"}


def start_service(redis_server: RedisServer, logdir: Path, **env: str) -> Service:
    svc = Service(redis_server.url, logdir, env={**os.environ, **ENV, **env})
    svc.start()
    return svc


def logdir(request: pytest.FixtureRequest) -> Path:
    """Each test's process logs, kept after the run (tmp_path is shared with other runs)."""
    path = ARTIFACTS / "logs" / "test_test_call" / request.node.name
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.log"):
        old.unlink()
    return path


@pytest.fixture
async def svc(redis: aioredis.Redis, redis_server: RedisServer,
              request: pytest.FixtureRequest) -> AsyncIterator[Service]:
    service = await asyncio.to_thread(start_service, redis_server, logdir(request))
    try:
        yield service
    finally:
        await asyncio.to_thread(service.stop)


async def set_clock(redis: aioredis.Redis, local: datetime) -> int:
    """Put the scheduler's clock at ``local``; returns the offset (ms)."""
    offset = int(local.timestamp() * 1000) - now_ms()
    await redis.set(KEYS.test_clock, offset)
    return offset


def tomorrow_at(hh: int, mm: int, ss: int = 0) -> datetime:
    day = datetime.now(TZ).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=TZ)


async def start_bot(service: Service, username: str, languages: str = "jsl"
                    ) -> tuple[AnsweringBot, asyncio.Task[Any]]:
    await asyncio.to_thread(service.add_interpreter, username, f"pw-{username}-123", languages)
    bot = AnsweringBot(BotSettings(server=service.url, username=username,
                                   password=f"pw-{username}-123", media=True, talk_s=None,
                                   wrapup_s=0.0))
    task = asyncio.create_task(bot.run())
    await asyncio.wait_for(bot.ready.wait(), 15)
    return bot, task


class Kiosk:
    """A Python kiosk (synthetic camera and tone) connected and reading its messages."""

    def __init__(self, service: Service, token: str) -> None:
        self.client = SignalingClient(server_urls(service.url)[1], token)
        self.session = KioskSession(self.client,
                                    lambda: [ToneAudioTrack(), SyntheticVideoTrack()])
        self.reader: asyncio.Task[None] | None = None

    async def start(self) -> Kiosk:
        prepare_rtc()
        await self.client.connect()
        self.reader = asyncio.create_task(self.session.run())
        return self

    async def result(self, within_s: float = 40.0) -> dict[str, Any]:
        for _ in range(int(within_s / 0.1)):
            if self.session.test_results:
                return self.session.test_results[-1]
            await asyncio.sleep(0.1)
        raise AssertionError("no test result from the kiosk")

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
        await self.session.close()
        await self.client.close()


async def idle(kiosk: Kiosk) -> None:
    """The test call is over and the kiosk back on its home screen."""
    for _ in range(100):
        if kiosk.session.idle:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"kiosk not idle: {kiosk.session.state}, "
                         f"testing={kiosk.session.testing}")


async def staff(service: Service, username: str, role: str) -> SignalingClient:
    await asyncio.to_thread(service.admin, "add-user", username, "--role", role,
                            *(("--languages", "jsl,en") if role == "interpreter" else ()),
                            "--password-stdin", stdin=f"pw-{username}-123\n")
    token = await login(service.url, username, f"pw-{username}-123")
    client = SignalingClient(server_urls(service.url)[1], token)
    await client.connect()
    return client


async def api_stats(service: Service, token: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(
            service.url + "/api/stats", headers={"Authorization": f"Bearer {token}"}) as resp:
        assert resp.status == 200
        body: dict[str, Any] = await resp.json()
        return body


async def last_test(redis: aioredis.Redis, kiosk_id: str) -> dict[str, Any] | None:
    raw = await redis.get(KEYS.kiosk_test(kiosk_id))
    return json.loads(raw) if raw else None


def test_the_kiosks_verdict_on_its_test_call() -> None:
    good = {"answered": True, "frames_in": 150, "audio_in": 250, "fps_in": 29.96,
            "fps_out": 30.0, "rtt_ms": 1.23, "loss_pct": 0.0, "setup_ms": 812.4}
    assert judge_test_call(good) == {"ok": True, "fps_in": 30.0, "fps_out": 30.0,
                                     "rtt_ms": 1.2, "loss_pct": 0.0, "setup_ms": 812.4}
    dark = judge_test_call({**good, "frames_in": 0, "fps_in": 0.0, "setup_ms": None})
    assert dark["ok"] is False and dark["reason"] == "no video from the bot"
    mute = judge_test_call({**good, "audio_in": 0})
    assert mute["ok"] is False and mute["reason"] == "no sound from the bot"
    nobody = judge_test_call({"answered": False, "end_reason": "no_interpreter"})
    assert nobody["ok"] is False and nobody["reason"] == "no answering bot is signed in"
    assert nobody["fps_in"] is None and nobody["setup_ms"] is None


class ScriptedClient:
    """Replies from a script; records what the kiosk sent (no network)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.welcome = {"languages": [{"code": "jsl", "name": "日本手話",
                                       "name_en": "Japanese Sign Language"}]}

    async def request(self, type_: str, **fields: Any) -> dict[str, Any]:
        self.sent.append((type_, fields))
        if type_ == "call.request":
            return {"type": "call.queued", "call_id": f"c{len(self.sent)}",
                    "language": fields["language"], "position": 1, "estimated_wait_s": 5}
        return {"type": "ack"}


async def test_windowed_kiosk_tests_quietly_and_a_tap_wins() -> None:
    client = ScriptedClient()
    session = KioskSession(client, make_tracks=list)  # type: ignore[arg-type]
    windowed = WindowedKiosk(session, Display((1280, 720), fullscreen=False,
                                              on_input=lambda _: None), None, asyncio.Queue())
    await session.handle({"type": "kiosk.test_due", "test_id": "t_1"})
    for _ in range(50):
        if client.sent:
            break
        await asyncio.sleep(0.01)
    assert client.sent == [("call.request", {"language": "test", "priority": "normal",
                                             "test_id": "t_1"})]
    windowed.publish()  # the home screen with the notice, not the waiting screen
    assert session.testing and windowed.display.view.state is ScreenState.HOME
    assert windowed.display.view.advice[0] == SELF_CHECK
    await windowed.act("language:jsl")  # a resident taps: the test ends, unreported
    assert [t for t, _ in client.sent] == ["call.request", "call.cancel", "call.request"]
    assert client.sent[1][1] == {"call_id": "c1"}
    assert client.sent[2][1] == {"language": "jsl", "priority": "normal"}
    assert not session.testing and session.test_results == []
    windowed.publish()
    assert windowed.display.view.state is ScreenState.WAITING
    # busy: a test due now is not placed
    await session.handle({"type": "kiosk.test_due", "test_id": "t_2"})
    await asyncio.sleep(0.05)
    assert len(client.sent) == 3 and not session.testing


async def test_a_stray_test_call_told_on_connect_is_hung_up() -> None:
    client = ScriptedClient()
    session = KioskSession(client, make_tracks=list)  # type: ignore[arg-type]
    await session.handle({"type": "call.connected", "call_id": "c_old", "role": "kiosk",
                          "peer": {"name": "bot", "language": "test"}, "ice_servers": []})
    await asyncio.sleep(0.05)
    assert client.sent == [("call.hangup", {"call_id": "c_old"})]
    assert session.state is ScreenState.HOME  # no call screen for it
    # a resident's call told again on connect is kept, as before
    await session.handle({"type": "call.queued", "call_id": "c_real", "language": "jsl",
                          "position": 1, "estimated_wait_s": 5})
    assert client.sent == [("call.hangup", {"call_id": "c_old"})]


async def test_scheduled_test_call_runs_at_its_time_passes_and_is_not_counted(
        loopback_only: None, svc: Service, redis: aioredis.Redis) -> None:
    token = await asyncio.to_thread(svc.add_kiosk, "k1")
    await asyncio.to_thread(svc.admin, "update-kiosk", "k1", "--test-at", "08:30")
    bot, bot_task = await start_bot(svc, "botty")
    human = await staff(svc, "hana", "interpreter")  # a person, available, who must not ring
    await human.request("presence.set", status="available")
    await asyncio.to_thread(svc.admin, "add-user", "sup", "--role", "supervisor",
                            "--password-stdin", stdin="pw-sup-123\n")
    sup_token = await login(svc.url, "sup", "pw-sup-123")
    before = await api_stats(svc, sup_token)
    kiosk = await Kiosk(svc, token).start()
    try:
        offset = await set_clock(redis, tomorrow_at(8, 29, 58))
        await asyncio.sleep(1.0)  # 08:29:59: not yet
        assert not kiosk.session.test_results and await last_test(redis, "k1") is None
        result = await kiosk.result()
        stored = await last_test(redis, "k1")
        await idle(kiosk)
        day = await redis.hgetall(KEYS.test_day("k1", tomorrow_at(8, 30).date().isoformat()))
        run = await redis.hgetall(KEYS.test_run(day["test_id"]))
        after = await api_stats(svc, sup_token)
        offers = [m for m in human.drain() if m.get("type") == "call.offer"]
        events = await redis.xrange(KEYS.events)
    finally:
        await kiosk.close()
        await human.close()
        bot_task.cancel()
    print("kiosk result:", result, "stored:", stored)
    assert result["ok"] is True, (result, svc.logs())
    assert result["fps_in"] >= MIN_FPS and result["fps_out"] >= MIN_FPS, result
    assert result["setup_ms"] is not None and 0 < result["setup_ms"] < 15_000
    assert stored is not None and stored["ok"] is True and "reason" not in stored
    assert set(stored) == {"at_ms", "ok", "fps_in", "fps_out", "rtt_ms", "loss_pct", "setup_ms"}
    assert stored["fps_in"] >= MIN_FPS and stored["fps_out"] >= MIN_FPS
    # sent at 08:30:00 on the scheduler's clock, within a tick or two
    sent_local = int(run["sent_ms"]) + offset
    assert tomorrow_at(8, 30).timestamp() * 1000 <= sent_local
    assert sent_local < tomorrow_at(8, 30, 2).timestamp() * 1000
    assert day["done"] == "1" and day["tries"] == "1" and run["source"] == "scheduled"
    assert int(run["bot_video"]) > 0 and int(run["bot_audio"]) > 0  # what the bot received
    assert [c.language for c in bot.report.calls] == ["test"]
    assert offers == []  # the human interpreter's console never rang
    # not in the statistics: offered/answered unchanged, no test language, no live call
    assert after["today"]["offered"] == before["today"]["offered"] == 0
    assert "test" not in after["today"]["by_language"]
    assert all(c["language"] != "test" for c in after["calls"])
    assert [f for _, f in events if f.get("ev") == "test"][0]["ok"] == "1"
    # and in the report's fleet rollup for that (local) day: one test, passed
    day_of = datetime.fromtimestamp(stored["at_ms"] / 1000, ZoneInfo("Asia/Tokyo")).date()
    rollup = await redis.hgetall(KEYS.fleet_day(day_of.isoformat()))
    assert (rollup.get("k1|tests"), rollup.get("k1|passed")) == ("1", "1"), rollup


async def test_kiosk_test_replies_and_a_test_now(
        loopback_only: None, svc: Service, redis: aioredis.Redis) -> None:
    token = await asyncio.to_thread(svc.add_kiosk, "k1")
    await asyncio.to_thread(svc.add_kiosk, "k2")  # never connects
    await asyncio.to_thread(svc.admin, "add-user", "sup", "--role", "supervisor",
                            "--password-stdin", stdin="pw-sup-123\n")
    sup = SignalingClient(server_urls(svc.url)[1], await login(svc.url, "sup", "pw-sup-123"))
    await sup.connect()
    kiosk = await Kiosk(svc, token).start()
    bot_task: asyncio.Task[Any] | None = None
    try:
        codes = {}
        for kiosk_id in ("nope", "k2"):
            with pytest.raises(ServerError) as err:
                await sup.request("kiosk.test", kiosk_id=kiosk_id)
            codes[kiosk_id] = err.value.code
        assert codes == {"nope": "not_found", "k2": "conflict"}
        # no answering bot signed in: the test fails, and says so
        assert (await sup.request("kiosk.test", kiosk_id="k1"))["type"] == "ack"
        failed = await kiosk.result()
        assert failed["ok"] is False and failed["reason"] == "no answering bot is signed in"
        assert (await last_test(redis, "k1") or {}).get("reason") == failed["reason"]
        kiosk.session.test_results.clear()
        await idle(kiosk)

        _bot, bot_task = await start_bot(svc, "botty")
        # in a real call (answered by the bot, whose account speaks jsl): conflict
        await kiosk.session.request_call("jsl")
        await kiosk.session.wait_for(ScreenState.IN_CALL, within_s=15)
        with pytest.raises(ServerError) as err:
            await sup.request("kiosk.test", kiosk_id="k1")
        assert err.value.code == "conflict"
        await asyncio.sleep(1.0)
        await kiosk.session.hangup()
        await kiosk.session.wait_for(ScreenState.ENDED, within_s=15)
        assert (await sup.request("kiosk.test", kiosk_id="k1"))["type"] == "ack"
        result = await kiosk.result()
        assert result["ok"] is True, (result, svc.logs())
        stored = await last_test(redis, "k1")
        assert stored is not None and stored["ok"] is True
        # the test call's own checks
        for fields, code in (({"language": "test"}, "bad_request"),
                             ({"language": "jsl", "test_id": "t_x"}, "bad_request"),
                             ({"language": "test", "test_id": "t_forged"}, "not_found")):
            with pytest.raises(ServerError) as err:
                await kiosk.client.request("call.request", **fields)
            assert err.value.code == code, fields
        with pytest.raises(ServerError) as err:
            await kiosk.client.request("kiosk.test_result", test_id="t_forged", ok=True)
        assert err.value.code == "not_found"
    finally:
        await kiosk.close()
        await sup.close()
        if bot_task is not None:
            bot_task.cancel()


async def test_kiosk_in_a_real_call_is_skipped_and_retried_after_it(
        loopback_only: None, svc: Service, redis: aioredis.Redis) -> None:
    token = await asyncio.to_thread(svc.add_kiosk, "k1")
    _bot, bot_task = await start_bot(svc, "botty")
    kiosk = await Kiosk(svc, token).start()
    day_key = KEYS.test_day("k1", tomorrow_at(8, 30).date().isoformat())
    try:
        await kiosk.session.request_call("jsl")
        await kiosk.session.wait_for(ScreenState.IN_CALL, within_s=15)
        await set_clock(redis, tomorrow_at(8, 29, 59))
        for _ in range(40):  # the scheduler skips it: one try used, a retry set
            day = await redis.hgetall(day_key)
            if day.get("tries") == "1":
                break
            await asyncio.sleep(0.1)
        assert day.get("tries") == "1" and day.get("sent_ms") == "0", day
        assert int(day["next_ms"]) > 0
        assert kiosk.session.state is ScreenState.IN_CALL and not kiosk.session.testing
        await kiosk.session.hangup()
        await kiosk.session.wait_for(ScreenState.ENDED, within_s=15)
        result = await kiosk.result(within_s=30)  # after the retry time (4 s here)
        day = await redis.hgetall(day_key)
    finally:
        await kiosk.close()
        bot_task.cancel()
    assert result["ok"] is True, result
    assert day["tries"] == "2" and day["done"] == "1"


async def test_relay_dropping_video_fails_the_test_with_the_reason(
        loopback_only: None, redis: aioredis.Redis, redis_server: RedisServer,
        request: pytest.FixtureRequest) -> None:
    logs = logdir(request)
    service = await asyncio.to_thread(start_service, redis_server, logs,
                                      TSUNAGU_TEST_RELAY_DROP="video")
    try:
        token = await asyncio.to_thread(service.add_kiosk, "k1")
        _bot, bot_task = await start_bot(service, "botty")
        kiosk = await Kiosk(service, token).start()
        try:
            await set_clock(redis, tomorrow_at(8, 29, 59))
            result = await kiosk.result()
            for _ in range(30):
                stored = await last_test(redis, "k1")
                if stored:
                    break
                await asyncio.sleep(0.1)
        finally:
            await kiosk.close()
            bot_task.cancel()
    finally:
        await asyncio.to_thread(service.stop)
    assert result["ok"] is False and "no video from the bot" in result["reason"]
    assert stored is not None and stored["ok"] is False
    assert "no video from the bot" in stored["reason"]
    assert "no video from the tablet" in stored["reason"]  # the bot's side, from test.media
    assert "TEST FAULT" in (logs / "relay.log").read_text()


async def test_unanswered_test_call_fails_in_time_with_the_reason(
        loopback_only: None, redis: aioredis.Redis, redis_server: RedisServer,
        request: pytest.FixtureRequest) -> None:
    service = await asyncio.to_thread(start_service, redis_server, logdir(request),
                                      TSUNAGU_TEST_ANSWER_S="3")
    try:
        busy_token = await asyncio.to_thread(service.add_kiosk, "k2")
        token = await asyncio.to_thread(service.add_kiosk, "k1")
        _bot, bot_task = await start_bot(service, "botty")
        busy = await Kiosk(service, busy_token).start()
        kiosk = await Kiosk(service, token).start()
        try:
            await busy.session.request_call("jsl")  # the only bot is in a real call
            await busy.session.wait_for(ScreenState.IN_CALL, within_s=15)
            await set_clock(redis, tomorrow_at(8, 29, 59))
            result = await kiosk.result(within_s=20)
            stored = await last_test(redis, "k1")
        finally:
            await kiosk.close()
            await busy.close()
            bot_task.cancel()
    finally:
        await asyncio.to_thread(service.stop)
    assert result["ok"] is False
    assert result["reason"] == "the answering bot did not answer in time"
    assert stored is not None and stored["reason"] == result["reason"]


async def test_the_kiosk_app_answers_kiosk_test_due(
        loopback_only: None, svc: Service, redis: aioredis.Redis, tmp_path: Path) -> None:
    """``python -m kiosk_client --headless`` (no --call: a screenless kiosk) is tested."""
    token_file = tmp_path / "kiosk.token"
    token_file.write_text(await asyncio.to_thread(svc.add_kiosk, "k1") + "\n")
    _bot, bot_task = await start_bot(svc, "botty")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kiosk_client", "--server", svc.url, "--token-file",
        str(token_file), "--headless", "--source", "synthetic",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        for _ in range(200):  # connected
            if await redis.exists(KEYS.client_node("k:k1")):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # past its camera and audio checks
        sup = await staff(svc, "sup", "supervisor")
        try:
            assert (await sup.request("kiosk.test", kiosk_id="k1"))["type"] == "ack"
        finally:
            await sup.close()
        stored = None
        for _ in range(400):
            stored = await last_test(redis, "k1")
            if stored:
                break
            await asyncio.sleep(0.1)
    finally:
        proc.terminate()
        _out, err = await proc.communicate()
        bot_task.cancel()
    assert stored is not None and stored["ok"] is True, (stored, err.decode()[-2000:])
    assert stored["fps_in"] >= MIN_FPS and stored["fps_out"] >= MIN_FPS
