"""Fires due deadlines and cleans up after dead nodes and relays, on one node at a time.

Every node runs a sweeper; a short lease in Redis (``sweep_lease``) lets one
of them work at a time, and another takes over within a lease time when it
dies. Deadline transitions are idempotent, so a deadline fired twice (a lease
handover mid-sweep) changes nothing the second time.
"""

from __future__ import annotations

import asyncio
import logging
import math

from signaling import retention
from signaling.node import Node
from tsunagu.protocol import now_ms
from tsunagu.store import REDIS_ERRORS, stop_if_cancelled

log = logging.getLogger(__name__)
LEASE_MS = 2000

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
"""


HEARTBEAT_S = 1.0
SWEEP_BUDGET_S = 0.5
FLEET_SAMPLE_S = 20.0  # each minute's availability claim is tried a few times, counted once


class Sweeper:
    """The deadline and liveness sweeper of one node."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.keys = node.settings.keys
        self._renew = node.redis.register_script(_RENEW)
        self._last_liveness = 0.0
        self._last_retention = -math.inf
        self._last_sample = -math.inf

    async def run(self) -> None:
        interval = self.node.settings.sweep_interval_s
        loop = asyncio.get_running_loop()
        while True:
            try:
                liveness_due = loop.time() - self._last_liveness > 1.0
                if await self._renew(keys=[self.keys.sweep_lease],
                                     args=[self.node.settings.node_id, LEASE_MS]):
                    await self.sweep_deadlines()
                    if liveness_due:
                        await self.sweep_dead_nodes()
                        await self.sweep_dead_relays()
                    if loop.time() - self._last_retention > self.node.settings.retention_every_s:
                        self._last_retention = loop.time()
                        await self.sweep_retention()
                    if loop.time() - self._last_sample >= FLEET_SAMPLE_S:
                        self._last_sample = loop.time()
                        await self.node.fleet.sample_availability()
                if liveness_due:
                    self._last_liveness = loop.time()
            except REDIS_ERRORS as exc:
                stop_if_cancelled()
                log.warning("sweeper: redis unavailable (%s)", type(exc).__name__)
                await asyncio.sleep(1.0)
            except Exception:  # never let one surprise stop deadlines on this node
                stop_if_cancelled()
                log.exception("sweeper: pass failed")
                await asyncio.sleep(1.0)
            await asyncio.sleep(interval)

    async def heartbeat(self) -> None:
        """Tell the other nodes this one is alive, every second, whatever the sweep is doing:
        a long sweep under load must never make its own node look dead."""
        while True:
            try:
                await self.node.bus.heartbeat()
            except REDIS_ERRORS as exc:
                stop_if_cancelled()
                log.warning("heartbeat: redis unavailable (%s)", type(exc).__name__)
            await asyncio.sleep(HEARTBEAT_S)

    async def sweep_deadlines(self, budget_s: float = SWEEP_BUDGET_S) -> int:
        """Run due deadlines' transitions for at most ``budget_s`` (the rest wait for the next
        pass, a moment later); return how many ran."""
        router = self.node.router
        fired = 0
        loop = asyncio.get_running_loop()
        until = loop.time() + budget_s
        while loop.time() < until and (members := await router.due_deadlines(limit=200)):
            for member in members:
                try:
                    out = await router.fire_deadline(member)
                except REDIS_ERRORS:
                    raise
                except Exception:
                    # A member that always fails must not hold up every deadline behind it.
                    log.exception("deadline %s failed; dropped", member)
                    await self.node.redis.zrem(self.keys.deadlines, member)
                    continue
                fired += 1
                if out.get("relay"):
                    self.node.spawn(self.node.relays.close_call(member.split("|")[1],
                                                                out.get("relay")), "relay close")
            if len(members) < 200:
                break
        return fired

    async def sweep_retention(self, now: int | None = None) -> tuple[int, int]:
        """Trim the events stream and delete record days by age (signaling/retention.py)."""
        s = self.node.settings
        limits = retention.cutoffs(now if now is not None else now_ms(),
                                   events_days=s.events_retention_days,
                                   record_days=s.record_retention_days)
        return await retention.apply(self.node.redis, self.keys, limits)

    async def sweep_dead_nodes(self) -> None:
        """Clients of a node that stopped heartbeating are disconnected (grace starts)."""
        gone_before = now_ms() - int(self.node.settings.node_dead_s * 1000)
        dead = await self.node.redis.zrangebyscore(self.keys.nodes, "-inf", gone_before)
        for node_id in dead:
            clients = await self.node.redis.smembers(self.keys.node_clients(node_id))
            for client in clients:
                # Each disconnect releases the client only if the dead node still holds it.
                kind, _, ident = client.partition(":")
                if kind == "k":
                    await self.node.router.kiosk_disconnect(ident, node=node_id)
                elif kind == "i":
                    await self.node.router.interp_disconnect(ident, node=node_id)
                else:
                    await self.node.redis.delete(self.keys.client_node(client))
            await self.node.redis.delete(self.keys.node_clients(node_id),
                                         self.keys.node_inbox(node_id))
            await self.node.redis.zrem(self.keys.nodes, node_id)
            log.warning("node %s: dead, %d clients released", node_id, len(clients))

    async def sweep_dead_relays(self) -> None:
        """Calls on a relay that stopped heartbeating: both parties are told to offer again."""
        redis = self.node.redis
        gone_before = now_ms() - int(self.node.settings.relay_dead_s * 1000)
        dead = set(await redis.zrangebyscore(self.keys.relays, "-inf", gone_before))
        if not dead:
            return
        for call_id in await redis.smembers(self.keys.live_calls):
            call = await redis.hmget(self.keys.call(call_id), ["relay", "kiosk", "interpreter"])
            relay, kiosk, interp = call
            if relay not in dead:
                continue
            await redis.hdel(self.keys.call(call_id), "relay")
            log.warning("call %s: relay %s lost", call_id, relay)
            for client in (f"k:{kiosk}", f"i:{interp}"):
                await self.node.bus.deliver(client, {"type": "media.failed", "call_id": call_id,
                                                     "reason": "relay_lost"})
        await redis.zrem(self.keys.relays, *dead)
