"""The tablet fleet over real sockets and a real Redis (PROTOCOL.md section 14): kiosk.health
answered and stored, last seen kept while connected, everything kept across a node restart,
``GET /api/fleet`` in the section's shape, the supervisor's ``stats.fleet``, the metrics."""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
import redis.asyncio as aioredis

from signaling.accounts import Accounts
from signaling.fleet import FleetService
from signaling.fleet_rollup import load_fleet
from tests.signaling.test_server import make_settings
from tests.support.stack import running
from tsunagu import store
from tsunagu.client import ServerError
from tsunagu.fleet import DAY_MS
from tsunagu.opening_hours import OpeningHours, parse_schedule
from tsunagu.redis_server import RedisServer
from tsunagu.settings import SignalingSettings

ENTRY_KEYS = {"kiosk_id", "ward", "counter", "online", "last_seen_ms", "health", "status",
              "reasons", "last_test"}
TEST_KEYS = {"at_ms", "ok", "fps_in", "fps_out", "rtt_ms", "loss_pct", "setup_ms"}
HEALTH = {"camera": "ok", "microphone": "ok", "app": {"kind": "python", "version": "0.1.0"},
          "screen": {"w": 1280, "h": 800}, "battery": {"level_pct": 80, "charging": True},
          "network": {"rtt_ms": 18, "loss_pct": 0.5}}


def fleet_settings(redis_server: RedisServer) -> SignalingSettings:
    # Always open, so "offline" is red whatever the hour the suite runs at.
    always = OpeningHours(default=parse_schedule("Mon-Sun 00:00-24:00"))
    return replace(make_settings(redis_server), opening_hours=always, kiosk_seen_interval_s=0.3)


async def get(url: str, token: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as r:
        text = await r.text()
        return r.status, json.loads(text) if r.content_type == "application/json" else text


def by_id(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["kiosk_id"]: e for e in entries}


def check_shape(entry: dict[str, Any]) -> None:
    assert set(entry) == ENTRY_KEYS
    assert isinstance(entry["kiosk_id"], str) and isinstance(entry["ward"], str)
    assert isinstance(entry["counter"], str) and isinstance(entry["online"], bool)
    assert entry["last_seen_ms"] is None or isinstance(entry["last_seen_ms"], int)
    assert entry["status"] in ("green", "amber", "red")
    assert isinstance(entry["reasons"], list) and all(isinstance(r, str) for r in entry["reasons"])
    assert (entry["status"] == "green") == (entry["reasons"] == [])
    assert entry["last_test"] is None or set(entry["last_test"]) >= TEST_KEYS


async def test_health_is_acked_stored_rated_and_kept_across_a_restart(
        redis_server: RedisServer, redis: aioredis.Redis) -> None:
    settings = fleet_settings(redis_server)
    async with running(settings) as stack:
        base = stack.nodes[0].base_url
        k1_token = await stack.add_kiosk("k1", ward="北区", counter="3")
        await stack.add_kiosk("k2", ward="南区", counter="5")  # never connects
        short = Accounts(redis, replace(settings, kiosk_token_ttl_s=12 * 86400 + 60))
        k3_token = await short.add_kiosk("k3", ward="北区", counter="1")
        sup = await stack.add_staff("sup", "supervisor")
        interp = await stack.add_interpreter("alice", ["jsl"])

        k1 = await stack.client(k1_token)
        before = int(time.time() * 1000)
        reply = await k1.request("kiosk.health", **HEALTH)
        assert reply["type"] == "ack"
        stored = json.loads(await redis.get(settings.keys.kiosk_health("k1")))
        assert stored == {**HEALTH, "at_ms": stored["at_ms"]} and stored["at_ms"] >= before

        # malformed reports and other roles are refused, and change nothing
        for bad in ({**HEALTH, "camera": "broken"}, {**HEALTH, "app": {"kind": "web"}},
                    {**HEALTH, "battery": {"level_pct": 101, "charging": False}}):
            with pytest.raises(ServerError) as err:
                await k1.request("kiosk.health", **bad)
            assert err.value.code == "bad_request"
        i = await stack.client(interp)
        with pytest.raises(ServerError) as err:
            await i.request("kiosk.health", **HEALTH)
        assert err.value.code == "forbidden"
        assert json.loads(await redis.get(settings.keys.kiosk_health("k1"))) == stored

        # supervisors and admins only
        assert (await get(base + "/api/fleet"))[0] == 401
        assert (await get(base + "/api/fleet", interp))[0] == 403
        status, fleet = await get(base + "/api/fleet", sup)
        assert status == 200 and isinstance(fleet, list)
        for e in fleet:
            check_shape(e)
        entries = by_id(fleet)
        assert set(entries) == {"k1", "k2", "k3"}
        assert entries["k1"]["status"] == "green" and entries["k1"]["online"] is True
        assert entries["k1"]["health"] == stored and entries["k1"]["last_test"] is None
        assert entries["k2"]["status"] == "red" and entries["k2"]["online"] is False
        assert entries["k2"]["reasons"] == ["一度も接続していません / never connected",
                                            "状態の報告がまだありません / no health report yet"]
        # the token's expiry was kept with the kiosk at add-kiosk
        exp = int(await redis.hget(settings.keys.kiosk("k3"), "token_exp_ms"))
        assert abs(exp - (time.time() * 1000 + 12 * DAY_MS)) < 120_000
        assert "token expires in 13 days: rotate it" in entries["k3"]["reasons"][-1]
        assert [e["status"] for e in fleet] == ["red", "red", "green"]  # red first

        # a new report shows within 5 s (it is read as stored: at once)
        k3 = await stack.client(k3_token)
        await k3.request("kiosk.health", **{**HEALTH, "camera": "dark", "app": {
            "kind": "web", "version": "1.1"}})
        started = time.monotonic()
        while True:
            k3_entry = by_id((await get(base + "/api/fleet", sup))[1])["k3"]
            if "カメラが暗すぎます / camera too dark" in k3_entry["reasons"]:
                break
            assert time.monotonic() - started < 5
            await asyncio.sleep(0.1)
        assert k3_entry["status"] == "amber" and k3_entry["online"] is True

        # the test call's result (written by the test-call side) is read and rated
        failed = {"at_ms": before, "ok": False, "fps_in": 30, "fps_out": 0, "rtt_ms": 20,
                  "loss_pct": 0, "setup_ms": 1500, "reason": "no_video_from_kiosk"}
        await redis.set(settings.keys.kiosk_test("k1"), json.dumps(failed))
        await redis.set(settings.keys.kiosk_test("k3"), json.dumps({**failed, "ok": True,
                                                                    "fps_out": 30}))
        k1_entry = by_id((await get(base + "/api/fleet", sup))[1])["k1"]
        assert k1_entry["status"] == "red" and k1_entry["last_test"] == failed
        assert k1_entry["reasons"] == [
            "テスト通話に失敗しました: タブレットからの映像が届きません / "
            "test call failed: no video from the tablet"]

        # while connected, the node marks the kiosk seen without any message from it
        seen = by_id((await get(base + "/api/fleet", sup))[1])["k1"]["last_seen_ms"]
        for _ in range(100):  # touched every 0.3 s here; a loaded machine may be slower
            await asyncio.sleep(0.1)
            if by_id((await get(base + "/api/fleet", sup))[1])["k1"]["last_seen_ms"] > seen:
                break
        assert by_id((await get(base + "/api/fleet", sup))[1])["k1"]["last_seen_ms"] > seen

        # the supervisor's stats carry the same list as fleet (and which wards are open)
        s = await stack.client(sup)
        snap = await s.request("stats.subscribe")
        api = (await get(base + "/api/fleet", sup))[1]
        strip = [{**e, "last_seen_ms": None} for e in api]  # the touch may move it between
        assert [{**e, "last_seen_ms": None} for e in snap["fleet"]] == strip
        assert snap["fleet_open"] == {"北区": True, "南区": True}

        # Prometheus
        status, text = await get(base + "/metrics")
        assert status == 200
        assert 'tsunagu_kiosks{status="red"} 2' in text
        assert 'tsunagu_kiosks{status="amber"} 1' in text
        assert 'tsunagu_kiosks{status="green"} 0' in text
        assert 'tsunagu_kiosk_test_ok{kiosk="k1"} 0' in text
        assert 'tsunagu_kiosk_test_ok{kiosk="k3"} 1' in text
        assert 'kiosk="k2"' not in text  # no test, no series
        assert re.search(r"# TYPE tsunagu_kiosks gauge", text)

        await k1.close()
        for _ in range(100):
            closed_at = by_id((await get(base + "/api/fleet", sup))[1])["k1"]
            if not closed_at["online"]:
                break
            await asyncio.sleep(0.1)
        assert closed_at["online"] is False and closed_at["last_seen_ms"] >= seen

    # A new node on the same Redis (a restart): reports, last seen and tests are all there.
    async with running(settings) as stack:
        base = stack.nodes[0].base_url
        sup = await stack.add_staff("sup", "supervisor")
        entries = by_id((await get(base + "/api/fleet", sup))[1])
        assert entries["k1"]["health"] == stored
        assert entries["k1"]["last_seen_ms"] == closed_at["last_seen_ms"]
        assert entries["k1"]["last_test"] == failed
        assert entries["k3"]["health"]["camera"] == "dark"
        assert entries["k1"]["status"] == "red" and entries["k1"]["online"] is False
        assert re.fullmatch(r"(\d\d/\d\d )?\d\d:\d\d から接続がありません（開庁時間中） / "
                            r"not seen since (\d\d/\d\d )?\d\d:\d\d during opening hours",
                            entries["k1"]["reasons"][0])


async def test_availability_is_sampled_once_a_minute_for_the_report(
        redis_server: RedisServer, redis: aioredis.Redis) -> None:
    """Each minute of opening hours counts once per kiosk (whichever node claims it), as up
    time only while the kiosk is connected: the report's availability per kiosk."""
    settings = fleet_settings(redis_server)
    async with running(settings) as stack:
        k1_token = await stack.add_kiosk("k1", ward="北区", counter="3")
        await stack.add_kiosk("k2", ward="南区", counter="5")  # never connects
        await stack.client(k1_token)
        service = FleetService(store.connect(redis_server.url), settings)
        # a minute long past, so the nodes' own sampler (which claims the current minute)
        # cannot have counted it
        at = int(datetime(2026, 11, 2, 10, 0, 30, tzinfo=ZoneInfo(settings.timezone))
                 .timestamp() * 1000)
        assert await service.sample_availability(at) == 2
        assert await service.sample_availability(at + 20_000) == 0  # the same minute
        assert await service.sample_availability(at + 60_000) == 2
        month = {m.kiosk: m for m in await load_fleet(redis, settings.keys,
                                                      [date(2026, 11, 2)])}
        assert (month["k1"].open_s, month["k1"].up_s) == (120, 120)
        assert (month["k2"].open_s, month["k2"].up_s) == (120, 0)
        assert month["k1"].availability_pct == 100.0 and month["k2"].availability_pct == 0.0
        assert month["k1"].ward == "北区"
        await service.redis.aclose()
