"""The kiosks' test calls (PROTOCOL.md section 14, docs/testcall.md): the daily scheduler,
``kiosk.test``, the test call's request, the bot's report and the kiosk's result.

Every signaling node runs the scheduler. For each kiosk whose test time has come it reads the
day's state and the kiosk's, decides (``signaling.test_rules.decide``, pure) and claims the
decision with a compare-and-set on the day's version: only the node whose write lands acts,
so a kiosk gets one ``kiosk.test_due`` however many nodes there are.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from signaling.bus import Bus
from signaling.fleet_rollup import add_test_result
from signaling.test_rules import (
    Action,
    DayState,
    KioskNow,
    Rules,
    decide,
    parse_hhmm,
    verdict,
)
from tsunagu.languages import TEST_LANGUAGE
from tsunagu.protocol import ErrorCode, KioskTestResult, ProtocolError, TestMedia, now_ms
from tsunagu.server_messages import KioskTestDue, server_message_fields
from tsunagu.settings import SignalingSettings
from tsunagu.store import REDIS_ERRORS, RedisClient, stop_if_cancelled

log = logging.getLogger(__name__)

DAY_TTL_S = 2 * 86400
RUN_TTL_S = 3600
BOT_REPORT_WAIT_S = 3.0  # a kiosk's result may overtake the bot's last report by a moment

# KEYS[1] = a kiosk's day state; ARGV[1] = the version read, ARGV[2] = TTL s, ARGV[3..] =
# field, value pairs. Writes (and bumps the version) only if nobody changed it since.
_CLAIM = """
local v = redis.call('HGET', KEYS[1], 'ver') or '0'
if v ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'ver', tostring(tonumber(v) + 1), unpack(ARGV, 3))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""


def new_test_id() -> str:
    return "t_" + secrets.token_hex(12)


@dataclass(frozen=True, slots=True)
class Due:
    """A kiosk the scheduler looks at this tick."""

    kiosk_id: str
    test_at: str
    added_ms: int


class TestCalls:
    """Test calls for one signaling node."""

    __test__ = False  # not a pytest class

    def __init__(self, redis: RedisClient, settings: SignalingSettings, bus: Bus) -> None:
        self.redis = redis
        self.settings = settings
        self.keys = settings.keys
        self.bus = bus
        self.tz = ZoneInfo(settings.timezone)
        self.rules = Rules(days=settings.test_days, retry_s=settings.test_retry_s,
                           max_tries=settings.test_max_tries,
                           result_timeout_s=settings.test_result_timeout_s)
        self._claim = redis.register_script(_CLAIM)

    # -- the clock -----------------------------------------------------------
    async def clock_ms(self) -> int:
        """The scheduler's time: the wall clock, plus (TSUNAGU_TEST_CLOCK=1, tests only) the
        offset a test wrote in ``Keys.test_clock``."""
        now = now_ms()
        if self.settings.test_clock:
            now += int(await self.redis.get(self.keys.test_clock) or 0)
        return now

    # -- the scheduler -------------------------------------------------------
    async def run(self) -> None:
        """Look at every kiosk each ``test_tick_s``, for as long as the node runs."""
        while True:
            try:
                await self.tick()
            except REDIS_ERRORS as exc:
                stop_if_cancelled()
                log.warning("test calls: redis unavailable (%s)", type(exc).__name__)
            except Exception:  # one bad kiosk record must not stop every kiosk's tests
                stop_if_cancelled()
                log.exception("test calls: scheduler pass failed")
            await asyncio.sleep(self.settings.test_tick_s)

    async def tick(self) -> None:
        """One pass: decide for each kiosk whose test time has come today, and act."""
        now = await self.clock_ms()
        local = datetime.fromtimestamp(now / 1000, self.tz)
        day = local.date().isoformat()
        for due in await self._due(local):
            await self._one(due, local, day)

    async def _due(self, local: datetime) -> list[Due]:
        ids = []
        prefix = self.keys.kiosk("")
        async for key in self.redis.scan_iter(match=self.keys.kiosk("*"), count=500):
            ids.append(key[len(prefix):])
        pipe = self.redis.pipeline(transaction=False)
        for kiosk_id in ids:
            pipe.hmget(self.keys.kiosk(kiosk_id), "test_at", "revoked", "added_ms")
        out = []
        for kiosk_id, (test_at, revoked, added) in zip(ids, await pipe.execute(), strict=True):
            test_at = test_at or self.settings.test_at
            if revoked != "1" and local.time() >= parse_hhmm(test_at):
                out.append(Due(kiosk_id, test_at, int(added or 0)))
        return out

    async def kiosk_now(self, kiosk_id: str) -> KioskNow:
        """Whether the kiosk is connected, and in a real call or a test call."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.exists(self.keys.client_node("k:" + kiosk_id))
        pipe.get(self.keys.kiosk_call(kiosk_id))
        online, call_id = await pipe.execute()
        language = await self.redis.hget(self.keys.call(call_id), "language") if call_id else None
        testing = language == TEST_LANGUAGE
        return KioskNow(online=bool(online), in_real_call=bool(call_id) and not testing,
                        in_test_call=testing)

    async def _one(self, due: Due, local: datetime, day: str) -> None:
        key = self.keys.test_day(due.kiosk_id, day)
        raw = await self.redis.hgetall(key)
        state = DayState.from_redis(raw)
        if state.done:
            return
        kiosk = await self.kiosk_now(due.kiosk_id)
        d = decide(local, parse_hhmm(due.test_at), state, kiosk, self.rules,
                   new_test_id=new_test_id(), added_ms=due.added_ms)
        if d.state == state and d.action is Action.WAIT:
            return
        args = [k for pair in d.state.to_redis().items() for k in pair]
        if not await self._claim(keys=[key], args=[raw.get("ver", "0"), DAY_TTL_S, *args]):
            return  # another node acted first
        if d.action is not Action.WAIT:
            log.info("kiosk %s: test %s (%s, try %d)", due.kiosk_id, d.action, d.why,
                     d.state.tries)
        if d.action is Action.SEND:
            await self._send(due.kiosk_id, d.state.test_id, "scheduled", day)
        elif d.action is Action.LOST:
            await self._store(due.kiosk_id, state.test_id, {
                "at_ms": now_ms(), "ok": False, "fps_in": None, "fps_out": None,
                "rtt_ms": None, "loss_pct": None, "setup_ms": None,
                "reason": "the tablet did not report its test call"})

    async def _send(self, kiosk_id: str, test_id: str, source: str, day: str = "") -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.keys.test_run(test_id), mapping={
            "kiosk": kiosk_id, "source": source, "day": day, "sent_ms": now_ms()})
        pipe.expire(self.keys.test_run(test_id), RUN_TTL_S)
        await pipe.execute()
        await self.bus.deliver("k:" + kiosk_id, server_message_fields(
            KioskTestDue(test_id=test_id)))

    # -- kiosk.test ----------------------------------------------------------
    async def test_now(self, kiosk_id: str, rid: str | None) -> None:
        """A supervisor's ``kiosk.test``: test that kiosk now, or say why not."""
        kiosk = await self.redis.hmget(self.keys.kiosk(kiosk_id), "ward", "revoked")
        if kiosk[0] is None or kiosk[1] == "1":
            raise ProtocolError(ErrorCode.NOT_FOUND, "no such kiosk", rid)
        now = await self.kiosk_now(kiosk_id)
        if not now.online:
            raise ProtocolError(ErrorCode.CONFLICT, "the kiosk is offline", rid)
        if now.in_real_call:
            raise ProtocolError(ErrorCode.CONFLICT, "the kiosk is in a call", rid)
        if now.in_test_call:
            return  # being tested already: its result is on the way
        test_id = new_test_id()
        log.info("kiosk %s: test %s asked for now", kiosk_id, test_id)
        await self._send(kiosk_id, test_id, "manual")

    # -- the test call -------------------------------------------------------
    async def check_request(self, kiosk_id: str, test_id: str, rid: str | None) -> None:
        """A ``call.request`` for language ``test`` must name a test sent to this kiosk."""
        if await self.redis.hget(self.keys.test_run(test_id), "kiosk") != kiosk_id:
            raise ProtocolError(ErrorCode.NOT_FOUND, "no such test for this kiosk", rid)

    async def bind(self, test_id: str, call_id: str) -> None:
        """The test's call: the call knows its test, the test its call."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.keys.call(call_id), "test_id", test_id)
        pipe.hset(self.keys.test_run(test_id), mapping={"call_id": call_id,
                                                        "requested_ms": now_ms()})
        await pipe.execute()

    async def bot_media(self, interp_id: str, m: TestMedia) -> None:
        """The answering bot's ``test.media``: keep what it has received on the test."""
        call = await self.redis.hmget(self.keys.call(m.call_id), "interpreter", "test_id")
        if call[0] is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, "no such call", m.rid)
        if call[0] != interp_id:
            raise ProtocolError(ErrorCode.FORBIDDEN, "this call is not yours", m.rid)
        if not call[1]:
            raise ProtocolError(ErrorCode.CONFLICT, "this is not a test call", m.rid)
        await self.redis.hset(self.keys.test_run(call[1]), mapping={
            "bot_video": int(m.video_frames), "bot_audio": int(m.audio_frames),
            "bot_fps": round(m.fps_in or 0.0, 1), "bot_at_ms": now_ms()})

    async def result(self, kiosk_id: str, m: KioskTestResult) -> dict[str, Any]:
        """The kiosk's ``kiosk.test_result``: judge it with the bot's report, store it as the
        kiosk's ``last_test`` and close the day's scheduled test."""
        key = self.keys.test_run(m.test_id)
        run = await self.redis.hgetall(key)
        if run.get("kiosk") != kiosk_id:
            raise ProtocolError(ErrorCode.NOT_FOUND, "no such test for this kiosk", m.rid)
        if m.ok and "bot_video" not in run and run.get("call_id"):
            for _ in range(int(BOT_REPORT_WAIT_S / 0.1)):
                await asyncio.sleep(0.1)
                run = await self.redis.hgetall(key)
                if "bot_video" in run:
                    break
        last = verdict({"ok": m.ok, "fps_in": m.fps_in, "fps_out": m.fps_out,
                        "rtt_ms": m.rtt_ms, "loss_pct": m.loss_pct, "setup_ms": m.setup_ms,
                        "reason": m.reason}, run, at_ms=now_ms())
        await self._store(kiosk_id, m.test_id, last, run)
        if run.get("source") == "scheduled" and run.get("day"):
            day_key = self.keys.test_day(kiosk_id, run["day"])
            pipe = self.redis.pipeline(transaction=True)
            pipe.hincrby(day_key, "ver", 1)
            pipe.hset(day_key, mapping={"done": "1", "sent_ms": "0"})
            pipe.expire(day_key, DAY_TTL_S)
            await pipe.execute()
        return last

    async def _store(self, kiosk_id: str, test_id: str, last: dict[str, Any],
                     run: dict[str, str] | None = None) -> None:
        """Write the kiosk's ``last_test`` and a ``test`` event (never a call event: the
        statistics never see it)."""
        fields = {"ev": "test", "at": str(last["at_ms"]), "kiosk": kiosk_id, "test": test_id,
                  "ok": "1" if last["ok"] else "0",
                  "source": (run or {}).get("source", "scheduled")}
        for name in ("fps_in", "fps_out", "rtt_ms", "loss_pct", "setup_ms", "reason"):
            if last.get(name) is not None:
                fields[name] = str(last[name])
        if run and run.get("bot_fps"):
            fields["bot_fps_in"] = run["bot_fps"]
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(self.keys.kiosk_test(kiosk_id), json.dumps(last, separators=(",", ":")))
        pipe.hset(self.keys.test_run(test_id), "reported", "1")
        pipe.xadd(self.keys.events, fields, maxlen=self.settings.events_max_entries,
                  approximate=True)
        await pipe.execute()
        # the monthly report's pass rate per kiosk (signaling/fleet_rollup.py)
        day = datetime.fromtimestamp(last["at_ms"] / 1000, self.tz)
        await add_test_result(self.redis, self.keys, day.date(), kiosk_id,
                              passed=bool(last["ok"]))
        log.info("kiosk %s: test %s %s%s", kiosk_id, test_id, "passed" if last["ok"] else
                 "FAILED", f" ({last['reason']})" if last.get("reason") else "")
