"""A steady load of calls across the lab while the failures happen: kiosks in ``ward`` place
calls one after another, answering bots in ``home`` take them and hang up after a moment
(signaling only, no media), all through https://tsunagu.lab.test. Each side records what it
saw, so that the drill can check that no call was double-assigned, that every call ended
with a reason and that the statistics add up.

Run as a process inside a lab namespace (``deploy/lab/exec ward python -m
tests.deploy.steady_load kiosks …``). It runs until ``--stop-file`` appears or
``--max-s`` passes (bounded in time and in calls), lets the calls in flight finish, and
writes one JSON report to ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tsunagu.client import Disconnected, ServerError, SignalingClient, login, trusting

log = logging.getLogger("steady_load")
LANGUAGES = ("vi", "zh")  # the drill's own call is jsl (alice), carol's en: never these
HOLD_S = (1.0, 3.0)  # how long a bot keeps a call before hanging up
SETTLE_S = 90.0  # the longest a kiosk waits for one call to end
BOT_QUIET_S = 8.0  # after the stop, a bot leaves once it had no call and no offer this long


def _stopped(args: argparse.Namespace, started: float) -> bool:
    return Path(args.stop_file).exists() or time.monotonic() - started > args.max_s


class Kiosk:
    """One kiosk placing calls in turn; what it saw of each call."""

    def __init__(self, client: SignalingClient, language: str) -> None:
        self.client = client
        self.language = language
        self.calls: dict[str, dict[str, Any]] = {}  # call id -> {connected, reason}
        self.refused: Counter[str] = Counter()  # call.request answered with an error
        self.unconfirmed = 0  # call.request without any answer (socket dropped, timeout)

    async def one_call(self, deadline_s: float) -> None:
        placed_at = time.time()  # wall clock: the drill marks its failures with it too
        try:
            queued = await self.client.request("call.request", language=self.language,
                                               timeout=10)
        except ServerError as exc:
            self.refused[exc.code] += 1
            await asyncio.sleep(1)
            return
        except (Disconnected, TimeoutError):
            self.unconfirmed += 1
            await self.client.connected.wait()
            return
        call_id = queued["call_id"]
        record = self.calls.setdefault(call_id, {"connected": 0, "reason": None,
                                                 "placed_at": placed_at, "ended_at": None})
        end_by = time.monotonic() + deadline_s
        while record["reason"] is None and time.monotonic() < end_by:
            try:
                msg = await self.client.next("call.connected", "call.ended", timeout=1,
                                             call_id=call_id)
            except TimeoutError:
                continue
            if msg["type"] == "call.connected":
                record["connected"] += 1  # resent after a resume: the same call
            else:
                record["reason"] = msg.get("reason") or "(none)"
                record["ended_at"] = time.time()

    async def run(self, args: argparse.Namespace, started: float) -> None:
        while not _stopped(args, started):
            await self.one_call(deadline_s=SETTLE_S)
            await asyncio.sleep(random.uniform(0.2, 0.6))

    def stray_calls(self) -> list[str]:
        """Calls this kiosk heard of but never asked for (a request whose answer was lost)."""
        return sorted({m["call_id"] for m in self.client.drain()
                       if m.get("call_id") and m["call_id"] not in self.calls})


class Bot:
    """An answering interpreter without media: accepts every offer, hangs up after a moment."""

    def __init__(self, name: str, client: SignalingClient) -> None:
        self.name = name
        self.client = client
        self.connected: list[str] = []  # call ids, in order (a call once, resends ignored)
        self.overlaps = 0  # connected to a second call while in one
        self.current: str | None = None
        self.hangup_at = 0.0

    async def _send(self, type_: str, **fields: Any) -> bool:
        try:
            await self.client.send(type_, **fields)
            return True
        except (Disconnected, ConnectionError, RuntimeError):
            return False

    async def run(self, args: argparse.Namespace, started: float) -> None:
        await self.client.request("presence.set", status="available")
        quiet_since = time.monotonic()
        while True:
            if _stopped(args, started) and self.current is None and \
                    time.monotonic() - quiet_since > BOT_QUIET_S:
                return
            if time.monotonic() - started > args.max_s + SETTLE_S:
                return
            if self.current is not None and time.monotonic() >= self.hangup_at:
                await self._send("call.hangup", call_id=self.current)
                self.hangup_at = time.monotonic() + 5  # again if the end never comes
            try:
                msg = await self.client.next("call.offer", "call.connected", "call.ended",
                                             "_reconnected", timeout=0.5)
            except TimeoutError:
                continue
            await self._handle(msg)
            quiet_since = time.monotonic()

    async def _handle(self, msg: dict[str, Any]) -> None:
        kind = msg["type"]
        if kind == "call.offer":
            await self._send("call.accept", call_id=msg["call_id"], offer_id=msg["offer_id"])
        elif kind == "call.connected":
            call_id = msg["call_id"]
            if call_id == self.current or call_id in self.connected:
                return  # resent after a resume
            if self.current is not None:
                self.overlaps += 1
            self.current = call_id
            self.connected.append(call_id)
            self.hangup_at = time.monotonic() + random.uniform(*HOLD_S)
        elif kind == "call.ended" and msg["call_id"] == self.current:
            self.current = None
            await self._send("presence.set", status="available")  # ends the wrap-up
        elif kind == "_reconnected":
            await self._send("presence.set", status="available")


async def _clients(args: argparse.Namespace, tokens: list[str]) -> list[SignalingClient]:
    ws = args.base.replace("https://", "wss://").rstrip("/") + "/ws"
    out = []
    for token in tokens:
        client = SignalingClient(ws, token, ssl=trusting(args.ca_file))
        await client.connect()
        out.append(client)
    return out


async def run_kiosks(args: argparse.Namespace) -> dict[str, Any]:
    clients = await _clients(args, args.token_list)
    kiosks = [Kiosk(c, LANGUAGES[i % len(LANGUAGES)]) for i, c in enumerate(clients)]
    started = time.monotonic()
    await asyncio.gather(*(k.run(args, started) for k in kiosks))
    seconds = time.monotonic() - started
    stats = await _stats(args)
    report = {
        "seconds": round(seconds, 1),
        "calls": {cid: {"language": k.language, **rec} for k in kiosks
                  for cid, rec in k.calls.items()},
        "refused": dict(sum((k.refused for k in kiosks), Counter())),
        "unconfirmed": sum(k.unconfirmed for k in kiosks),
        "stray_calls": [cid for k in kiosks for cid in k.stray_calls()],
        "reconnects": sum(c.reconnects for c in clients),
        "stats_today": stats,
    }
    for c in clients:
        await c.close()
    return report


async def _stats(args: argparse.Namespace) -> dict[str, Any]:
    """``today`` of GET /api/stats (as a supervisor), read again until it stops changing."""
    import aiohttp

    token = await login(args.base, args.supervisor, args.password, ssl=trusting(args.ca_file))
    last: dict[str, Any] | None = None
    async with aiohttp.ClientSession() as http:
        for _ in range(10):
            async with http.get(args.base + "/api/stats", ssl=trusting(args.ca_file),
                                headers={"Authorization": f"Bearer {token}"}) as resp:
                today = dict((await resp.json())["today"])
            if today == last:
                break
            last = today
            await asyncio.sleep(1)
    return today


async def run_bots(args: argparse.Namespace) -> dict[str, Any]:
    names = args.bots.split(",")
    tokens = [await login(args.base, n, args.password, ssl=trusting(args.ca_file))
              for n in names]
    clients = await _clients(args, tokens)
    bots = [Bot(n, c) for n, c in zip(names, clients, strict=True)]
    started = time.monotonic()
    await asyncio.gather(*(b.run(args, started) for b in bots))
    for c in clients:
        await c.close()
    return {"connected": {b.name: b.connected for b in bots},
            "overlaps": sum(b.overlaps for b in bots),
            "reconnects": sum(c.reconnects for c in clients)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("role", choices=("kiosks", "bots"))
    p.add_argument("--base", required=True)
    p.add_argument("--ca-file", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--stop-file", required=True)
    p.add_argument("--max-s", type=float, default=300.0)
    p.add_argument("--tokens", help="kiosks: a file of device tokens, one per kiosk")
    p.add_argument("--supervisor", default="loadsup")
    p.add_argument("--bots", help="bots: comma-separated interpreter names")
    p.add_argument("--password-file", required=True,
                   help="the bots' (or the supervisor's) password")
    args = p.parse_args()
    args.password = Path(args.password_file).read_text().strip()
    args.token_list = Path(args.tokens).read_text().split() if args.tokens else []
    logging.basicConfig(level=logging.WARNING)
    report = asyncio.run(run_kiosks(args) if args.role == "kiosks" else run_bots(args))
    Path(args.out).write_text(json.dumps(report))


if __name__ == "__main__":
    main()
