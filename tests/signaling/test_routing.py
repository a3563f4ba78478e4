"""Every routing rule of PROTOCOL.md section 5 and DESIGN.md section 3, against real Redis."""

from __future__ import annotations

import itertools

import redis.asyncio as aioredis

from signaling.routing import Router
from tests.signaling.conftest import T0
from tsunagu.redis_keys import Keys

K = Keys()
_ops = itertools.count()


def op() -> str:
    return f"op{next(_ops)}"


async def interp(router: Router, name: str, langs: list[str], *, now: int, available: bool = True,
                 ) -> None:
    await router.interp_connect(name, langs, name.title(), resumed=False, now=now)
    if available:
        out = await router.presence(name, "available", op=op(), now=now)
        assert out.ok


async def call(router: Router, kiosk: str, lang: str = "jsl", *, now: int,
               priority: str = "normal") -> str:
    cid = f"c_{kiosk}_{now}"
    out = await router.enqueue(kiosk=kiosk, ward="Kita", counter="1", language=lang,
                               priority=priority, procedure=None, call_id=cid, op=op(), now=now)
    assert out.ok, out.data
    return cid


async def state(redis: aioredis.Redis, call_id: str) -> dict[str, str]:
    return await redis.hgetall(K.call(call_id))


async def istate(redis: aioredis.Redis, name: str) -> str:
    return str(await redis.hget(K.interp(name), "state"))


async def test_new_interpreter_starts_away_and_gets_nothing(router: Router, redis: aioredis.Redis
                                                            ) -> None:
    await interp(router, "alice", ["jsl"], now=T0, available=False)
    assert await istate(redis, "alice") == "away"
    cid = await call(router, "k1", now=T0 + 1)
    assert (await state(redis, cid))["state"] == "queued"


async def test_call_is_offered_to_longest_idle_interpreter(router: Router, redis: aioredis.Redis
                                                          ) -> None:
    await interp(router, "bob", ["jsl"], now=T0)
    await interp(router, "alice", ["jsl"], now=T0 - 5000)  # idle longer
    cid = await call(router, "k1", now=T0 + 10)
    st = await state(redis, cid)
    assert st["state"] == "offered" and st["interpreter"] == "alice"
    assert await istate(redis, "alice") == "offered"
    assert await istate(redis, "bob") == "available"


async def test_fail_fast_when_nobody_logged_in(router: Router, redis: aioredis.Redis) -> None:
    out = await router.enqueue(kiosk="k1", ward="W", counter="1", language="vi",
                               priority="normal", procedure=None, call_id="c1", op=op(), now=T0)
    assert out.get("ok") == "failed" and out.get("reason") == "no_interpreter"
    st = await state(redis, "c1")
    assert st["state"] == "failed" and st["reason"] == "no_interpreter"
    assert await redis.get(K.kiosk_call("k1")) is None


async def test_accept_connects_and_stale_offer_loses(router: Router, redis: aioredis.Redis
                                                     ) -> None:
    await interp(router, "alice", ["jsl"], now=T0)
    cid = await call(router, "k1", now=T0 + 1)
    offer_id = (await state(redis, cid))["offer_id"]
    bad = await router.accept("alice", cid, "o_stale", op=op(), now=T0 + 2)
    assert bad.err == "conflict"
    good = await router.accept("alice", cid, offer_id, op=op(), now=T0 + 3)
    assert good.ok
    assert (await state(redis, cid))["state"] == "connecting"
    assert await istate(redis, "alice") == "in_call"
    again = await router.accept("alice", cid, offer_id, op=op(), now=T0 + 4)
    assert again.err == "conflict"


async def test_only_the_offered_interpreter_may_accept(router: Router, redis: aioredis.Redis
                                                       ) -> None:
    await interp(router, "alice", ["jsl"], now=T0)
    await interp(router, "bob", ["jsl"], now=T0 + 1)
    cid = await call(router, "k1", now=T0 + 2)
    offer_id = (await state(redis, cid))["offer_id"]
    assert (await router.accept("bob", cid, offer_id, op=op(), now=T0 + 3)).err == "forbidden"
    assert (await router.decline("bob", cid, offer_id, op=op(), now=T0 + 3)).err == "forbidden"
    assert (await state(redis, cid))["state"] == "offered"
    assert await istate(redis, "bob") == "available"


async def test_same_operation_twice_changes_nothing(router: Router, redis: aioredis.Redis) -> None:
    await interp(router, "alice", ["jsl"], now=T0)
    first = await router.enqueue(kiosk="k1", ward="W", counter="1", language="jsl",
                                 priority="normal", procedure=None, call_id="c1", op="same",
                                 now=T0)
    events_after_first = await redis.xlen(K.events)
    second = await router.enqueue(kiosk="k1", ward="W", counter="1", language="jsl",
                                  priority="normal", procedure=None, call_id="c2", op="same",
                                  now=T0 + 5)
    assert second.data == first.data
    assert await redis.exists(K.call("c2")) == 0
    assert await redis.xlen(K.events) == events_after_first


async def test_urgent_goes_first_without_starving(router: Router, redis: aioredis.Redis) -> None:
    await call_queue(router)
    order = await redis.zrange(K.queue("jsl"), 0, -1)
    # c_old waited 700 s (> 600 s boost) so it stays ahead of the urgent call; c_new does not.
    assert order == ["c_old_" + str(T0), "c_urgent_" + str(T0 + 700_000), "c_new_" + str(T0 + 1)]


async def call_queue(router: Router) -> None:
    await interp(router, "alice", ["jsl"], now=T0, available=False)
    await router.enqueue(kiosk="old", ward="W", counter="1", language="jsl", priority="normal",
                         procedure=None, call_id=f"c_old_{T0}", op=op(), now=T0 - 700_000)
    await router.enqueue(kiosk="new", ward="W", counter="1", language="jsl", priority="normal",
                         procedure=None, call_id=f"c_new_{T0 + 1}", op=op(), now=T0 + 1)
    await router.enqueue(kiosk="urg", ward="W", counter="1", language="jsl", priority="urgent",
                         procedure=None, call_id=f"c_urgent_{T0 + 700_000}", op=op(),
                         now=T0 + 2)


async def test_free_interpreter_takes_oldest_call_across_languages(router: Router,
                                                                   redis: aioredis.Redis) -> None:
    await interp(router, "polly", ["en", "vi"], now=T0, available=False)
    await interp(router, "x", ["jsl"], now=T0, available=False)
    await call(router, "k_en", "en", now=T0 + 100)
    await call(router, "k_vi", "vi", now=T0 + 50)
    await router.presence("polly", "available", op=op(), now=T0 + 200)
    assert (await state(redis, f"c_k_vi_{T0 + 50}"))["state"] == "offered"
    assert (await state(redis, f"c_k_en_{T0 + 100}"))["state"] == "queued"


async def test_decline_returns_call_to_its_place_and_skips_decliner(router: Router,
                                                                    redis: aioredis.Redis) -> None:
    await interp(router, "alice", ["jsl"], now=T0)
    first = await call(router, "k1", now=T0 + 1)
    second = await call(router, "k2", now=T0 + 2)
    offer_id = (await state(redis, first))["offer_id"]
    out = await router.decline("alice", first, offer_id, op=op(), now=T0 + 3)
    assert out.ok
    # alice is free again and is offered the *second* call, never the first one again
    assert (await state(redis, second))["interpreter"] == "alice"
    st = await state(redis, first)
    assert st["state"] == "queued" and float(st["score"]) == T0 + 1
    assert await redis.zscore(K.queue("jsl"), first) == T0 + 1
    await interp(router, "bob", ["jsl"], now=T0 + 4)
    assert (await state(redis, first))["interpreter"] == "bob"


async def test_everyone_passed_call_waits_for_newcomer(router: Router, redis: aioredis.Redis
                                                       ) -> None:
    await interp(router, "alice", ["jsl"], now=T0)
    cid = await call(router, "k1", now=T0 + 1)
    await router.decline("alice", cid, (await state(redis, cid))["offer_id"], op=op(), now=T0 + 2)
    assert (await state(redis, cid))["state"] == "queued"
    assert await istate(redis, "alice") == "available"
    await interp(router, "carol", ["jsl"], now=T0 + 3)
    assert (await state(redis, cid))["interpreter"] == "carol"


async def test_offer_timeout_sets_interpreter_away(router: Router, redis: aioredis.Redis) -> None:
    await interp(router, "alice", ["jsl"], now=T0)
    cid = await call(router, "k1", now=T0 + 1)
    assert await router.due_deadlines(now=T0 + 19_000) == []
    due = await router.due_deadlines(now=T0 + 21_000)
    offer_member = [m for m in due if m.startswith("offer|")]
    assert len(offer_member) == 1
    out = await router.fire_deadline(offer_member[0], now=T0 + 21_000)
    assert out.get("ok") == "timeout"
    assert await istate(redis, "alice") == "away"
    assert (await state(redis, cid))["state"] == "queued"
    assert await redis.sismember(K.passed(cid), "alice")
    again = await router.fire_deadline(offer_member[0], now=T0 + 21_001)
    assert again.get("ok") == "stale"


async def test_hangup_wrapup_then_available(router: Router, redis: aioredis.Redis) -> None:
    await interp(router, "alice", ["jsl"], now=T0)
    cid = await call(router, "k1", now=T0 + 1)
    await router.accept("alice", cid, (await state(redis, cid))["offer_id"], op=op(), now=T0 + 2)
    out = await router.hangup("kiosk", "k1", cid, op=op(), now=T0 + 60_002)
    assert out.ok and out.get("duration_s") == 60
    assert await istate(redis, "alice") == "wrapup"
    waiting = await call(router, "k2", now=T0 + 60_010)
    assert (await state(redis, waiting))["state"] == "queued"  # not offered during wrap-up
    due = await router.due_deadlines(now=T0 + 60_002 + 15_000)
    assert "wrapup|alice|" in due
    await router.fire_deadline("wrapup|alice|", now=T0 + 75_002)
    assert (await state(redis, waiting))["interpreter"] == "alice"


async def test_ready_now_ends_wrapup_early(router: Router, redis: aioredis.Redis) -> None:
    await interp(router, "alice", ["jsl"], now=T0)
    cid = await call(router, "k1", now=T0 + 1)
    await router.accept("alice", cid, (await state(redis, cid))["offer_id"], op=op(), now=T0 + 2)
    await router.hangup("interpreter", "alice", cid, op=op(), now=T0 + 5_000)
    await router.presence("alice", "available", op=op(), now=T0 + 6_000)
    assert await istate(redis, "alice") == "available"
    assert "wrapup|alice|" not in await router.due_deadlines(now=T0 + 100_000)


async def test_new_session_during_wrapup_starts_away(router: Router, redis: aioredis.Redis
                                                     ) -> None:
    await interp(router, "alice", ["jsl"], now=T0)
    cid = await call(router, "k1", now=T0 + 1)
    await router.accept("alice", cid, (await state(redis, cid))["offer_id"], op=op(), now=T0 + 2)
    await router.hangup("kiosk", "k1", cid, op=op(), now=T0 + 3)
    assert await redis.hget(K.interp("alice"), "until_ms") == str(T0 + 3 + 15_000)
    out = await router.interp_connect("alice", ["jsl"], "Alice", resumed=False, now=T0 + 4)
    assert out.data["state"] == "away"
    assert "wrapup|alice|" not in await router.due_deadlines(now=T0 + 100_000)


async def test_transfer_keeps_original_place(router: Router, redis: aioredis.Redis) -> None:
    await interp(router, "alice", ["jsl", "en"], now=T0)
    await interp(router, "eve", ["vi"], now=T0, available=False)
    cid = await call(router, "k1", now=T0 + 1)
    await router.accept("alice", cid, (await state(redis, cid))["offer_id"], op=op(), now=T0 + 2)
    later = await call(router, "k2", "vi", now=T0 + 1000)
    out = await router.transfer("alice", cid, "vi", op=op(), now=T0 + 5000)
    assert out.ok
    assert await redis.zrange(K.queue("vi"), 0, -1) == [cid, later]
    assert await istate(redis, "alice") == "wrapup"
    refused = await router.transfer("alice", cid, "pt", op=op(), now=T0 + 5001)
    assert refused.err in ("forbidden", "conflict")


async def test_cancel_while_offered_frees_interpreter(router: Router, redis: aioredis.Redis
                                                      ) -> None:
    await interp(router, "alice", ["jsl"], now=T0)
    cid = await call(router, "k1", now=T0 + 1)
    out = await router.cancel("k1", cid, op=op(), now=T0 + 2)
    assert out.ok
    st = await state(redis, cid)
    assert st["state"] == "abandoned" and st["reason"] == "cancelled"
    assert await istate(redis, "alice") == "available"
    assert (await router.cancel("k2", cid, op=op(), now=T0 + 3)).err == "forbidden"


async def test_cancel_of_connected_call_is_conflict(router: Router, redis: aioredis.Redis) -> None:
    await interp(router, "alice", ["jsl"], now=T0)
    cid = await call(router, "k1", now=T0 + 1)
    await router.accept("alice", cid, (await state(redis, cid))["offer_id"], op=op(), now=T0 + 2)
    assert (await router.cancel("k1", cid, op=op(), now=T0 + 3)).err == "conflict"


async def test_second_call_from_same_kiosk_is_conflict(router: Router, redis: aioredis.Redis
                                                       ) -> None:
    await interp(router, "alice", ["jsl"], now=T0, available=False)
    await call(router, "k1", now=T0)
    out = await router.enqueue(kiosk="k1", ward="W", counter="1", language="jsl",
                               priority="normal", procedure=None, call_id="cx", op=op(),
                               now=T0 + 1)
    assert out.err == "conflict"


async def test_max_wait_fails_the_call(router: Router, redis: aioredis.Redis) -> None:
    await interp(router, "alice", ["jsl"], now=T0, available=False)
    cid = await call(router, "k1", now=T0)
    due = await router.due_deadlines(now=T0 + 1_800_000)
    assert f"maxwait|{cid}|" in due
    await router.fire_deadline(f"maxwait|{cid}|", now=T0 + 1_800_000)
    st = await state(redis, cid)
    assert st["state"] == "failed" and st["reason"] == "timeout"


async def test_kiosk_grace_keeps_place_then_abandons(router: Router, redis: aioredis.Redis
                                                     ) -> None:
    await interp(router, "alice", ["jsl"], now=T0, available=False)
    cid = await call(router, "k1", now=T0)
    await router.kiosk_disconnect("k1", now=T0 + 10)
    back = await router.kiosk_connect("k1", now=T0 + 5000)
    assert back.data["call_id"] == cid and back.data["position"] == 1
    assert f"kgrace|{cid}|" not in await router.due_deadlines(now=T0 + 100_000)
    await router.kiosk_disconnect("k1", now=T0 + 6000)
    await router.fire_deadline(f"kgrace|{cid}|", now=T0 + 26_000)
    st = await state(redis, cid)
    assert st["state"] == "abandoned" and st["reason"] == "peer_lost"
    # back later: told of the end it missed, once
    back = await router.kiosk_connect("k1", now=T0 + 60_000)
    assert back.data["ended"]["call_id"] == cid and back.data["ended"]["reason"] == "peer_lost"
    assert "ended" not in (await router.kiosk_connect("k1", now=T0 + 61_000)).data


async def test_kiosk_on_a_dead_node_hears_of_the_end_when_it_connects_again(
        router: Router, redis: aioredis.Redis) -> None:
    """Its node was killed: the end goes to that node's inbox, which no one reads; the kiosk
    resumes on another node and is told there."""
    await interp(router, "alice", ["jsl"], now=T0)
    cid = await call(router, "k1", now=T0 + 1)
    await router.accept("alice", cid, (await state(redis, cid))["offer_id"], op=op(), now=T0 + 2)
    await redis.set(K.client_node("k:k1"), "n_killed")
    await router.hangup("interpreter", "alice", cid, op=op(), now=T0 + 5_000)
    back = await router.kiosk_connect("k1", now=T0 + 6_000)
    assert back.data["ended"]["call_id"] == cid and back.data["ended"]["reason"] == "hangup"
    assert "ended" not in (await router.kiosk_connect("k1", now=T0 + 7_000)).data


async def test_interpreter_drop_withdraws_ringing_offer(router: Router, redis: aioredis.Redis
                                                        ) -> None:
    await interp(router, "alice", ["jsl"], now=T0)
    cid = await call(router, "k1", now=T0 + 1)
    await router.interp_disconnect("alice", now=T0 + 2)
    st = await state(redis, cid)
    assert st["state"] == "queued"
    assert not await redis.sismember(K.passed(cid), "alice")
    # back within grace with the same session: status kept, and the call is offered again
    # (the answer names the new offer, so the node can send it: the resume must not lose it)
    out = await router.interp_connect("alice", ["jsl"], "Alice", resumed=True, now=T0 + 3)
    assert out.data["state"] == "offered" and out.data["call_id"] == cid
    assert out.data["offer_id"] == (await state(redis, cid))["offer_id"]


async def test_interpreter_resume_keeps_available(router: Router, redis: aioredis.Redis) -> None:
    await interp(router, "alice", ["jsl"], now=T0)
    await router.interp_disconnect("alice", now=T0 + 1)
    cid = await call(router, "k1", now=T0 + 2)
    assert (await state(redis, cid))["state"] == "queued"  # nothing offered while gone
    out = await router.interp_connect("alice", ["jsl"], "Alice", resumed=True, now=T0 + 3)
    assert out.data["state"] == "offered"


async def test_connected_call_ends_peer_lost_after_grace(router: Router, redis: aioredis.Redis
                                                         ) -> None:
    await interp(router, "alice", ["jsl"], now=T0)
    cid = await call(router, "k1", now=T0 + 1)
    await router.accept("alice", cid, (await state(redis, cid))["offer_id"], op=op(), now=T0 + 2)
    await router.interp_disconnect("alice", now=T0 + 10)
    member = f"cgrace|{cid}|interpreter"
    assert member in await router.due_deadlines(now=T0 + 30_010)
    await router.fire_deadline(member, now=T0 + 30_010)
    st = await state(redis, cid)
    assert st["state"] == "ended" and st["reason"] == "peer_lost"


async def test_events_record_every_transition(router: Router, redis: aioredis.Redis) -> None:
    await interp(router, "alice", ["jsl"], now=T0)
    cid = await call(router, "k1", now=T0 + 1)
    await router.accept("alice", cid, (await state(redis, cid))["offer_id"], op=op(), now=T0 + 2)
    await router.hangup("kiosk", "k1", cid, op=op(), now=T0 + 3)
    evs = [f["ev"] for _, f in await redis.xrange(K.events)]
    assert [e for e in evs if e != "presence"] == ["enqueued", "offered", "answered", "ended"]


async def test_deadline_removed_meanwhile_does_nothing(router: Router, redis: aioredis.Redis
                                                      ) -> None:
    await interp(router, "alice", ["jsl"], now=T0, available=False)
    cid = await call(router, "k1", now=T0)
    await router.kiosk_disconnect("k1", now=T0 + 10)
    member = f"kgrace|{cid}|"
    assert member in await router.due_deadlines(now=T0 + 20_010)  # the sweeper read it ...
    await router.kiosk_connect("k1", now=T0 + 20_005)  # ... and the kiosk came back meanwhile
    out = await router.fire_deadline(member, now=T0 + 20_010)
    assert out.get("ok") == "stale"
    assert (await state(redis, cid))["state"] == "queued"


async def test_max_wait_while_ringing_is_applied_after_the_ring(router: Router,
                                                                redis: aioredis.Redis) -> None:
    await interp(router, "alice", ["jsl"], now=T0)
    cid = await call(router, "k1", now=T0)
    offer_id = (await state(redis, cid))["offer_id"]
    assert (await router.fire_deadline(f"maxwait|{cid}|", now=T0 + 1_800_000)).get("ok") == "later"
    await router.decline("alice", cid, offer_id, op=op(), now=T0 + 1_800_100)
    due = await router.due_deadlines(now=T0 + 1_801_100)
    assert f"maxwait|{cid}|" in due
    await router.fire_deadline(f"maxwait|{cid}|", now=T0 + 1_801_100)
    st = await state(redis, cid)
    assert st["state"] == "failed" and st["reason"] == "timeout"


async def test_transfer_keeps_a_maximum_wait_and_the_kiosk_grace(router: Router,
                                                                 redis: aioredis.Redis) -> None:
    await interp(router, "alice", ["jsl", "vi"], now=T0)
    cid = await call(router, "k1", now=T0 + 1)
    await router.accept("alice", cid, (await state(redis, cid))["offer_id"], op=op(), now=T0 + 2)
    # alice is the only Vietnamese interpreter: transferring to herself would strand the call
    assert (await router.transfer("alice", cid, "vi", op=op(), now=T0 + 3)).err == "conflict"
    await interp(router, "van", ["vi"], now=T0 + 4, available=False)
    await router.kiosk_disconnect("k1", now=T0 + 5)
    assert (await router.transfer("alice", cid, "vi", op=op(), now=T0 + 6)).ok
    due = await router.due_deadlines(now=T0 + 10_000_000)
    assert f"maxwait|{cid}|" in due
    assert f"kgrace|{cid}|" in due and f"cgrace|{cid}|kiosk" not in due


async def test_accept_while_the_kiosk_is_away_starts_its_call_grace(router: Router,
                                                                    redis: aioredis.Redis) -> None:
    await interp(router, "alice", ["jsl"], now=T0)
    cid = await call(router, "k1", now=T0 + 1)
    await router.kiosk_disconnect("k1", now=T0 + 2)
    await router.accept("alice", cid, (await state(redis, cid))["offer_id"], op=op(), now=T0 + 3)
    due = await router.due_deadlines(now=T0 + 100_000)
    assert f"cgrace|{cid}|kiosk" in due and f"kgrace|{cid}|" not in due
    await router.fire_deadline(f"cgrace|{cid}|kiosk", now=T0 + 100_000)
    assert (await state(redis, cid))["reason"] == "peer_lost"
    assert await istate(redis, "alice") == "wrapup"


async def test_stale_disconnect_after_a_reconnect_elsewhere_changes_nothing(
        router: Router, redis: aioredis.Redis) -> None:
    await interp(router, "alice", ["jsl"], now=T0)
    await redis.set(K.client_node("i:alice"), "node-b")  # the newer socket is on node b
    out = await router.interp_disconnect("alice", node="node-a", now=T0 + 1)
    assert out.get("ok") == "stale"
    assert await redis.hget(K.interp("alice"), "connected") == "1"
    assert await redis.get(K.client_node("i:alice")) == "node-b"
    out = await router.interp_disconnect("alice", node="node-b", now=T0 + 2)
    assert await redis.hget(K.interp("alice"), "connected") == "0"
    assert await redis.get(K.client_node("i:alice")) is None


async def test_last_interpreter_leaving_fails_waiting_calls_fast(router: Router,
                                                                 redis: aioredis.Redis) -> None:
    await interp(router, "alice", ["vi"], now=T0, available=False)
    cid = await call(router, "k1", "vi", now=T0 + 1)
    await router.interp_disconnect("alice", now=T0 + 2)
    await router.fire_deadline("igrace|alice|", now=T0 + 30_002)
    assert f"nointerp|{cid}|" in await router.due_deadlines(now=T0 + 30_002)
    await router.fire_deadline(f"nointerp|{cid}|", now=T0 + 30_002)
    st = await state(redis, cid)
    assert st["state"] == "failed" and st["reason"] == "no_interpreter"


async def test_wrapup_ending_while_disconnected_keeps_status(router: Router,
                                                             redis: aioredis.Redis) -> None:
    await interp(router, "alice", ["jsl"], now=T0)
    cid = await call(router, "k1", now=T0 + 1)
    await router.accept("alice", cid, (await state(redis, cid))["offer_id"], op=op(), now=T0 + 2)
    await router.hangup("kiosk", "k1", cid, op=op(), now=T0 + 3)
    await router.interp_disconnect("alice", now=T0 + 4)
    await router.fire_deadline("wrapup|alice|", now=T0 + 15_003)
    assert await istate(redis, "alice") == "available"
    assert await redis.zscore(K.idle("jsl"), "alice") is None  # offered nothing while gone
    waiting = await call(router, "k2", now=T0 + 16_000)
    await router.interp_connect("alice", ["jsl"], "Alice", resumed=True, now=T0 + 17_000)
    assert (await state(redis, waiting))["interpreter"] == "alice"
