"""The signaling node's aiohttp application, wired: the node's services, its background
tasks started and stopped with the app, and the routes of ``signaling.api`` and
``signaling.pages``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from aiohttp import web

from signaling import revocation
from signaling.accounts import Accounts
from signaling.api import add_routes
from signaling.bus import Bus
from signaling.fleet import FleetService
from signaling.limits import Limits
from signaling.media import RelayPool
from signaling.node import NODE, Node
from signaling.pages import add_pages, security_headers
from signaling.positions import PositionTicker
from signaling.relay_events import follow_relay_events
from signaling.routing import Router
from signaling.stats import StatsService
from signaling.sweeper import Sweeper
from signaling.test_calls import TestCalls
from signaling.throttle import LoginThrottle
from tsunagu import store
from tsunagu.access import trusted_proxies
from tsunagu.languages import load_catalogue
from tsunagu.settings import SignalingSettings

log = logging.getLogger(__name__)
TASKS = web.AppKey("tasks", list)


def build_node(settings: SignalingSettings) -> Node:
    redis = store.connect(settings.redis_url, timeout_s=settings.redis_timeout_s)
    blocking = store.connect(settings.redis_url, timeout_s=settings.redis_timeout_s,
                             blocking=True)
    catalogue = load_catalogue(settings.languages_file)
    router = Router(redis, settings)
    bus = Bus(redis, blocking, settings.keys, settings.node_id)
    node = Node(
        settings=settings, redis=redis, blocking=blocking, router=router,
        accounts=Accounts(redis, settings),
        bus=bus, tests=TestCalls(redis, settings, bus),
        stats=StatsService(redis, blocking, settings, catalogue),
        relays=RelayPool(redis, settings, router), catalogue=catalogue,
        throttle=LoginThrottle(redis, settings), proxies=trusted_proxies(),
        limits=Limits(redis, settings.keys, messages_per_s=settings.messages_per_s,
                      calls_per_minute=settings.calls_per_minute,
                      flood_disconnect_s=settings.flood_disconnect_s),
        fleet=FleetService(redis, settings))
    node.stats.fleet = node.fleet
    node.stats.on_change.append(PositionTicker(node).changed)
    node.bus.on_revocation = lambda raw: revocation.announced(raw, node.connections)

    async def subscribed() -> None:
        await revocation.recheck(node.redis, settings.keys, node.connections)
    node.bus.on_subscribed = subscribed
    return node


def _supervise(name: str, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    task = asyncio.create_task(coro, name=name)

    def done(t: asyncio.Task[None]) -> None:
        if not t.cancelled() and t.exception() is not None:
            log.error("background task %s died", name, exc_info=t.exception())
    task.add_done_callback(done)
    return task


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    node = app[NODE]
    await node.relays.start()
    # Blocking reads each get their own connection so they never wait on one another.
    tasks = [
        _supervise("inbox", node.bus.run()),
        _supervise("pubsub", node.bus.listen()),
        _supervise("stats", node.stats.run()),
        _supervise("sweeper", (sweeper := Sweeper(node)).run()),
        _supervise("heartbeat", sweeper.heartbeat()),
        _supervise("relay-events", follow_relay_events(node)),
        _supervise("configure", _configure_when_ready(node)),
        _supervise("kiosk-seen", node.fleet.touch_forever(node.local_kiosks)),
        _supervise("test-calls", node.tests.run()),
    ]
    app[TASKS] = tasks
    log.info("signaling node %s up", node.settings.node_id)
    yield
    for task in tasks:
        task.cancel()
    _done, stuck = await asyncio.wait(tasks, timeout=5)
    for task in stuck:
        log.error("background task %s did not stop", task.get_name())
    with contextlib.suppress(*store.REDIS_ERRORS):
        if not await node.bus.leave():
            log.warning("node %s: left with clients registered; the sweeper releases them",
                        node.settings.node_id)
    await node.relays.stop()
    await node.redis.aclose()
    await node.blocking.aclose()


async def _configure_when_ready(node: Node) -> None:
    """Write the routing timers once Redis answers (it may start after the node)."""
    while True:
        try:
            await node.router.configure()
            return
        except store.REDIS_ERRORS:
            await asyncio.sleep(1.0)


async def _close_sockets(app: web.Application) -> None:
    """The drain, on SIGTERM or any shutdown, once the listener is closed and before aiohttp
    waits for handlers: close every socket at once with 1012 (service restart: resume on
    another node; a client that does not answer the close is cut after 2 s), so each
    records its disconnect and its grace period covers the move."""
    node = app[NODE]
    closing = [asyncio.wait_for(c.ws.close(code=1012, message=b"node restarting; resume"), 2.0)
               for c in list(node.connections)]
    await asyncio.gather(*closing, return_exceptions=True)
    if node.tasks:
        await asyncio.wait(list(node.tasks), timeout=3)


def create_app(settings: SignalingSettings) -> web.Application:
    """The application for one signaling node."""
    app = web.Application(middlewares=[security_headers], client_max_size=64 * 1024)
    app[NODE] = build_node(settings)
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_close_sockets)
    add_routes(app)
    add_pages(app)
    return app
