"""Issue 9 items 12-13: the admin commands of PROTOCOL.md section 10 (version 1.1)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import subprocess
import sys

import redis.asyncio as aioredis

from tests.conftest import TEST_SECRET
from tests.support.stack import running
from tsunagu.cli import main
from tsunagu.redis_keys import Keys
from tsunagu.redis_server import RedisServer
from tsunagu.settings import SignalingSettings

K = Keys()


def admin_process(url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``tsunagu admin`` as the operator runs it."""
    return subprocess.run([sys.executable, "-m", "tsunagu", "admin", *args, "--redis-url", url],
                          input=stdin, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ), check=False)


def admin(url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The same command in this process (a new interpreter per command is slow on a loaded
    machine); what it prints and its exit status, as from the process."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["admin", *args, "--redis-url", url])
    finally:
        sys.stdin = saved
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def failed_with(done: subprocess.CompletedProcess[str], words: str) -> bool:
    one_line = done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    return done.returncode == 1 and one_line and words in done.stderr


async def test_accounts_commands(redis_server: RedisServer, redis: aioredis.Redis) -> None:
    url = redis_server.url

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return admin(url, *args, stdin=stdin)

    pw = "a-long-password\n"
    ok = await asyncio.to_thread(run, "add-user", "alice", "--role", "interpreter",
                                 "--languages", "jsl,en", "--password-stdin", stdin=pw)
    assert ok.returncode == 0, ok.stderr
    again = await asyncio.to_thread(admin_process, url, "add-user", "alice", "--role",
                                    "interpreter", "--name", "Other", "--languages", "en",
                                    "--password-stdin", stdin=pw)
    assert failed_with(again, "exists")
    assert await redis.hget(K.user("alice"), "languages") == "jsl,en"  # untouched
    for langs in ("", "xx", "test", "jsl,klingon"):
        bad = await asyncio.to_thread(run, "add-user", "bob", "--role", "interpreter",
                                      "--languages", langs, "--password-stdin", stdin=pw)
        assert failed_with(bad, "language"), (langs, bad.stderr)
    assert not await redis.exists(K.user("bob"))
    sup = await asyncio.to_thread(run, "add-user", "sue", "--role", "supervisor",
                                  "--password-stdin", stdin=pw)
    assert sup.returncode == 0, sup.stderr
    upd = await asyncio.to_thread(run, "update-user", "alice", "--name", "Alice A")
    assert upd.returncode == 0, upd.stderr
    user = await redis.hgetall(K.user("alice"))
    assert (user["name"], user["languages"]) == ("Alice A", "jsl,en")
    assert failed_with(await asyncio.to_thread(run, "update-user", "alice", "--languages", "zz"),
                       "language")
    assert failed_with(await asyncio.to_thread(run, "update-user", "nobody", "--name", "x"),
                       "no user")
    for action in ("disable-user", "enable-user"):
        assert (await asyncio.to_thread(run, action, "alice")).returncode == 0
    gen = await redis.hget(K.user("alice"), "gen")
    assert (await asyncio.to_thread(run, "set-password", "alice", "--password-stdin",
                                    stdin="a-newer-password\n")).returncode == 0
    assert int(await redis.hget(K.user("alice"), "gen")) > int(gen)
    listed = await asyncio.to_thread(run, "list-users", "--json")
    users = json.loads(listed.stdout)
    assert [u["username"] for u in users] == ["alice", "sue"]
    assert "password" not in listed.stdout and "scrypt" not in listed.stdout

    token = await asyncio.to_thread(run, "add-kiosk", "k1", "--ward", "北区", "--counter", "3")
    assert token.returncode == 0 and token.stdout.count(".") == 2
    twice = await asyncio.to_thread(run, "add-kiosk", "k1", "--ward", "北区", "--counter", "4")
    assert failed_with(twice, "exists") and twice.stdout == ""
    rotated = await asyncio.to_thread(run, "add-kiosk", "k1", "--ward", "北区", "--counter",
                                      "4", "--rotate")
    assert rotated.returncode == 0 and rotated.stdout != token.stdout
    kiosks = json.loads((await asyncio.to_thread(run, "list-kiosks", "--json")).stdout)
    assert kiosks == [{"kiosk_id": "k1", "ward": "北区", "counter": "4", "revoked": False,
                       "test_at": "08:30"}]
    plain = await asyncio.to_thread(run, "list-kiosks")
    assert plain.stdout.startswith("k1\t")


def test_unreachable_redis_is_one_line() -> None:
    done = admin_process("redis://127.0.0.1:1/0", "list-users")
    assert failed_with(done, "cannot reach Redis"), done.stderr


async def test_end_call_ends_queued_and_live_calls(redis_server: RedisServer,
                                                  redis: aioredis.Redis) -> None:
    settings = SignalingSettings(secret=TEST_SECRET, redis_url=redis_server.url)
    async with running(settings) as stack:
        alice = await stack.client(await stack.add_interpreter("alice", ["jsl"]))
        k1 = await stack.client(await stack.add_kiosk("k1"))
        k2 = await stack.client(await stack.add_kiosk("k2"))
        await alice.request("presence.set", status="available")
        await k1.request("call.request", language="jsl")
        offer = await alice.next("call.offer")
        await alice.request("call.accept", call_id=offer["call_id"], offer_id=offer["offer_id"])
        await k1.next("call.connected")
        queued = await k2.request("call.request", language="jsl")
        for call_id, kiosk in ((queued["call_id"], k2), (offer["call_id"], k1)):
            done = await asyncio.to_thread(admin, redis_server.url, "end-call", call_id)
            assert done.returncode == 0, done.stderr
            ended = await kiosk.next("call.ended", call_id=call_id)
            assert ended["reason"] == "ended_by_admin"
            assert await redis.hget(K.call(call_id), "reason") == "ended_by_admin"
        again = await asyncio.to_thread(admin, redis_server.url, "end-call", offer["call_id"])
        assert failed_with(again, "already over")
        assert failed_with(await asyncio.to_thread(admin, redis_server.url, "end-call", "c_no"),
                           "no call")
        reasons = {f.get("reason") for _, f in await redis.xrange(K.events)
                   if f.get("ev") == "ended"}
        assert "ended_by_admin" in reasons
