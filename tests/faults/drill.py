"""A fault drill: two signaling processes on one Redis (AOF), kiosks and interpreters placing
and answering calls, and faults injected one after another (issue 10). Used by the drill
test (tests/faults) and the soak (bench/soak.py).

What each side saw is recorded; ``check`` compares it with the events stream:
- every call a kiosk was told of ends with a ``call.ended`` the kiosk saw, within ``bound_s``;
- every call in the events stream was seen by its kiosk, and has ended;
- no call is connected twice (kiosk side and events), no interpreter is in two calls at once;
- the statistics a node serves equal a count from the events.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.stack import Node, Stack, start_process, wait_healthy
from tsunagu.client import Disconnected, ServerError, SignalingClient
from tsunagu.redis_keys import Keys
from tsunagu.redis_server import RedisServer
from tsunagu.store import RedisClient, connect

K = Keys()
TIMERS = {"TSUNAGU_WRAPUP_S": "0.2", "TSUNAGU_SWEEP_INTERVAL_S": "0.05",
          "TSUNAGU_KIOSK_GRACE_S": "6", "TSUNAGU_CALL_GRACE_S": "6",
          "TSUNAGU_INTERP_GRACE_S": "6", "TSUNAGU_OFFER_TIMEOUT_S": "5",
          "TSUNAGU_NODE_DEAD_S": "4", "TSUNAGU_STATS_INTERVAL_S": "0.5",
          "TSUNAGU_MESSAGES_PER_SECOND": "100000", "TSUNAGU_CALLS_PER_MINUTE": "100000"}
HOLD_S = (0.3, 1.5)  # how long an interpreter keeps a call


def bound_s() -> float:
    """How long after a kiosk learns of its call it must learn its end: the longest chain of
    timers a fault can put in the way (a dead node noticed, a kiosk's or a party's grace, an
    offer timing out, a call held), plus 10 s of reconnects and Redis restarts."""
    t = {k: float(v) for k, v in TIMERS.items()}
    return (t["TSUNAGU_NODE_DEAD_S"] + t["TSUNAGU_KIOSK_GRACE_S"] + t["TSUNAGU_CALL_GRACE_S"]
            + t["TSUNAGU_OFFER_TIMEOUT_S"] + HOLD_S[1] + 10.0)


@dataclass
class Seen:
    """What the clients saw."""

    first_seen: dict[str, float] = field(default_factory=dict)  # call -> when kiosk knew it
    kiosk_of: dict[str, str] = field(default_factory=dict)
    ended: dict[str, tuple[float, str]] = field(default_factory=dict)  # call -> (when, reason)
    connected: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    requests: int = 0
    refused: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def cut(client: SignalingClient) -> None:
    """Drop a client's socket without a close frame, as a lost network would."""
    ws = client._ws  # noqa: SLF001 - the test's own client
    if ws is not None:
        ws._writer.transport.abort()  # noqa: SLF001


class Drill:
    """The running system and its load."""

    def __init__(self, redis_server: RedisServer, stack: Stack, redis: RedisClient) -> None:
        self.redis_server = redis_server
        self.stack = stack
        self.redis = redis
        self.seen = Seen()
        self.stop = asyncio.Event()  # kiosks place no more calls
        self.done = asyncio.Event()  # interpreters stop answering
        self.kiosks: list[SignalingClient] = []
        self.interps: list[SignalingClient] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.recoveries: dict[str, float] = {}

    @property
    def urls(self) -> list[str]:
        return [n.ws_url for n in self.stack.nodes]

    async def start_load(self, kiosks: int, interpreters: int) -> None:
        for n in range(interpreters):
            token = await self.stack.add_interpreter(f"drill{n}", ["jsl", "en"])
            c = await self._client(token, n)
            self.interps.append(c)
            self.tasks.append(asyncio.create_task(self._interpreter(c)))
        for n in range(kiosks):
            token = await self.stack.add_kiosk(f"dk{n}")
            c = await self._client(token, n)
            self.kiosks.append(c)
            self.tasks.append(asyncio.create_task(self._kiosk(f"dk{n}", c)))

    async def _client(self, token: str, n: int) -> SignalingClient:
        urls = self.urls
        c = SignalingClient(urls[n % len(urls)], token, other_urls=urls)
        await c.connect()
        return c

    async def _interpreter(self, c: SignalingClient) -> None:
        """Accept every offer; hang up every call connected to it (a resumed one too), retried
        until the server says it is over."""
        with contextlib.suppress(Exception):
            await c.request("presence.set", status="available")
        while not self.done.is_set():
            try:
                msg = await c.next("call.offer", "call.connected", "_reconnected", "presence",
                                   timeout=1)
            except TimeoutError:
                continue
            with contextlib.suppress(ServerError, Disconnected, TimeoutError, ConnectionError):
                if msg["type"] == "_reconnected" or (
                        msg["type"] == "presence" and msg.get("state") == "away"):
                    # back, or set away by a missed offer: available again, as a person would
                    await c.request("presence.set", status="available")
                elif msg["type"] == "call.offer":
                    await c.request("call.accept", call_id=msg["call_id"],
                                    offer_id=msg["offer_id"])
                elif msg["type"] == "call.connected":
                    asyncio.get_running_loop().create_task(self._hang_up(c, msg["call_id"]))

    async def _hang_up(self, c: SignalingClient, call_id: str) -> None:
        await asyncio.sleep(random.uniform(*HOLD_S))
        for _ in range(100):
            try:
                await c.request("call.hangup", call_id=call_id, timeout=5)
                break
            except ServerError as exc:
                if exc.code in ("conflict", "not_found", "forbidden"):
                    break  # already over
            except (Disconnected, TimeoutError, ConnectionError):
                pass
            await asyncio.sleep(0.3)
        with contextlib.suppress(Exception):
            await c.request("presence.set", status="available")

    async def _kiosk(self, kiosk: str, c: SignalingClient) -> None:
        seen = self.seen
        watcher = asyncio.create_task(self._watch(kiosk, c))
        try:
            while not self.stop.is_set():
                await self._until_mine_ended(kiosk)
                seen.requests += 1
                try:
                    queued = await c.request("call.request", language="jsl", timeout=8)
                    self._note(kiosk, queued)
                except (ServerError, Disconnected, TimeoutError, ConnectionError) as exc:
                    seen.refused[getattr(exc, "code", type(exc).__name__)] += 1
                    # the call may exist although the reply was lost: a resume tells
                    with contextlib.suppress(Exception):
                        await c.drop()
                    await asyncio.sleep(0.5)
                    continue
                await asyncio.sleep(random.uniform(0.1, 0.4))
            await self._until_mine_ended(kiosk)  # its last call too
        finally:
            watcher.cancel()

    async def _until_mine_ended(self, kiosk: str) -> None:
        deadline = time.monotonic() + bound_s()
        while time.monotonic() < deadline:
            if not any(k == kiosk and c not in self.seen.ended
                       for c, k in self.seen.kiosk_of.items()):
                return
            await asyncio.sleep(0.05)

    def _note(self, kiosk: str, msg: dict[str, Any]) -> None:
        call_id = msg.get("call_id")
        if isinstance(call_id, str) and call_id not in self.seen.first_seen:
            self.seen.first_seen[call_id] = time.monotonic()
            self.seen.kiosk_of[call_id] = kiosk

    async def _watch(self, kiosk: str, c: SignalingClient) -> None:
        """Everything pushed to a kiosk: its calls, their connections and ends."""
        while True:
            msg = await c.next("call.queued", "call.connected", "call.ended", timeout=3600)
            self._note(kiosk, msg)
            call_id = str(msg.get("call_id"))
            if msg["type"] == "call.connected" and not msg.get("resumed"):
                self.seen.connected[call_id] += 1
            elif msg["type"] == "call.ended" and call_id not in self.seen.ended:
                self.seen.ended[call_id] = (time.monotonic(), str(msg.get("reason")))

    async def finish(self) -> None:
        """Stop placing calls; wait until every call a kiosk knows of has ended."""
        self.stop.set()
        deadline = time.monotonic() + bound_s()
        while time.monotonic() < deadline:
            if set(self.seen.first_seen) <= set(self.seen.ended) and \
                    not await self.redis.scard(K.live_calls):
                break
            await asyncio.sleep(0.2)
        self.done.set()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.kiosks + self.interps),
                             return_exceptions=True)
        await self.redis.aclose()

    # -- faults ------------------------------------------------------------------------------
    async def all_events(self) -> list[dict[str, str]]:
        """The whole events stream, read in pages (a soak's stream is too long for one reply
        within the client's socket timeout)."""
        out: list[dict[str, str]] = []
        cursor = "-"
        while True:
            batch = await self.redis.xrange(K.events, min=cursor, count=2000)
            out += [f for _, f in batch]
            if len(batch) < 2000:
                return out
            cursor = "(" + batch[-1][0]

    async def kill_node(self, index: int, sig: int = signal.SIGKILL, down_s: float = 2.0
                        ) -> None:
        node = self.stack.nodes[index]
        assert node.proc is not None
        port = int(node.base_url.rsplit(":", 1)[1])
        node.proc.send_signal(sig)
        stopping = time.monotonic()
        try:
            await asyncio.to_thread(node.proc.wait, 30)
        except subprocess.TimeoutExpired:
            node.proc.kill()
            tail = (await asyncio.to_thread(Path(node.log_path or "/dev/null").read_text))[-3000:]
            raise AssertionError(f"node did not stop on {sig!r}:\n{tail}") from None
        self.recoveries[f"node {signal.Signals(sig).name}: exit"] = time.monotonic() - stopping
        await asyncio.sleep(down_s)
        started = time.monotonic()
        fresh = start_process(self.stack.settings.redis_url, TIMERS, port=port)
        await wait_healthy(fresh)
        self.stack.nodes[index] = Node(fresh.base_url, proc=fresh.proc, log_path=fresh.log_path)
        self.recoveries[f"node {signal.Signals(sig).name} restart to ready"] = \
            time.monotonic() - started

    async def pause_redis(self, seconds: float = 3.0) -> None:
        proc = self.redis_server.proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGSTOP)
        await asyncio.sleep(seconds)
        os.kill(proc.pid, signal.SIGCONT)
        self.recoveries["redis SIGSTOP: ready after SIGCONT"] = await self._until_ready()

    async def restart_redis(self) -> None:
        await asyncio.sleep(1.2)  # AOF everysec
        self.redis_server.kill()
        await asyncio.to_thread(self.redis_server.start)
        self.recoveries["redis SIGKILL + AOF restart: ready"] = await self._until_ready()

    async def _until_ready(self) -> float:
        started = time.monotonic()
        async with aiohttp.ClientSession() as http:
            while time.monotonic() - started < 30:
                ok = 0
                for node in self.stack.nodes:
                    with contextlib.suppress(aiohttp.ClientError, OSError):
                        async with http.get(node.base_url + "/readyz") as r:
                            ok += r.status == 200
                if ok == len(self.stack.nodes):
                    break
                await asyncio.sleep(0.05)
        return time.monotonic() - started

    async def drop_sockets(self, count: int = 4) -> None:
        """Cut sockets without a close frame: kiosks (waiting or in a call) and interpreters
        (ringing or in a call), whatever state each is in at that moment."""
        for c in random.sample(self.kiosks, min(count, len(self.kiosks))) + \
                random.sample(self.interps, min(count // 2, len(self.interps))):
            cut(c)

    # -- the invariants ----------------------------------------------------------------------
    async def check(self, *, strict: bool = True) -> dict[str, Any]:
        """The invariants; returns the numbers (``strict``: raises AssertionError on a
        violation)."""
        seen = self.seen
        events = await self.all_events()
        enqueued = {f["call"]: f["kiosk"] for f in events if f["ev"] == "enqueued"
                    and f["kiosk"].startswith("dk")}
        ended_ev = {f["call"]: f for f in events if f["ev"] == "ended"}
        answered: dict[str, list[str]] = defaultdict(list)
        for f in events:
            if f["ev"] == "answered":
                answered[f["call"]].append(f["interp"])
        lost = sorted(c for c in seen.first_seen if c not in seen.ended)
        unseen = sorted(c for c in enqueued if c not in seen.first_seen)
        unended = sorted(c for c in enqueued if c not in ended_ev)
        late = {c: round(seen.ended[c][0] - t, 1) for c, t in seen.first_seen.items()
                if c in seen.ended and seen.ended[c][0] - t > bound_s()}
        double = sorted(c for c, n in seen.connected.items() if n > 1) + sorted(
            c for c, who in answered.items() if len(who) > 1)
        overlaps = _interpreter_overlaps(events)
        stats = await self._stats()
        counted = _count(events)
        report = {
            "calls": len(enqueued), "kiosk_requests": seen.requests,
            "refused": dict(seen.refused), "lost": len(lost), "unseen": len(unseen),
            "unended": len(unended), "late": len(late), "double_assigned": len(double),
            "interpreter_overlaps": overlaps,
            "reasons": dict(_reasons(seen)), "stats": stats, "counted": counted,
            "recovery_s": {k: round(v, 2) for k, v in self.recoveries.items()},
        }
        states = {c: await self.redis.hmget(K.call(c), "state", "interpreter")
                  for c in unended[:5]}
        problems = {"states": states if unended else {}, "lost": lost[:5],
                    "unseen": unseen[:5], "unended": unended[:5],
                    "late": dict(list(late.items())[:5]), "double": double[:5],
                    "overlaps": overlaps}
        if strict:
            assert not any(problems.values()), (problems, report)
            assert stats == counted, (stats, counted)
        report["problems"] = {k: v for k, v in problems.items() if v}
        return report

    async def _stats(self) -> dict[str, int]:
        token = await self.stack.add_staff("drill-sup", "supervisor")
        async with aiohttp.ClientSession() as http:
            for _ in range(40):  # the node folds the events stream within a second or two
                async with http.get(self.stack.nodes[0].base_url + "/api/stats",
                                    headers={"Authorization": f"Bearer {token}"}) as r:
                    today = (await r.json())["today"]
                got = {k: int(today[k]) for k in ("answered", "abandoned", "failed")}
                if got == _count(await self.all_events()):
                    return got
                await asyncio.sleep(0.25)
        return got


def _reasons(seen: Seen) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for _when, reason in seen.ended.values():
        out[reason] += 1
    return out


def _count(events: list[dict[str, str]]) -> dict[str, int]:
    """Each call leaves the queue once: answered at its first answer, else by its end."""
    answered = {f["call"] for f in events if f["ev"] == "answered"}
    out = {"answered": len(answered), "abandoned": 0, "failed": 0}
    for f in events:
        if f["ev"] == "ended" and f["call"] not in answered and f["outcome"] in out:
            out[f["outcome"]] += 1
    return out


def _interpreter_overlaps(events: list[dict[str, str]]) -> list[str]:
    """Interpreters answered into a call while still in another (per the events)."""
    current: dict[str, str] = {}
    call_interp: dict[str, str] = {}
    overlaps = []
    for f in events:
        if f["ev"] == "answered":
            interp = f["interp"]
            if interp in current:
                overlaps.append(f"{interp}: {current[interp]} and {f['call']}")
            current[interp] = f["call"]
            call_interp[f["call"]] = interp
        elif f["ev"] in ("ended", "transferred") and f["call"] in call_interp:
            interp = call_interp.pop(f["call"])
            if current.get(interp) == f["call"]:
                del current[interp]
    return overlaps


async def open_drill(tmp: Path, settings_factory: Any, kiosks: int, interpreters: int,
                     nodes: int = 2) -> tuple[Drill, RedisServer, Stack]:
    """Redis with AOF, ``nodes`` signaling processes, and the load started."""
    server = RedisServer(tmp / "redis", persist=True)
    server.start()
    stack = Stack(settings_factory(server))
    for _ in range(nodes):
        stack.nodes.append(start_process(server.url, TIMERS))
    for node in stack.nodes:
        await wait_healthy(node)
    # The drill's own reads (whole streams, every call's state) may be slow on a busy machine:
    # a generous timeout, so a check is never lost to a slow reply.
    drill = Drill(server, stack, connect(server.url, timeout_s=60.0))
    await drill.start_load(kiosks, interpreters)
    return drill, server, stack
