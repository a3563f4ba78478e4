"""Soak (not in CI): two signaling nodes and two relays on one Redis (AOF), a steady call load
from Python kiosks and interpreters, and a fault every ``--fault-every-s`` seconds in turn
(a node SIGKILLed and restarted, Redis stopped 3 s, Redis SIGKILLed and restarted from its
AOF, sockets cut without a close, a node drained with SIGTERM, a relay SIGKILLed and
restarted). Prints one JSON line: calls, lost, double-assigned, the invariants of the fault
drill (tests/faults/drill.py), the measured recoveries, and the resident memory and open
file descriptors of every process and Redis's memory at start and end.

Run inside a loopback-only namespace (the relays' ICE):
    unshare -n sh -c 'ip link set lo up && .venv/bin/python -m bench.soak --minutes 30'
The calls carry signaling only (no media legs): the relays run, register, are chosen by
nothing and are killed and restarted as a fault; media under faults is tests/relay's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.faults.drill import Drill, open_drill
from tsunagu.redis_server import RedisServer, free_port
from tsunagu.settings import SignalingSettings


def process_usage(pid: int) -> dict[str, int]:
    """Resident memory (KiB) and open file descriptors of one process."""
    rss = 0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return {"rss_kib": rss, "fds": len(os.listdir(f"/proc/{pid}/fd"))}


class Relays:
    """Two relay processes (``tsunagu relay``) on fixed ports, restartable."""

    def __init__(self, redis_url: str, count: int = 2) -> None:
        self.redis_url = redis_url
        self.ports = [free_port() for _ in range(count)]
        self.procs: list[subprocess.Popen[bytes]] = [self._start(p) for p in self.ports]

    def _start(self, port: int) -> subprocess.Popen[bytes]:
        env = {**os.environ, "TSUNAGU_ICE_ADDRESSES": "127.0.0.1", "TSUNAGU_ICE_SERVERS": "[]"}
        return subprocess.Popen([sys.executable, "-m", "tsunagu", "relay", "--host",
                                 "127.0.0.1", "--port", str(port), "--redis-url",
                                 self.redis_url], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

    async def kill_and_restart(self, index: int) -> None:
        self.procs[index].kill()
        await asyncio.to_thread(self.procs[index].wait)
        await asyncio.sleep(1.0)
        self.procs[index] = self._start(self.ports[index])

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(10)


async def usage(drill: Drill, relays: Relays, server: RedisServer) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n, node in enumerate(drill.stack.nodes):
        assert node.proc is not None
        out[f"signaling{n}"] = process_usage(node.proc.pid)
    for n, proc in enumerate(relays.procs):
        out[f"relay{n}"] = process_usage(proc.pid)
    assert server.proc is not None
    out["redis"] = {**process_usage(server.proc.pid),
                    "used_memory_kib": (await drill.redis.info("memory"))["used_memory"] // 1024}
    return out


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.setdefault("TSUNAGU_SECRET", secrets.token_hex(32))
    secret = os.environ["TSUNAGU_SECRET"].encode()
    with tempfile.TemporaryDirectory() as tmp:
        drill, server, stack = await open_drill(
            Path(tmp), lambda s: SignalingSettings(secret=secret, redis_url=s.url),
            kiosks=args.kiosks, interpreters=args.interpreters)
        relays = Relays(server.url)
        faults = [
            ("signaling SIGKILL", lambda: drill.kill_node(1, signal.SIGKILL)),
            ("redis SIGSTOP 3 s", lambda: drill.pause_redis(3.0)),
            ("redis SIGKILL + AOF", drill.restart_redis),
            ("sockets cut", lambda: drill.drop_sockets(6)),
            ("signaling SIGTERM", lambda: drill.kill_node(0, signal.SIGTERM, down_s=0.5)),
            ("relay SIGKILL", lambda: relays.kill_and_restart(0)),
        ]
        done: list[str] = []
        try:
            await asyncio.sleep(min(20.0, args.minutes * 60 / 6))  # warm up
            start = await usage(drill, relays, server)
            until = time.monotonic() + args.minutes * 60
            next_fault = time.monotonic() + args.fault_every_s
            n = 0
            while time.monotonic() < until:
                await asyncio.sleep(min(1.0, max(0.0, until - time.monotonic())))
                if time.monotonic() >= next_fault:
                    name, fault = faults[n % len(faults)]
                    await fault()
                    done.append(name)
                    n += 1
                    next_fault = time.monotonic() + args.fault_every_s
            end = await usage(drill, relays, server)
            await drill.finish()
            report = await drill.check(strict=False)
        finally:
            await drill.close()
            relays.stop()
            await stack.close()
            server.stop()
    return {"minutes": args.minutes, "faults": done, **report,
            "usage_start": start, "usage_end": end}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--fault-every-s", type=float, default=300.0)
    p.add_argument("--kiosks", type=int, default=16)
    p.add_argument("--interpreters", type=int, default=6)
    args = p.parse_args()
    print(json.dumps(asyncio.run(soak(args)), ensure_ascii=False))


if __name__ == "__main__":
    main()
