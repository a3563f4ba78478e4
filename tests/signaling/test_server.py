"""The whole call flow and the protocol's edges, over real WebSockets against real Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
import redis.asyncio as aioredis

from tests.conftest import TEST_SECRET
from tests.support.stack import Stack, running
from tsunagu.client import ServerError, SignalingClient
from tsunagu.redis_keys import Keys
from tsunagu.redis_server import RedisServer
from tsunagu.settings import SignalingSettings

K = Keys()


def make_settings(redis_server: RedisServer, **kw: float) -> SignalingSettings:
    base = {"wrapup_s": 0.3, "offer_timeout_s": 5.0, "kiosk_grace_s": 5.0, "call_grace_s": 5.0,
            "interp_grace_s": 5.0, "sweep_interval_s": 0.05, "stats_interval_s": 0.5}
    base.update(kw)
    return SignalingSettings(secret=TEST_SECRET, redis_url=redis_server.url, **base)  # type: ignore[arg-type]


@pytest.fixture
async def stack(redis_server: RedisServer, redis: object) -> AsyncIterator[Stack]:
    async with running(make_settings(redis_server)) as st:
        yield st


async def answered_call(stack: Stack, lang: str = "jsl") -> tuple[SignalingClient,
                                                                  SignalingClient, str]:
    i = await stack.client(await stack.add_interpreter("alice", [lang, "en"]))
    k = await stack.client(await stack.add_kiosk("k1"))
    await i.request("presence.set", status="available")
    queued = await k.request("call.request", language=lang, procedure="転入届")
    offer = await i.next("call.offer")
    assert offer["call_id"] == queued["call_id"]
    await i.request("call.accept", call_id=offer["call_id"], offer_id=offer["offer_id"])
    await k.next("call.connected")
    await i.next("call.connected")
    return k, i, queued["call_id"]


async def test_whole_call_flow(stack: Stack) -> None:
    i = await stack.client(await stack.add_interpreter("alice", ["jsl"]))
    k = await stack.client(await stack.add_kiosk("k1", ward="北区", counter="3"))
    assert k.welcome["user"] == {"id": "k1", "name": "k1", "ward": "北区", "counter": "3"}
    assert [lang["code"] for lang in k.welcome["languages"]][0] == "jsl"
    assert (await i.next("presence"))["state"] == "away"
    assert (await i.request("presence.set", status="available"))["state"] == "available"
    queued = await k.request("call.request", language="jsl", procedure="転入届")
    assert queued["type"] == "call.queued" and queued["position"] == 1
    offer = await i.next("call.offer")
    assert (offer["ward"], offer["counter"], offer["procedure"]) == ("北区", "3", "転入届")
    assert offer["expires_in_s"] == 5
    await i.request("call.accept", call_id=offer["call_id"], offer_id=offer["offer_id"])
    kc, ic = await k.next("call.connected"), await i.next("call.connected")
    assert kc["peer"]["name"] == "Alice" and ic["peer"]["ward"] == "北区"
    assert kc["ice_servers"] == [] and ic["role"] == "interpreter"
    await k.request("chat.send", call_id=queued["call_id"], text="山田 太郎")
    got = await i.next("chat")
    assert got["text"] == "山田 太郎" and got["from"] == {"role": "kiosk", "name": "k1"}
    assert (await k.next("chat"))["text"] == "山田 太郎"
    await i.request("call.hangup", call_id=queued["call_id"])
    ended = await k.next("call.ended")
    assert ended["reason"] == "hangup" and ended["by"] == "interpreter"
    assert (await i.next("presence", state="wrapup"))["state"] == "wrapup"
    assert (await i.next("presence", state="available", timeout=5))["state"] == "available"


async def test_no_interpreter_fails_fast(stack: Stack) -> None:
    k = await stack.client(await stack.add_kiosk("k1"))
    queued = await k.request("call.request", language="ne")
    assert queued["type"] == "call.queued"
    ended = await k.next("call.ended")
    assert ended["reason"] == "no_interpreter" and ended["call_id"] == queued["call_id"]


async def test_second_request_and_cancel_rules(stack: Stack) -> None:
    await stack.client(await stack.add_interpreter("alice", ["jsl"]))
    k = await stack.client(await stack.add_kiosk("k1"))
    queued = await k.request("call.request", language="jsl")
    with pytest.raises(ServerError) as exc:
        await k.request("call.request", language="jsl")
    assert exc.value.code == "conflict"
    await k.request("call.cancel", call_id=queued["call_id"])
    assert (await k.next("call.ended"))["reason"] == "cancelled"


async def test_kiosk_hangup_while_waiting_counts_as_cancel(stack: Stack) -> None:
    await stack.client(await stack.add_interpreter("alice", ["jsl"]))
    k = await stack.client(await stack.add_kiosk("k1"))
    queued = await k.request("call.request", language="jsl")
    await k.request("call.hangup", call_id=queued["call_id"])
    assert (await k.next("call.ended"))["reason"] == "cancelled"


async def test_cancel_of_answered_call_is_conflict(stack: Stack) -> None:
    k, _i, call_id = await answered_call(stack)
    with pytest.raises(ServerError) as exc:
        await k.request("call.cancel", call_id=call_id)
    assert exc.value.code == "conflict"


async def test_decline_then_other_interpreter(stack: Stack) -> None:
    a = await stack.client(await stack.add_interpreter("alice", ["jsl"]))
    b = await stack.client(await stack.add_interpreter("bob", ["jsl"]))
    await a.request("presence.set", status="available")
    k = await stack.client(await stack.add_kiosk("k1"))
    await k.request("call.request", language="jsl")
    offer = await a.next("call.offer")
    await a.request("call.decline", call_id=offer["call_id"], offer_id=offer["offer_id"])
    await b.request("presence.set", status="available")
    offer_b = await b.next("call.offer")
    assert offer_b["call_id"] == offer["call_id"] and offer_b["offer_id"] != offer["offer_id"]
    with pytest.raises(ServerError) as exc:
        await a.request("call.accept", call_id=offer["call_id"], offer_id=offer["offer_id"])
    assert exc.value.code in ("conflict", "forbidden")


async def test_offer_timeout_sets_away(redis_server: RedisServer, redis: object) -> None:
    async with running(make_settings(redis_server, offer_timeout_s=0.5)) as stack:
        a = await stack.client(await stack.add_interpreter("alice", ["jsl"]))
        await a.request("presence.set", status="available")
        k = await stack.client(await stack.add_kiosk("k1"))
        await k.request("call.request", language="jsl")
        offer = await a.next("call.offer")
        gone = await a.next("call.offer_cancelled", timeout=5)
        assert gone["reason"] == "timeout" and gone["offer_id"] == offer["offer_id"]
        assert (await a.next("presence", state="away"))["status"] == "away"


async def test_transfer_over_the_wire(stack: Stack) -> None:
    k, i, call_id = await answered_call(stack)
    v = await stack.client(await stack.add_interpreter("van", ["vi"]))
    await i.request("call.transfer", call_id=call_id, language="vi")
    assert (await i.next("call.ended"))["reason"] == "transferred"
    requeued = await k.next("call.queued")
    assert requeued["call_id"] == call_id and requeued["language"] == "vi"
    await v.request("presence.set", status="available")
    offer = await v.next("call.offer")
    assert offer["call_id"] == call_id and offer["language"] == "vi"
    with pytest.raises(ServerError):
        await v.request("call.transfer", call_id=call_id, language="pt")


async def test_kiosk_resume_keeps_place(stack: Stack) -> None:
    await stack.client(await stack.add_interpreter("alice", ["jsl"]))
    k0 = await stack.client(await stack.add_kiosk("k0"))
    first = await k0.request("call.request", language="jsl")
    k = await stack.client(await stack.add_kiosk("k1"))
    queued = await k.request("call.request", language="jsl")
    assert queued["position"] == 2 and first["position"] == 1
    session = k.session_id
    await k.drop()
    await k.next("_reconnected", timeout=10)
    assert k.session_id == session and k.welcome["resumed"] is True
    again = await k.next("call.queued")
    assert again["call_id"] == queued["call_id"] and again["position"] == 2


async def test_kiosk_back_after_its_grace_is_told_its_call_ended(
        redis_server: RedisServer, redis: aioredis.Redis) -> None:
    async with running(make_settings(redis_server, kiosk_grace_s=0.3)) as stack:
        await stack.client(await stack.add_interpreter("alice", ["jsl"]))  # signed in, away
        token = await stack.add_kiosk("k1")
        k = await stack.client(token)
        queued = await k.request("call.request", language="jsl")
        await k.close()  # the tablet is off for longer than its grace
        for _ in range(100):
            if await redis.hget(K.call(queued["call_id"]), "state") == "abandoned":
                break
            await asyncio.sleep(0.05)
        back = await stack.client(token)
        ended = await back.next("call.ended")
        assert (ended["call_id"], ended["reason"]) == (queued["call_id"], "peer_lost")
        await back.close()  # told once: a later connection hears nothing of it
        again = await stack.client(token)
        await asyncio.sleep(0.3)
        assert not [m for m in again.drain() if m["type"] == "call.ended"]


async def test_interpreter_resume_keeps_status(stack: Stack) -> None:
    i = await stack.client(await stack.add_interpreter("alice", ["jsl"]))
    await i.request("presence.set", status="available")
    i.drain()
    await i.drop()
    await i.next("_reconnected", timeout=10)
    assert (await i.next("presence"))["state"] == "available"
    k = await stack.client(await stack.add_kiosk("k1"))
    await k.request("call.request", language="jsl")
    assert (await i.next("call.offer"))["language"] == "jsl"


async def test_resume_resends_the_offer_and_the_call_as_first_sent(stack: Stack) -> None:
    i = await stack.client(await stack.add_interpreter("alice", ["jsl"]))
    await i.request("presence.set", status="available")
    k = await stack.client(await stack.add_kiosk("k1", ward="北区", counter="3"))
    await k.request("call.request", language="jsl", procedure="転入届", priority="urgent")
    first = await i.next("call.offer")
    await asyncio.sleep(0.2)
    await i.drop()
    await i.next("_reconnected", timeout=10)
    again = await i.next("call.offer")  # the drop withdrew it; the resume offers it anew
    same = ("type", "call_id", "language", "ward", "counter", "procedure", "priority")
    assert {f: again.get(f) for f in same} == {f: first.get(f) for f in same}
    assert again["priority"] == "urgent" and again["procedure"] == "転入届"
    assert again["waited_s"] > first["waited_s"] and again["expires_in_s"] > 0
    await asyncio.sleep(0.3)
    assert "call.offer" not in [m["type"] for m in i.drain()]  # once, not twice
    await i.request("call.accept", call_id=again["call_id"], offer_id=again["offer_id"])
    connected = await i.next("call.connected")
    await i.drop()
    await i.next("_reconnected", timeout=10)
    resent = await i.next("call.connected")
    assert resent["resumed"] is True and resent["peer"] == connected["peer"]
    assert resent["ice_servers"] == connected["ice_servers"]


async def test_new_interpreter_session_starts_away(stack: Stack) -> None:
    token = await stack.add_interpreter("alice", ["jsl"])
    i = await stack.client(token)
    await i.request("presence.set", status="available")
    await i.close()
    fresh = await stack.client(token)
    assert (await fresh.next("presence"))["state"] == "away"


async def test_connected_call_survives_a_drop(stack: Stack) -> None:
    k, i, call_id = await answered_call(stack)
    await k.drop()
    await k.next("_reconnected", timeout=10)
    back = await k.next("call.connected")
    assert back["call_id"] == call_id and back["resumed"] is True
    await k.request("chat.send", call_id=call_id, text="still here")
    assert (await i.next("chat"))["text"] == "still here"


async def test_media_offer_rules(stack: Stack) -> None:
    await stack.client(await stack.add_interpreter("alice", ["jsl"]))
    k = await stack.client(await stack.add_kiosk("k1"))
    queued = await k.request("call.request", language="jsl")
    with pytest.raises(ServerError) as exc:
        await k.request("media.offer", call_id=queued["call_id"], sdp="v=0")
    assert exc.value.code == "conflict"
    await k.request("call.cancel", call_id=queued["call_id"])
    k2, _i, call_id = await answered_call_second(stack)
    with pytest.raises(ServerError) as exc:
        await k2.request("media.offer", call_id=call_id, sdp="v=0")
    assert exc.value.code == "unavailable"  # no relay registered


async def answered_call_second(stack: Stack) -> tuple[SignalingClient, SignalingClient, str]:
    i = await stack.client(await stack.add_interpreter("bob", ["en"]))
    k = await stack.client(await stack.add_kiosk("k2"))
    await i.request("presence.set", status="available")
    queued = await k.request("call.request", language="en")
    offer = await i.next("call.offer")
    await i.request("call.accept", call_id=offer["call_id"], offer_id=offer["offer_id"])
    return k, i, queued["call_id"]


async def test_calls_are_private_to_their_parties(stack: Stack, redis: object) -> None:
    k, i, call_id = await answered_call(stack)
    other = await stack.client(await stack.add_kiosk("k9"))
    for msg in ({"type": "chat.send", "text": "hi"}, {"type": "call.hangup"},
                {"type": "media.offer", "sdp": "v=0"}, {"type": "call.cancel"}):
        fields = {key: v for key, v in msg.items() if key != "type"}
        with pytest.raises(ServerError) as exc:
            await other.request(str(msg["type"]), call_id=call_id, **fields)
        assert exc.value.code == "forbidden", msg
    with pytest.raises(ServerError) as exc:
        await k.request("call.accept", call_id=call_id, offer_id="x")
    assert exc.value.code == "forbidden"  # a kiosk may not accept
    with pytest.raises(ServerError) as exc:
        await i.request("stats.subscribe")
    assert exc.value.code == "forbidden"
    assert (await k.request("chat.send", call_id=call_id, text="ok"))["type"] == "ack"


async def raw_ws(stack: Stack, token: str) -> tuple[aiohttp.ClientSession,
                                                    aiohttp.ClientWebSocketResponse]:
    http = aiohttp.ClientSession()
    ws = await http.ws_connect(stack.nodes[0].ws_url)
    await ws.send_str(json.dumps({"type": "hello", "token": token}))
    assert json.loads((await ws.receive()).data)["type"] == "welcome"
    return http, ws


async def test_bad_input_gets_error_and_changes_nothing(stack: Stack, redis: object) -> None:
    import redis.asyncio as aioredis

    assert isinstance(redis, aioredis.Redis)
    await stack.client(await stack.add_interpreter("alice", ["jsl"]))
    http, ws = await raw_ws(stack, await stack.add_kiosk("k1"))
    before = await redis.xlen(K.events)
    cases = {
        "{not json": "bad_request",
        "[1,2]": "bad_request",
        '{"type":"call.fly"}': "bad_request",
        '{"type":"call.request"}': "bad_request",
        '{"type":"call.request","language":7}': "bad_request",
        '{"type":"call.request","language":"jsl","priority":"vip"}': "bad_request",
        '{"type":"call.request","language":"xx"}': "bad_request",
        '{"type":"presence.set","status":"available"}': "forbidden",
        '{"type":"call.cancel","call_id":"c_nope"}': "not_found",
        '{"type":"hello","token":"again"}': "bad_request",
    }
    try:
        for raw, code in cases.items():
            await ws.send_str(raw)
            reply = json.loads((await ws.receive(timeout=5)).data)
            assert reply["type"] == "error" and reply["code"] == code, raw
        assert await redis.xlen(K.events) == before
        assert not ws.closed
        await ws.send_str(json.dumps({"type": "chat.send", "call_id": "c", "text": "x" * 70_000}))
        closing = await ws.receive(timeout=5)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ws.close_code == 1009
    finally:
        await ws.close()
        await http.close()


async def test_flood_is_rate_limited(redis_server: RedisServer, redis: object) -> None:
    async with running(make_settings(redis_server, messages_per_s=5)) as stack:
        http, ws = await raw_ws(stack, await stack.add_kiosk("k1"))
        try:
            for _ in range(30):
                await ws.send_str('{"type":"call.cancel","call_id":"c_x"}')
            codes = []
            for _ in range(30):  # every frame is answered
                codes.append(json.loads((await ws.receive(timeout=5)).data)["code"])
            # 5 a second (the hello counted too), so 4 to 10 got through within two seconds
            assert 4 <= codes.count("not_found") <= 10
            assert codes.count("rate_limited") == 30 - codes.count("not_found")
        finally:
            await ws.close()
            await http.close()


async def test_origin_allow_list(stack: Stack) -> None:
    url = stack.nodes[0].ws_url
    host = stack.nodes[0].base_url
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
            await http.ws_connect(url, headers={"Origin": "https://evil.example"})
        assert exc.value.status == 403
        ws = await http.ws_connect(url, headers={"Origin": host})
        await ws.close()


async def test_hello_must_come_first_and_in_time(redis_server: RedisServer, redis: object
                                                 ) -> None:
    async with running(make_settings(redis_server, auth_timeout_s=0.5)) as stack, \
            aiohttp.ClientSession() as http:
        ws = await http.ws_connect(stack.nodes[0].ws_url)
        await ws.send_str('{"type":"call.request","language":"jsl"}')
        reply = json.loads((await ws.receive(timeout=5)).data)
        assert reply["code"] == "unauthorized"
        await ws.receive(timeout=5)
        assert ws.close_code == 4401
        ws = await http.ws_connect(stack.nodes[0].ws_url)
        reply = json.loads((await ws.receive(timeout=5)).data)
        assert reply["code"] == "unauthorized"
        await ws.receive(timeout=5)
        assert ws.close_code == 4401


async def test_login_refuses_wrong_password(stack: Stack) -> None:
    await stack.add_interpreter("alice", ["jsl"], password="correct-horse")
    async with aiohttp.ClientSession() as http:
        async with http.post(stack.nodes[0].base_url + "/api/login",
                             json={"username": "alice", "password": "wrong"}) as r:
            assert r.status == 401
        async with http.post(stack.nodes[0].base_url + "/api/login",
                             json={"username": "nobody", "password": "wrong"}) as r:
            assert r.status == 401
        async with http.post(stack.nodes[0].base_url + "/api/login",
                             json={"username": "alice", "password": "correct-horse"}) as r:
            body = await r.json()
            assert r.status == 200 and body["role"] == "interpreter"


async def test_replaced_socket_is_closed(stack: Stack) -> None:
    token = await stack.add_kiosk("k1")
    first = await stack.client(token, reconnect=False)
    await stack.client(token)
    closed = await first.next("_closed", timeout=5)
    assert closed["code"] == 4409


async def test_a_client_silent_for_two_heartbeats_is_dropped_not_sooner(
        redis_server: RedisServer, redis: aioredis.Redis) -> None:
    """PROTOCOL.md: pings every heartbeat_s; no answer for 2 x heartbeat_s drops the client."""
    async with running(make_settings(redis_server, heartbeat_s=0.4)) as stack:
        token = await stack.add_kiosk("k1")
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(stack.nodes[0].ws_url, autoping=False)  # never pongs
            await ws.send_str(json.dumps({"type": "hello", "token": token}))
            loop = asyncio.get_running_loop()
            started = loop.time()
            while not ws.closed:
                msg = await ws.receive(timeout=5)
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                aiohttp.WSMsgType.CLOSING):
                    break
            silent = loop.time() - started
    # the first ping goes 0.4 s after the last sign of life; its pong is awaited 0.4 s more
    assert 0.75 <= silent <= 1.6, silent


async def position_reads(stack: Stack) -> int:
    async with aiohttp.ClientSession() as http, http.get(
            stack.nodes[0].base_url + "/metrics") as resp:
        text = await resp.text()
    found = [line for line in text.splitlines()
             if line.startswith('tsunagu_reads_total{kind="positions"}')]
    return int(found[0].split()[-1]) if found else 0


async def test_a_new_call_is_not_read_again_for_its_place(stack: Stack) -> None:
    """The kiosk is told its place from enqueue's own answer: the place-in-line ticker does
    not read it again; a change that moves it (an urgent call ahead) does."""
    await stack.client(await stack.add_interpreter("alice", ["jsl"]))  # signed in, away
    k1 = await stack.client(await stack.add_kiosk("k1"))
    queued = await k1.request("call.request", language="jsl")
    assert queued["position"] == 1
    await asyncio.sleep(1.5)  # the ticker fires within 0.5 s of the change
    assert await position_reads(stack) == 0
    k2 = await stack.client(await stack.add_kiosk("k2"))
    await k2.request("call.request", language="jsl", priority="urgent")
    moved = await k1.next("call.position", timeout=5)
    assert moved["position"] == 2
    assert await position_reads(stack) >= 1
