"""A relay node: its calls, admission control, and the loop that reports to Redis."""

from __future__ import annotations

import logging
import time
from typing import Any

from redis.exceptions import RedisError

from relay.call import CONNECT_TIMEOUT_S, Call
from relay.errors import AtCapacity, BadOffer, Stale
from relay.quality import ProcessCpu
from relay.registry import Registry

logger = logging.getLogger(__name__)

# The capacity (calls per relay) defaults to tsunagu.settings.RELAY_CALLS_PER_CORE: one relay
# process forwards on one event loop, so it uses one core at most (docs/media.md).
CPU_LIMIT = 0.85  # of one core: refuse new calls above this, before the loop saturates
ORPHAN_S = 60.0


class RelayNode:
    """The calls a relay serves; refuses a new call that would exceed its capacity."""

    def __init__(self, relay_id: str, capacity: int, ice_servers: list[dict[str, Any]],
                 registry: Registry | None = None, cpu_limit: float | None = None,
                 connect_timeout_s: float = CONNECT_TIMEOUT_S,
                 drop_kinds: frozenset[str] = frozenset()) -> None:
        self.relay_id = relay_id
        self.drop_kinds = drop_kinds  # TEST ONLY fault (TSUNAGU_TEST_RELAY_DROP)
        self.connect_timeout_s = connect_timeout_s
        self.capacity = capacity
        self.ice_servers = ice_servers
        self.registry = registry
        self.calls: dict[str, Call] = {}
        self.cpu = ProcessCpu()
        self.cpu_limit = CPU_LIMIT if cpu_limit is None else cpu_limit

    async def offer(self, call_id: str, party: str, sdp: str, modality: str | None) -> str:
        """Answer a party's offer; a new call is admitted only below capacity."""
        call = self.calls.get(call_id)
        if call is None:
            if len(self.calls) >= self.capacity or self.cpu.value > self.cpu_limit:
                logger.info("call %s: refused, %d/%d calls, cpu %.2f", call_id,
                            len(self.calls), self.capacity, self.cpu.value)
                raise AtCapacity
            call = Call(call_id, self.ice_servers, self._event, self.connect_timeout_s,
                        drop_kinds=self.drop_kinds)
            self.calls[call_id] = call
        try:
            answer = await call.offer(party, sdp, modality)
        except BadOffer:
            # Forget a new call that nothing else is using (another party may be mid-offer).
            if not call.legs and not call.pending and self.calls.get(call_id) is call:
                del self.calls[call_id]
            raise
        if self.calls.get(call_id) is not call:  # ended while we were answering
            await call.close()
            raise Stale("call_ended")
        return answer

    async def end(self, call_id: str) -> None:
        """Close a call's legs (idempotent)."""
        call = self.calls.pop(call_id, None)
        if call is not None:
            await call.close()
            logger.info("call %s: ended", call_id)

    async def close_all(self) -> None:
        for call_id in list(self.calls):
            await self.end(call_id)

    async def _event(self, call_id: str, party: str, event: str, reason: str) -> None:
        logger.info("call %s leg %s: %s %s", call_id, party, event, reason)
        if self.registry is not None:
            await self.registry.event(call_id, party, event, reason)

    def quality_reports(self) -> dict[str, dict[str, Any]]:
        """Each call's quality over the last interval (advances the interval)."""
        return {cid: call.quality(self.relay_id) for cid, call in self.calls.items()}

    def snapshot(self) -> list[dict[str, Any]]:
        """The calls and their latest per-leg quality, for GET /v1/calls."""
        return [{"call_id": cid, "modality": call.modality, "transcoding": call.transcoding(),
                 "legs": {p: {"connected": leg.connected, **leg.rates.current}
                          for p, leg in call.legs.items()}}
                for cid, call in self.calls.items()]

    async def reap(self, idle_s: float = ORPHAN_S) -> list[str]:
        """End calls none of whose legs has been connected for ``idle_s``: calls signaling
        moved away or forgot (a lost DELETE). They would hold capacity for ever."""
        now = time.monotonic()
        gone = []
        for call_id, call in list(self.calls.items()):
            if any(leg.connected for leg in call.legs.values()):
                call.last_live = now
            elif now - call.last_live > idle_s:
                gone.append(call_id)
                logger.info("call %s: no leg connected for %.0f s, ended", call_id, idle_s)
                await self.end(call_id)
        return gone

    async def feedback(self) -> None:
        """Every estimate.INTERVAL_S: each call's bandwidth estimates, RR and REMB."""
        now = time.monotonic()
        for call in list(self.calls.values()):
            await call.send_feedback(now)

    async def tick(self) -> None:
        """Sample CPU, publish quality and heartbeat (errors logged, never raised)."""
        await self.reap()
        cpu = self.cpu.sample()
        reports = self.quality_reports()
        if self.registry is None:
            return
        # The heartbeat first and on its own: a slow quality write must never make the
        # relay look dead (its calls would be moved away).
        try:
            await self.registry.heartbeat(self.capacity, len(self.calls), cpu)
        except (RedisError, OSError, TimeoutError) as exc:
            logger.warning("relay %s: heartbeat failed: %s", self.relay_id, exc)
        try:
            await self.registry.quality(reports)
        except (RedisError, OSError, TimeoutError) as exc:
            logger.warning("relay %s: quality report failed: %s", self.relay_id, exc)
