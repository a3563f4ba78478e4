"""A relay process: its control API served, registered in Redis, until cancelled."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web
from redis.exceptions import RedisError

from relay import control
from relay.estimate import INTERVAL_S
from relay.node import RelayNode
from relay.registry import HEARTBEAT_S, Registry
from tsunagu import store
from tsunagu.rtc_internals import restrict_ice_addresses
from tsunagu.runtime import tune_gc
from tsunagu.settings import RelaySettings

logger = logging.getLogger(__name__)


async def serve(settings: RelaySettings) -> None:
    """Run a relay node until cancelled: control API, registration, forwarding."""
    restrict_ice_addresses(settings.ice_addresses)
    node = RelayNode(settings.relay_id, settings.capacity, settings.ice_servers,
                     connect_timeout_s=settings.connect_timeout_s,
                     drop_kinds=settings.drop_kinds)
    if settings.drop_kinds:
        logger.warning("TEST FAULT: this relay drops all %s (TSUNAGU_TEST_RELAY_DROP)",
                       " and ".join(sorted(settings.drop_kinds)))
    tune_gc()  # a relay process of its own (not a test's event loop: see run())
    await run(node, settings.host, settings.port, settings.redis_url, settings.secret,
              public_url=settings.public_url)


async def _feedback(node: RelayNode) -> None:
    """RR and the relay's own REMB every INTERVAL_S, on its own task: a slow Redis in the
    heartbeat must never hold back what the senders' congestion control hears."""
    while True:
        try:
            await node.feedback()
        except Exception:  # one bad call must not silence every other call's feedback
            logger.exception("relay %s: feedback failed", node.relay_id)
        await asyncio.sleep(INTERVAL_S)


async def run(node: RelayNode, host: str, port: int, redis_url: str, secret: bytes, *,
              public_url: str | None = None) -> None:
    """Serve ``node``'s control API and keep it registered until cancelled."""
    redis = store.connect(redis_url, timeout_s=2.0)  # redis:// or redis+sentinel://
    runner = web.AppRunner(control.make_app(node, secret), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = runner.addresses[0][1]
        url = public_url or f"http://{host}:{bound_port}"
        node.registry = Registry(redis, node.relay_id, url, secret=secret)
        logger.info("relay %s serving on %s, capacity %d", node.relay_id, url, node.capacity)
        feedback = asyncio.create_task(_feedback(node))
        try:
            while True:
                await node.tick()
                await asyncio.sleep(HEARTBEAT_S)
        finally:
            feedback.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feedback
    finally:
        await node.close_all()
        if node.registry is not None:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                await node.registry.unregister()
        await runner.cleanup()
        await redis.aclose()
