"""Live statistics for supervisors and queue positions for waiting kiosks.

Each node follows the events stream: that is both the change signal and the
data folded into today's numbers (see ``ledger``), and each finished call's
record is written as its end is folded (see ``recorder``). The live part of a
snapshot (queues, interpreters, calls) is read from the routing keys.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from signaling.fleet import FleetService
from signaling.ledger import Ledger, summarise
from signaling.recorder import Recorder
from signaling.report import day_start_ms
from signaling.wait_estimate import WaitEstimate, answer_rate, estimate_wait, ring_allowance_s
from tsunagu.languages import TEST_LANGUAGE, Language
from tsunagu.protocol import now_ms
from tsunagu.settings import SignalingSettings
from tsunagu.states import LIVE_CALL_STATES, WAITING_CALL_STATES, InterpreterState
from tsunagu.store import REDIS_ERRORS, RedisClient, stop_if_cancelled

log = logging.getLogger(__name__)
STATES = tuple(s.value for s in InterpreterState if s is not InterpreterState.OFFLINE)
DEFAULT_HANDLE_S = 180.0


async def live_state(redis: RedisClient, settings: SignalingSettings,
                     catalogue: tuple[Language, ...]) -> dict[str, Any]:
    """Queues, interpreters and live calls as they are in Redis now."""
    keys = settings.keys
    call_ids = sorted(await redis.smembers(keys.live_calls))
    interp_ids = sorted(await redis.smembers(keys.interpreters))
    pipe = redis.pipeline(transaction=False)
    for cid in call_ids:
        pipe.hgetall(keys.call(cid))
        pipe.get(keys.quality(cid))
    for iid in interp_ids:
        pipe.hgetall(keys.interp(iid))
    raw = await pipe.execute()
    calls = [_call_entry(raw[2 * i], raw[2 * i + 1]) for i in range(len(call_ids))]
    interps = [_interp_entry(iid, h) for iid, h in zip(interp_ids, raw[2 * len(call_ids):],
                                                       strict=True)]
    now = now_ms()
    languages = []
    for lang in catalogue:
        queued = [c for c in calls if c and c["language"] == lang.code
                  and c["state"] in WAITING_CALL_STATES]
        entry: dict[str, Any] = {"code": lang.code, "waiting": len(queued),
                                 "oldest_wait_s": round(max(
                                     ((now - c["enqueued_ms"]) / 1000 for c in queued),
                                     default=0.0), 1)}
        for state in STATES:
            entry[state] = sum(1 for i in interps if i["state"] == state
                               and lang.code in i["languages"])
        languages.append(entry)
    # A test call (PROTOCOL.md section 14) is in no queue display nor the live calls.
    return {"languages": languages, "interpreters": [i for i in interps if i["state"]],
            "calls": [c for c in calls if c and c["language"] != TEST_LANGUAGE]}


def _call_entry(h: dict[str, str], quality: str | None) -> dict[str, Any] | None:
    if not h or h.get("state") not in LIVE_CALL_STATES:
        return None
    entry: dict[str, Any] = {
        "call_id": h["id"], "state": h["state"], "language": h.get("language", ""),
        "ward": h.get("ward", ""), "counter": h.get("counter", ""),
        "priority": h.get("priority", "normal"), "enqueued_ms": int(h.get("enqueued_ms", 0)),
    }
    if h.get("interpreter"):
        entry["interpreter"] = h["interpreter"]
    if h.get("answered_ms"):
        entry["answered_ms"] = int(h["answered_ms"])
    if quality:
        try:
            entry["quality"] = summarise_quality(json.loads(quality))
        except (ValueError, TypeError, AttributeError, KeyError):
            log.warning("call %s: unreadable quality report", entry["call_id"])
    return entry


def summarise_quality(report: dict[str, Any]) -> dict[str, Any]:
    """The relay's per-leg report plus the worst leg's fps, RTT and loss at the top level."""
    legs = report.get("legs") or {}
    fps = [leg["fps_in"] for leg in legs.values() if leg.get("fps_in") is not None]
    rtt = [leg["rtt_ms"] for leg in legs.values() if leg.get("rtt_ms") is not None]
    loss = [leg["loss_pct"] for leg in legs.values() if leg.get("loss_pct") is not None]
    return {**report, "fps": min(fps) if fps else None, "rtt_ms": max(rtt) if rtt else None,
            "loss_pct": max(loss) if loss else None, "flags": report.get("flags", [])}


def _interp_entry(iid: str, h: dict[str, str]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": iid, "name": h.get("name", iid), "state": h.get("state", ""),
        "languages": [x for x in h.get("languages", "").split(",") if x and x != TEST_LANGUAGE],
        "since_ms": int(h.get("since_ms", 0)), "connected": h.get("connected") == "1",
    }
    if h.get("call_id"):
        entry["call_id"] = h["call_id"]
    if h.get("until_ms"):
        entry["until_ms"] = int(h["until_ms"])
    return entry


Push = Callable[[dict[str, Any]], Awaitable[None]]


class StatsService:
    """Follows events; keeps today's ledger; pushes snapshots to subscribers on change."""

    def __init__(self, redis: RedisClient, blocking: RedisClient, settings: SignalingSettings,
                 catalogue: tuple[Language, ...]) -> None:
        self.redis = redis
        self.blocking = blocking
        self.settings = settings
        self.catalogue = catalogue
        self.tz = ZoneInfo(settings.timezone)
        self.ledger = Ledger()
        self.recorder = Recorder(redis, settings.keys, catalogue)
        self.subscribers: dict[int, Push] = {}
        # Pushed once per interval only, never per change: interpreters' consoles (`queue`),
        # many more than supervisors, need no faster view of the queues.
        self.watchers: dict[int, Push] = {}
        # Called with the (event, call id) pairs of each batch of routing events.
        self.on_change: list[Callable[[list[tuple[str, str]]], Awaitable[None]]] = []
        # The tablet fleet, carried in the snapshot as ``fleet`` (PROTOCOL.md section 14).
        self.fleet: FleetService | None = None

    def wait_estimate(self, language: str, position: int, available: int,
                      serving: float) -> WaitEstimate:
        """The wait to show a call at ``position``, from the interpreters serving its language
        and what this node's ledger measured of recent calls (signaling/wait_estimate.py)."""
        ledger, s = self.ledger, self.settings
        return estimate_wait(
            position, available, serving, ledger.recent_handle_s(DEFAULT_HANDLE_S) + s.wrapup_s,
            ring_s=s.offer_timeout_s,
            measured_rate=answer_rate(ledger.recent_answers.get(language, []), now_ms()),
            answer_s=ring_allowance_s(ledger.recent_rings_ms))

    def today(self) -> dict[str, Any]:
        day = datetime.now(self.tz).date()
        return summarise(self.ledger.records.values(), day=day, tz=self.tz,
                         service_level_s=self.settings.service_level_s)

    async def snapshot(self, *, fleet: bool = True) -> dict[str, Any]:
        """The full ``stats`` payload (without the fleet when only interpreters' consoles,
        which do not show it, are to be told)."""
        live = await live_state(self.redis, self.settings, self.catalogue)
        snap = {"at_ms": now_ms(), **live, "today": self.today()}
        if fleet and self.fleet is not None:
            snap["fleet"] = await self.fleet.entries(fresh=False)
            snap["fleet_open"] = self.fleet.open_wards(snap["fleet"])
        return snap

    async def load_today(self) -> None:
        """Fold everything since the start of today (and the day before, for open calls)."""
        start = day_start_ms(datetime.now(self.tz).date(), self.tz) - 86_400_000
        if self.ledger.last_id == "0-0":
            self.ledger.last_id = f"{start - 1}-0"
        cursor = str(start)
        while True:
            batch = await self.redis.xrange(self.settings.keys.events, min=cursor, count=5000)
            self.ledger.fold_all(batch)
            await self.recorder.record(self.ledger, batch)
            if len(batch) < 5000:
                return
            cursor = "(" + batch[-1][0]

    async def run(self) -> None:
        """Follow the events stream; push on change (debounced) and every interval."""
        interval = self.settings.stats_interval_s
        while True:
            try:
                # From the records cursor: the ends this node (or all, while none ran) missed.
                await self.recorder.backfill()
                await self.load_today()
                await self._follow(interval)
            except REDIS_ERRORS as exc:
                stop_if_cancelled()
                log.warning("stats: redis unavailable (%s); retrying", type(exc).__name__)
                await asyncio.sleep(1.0)
            except Exception:  # a bad snapshot must not stop pushes and positions for good
                stop_if_cancelled()
                log.exception("stats: follow failed; restarting")
                await asyncio.sleep(1.0)

    async def _follow(self, interval: float) -> None:
        last_push = last_watch = 0.0
        loop = asyncio.get_running_loop()
        while True:
            # Block a little under the interval: with the snapshot's own time, pushes still
            # come at least every `interval` seconds.
            batches = await self.blocking.xread({self.settings.keys.events: self.ledger.last_id},
                                                block=int(interval * 800), count=1000)
            changed: list[tuple[str, str]] = []
            for _stream, entries in batches:
                self.ledger.fold_all(entries)
                await self.recorder.record(self.ledger, entries)
                changed += [(f.get("ev", ""), f.get("call", "")) for _id, f in entries]
            if changed:
                for hook in self.on_change:
                    await hook(changed)
            due = loop.time() - last_push >= interval * 0.8
            pushes = list(self.subscribers.values()) if changed or due else []
            if pushes:
                await asyncio.sleep(0.05)  # let a burst of transitions settle into one push
                last_push = loop.time()
            if self.watchers and loop.time() - last_watch >= interval * 0.8:
                pushes += self.watchers.values()
                last_watch = loop.time()
            if pushes:
                snap = await self.snapshot(fleet=bool(self.subscribers))
                for push in pushes:
                    await push(snap)
            self.ledger.forget_before(now_ms() - 2 * 86_400_000)

    async def push_all(self) -> None:
        snap = await self.snapshot()
        for push in list(self.subscribers.values()):
            await push(snap)
