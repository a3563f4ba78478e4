"""Capture-to-decoded latency and delivered fps of whole calls, kiosk <-> relay <-> bot.

Starts its own Redis, one signaling node and one relay (the ``tsunagu`` CLI), then N
calls at once: each a kiosk session and an answering bot in this process, sending
stamped synthetic video (640x480@30) and a tone both ways. Every decoded frame's
stamp is read back, so latency is measured on one clock. Loopback only:

    unshare -n sh -c 'ip link set lo up && .venv/bin/python bench/e2e_latency.py --calls 2'
    ... --no-early-release   # the endpoints keep aiortc's stock jitter buffer
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from interpreter_console.bot import AnsweringBot  # noqa: E402
from kiosk_client.screen import ScreenState  # noqa: E402
from kiosk_client.session import KioskSession  # noqa: E402
from tests.support.service import Service  # noqa: E402  (the tests' service launcher)
from tsunagu.client import SignalingClient, server_urls  # noqa: E402
from tsunagu.endpoint.leg import prepare_rtc  # noqa: E402
from tsunagu.endpoint.tracks import SyntheticVideoTrack, ToneAudioTrack  # noqa: E402
from tsunagu.redis_server import RedisServer  # noqa: E402
from tsunagu.settings import BotSettings  # noqa: E402


def loopback_only() -> bool:
    """True when no interface but loopback exists in this network namespace."""
    return [name for _, name in socket.if_nameindex()] == ["lo"]


async def one_call(service: Service, index: int, seconds: float,
                   early_release: bool) -> dict[str, Any]:
    """One kiosk calls, one bot answers; both meter what they receive for ``seconds``."""
    user, password = f"bench{index}", f"pw-bench-{index}-x"
    await asyncio.to_thread(service.add_interpreter, user, password, "jsl")
    token = await asyncio.to_thread(service.add_kiosk, f"bk{index}")
    bot = AnsweringBot(BotSettings(server=service.url, username=user, password=password,
                                 talk_s=None, max_calls=1, wrapup_s=0.0,
                                 early_release=early_release))
    bot_task = asyncio.create_task(bot.run())
    await asyncio.wait_for(bot.ready.wait(), 20)
    client = SignalingClient(server_urls(service.url)[1], token)
    session = KioskSession(client, lambda: [ToneAudioTrack(), SyntheticVideoTrack()])
    await client.connect()
    reader = asyncio.create_task(session.run())
    try:
        await session.request_call("jsl")
        await session.wait_for(ScreenState.IN_CALL, within_s=30)
        assert session.leg is not None
        await session.leg.wait_connected(within_s=20)
        await asyncio.sleep(1.0)  # warm-up: keyframe and bitrate ramp
        session.leg.video.reset()
        if bot.leg is not None:
            bot.leg.video.reset()
        await asyncio.sleep(seconds)
        kiosk_received = session.leg.video.summary()
        await session.hangup()
        await session.wait_for(ScreenState.ENDED, within_s=15)
        report = await asyncio.wait_for(bot_task, 20)
    finally:
        reader.cancel()
        await session.close()
        await client.close()
    media = report.calls[0].media or {}
    return {"bot_to_kiosk": kiosk_received,
            "kiosk_to_bot": media.get("received", {}).get("video")}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the service, run the calls, stop everything."""
    prepare_rtc(early_release=not args.no_early_release)
    with tempfile.TemporaryDirectory() as tmp, RedisServer(Path(tmp) / "redis",
                                                           persist=False) as redis:
        service = Service(redis.url, Path(tmp))
        await asyncio.to_thread(service.start)
        try:
            early = not args.no_early_release
            calls = await asyncio.gather(*(one_call(service, i, args.seconds, early)
                                           for i in range(args.calls)))
        finally:
            await asyncio.to_thread(service.stop)
    return {"calls": args.calls, "seconds": args.seconds,
            "early_release": not args.no_early_release, "results": calls}


def main() -> int:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--calls", type=int, default=1)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--no-early-release", action="store_true")
    args = p.parse_args()
    if not loopback_only():
        print("run this inside a loopback-only namespace: unshare -n sh -c "
              "'ip link set lo up && .venv/bin/python bench/e2e_latency.py'", file=sys.stderr)
        return 2
    os.environ.setdefault("TSUNAGU_SECRET", secrets.token_urlsafe(48))
    os.environ["TSUNAGU_ICE_ADDRESSES"] = "127.0.0.1"
    os.environ["TSUNAGU_ICE_SERVERS"] = "[]"
    print(json.dumps(asyncio.run(run(args))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
