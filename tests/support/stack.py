"""Running signaling nodes for tests: in-process (fast, configurable) or as real processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from signaling.accounts import Accounts
from signaling.listener import listen
from signaling.server import create_app
from tsunagu.client import SignalingClient, login
from tsunagu.redis_server import free_port
from tsunagu.settings import SignalingSettings
from tsunagu.store import connect


@dataclass
class Node:
    """One running signaling node."""

    base_url: str
    proc: subprocess.Popen[bytes] | None = None
    runner: web.AppRunner | None = None
    server: asyncio.Server | None = None
    log_path: str | None = None

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http", "ws", 1) + "/ws"


@dataclass
class Stack:
    """Signaling nodes sharing one Redis, and helpers to make accounts and clients."""

    settings: SignalingSettings
    nodes: list[Node] = field(default_factory=list)
    clients: list[SignalingClient] = field(default_factory=list)

    async def add_interpreter(self, name: str, languages: list[str], password: str = "pw-" * 3
                              ) -> str:
        redis = connect(self.settings.redis_url)
        try:
            await redis.delete(self.settings.keys.user(name))  # tests re-add freely
            await Accounts(redis, self.settings).add_user(
                name, role="interpreter", password=password, name=name.title(),
                languages=languages)
        finally:
            await redis.aclose()
        return await login(self.nodes[0].base_url, name, password)

    async def add_staff(self, name: str, role: str, password: str = "pw-" * 3) -> str:
        redis = connect(self.settings.redis_url)
        try:
            await redis.delete(self.settings.keys.user(name))  # tests re-add freely
            await Accounts(redis, self.settings).add_user(name, role=role, password=password)
        finally:
            await redis.aclose()
        return await login(self.nodes[0].base_url, name, password)

    async def add_kiosk(self, kiosk_id: str, ward: str = "北区", counter: str = "1") -> str:
        redis = connect(self.settings.redis_url)
        try:
            return await Accounts(redis, self.settings).add_kiosk(kiosk_id, ward=ward,
                                                                 counter=counter, rotate=True)
        finally:
            await redis.aclose()

    async def client(self, token: str, node: int = 0, **kw: Any) -> SignalingClient:
        c = SignalingClient(self.nodes[node].ws_url, token, **kw)
        await c.connect()
        self.clients.append(c)
        return c

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.clients), return_exceptions=True)
        for node in self.nodes:
            if node.server is not None:
                node.server.close()
            if node.runner is not None:
                await node.runner.cleanup()
            if node.proc is not None:
                node.proc.terminate()
                node.proc.wait(10)


async def start_inprocess(settings: SignalingSettings) -> Node:
    port = free_port()
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    server = await listen(runner, "127.0.0.1", port, settings.header_timeout_s)
    return Node(f"http://127.0.0.1:{port}", runner=runner, server=server)


def start_process(redis_url: str, env: dict[str, str] | None = None,
                  port: int | None = None) -> Node:
    """A signaling node as a process (on ``port`` to restart one where it was)."""
    port = port or free_port()
    # The log goes to a file: a pipe nobody reads would block the server once it is full.
    with tempfile.NamedTemporaryFile(prefix=f"signaling-{port}-", suffix=".log",
                                     delete=False) as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tsunagu", "signaling", "--host", "127.0.0.1",
             "--port", str(port), "--redis-url", redis_url],
            env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=log)
    return Node(f"http://127.0.0.1:{port}", proc=proc, log_path=log.name)


async def wait_healthy(node: Node, within_s: float = 20.0) -> None:
    deadline = time.monotonic() + within_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with http.get(node.base_url + "/readyz") as r:
                    if r.status == 200:
                        return
            if node.proc is not None and node.proc.poll() is not None:
                log = await asyncio.to_thread(Path(node.log_path or "/dev/null").read_text)
                raise RuntimeError(log[-4000:])
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{node.base_url} not ready")


@contextlib.asynccontextmanager
async def running(settings: SignalingSettings, *, inprocess: int = 1, processes: int = 0,
                  env: dict[str, str] | None = None) -> AsyncIterator[Stack]:
    stack = Stack(settings)
    try:
        for _ in range(inprocess):
            stack.nodes.append(await start_inprocess(settings))
        for _ in range(processes):
            stack.nodes.append(start_process(settings.redis_url, env))
        for node in stack.nodes:
            await wait_healthy(node)
        yield stack
    finally:
        await stack.close()


def short_timer_env(**values: float) -> Iterator[tuple[str, str]]:
    for name, value in values.items():
        yield "TSUNAGU_" + name.upper(), str(value)
