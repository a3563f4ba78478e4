"""Issue 10: hostile frames answered and never fatal, refusals that write nothing, a Redis
restart invisible to clients, and the per-principal flood limits of PROTOCOL.md section 13."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from signaling.node import NODE
from tests.signaling.test_server import answered_call, make_settings
from tests.support.stack import Stack, running
from tsunagu.client import SignalingClient
from tsunagu.redis_keys import Keys
from tsunagu.redis_server import RedisServer

K = Keys()
DEEP = '{"type":"call.cancel","call_id":"c","x":' + "[" * 1000 + "]" * 1000 + "}"


@pytest.fixture
async def stack(redis_server: RedisServer, redis: object) -> AsyncIterator[Stack]:
    async with running(make_settings(redis_server)) as st:
        yield st


async def signed_in(stack: Stack, token: str, http: aiohttp.ClientSession, node: int = 0
                    ) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(stack.nodes[node].ws_url, max_msg_size=1 << 20)
    await ws.send_str(json.dumps({"type": "hello", "token": token}))
    assert json.loads((await ws.receive(timeout=5)).data)["type"] == "welcome"
    return ws


async def reply_to(ws: aiohttp.ClientWebSocketResponse, frame: str | bytes,
                   skip: tuple[str, ...] = ("presence", "stats", "call.position")
                   ) -> dict[str, Any]:
    """Send one frame; the next frame that is not a push of ``skip``."""
    if isinstance(frame, bytes):
        await ws.send_bytes(frame)
    else:
        await ws.send_str(frame)
    while True:
        msg = await ws.receive(timeout=5)
        assert msg.type == aiohttp.WSMsgType.TEXT, (msg.type, ws.close_code)
        data: dict[str, Any] = json.loads(msg.data)
        if data.get("type") not in skip:
            return data


async def still_answers(ws: aiohttp.ClientWebSocketResponse) -> None:
    reply = await reply_to(ws, '{"type":"call.cancel","call_id":"c_none","rid":"alive"}')
    assert reply["rid"] == "alive" and reply["code"] in ("not_found", "forbidden")


async def refused_before_hello(stack: Stack, frame: str | bytes) -> None:
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(stack.nodes[0].ws_url)
        if isinstance(frame, bytes):
            await ws.send_bytes(frame)
        else:
            await ws.send_str(frame)
        msg = await ws.receive(timeout=5)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg.type
        assert json.loads(msg.data)["code"] == "unauthorized"
        await ws.receive(timeout=5)
        assert ws.close_code == 4401


async def test_deep_nesting_is_a_bad_request(stack: Stack) -> None:
    assert len(DEEP) < 2100
    await refused_before_hello(stack, DEEP)
    async with aiohttp.ClientSession() as http:
        ws = await signed_in(stack, await stack.add_kiosk("k1"), http)
        assert (await reply_to(ws, DEEP))["code"] == "bad_request"
        assert (await reply_to(ws, "[" * 5000 + "]" * 5000))["code"] == "bad_request"
        await still_answers(ws)


async def test_lone_surrogates_are_bad_requests(stack: Stack, redis: aioredis.Redis) -> None:
    k, i, call_id = await answered_call(stack)
    await refused_before_hello(stack, '{"type":"hello","token":"\\ud800"}')
    async with aiohttp.ClientSession() as http:
        ws = await signed_in(stack, await stack.add_kiosk("k2"), http)
        for frame in ('{"type":"call.cancel","call_id":"c_1","rid":"\\ud800"}',
                      '{"type":"call.cancel","call_id":"\\udfff"}',
                      '{"type":"call.request","language":"jsl","procedure":"a\\ud800b"}',
                      '{"type":"call.cancel","call_id":"c_1","extra":{"\\ud800":1}}',
                      '{"type":"\\ud800"}'):
            reply = await reply_to(ws, frame)
            assert reply["type"] == "error" and reply["code"] == "bad_request", frame
            assert "rid" not in reply
        await still_answers(ws)
        assert await redis.get(K.kiosk_call("k2")) is None
    # chat text between the parties of a call: refused, and the peer's socket lives on
    await k.send("chat.send", call_id=call_id, text="\ud800", rid="bad")
    reply = await k.next("error", timeout=5)
    assert reply["code"] == "bad_request"
    await k.request("chat.send", call_id=call_id, text="こんにちは")
    assert (await i.next("chat"))["text"] == "こんにちは"


async def test_a_writer_failure_closes_the_socket(stack: Stack) -> None:
    async with aiohttp.ClientSession() as http:
        ws = await signed_in(stack, await stack.add_kiosk("k1"), http)
        runner = stack.nodes[0].runner
        assert runner is not None
        (conn,) = [c for c in runner.app[NODE].connections if c.client_id == "k:k1"]
        conn.send_raw('{"type":"x","text":"\ud800"}')  # cannot be encoded: the writer fails
        msg = await ws.receive(timeout=5)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ws.close_code == 1011


async def test_binary_frames(stack: Stack) -> None:
    await refused_before_hello(stack, b'{"type":"hello"}')
    async with aiohttp.ClientSession() as http:
        ws = await signed_in(stack, await stack.add_kiosk("k1"), http)
        assert (await reply_to(ws, b"\x00\x01"))["code"] == "bad_request"
        await still_answers(ws)


async def test_frame_of_exactly_64_kib_is_accepted(stack: Stack) -> None:
    async with aiohttp.ClientSession() as http:
        ws = await signed_in(stack, await stack.add_kiosk("k1"), http)
        head = '{"type":"call.cancel","call_id":"c_none","rid":"big","pad":"'
        frame = head + "x" * (65536 - len(head) - 2) + '"}'
        assert len(frame.encode()) == 65536
        reply = await reply_to(ws, frame)
        assert reply["rid"] == "big" and reply["code"] == "not_found"
        await ws.send_str(frame[:-2] + 'x"}')  # 65,537 bytes
        msg = await ws.receive(timeout=5)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ws.close_code == 1009


async def test_refusals_write_nothing(stack: Stack, redis: aioredis.Redis) -> None:
    i = await stack.client(await stack.add_interpreter("alice", ["jsl"]))
    k = await stack.client(await stack.add_kiosk("k1"))
    await i.request("presence.set", status="available")
    queued = await k.request("call.request", language="jsl")
    offer = await i.next("call.offer")
    await asyncio.sleep(0.3)
    # The events stream, and the record writers' cursor that follows it, move on their own.
    before = {key: await redis.dump(key) for key in await redis.keys("*")
              if ":events" not in key and ":records_upto" not in key}
    refusals = [
        (k, "call.cancel", {"call_id": "c_nope"}),
        (i, "call.accept", {"call_id": queued["call_id"], "offer_id": "o_stale"}),
        (i, "call.decline", {"call_id": "c_nope", "offer_id": "o_x"}),
        (i, "call.hangup", {"call_id": queued["call_id"]}),
        (k, "call.request", {"language": "jsl"}),  # it already has a call
        (i, "call.transfer", {"call_id": queued["call_id"], "language": "en"}),
    ]
    for client, kind, fields in refusals:
        with pytest.raises(Exception, match=r"."):
            await client.request(kind, **fields)
    after = {key: await redis.dump(key) for key in await redis.keys("*")
             if ":events" not in key and ":rl:" not in key and ":records_upto" not in key}
    assert [key for key in after if ":done:" in key and key not in before] == []
    assert after == {key: v for key, v in before.items() if ":rl:" not in key}
    await i.request("call.accept", call_id=offer["call_id"], offer_id=offer["offer_id"])


# -- a kiosk always learns its call ended (issue 10.1) ---------------------------------------

async def test_kiosk_learns_its_call_ended_although_its_node_died(
        redis_server: RedisServer, redis: aioredis.Redis) -> None:
    settings = make_settings(redis_server, node_dead_s=30.0)
    env = {"TSUNAGU_CALL_GRACE_S": "30", "TSUNAGU_KIOSK_GRACE_S": "30"}
    async with running(settings, inprocess=1, processes=1, env=env) as stack:
        token = await stack.add_kiosk("k1")
        i = await stack.client(await stack.add_interpreter("alice", ["jsl"]), node=0)
        k = await stack.client(token, node=1, reconnect=False)
        await i.request("presence.set", status="available")
        queued = await k.request("call.request", language="jsl")
        offer = await i.next("call.offer")
        await i.request("call.accept", call_id=offer["call_id"], offer_id=offer["offer_id"])
        await k.next("call.connected")
        proc = stack.nodes[1].proc
        assert proc is not None
        proc.kill()  # SIGKILL: cnode:k:k1 still names the dead node for node_dead_s
        proc.wait()
        await i.request("call.hangup", call_id=queued["call_id"])
        back = await stack.client(token, node=0)
        ended = await back.next("call.ended", timeout=5)
        assert ended["call_id"] == queued["call_id"] and ended["reason"] == "hangup"
        # told once: a second resume hears nothing more of it
        await back.close()
        again = await stack.client(token, node=0)
        await asyncio.sleep(0.5)
        assert [m for m in again.drain() if m.get("type") == "call.ended"] == []


async def test_a_kiosk_told_live_is_not_told_again(stack: Stack, redis: aioredis.Redis) -> None:
    k, i, call_id = await answered_call(stack)
    await i.request("call.hangup", call_id=call_id)
    await k.next("call.ended")
    for _ in range(50):
        if await redis.get(K.kiosk_missed_end("k1")) is None:
            break
        await asyncio.sleep(0.05)
    assert await redis.get(K.kiosk_missed_end("k1")) is None
    await k.close()
    again = await stack.client(await stack.add_kiosk("k1"))
    await asyncio.sleep(0.5)
    assert [m for m in again.drain() if m.get("type") == "call.ended"] == []


# -- a Redis restart is invisible once /readyz says so (issue 10.7) --------------------------

async def test_no_stale_connection_reaches_a_client_after_a_redis_restart(tmp_path: Path
                                                                          ) -> None:
    server = RedisServer(tmp_path / "redis", persist=True)
    server.start()
    try:
        # 30 sign-ins at once from this one address: above the field's pre-auth cap
        async with running(make_settings(server, preauth_per_address=100)) as stack:
            kiosks = [await stack.client(await stack.add_kiosk(f"k{n}")) for n in range(30)]
            tokens = [await stack.add_kiosk(f"late{n}") for n in range(30)]

            async def burst() -> list[str]:
                async def one(c: SignalingClient) -> str:
                    try:
                        await c.request("call.cancel", call_id="c_none")
                    except Exception as exc:  # noqa: BLE001 - the code is the result
                        return str(getattr(exc, "code", type(exc).__name__))
                    return "ok"
                return await asyncio.gather(*(one(c) for c in kiosks))

            assert set(await burst()) == {"not_found"}  # warms ~30 pooled connections
            await asyncio.sleep(1.2)  # AOF everysec
            server.kill()
            server.start()
            async with aiohttp.ClientSession() as http:
                for _ in range(100):
                    async with http.get(stack.nodes[0].base_url + "/readyz") as r:
                        if r.status == 200:
                            break
                    await asyncio.sleep(0.1)
            await asyncio.sleep(1.5)  # the pooled connections sit idle, as they would

            async def sign_in(n: int) -> str:
                c = SignalingClient(stack.nodes[0].ws_url, tokens[n], reconnect=False)
                try:
                    await c.connect()
                except Exception as exc:  # noqa: BLE001 - the code is the result
                    return str(getattr(exc, "code", type(exc).__name__))
                finally:
                    await c.close()
                return "welcome"

            assert set(await asyncio.gather(*(sign_in(n) for n in range(30)))) == {"welcome"}
            assert set(await burst()) == {"not_found"}
    finally:
        server.stop()


# -- flood limits per principal (issue 9.7, PROTOCOL.md section 13) --------------------------

async def test_messages_per_second_count_across_sockets_and_nodes(
        redis_server: RedisServer, redis: aioredis.Redis) -> None:
    settings = make_settings(redis_server, messages_per_s=10)
    async with running(settings, inprocess=2) as stack, aiohttp.ClientSession() as http:
        token = await stack.add_staff("sup", "supervisor")
        a = await signed_in(stack, token, http, node=0)
        b = await signed_in(stack, token, http, node=1)
        await asyncio.sleep(1.0 - time.time() % 1.0 + 0.05)  # the start of a second
        codes = []
        for n in range(8):  # 16 within one second from two sockets on two nodes
            for ws in (a, b):
                reply = await reply_to(ws, json.dumps({"type": "stats.unsubscribe",
                                                       "rid": f"r{n}"}))
                codes.append(reply.get("code", reply["type"]))
        assert codes.count("ack") == 10  # (the hellos were counted in an earlier second)
        assert codes.count("rate_limited") == 16 - 10


async def test_a_principal_that_keeps_flooding_is_disconnected(
        redis_server: RedisServer, redis: aioredis.Redis) -> None:
    settings = make_settings(redis_server, messages_per_s=5, flood_disconnect_s=2.0)
    async with running(settings) as stack, aiohttp.ClientSession() as http:
        ws = await signed_in(stack, await stack.add_kiosk("k1"), http)
        started = time.monotonic()
        codes: list[str] = []

        async def read() -> None:
            async for msg in ws:
                codes.append(json.loads(msg.data).get("code", "?"))

        reader = asyncio.create_task(read())
        while not ws.closed and time.monotonic() - started < 6:
            await ws.send_str('{"type":"call.cancel","call_id":"c_none"}')
            await asyncio.sleep(0.02)
        await asyncio.wait_for(reader, 5)
        assert ws.close_code == 4429
        assert 1.9 < time.monotonic() - started < 4.0
        assert "not_found" in codes and "rate_limited" in codes


async def test_calls_per_minute_hold_across_reconnects(
        redis_server: RedisServer, redis: aioredis.Redis) -> None:
    settings = make_settings(redis_server, calls_per_minute=3)
    async with running(settings, inprocess=2) as stack:
        await stack.client(await stack.add_interpreter("alice", ["jsl"]))
        token = await stack.add_kiosk("k1")
        made, refused = 0, 0
        for n in range(8):  # a token reconnecting in a loop, on alternate nodes
            k = SignalingClient(stack.nodes[n % 2].ws_url, token, reconnect=False)
            await k.connect()
            try:
                queued = await k.request("call.request", language="jsl")
                made += 1
                await k.request("call.cancel", call_id=queued["call_id"])
            except Exception as exc:  # noqa: BLE001 - the code is the result
                assert getattr(exc, "code", None) == "rate_limited"
                refused += 1
            finally:
                await k.close()
        assert (made, refused) == (3, 5)
        enqueued = [f for _, f in await redis.xrange(K.events) if f["ev"] == "enqueued"]
        assert len(enqueued) == 3


async def test_redis_memory_of_a_reconnecting_flood_is_bounded(
        redis_server: RedisServer, redis: aioredis.Redis) -> None:
    """A kiosk token reconnecting as fast as it can, each time asking for a call and
    cancelling it, from 8 loops at once; Redis memory stays flat (the limit keys expire)."""
    seconds = 20.0
    async with running(make_settings(redis_server)) as stack:
        await stack.client(await stack.add_interpreter("alice", ["jsl"]))
        token = await stack.add_kiosk("k1")
        await asyncio.sleep(0.5)
        base = (await redis.info("memory"))["used_memory"]
        stop = time.monotonic() + seconds
        attempts = 0
        midway = 0

        async def loop() -> None:
            nonlocal attempts
            async with aiohttp.ClientSession() as http:
                while time.monotonic() < stop:
                    attempts += 1
                    try:
                        ws = await http.ws_connect(stack.nodes[0].ws_url)
                        await ws.send_str(json.dumps({"type": "hello", "token": token}))
                        await ws.send_str('{"type":"call.request","language":"jsl"}')
                        for _ in range(4):  # welcome, presence..., then the call or a refusal
                            data = json.loads((await ws.receive(timeout=2)).data)
                            if data.get("type") == "call.queued":
                                await ws.send_str(json.dumps(
                                    {"type": "call.cancel", "call_id": data["call_id"]}))
                                await ws.receive(timeout=2)
                                break
                            if data.get("type") == "error":
                                break
                        await ws.close()
                    except (aiohttp.ClientError, TimeoutError, TypeError, ValueError):
                        pass

        async def sample() -> None:
            nonlocal midway
            await asyncio.sleep(seconds / 2)
            midway = (await redis.info("memory"))["used_memory"]

        await asyncio.gather(*(loop() for _ in range(8)), sample())
        grown = (await redis.info("memory"))["used_memory"] - base
        enqueued = [f for _, f in await redis.xrange(K.events) if f["ev"] == "enqueued"]
        print(f"flood: {attempts} connections in {seconds} s, Redis grew {grown} bytes "
              f"(midway {midway - base}), {len(enqueued)} calls")
        assert attempts > 200
        assert len(enqueued) <= 6 * (1 + int(seconds // 60))
        assert grown < 1024 * 1024
        assert grown - midway < 128 * 1024  # flat: what the flood keeps expires within 60 s
