"""A Python client of the tsunagu wire protocol (kiosk client, answering bot, tests, bench).

It keeps one WebSocket to ``/ws``, says ``hello``, matches replies to requests by
``rid``, queues everything the server pushes, and, when the socket drops,
reconnects with exponential backoff and jitter and resumes the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
import ssl
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from tsunagu.protocol import ProtocolError
from tsunagu.server_messages import parse_server_message

log = logging.getLogger(__name__)
Message = dict[str, Any]
CLOSE_RESTART = 1012  # the node is draining (SIGTERM): resume on another


class ServerError(Exception):
    """The server answered a request with ``error``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Disconnected(ConnectionError):
    """The socket dropped before the reply arrived."""


def trusting(ca_file: str | None) -> ssl.SSLContext | bool:
    """What to verify an HTTPS/WSS server with: the system's CAs (``True``), or, given a CA
    file (a LAN trial's own CA, a lab's), an SSL context trusting that CA only."""
    return ssl.create_default_context(cafile=ca_file) if ca_file else True


async def login(http_base: str, username: str, password: str, *,
                ssl: ssl.SSLContext | bool = True) -> str:
    """POST /api/login and return the staff token; raise ServerError on 401. ``ssl``: how to
    verify an HTTPS server (see :func:`trusting`)."""
    async with aiohttp.ClientSession() as http, http.post(
        http_base.rstrip("/") + "/api/login", json={"username": username, "password": password},
        ssl=ssl,
    ) as resp:
        body = await resp.json()
        if resp.status != 200:
            raise ServerError(body.get("code", "unauthorized"), body.get("message", ""))
        return str(body["token"])


class SignalingClient:
    """One authenticated connection to a signaling server, resumed across drops."""

    def __init__(self, ws_url: str, token: str, *, reconnect: bool = True,
                 http: aiohttp.ClientSession | None = None,
                 other_urls: Sequence[str] = (),
                 ssl: ssl.SSLContext | bool = True, answers: str | None = None) -> None:
        """``ssl``: how a ``wss://`` server is verified (see :func:`trusting`); the default
        trusts the system's CAs (and ``SSL_CERT_FILE``). ``answers="test"``: the answering
        bot also takes test calls (sent in every ``hello``, resumes included)."""
        self.answers = answers
        self.ws_url = ws_url
        self._ssl = ssl
        # further nodes to resume on when this one is gone or restarting (close code 1012)
        self._urls = [ws_url, *(u for u in other_urls if u != ws_url)]
        self.token = token
        self.reconnect = reconnect
        self.welcome: Message = {}
        self._http = http
        self._own_http = http is None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._rids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[Message]] = {}
        self._backlog: list[Message] = []
        self._arrived = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None
        self._closing = False
        self.connected = asyncio.Event()
        self.reconnects = 0
        self.unreadable = 0  # frames that did not match the protocol (a server bug)

    @property
    def session_id(self) -> str | None:
        return self.welcome.get("session")

    async def connect(self) -> Message:
        """Open the socket, authenticate and start reading; return ``welcome``."""
        if self._http is None:
            self._http = aiohttp.ClientSession()
        await self._open(resume=None)
        self._reader = asyncio.create_task(self._read_forever(), name="signaling-client")
        return self.welcome

    async def _open(self, resume: str | None) -> None:
        assert self._http is not None
        ws = await self._http.ws_connect(self.ws_url, heartbeat=None, max_msg_size=1 << 20,
                                        ssl=self._ssl)
        hello: Message = {"type": "hello", "token": self.token}
        if resume:
            hello["resume"] = resume
        if self.answers:
            hello["answers"] = self.answers
        await ws.send_str(json.dumps(hello))
        msg = await ws.receive(timeout=15)
        data = json.loads(msg.data) if msg.type == aiohttp.WSMsgType.TEXT else {}
        if data.get("type") != "welcome":
            await ws.close()
            raise ServerError(data.get("code", "unauthorized"), data.get("message", "refused"))
        self.welcome = data
        self._ws = ws
        self.connected.set()

    async def _read_forever(self) -> None:
        backoff = 0.2
        while True:
            ws = self._ws
            assert ws is not None
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    await self._dispatch(json.loads(msg.data))
            self.connected.clear()
            self._fail_pending()
            if self._closing or not self.reconnect or ws.close_code == 4401:
                await self._push({"type": "_closed", "code": ws.close_code})
                return
            if ws.close_code == CLOSE_RESTART:
                self._next_node()  # this node is draining: resume on another at once
                backoff = 0.05
            while not self._closing:
                await asyncio.sleep(backoff * (0.5 + random.random()))
                backoff = min(max(backoff, 0.2) * 2, 5.0)
                try:
                    await self._open(resume=self.session_id)
                except (aiohttp.ClientError, OSError, TimeoutError, ServerError) as exc:
                    log.debug("reconnect failed: %s", type(exc).__name__)
                    self._next_node()
                    continue
                self.reconnects += 1
                backoff = 0.2
                await self._push({"type": "_reconnected", "session": self.session_id})
                break
            if self._closing:
                return

    def _next_node(self) -> None:
        """Try the next node of ``other_urls`` (round robin) on the next reconnect."""
        if len(self._urls) > 1:
            at = self._urls.index(self.ws_url) if self.ws_url in self._urls else -1
            self.ws_url = self._urls[(at + 1) % len(self._urls)]

    async def _dispatch(self, data: Message) -> None:
        try:
            parse_server_message(data)  # every frame is checked against the typed protocol
        except ProtocolError as exc:
            self.unreadable += 1
            log.warning("server sent a malformed %s: %s", data.get("type"), exc.message)
        rid = data.get("rid")
        fut = self._pending.pop(rid, None) if isinstance(rid, str) else None
        if fut is not None and not fut.done():
            fut.set_result(data)
            return
        await self._push(data)

    async def _push(self, data: Message) -> None:
        async with self._arrived:
            self._backlog.append(data)
            self._arrived.notify_all()

    def _fail_pending(self) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(Disconnected("socket closed before the reply"))
        self._pending.clear()

    async def send(self, type_: str, **fields: Any) -> None:
        """Send a message without waiting for a reply."""
        if self._ws is None or self._ws.closed:
            raise Disconnected("not connected")
        await self._ws.send_str(json.dumps({"type": type_, **fields}))

    async def request(
        self, type_: str, *, timeout: float = 10.0, **fields: Any  # noqa: ASYNC109 - API
    ) -> Message:
        """Send with a fresh ``rid`` and return the direct reply; raise ServerError on error."""
        rid = f"r{next(self._rids)}"
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        try:
            await self.send(type_, rid=rid, **fields)
            reply = await asyncio.wait_for(fut, timeout)
        finally:
            self._pending.pop(rid, None)
        if reply.get("type") == "error":
            raise ServerError(str(reply.get("code")), str(reply.get("message", "")))
        return reply

    async def next(
        self, *types: str, timeout: float = 10.0, **match: Any  # noqa: ASYNC109 - API
    ) -> Message:
        """The next pushed message of one of ``types`` whose fields equal ``match``."""
        def pick() -> Message | None:
            for i, m in enumerate(self._backlog):
                if (not types or m.get("type") in types) and all(
                    m.get(k) == v for k, v in match.items()
                ):
                    return self._backlog.pop(i)
            return None

        async with asyncio.timeout(timeout), self._arrived:
            while (found := pick()) is None:
                await self._arrived.wait()
            return found

    def drain(self) -> list[Message]:
        """Take every pushed message received so far."""
        taken, self._backlog = self._backlog, []
        return taken

    async def drop(self) -> None:
        """Close the socket abruptly as a network loss would (the client then resumes)."""
        if self._ws is not None:
            await self._ws.close()

    async def close(self) -> None:
        """Close for good."""
        self._closing = True
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._own_http and self._http is not None:
            await self._http.close()


def server_urls(server: str) -> tuple[str, str]:
    """(HTTP base, WebSocket URL of /ws) for ``http[s]://host:port`` or ``ws[s]://host:port``."""
    parts = urlsplit(server if "://" in server else "http://" + server)
    secure = parts.scheme in ("https", "wss")
    http_base = urlunsplit(("https" if secure else "http", parts.netloc, "", "", ""))
    ws_url = urlunsplit(("wss" if secure else "ws", parts.netloc, "/ws", "", ""))
    return http_base, ws_url
