"""Everything one signaling node shares between its connections."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from signaling.accounts import Accounts
from signaling.bus import Bus
from signaling.fleet import FleetService
from signaling.limits import Limits
from signaling.media import RelayPool
from signaling.metrics import Metrics
from signaling.routing import Router
from signaling.stats import StatsService
from signaling.test_calls import TestCalls
from signaling.throttle import LoginThrottle
from tsunagu.languages import Language
from tsunagu.settings import SignalingSettings
from tsunagu.store import RedisClient

log = logging.getLogger(__name__)


@dataclass
class Node:
    """One signaling node: its settings, Redis clients and services."""

    settings: SignalingSettings
    redis: RedisClient
    blocking: RedisClient
    router: Router
    accounts: Accounts
    bus: Bus
    stats: StatsService
    relays: RelayPool
    catalogue: tuple[Language, ...]
    throttle: LoginThrottle
    limits: Limits
    fleet: FleetService
    tests: TestCalls
    proxies: frozenset[str] = frozenset()
    preauth: dict[str, int] = field(default_factory=dict)  # sockets before hello, by address
    metrics: Metrics = field(default_factory=lambda: Metrics())
    connections: set[Any] = field(default_factory=set)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        """Run a short job beside the caller; keep a reference, log it if it fails."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("%s failed: %r", task.get_name(), task.exception())

    def local_kiosks(self) -> list[str]:
        """The ids of the kiosks whose socket this node holds."""
        return [c[2:] for c in self.bus.local if c.startswith("k:")]

    @property
    def languages(self) -> dict[str, Language]:
        return {lang.code: lang for lang in self.catalogue}


NODE = web.AppKey("node", Node)
