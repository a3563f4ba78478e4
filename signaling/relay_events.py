"""The relays' events (a leg connected, a leg failed), each handled once by one signaling node.

The relays append to one stream; the signaling nodes read it as one consumer group, so each
event reaches exactly one node, which tells the party wherever it is connected (through the
bus: locally, or in its node's inbox). A node that dies with events read but not handled
leaves them pending; any other node claims them after ``CLAIM_IDLE_MS``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from redis.exceptions import ResponseError

from signaling.node import Node
from tsunagu.server_messages import MediaFailed, server_message_fields
from tsunagu.store import REDIS_ERRORS, RedisClient, stop_if_cancelled

log = logging.getLogger(__name__)
GROUP = "signaling"
CLAIM_IDLE_MS = 5000
CLAIM_EVERY_S = 5.0


async def on_relay_event(node: Node, fields: dict[str, str]) -> None:
    """Act on one relay event: tell the party its leg failed, or mark its media connected."""
    party, call_id = fields.get("party", ""), fields.get("call_id", "")
    kiosk, interpreter, relay = await node.redis.hmget(
        node.settings.keys.call(call_id), ["kiosk", "interpreter", "relay"])
    if relay != fields.get("relay_id"):
        return  # from a relay the call has left: its legs there no longer matter
    if fields.get("event") == "leg_failed":
        holder = ("k:" + (kiosk or "")) if party == "kiosk" else ("i:" + (interpreter or ""))
        await node.bus.deliver(holder, server_message_fields(
            MediaFailed(call_id=call_id, reason=fields.get("reason", "failed"))))
    elif fields.get("event") == "leg_connected":
        await node.router.media_state(call_id, party)


async def _ensure_group(redis: RedisClient, stream: str) -> None:
    try:
        await redis.xgroup_create(stream, GROUP, id="$", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def _handle_all(node: Node, stream: str, entries: list[tuple[str, dict[str, str]]]
                      ) -> None:
    for entry_id, fields in entries:
        try:
            await on_relay_event(node, fields)
        except REDIS_ERRORS:
            raise  # left pending: handled again after the outage, here or elsewhere
        except Exception as exc:  # one bad event must not stop the stream
            log.warning("relay event for call %s not handled (%s)",
                        fields.get("call_id"), type(exc).__name__)
        await node.redis.xack(stream, GROUP, entry_id)


async def follow_relay_events(node: Node) -> None:
    """Read this node's share of the relay events forever."""
    stream, consumer = node.settings.keys.relay_events, node.settings.node_id
    blocking = node.blocking
    grouped = False
    next_claim = 0.0
    while True:
        try:
            if not grouped:
                await _ensure_group(node.redis, stream)
                grouped = True
            if time.monotonic() >= next_claim:
                next_claim = time.monotonic() + CLAIM_EVERY_S
                claimed: Any = await node.redis.xautoclaim(
                    stream, GROUP, consumer, min_idle_time=CLAIM_IDLE_MS, count=100)
                await _handle_all(node, stream, [e for e in claimed[1] if e[1]])
            batches = await blocking.xreadgroup(GROUP, consumer, {stream: ">"}, count=200,
                                                block=2000)
            for _stream, entries in batches or []:
                await _handle_all(node, stream, entries)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            grouped = False  # the stream or group went away (a Redis without its data)
        except REDIS_ERRORS as exc:
            stop_if_cancelled()
            log.warning("relay events read failed (%s); retrying", type(exc).__name__)
            await asyncio.sleep(0.5)
