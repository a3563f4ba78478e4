"""What a message handler may use of the client it serves: a small ``Protocol``.

``signaling.dispatch`` works through this and nothing else; ``signaling.session``'s socket
class provides it. Handlers see the routing transitions, the relay pool and the statistics as
services, and send through the connection; they never touch Redis, the node's inboxes or
another node's state directly (as ``bus.Endpoint`` is all the bus knows of a socket).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Protocol

from signaling.accounts import Principal
from signaling.media import RelayPool
from signaling.routing import Router
from signaling.test_calls import TestCalls
from tsunagu.languages import Language
from tsunagu.server_messages import ServerMessage
from tsunagu.settings import SignalingSettings

StatsListener = Callable[[dict[str, Any]], Awaitable[None]]


class Connection(Protocol):
    """One signed-in client's socket, as the message handlers see it."""

    principal: Principal | None
    session_id: str
    waiting: tuple[str, str] | None  # (call_id, language) while the kiosk's call waits

    @property
    def settings(self) -> SignalingSettings: ...

    @property
    def router(self) -> Router: ...

    @property
    def relays(self) -> RelayPool: ...

    @property
    def tests(self) -> TestCalls: ...

    @property
    def languages(self) -> Mapping[str, Language]: ...

    @property
    def catalogue(self) -> tuple[Language, ...]: ...

    @property
    def session_ttl_s(self) -> int: ...

    # sending to this client
    def send(self, msg: ServerMessage) -> None: ...

    async def push(self, msg: dict[str, Any]) -> None: ...

    def hold(self) -> None: ...

    def release(self, first: str) -> None: ...

    def tell_position(self, position: int, available: int, serving: float, *, force: bool,
                      rid: str | None = None) -> None: ...

    async def refresh_position(self, *, force: bool = False) -> None: ...

    # work beside the message loop, and messages to other clients
    def background(self, coro: Coroutine[Any, Any, None], rid: str | None) -> None: ...

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None: ...

    async def deliver(self, client_id: str, msg: dict[str, Any]) -> None: ...

    async def deliver_chat(self, client_id: str, msg: dict[str, Any], rid: str | None
                           ) -> bool: ...

    async def attach(self) -> None: ...

    def observe(self, name: str, ms: float) -> None: ...

    # the tablet fleet (PROTOCOL.md section 14)
    async def record_health(self, report: dict[str, Any]) -> None:
        """Keep this kiosk's latest ``kiosk.health`` report."""
        ...

    async def call_allowed(self) -> bool:
        """Count a call request against the kiosk's calls per minute (PROTOCOL.md 13)."""
        ...

    # the supervisor's live statistics
    async def stats_snapshot(self) -> dict[str, Any]: ...

    def subscribe_stats(self, listener: StatsListener | None) -> None: ...

    # an interpreter's console: the queues once per stats interval
    def watch_stats(self, listener: StatsListener | None) -> None: ...

    def queue_view(self, snapshot: dict[str, Any]) -> dict[str, Any]: ...
