"""Helpers for the test-call browser tests: the answering bot as a process, the scheduler's
test clock, ``kiosk.test`` from a supervisor socket, the stored ``last_test``."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import redis as sync_redis

from tests.browser.conftest import PASSWORD, Stack
from tsunagu.client import SignalingClient, login, server_urls
from tsunagu.protocol import now_ms
from tsunagu.redis_keys import Keys

TZ = ZoneInfo("Asia/Tokyo")
KEYS = Keys()
# TSUNAGU_TEST_CLOCK is a test-only setting (docs/testcall.md): the scheduler adds the offset in
# Keys.test_clock to its clock.
TEST_CALL_ENV = {"TSUNAGU_TEST_CLOCK": "1", "TSUNAGU_TEST_TICK_S": "0.25"}
BOT_USER, BOT_LANGUAGES = "botty", "ne"  # a language no test here calls: it answers tests only


def tomorrow_at(hh: int, mm: int, ss: int = 0) -> datetime:
    """Tomorrow in Tokyo (the stack's kiosks were added today, after today's test time)."""
    day = datetime.now(TZ).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=TZ)


def redis_client(stack: Stack) -> sync_redis.Redis:
    return sync_redis.Redis.from_url(stack.redis_url, decode_responses=True)


def set_clock(stack: Stack, local: datetime) -> int:
    """Put the test-call scheduler's clock at ``local``; the offset in ms."""
    offset = int(local.timestamp() * 1000) - now_ms()
    with redis_client(stack) as r:
        r.set(KEYS.test_clock, offset)
    return offset


def last_test(stack: Stack, kiosk_id: str) -> dict[str, Any] | None:
    with redis_client(stack) as r:
        raw = r.get(KEYS.kiosk_test(kiosk_id))
    return json.loads(raw) if raw else None


def run_async(coro: Any) -> Any:
    """Run a coroutine on a loop of its own (Playwright's sync API owns this thread's)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result(60)


def kiosk_test(stack: Stack, kiosk_id: str) -> dict[str, Any]:
    """``kiosk.test`` from the supervisor's socket: the reply (or the error, as a dict)."""
    async def go() -> dict[str, Any]:
        token = await login(stack.url, "sup", PASSWORD)
        client = SignalingClient(server_urls(stack.url)[1], token, reconnect=False)
        await client.connect()
        try:
            reply = await client.request("kiosk.test", kiosk_id=kiosk_id)
        except Exception as exc:  # ServerError: keep its code
            return {"type": "error", "code": getattr(exc, "code", str(exc))}
        finally:
            await client.close()
        return dict(reply)
    result: dict[str, Any] = run_async(go())
    return result


def api_stats(stack: Stack) -> dict[str, Any]:
    token = run_async(login(stack.url, "sup", PASSWORD))
    req = urllib.request.Request(stack.url + "/api/stats",
                                 headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        body: dict[str, Any] = json.loads(resp.read())
    return body


def start_bot(stack: Stack) -> Iterator[subprocess.Popen[bytes]]:
    """``tsunagu bot`` (media on) for the module; stopped at the end."""
    stack.admin("add-user", BOT_USER, "--role", "interpreter", "--languages", BOT_LANGUAGES,
                "--password-stdin", stdin=PASSWORD + "\n")
    log = (stack.logdir / "bot.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "interpreter_console.bot", "--server", stack.url, "--username",
         BOT_USER, "--password-stdin", "--talk", "0", "--wrapup", "0", "-v"],
        stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, env=stack.env)
    assert proc.stdin is not None
    proc.stdin.write((PASSWORD + "\n").encode())
    proc.stdin.close()
    try:
        with redis_client(stack) as r:  # signed in: the bot answers language test
            for _ in range(150):
                if r.sismember(KEYS.logged_in("test"), BOT_USER):
                    break
                assert proc.poll() is None, (stack.logdir / "bot.log").read_text()[-2000:]
                time.sleep(0.1)
            else:
                raise AssertionError("the bot did not sign in for test calls")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
