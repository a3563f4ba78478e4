"""The tablet fleet in Redis (PROTOCOL.md section 14): each kiosk's latest health report and
when it was last seen, kept without TTL so they survive restarts, and the fleet list that
``GET /api/fleet``, the supervisor's ``stats`` and ``/metrics`` show (rated by
``tsunagu.fleet``).

- ``kiosk_health(id)``: STRING JSON of the latest ``kiosk.health`` report plus ``at_ms``.
- ``kiosk_seen``: ZSET kiosk id -> last seen ms, written when a kiosk connects, every
  ``kiosk_seen_interval_s`` while a node holds it, and when it disconnects.
- ``kiosk(id)`` field ``token_exp_ms``: when the kiosk's newest token expires (written by
  ``add-kiosk`` and by every connect, so kiosks registered before it was kept have it too).
- online: a node holds the kiosk's socket now (``client_node("k:<id>")``).
- ``kiosk_test(id)``: the last test call, written by the test-call side; read here only.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from signaling.fleet_rollup import add_availability
from tsunagu import fleet
from tsunagu.protocol import now_ms
from tsunagu.settings import SignalingSettings
from tsunagu.store import REDIS_ERRORS, RedisClient, stop_if_cancelled

log = logging.getLogger(__name__)
DIRECTORY_TTL_S = 10.0  # the list of kiosk devices (ward, counter) changes rarely


def _json(raw: str | None, what: str) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        log.warning("fleet: unreadable %s", what)
        return None
    return value if isinstance(value, dict) else None


class FleetService:
    """Writes what kiosks report and reads the fleet back, rated."""

    def __init__(self, redis: RedisClient, settings: SignalingSettings) -> None:
        self.redis = redis
        self.settings = settings
        self.keys = settings.keys
        self.tz = ZoneInfo(settings.timezone)
        self._directory: list[tuple[str, dict[str, str]]] = []
        self._directory_at = -1e9

    # -- what kiosks tell -------------------------------------------------------------------
    async def record_health(self, kiosk_id: str, report: dict[str, Any]) -> int:
        """Keep the kiosk's latest report (with its time) and mark it seen; the time."""
        at = now_ms()
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(self.keys.kiosk_health(kiosk_id),
                 json.dumps({**report, "at_ms": at}, ensure_ascii=False, separators=(",", ":")))
        pipe.zadd(self.keys.kiosk_seen, {kiosk_id: at})
        await pipe.execute()
        return at

    async def seen(self, kiosk_ids: Iterable[str], *, token_exp: int | None = None) -> None:
        """Mark kiosks seen now; ``token_exp`` (seconds): the connecting token's expiry."""
        ids = list(kiosk_ids)
        if not ids:
            return
        at = now_ms()
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(self.keys.kiosk_seen, dict.fromkeys(ids, at))
        if token_exp is not None:
            for kiosk_id in ids:
                pipe.hset(self.keys.kiosk(kiosk_id), "token_exp_ms", token_exp * 1000)
        await pipe.execute()

    async def touch_forever(self, connected: Any) -> None:
        """Every ``kiosk_seen_interval_s``: mark this node's connected kiosks seen.
        ``connected()`` gives their ids."""
        while True:
            await asyncio.sleep(self.settings.kiosk_seen_interval_s)
            try:
                await self.seen(connected())
            except REDIS_ERRORS as exc:
                stop_if_cancelled()
                log.warning("fleet: last seen not written (%s)", type(exc).__name__)

    # -- the fleet list ----------------------------------------------------------------------
    async def _kiosks(self, fresh: bool) -> list[tuple[str, dict[str, str]]]:
        """Every registered kiosk that is not revoked (unless ``fresh``, as read up to a few
        seconds ago: the supervisors' pushes need no new scan each time)."""
        loop = asyncio.get_running_loop()
        if not fresh and loop.time() - self._directory_at < DIRECTORY_TTL_S:
            return self._directory
        prefix = self.keys.kiosk("")
        ids = sorted([key[len(prefix):] async for key in
                      self.redis.scan_iter(match=self.keys.kiosk("*"), count=1000)])
        pipe = self.redis.pipeline(transaction=False)
        for kiosk_id in ids:
            pipe.hgetall(self.keys.kiosk(kiosk_id))
        hashes = await pipe.execute()
        self._directory = [(i, h) for i, h in zip(ids, hashes, strict=True)
                           if h and h.get("revoked") != "1"]
        self._directory_at = loop.time()
        return self._directory

    async def entries(self, *, fresh: bool = True) -> list[dict[str, Any]]:
        """The fleet as ``GET /api/fleet`` gives it: red first, by ward and counter."""
        kiosks = await self._kiosks(fresh)
        if not kiosks:
            return []
        k = self.keys
        pipe = self.redis.pipeline(transaction=False)
        for kiosk_id, _ in kiosks:
            pipe.exists(k.client_node("k:" + kiosk_id))
            pipe.zscore(k.kiosk_seen, kiosk_id)
            pipe.get(k.kiosk_health(kiosk_id))
            pipe.get(k.kiosk_test(kiosk_id))
            pipe.hget(k.kiosk(kiosk_id), "token_exp_ms")
        raw = await pipe.execute()
        now = now_ms()
        hours = self.settings.opening_hours
        out = []
        for i, (kiosk_id, h) in enumerate(kiosks):
            online, seen, health, test, exp = raw[5 * i:5 * i + 5]
            ward = h.get("ward", "")
            out.append(fleet.entry(fleet.KioskFacts(
                kiosk_id=kiosk_id, ward=ward, counter=h.get("counter", ""),
                online=bool(online), last_seen_ms=int(seen) if seen is not None else None,
                health=_json(health, f"health of {kiosk_id}"),
                last_test=_json(test, f"last test of {kiosk_id}"),
                token_exp_ms=int(exp) if exp else None,
                open_now=hours.is_open(ward, now)), now, self.tz))
        return fleet.ordered(out)

    async def sample_availability(self, now: int | None = None) -> int:
        """Count the current minute of every kiosk whose ward is open: as open time, and as
        up time when it is connected (the report's availability, signaling/fleet_rollup.py).
        Once per minute across the nodes (a claim key); how many kiosks were counted."""
        now = now_ms() if now is None else now
        minute = now // 60_000
        if not await self.redis.set(self.keys.fleet_sample(minute), "1", nx=True, ex=600):
            return 0
        hours, counted = self.settings.opening_hours, 0
        day = datetime.fromtimestamp(now / 1000, self.tz).date()
        for e in await self.entries(fresh=False):
            if hours.is_open(e["ward"], now):
                await add_availability(self.redis, self.keys, day, e["kiosk_id"], open_s=60,
                                       up_s=60 if e["online"] else 0)
                counted += 1
        return counted

    def open_wards(self, entries: list[dict[str, Any]]) -> dict[str, bool]:
        """Whether each ward of ``entries`` is in its opening hours now (the supervisor page
        alerts on a kiosk turning red only then)."""
        now, hours = now_ms(), self.settings.opening_hours
        return {ward: hours.is_open(ward, now) for ward in {e["ward"] for e in entries}}
