"""Every routing transition runs against a real Redis, and every message a script builds
parses as the typed protocol's (tsunagu.server_messages): a script and its clients cannot
drift apart."""

from __future__ import annotations

import itertools
import json
from typing import Any

import redis.asyncio as aioredis

from signaling.routing import SCRIPTS, Outcome, Router
from tests.signaling.conftest import T0
from tsunagu.redis_keys import Keys
from tsunagu.server_messages import Unknown, parse_server_message

K = Keys()
NODE = "n_test"
_ops = itertools.count()


class Recorder:
    """Runs transitions through a router and keeps every message they produce."""

    def __init__(self, router: Router, redis: aioredis.Redis) -> None:
        self.router, self.redis = router, redis
        self.messages: list[dict[str, Any]] = []
        self.scripts: set[str] = set()
        self.entries_with_several = 0
        real = router.run

        async def run(name: str, *args: Any, **kw: Any) -> Outcome:
            self.scripts.add(name)
            out = await real(name, *args, **kw)
            self.messages += out.self_messages
            for field in ("resend", "ended"):
                if isinstance(out.get(field), dict):
                    self.messages.append(out.get(field))
            return out

        router.run = run  # type: ignore[method-assign]

    async def online(self, *clients: str) -> None:
        for client in clients:
            await self.redis.set(K.client_node(client), NODE)

    async def fire_due(self, now: int) -> None:
        for member in await self.router.due_deadlines(now=now):
            await self.router.fire_deadline(member, now=now)

    async def inbox(self) -> None:
        for _id, fields in await self.redis.xrange(K.node_inbox(NODE)):
            if "msgs" in fields:
                self.entries_with_several += 1
                self.messages += json.loads(fields["msgs"])
            else:
                self.messages.append(json.loads(fields["msg"]))
        await self.redis.delete(K.node_inbox(NODE))


def op() -> str:
    return f"lua-op{next(_ops)}"


async def offer_of(redis: aioredis.Redis, call_id: str) -> str:
    return str(await redis.hget(K.call(call_id), "offer_id"))


async def test_every_message_a_script_builds_parses(router: Router, redis: aioredis.Redis
                                                     ) -> None:
    rec = Recorder(router, redis)
    r = router
    await rec.online("i:alice", "i:bob", "i:carol", "i:dave", "k:k1", "k:k2", "k:k3")
    t = T0
    await r.interp_connect("alice", ["jsl", "en"], "Alice", resumed=False, now=t)
    await r.interp_connect("bob", ["jsl"], "Bob", resumed=False, now=t)
    await r.presence("alice", "available", op=op(), now=t, requester="i:alice")
    await r.presence("bob", "available", op=op(), now=t + 1)
    # offered to alice, declined, offered to bob, who lets it time out (missed: away)
    await r.enqueue(kiosk="k1", ward="北区", counter="3", language="jsl", priority="urgent",
                    procedure="転入届", call_id="c1", op=op(), now=t + 10, requester="k:k1")
    await r.decline("alice", "c1", await offer_of(redis, "c1"), op=op(), now=t + 20)
    await rec.fire_due(t + 60_000)
    # carol is offered the call and goes away while it rings; dave takes it
    t += 60_000
    await r.interp_connect("carol", ["jsl"], "Carol", resumed=False, now=t)
    await r.presence("carol", "available", op=op(), now=t)
    await r.presence("carol", "away", op=op(), now=t + 1)
    await r.interp_connect("dave", ["jsl"], "Dave", resumed=False, now=t)
    await r.presence("dave", "available", op=op(), now=t + 2)
    await r.accept("dave", "c1", await offer_of(redis, "c1"), op=op(), now=t + 3,
                   requester="i:dave")
    await redis.zadd(K.relays, {"r1": t + 3})
    await redis.hset(K.relay("r1"), mapping={"url": "http://127.0.0.1:9", "capacity": 2,
                                             "calls": 0, "cpu": 0.1})
    picked = await r.pick_relay("c1", "kiosk", "k1", ["r1"], now=t + 3)
    assert (picked.get("relay"), picked.get("moved"), picked.get("other")) == ("r1", False,
                                                                              "i:dave")
    assert (await r.pick_relay("c1", "interpreter", "bob", ["r1"], now=t + 3)).err == "forbidden"
    assert (await r.pick_relay("c1", "kiosk", "k1", [], now=t + 3)).err == "unavailable"
    await r.media_state("c1", "kiosk", now=t + 4)
    await r.media_state("c1", "interpreter", now=t + 5)
    # both sides drop and come back: what they must see again is resent
    await r.kiosk_disconnect("k1", node=NODE, now=t + 6)
    await rec.online("k:k1")
    await r.kiosk_connect("k1", now=t + 7)
    await r.interp_disconnect("dave", node=NODE, now=t + 8)
    await rec.online("i:dave")
    await r.interp_connect("dave", ["jsl"], "Dave", resumed=True, now=t + 9)
    # transferred to English: alice passed on this call, so it waits; then hung up by the kiosk
    await r.transfer("dave", "c1", "en", op=op(), now=t + 10)
    await r.hangup("kiosk", "k1", "c1", op=op(), now=t + 11)
    await rec.fire_due(t + 40_000)  # dave's wrap-up ends
    # a call nobody can take (no one signed in for Vietnamese), and one that waits too long
    t += 60_000
    await r.enqueue(kiosk="k2", ward="北区", counter="4", language="vi", priority="normal",
                    procedure=None, call_id="c2", op=op(), now=t, requester="k:k2")
    for name in ("alice", "bob", "carol", "dave"):
        await r.presence(name, "away", op=op(), now=t)
    await r.enqueue(kiosk="k2", ward="北区", counter="4", language="jsl", priority="normal",
                    procedure=None, call_id="c3", op=op(), now=t + 1, requester="k:k2")
    await rec.fire_due(t + 3_600_000)
    # a kiosk lost past its grace while its call rang (the offer is withdrawn and cancelled)
    t += 3_700_000
    await r.enqueue(kiosk="k3", ward="北区", counter="5", language="jsl", priority="normal",
                    procedure=None, call_id="c4", op=op(), now=t + 1)
    await r.kiosk_disconnect("k3", node=NODE, now=t + 2)
    await r.presence("alice", "available", op=op(), now=t + 15_000)
    await rec.fire_due(t + 25_000)
    await r.kiosk_connect("k3", now=t + 26_000)  # told of the call that ended meanwhile
    # a call hung up by its interpreter, who then is lost for good (offline)
    t += 60_000
    await rec.online("k:k1")
    await r.presence("alice", "available", op=op(), now=t)
    await r.enqueue(kiosk="k1", ward="北区", counter="3", language="en", priority="normal",
                    procedure=None, call_id="c5", op=op(), now=t + 1)
    await r.accept("alice", "c5", await offer_of(redis, "c5"), op=op(), now=t + 2)
    await r.hangup("interpreter", "alice", "c5", op=op(), now=t + 3)
    assert (await r.rate("k1", "c5", 4, op=op(), now=t + 3)).ok  # rated: sends nothing
    await r.interp_disconnect("alice", node=NODE, now=t + 4)
    await rec.fire_due(t + 600_000)
    await r.cancel("k1", "c5", op=op(), now=t + 600_001)  # too late: not found or conflict
    await rec.inbox()

    assert rec.scripts >= set(SCRIPTS), set(SCRIPTS) - rec.scripts
    assert rec.entries_with_several > 0  # e.g. an offer and its presence change: one entry
    parsed = [parse_server_message(m) for m in rec.messages]  # raises on any drift
    assert not [m for m in parsed if isinstance(m, Unknown)]
    kinds = {m.TYPE for m in parsed}
    assert kinds >= {"call.offer", "call.offer_cancelled", "call.connected", "call.ended",
                     "presence", "call.queued"}, kinds
    reasons = {(m.TYPE, getattr(m, "reason", None)) for m in parsed}
    assert {("call.offer_cancelled", r) for r in ("declined", "timeout", "cancelled")} <= reasons
    assert {("call.ended", r) for r in ("transferred", "hangup", "no_interpreter", "timeout",
                                        "peer_lost")} <= reasons, reasons


async def test_an_offer_and_its_presence_change_are_one_inbox_entry(
        router: Router, redis: aioredis.Redis) -> None:
    await redis.set(K.client_node("i:alice"), NODE)
    await router.interp_connect("alice", ["jsl"], "Alice", resumed=False, now=T0)
    await router.presence("alice", "available", op=op(), now=T0, requester="i:alice")
    await redis.delete(K.node_inbox(NODE))
    await router.enqueue(kiosk="k1", ward="北区", counter="3", language="jsl",
                         priority="normal", procedure=None, call_id="c1", op=op(), now=T0 + 1)
    entries = await redis.xrange(K.node_inbox(NODE))
    assert len(entries) == 1
    kinds = [m["type"] for m in json.loads(entries[0][1]["msgs"])]
    assert kinds == ["presence", "call.offer"]


async def test_places_reads_rank_and_who_serves(router: Router, redis: aioredis.Redis) -> None:
    """The read-only ``places`` script: rank, signed-in, free, and the serving share (an
    interpreter of two languages counts half; one going away after the call not at all)."""
    r, t = router, T0
    for name, langs in (("alice", ["jsl"]), ("bob", ["jsl", "en"]), ("carol", ["jsl"])):
        await r.interp_connect(name, langs, name.title(), resumed=False, now=t)
        await r.presence(name, "available", op=op(), now=t)
    for n in range(5):
        await r.enqueue(kiosk=f"k{n}", ward="北区", counter=str(n), language="jsl",
                        priority="normal", procedure=None, call_id=f"c{n}", op=op(), now=t + n)
    await r.presence("carol", "away", op=op(), now=t + 10)  # ringing: passes on the call
    places = await r.places([("c3", "jsl"), ("c4", "jsl"), ("c0", "jsl")])
    # c0..c2 rang alice, bob, carol; carol's passed back to the head of the line.
    assert [p[0] for p in places] == [1, 2, None]
    assert places[0][1:] == (3, 0, 1.5)
