"""Redis connections for a signaling node, and the one place Redis errors become protocol ones.

State-changing scripts must not be retried blindly (FIELD-NOTES: redis-py
retries up to 10 times and a timed-out script may already have run), so the
routing client has no automatic retry and a bounded socket timeout.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, TypeAlias

import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from tsunagu.redis_url import is_sentinel_url, parse_sentinel_url

# redis-py's annotations type every reply as ``bytes | str`` whatever the client's
# decode_responses; ours always decode, so replies are ``str``. The client is typed loosely at
# this one boundary instead of casting at every call.
RedisClient: TypeAlias = Any


class BlockingSentinelConnectionPool(SentinelConnectionPool, aioredis.BlockingConnectionPool):
    """The primary's pool, found through Sentinel, and bounded like the plain one: callers wait
    up to ``timeout`` for a free connection.

    Following a failover (redis-py's ``SentinelConnectionPool``): a new connection asks the
    Sentinels for the primary; when the address changed, idle connections to the old one are
    closed; a connection released after the change is closed instead of pooled; a command
    answered READONLY (the old primary demoted) closes its connection."""


def connect(url: str, *, timeout_s: float = 2.0, blocking: bool = False,
            max_connections: int = 64) -> RedisClient:
    """A client with no automatic retry; ``blocking`` clients (XREAD BLOCK) get no read timeout.

    The pool is bounded and callers wait up to ``timeout_s`` for a free connection, so a burst
    of requests queues briefly instead of failing or opening hundreds of connections.
    ``redis+sentinel://`` URLs (``tsunagu.redis_url``) connect to the primary that the
    Sentinels name, and follow it when they promote another."""
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": None if blocking else timeout_s,
        "socket_connect_timeout": timeout_s,
        "retry": Retry(NoBackoff(), 0),
        "retry_on_timeout": False,
        "health_check_interval": 0,  # CheckedPool checks on checkout instead
        "max_connections": max_connections,
        "timeout": timeout_s,
    }
    if is_sentinel_url(url):
        options["health_check_interval"] = 0 if blocking else 30
        return _through_sentinel(url, options, timeout_s)
    pool = CheckedPool.from_url(url, **options)
    return aioredis.Redis(connection_pool=pool)


def _through_sentinel(url: str, options: dict[str, Any], timeout_s: float) -> RedisClient:
    target = parse_sentinel_url(url)
    sentinel_kwargs = target.sentinel_kwargs(os.environ.get("TSUNAGU_SENTINEL_PASSWORD"))
    sentinel_kwargs.update(socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                           retry=Retry(NoBackoff(), 0))
    sentinel = Sentinel(list(target.sentinels),  # type: ignore[no-untyped-call]
                        sentinel_kwargs=sentinel_kwargs)
    return sentinel.master_for(target.service, redis_class=aioredis.Redis,
                               connection_pool_class=BlockingSentinelConnectionPool,
                               check_connection=True, **target.node_kwargs(), **options)


IDLE_CHECK_S = 1.0


class CheckedPool(aioredis.BlockingConnectionPool):
    """A pool that checks a connection idle for ``IDLE_CHECK_S`` or more with a PING when it
    is checked out, and reconnects it if the PING fails.

    After a Redis restart every pooled connection is stale, and redis-py notices only when
    one is used (FIELD-NOTES: 30-70 s later, with our retry-less client, as an error a client
    sees). A busy connection fails at most once, with Redis down, before it is replaced; an
    idle one is checked here before anyone's command goes on it. Cost: one PING per checkout
    of a connection that sat idle a second or more."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._idle_since: dict[int, float] = {}

    async def ensure_connection(self, connection: Any) -> None:
        await super().ensure_connection(connection)
        since = self._idle_since.pop(id(connection), None)
        if since is None or asyncio.get_running_loop().time() - since < IDLE_CHECK_S:
            return
        try:
            await connection.send_command("PING", check_health=False)
            await connection.read_response()
        except (RedisConnectionError, RedisTimeoutError, OSError):
            await connection.disconnect()
            await connection.connect()

    async def release(self, connection: Any) -> None:
        self._idle_since[id(connection)] = asyncio.get_running_loop().time()
        await super().release(connection)


REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, ConnectionError, TimeoutError, OSError)


def stop_if_cancelled() -> None:
    """Re-raise a pending cancellation. Cancelling a task blocked in a Redis read can surface
    as a connection error instead; a loop that retries on those must not swallow its stop."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
