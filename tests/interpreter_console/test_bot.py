"""The answering bot (media=False) against a real signaling node, relay and Redis."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import pytest

from interpreter_console.bot import AnsweringBot, parse_args
from tests.support.service import Service
from tsunagu.client import SignalingClient
from tsunagu.settings import BotSettings


async def kiosk(service: Service, kiosk_id: str) -> SignalingClient:
    token = await asyncio.to_thread(service.add_kiosk, kiosk_id)
    client = SignalingClient(service.url.replace("http", "ws", 1) + "/ws", token)
    await client.connect()
    return client


def bot(service: Service, username: str, **overrides: Any) -> AnsweringBot:
    config: dict[str, Any] = {"server": service.url, "username": username,
                              "password": f"pw-{username}-123", "media": False,
                              "talk_s": 1.0, "wrapup_s": 0.0}
    config.update(overrides)
    return AnsweringBot(BotSettings(**config))


async def test_bot_answers_talks_hangs_up_and_answers_again(service: Service) -> None:
    await asyncio.to_thread(service.add_interpreter, "b1", "pw-b1-123", "vi")
    b1 = bot(service, "b1", max_calls=2)
    task = asyncio.create_task(b1.run())
    await asyncio.wait_for(b1.ready.wait(), 15)
    k = await kiosk(service, "k1")
    try:
        for _ in range(2):
            queued = await k.request("call.request", language="vi")
            connected = await k.next("call.connected", call_id=queued["call_id"], timeout=15)
            assert connected["peer"]["language"] == "vi"
            ended = await k.next("call.ended", call_id=queued["call_id"], timeout=15)
            assert ended["reason"] == "hangup"  # the bot hung up after its talk time
            assert 0.8 <= ended.get("duration_s", 1.0) < 5
        report = await asyncio.wait_for(task, 20)
    finally:
        await k.close()
    assert [c.end_reason for c in report.calls] == ["hangup", "hangup"]
    assert report.calls[0].ward == "Kita" and report.calls[0].media is None
    assert report.offers == 2 and report.declined == 0


async def test_a_declining_bot_passes_the_call_to_the_next(service: Service) -> None:
    for name in ("picky", "keen"):
        await asyncio.to_thread(service.add_interpreter, name, f"pw-{name}-123", "en")
    picky = bot(service, "picky", decline_rate=1.0)
    picky_task = asyncio.create_task(picky.run())
    await asyncio.wait_for(picky.ready.wait(), 15)
    k = await kiosk(service, "k2")
    keen_task: asyncio.Task[Any] | None = None
    try:
        queued = await k.request("call.request", language="en")
        for _ in range(100):  # picky is offered the call and declines it
            if picky.report.declined:
                break
            await asyncio.sleep(0.05)
        assert picky.report.declined == 1
        keen = bot(service, "keen", talk_s=None, max_calls=1)  # waits for the kiosk
        keen_task = asyncio.create_task(keen.run())
        await k.next("call.connected", call_id=queued["call_id"], timeout=15)
        await k.request("call.hangup", call_id=queued["call_id"])
        report = await asyncio.wait_for(keen_task, 15)
    finally:
        picky_task.cancel()
        await k.close()
    assert report.calls[0].call_id == queued["call_id"]
    assert report.calls[0].ended_by in (None, "kiosk")
    assert picky.report.calls == []


async def test_many_bots_in_one_process_answer_many_calls(service: Service) -> None:
    n = 6
    for i in range(n):
        await asyncio.to_thread(service.add_interpreter, f"m{i}", f"pw-m{i}-123", "zh")
    bots = [bot(service, f"m{i}", max_calls=1, talk_s=1.5) for i in range(n)]
    tasks = [asyncio.create_task(b.run()) for b in bots]
    await asyncio.wait_for(asyncio.gather(*(b.ready.wait() for b in bots)), 20)
    kiosks = [await kiosk(service, f"mk{i}") for i in range(n)]
    try:
        calls = await asyncio.gather(*(k.request("call.request", language="zh") for k in kiosks))
        ends = await asyncio.gather(*(k.next("call.ended", call_id=c["call_id"], timeout=20)
                                      for k, c in zip(kiosks, calls, strict=True)))
        reports = await asyncio.wait_for(asyncio.gather(*tasks), 20)
    finally:
        for k in kiosks:
            await k.close()
    assert [e["reason"] for e in ends] == ["hangup"] * n
    answered = sorted(r.calls[0].call_id for r in reports)
    assert answered == sorted(c["call_id"] for c in calls)  # each call answered exactly once


def test_command_line_reads_the_bot_settings() -> None:
    args = parse_args(["--server", "http://127.0.0.1:1", "--username", "u", "--password-stdin",
                       "--no-media", "--talk", "0", "--decline-rate", "0.5", "--calls", "3"])
    assert args.no_media and args.talk == 0 and args.decline_rate == 0.5 and args.calls == 3


async def test_bot_command_line_answers_and_prints_its_report(service: Service) -> None:
    await asyncio.to_thread(service.add_interpreter, "cli", "pw-cli-123", "ko")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "interpreter_console.bot", "--server", service.url,
        "--username", "cli", "--password-stdin", "--no-media", "--talk", "0.5", "--calls", "1",
        "--wrapup", "0", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(b"pw-cli-123\n")
    await proc.stdin.drain()
    proc.stdin.close()
    k = await kiosk(service, "kc")
    try:
        for _ in range(100):  # until the bot is logged in and available
            queued = await k.request("call.request", language="ko")
            ended_or_connected = await k.next("call.connected", "call.ended",
                                              call_id=queued["call_id"], timeout=15)
            if ended_or_connected["type"] == "call.connected":
                break
            await asyncio.sleep(0.2)  # no_interpreter: the bot was not logged in yet
        out, err = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        await k.close()
    assert proc.returncode == 0, err.decode()
    report = json.loads(out)
    assert [c["call_id"] for c in report["calls"]] == [queued["call_id"]]
    assert report["calls"][0]["end_reason"] == "hangup"


async def test_a_media_call_hands_its_freed_memory_back_after_the_leg_closes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A bot answers calls all day: after each call's media is closed it releases the C
    heap's free pages (bench/bot_memory.py: without it about 3-5 MB more resident a call)."""
    import interpreter_console.bot as bot_module
    from interpreter_console.bot import CallRecord

    events: list[str] = []

    class FakeLeg:
        tracks: list[Any] = []
        video = audio = None

        async def start(self) -> None:
            events.append("start")

        async def close(self) -> None:
            events.append("close")

        def summary(self) -> dict[str, Any]:
            return {}

    class FakeClient:
        async def next(self, *types: str, **kw: Any) -> dict[str, Any]:
            return {"type": "call.ended", "reason": "hangup", "by": "kiosk"}

    b = AnsweringBot(BotSettings(server="http://127.0.0.1:9", username="m", password="p",
                                 media=True, talk_s=None))
    b.client = FakeClient()  # type: ignore[assignment]
    monkeypatch.setattr(b, "_media_leg", lambda connected: FakeLeg())
    monkeypatch.setattr(bot_module, "release_free_heap", lambda: events.append("release"))
    record = CallRecord(call_id="c1", language="ko", ward=None, counter=None, waited_s=None)
    await b._talk({"type": "call.connected", "call_id": "c1"}, record)
    assert events == ["start", "close", "release"]
    assert record.end_reason == "hangup"
