"""The node's listening socket, with a deadline on request headers (PROTOCOL.md section 13).

aiohttp (3.14) has no timeout for a request's headers: a client may send them a byte a
minute and hold a connection (and its memory) for as long as it likes. Each connection's
protocol is wrapped here: the headers of its first request must be complete (the blank
line that ends them seen) within ``header_timeout_s`` of the connection being made, else
the connection is closed. What follows (a WebSocket, a body) is aiohttp's.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)
END_OF_HEADERS = b"\r\n\r\n"


class HeaderDeadline(asyncio.Protocol):
    """Forwards everything to aiohttp's protocol; closes the connection whose first request's
    headers are not complete in time."""

    def __init__(self, inner: Any, timeout_s: float) -> None:
        self.inner = inner
        self.timeout_s = timeout_s
        self.transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._timer = asyncio.get_running_loop().call_later(self.timeout_s, self._too_slow)
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._timer is not None:
            seen = self._tail + data
            if END_OF_HEADERS in seen:
                self._disarm()
            else:
                self._tail = seen[-3:]
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return bool(self.inner.eof_received())

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _too_slow(self) -> None:
        self._timer = None
        if self.transport is not None and not self.transport.is_closing():
            peer = self.transport.get_extra_info("peername")
            log.info("closing a connection from %s: headers not complete in %.0f s",
                     peer[0] if peer else "?", self.timeout_s)
            self.transport.close()


async def listen(runner: web.AppRunner, host: str, port: int, header_timeout_s: float,
                 tls: ssl.SSLContext | None = None) -> asyncio.Server:
    """Serve ``runner``'s application on ``host:port``, over TLS with ``tls`` (close the
    server before ``runner.cleanup()``)."""
    server = runner.server
    assert server is not None, "runner.setup() first"
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: HeaderDeadline(server(), header_timeout_s),
                                    host, port, reuse_address=True, ssl=tls)
