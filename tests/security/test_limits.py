"""Issue 9 item 8: sockets before ``hello`` capped per address; slow headers closed."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
import redis.asyncio as aioredis

from tests.conftest import TEST_SECRET
from tests.support.stack import running
from tsunagu.redis_server import RedisServer
from tsunagu.settings import SignalingSettings


def test_defaults() -> None:
    s = SignalingSettings(secret=TEST_SECRET)
    assert (s.preauth_per_address, s.header_timeout_s) == (20, 10.0)
    assert (s.login_failures_per_user, s.login_failures_per_address) == (5, 20)


async def test_sockets_before_hello_are_capped_per_address(redis_server: RedisServer,
                                                           redis: aioredis.Redis) -> None:
    settings = SignalingSettings(secret=TEST_SECRET, redis_url=redis_server.url)
    async with running(settings) as stack, aiohttp.ClientSession() as http:
        url = stack.nodes[0].ws_url
        waiting = [await http.ws_connect(url) for _ in range(20)]
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(url)
        assert refused.value.status == 429
        token = await stack.add_kiosk("k1")
        await waiting[0].send_json({"type": "hello", "token": token})
        assert (await waiting[0].receive_json(timeout=5))["type"] == "welcome"
        extra = await http.ws_connect(url)  # one signed in: a place is free again
        await waiting[1].close()
        await asyncio.sleep(0.2)
        another = await http.ws_connect(url)  # one closed: another place
        for ws in [*waiting, extra, another]:
            await ws.close()


async def test_slow_headers_are_closed(redis_server: RedisServer,
                                       redis: aioredis.Redis) -> None:
    settings = SignalingSettings(secret=TEST_SECRET, redis_url=redis_server.url,
                                 header_timeout_s=2.0)
    async with running(settings) as stack:
        port = int(stack.nodes[0].base_url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.monotonic()
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        closed_after = None
        for n in range(20):  # one header byte every 0.25 s: never complete
            writer.write(b"X-Slow: %d\r\n" % n if n % 4 == 0 else b"")
            try:
                await writer.drain()
                data = await asyncio.wait_for(reader.read(1024), 0.25)
            except TimeoutError:
                continue
            except ConnectionError:
                data = b""
            if data == b"":
                closed_after = time.monotonic() - started
                break
        writer.close()
        assert closed_after is not None and 1.5 <= closed_after <= 3.5, closed_after
        # a normal request on a fresh connection is served
        async with aiohttp.ClientSession() as http, \
                http.get(stack.nodes[0].base_url + "/healthz") as r:
            assert r.status == 200
