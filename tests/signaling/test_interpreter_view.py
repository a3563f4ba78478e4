"""The console's `queue` message: calls waiting per language, the interpreter's own calls."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from signaling.interpreter_view import queue_message
from signaling.ledger import Ledger
from tests.signaling.test_server import make_settings
from tests.support.stack import running
from tsunagu.redis_server import RedisServer

TZ = ZoneInfo("Asia/Tokyo")
T = int(datetime(2026, 11, 28, 10, 0, tzinfo=TZ).timestamp() * 1000)


def ev(ms: int, seq: int, **fields: str) -> tuple[str, dict[str, str]]:
    return f"{ms}-{seq}", {"at": str(ms), **fields}


def test_only_my_languages_and_my_calls_of_today() -> None:
    ledger = Ledger()
    ledger.fold_all([
        ev(T, 0, ev="enqueued", call="a", lang="jsl", ward="北区", counter="3"),
        ev(T + 5_000, 0, ev="answered", call="a", interp="alice"),
        ev(T + 65_000, 0, ev="ended", call="a", outcome="answered", reason="hangup"),
        ev(T + 70_000, 0, ev="enqueued", call="b", lang="en", ward="南区", counter="5"),
        ev(T + 71_000, 0, ev="answered", call="b", interp="bob"),
        ev(T + 80_000, 0, ev="enqueued", call="c", lang="en", ward="南区", counter="5"),
        ev(T + 81_000, 0, ev="answered", call="c", interp="alice"),  # still live
    ])
    snap = {"at_ms": T + 90_000, "languages": [
        {"code": "jsl", "waiting": 2, "oldest_wait_s": 40},
        {"code": "en", "waiting": 0, "oldest_wait_s": 0},
        {"code": "vi", "waiting": 7, "oldest_wait_s": 99},
    ]}
    msg = queue_message(snap, ledger.records.values(), interpreter="alice",
                        languages=["jsl", "en"], day=date(2026, 11, 28), tz=TZ)
    assert msg["languages"] == {"jsl": 2, "en": 0}  # not Vietnamese: not hers
    assert msg["oldest_wait_s"] == {"jsl": 40, "en": 0}
    calls = msg["today_calls"]
    assert [c["call_id"] for c in calls] == ["a", "c"]
    assert calls[0]["talk_s"] == 60.0 and calls[0]["ward"] == "北区"
    assert calls[1]["talk_s"] is None and calls[1]["ended_ms"] is None
    other_day = queue_message(snap, ledger.records.values(), interpreter="alice",
                              languages=["jsl"], day=date(2026, 11, 29), tz=TZ)
    assert other_day["today_calls"] == []


async def test_an_interpreter_is_told_the_queue_and_its_calls(redis_server: RedisServer,
                                                               redis: object) -> None:
    settings = make_settings(redis_server, stats_interval_s=0.3)
    async with running(settings) as stack:
        alice = await stack.client(await stack.add_interpreter("alice", ["jsl", "en"]))
        first = await alice.next("queue", timeout=5)
        assert first["languages"] == {"jsl": 0, "en": 0} and first["today_calls"] == []
        kiosk = await stack.client(await stack.add_kiosk("k1"))
        q = await kiosk.request("call.request", language="jsl")
        msg = await alice.next("queue", timeout=5)
        while msg["languages"]["jsl"] != 1:
            msg = await alice.next("queue", timeout=5)
        await alice.request("presence.set", status="available")
        offer = await alice.next("call.offer")
        await alice.request("call.accept", call_id=offer["call_id"], offer_id=offer["offer_id"])
        await kiosk.request("call.hangup", call_id=q["call_id"])
        msg = await alice.next("queue", timeout=5)
        while not (msg["today_calls"] and msg["today_calls"][0]["ended_ms"]):
            msg = await alice.next("queue", timeout=5)
        assert msg["languages"]["jsl"] == 0
        assert msg["today_calls"][0]["call_id"] == q["call_id"]
        assert "text" not in str(msg)  # nothing that was said
