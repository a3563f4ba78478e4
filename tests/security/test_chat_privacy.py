"""Issue 9 item 1: chat between parties on different nodes is stored nowhere, and chat that
cannot reach the other party comes back to its sender as an error."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.conftest import TEST_SECRET
from tests.support.stack import running
from tsunagu.client import ServerError
from tsunagu.redis_keys import Keys
from tsunagu.redis_server import RedisServer
from tsunagu.settings import SignalingSettings

K = Keys()


async def every_key_dumped(url: str) -> bytes:
    """SCAN + DUMP of every key, concatenated."""
    raw = aioredis.Redis.from_url(url, decode_responses=False)
    try:
        out = b""
        async for key in raw.scan_iter(count=1000):
            out += key + (await raw.dump(key) or b"")
        return out
    finally:
        await raw.aclose()


@pytest.mark.timeout(120)
async def test_chat_across_nodes_is_stored_nowhere(tmp_path: Path) -> None:
    data = tmp_path / "redis-data"
    marker = "MARKER" + secrets.token_hex(8)
    with RedisServer(data, persist=True) as server:
        redis = aioredis.Redis.from_url(server.url, decode_responses=True)
        settings = SignalingSettings(secret=TEST_SECRET, redis_url=server.url)
        async with running(settings, inprocess=0, processes=2,
                           env={"TSUNAGU_VERBOSE": "1"}) as stack:
            alice = await stack.client(await stack.add_interpreter("alice", ["jsl"]), node=0)
            k = await stack.client(await stack.add_kiosk("k1"), node=1)
            await alice.request("presence.set", status="available")
            await k.request("call.request", language="jsl")
            offer = await alice.next("call.offer")
            call_id = offer["call_id"]
            await alice.request("call.accept", call_id=call_id, offer_id=offer["offer_id"])
            await k.next("call.connected")
            await k.request("chat.send", call_id=call_id, text=f"{marker} マイナンバー")
            got = await alice.next("chat", timeout=5)
            assert marker in got["text"] and got["from"]["role"] == "kiosk"
            await alice.request("chat.send", call_id=call_id, text=f"{marker} reply")
            assert marker in (await k.next("chat", timeout=5, call_id=call_id,
                                           **{"from": {"role": "interpreter",
                                                       "name": "Alice"}}))["text"]
            # A chat that reaches no node (PUBLISH heard by nobody) is refused to its sender.
            alice_node = await redis.get(K.client_node("i:alice"))
            await redis.set(K.client_node("i:alice"), "n_gone")
            with pytest.raises(ServerError) as lost:
                await k.request("chat.send", call_id=call_id, text=f"{marker} lost")
            assert lost.value.code == "unavailable"
            await redis.set(K.client_node("i:alice"), alice_node)
            await k.request("call.hangup", call_id=call_id)
            await alice.next("call.ended")
            logs = [Path(n.log_path) for n in stack.nodes if n.log_path]
        assert marker.encode() not in await every_key_dumped(server.url)
        await redis.aclose()
        await asyncio.sleep(1.5)  # appendfsync everysec
        stored = [p for p in data.rglob("*") if p.is_file() and not p.is_socket()]
        assert any("appendonly" in str(p) for p in stored)
        for path in stored + logs:
            assert marker.encode() not in path.read_bytes(), path
    assert sum(len(p.read_bytes()) for p in logs) > 0  # the logs were there to look at


async def test_chat_lost_on_the_receiving_node_comes_back_as_an_error(
        redis_server: RedisServer, redis: aioredis.Redis) -> None:
    from signaling.node import NODE

    settings = SignalingSettings(secret=TEST_SECRET, redis_url=redis_server.url)
    async with running(settings, inprocess=2) as stack:
        alice = await stack.client(await stack.add_interpreter("alice", ["jsl"]), node=0)
        k = await stack.client(await stack.add_kiosk("k1"), node=1)
        await alice.request("presence.set", status="available")
        await k.request("call.request", language="jsl")
        offer = await alice.next("call.offer")
        call_id = offer["call_id"]
        await alice.request("call.accept", call_id=call_id, offer_id=offer["offer_id"])
        await k.next("call.connected")
        runner = stack.nodes[0].runner
        assert runner is not None
        bus = runner.app[NODE].bus
        held = bus.local.pop("i:alice")  # node 0 is subscribed but no longer holds alice
        try:
            ack = await k.request("chat.send", call_id=call_id, text="lost on the way")
            error = await k.next("error", timeout=5)
            assert error["code"] == "unavailable" and error["rid"] == ack["rid"]
        finally:
            bus.local["i:alice"] = held
        await k.request("chat.send", call_id=call_id, text="arrives")
        assert (await alice.next("chat", timeout=5))["text"] == "arrives"
