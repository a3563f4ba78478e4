"""A waiting kiosk's place in line: read for many calls in one round trip, and refreshed for
every waiting kiosk of this node after routing changes."""

from __future__ import annotations

import asyncio

from signaling.node import Node
from tsunagu import store


class PositionTicker:
    """Refreshes the place in line of this node's waiting kiosks after routing changes:
    at most twice a second, one Redis pipeline for all of them. A kiosk whose only news is its
    own ``enqueued`` (and what came before it) is left out: the enqueue's answer told it."""

    def __init__(self, node: Node, min_interval_s: float = 0.5) -> None:
        self.node = node
        self.min_interval_s = min_interval_s
        self._pending = False
        self._events: list[tuple[str, str]] = []

    async def changed(self, events: list[tuple[str, str]]) -> None:
        self._events += events
        if not self._pending:
            self._pending = True
            asyncio.get_running_loop().call_later(self.min_interval_s, self._fire)

    @staticmethod
    def _needs_read(call_id: str, events: list[tuple[str, str]]) -> bool:
        """Whether anything happened after what this kiosk was last told: its own enqueue's
        answer already reflects every event up to that enqueue."""
        if ("enqueued", call_id) in events:
            events = events[events.index(("enqueued", call_id)) + 1:]
        return bool(events)

    def _fire(self) -> None:
        task = asyncio.ensure_future(self._refresh())
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _refresh(self) -> None:
        self._pending = False
        events, self._events = self._events, []
        waiting = [c for c in list(self.node.connections)
                   if c.waiting is not None and self._needs_read(c.waiting[0], events)]
        if not waiting:
            return
        self.node.metrics.reads["positions"] += 1
        try:
            places = await self.node.router.places([c.waiting for c in waiting])
        except store.REDIS_ERRORS:
            return
        for conn, (rank, _staffed, available, serving) in zip(waiting, places, strict=True):
            if conn.waiting is not None and rank is not None:
                conn.tell_position(rank + 1, available, serving, force=False)
