"""Statistics and the CSV report: the fold on its own, then against a hand-counted day."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import date, datetime
from zoneinfo import ZoneInfo

import aiohttp

from signaling.ledger import Ledger, summarise
from tests.signaling.test_server import make_settings
from tests.support.stack import running
from tsunagu.redis_server import RedisServer

TZ = ZoneInfo("Asia/Tokyo")
DAY_MS = int(datetime(2026, 11, 28, 10, 0, tzinfo=TZ).timestamp() * 1000)


def ev(ms: int, seq: int, **fields: str) -> tuple[str, dict[str, str]]:
    return f"{ms}-{seq}", {"at": str(ms), **fields}


def test_ledger_counts_each_call_once_at_its_queue_exit() -> None:
    t = DAY_MS
    events = [
        ev(t, 0, ev="enqueued", call="a", lang="jsl", ward="W", counter="1"),
        ev(t + 10_000, 0, ev="answered", call="a", interp="x"),        # within 30 s
        ev(t + 70_000, 0, ev="ended", call="a", outcome="answered", reason="hangup"),
        ev(t, 1, ev="enqueued", call="b", lang="vi", ward="W", counter="2"),
        ev(t + 45_000, 0, ev="answered", call="b", interp="y"),        # 45 s: outside SL
        ev(t + 50_000, 0, ev="transferred", call="b"),
        ev(t + 80_000, 0, ev="answered", call="b", interp="z"),
        ev(t + 90_000, 0, ev="ended", call="b", outcome="answered", reason="hangup"),
        ev(t, 2, ev="enqueued", call="c", lang="jsl"),
        ev(t + 5_000, 0, ev="ended", call="c", outcome="abandoned", reason="cancelled"),
        ev(t, 3, ev="enqueued", call="d", lang="ne"),
        ev(t, 4, ev="ended", call="d", outcome="failed", reason="no_interpreter"),
    ]
    events.sort(key=lambda e: tuple(int(x) for x in e[0].split("-")))  # stream order
    ledger = Ledger()
    ledger.fold_all(events)
    ledger.fold_all(events)  # folding the same events again changes nothing
    today = summarise(ledger.records.values(), day=date(2026, 11, 28), tz=TZ,
                      service_level_s=30)
    assert (today["offered"], today["answered"], today["abandoned"], today["failed"]) == (
        4, 2, 1, 1)
    assert today["service_level_pct"] == 25.0
    assert today["asa_s"] == 27.5
    assert today["abandon_rate_pct"] == 25.0
    assert ledger.records["b"].talk_ms == 5_000 + 10_000
    by = today["by_language"]
    assert isinstance(by, dict) and by["jsl"]["offered"] == 2 and by["vi"]["answered"] == 1
    other_day = summarise(ledger.records.values(), day=date(2026, 11, 29), tz=TZ,
                          service_level_s=30)
    assert other_day["offered"] == 0 and other_day["service_level_pct"] is None


async def test_stats_and_csv_match_a_hand_count(redis_server: RedisServer, redis: object
                                                ) -> None:
    settings = make_settings(redis_server, service_level_s=0.4, stats_interval_s=0.3)
    async with running(settings) as stack:
        sup = await stack.client(await stack.add_staff("sue", "supervisor"))
        first = await sup.request("stats.subscribe")
        assert first["type"] == "stats" and first["today"]["offered"] == 0
        i = await stack.client(await stack.add_interpreter("alice", ["jsl"]))
        await i.request("presence.set", status="available")
        kiosks = [await stack.client(await stack.add_kiosk(f"k{n}")) for n in range(4)]
        # 1: answered at once
        q = await kiosks[0].request("call.request", language="jsl")
        offer = await i.next("call.offer")
        await i.request("call.accept", call_id=offer["call_id"], offer_id=offer["offer_id"])
        live = await sup.next("stats", timeout=5)
        while not any(c["call_id"] == q["call_id"] and c["state"] == "connecting"
                      for c in live["calls"]):
            live = await sup.next("stats", timeout=5)
        await i.request("call.hangup", call_id=q["call_id"])
        await i.request("presence.set", status="available")
        # 2: answered after 0.6 s (outside the 0.4 s service level)
        await i.request("presence.set", status="away")
        q2 = await kiosks[1].request("call.request", language="jsl")
        await asyncio.sleep(0.6)
        await i.request("presence.set", status="available")
        offer = await i.next("call.offer", call_id=q2["call_id"])
        await i.request("call.accept", call_id=offer["call_id"], offer_id=offer["offer_id"])
        await kiosks[1].request("call.hangup", call_id=q2["call_id"])
        await i.request("presence.set", status="away")
        # 3: abandoned; 4: failed (nobody speaks Nepali)
        q3 = await kiosks[2].request("call.request", language="jsl")
        await kiosks[2].request("call.cancel", call_id=q3["call_id"])
        await kiosks[3].request("call.request", language="ne")
        await kiosks[3].next("call.ended")
        today = (await sup.next("stats", timeout=5))["today"]
        for _ in range(20):
            if today["offered"] == 4:
                break
            today = (await sup.next("stats", timeout=5))["today"]
        assert (today["offered"], today["answered"], today["abandoned"], today["failed"]) == (
            4, 2, 1, 1)
        assert today["service_level_pct"] == 25.0 and today["abandon_rate_pct"] == 25.0
        assert 0.3 <= today["asa_s"] <= 0.6
        assert today["by_language"]["ne"]["failed"] == 1
        assert len(today["waits"]) == 2
        token = await stack.add_staff("sue2", "supervisor")
        day = datetime.now(TZ).date().isoformat()
        async with aiohttp.ClientSession() as http, http.get(
                stack.nodes[0].base_url + f"/api/calls.csv?from={day}&to={day}",
                headers={"Authorization": "Bearer " + token}) as r:
            assert r.status == 200
            rows = list(csv.reader(io.StringIO(await r.text())))
        assert rows[0][:4] == ["call_id", "ward", "counter", "language"]
        body = {row[0]: row for row in rows[1:]}
        assert len(body) == 4
        answered = body[q["call_id"]]
        assert answered[4] == "sign" and answered[10] == "answered" and answered[11] == "hangup"
        assert answered[5].endswith("+09:00") and answered[12] == "alice"
        assert body[q3["call_id"]][10] == "abandoned" and body[q3["call_id"]][6] == ""
