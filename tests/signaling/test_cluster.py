"""Several signaling processes sharing one Redis: races, cross-node delivery, node death."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from signaling.ledger import Ledger, replay_changes
from tests.conftest import TEST_SECRET
from tests.support.stack import running
from tsunagu.client import ServerError
from tsunagu.redis_keys import Keys
from tsunagu.redis_server import RedisServer
from tsunagu.settings import SignalingSettings
from tsunagu.states import InterpreterState, illegal_transitions, interpreter_transition_allowed

K = Keys()
FAST = {"TSUNAGU_WRAPUP_S": "0.2", "TSUNAGU_SWEEP_INTERVAL_S": "0.05",
        "TSUNAGU_KIOSK_GRACE_S": "3", "TSUNAGU_CALL_GRACE_S": "3", "TSUNAGU_INTERP_GRACE_S": "3",
        # load from one address: the per-principal flood limits raised (PROTOCOL.md 13)
        "TSUNAGU_MESSAGES_PER_SECOND": "10000", "TSUNAGU_CALLS_PER_MINUTE": "10000"}

RACER = textwrap.dedent("""
    import asyncio, json, sys
    import redis.asyncio as aioredis
    from tsunagu.settings import SignalingSettings
    from signaling.routing import Router, new_op_id
    from tsunagu.store import connect

    async def main(url, call_id, offer_id):
        settings = SignalingSettings(secret=b"x" * 32, redis_url=url)
        router = Router(connect(url), settings)
        outs = await asyncio.gather(*(router.accept("alice", call_id, offer_id, op=new_op_id())
                                      for _ in range(50)))
        print(json.dumps([o.data.get("ok") or o.data.get("err") for o in outs]))

    asyncio.run(main(*sys.argv[1:]))
""")


async def test_accept_race_from_two_processes(redis_server: RedisServer,
                                              redis: aioredis.Redis) -> None:
    settings = SignalingSettings(secret=TEST_SECRET, redis_url=redis_server.url)
    async with running(settings) as stack:
        i = await stack.client(await stack.add_interpreter("alice", ["jsl"]))
        k = await stack.client(await stack.add_kiosk("k1"))
        await i.request("presence.set", status="available")
        await k.request("call.request", language="jsl")
        offer = await i.next("call.offer")
        racers = [subprocess.Popen([sys.executable, "-c", RACER, redis_server.url,  # noqa: ASYNC220
                                    offer["call_id"], offer["offer_id"]],
                                   stdout=subprocess.PIPE, env=dict(os.environ))
                  for _ in range(2)]
        results = []
        for p in racers:
            out, _ = await asyncio.to_thread(p.communicate, timeout=60)
            results += json.loads(out)
        assert len(results) == 100
        assert results.count("connected") == 1
        assert set(results) == {"connected", "conflict"}
        assert await redis.hget(K.call(offer["call_id"]), "state") == "connecting"
        answered = [f for _, f in await redis.xrange(K.events) if f["ev"] == "answered"]
        assert len(answered) == 1


async def test_accept_race_over_two_nodes(redis_server: RedisServer, redis: aioredis.Redis
                                          ) -> None:
    settings = SignalingSettings(secret=TEST_SECRET, redis_url=redis_server.url)
    async with running(settings, inprocess=0, processes=2, env=FAST) as stack:
        alice = await stack.client(await stack.add_interpreter("alice", ["jsl"]), node=0)
        bob = await stack.client(await stack.add_interpreter("bob", ["jsl"]), node=1)
        k = await stack.client(await stack.add_kiosk("k1"), node=1)
        await alice.request("presence.set", status="available")
        await k.request("call.request", language="jsl")
        offer = await alice.next("call.offer")
        fields = {"call_id": offer["call_id"], "offer_id": offer["offer_id"]}

        async def accept(client: object) -> str:
            try:
                await client.request("call.accept", **fields)  # type: ignore[attr-defined]
                return "ack"
            except ServerError as exc:
                return exc.code

        outcomes = await asyncio.gather(*[accept(alice) for _ in range(20)],
                                        *[accept(bob) for _ in range(20)])
        assert outcomes.count("ack") == 1
        assert outcomes[:20].count("ack") == 1  # alice's, from node 0
        assert set(outcomes[20:]) <= {"forbidden", "conflict"}
        connected = await k.next("call.connected", timeout=5)  # crossed from node 0 to node 1
        assert connected["peer"]["name"] == "Alice"
        assert await redis.hget(K.interp("bob"), "state") == "away"


async def test_dead_node_releases_its_clients(redis_server: RedisServer, redis: aioredis.Redis
                                              ) -> None:
    settings = SignalingSettings(secret=TEST_SECRET, redis_url=redis_server.url,
                                 sweep_interval_s=0.05, kiosk_grace_s=1.0, node_dead_s=4.0)
    async with running(settings, inprocess=1, processes=1, env=FAST) as stack:
        await stack.client(await stack.add_interpreter("alice", ["jsl"]), node=0)
        k = await stack.client(await stack.add_kiosk("k1"), node=1, reconnect=False)
        queued = await k.request("call.request", language="jsl")
        proc = stack.nodes[1].proc
        assert proc is not None
        proc.kill()  # no goodbye: the surviving node's sweeper must notice
        proc.wait()
        for _ in range(300):
            if await redis.hget(K.call(queued["call_id"]), "state") == "abandoned":
                break
            await asyncio.sleep(0.1)
        state = await redis.hgetall(K.call(queued["call_id"]))
        assert state["state"] == "abandoned" and state["reason"] == "peer_lost"


@pytest.mark.timeout(240)
async def test_thousand_calls_across_two_nodes(redis_server: RedisServer,
                                               redis: aioredis.Redis) -> None:
    from tests.support.load import run_load

    settings = SignalingSettings(secret=TEST_SECRET, redis_url=redis_server.url)
    async with running(settings, inprocess=0, processes=2, env=FAST) as stack:
        # Talk long enough that queues build: the waits shown at enqueue are then worth checking.
        report = await run_load(stack, kiosks=200, interpreters=40, calls=1000,
                                talk_s=(0.3, 0.9))
    assert report.errors == []
    assert len(report.kiosk_connected) == 1000
    assert all(n == 1 for n in report.kiosk_connected.values())
    assert sorted(report.interp_connected) == sorted(report.kiosk_connected)
    assert all(len(v) == 1 for v in report.interp_connected.values())
    assert report.overlaps == 0
    assert report.ended_reasons == {"hangup": 1000}
    events = await redis.xrange(K.events)
    answered = {f["call"] for _, f in events if f["ev"] == "answered"}
    assert answered == set(report.kiosk_connected)
    assert await redis.scard(K.live_calls) == 0
    # Every state change the stream records is one the state tables allow.
    call_changes, interp_changes = replay_changes(events)
    assert len({c for c, old, _ in call_changes if old is None}) == 1000
    assert illegal_transitions(call_changes) == []
    # Issue 11 item 4: at least 80 % of actual waits fall in the range shown at enqueue.
    ledger = Ledger()
    ledger.fold_all(events)
    coverage = wait_coverage(ledger, report.shown)
    save_artifact("wait-estimates.json", json.dumps(coverage, indent=1))
    print("wait estimates over 1,000 calls:", json.dumps(coverage))
    assert coverage["calls"] == 1000 and coverage["with_range"] >= 950, coverage
    assert coverage["inside_pct"] >= 80, coverage
    assert interp_changes and [
        c for c in interp_changes
        if not interpreter_transition_allowed(InterpreterState(c[1]), InterpreterState(c[2]))
    ] == []


def wait_coverage(ledger: Ledger, shown: dict[str, tuple[float | None, float | None]]
                  ) -> dict[str, float]:
    """How many answered calls waited (enqueue to answer, as the events say) within the range
    their kiosk was shown at enqueue; with the median wait and range width, for the record."""
    waits, inside, widths = [], 0, []
    for call_id, (lo, hi) in shown.items():
        rec = ledger.records.get(call_id)
        if rec is None or rec.wait_s is None or lo is None or hi is None:
            continue
        waits.append(rec.wait_s)
        widths.append(hi - lo)
        inside += lo <= rec.wait_s <= hi
    waits.sort()
    widths.sort()
    return {"calls": len(shown), "with_range": len(waits),
            "inside_pct": round(100 * inside / max(1, len(waits)), 1),
            "median_wait_s": waits[len(waits) // 2] if waits else 0.0,
            "median_width_s": widths[len(widths) // 2] if widths else 0.0}


def save_artifact(name: str, text: str) -> None:
    """Write a figure a test measured under test-artifacts/, for the record."""
    Path("test-artifacts").mkdir(exist_ok=True)
    (Path("test-artifacts") / name).write_text(text)
