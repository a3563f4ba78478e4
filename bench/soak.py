"""Soak (not in CI): two signaling nodes and two relays on one Redis (AOF), a steady call load
from Python kiosks and interpreters, and a fault every ``--fault-every-s`` seconds in turn
(a node SIGKILLed and restarted, Redis stopped 3 s, Redis SIGKILLed and restarted from its
AOF, sockets cut without a close, a node drained with SIGTERM, a relay SIGKILLed and
restarted). Prints one JSON line: calls, lost, double-assigned, the invariants of the fault
drill (tests/faults/drill.py), the measured recoveries, and the resident memory and open
file descriptors of every process and Redis's memory at start and end.

Run inside a loopback-only namespace (the relays' ICE):
    unshare -n sh -c 'ip link set lo up && .venv/bin/python -m bench.soak --minutes 30'
Beside that signaling load, one call with media every ``--media-every-s`` seconds: the kiosk
self-test (``tsunagu kiosk --headless --source synthetic --call ko``, a process per call, on
the nodes in turn) answered by the answering bot (``tsunagu bot``, one process for the whole
soak), through the relays; each must end with video decoded both ways, and the report names
the fault each failed one met.
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

from redis.exceptions import RedisError

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


class MediaCalls:
    """Calls with media through the relays, beside the signaling load: the answering bot and
    one kiosk self-test at a time (both real processes, through the public command line)."""

    LANGUAGE = "ko"  # not one the drill's load uses: only the bot answers it

    def __init__(self, drill: Drill, tmp: Path, every_s: float) -> None:
        self.drill, self.tmp, self.every_s = drill, tmp, every_s
        self.env = {**os.environ, "TSUNAGU_ICE_ADDRESSES": "127.0.0.1",
                    "TSUNAGU_ICE_SERVERS": "[]"}
        self.bot: subprocess.Popen[bytes] | None = None
        self.results: list[dict[str, Any]] = []
        self.token_file = tmp / "media-kiosk.token"

    async def start(self) -> None:
        stack = self.drill.stack
        await stack.add_interpreter("mediabot", [self.LANGUAGE], password="media-bot-pw")
        self.token_file.write_text(await stack.add_kiosk("media-k", ward="北区", counter="9"))
        self.bot = self._start_bot(stack.nodes[0].base_url)

    def _start_bot(self, server: str) -> subprocess.Popen[bytes]:
        with open(self.tmp / "bot.log", "wb") as log:
            bot = subprocess.Popen(
                [sys.executable, "-m", "tsunagu", "bot", "--server", server,
                 "--username", "mediabot", "--password-stdin", "--talk", "0"],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log, env=self.env)
        assert bot.stdin is not None
        bot.stdin.write(b"media-bot-pw\n")
        bot.stdin.close()
        return bot

    async def run(self, until: float, faults: list[tuple[float, str]]) -> None:
        """One self-test call every ``every_s`` seconds until ``until`` (monotonic)."""
        n = 0
        while time.monotonic() + 60 < until:
            node = self.drill.stack.nodes[n % len(self.drill.stack.nodes)]
            started = time.monotonic()
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tsunagu", "kiosk", "--server", node.base_url,
                "--token-file", str(self.token_file), "--headless", "--source", "synthetic",
                "--no-audio-out", "--call", self.LANGUAGE, "--duration", "6",
                "--max-wait", "30", stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=self.env)
            timed_out = False
            try:
                out, err = await asyncio.wait_for(proc.communicate(), 120)
            except TimeoutError:
                timed_out = True
                proc.kill()
                out, err = await proc.communicate()
            ended = time.monotonic()
            lines = out.decode(errors="replace").strip().splitlines()
            hit = [name for at, name in faults if started - 5 <= at <= ended]
            # what a failed one said on stderr: its last lines (never a token: the kiosk
            # logs none)
            tail = err.decode(errors="replace").strip().splitlines()[-2:]
            self.results.append({"ok": proc.returncode == 0, "node": n % 2,
                                 "first_line": lines[0] if lines else "no output",
                                 "exit": proc.returncode, "timed_out": timed_out,
                                 "seconds": round(ended - started, 1),
                                 **({} if proc.returncode == 0 else {"stderr": tail}),
                                 "fault_during": hit})
            n += 1
            await asyncio.sleep(max(0.0, started + self.every_s - time.monotonic()))

    def report(self) -> dict[str, Any]:
        failed = [r for r in self.results if not r["ok"]]
        return {"media_calls": len(self.results), "media_ok": len(self.results) - len(failed),
                "media_failed_without_fault": [r for r in failed if not r["fault_during"]],
                "media_failed_during_fault": [r for r in failed if r["fault_during"]]}

    def stop(self) -> None:
        if self.bot is not None:
            self.bot.terminate()
            self.bot.wait(10)


async def usage(drill: Drill, relays: Relays, server: RedisServer,
                media: MediaCalls | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n, node in enumerate(drill.stack.nodes):
        assert node.proc is not None
        out[f"signaling{n}"] = process_usage(node.proc.pid)
    for n, proc in enumerate(relays.procs):
        out[f"relay{n}"] = process_usage(proc.pid)
    if media is not None and media.bot is not None and media.bot.poll() is None:
        out["bot"] = process_usage(media.bot.pid)
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
        media = MediaCalls(drill, Path(tmp), args.media_every_s)
        fault_times: list[tuple[float, str]] = []
        try:
            await media.start()
            await asyncio.sleep(min(20.0, args.minutes * 60 / 6))  # warm up
            start = await usage(drill, relays, server, media)
            until = time.monotonic() + args.minutes * 60
            media_task = asyncio.create_task(media.run(until, fault_times))
            next_fault = time.monotonic() + args.fault_every_s
            n = 0
            while time.monotonic() < until:
                await asyncio.sleep(min(1.0, max(0.0, until - time.monotonic())))
                if time.monotonic() >= next_fault:
                    name, fault = faults[n % len(faults)]
                    fault_times.append((time.monotonic(), name))
                    await fault()
                    done.append(name)
                    n += 1
                    next_fault = time.monotonic() + args.fault_every_s
            await media_task
            end = await usage(drill, relays, server, media)
            await drill.finish()
            report = await check_patiently(drill)
        finally:
            media.stop()
            await drill.close()
            relays.stop()
            await stack.close()
            server.stop()
    return {"minutes": args.minutes, "faults": done, **report, **media.report(),
            "usage_start": start, "usage_end": end}


async def check_patiently(drill: Drill, tries: int = 3) -> dict[str, Any]:
    """The drill's invariants; a slow Redis reply on a busy machine is retried, not fatal
    after half an hour of load."""
    for attempt in range(1, tries + 1):
        try:
            return await drill.check(strict=False)
        except (RedisError, OSError) as exc:
            if attempt == tries:
                raise
            print(f"soak: checking the invariants failed ({exc}); again in 10 s", file=sys.stderr)
            await asyncio.sleep(10)
    raise AssertionError("unreachable")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--fault-every-s", type=float, default=300.0)
    p.add_argument("--kiosks", type=int, default=16)
    p.add_argument("--interpreters", type=int, default=6)
    p.add_argument("--media-every-s", type=float, default=60.0,
                   help="one self-test call with media through the relays this often")
    args = p.parse_args()
    print(json.dumps(asyncio.run(soak(args)), ensure_ascii=False))


if __name__ == "__main__":
    main()
