"""Routing transitions: each one Lua script run atomically by Redis.

Each script gets the key prefix, the time and an operation id; a script that
was already run for an operation id returns its first answer again and changes
nothing, so a retry after a timeout is safe. Scripts are sent *without*
redis-py's automatic retry (the client is built with ``retry=None`` by
``tsunagu.store``); on doubt the caller re-sends with the same operation id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from dataclasses import dataclass
from importlib import resources
from typing import Any

from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tsunagu.languages import TEST_LANGUAGE
from tsunagu.protocol import now_ms
from tsunagu.redis_keys import PARTS
from tsunagu.settings import SignalingSettings
from tsunagu.states import lua_tables
from tsunagu.store import RedisClient

log = logging.getLogger(__name__)

SCRIPTS = (
    "enqueue", "accept", "decline", "offer_timeout", "cancel", "hangup", "transfer",
    "presence", "interp_connect", "interp_disconnect", "kiosk_connect", "kiosk_disconnect",
    "grace", "wrapup_end", "max_wait", "media_state", "pick_relay", "rate",
)
# Scripts that only read (no operation id, no changes, no messages).
READS = ("places",)

# KEYS[1] = the kiosk's kept call.ended, ARGV[1] = the call it was sent for.
_ENDED_SEEN = """
local kept = redis.call('GET', KEYS[1])
if kept and cjson.decode(kept).call_id == ARGV[1] then redis.call('DEL', KEYS[1]) end
"""


def load_script_source(name: str) -> str:
    """The generated state and key tables, the prelude, then the named transition."""
    lua = resources.files("signaling") / "lua"
    return "\n".join((lua_tables(PARTS), (lua / "prelude.lua").read_text(),
                      (lua / f"{name}.lua").read_text()))


def new_op_id() -> str:
    """A fresh operation id (fencing a transition against a second run)."""
    return secrets.token_hex(8)


def new_call_id() -> str:
    """128-bit random call id."""
    return "c_" + secrets.token_hex(16)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a transition answered: ``ok`` on success, ``err`` (a protocol error code) if not."""

    data: dict[str, Any]

    @property
    def ok(self) -> bool:
        return "err" not in self.data

    @property
    def err(self) -> str | None:
        return self.data.get("err")

    def get(self, name: str, default: Any = None) -> Any:
        return self.data.get(name, default)

    @property
    def self_messages(self) -> list[dict[str, Any]]:
        """Messages for the requesting client, to send after the direct reply."""
        found = self.data.get("self")
        return found if isinstance(found, list) else []


class Router:
    """Runs the routing scripts against one Redis (or Cluster slot)."""

    def __init__(self, redis: RedisClient, settings: SignalingSettings) -> None:
        self.redis = redis
        self.settings = settings
        self.prefix = settings.keys.prefix
        self._scripts: dict[str, AsyncScript] = {
            name: redis.register_script(load_script_source(name)) for name in SCRIPTS + READS
        }
        self._ended_seen = redis.register_script(_ENDED_SEEN)

    async def configure(self) -> None:
        """Write the timers the scripts read (every node of a deployment writes the same)."""
        s = self.settings
        await self.redis.hset(s.keys.cfg, mapping={
            "offer_timeout_ms": int(s.offer_timeout_s * 1000),
            "wrapup_ms": int(s.wrapup_s * 1000),
            "kiosk_grace_ms": int(s.kiosk_grace_s * 1000),
            "call_grace_ms": int(s.call_grace_s * 1000),
            "nointerp_ms": int(s.no_interpreter_wait_s * 1000),
            "events_max": s.events_max_entries,
        })

    async def run(self, name: str, *args: Any, op: str = "", now: int | None = None,
                  requester: str = "") -> Outcome:
        """Run one transition; ``op`` makes it idempotent, ``now`` overrides the clock (tests),
        messages for ``requester`` come back in ``Outcome.self_messages``."""
        argv = [self.prefix, now if now is not None else now_ms(), op, requester, *args]
        script = self._scripts[name]
        try:
            raw = await script(keys=[self.settings.keys.cfg], args=argv)
        except (RedisConnectionError, RedisTimeoutError):
            if not op:
                raise
            # It may have run before the reply was lost: the same operation id makes running
            # it again safe, and brings back its first answer (with the requester's messages).
            await asyncio.sleep(0.05)
            raw = await script(keys=[self.settings.keys.cfg], args=argv)
        data = json.loads(raw) if raw else {}
        for kind, ident, old, new in data.pop("changes", ()):
            log.info("%s %s: %s -> %s (%s)", kind, ident, old or "-", new, name)
        return Outcome(data)

    async def places(self, waiting: list[tuple[str, str]]
                     ) -> list[tuple[int | None, int, int, float]]:
        """For each waiting (call_id, language): its rank in the queue (None once offered), the
        interpreters signed in for the language, those free now, and the share of the queue
        those not away will take as they come free (``serving_milli`` / 1000); one round trip."""
        if not waiting:
            return []
        args = [x for pair in waiting for x in pair]
        raw = await self._scripts["places"](keys=[self.settings.keys.cfg],
                                            args=[self.prefix, now_ms(), "", "", *args])
        return [(None if rank < 0 else rank, staffed, free, milli / 1000)
                for rank, staffed, free, milli in json.loads(raw)]

    # -- kiosk side ----------------------------------------------------------
    async def enqueue(self, *, kiosk: str, ward: str, counter: str, language: str,
                      priority: str, procedure: str | None, call_id: str,
                      max_wait_s: float | None = None, **kw: Any) -> Outcome:
        """Queue a kiosk's call; ``max_wait_s`` (a test call's) overrides the maximum wait."""
        s = self.settings
        boost = int(s.urgent_boost_s * 1000) if priority == "urgent" else 0
        wait = s.max_wait_s if max_wait_s is None else max_wait_s
        return await self.run(
            "enqueue", kiosk, ward, counter, language, priority, boost, procedure or "", call_id,
            int(wait * 1000), int(s.no_interpreter_wait_s * 1000), **kw)

    async def cancel(self, kiosk: str, call_id: str, *, reason: str = "cancelled",
                     **kw: Any) -> Outcome:
        return await self.run("cancel", kiosk, call_id, reason, **kw)

    # -- interpreter side ----------------------------------------------------
    async def accept(self, interp: str, call_id: str, offer_id: str, **kw: Any) -> Outcome:
        return await self.run("accept", interp, call_id, offer_id, **kw)

    async def decline(self, interp: str, call_id: str, offer_id: str, **kw: Any) -> Outcome:
        return await self.run("decline", interp, call_id, offer_id, **kw)

    async def presence(self, interp: str, status: str, **kw: Any) -> Outcome:
        return await self.run("presence", interp, status, **kw)

    async def transfer(self, interp: str, call_id: str, language: str, **kw: Any) -> Outcome:
        return await self.run("transfer", interp, call_id, language, **kw)

    async def hangup(self, role: str, who: str, call_id: str, *, reason: str = "hangup",
                     **kw: Any) -> Outcome:
        return await self.run("hangup", role, who, call_id, reason, **kw)

    # -- connections ---------------------------------------------------------
    async def interp_connect(self, interp: str, languages: list[str] | tuple[str, ...],
                             name: str, *, resumed: bool, **kw: Any) -> Outcome:
        return await self.run("interp_connect", interp, ",".join(languages), name,
                              "1" if resumed else "0", **kw)

    async def interp_disconnect(self, interp: str, *, node: str = "", **kw: Any) -> Outcome:
        """The interpreter's socket on ``node`` closed (``node`` empty: whatever holds it)."""
        s = self.settings
        return await self.run("interp_disconnect", interp, int(s.interp_grace_s * 1000),
                              int(s.call_grace_s * 1000), node, **kw)

    async def kiosk_connect(self, kiosk: str, **kw: Any) -> Outcome:
        return await self.run("kiosk_connect", kiosk, **kw)

    async def kiosk_disconnect(self, kiosk: str, *, node: str = "", **kw: Any) -> Outcome:
        """The kiosk's socket on ``node`` closed (``node`` empty: whatever holds it)."""
        s = self.settings
        return await self.run("kiosk_disconnect", kiosk, int(s.kiosk_grace_s * 1000),
                              int(s.call_grace_s * 1000), node, **kw)

    async def ended_seen(self, kiosk: str, call_id: str) -> None:
        """The kiosk was sent its call's ``call.ended`` live: forget the copy kept for its
        resume (only if it is still that call's)."""
        await self._ended_seen(keys=[self.settings.keys.kiosk_missed_end(kiosk)],
                               args=[call_id])

    async def rate(self, kiosk: str, call_id: str, score: int, **kw: Any) -> Outcome:
        """The kiosk's score for its finished call (refused: ``not_found``, ``conflict``)."""
        s = self.settings
        return await self.run("rate", kiosk, call_id, score, int(s.rating_window_s * 1000),
                              s.events_retention_days * 86_400, TEST_LANGUAGE, **kw)

    async def media_state(self, call_id: str, party: str, **kw: Any) -> Outcome:
        return await self.run("media_state", call_id, party, **kw)

    async def pick_relay(self, call_id: str, role: str, who: str, allowed: list[str], *,
                         avoid: str = "", **kw: Any) -> Outcome:
        """Check that ``who`` is the call's ``role`` party and the call is answered, then give
        the call's live relay, or claim the least loaded one with room, among ``allowed``
        (the relays this node trusts) and not ``avoid``."""
        alive_since = now_ms() - int(self.settings.relay_dead_s * 1000)
        return await self.run("pick_relay", call_id, role, who, avoid, alive_since,
                              ",".join(allowed), **kw)

    # -- deadlines -----------------------------------------------------------
    async def read_call(self, call_id: str) -> dict[str, str]:
        """A call's hash (empty when there is no such call)."""
        call: dict[str, str] = await self.redis.hgetall(self.settings.keys.call(call_id))
        return call

    async def staff_disconnect(self, client_id: str, *, node: str) -> None:
        """A supervisor's or admin's socket closed: release its registration on ``node``."""
        k = self.settings.keys
        await self.redis.delete(k.client_node(client_id))
        await self.redis.srem(k.node_clients(node), client_id)

    async def renew_session(self, session_id: str, ttl_s: int) -> None:
        """Keep a session resumable for ``ttl_s`` more seconds."""
        await self.redis.expire(self.settings.keys.session(session_id), ttl_s)

    async def fire_deadline(self, member: str, *, now: int | None = None) -> Outcome:
        """Run the transition a due deadline member ("kind|a|b") stands for."""
        # No operation ids: each deadline script acts only if its member is still due and the
        # state still calls for it, so running one twice changes nothing.
        kind, a, b = (member.split("|", 2) + ["", ""])[:3]
        if kind == "offer":
            return await self.run("offer_timeout", a, b, now=now)
        if kind in ("kgrace", "cgrace", "igrace"):
            return await self.run("grace", kind, a, b, now=now)
        if kind == "wrapup":
            return await self.run("wrapup_end", a, now=now)
        if kind in ("maxwait", "nointerp"):
            return await self.run("max_wait", kind, a, now=now)
        await self.redis.zrem(self.settings.keys.deadlines, member)
        return Outcome({"err": "unknown deadline"})

    async def due_deadlines(self, now: int | None = None, limit: int = 200) -> list[str]:
        """Deadline members due at ``now``."""
        when = now if now is not None else now_ms()
        members = await self.redis.zrangebyscore(self.settings.keys.deadlines, "-inf", when,
                                                 start=0, num=limit)
        return [m if isinstance(m, str) else m.decode() for m in members]
