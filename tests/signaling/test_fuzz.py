"""Generated hostile frames (hypothesis): every frame is answered as the contract says, no
socket dies or goes silent, and Redis is left exactly as it was (issue 10).

Each generated frame carries exactly one fault, so what the contract requires is known
without asking the server: a malformed frame (not JSON, not an object, nesting too deep,
unknown type, a field missing, of the wrong type, too long, not in its enum, a lone
surrogate anywhere, a bad ``rid``, a binary frame) is ``bad_request``; a well-formed
message the role may not send is ``forbidden``; one about a call that does not exist is
``not_found``, about someone else's call ``forbidden``, about a call in the wrong state
``conflict``. Before ``hello`` anything but a valid ``hello`` gets ``unauthorized`` and close
4401. A few well-formed frames that change nothing (chat, statistics) get their reply.
Many frames go over few sockets: each example is a batch sent in order on the role's socket.
"""

from __future__ import annotations

import json
import os
import string
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.signaling.test_server import make_settings
from tests.support.stack import Stack, running
from tsunagu.redis_keys import Keys
from tsunagu.redis_server import RedisServer

K = Keys()
ROLES = ("kiosk", "interpreter", "supervisor", "admin")
# what each message needs (name -> a valid value, filled in with the live call's ids)
SCHEMA: dict[str, dict[str, str]] = {
    "call.request": {"language": "jsl"},
    "call.cancel": {"call_id": "CALL"},
    "presence.set": {"status": "available"},
    "call.accept": {"call_id": "CALL", "offer_id": "OFFER"},
    "call.decline": {"call_id": "CALL", "offer_id": "OFFER"},
    "call.transfer": {"call_id": "CALL", "language": "en"},
    "call.hangup": {"call_id": "CALL"},
    "media.offer": {"call_id": "CALL", "sdp": "v=0"},
    "chat.send": {"call_id": "CALL", "text": "hi"},
    "stats.subscribe": {},
    "stats.unsubscribe": {},
}
ALLOWED = {
    "call.request": {"kiosk"}, "call.cancel": {"kiosk"}, "presence.set": {"interpreter"},
    "call.accept": {"interpreter"}, "call.decline": {"interpreter"},
    "call.transfer": {"interpreter"}, "call.hangup": {"kiosk", "interpreter"},
    "media.offer": {"kiosk", "interpreter"}, "chat.send": {"kiosk", "interpreter"},
    "stats.subscribe": {"supervisor", "admin"}, "stats.unsubscribe": {"supervisor", "admin"},
}
LIMITS = {"text": 2000, "sdp": 60_000, "language": 32, "call_id": 64, "offer_id": 64}
ENUMS = {"status", "priority"}
HOSTILE_TEXT = st.sampled_from(["\ud800", "a\udfffb", "\udbff\udc00x\ud800"])
JUNK = st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(),
                 st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3),
                                                                      st.integers(), max_size=2))


@dataclass(frozen=True)
class Frame:
    """One frame to send, the role's socket it goes on, and what must come back."""

    role: str  # a role, or "none" before hello
    data: str | bytes
    expect: str  # an error code, or the reply's type
    rid: str | None


def _dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=True)


@st.composite
def signed_in_frame(draw: st.DrawFn) -> Frame:
    role = draw(st.sampled_from(ROLES))
    kind = draw(st.sampled_from(sorted(SCHEMA)))
    rid = draw(st.one_of(st.none(), st.text(string.ascii_letters + string.digits, min_size=1,
                                            max_size=12)))
    msg: dict[str, Any] = {"type": kind, **dict(SCHEMA[kind])}
    if rid is not None:
        msg["rid"] = rid
    fault = draw(st.sampled_from([
        "not_json", "not_object", "deep", "unknown_type", "missing", "wrong_type", "huge",
        "surrogate", "bad_enum", "bad_rid", "binary", "hello_again", "semantic"]))
    fields = list(SCHEMA[kind])
    if fault in ("missing", "wrong_type", "huge", "surrogate") and not fields:
        fault = "unknown_type"
    if fault == "bad_enum" and not any(f in ENUMS for f in fields):
        fault = "surrogate" if fields else "deep"
    if fault == "not_json":
        raw = draw(st.sampled_from(["{", "", "nul", '{"type":', "\x00", '{"a":1}}']))
        return Frame(role, raw, "bad_request", None)
    if fault == "not_object":
        return Frame(role, _dump(draw(st.one_of(JUNK, st.text(max_size=5)))), "bad_request",
                     None)
    if fault == "deep":
        depth = draw(st.integers(1200, 5000))
        return Frame(role, '{"type":"' + kind + '","x":' + "[" * depth + "]" * depth + "}",
                     "bad_request", None)
    if fault == "binary":
        return Frame(role, draw(st.binary(max_size=64)), "bad_request", None)
    if fault == "bad_rid":
        msg["rid"] = draw(st.one_of(JUNK, st.just("r" * 65), HOSTILE_TEXT))
        return Frame(role, _dump(msg), "bad_request", None)
    if fault == "unknown_type":
        msg["type"] = draw(st.one_of(st.sampled_from(["call.fly", "", "CALL.REQUEST", "error",
                                                      "welcome", "call.request "]), JUNK))
        if isinstance(msg["type"], str) and msg["type"] in SCHEMA:
            msg["type"] = "x" + msg["type"]
        return Frame(role, _dump(msg), "bad_request", rid)
    if fault == "hello_again":
        return Frame(role, _dump({"type": "hello", "token": "t", **({"rid": rid} if rid else {})}),
                     "bad_request", rid)
    if fault == "surrogate" and draw(st.booleans()):
        msg[draw(st.sampled_from(["extra", "\ud800"]))] = draw(HOSTILE_TEXT)  # anywhere
        return Frame(role, _dump(msg), "bad_request", None)
    if fault in ("missing", "wrong_type", "huge", "surrogate", "bad_enum"):
        name = draw(st.sampled_from([f for f in fields if fault != "bad_enum" or f in ENUMS]))
        if fault == "missing":
            if draw(st.booleans()):
                del msg[name]
            else:
                msg[name] = None
        elif fault == "wrong_type":
            msg[name] = draw(JUNK)
        elif fault == "huge":
            msg[name] = "x" * (LIMITS.get(name, 256) + draw(st.integers(1, 3000)))
        elif fault == "surrogate":
            msg[name] = "ok" + draw(HOSTILE_TEXT)
        else:
            msg[name] = draw(st.sampled_from(["AVAILABLE", "busy", "", "vip"]))
        expect_rid = None if fault == "surrogate" else rid
        return Frame(role, _dump(msg), "bad_request", expect_rid)
    return _semantic(draw, role, kind, msg, rid)


def _semantic(draw: st.DrawFn, role: str, kind: str, msg: dict[str, Any],
              rid: str | None) -> Frame:
    """A well-formed message: refused for who sends it or what it is about, or harmless."""
    if role not in ALLOWED[kind]:
        for name, value in list(msg.items()):
            if value in ("CALL", "OFFER"):
                msg[name] = "c_" + draw(st.text("0123456789abcdef", min_size=4, max_size=8))
        return Frame(role, _dump(msg), "forbidden", rid)
    if kind in ("stats.subscribe", "stats.unsubscribe"):
        return Frame(role, _dump(msg), "stats" if kind == "stats.subscribe" else "ack", rid)
    if kind == "call.request":  # the kiosk of the live call asks again, or a strange language
        if draw(st.booleans()):
            msg["language"] = draw(st.sampled_from(["xx", "JSL", "klingon"]))
            return Frame(role, _dump(msg), "bad_request", rid)
        return Frame(role, _dump(msg), "conflict", rid)
    if kind == "presence.set":  # only an unknown status reaches here as a refusal
        msg["status"] = draw(st.sampled_from(["gone", "Available"]))
        return Frame(role, _dump(msg), "bad_request", rid)
    if kind == "call.transfer" and draw(st.booleans()):
        msg["language"] = "xx"
        msg["call_id"] = "CALL"
        return Frame(role, _dump(msg), "bad_request", rid)
    target = draw(st.sampled_from(["missing", "other", "live"]))
    if target == "missing":
        msg["call_id"] = "c_" + draw(st.text("0123456789abcdef", min_size=4, max_size=32))
        return Frame(role, _dump(msg), "not_found", rid)
    if target == "other":  # the live call belongs to another kiosk and interpreter
        msg["call_id"] = "OTHER"
        if kind in ("call.accept", "call.decline"):
            return Frame(role, _dump(msg), "conflict", rid)  # it is no longer ringing
        return Frame(role, _dump(msg), "forbidden", rid)
    # the sender's own connected call
    if kind == "chat.send":
        return Frame(role, _dump(msg), "ack", rid)
    if kind in ("call.cancel", "call.accept", "call.decline"):
        return Frame(role, _dump(msg), "conflict", rid)
    msg["call_id"] = "c_" + "0" * 20  # hang-up, transfer, media of a call that is not there
    return Frame(role, _dump(msg), "not_found", rid)


@st.composite
def before_hello_frame(draw: st.DrawFn) -> Frame:
    choice = draw(st.sampled_from(["message", "junk", "bad_hello", "binary", "deep"]))
    if choice == "message":
        kind = draw(st.sampled_from(sorted(SCHEMA)))
        data: str | bytes = _dump({"type": kind, **SCHEMA[kind]})
    elif choice == "junk":
        data = draw(st.one_of(st.text(max_size=20), JUNK.map(_dump)))
    elif choice == "bad_hello":
        data = _dump({"type": "hello", "token": draw(st.one_of(
            st.text(max_size=40), JUNK, HOSTILE_TEXT, st.just("x" * 9000),
            st.just("eyJhbGciOiJub25lIn0.eyJzdWIiOiJrMSJ9."))), "resume": "s_x"})
    elif choice == "binary":
        data = draw(st.binary(min_size=1, max_size=32))
    else:
        data = '{"type":"hello","token":' + "[" * 3000 + "]" * 3000 + "}"
    return Frame("none", data, "unauthorized", None)


# -- the service under fire -------------------------------------------------------------------

@dataclass
class Arena:
    stack: Stack
    http: aiohttp.ClientSession
    sockets: dict[str, aiohttp.ClientWebSocketResponse]
    tokens: dict[str, str]
    call_id: str
    other_call: str
    offer_id: str
    sent: int = 0


async def _open(arena: Arena, role: str) -> aiohttp.ClientWebSocketResponse:
    ws = await arena.http.ws_connect(arena.stack.nodes[0].ws_url, max_msg_size=1 << 20)
    await ws.send_str(json.dumps({"type": "hello", "token": arena.tokens[role]}))
    assert json.loads((await ws.receive(timeout=10)).data)["type"] == "welcome"
    return ws


@pytest.fixture
async def arena(redis_server: RedisServer, redis: aioredis.Redis) -> AsyncIterator[Arena]:
    # (heartbeat: a socket is read only while it waits for a reply)
    fast = make_settings(redis_server, messages_per_s=10**9, calls_per_minute=10**9,
                         heartbeat_s=3600,
                         offer_timeout_s=600, call_grace_s=600, kiosk_grace_s=600)
    async with running(fast) as stack, aiohttp.ClientSession() as http:
        # two connected calls: the fuzzing kiosk and interpreter are parties of the first
        tokens = {"kiosk": await stack.add_kiosk("k1"),
                  "interpreter": await stack.add_interpreter("alice", ["jsl", "en"]),
                  "supervisor": await stack.add_staff("sup", "supervisor"),
                  "admin": await stack.add_staff("adm", "admin")}
        ids = []
        for kiosk, interp in (("k1", None), ("k2", "bob")):
            i = await stack.client(tokens["interpreter"] if interp is None else
                                   await stack.add_interpreter(interp, ["jsl"]),
                                   reconnect=False)
            k = await stack.client(tokens["kiosk"] if kiosk == "k1" else
                                   await stack.add_kiosk(kiosk), reconnect=False)
            await i.request("presence.set", status="available")
            queued = await k.request("call.request", language="jsl")
            offer = await i.next("call.offer")
            await i.request("call.accept", call_id=offer["call_id"], offer_id=offer["offer_id"])
            await k.next("call.connected")
            ids.append((queued["call_id"], offer["offer_id"]))
        a = Arena(stack, http, {}, tokens, ids[0][0], ids[1][0], ids[0][1])
        # the fuzzing sockets replace the kiosk's and alice's (each resumes the same state)
        for role in ROLES:
            a.sockets[role] = await _open(a, role)
        yield a


def _fill(frame: Frame, arena: Arena) -> str | bytes:
    if isinstance(frame.data, bytes):
        return frame.data
    return (frame.data.replace('"CALL"', f'"{arena.call_id}"')
            .replace('"OTHER"', f'"{arena.other_call}"').replace('"OFFER"', f'"{arena.offer_id}"'))


async def _reply(ws: aiohttp.ClientWebSocketResponse, rid: str | None, expect: str
                 ) -> dict[str, Any]:
    """The direct reply: the next error, or the next frame carrying ``rid`` (without a
    ``rid``: the next frame of the expected type)."""
    while True:
        msg = await ws.receive(timeout=10)
        assert msg.type == aiohttp.WSMsgType.TEXT, f"socket {msg.type}, code {ws.close_code}"
        data: dict[str, Any] = json.loads(msg.data)
        if data.get("type") == "error":
            return data
        if data.get("rid") == rid if rid is not None else data.get("type") == expect:
            return data


async def _check(arena: Arena, frame: Frame) -> None:
    arena.sent += 1
    if frame.role == "none":
        ws = await arena.http.ws_connect(arena.stack.nodes[0].ws_url)
        try:
            await (ws.send_bytes if isinstance(frame.data, bytes) else ws.send_str)(
                frame.data)  # type: ignore[operator]
            msg = await ws.receive(timeout=10)
            assert msg.type == aiohttp.WSMsgType.TEXT, (frame, msg.type)
            assert json.loads(msg.data)["code"] == "unauthorized", frame
            await ws.receive(timeout=10)
            assert ws.close_code == 4401, frame
        finally:
            await ws.close()
        return
    ws = arena.sockets[frame.role]
    data = _fill(frame, arena)
    if isinstance(data, bytes):
        await ws.send_bytes(data)
    else:
        await ws.send_str(data)
    reply = await _reply(ws, frame.rid, frame.expect)
    got = reply.get("code") if reply["type"] == "error" else reply["type"]
    assert got == frame.expect, (frame, reply)
    if frame.rid is not None and frame.expect != "bad_request":
        assert reply.get("rid") == frame.rid, (frame, reply)
    if "rid" in reply:
        assert frame.rid is None or reply["rid"] == frame.rid


async def snapshot(redis: aioredis.Redis) -> dict[str, bytes]:
    """Every key and value, except the documented per-principal rate counters, the nodes'
    own liveness (heartbeats, the sweeper's lease) and what the nodes write on a clock
    whatever clients send: the kiosks' last-seen times and the fleet's minute samples
    (docs/fleet.md, docs/report.md)."""
    out: dict[str, bytes] = {}
    async for key in redis.scan_iter(count=1000):
        if ":rl:" in key or ":fleet_sample:" in key or ":fleet_day:" in key \
                or key.endswith((":nodes", ":sweep_lease", ":kseen")):
            continue
        dumped = await redis.dump(key)
        if dumped is not None:
            out[key] = dumped
    return out


BATCH = 50
EXAMPLES = int(os.environ.get("TSUNAGU_FUZZ_EXAMPLES", "200"))  # 200 x 55 = 11,000 frames


# No shrinking: a failing batch is reported as drawn (each step would replay a whole batch).
@settings(max_examples=EXAMPLES, deadline=None, database=None,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(frames=st.lists(signed_in_frame(), min_size=BATCH, max_size=BATCH),
       before=st.lists(before_hello_frame(), min_size=5, max_size=5))
async def test_generated_hostile_frames(arena: Arena, redis: aioredis.Redis,
                                        frames: list[Frame], before: list[Frame]) -> None:
    start = await snapshot(redis)
    for frame in [*frames, *before]:
        await _check(arena, frame)
    for ws in arena.sockets.values():
        assert not ws.closed
    end = await snapshot(redis)
    changed = sorted(k for k in start.keys() | end.keys() if start.get(k) != end.get(k))
    assert changed == [], changed


FIXED = [
    Frame("kiosk", '{"type":"call.cancel","call_id":"c","x":' + "[" * 1000 + "]" * 1000 + "}",
          "bad_request", None),
    Frame("kiosk", '{"type":"call.cancel","call_id":"c_1","rid":"\\ud800"}', "bad_request",
          None),
    Frame("kiosk", '{"type":"call.cancel","call_id":"\\ud800"}', "bad_request", None),
    Frame("interpreter", '{"type":"chat.send","call_id":"CALL","text":"\\ud800"}',
          "bad_request", None),
    Frame("kiosk", b"\x00binary", "bad_request", None),
    Frame("none", b"\x00binary", "unauthorized", None),
    Frame("none", '{"type":"hello","token":' + "[" * 1000 + "]" * 1000 + "}", "unauthorized",
          None),
    Frame("none", '{"type":"hello","token":"\\ud800"}', "unauthorized", None),
    Frame("kiosk", '{"type":"call.cancel","call_id":"c_none","rid":"r1"}', "not_found", "r1"),
    Frame("kiosk", '{"type":"call.request","language":"jsl","rid":"r2"}', "conflict", "r2"),
]


async def test_fixed_hostile_frames(arena: Arena, redis: aioredis.Redis) -> None:
    start = await snapshot(redis)
    for frame in FIXED:
        await _check(arena, frame)
    assert await snapshot(redis) == start
