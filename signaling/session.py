"""One client's WebSocket: authenticate, then run its messages through routing.

Lifecycle: ``hello`` within the auth timeout -> ``welcome`` (and the state a
resumed client must see again) -> messages until the socket closes -> the
disconnect transition starts the grace periods (only if this socket was still
the client's current one). Everything the client is sent goes through one
bounded outbox drained by one writer task, so a stalled client never delays
the others: when its outbox is full it is disconnected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from aiohttp import WSMsgType, web

from signaling import dispatch
from signaling.accounts import Principal
from signaling.connection import StatsListener
from signaling.interpreter_view import queue_message
from signaling.limits import SocketCounter
from signaling.media import RelayPool, ice_servers_for
from signaling.node import Node
from signaling.routing import Router
from signaling.test_calls import TestCalls
from tsunagu.languages import TEST_LANGUAGE, Language
from tsunagu.protocol import (
    ALLOWED,
    ErrorCode,
    Hello,
    Message,
    ProtocolError,
    error_message,
    now_ms,
    parse_message,
)
from tsunagu.server_messages import (
    CallConnected,
    CallEnded,
    CallPosition,
    CallQueued,
    ServerMessage,
    dump_server_message,
    parse_server_message,
)
from tsunagu.settings import SignalingSettings
from tsunagu.store import REDIS_ERRORS
from tsunagu.tokens import TokenError

log = logging.getLogger(__name__)
OUTBOX = 256
CLOSE_UNAUTHORIZED = 4401
CLOSE_REPLACED = 4409
CLOSE_FLOOD = 4429
CLOSE_SLOW = 1013
CLOSE_INTERNAL = 1011


class Connection:
    """The server side of one client socket."""

    def __init__(self, node: Node, ws: web.WebSocketResponse) -> None:
        self.node = node
        self.ws = ws
        self.principal: Principal | None = None
        self.session_id = ""
        self.waiting: tuple[str, str] | None = None  # (call_id, language) while queued
        self.last_position: tuple[int, int | None, int | None, bool] | None = None
        self._outbox: asyncio.Queue[str | None] = asyncio.Queue(OUTBOX)
        self._counter = SocketCounter()
        self._closing = False
        self._slow: set[asyncio.Task[None]] = set()
        self._held: list[str] | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self.on_signed_in: Callable[[], None] | None = None  # the pre-auth count's release

    # -- sending -------------------------------------------------------------
    def hold(self) -> None:
        """Keep every frame back (while signing in) until ``release`` puts one first."""
        self._held = []

    def release(self, first: str) -> None:
        """Send ``first`` (the welcome), then everything held back, in order."""
        held, self._held = self._held or [], None
        for text in (first, *held):
            self.send_raw(text)

    def send_raw(self, text: str) -> None:
        """Queue a frame; a client whose outbox is full is too slow and is dropped."""
        if self._held is not None:
            self._held.append(text)
            return
        try:
            self._outbox.put_nowait(text)
        except asyncio.QueueFull:
            log.warning("client %s: outbox full, disconnecting", self.client_id)
            self._outbox = asyncio.Queue(1)
            self._outbox.put_nowait(None)
            self.close_soon(CLOSE_SLOW)

    def close_soon(self, code: int) -> None:
        """Close the socket from a synchronous context (once)."""
        if not self._closing:
            self._closing = True
            self.node.spawn(self.ws.close(code=code), f"close {self.client_id}")

    def send(self, msg: ServerMessage) -> None:
        self.send_raw(dump_server_message(msg))

    async def push(self, raw: dict[str, Any]) -> None:
        """A message from routing (Lua) or another node: typed, decorated where this node must
        add something (a call's TURN credentials), tracked, and sent."""
        try:
            msg = parse_server_message(raw)
        except ProtocolError as exc:  # a script and the protocol disagree: a bug, say so
            log.error("client %s: malformed %s from routing (%s)", self.client_id,
                      raw.get("type"), exc.message)
            return
        mine = self.waiting is not None and self.waiting[0] == getattr(msg, "call_id", None)
        match msg:
            case CallConnected():
                msg = replace(msg, ice_servers=ice_servers_for(self.node.settings, msg.call_id))
                if mine:
                    self.waiting = None
            case CallQueued():
                self.waiting = (msg.call_id, msg.language)
                self.last_position = None
                if msg.estimated_wait_s is None:
                    await self.refresh_position(force=True)
                    return
            case CallEnded() if mine:
                self.waiting = None
        self.send(msg)
        if isinstance(msg, CallEnded) and self.principal is not None \
                and self.principal.role == "kiosk" and not self.ws.closed:
            # told live: the copy kept for a kiosk away (kended) is no longer needed
            self.node.spawn(self.node.router.ended_seen(self.principal.id, msg.call_id),
                            f"ended seen {self.client_id}")

    def revoke(self, why: str) -> None:
        """The token no longer holds (expired, revoked, rotated, user disabled or new
        password): ``error unauthorized``, then close code 4401 (PROTOCOL.md section 13)."""
        if self._closing:
            return
        log.info("client %s: %s; closing", self.client_id, why)
        self.send_raw(error_message(ErrorCode.UNAUTHORIZED, why))
        self._closing = True
        self.node.spawn(self._flush_and_close(CLOSE_UNAUTHORIZED), f"revoke {self.client_id}")

    def _expire_at(self, exp: int) -> None:
        """Close the socket the moment its token expires (no leeway)."""
        loop = asyncio.get_running_loop()
        delay = max(0.0, exp - time.time())
        self._expiry = loop.call_at(loop.time() + delay, self.revoke, "the token has expired")

    def replaced(self) -> None:
        """The same kiosk or interpreter signed in on another socket: say so, then close."""
        self.send_raw(error_message(ErrorCode.CONFLICT, "signed in on another device"))
        self.node.spawn(self._flush_and_close(CLOSE_REPLACED), f"replace {self.client_id}")

    async def _writer(self) -> None:
        """Drain the outbox. A frame that cannot be sent (an encoding error, a broken
        transport) closes the socket: a client is never left connected to a silent server."""
        try:
            while (text := await self._outbox.get()) is not None:
                await self.ws.send_str(text)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("client %s: writer failed (%s); closing", self.client_id,
                        type(exc).__name__)
            if not self._closing:
                self._closing = True
                with contextlib.suppress(Exception):
                    await self.ws.close(code=CLOSE_INTERNAL)

    async def refresh_position(self, *, force: bool = False) -> None:
        """Send ``call.position`` (or ``call.queued`` if ``force``) when place or estimate moved."""
        if self.waiting is None:
            return
        call_id = self.waiting[0]
        (rank, _staffed, available, serving), = await self.node.router.places([self.waiting])
        if self.waiting is not None and self.waiting[0] == call_id:
            self.tell_position((rank + 1) if rank is not None else 1, available, serving,
                               force=force)

    def tell_position(self, position: int, available: int, serving: float, *, force: bool,
                      rid: str | None = None) -> None:
        """Send the waiting call's place in line and an estimate (no await: keeps order)."""
        assert self.waiting is not None
        call_id, language = self.waiting
        est = self.node.stats.wait_estimate(language, position, available, serving)
        reason = "none_available" if est.none_available else None
        told = (position, est.min_s, est.max_s, est.none_available)
        if force:
            self.send(CallQueued(rid=rid, call_id=call_id, language=language,
                                 position=position, estimated_wait_s=est.point_s,
                                 estimated_wait_min_s=est.min_s,
                                 estimated_wait_max_s=est.max_s, reason=reason))
        elif self.last_position != told:
            self.send(CallPosition(call_id=call_id, position=position,
                                   estimated_wait_s=est.point_s, estimated_wait_min_s=est.min_s,
                                   estimated_wait_max_s=est.max_s, reason=reason))
        self.last_position = told

    # -- what handlers use (signaling.connection.Connection) ----------------
    @property
    def settings(self) -> SignalingSettings:
        return self.node.settings

    @property
    def router(self) -> Router:
        return self.node.router

    @property
    def relays(self) -> RelayPool:
        return self.node.relays

    @property
    def tests(self) -> TestCalls:
        return self.node.tests

    @property
    def languages(self) -> Mapping[str, Language]:
        return self.node.languages

    @property
    def catalogue(self) -> tuple[Language, ...]:
        return self.node.catalogue

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        self.node.spawn(coro, name)

    async def deliver(self, client_id: str, msg: dict[str, Any]) -> None:
        await self.node.bus.deliver(client_id, msg)

    async def deliver_chat(self, client_id: str, msg: dict[str, Any], rid: str | None) -> bool:
        """Chat, never stored: False when it cannot reach the other party."""
        return await self.node.bus.deliver_chat(client_id, msg, self.client_id, rid)

    async def attach(self) -> None:
        await self.node.bus.attach(self.client_id, self)

    def observe(self, name: str, ms: float) -> None:
        self.node.metrics.observe(name, ms)

    async def record_health(self, report: dict[str, Any]) -> None:
        assert self.principal is not None
        await self.node.fleet.record_health(self.principal.id, report)

    async def stats_snapshot(self) -> dict[str, Any]:
        return await self.node.stats.snapshot()

    def subscribe_stats(self, listener: StatsListener | None) -> None:
        if listener is None:
            self.node.stats.subscribers.pop(id(self), None)
        else:
            self.node.stats.subscribers[id(self)] = listener

    def watch_stats(self, listener: StatsListener | None) -> None:
        if listener is None:
            self.node.stats.watchers.pop(id(self), None)
        else:
            self.node.stats.watchers[id(self)] = listener

    def queue_view(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        assert self.principal is not None
        stats = self.node.stats
        return queue_message(snapshot, stats.ledger.records.values(),
                             interpreter=self.principal.id, languages=self.principal.languages,
                             day=datetime.now(stats.tz).date(), tz=stats.tz)

    # -- lifecycle -----------------------------------------------------------
    @property
    def client_id(self) -> str:
        return self.principal.client_id if self.principal else "-"

    async def serve(self) -> None:
        """Run the connection until it closes."""
        writer = asyncio.create_task(self._writer(), name="ws-writer")
        try:
            if await self._authenticate():
                await self._loop()
        finally:
            await self._closed()
            self._outbox = asyncio.Queue(1)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await writer

    async def _authenticate(self) -> bool:
        try:
            msg = await self.ws.receive(timeout=self.node.settings.auth_timeout_s)
        except TimeoutError:
            return await self._refuse("no hello in time", None)
        if msg.type == WSMsgType.BINARY:
            return await self._refuse("the first message must be hello", None)
        if msg.type != WSMsgType.TEXT:
            return False
        try:
            hello = parse_message(msg.data)
        except ProtocolError as exc:
            return await self._refuse(exc.message, exc.rid)
        if not isinstance(hello, Hello):
            return await self._refuse("the first message must be hello", hello.rid)
        try:
            self.principal = await self.node.accounts.authenticate(hello.token)
            if hello.answers == TEST_LANGUAGE and self.principal.role == "interpreter":
                # the answering bot: test calls too (PROTOCOL.md section 14)
                self.principal = replace(self.principal, languages=(
                    *self.principal.languages, TEST_LANGUAGE))
            verdict = await self.node.limits.message(self.principal.client_id, self._counter)
            if not verdict.allowed:
                # a token reconnecting in a loop: refused before anything is written
                self.node.metrics.errors["rate_limited"] += 1
                self.send_raw(error_message(ErrorCode.RATE_LIMITED,
                                            "too many messages; slow down", hello.rid))
                await self._flush_and_close(CLOSE_FLOOD)
                return False
            if self.on_signed_in is not None:
                self.on_signed_in()
                self.on_signed_in = None
            self._expire_at(self.principal.exp)
            resumed = await self._open_session(hello.resume)
            await dispatch.on_connect(self, resumed)  # welcome, registration, resends
        except TokenError:
            return await self._refuse("the token is not valid", hello.rid)
        except REDIS_ERRORS:
            self._held = None  # nothing held back goes out: only the refusal
            self.send_raw(error_message(ErrorCode.UNAVAILABLE, "the service is unavailable"))
            await self._flush_and_close(CLOSE_SLOW)
            return False
        self.node.connections.add(self)
        if self.principal.role == "kiosk":  # the fleet's last seen, and its token's expiry
            self.node.spawn(self.node.fleet.seen([self.principal.id],
                                                 token_exp=self.principal.exp),
                            f"seen {self.client_id}")
        log.info("client %s: connected (session %s, %s)", self.client_id, self.session_id,
                 "resumed" if resumed else "new")
        return True

    async def _open_session(self, resume: str | None) -> bool:
        assert self.principal is not None
        k = self.node.settings.keys
        if resume:
            owner = await self.node.redis.hget(k.session(resume), "client")
            if owner == self.client_id:
                self.session_id = resume
                await self.node.redis.expire(k.session(resume), self.session_ttl_s)
                return True
        self.session_id = "s_" + secrets.token_urlsafe(18)
        pipe = self.node.redis.pipeline(transaction=True)
        pipe.hset(k.session(self.session_id), mapping={
            "client": self.client_id, "role": self.principal.role, "created_ms": now_ms()})
        pipe.expire(k.session(self.session_id), self.session_ttl_s)
        if self.principal.role in ("kiosk", "interpreter"):
            # one device, one live session: the one before is no longer resumable
            pipe.set(k.client_session(self.client_id), self.session_id, ex=self.session_ttl_s,
                     get=True)
        replies = await pipe.execute()
        older = replies[2] if len(replies) > 2 else None
        if older and older != self.session_id:
            await self.node.redis.delete(k.session(older))
        return False

    @property
    def session_ttl_s(self) -> int:
        """A session outlives its socket by the longest grace period plus an hour; renewed at
        each resume and each disconnect, so a long shift can still resume."""
        s = self.node.settings
        return int(max(s.call_grace_s, s.kiosk_grace_s, s.interp_grace_s) + 3600)

    async def _refuse(self, why: str, rid: str | None) -> bool:
        self.node.metrics.errors["unauthorized"] += 1
        self.send_raw(error_message(ErrorCode.UNAUTHORIZED, why, rid))
        await self._flush_and_close(CLOSE_UNAUTHORIZED)
        return False

    async def _flush_and_close(self, code: int) -> None:
        for _ in range(50):
            if self._outbox.empty():
                break
            await asyncio.sleep(0.01)
        await self.ws.close(code=code)

    async def _loop(self) -> None:
        async for msg in self.ws:
            if msg.type != WSMsgType.TEXT:
                if msg.type == WSMsgType.BINARY and await self._within_limits(""):
                    self.send_raw(error_message(ErrorCode.BAD_REQUEST, "text frames only"))
                continue
            if not await self._within_limits(msg.data):
                continue
            await self._handle(msg.data)
        await self._settle()

    def background(self, coro: Coroutine[Any, Any, None], rid: str | None) -> None:
        """Run a slow request (a relay round trip) beside the message loop, with the same
        error replies as any other request."""
        task = asyncio.get_running_loop().create_task(self._guarded(coro, rid))
        self._slow.add(task)
        task.add_done_callback(self._slow.discard)

    async def _settle(self) -> None:
        if self._slow:
            await asyncio.wait(list(self._slow), timeout=5)

    async def _within_limits(self, raw: str) -> bool:
        """Count the message against its principal's limits; refuse it (``rate_limited``,
        nothing changes) beyond them, and close with 4429 a principal that keeps flooding."""
        verdict = await self.node.limits.message(self.client_id, self._counter)
        if verdict.allowed:
            return True
        self.node.metrics.errors["rate_limited"] += 1
        if verdict.disconnect:
            if not self._closing:
                log.warning("client %s: flooding, disconnecting", self.client_id)
                self.send_raw(error_message(ErrorCode.RATE_LIMITED, "flooding; disconnected"))
                self.node.spawn(self._flush_and_close(CLOSE_FLOOD), f"flood {self.client_id}")
                self._closing = True
            return False
        self.send_raw(error_message(ErrorCode.RATE_LIMITED, "too many messages; slow down",
                                    _rid_of(raw)))
        return False

    async def call_allowed(self) -> bool:
        """Count a call request against the kiosk's calls per minute."""
        assert self.principal is not None
        return await self.node.limits.call(self.principal.id)

    async def _handle(self, raw: str) -> None:
        try:
            message = parse_message(raw)
        except ProtocolError as exc:
            self.node.metrics.errors[exc.code.value] += 1
            self.send_raw(error_message(exc.code, exc.message, exc.rid))
            return
        await self._guarded(self._checked(message), message.rid)

    async def _checked(self, message: Message) -> None:
        self.node.metrics.messages[message.TYPE] += 1
        assert self.principal is not None
        if isinstance(message, Hello):
            raise ProtocolError(ErrorCode.BAD_REQUEST, "already signed in", message.rid)
        if self.principal.role not in ALLOWED.get(message.TYPE, frozenset()):
            raise ProtocolError(ErrorCode.FORBIDDEN, f"a {self.principal.role} may not "
                                f"send {message.TYPE}", message.rid)
        await dispatch.handle(self, message)

    async def _guarded(self, coro: Coroutine[Any, Any, None], rid: str | None) -> None:
        """Await a request's handling, turning failures into the protocol's error replies."""
        try:
            await coro
        except ProtocolError as exc:
            self.node.metrics.errors[exc.code.value] += 1
            self.send_raw(error_message(exc.code, exc.message, exc.rid or rid))
        except REDIS_ERRORS as exc:
            log.warning("client %s: redis error (%s)", self.client_id, type(exc).__name__)
            self.node.metrics.errors["unavailable"] += 1
            self.send_raw(error_message(ErrorCode.UNAVAILABLE,
                                        "the service is temporarily unavailable", rid))
        except Exception:
            log.exception("client %s: internal error", self.client_id)
            self.node.metrics.errors["internal"] += 1
            self.send_raw(error_message(ErrorCode.INTERNAL, "internal error", rid))

    async def _closed(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        self.node.connections.discard(self)
        self.subscribe_stats(None)
        self.watch_stats(None)
        if self.principal is None or not self.node.bus.detach(self.client_id, self):
            return
        log.info("client %s: disconnected (session %s)", self.client_id, self.session_id)
        if self.principal.role == "kiosk":
            with contextlib.suppress(*REDIS_ERRORS):
                await self.node.fleet.seen([self.principal.id])
        try:
            await dispatch.on_disconnect(self)
        except REDIS_ERRORS as exc:
            # Retried in the background: the transition is safe to repeat (it checks that
            # this node still holds the client), and a lost one would leave the client live.
            log.warning("client %s: disconnect not recorded yet (%s); retrying",
                        self.client_id, type(exc).__name__)
            self.node.spawn(self._retry_disconnect(), f"disconnect {self.client_id}")

    async def _retry_disconnect(self) -> None:
        for _ in range(120):
            await asyncio.sleep(1.0)
            try:
                await dispatch.on_disconnect(self)
                return
            except REDIS_ERRORS:
                continue
        log.error("client %s: disconnect could not be recorded", self.client_id)


def _rid_of(raw: str) -> str | None:
    """The ``rid`` of a refused frame, echoed when it is a valid one (never parsed twice for
    a flood: only a cheap look)."""
    try:
        return parse_message(raw).rid
    except ProtocolError as exc:
        return exc.rid
