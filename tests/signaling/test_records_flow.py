"""Records over real sockets: a call ends, its record is written, the kiosk rates it, the CSV
has it; the admin export and import round-trip exactly."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
import redis.asyncio as aioredis

from signaling.records import utc_day
from signaling.routing import Router, new_op_id
from tests.signaling.test_server import answered_call, make_settings
from tests.support.stack import Stack, running
from tsunagu.client import ServerError
from tsunagu.redis_keys import Keys
from tsunagu.redis_server import RedisServer

K = Keys()
TZ = ZoneInfo("Asia/Tokyo")
CLI = [sys.executable, "-m", "tsunagu", "admin"]


async def _record(redis: aioredis.Redis, call_id: str, within_s: float = 5.0
                  ) -> dict[str, Any]:
    """The call's stored record (its JSON), once a node has written it."""
    loop = asyncio.get_running_loop()
    until = loop.time() + within_s
    while loop.time() < until:
        for day in await redis.zrange(K.record_days, 0, -1):
            raw = await redis.hget(K.records(day), call_id)
            if raw:
                found: dict[str, Any] = json.loads(raw)
                return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"no record of {call_id}")


async def _csv(stack: Stack, token: str) -> dict[str, dict[str, str]]:
    day = datetime.now(TZ).date().isoformat()
    async with aiohttp.ClientSession() as http, http.get(
            stack.nodes[0].base_url + f"/api/calls.csv?from={day}&to={day}",
            headers={"Authorization": "Bearer " + token}) as r:
        assert r.status == 200
        table = list(csv.DictReader(io.StringIO(await r.text())))
    return {row["call_id"]: row for row in table}


async def test_a_finished_call_is_recorded_and_rated_once(redis_server: RedisServer,
                                                           redis: aioredis.Redis) -> None:
    async with running(make_settings(redis_server)) as stack:
        k, i, cid = await answered_call(stack)
        await i.request("call.hangup", call_id=cid)
        ended = await k.next("call.ended")
        assert ended["call_id"] == cid
        # Rated at once: the record may or may not be written yet; either way it lands.
        assert (await k.request("call.rate", call_id=cid, score=4))["type"] == "ack"
        rec = await _record(redis, cid)
        for _ in range(50):
            if rec.get("rating") == 4:
                break
            await asyncio.sleep(0.05)
            rec = await _record(redis, cid)
        assert (rec["language"], rec["modality"], rec["procedure"], rec["priority"]) == (
            "jsl", "sign", "転入届", "normal")
        assert rec["ward"] == "北区" and rec["interpreter"] == "alice" and rec["rating"] == 4
        assert rec["outcome"] == "answered" and "transferred_to" not in rec
        for score, code in ((5, "conflict"), (6, "bad_request"), (0, "bad_request")):
            with pytest.raises(ServerError) as caught:
                await k.request("call.rate", call_id=cid, score=score)
            assert caught.value.code == code
        # Another kiosk may not rate it; an interpreter may not rate at all.
        other = await stack.client(await stack.add_kiosk("k2"))
        with pytest.raises(ServerError) as caught:
            await other.request("call.rate", call_id=cid, score=3)
        assert caught.value.code == "not_found"
        with pytest.raises(ServerError) as caught:
            await i.request("call.rate", call_id=cid, score=3)
        assert caught.value.code == "forbidden"
        row = (await _csv(stack, await stack.add_staff("sue", "supervisor")))[cid]
        assert (row["rating"], row["procedure"], row["priority"], row["transferred_to"]) == (
            "4", "転入届", "normal", "")


async def test_a_test_language_call_is_never_recorded(redis_server: RedisServer,
                                                      redis: aioredis.Redis) -> None:
    settings = make_settings(redis_server)
    async with running(settings) as stack:
        router = Router(redis, settings)
        await router.interp_connect("bot", ["test"], "Bot", resumed=False)
        await router.presence("bot", "available", op=new_op_id())
        await router.enqueue(kiosk="kt", ward="W", counter="1", language="test",
                             priority="normal", procedure=None, call_id="c_test", op=new_op_id())
        offer_id = await redis.hget(K.call("c_test"), "offer_id")
        assert (await router.accept("bot", "c_test", offer_id, op=new_op_id())).ok
        assert (await router.hangup("kiosk", "kt", "c_test", op=new_op_id())).ok
        # A real call after it: once it is recorded, the writer has passed the test call's end.
        k, i, cid = await answered_call(stack)
        await i.request("call.hangup", call_id=cid)
        await _record(redis, cid)
        day = utc_day(int(datetime.now().timestamp() * 1000))
        assert await redis.hget(K.records(day), "c_test") is None
        assert "c_test" not in await _csv(stack, await stack.add_staff("sue", "supervisor"))


def _admin(redis_url: str, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "REDIS_URL": redis_url}
    return subprocess.run([*CLI, *args], input=stdin, capture_output=True, timeout=60, env=env)


async def test_export_delete_import_export_is_exact(redis_server: RedisServer,
                                                    redis: aioredis.Redis,
                                                    tmp_path: Path) -> None:
    async with running(make_settings(redis_server)) as stack:
        k, i, cid = await answered_call(stack)
        await i.request("call.hangup", call_id=cid)
        await k.next("call.ended")
        await k.request("call.rate", call_id=cid, score=5)
        q = await k.request("call.request", language="jsl", procedure="=cmd|' /C calc'!A0")
        await k.request("call.cancel", call_id=q["call_id"])
        await _record(redis, q["call_id"])
    day = datetime.now(TZ).date().isoformat()
    first = await asyncio.to_thread(_admin, redis_server.url, "export-records", "--from", day,
                                    "--to", day)
    assert first.returncode == 0, first.stderr
    assert first.stderr.decode() == "2 records exported\n"
    text = first.stdout.decode()
    assert text.startswith("call_id,ward,") and "'=cmd|" in text and ",5," in text
    out = tmp_path / "backup.csv"
    to_file = await asyncio.to_thread(_admin, redis_server.url, "export-records", "--from", day,
                                      "--to", day, "--out", str(out))
    assert to_file.returncode == 0 and out.read_bytes() == first.stdout
    for d in await redis.zrange(K.record_days, 0, -1):
        await redis.delete(K.records(d))
    empty = await asyncio.to_thread(_admin, redis_server.url, "export-records", "--from", day,
                                    "--to", day)
    assert empty.stdout.count(b"\r\n") == 1  # the header only
    imported = await asyncio.to_thread(_admin, redis_server.url, "import-records", str(out))
    assert imported.returncode == 0, imported.stderr
    assert imported.stderr.decode() == "2 records imported, 0 already present\n"
    again = await asyncio.to_thread(_admin, redis_server.url, "import-records", "-",
                                    stdin=first.stdout)
    assert again.stderr.decode() == "0 records imported, 2 already present\n"
    second = await asyncio.to_thread(_admin, redis_server.url, "export-records", "--from", day,
                                     "--to", day)
    assert second.stdout == first.stdout
    bad = await asyncio.to_thread(_admin, redis_server.url, "import-records", "-",
                                  stdin=b"call_id,ward\r\nx,y\r\n")
    assert bad.returncode == 1 and bad.stderr.count(b"\n") == 1
    assert b"Traceback" not in bad.stderr and b"no column" in bad.stderr
    worse = await asyncio.to_thread(_admin, redis_server.url, "export-records", "--from", day,
                                    "--to", "2020-01-01")
    assert worse.returncode == 1 and worse.stderr.count(b"\n") == 1


async def test_a_node_trims_events_by_age_and_keeps_their_records(
        redis_server: RedisServer, redis: aioredis.Redis) -> None:
    """Records older than the events' age limit stay in the CSV once the node's sweeper has
    trimmed those events; record days past their own limit go."""
    old_day = datetime(2026, 9, 1, 12, 0, tzinfo=TZ)
    old_ms = int(old_day.timestamp() * 1000)
    # A call of that day, as the events told it then (before any record was written).
    for seq, (ev, extra) in enumerate((
            ("enqueued", {"lang": "vi", "kiosk": "k1", "ward": "北区", "counter": "2",
                          "prio": "normal", "proc": "転入届"}),
            ("answered", {"interp": "bob"}),
            ("ended", {"outcome": "answered", "reason": "hangup", "from": "connected"}))):
        await redis.xadd(K.events, {"ev": ev, "call": "c_sept", "at": str(old_ms + seq * 60_000),
                                    **extra}, id=f"{old_ms + seq * 60_000}-0")
    await redis.xadd(K.events, {"ev": "presence", "interp": "bob", "from": "away",
                                "to": "available"})  # today: the writers pass it
    await redis.zadd(K.record_days, {"2019-01-01": 1546300800})
    await redis.hset(K.records("2019-01-01"), "c_ancient", "{}")
    async with running(make_settings(redis_server, retention_every_s=0.2)) as stack:
        # The node backfills the September call's record, then its sweeper trims by age.
        for _ in range(100):
            if await redis.xlen(K.events) == 1 and await redis.zscore(
                    K.record_days, "2019-01-01") is None:
                break
            await asyncio.sleep(0.05)
        assert await redis.xlen(K.events) == 1  # today's event is young enough
        assert not await redis.exists(K.records("2019-01-01"))
        token = await stack.add_staff("sue", "supervisor")
        async with aiohttp.ClientSession() as http, http.get(
                stack.nodes[0].base_url + "/api/calls.csv?from=2026-09-01&to=2026-09-01",
                headers={"Authorization": "Bearer " + token}) as r:
            table = list(csv.DictReader(io.StringIO(await r.text())))
    assert [(row["call_id"], row["language"], row["procedure"], row["talk_s"])
            for row in table] == [("c_sept", "vi", "転入届", "60.0")]
