"""Bot memory per call (not in CI): one answering bot (``tsunagu bot --talk 0``, as in the
soak) answers N sequential kiosk self-tests (``tsunagu kiosk --headless --source synthetic
--call ko --duration 6``) through one relay; after each call it prints the bot's resident
memory (VmRSS) and, from inside the bot, what survived the call: gc object count, live
RTCPeerConnection / MediaStreamTrack / av frame / codec-context instances, tasks, threads.

Run in a loopback-only namespace:
    unshare -rn sh -c 'ip link set lo up && .venv/bin/python -m bench.bot_memory --calls 20'
``--keep-heap`` runs the bot as it was before it released its free C heap after each call
(``tsunagu.runtime.release_free_heap``); ``--trim`` makes the probe report RSS before and
after its own ``malloc_trim(0)``; ``MALLOC_ARENA_MAX=2`` in the environment reaches the bot.
The probe's ``in_use_kib`` (glibc mallinfo2, all arenas) is what C code still holds: flat
across calls means the growth of RSS is freed memory glibc kept, not a leak.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PROBE_ENV = "TSUNAGU_BENCH_BOT_PROBE"  # the bot process writes one JSON line per call here
TRIM_ENV = "TSUNAGU_BENCH_BOT_TRIM"  # "1": the probe calls malloc_trim(0) after each call
KEEP_ENV = "TSUNAGU_BENCH_BOT_KEEP_HEAP"  # "1": the bot does not release its free heap (as before)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def append_line(path: str, line: str) -> None:
    with open(path, "a") as f:
        f.write(line + "\n")


def bot_with_probe() -> int:
    """Run ``tsunagu bot`` with a probe after each served call (inside the bot process)."""
    import ctypes
    import gc
    import threading

    from aiortc import RTCPeerConnection
    from aiortc.mediastreams import MediaStreamTrack

    from interpreter_console import bot

    probe_path = os.environ[PROBE_ENV]
    libc = ctypes.CDLL("libc.so.6")

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]

    libc.mallinfo2.restype = MallInfo2

    def mallinfo() -> dict[str, int]:
        """glibc heap, all arenas (KiB): in use, free inside the heap, mmapped blocks."""
        mi = libc.mallinfo2()
        return {"heap_kib": mi.arena // 1024, "in_use_kib": mi.uordblks // 1024,
                "free_in_heap_kib": mi.fordblks // 1024, "mmap_kib": mi.hblkhd // 1024}
    original = bot.AnsweringBot._serve_one

    def count(kinds: dict[str, type]) -> dict[str, int]:
        out = dict.fromkeys(kinds, 0)
        for obj in gc.get_objects():
            for name, cls in kinds.items():
                if isinstance(obj, cls):
                    out[name] += 1
        return out

    async def serve_one(self: bot.AnsweringBot) -> None:
        await original(self)
        await asyncio.sleep(0.5)  # let closing tasks finish
        gc.collect()
        import av

        kinds: dict[str, type] = {
            "RTCPeerConnection": RTCPeerConnection, "MediaStreamTrack": MediaStreamTrack,
            "av.VideoFrame": av.VideoFrame, "av.AudioFrame": av.AudioFrame,
            "av.CodecContext": av.CodecContext, "av.Packet": av.Packet,
        }
        line: dict[str, Any] = {
            "calls": len(self.report.calls), "gc_objects": len(gc.get_objects()),
            **count(kinds), "tasks": len(asyncio.all_tasks()),
            "threads": threading.active_count(), "rss_kib": rss_kib(os.getpid()),
            **mallinfo(),
        }
        if os.environ.get(TRIM_ENV) == "1":
            # what glibc holds but nobody uses: RSS after handing free pages back
            libc.malloc_trim(0)
            line["rss_after_trim_kib"] = rss_kib(os.getpid())
        append_line(probe_path, json.dumps(line))

    bot.AnsweringBot._serve_one = serve_one  # type: ignore[method-assign]
    if os.environ.get(KEEP_ENV) == "1":
        bot.release_free_heap = lambda: False  # the bot as it was before the fix
    return bot.main(sys.argv[2:])


def run(args: argparse.Namespace) -> dict[str, Any]:
    from tests.support.service import Service
    from tsunagu.redis_server import RedisServer

    env = {**os.environ, "TSUNAGU_ICE_ADDRESSES": "127.0.0.1", "TSUNAGU_ICE_SERVERS": "[]"}
    env.setdefault("TSUNAGU_SECRET", secrets.token_hex(32))
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        server = RedisServer(tmp / "redis", persist=False)
        server.start()
        svc = Service(server.url, tmp / "logs", env=env)
        bot: subprocess.Popen[bytes] | None = None
        rows: list[dict[str, Any]] = []
        try:
            svc.start()
            svc.add_interpreter("membot", "membot-pw", "ko")
            token_file = tmp / "kiosk.token"
            token_file.write_text(svc.add_kiosk("mem-k"))
            probe = tmp / "probe.jsonl"
            probe.touch()
            with open(tmp / "bot.log", "wb") as log:
                bot = subprocess.Popen(
                    [sys.executable, "-m", "bench.bot_memory", "--bot", "--server", svc.url,
                     "--username", "membot", "--password-stdin", "--talk", "0"],
                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log,
                    env={**env, PROBE_ENV: str(probe)})
            assert bot.stdin is not None
            bot.stdin.write(b"membot-pw\n")
            bot.stdin.close()
            time.sleep(3.0)
            print(json.dumps({"call": 0, "rss_kib": rss_kib(bot.pid)}), flush=True)
            for n in range(1, args.calls + 1):
                started = time.monotonic()
                done = subprocess.run(
                    [sys.executable, "-m", "tsunagu", "kiosk", "--server", svc.url,
                     "--token-file", str(token_file), "--headless", "--source", "synthetic",
                     "--no-audio-out", "--call", "ko", "--duration", "6", "--max-wait", "30"],
                    capture_output=True, env=env, timeout=120, check=False)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:  # the bot's probe for this call
                    lines = probe.read_text().splitlines()
                    if len(lines) >= n:
                        break
                    time.sleep(0.2)
                inside = json.loads(lines[-1]) if lines else {}
                row = {"call": n, "ok": done.returncode == 0,
                       "seconds": round(time.monotonic() - started, 1),
                       "rss_kib": rss_kib(bot.pid), "relay_rss_kib": rss_kib(svc.relay.pid)
                       if svc.relay else None, "bot": inside}
                rows.append(row)
                print(json.dumps(row), flush=True)
        finally:
            if bot is not None:
                bot.terminate()
                bot.wait(10)
            svc.stop()
            server.stop()
    first, last = rows[0]["rss_kib"], rows[-1]["rss_kib"]
    return {"calls": len(rows), "ok": sum(r["ok"] for r in rows),
            "rss_first_call_kib": first, "rss_last_call_kib": last,
            "kib_per_call_after_first": round((last - first) / max(1, len(rows) - 1)),
            "malloc_arena_max": os.environ.get("MALLOC_ARENA_MAX"),
            "released_after_call": os.environ.get(KEEP_ENV) != "1"}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--bot":
        raise SystemExit(bot_with_probe())
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=20)
    p.add_argument("--trim", action="store_true",
                   help="the bot calls malloc_trim(0) after each call (RSS before and after)")
    p.add_argument("--keep-heap", action="store_true",
                   help="the bot as before the fix: no release_free_heap() after a call")
    args = p.parse_args()
    if args.keep_heap:
        os.environ[KEEP_ENV] = "1"
    if args.trim:
        os.environ[TRIM_ENV] = "1"
    print(json.dumps(run(args)))


if __name__ == "__main__":
    main()
