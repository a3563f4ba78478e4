"""A load run: kiosks placing calls, interpreters answering them at once; used by tests and
bench. Records what each side saw so a test can check that no call was lost or doubled."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from tests.support.stack import Stack
from tsunagu.client import SignalingClient

LANGS = ["jsl", "en", "vi", "zh"]


@dataclass
class LoadReport:
    kiosk_connected: Counter[str] = field(default_factory=Counter)
    interp_connected: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    ended_reasons: Counter[str] = field(default_factory=Counter)
    overlaps: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # The wait range each call was shown at enqueue (call.queued), by call id.
    shown: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)


async def interpreter(name: str, client: SignalingClient, report: LoadReport,
                      stop: asyncio.Event, talk_s: tuple[float, float] = (0.01, 0.05)) -> None:
    await client.request("presence.set", status="available")
    current: str | None = None
    while not stop.is_set():
        try:
            msg = await client.next("call.offer", "call.connected", "call.ended", timeout=0.5)
        except TimeoutError:
            continue
        kind = msg["type"]
        if kind == "call.offer":
            await client.send("call.accept", call_id=msg["call_id"], offer_id=msg["offer_id"])
        elif kind == "call.connected":
            if current is not None:
                report.overlaps += 1
            current = msg["call_id"]
            report.interp_connected[msg["call_id"]].append(name)
            asyncio.get_running_loop().call_later(
                random.uniform(*talk_s), lambda c=current: asyncio.ensure_future(
                    client.send("call.hangup", call_id=c)))
        elif kind == "call.ended" and msg["call_id"] == current:
            current = None
            await client.send("presence.set", status="available")


async def kiosk(client: SignalingClient, lang: str, n_calls: int, report: LoadReport) -> None:
    for _ in range(n_calls):
        queued = await client.request("call.request", language=lang, timeout=60)
        report.shown[queued["call_id"]] = (queued.get("estimated_wait_min_s"),
                                           queued.get("estimated_wait_max_s"))
        msg = await client.next("call.connected", "call.ended", timeout=120,
                                call_id=queued["call_id"])
        if msg["type"] == "call.connected":
            report.kiosk_connected[queued["call_id"]] += 1
            msg = await client.next("call.ended", timeout=120, call_id=queued["call_id"])
        else:
            report.errors.append(f"{queued['call_id']} ended before answer: {msg['reason']}")
        report.ended_reasons[msg["reason"]] += 1


async def run_load(stack: Stack, *, kiosks: int, interpreters: int, calls: int,
                   talk_s: tuple[float, float] = (0.01, 0.05)) -> LoadReport:
    """``calls`` calls from ``kiosks`` kiosks answered by ``interpreters`` bots (each talking
    for a time drawn from ``talk_s``), spread over the stack's nodes; every language has
    interpreters."""
    report = LoadReport()
    stop = asyncio.Event()
    nodes = len(stack.nodes)
    bots = []
    for n in range(interpreters):
        langs = [LANGS[n % len(LANGS)], LANGS[(n + 1) % len(LANGS)]]
        token = await stack.add_interpreter(f"bot{n}", langs)
        client = await stack.client(token, node=n % nodes)
        bots.append(asyncio.create_task(interpreter(f"bot{n}", client, report, stop, talk_s)))
    await asyncio.sleep(0.5)
    per_kiosk = calls // kiosks
    clients = [await stack.client(await stack.add_kiosk(f"load{n}"), node=n % nodes)
               for n in range(kiosks)]
    started = time.perf_counter()
    await asyncio.gather(*(kiosk(c, LANGS[n % len(LANGS)], per_kiosk, report)
                           for n, c in enumerate(clients)))
    report.seconds = time.perf_counter() - started
    stop.set()
    await asyncio.gather(*bots)
    return report
