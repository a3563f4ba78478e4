"""Delivery of messages to clients wherever their socket is.

Each client id (``k:…``, ``i:…``, ``s:…``) is registered to the node holding
its socket (``cnode:<client>``). Routing scripts and nodes append messages for
a client to that node's inbox stream; each node reads its own inbox and writes
to the local socket. After Redis comes back from a restart, the node
re-asserts the clients it holds.

Chat never enters a stream or key: it crosses nodes on the receiving node's pub/sub
channel (``chat:<node>``), which Redis never persists. Pub/sub delivers at most once, so
a chat that reaches no subscriber (PUBLISH counts 0) is refused to its sender, and a node
that gets chat for a client it no longer holds sends the sender's node a receipt saying
so (an ``error`` to the sender). The same pub/sub connection hears revocations.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from tsunagu.protocol import ErrorCode, error_message, now_ms
from tsunagu.redis_keys import Keys
from tsunagu.store import REDIS_ERRORS, RedisClient, stop_if_cancelled

log = logging.getLogger(__name__)

class Endpoint(Protocol):
    """A local client socket."""

    session_id: str

    async def push(self, msg: dict[str, Any]) -> None: ...

    def replaced(self) -> None: ...

    def send_raw(self, text: str) -> None: ...


class Bus:
    """This node's side of the client registry and inboxes."""

    def __init__(self, redis: RedisClient, blocking: RedisClient, keys: Keys,
                 node_id: str) -> None:
        self.redis = redis
        self.blocking = blocking
        self.keys = keys
        self.node_id = node_id
        self.local: dict[str, Endpoint] = {}
        self.delivered = 0
        self.chat_lost = 0
        # Set by the node: a revocation heard, and (re)subscribed (revocations may be missed).
        self.on_revocation: Callable[[str], object] = lambda raw: None
        self.on_subscribed: Callable[[], Awaitable[None]] | None = None

    async def attach(self, client_id: str, endpoint: Endpoint) -> None:
        """Register a client's new socket here; an older socket of the client is closed."""
        old_local = self.local.get(client_id)
        self.local[client_id] = endpoint
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(self.keys.client_node(client_id), self.node_id, get=True)
        pipe.sadd(self.keys.node_clients(self.node_id), client_id)
        old_node, _ = await pipe.execute()
        if old_local is not None and old_local is not endpoint:
            old_local.replaced()
        elif old_node and old_node != self.node_id:
            # Tagged with the new session: a notice that arrives late never closes a newer socket.
            await self._to_inbox(old_node, client_id, {"type": "_replaced",
                                                       "by": endpoint.session_id})

    def detach(self, client_id: str, endpoint: Endpoint) -> bool:
        """Forget a closed socket locally; True if it was still the client's current one here.
        (The disconnect transition releases the registration in Redis, atomically.)"""
        if self.local.get(client_id) is not endpoint:
            return False
        del self.local[client_id]
        return True

    async def deliver(self, client_id: str, msg: dict[str, Any]) -> None:
        """Send to a client on this node or, through its inbox, on another one."""
        local = self.local.get(client_id)
        if local is not None:
            await local.push(msg)
            return
        node = await self.redis.get(self.keys.client_node(client_id))
        if node:
            await self._to_inbox(node, client_id, msg)

    async def deliver_chat(self, client_id: str, msg: dict[str, Any], sender: str,
                           rid: str | None) -> bool:
        """Chat to a client here or on another node, never stored; False if it cannot go."""
        local = self.local.get(client_id)
        if local is not None:
            await local.push(msg)
            return True
        node = await self.redis.get(self.keys.client_node(client_id))
        if not node:
            return False
        envelope = {"to": client_id, "msg": msg, "from": sender, "reply": self.node_id,
                    "rid": rid}
        heard = await self.redis.publish(self.keys.node_chat(node),
                                         json.dumps(envelope, ensure_ascii=False))
        return bool(heard)

    async def listen(self) -> None:
        """This node's pub/sub: chat for its clients, receipts and revocations; forever."""
        chat = self.keys.node_chat(self.node_id)
        while True:
            pubsub = self.blocking.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(chat, self.keys.revocations)
                if self.on_subscribed is not None:
                    await self.on_subscribed()
                while True:
                    item = await pubsub.get_message(timeout=1.0)
                    if item is None:
                        continue
                    if item["channel"] == chat:
                        await self._chat_arrived(item["data"])
                    else:
                        self.on_revocation(item["data"])
            except REDIS_ERRORS as exc:
                stop_if_cancelled()
                log.warning("node %s: pub/sub lost (%s); resubscribing", self.node_id,
                            type(exc).__name__)
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(*REDIS_ERRORS):
                    await pubsub.aclose()

    async def _chat_arrived(self, raw: str) -> None:
        try:
            envelope = json.loads(raw)
            to, msg = str(envelope["to"]), envelope["msg"]
        except (ValueError, KeyError, TypeError):
            return
        if "undelivered" in envelope:  # a receipt: a chat our client sent was lost
            sender = self.local.get(to)
            if sender is not None:
                self.chat_lost += 1
                sender.send_raw(error_message(ErrorCode.UNAVAILABLE,
                                              "the message did not reach the other party",
                                              envelope.get("rid")))
            return
        endpoint = self.local.get(to)
        if endpoint is not None:
            self.delivered += 1
            await endpoint.push(msg)
            return
        receipt = {"to": envelope.get("from"), "msg": {}, "undelivered": True,
                   "rid": envelope.get("rid")}
        with contextlib.suppress(*REDIS_ERRORS):
            await self.redis.publish(self.keys.node_chat(str(envelope.get("reply"))),
                                     json.dumps(receipt))

    async def _to_inbox(self, node: str, client_id: str, msg: dict[str, Any]) -> None:
        await self.redis.xadd(self.keys.node_inbox(node),
                              {"to": client_id, "msg": json.dumps(msg, ensure_ascii=False)},
                              maxlen=10_000, approximate=True)

    async def run(self) -> None:
        """Read this node's inbox forever, delivering to local sockets."""
        inbox = self.keys.node_inbox(self.node_id)
        last = "0-0"  # a node's inbox is new with the node; after an outage, go on from `last`
        while True:
            try:
                batches = await self.blocking.xread({inbox: last}, block=2000, count=500)
            except REDIS_ERRORS as exc:
                stop_if_cancelled()
                log.warning("node %s: inbox read failed (%s: %s); retrying", self.node_id,
                            type(exc).__name__, exc)
                await asyncio.sleep(0.5)
                with contextlib.suppress(*REDIS_ERRORS):
                    await self.reassert()
                continue
            for _stream, entries in batches:
                for entry_id, fields in entries:
                    last = entry_id
                    try:
                        await self._deliver_entry(fields)
                    except Exception:  # one bad delivery must never stop this node's inbox
                        log.exception("node %s: could not deliver to %s", self.node_id,
                                      fields.get("to"))

    async def _deliver_entry(self, fields: dict[str, str]) -> None:
        """One inbox entry: ``msg`` (one message) or ``msgs`` (several, in order) for ``to``."""
        client_id = fields.get("to", "")
        if "msgs" in fields:
            for msg in json.loads(fields["msgs"]):
                await self._deliver_local(client_id, msg)
        else:
            await self._deliver_local(client_id, json.loads(fields.get("msg", "{}")))

    async def _deliver_local(self, client_id: str, msg: dict[str, Any]) -> None:
        endpoint = self.local.get(client_id)
        if endpoint is None:
            return
        if msg.get("type") == "_replaced":
            if msg.get("by") != endpoint.session_id:
                endpoint.replaced()
            return
        self.delivered += 1
        await endpoint.push(msg)

    async def heartbeat(self) -> None:
        """Tell the other nodes this one is alive."""
        await self.redis.zadd(self.keys.nodes, {self.node_id: now_ms()})

    async def reassert(self) -> None:
        """After a Redis restart: register again every client this node holds."""
        if not self.local:
            return
        pipe = self.redis.pipeline(transaction=False)
        for client_id in self.local:
            pipe.set(self.keys.client_node(client_id), self.node_id)
            pipe.sadd(self.keys.node_clients(self.node_id), client_id)
        await pipe.execute()
        log.info("node %s: re-asserted %d clients", self.node_id, len(self.local))

    async def leave(self) -> bool:
        """Clean shutdown: leave the node list once no client is registered here any more
        (else the sweeper releases the rest as for a dead node). True if it left."""
        if await self.redis.scard(self.keys.node_clients(self.node_id)):
            return False
        await self.redis.zrem(self.keys.nodes, self.node_id)
        await self.redis.delete(self.keys.node_inbox(self.node_id))
        return True
