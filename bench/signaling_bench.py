"""Signaling benchmark: prints one JSON line.

On loopback with two signaling processes and one Redis and 1,000 connected
clients: time from ``call.request`` (kiosk) to ``call.offer`` (interpreter),
p50/p99, at a paced rate; routed calls per second with everyone calling at
once; server memory per idle connection; and the round trip of a bare aiohttp
WebSocket echo as the floor.

    .venv/bin/python -m bench.signaling_bench [--clients 1000] [--rate 100] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import aiohttp

from tests.support.stack import Stack, running
from tsunagu.client import SignalingClient
from tsunagu.redis_server import RedisServer, free_port
from tsunagu.settings import SignalingSettings

LANGS = ["jsl", "en", "vi", "zh"]
ECHO = textwrap.dedent("""
    import sys
    from aiohttp import web
    async def ws(request):
        sock = web.WebSocketResponse(compress=False)
        await sock.prepare(request)
        async for msg in sock:
            await sock.send_str(msg.data)
        return sock
    app = web.Application()
    app.router.add_get("/ws", ws)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
""")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def echo_floor(n: int = 2000) -> dict[str, float]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", ECHO, str(port)])  # noqa: ASYNC220
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                try:
                    ws = await http.ws_connect(f"http://127.0.0.1:{port}/ws")
                    break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
            rtts = []
            for _ in range(n):
                t = time.perf_counter()
                await ws.send_str('{"type":"ping"}')
                await ws.receive()
                rtts.append((time.perf_counter() - t) * 1000)
            await ws.close()
        return {"p50_ms": pct(rtts, 0.5), "p99_ms": pct(rtts, 0.99)}
    finally:
        proc.terminate()
        proc.wait()


class Bots:
    """Auto-answering interpreters that hang up at once and are ready again."""

    def __init__(self) -> None:
        self.sent: dict[str, float] = {}
        self.offer_ms: list[float] = []
        self.answered = 0
        self.tasks: list[asyncio.Task[None]] = []

    async def run(self, client: SignalingClient) -> None:
        await client.request("presence.set", status="available")
        while True:
            msg = await client.next("call.offer", "call.connected", timeout=3600)
            if msg["type"] == "call.offer":
                t = self.sent.pop(msg["counter"], None)
                if t is not None:
                    self.offer_ms.append((time.perf_counter() - t) * 1000)
                await client.send("call.accept", call_id=msg["call_id"],
                                  offer_id=msg["offer_id"])
            else:
                self.answered += 1
                await client.send("call.hangup", call_id=msg["call_id"])
                await client.send("presence.set", status="available")


async def place(client: SignalingClient, lang: str, bots: Bots) -> None:
    # Keyed by the kiosk's counter: the offer may arrive before call.queued does.
    bots.sent[client.welcome["user"]["counter"]] = time.perf_counter()
    queued = await client.request("call.request", language=lang, timeout=60)
    await client.next("call.ended", timeout=120, call_id=queued["call_id"])


async def script_latency(stack: Stack, name: str) -> dict[str, float]:
    """Quantiles of one routing script's latency as the nodes saw it (from /metrics buckets)."""
    buckets: dict[float, int] = {}
    async with aiohttp.ClientSession() as http:
        for node in stack.nodes:
            async with http.get(node.base_url + "/metrics") as r:
                for line in (await r.text()).splitlines():
                    prefix = f'tsunagu_transition_ms_bucket{{name="{name}",le="'
                    if line.startswith(prefix):
                        le = line[len(prefix):].split('"')[0]
                        bound = float("inf") if le == "+Inf" else float(le)
                        buckets[bound] = buckets.get(bound, 0) + int(line.split()[-1])
    total = buckets.get(float("inf"), 0)

    def quantile(q: float) -> float:
        for bound in sorted(buckets):
            if buckets[bound] >= q * total:
                return bound
        return float("inf")

    return {"count": total, "p50_le_ms": quantile(0.5), "p99_le_ms": quantile(0.99)}


def note(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


async def redis_commands(stack: Stack) -> dict[str, int]:
    """Calls per command so far (INFO commandstats; a script's own commands count apart, as
    EVALSHA plus what it ran inside)."""
    from redis.asyncio import Redis

    redis = Redis.from_url(stack.settings.redis_url, decode_responses=True)
    try:
        info = await redis.info("commandstats")
    finally:
        await redis.aclose()
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in info.items()
            if name != "cmdstat_info"}


async def bench(args: argparse.Namespace, stack: Stack, redis_pid: int) -> dict[str, object]:
    pids = [n.proc.pid for n in stack.nodes if n.proc]
    before = sum(rss_kib(p) for p in pids)
    n_interp = max(8, args.clients // 10)
    bots = Bots()
    interps = []
    for n in range(n_interp):
        token = await stack.add_interpreter(f"b{n}", [LANGS[n % 4], LANGS[(n + 1) % 4]])
        interps.append(await stack.client(token, node=n % 2))
    kiosks = [await stack.client(await stack.add_kiosk(f"k{n}", counter=str(n)), node=n % 2)
              for n in range(args.clients - n_interp)]
    note(f"{args.clients} clients connected")
    await asyncio.sleep(2)
    after = sum(rss_kib(p) for p in pids)
    idle_kib = (after - before) / args.clients
    bots.tasks = [asyncio.create_task(bots.run(c)) for c in interps]
    await asyncio.sleep(0.5)

    # paced: call.request -> call.offer latency at args.rate calls/s
    total = int(args.rate * args.seconds)
    pending = []
    start = time.perf_counter()
    for i in range(total):
        await asyncio.sleep(max(0.0, start + i / args.rate - time.perf_counter()))
        pending.append(asyncio.create_task(place(kiosks[i % len(kiosks)], LANGS[i % 4], bots)))
    await asyncio.gather(*pending)
    paced = list(bots.offer_ms)
    paced_script = await script_latency(stack, "enqueue")
    note(f"paced phase done: {len(paced)} calls")

    # flat out: every kiosk calls at once, twice
    bots.offer_ms.clear()
    answered0 = bots.answered
    t0 = time.perf_counter()
    cpu0 = [cpu_s(p) for p in pids] + [cpu_s(redis_pid)]
    commands0 = await redis_commands(stack)
    for _ in range(2):
        await asyncio.gather(*(place(k, LANGS[n % 4], bots) for n, k in enumerate(kiosks)))
    flat_s = time.perf_counter() - t0
    cpu1 = [cpu_s(p) for p in pids] + [cpu_s(redis_pid)]
    commands1 = await redis_commands(stack)
    calls = bots.answered - answered0
    routed = calls / flat_s
    # The load generator shares the 2 cores: what the servers spend per call is the capacity.
    signaling_cpu = sum(cpu1[:-1]) - sum(cpu0[:-1])
    redis_cpu = cpu1[-1] - cpu0[-1]
    for task in bots.tasks:
        task.cancel()
    return {
        "clients": args.clients, "signaling_nodes": 2,
        "rate_calls_per_s": args.rate, "paced_calls": len(paced),
        "request_to_offer_p50_ms": pct(paced, 0.5), "request_to_offer_p99_ms": pct(paced, 0.99),
        "request_to_offer_mean_ms": round(statistics.fmean(paced), 3) if paced else None,
        "routed_calls_per_s": round(routed, 1),
        "flat_out_calls": calls,
        "signaling_cpu_ms_per_call": round(1000 * signaling_cpu / calls, 3),
        "redis_cpu_ms_per_call": round(1000 * redis_cpu / calls, 3),
        "calls_per_s_per_signaling_core": round(calls / signaling_cpu, 1),
        "calls_per_s_per_redis_core": round(calls / redis_cpu, 1),
        "idle_connection_kib": round(idle_kib, 1),
        "redis_commands_per_call": round(
            (sum(commands1.values()) - sum(commands0.values())) / calls, 2) if calls else None,
        "redis_commands_per_call_by_command": {
            name: round((commands1[name] - commands0.get(name, 0)) / calls, 2)
            for name in sorted(commands1) if commands1[name] != commands0.get(name, 0)},
        "paced_enqueue_script_ms": paced_script,
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    # Staff passwords hashed as before issue 9 (scrypt N = 2**14): the bench measures calls,
    # and 2**17 would make its 100 logins take minutes of both cores.
    os.environ.setdefault("TSUNAGU_SCRYPT_N", "16384")
    floor = await echo_floor()
    with tempfile.TemporaryDirectory() as tmp, RedisServer(Path(tmp), persist=False) as redis:
        secret = os.environ.get("TSUNAGU_SECRET") or secrets.token_hex(32)
        settings = SignalingSettings(secret=secret.encode(),
                            redis_url=redis.url)
        env = {"TSUNAGU_SECRET": settings.secret.decode(), "TSUNAGU_WRAPUP_S": "0",
               # one address opens every socket: the per-address and per-principal limits
               # are for the field, not for a load generator
               "TSUNAGU_PREAUTH_PER_ADDRESS": "100000", "TSUNAGU_MESSAGES_PER_SECOND": "100000",
               "TSUNAGU_CALLS_PER_MINUTE": "100000",
               "TSUNAGU_SCRYPT_N": os.environ["TSUNAGU_SCRYPT_N"]}
        async with running(settings, inprocess=0, processes=2, env=env) as stack:
            assert redis.proc is not None
            result = await bench(args, stack, redis.proc.pid)
    result["ws_echo_floor"] = floor
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
