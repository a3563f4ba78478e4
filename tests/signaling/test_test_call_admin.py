"""The test time of each kiosk on the command line (PROTOCOL.md sections 10 and 14)."""

from __future__ import annotations

import asyncio
import json

import redis.asyncio as aioredis

from tests.security.test_admin import admin, failed_with
from tsunagu.redis_keys import Keys
from tsunagu.redis_server import RedisServer

K = Keys()


async def test_add_and_update_kiosk_set_its_test_time(redis_server: RedisServer,
                                                      redis: aioredis.Redis) -> None:
    url = redis_server.url

    done = await asyncio.to_thread(admin, url, "add-kiosk", "k1", "--ward", "北区",
                                   "--counter", "3")
    assert done.returncode == 0 and await redis.hget(K.kiosk("k1"), "test_at") == "08:30"
    assert int(await redis.hget(K.kiosk("k1"), "added_ms") or 0) > 0
    done = await asyncio.to_thread(admin, url, "add-kiosk", "k2", "--ward", "南区",
                                   "--counter", "5", "--test-at", "7:05")
    assert done.returncode == 0 and await redis.hget(K.kiosk("k2"), "test_at") == "07:05"
    done = await asyncio.to_thread(admin, url, "update-kiosk", "k1", "--test-at", "08:45")
    assert done.returncode == 0, done.stderr
    assert "08:45" in done.stderr and await redis.hget(K.kiosk("k1"), "test_at") == "08:45"
    # rotating a token keeps the time
    done = await asyncio.to_thread(admin, url, "add-kiosk", "k1", "--ward", "北区",
                                   "--counter", "3", "--rotate")
    assert done.returncode == 0 and await redis.hget(K.kiosk("k1"), "test_at") == "08:45"
    listed = await asyncio.to_thread(admin, url, "list-kiosks", "--json")
    assert {k["kiosk_id"]: k["test_at"] for k in json.loads(listed.stdout)} == {
        "k1": "08:45", "k2": "07:05"}
    for args, words in ((("update-kiosk", "nope", "--test-at", "08:00"), "no kiosk nope"),
                        (("update-kiosk", "k1", "--test-at", "25:00"), "HH:MM"),
                        (("update-kiosk", "k1", "--test-at", "8.30"), "HH:MM"),
                        (("add-kiosk", "k3", "--ward", "W", "--counter", "1",
                          "--test-at", "08:61"), "HH:MM")):
        done = await asyncio.to_thread(admin, url, *args)
        assert failed_with(done, words), (args, done.returncode, done.stderr)
    assert not await redis.exists(K.kiosk("k3"))  # refused before anything was written
    # nobody is given the test calls' language
    done = await asyncio.to_thread(admin, url, "add-user", "t", "--role", "interpreter",
                                   "--languages", "jsl,test", "--password-stdin",
                                   stdin="a-long-password\n")
    assert failed_with(done, "test")
