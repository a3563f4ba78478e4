"""The signaling node's aiohttp application: /ws, the HTTP API and the web pages."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Coroutine
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from signaling import store, tokens
from signaling.accounts import Accounts
from signaling.bus import Bus
from signaling.config import Settings
from signaling.languages import load_catalogue
from signaling.media import RelayPool, read_relay_events
from signaling.node import Node
from signaling.protocol import ErrorCode
from signaling.report import calls_csv
from signaling.routing import Router
from signaling.session import Connection, read_places
from signaling.stats import StatsService
from signaling.sweeper import Sweeper

log = logging.getLogger(__name__)
NODE = web.AppKey("node", Node)
TASKS = web.AppKey("tasks", list)
STAFF_VIEWERS = frozenset({"supervisor", "admin"})


def web_dir(package: str) -> Path:
    return Path(str(resources.files(package) / "web"))


PAGES = {
    "/kiosk": ("kiosk_client", "kiosk.html"),
    "/console": ("interpreter_console", "console.html"),
    "/supervisor": ("interpreter_console", "supervisor.html"),
}
STATIC = {"/static/kiosk": "kiosk_client", "/static/staff": "interpreter_console",
          "/static/common": "signaling"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob: mediastream:; connect-src 'self'; style-src 'self' 'unsafe-inline'; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(self), microphone=(self)",
}


def origin_allowed(request: web.Request, settings: Settings) -> bool:
    """No Origin (not a browser) is fine; else it must be allowed or the server's own."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    if settings.allowed_origins:
        return origin in settings.allowed_origins
    return origin in (f"{request.scheme}://{request.host}", f"http://{request.host}",
                      f"https://{request.host}")


async def ws_handler(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    s = node.settings
    if not origin_allowed(request, s):
        raise web.HTTPForbidden(text="origin not allowed")
    ws = web.WebSocketResponse(max_msg_size=s.max_frame_bytes, compress=False,
                               heartbeat=s.heartbeat_s, autoping=True)
    allow_pong_within(ws, s.heartbeat_s)
    await ws.prepare(request)
    await Connection(node, ws).serve()
    return ws


def allow_pong_within(ws: web.WebSocketResponse, seconds: float) -> None:
    """Wait ``seconds`` for the pong to each ping before dropping the client.

    PROTOCOL.md: pings every ``heartbeat_s``, a client silent for 2 x ``heartbeat_s`` is
    dropped. aiohttp (3.14) waits only half an interval for the pong and has no public
    setting for it; its ``_pong_heartbeat`` is the one value to change
    (tests/signaling/test_server.py checks the timing, so an aiohttp upgrade that renames
    it fails there).
    """
    if not hasattr(ws, "_pong_heartbeat"):
        raise RuntimeError("aiohttp changed: WebSocketResponse._pong_heartbeat is gone")
    ws._pong_heartbeat = seconds


def _json_error(status: int, code: ErrorCode, message: str) -> web.Response:
    return web.json_response({"code": code.value, "message": message}, status=status)


async def login_handler(request: web.Request) -> web.Response:
    node = request.app[NODE]
    try:
        body = await request.json()
        username, password = body["username"], body["password"]
        if not isinstance(username, str) or not isinstance(password, str):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        return _json_error(400, ErrorCode.BAD_REQUEST, "send username and password")
    try:
        found = await node.accounts.login(username, password)
    except store.REDIS_ERRORS:
        return _json_error(503, ErrorCode.UNAVAILABLE, "the service is unavailable")
    if found is None:
        log.info("login refused for a staff account")
        return _json_error(401, ErrorCode.UNAUTHORIZED, "wrong username or password")
    token, role, expires = found
    return web.json_response({"token": token, "role": role, "expires_at_ms": expires})


async def _viewer(request: web.Request) -> Node:
    node = request.app[NODE]
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Bearer "):
        raise web.HTTPUnauthorized(text="bearer token required")
    try:
        principal = await node.accounts.authenticate(auth[7:])
    except tokens.TokenError:
        raise web.HTTPUnauthorized(text="token refused") from None
    if principal.role not in STAFF_VIEWERS:
        raise web.HTTPForbidden(text="supervisors and admins only")
    return node


async def stats_handler(request: web.Request) -> web.Response:
    node = await _viewer(request)
    return web.json_response(await node.stats.snapshot(),
                             dumps=lambda o: json.dumps(o, ensure_ascii=False))


async def csv_handler(request: web.Request) -> web.Response:
    node = await _viewer(request)
    tz = ZoneInfo(node.settings.timezone)
    try:
        first = date.fromisoformat(request.query["from"])
        last = date.fromisoformat(request.query.get("to", request.query["from"]))
    except (KeyError, ValueError):
        raise web.HTTPBadRequest(text="from=YYYY-MM-DD&to=YYYY-MM-DD") from None
    if last < first or (last - first).days > 400:
        raise web.HTTPBadRequest(text="the range must be 0 to 400 days")
    body = await calls_csv(node.redis, node.settings.keys, first=first, last=last, tz=tz,
                           catalogue=node.languages)
    name = f"tsunagu-calls-{first}-{last}.csv"
    return web.Response(text=body, content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def readyz(request: web.Request) -> web.Response:
    node = request.app[NODE]
    try:
        async with asyncio.timeout(1.0):
            await node.redis.ping()
    except store.REDIS_ERRORS + (TimeoutError,):
        return web.json_response({"ready": False, "redis": "unreachable"}, status=503)
    return web.json_response({"ready": True})


async def metrics_handler(request: web.Request) -> web.Response:
    node = request.app[NODE]
    roles: dict[str, int] = {}
    for conn in node.connections:
        role = conn.principal.role if conn.principal else "unauthenticated"
        roles[role] = roles.get(role, 0) + 1
    gauges = {f"connections_{r}": float(n) for r, n in roles.items()}
    gauges["connections"] = float(len(node.connections))
    gauges["inbox_delivered"] = float(node.bus.delivered)
    return web.Response(text=node.metrics.render(gauges), content_type="text/plain")


def page(package: str, filename: str) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        path = web_dir(package) / filename
        if not path.exists():
            raise web.HTTPNotFound(text=f"{filename} is not installed")
        return web.FileResponse(path, headers={"Cache-Control": "no-cache"})
    return handler


@web.middleware
async def security_headers(request: web.Request, handler: Any) -> web.StreamResponse:
    response: web.StreamResponse = await handler(request)
    if not response.prepared:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
    return response


async def _on_relay_event(node: Node, fields: dict[str, str]) -> None:
    party, call_id = fields.get("party", ""), fields.get("call_id", "")
    call = await node.redis.hmget(node.settings.keys.call(call_id),
                                  ["kiosk", "interpreter", "relay"])
    if call[2] != fields.get("relay_id"):
        return  # from a relay the call has left: its legs there no longer matter
    holder = ("k:" + (call[0] or "")) if party == "kiosk" else ("i:" + (call[1] or ""))
    conn = node.bus.local.get(holder)
    if conn is None:
        return  # the node holding that party handles it
    if fields.get("event") == "leg_failed":
        await conn.push({"type": "media.failed", "call_id": call_id,
                         "reason": fields.get("reason", "failed")})
    elif fields.get("event") == "leg_connected":
        await node.router.media_state(call_id, party)


class PositionTicker:
    """Refreshes the place in line of this node's waiting kiosks after routing changes:
    at most twice a second, one Redis pipeline for all of them."""

    def __init__(self, node: Node, min_interval_s: float = 0.5) -> None:
        self.node = node
        self.min_interval_s = min_interval_s
        self._pending = False

    async def changed(self) -> None:
        if not self._pending:
            self._pending = True
            asyncio.get_running_loop().call_later(self.min_interval_s, self._fire)

    def _fire(self) -> None:
        task = asyncio.ensure_future(self._refresh())
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _refresh(self) -> None:
        self._pending = False
        waiting = [c for c in list(self.node.connections) if c.waiting is not None]
        if not waiting:
            return
        try:
            places = await read_places(self.node, [c.waiting for c in waiting])
        except store.REDIS_ERRORS:
            return
        handle_s = self.node.stats.ledger.recent_handle_s(180.0) + self.node.settings.wrapup_s
        for conn, (rank, staffed, available) in zip(waiting, places, strict=True):
            if conn.waiting is not None and rank is not None:
                conn.tell_position(rank + 1, staffed, available, force=False, handle_s=handle_s)


def build_node(settings: Settings) -> Node:
    redis = store.connect(settings.redis_url, timeout_s=settings.redis_timeout_s)
    blocking = store.connect(settings.redis_url, timeout_s=settings.redis_timeout_s,
                             blocking=True)
    catalogue = load_catalogue(settings.languages_file)
    node = Node(
        settings=settings, redis=redis, blocking=blocking, router=Router(redis, settings),
        accounts=Accounts(redis, settings),
        bus=Bus(redis, blocking, settings.keys, settings.node_id),
        stats=StatsService(redis, blocking, settings, catalogue),
        relays=RelayPool(redis, settings), catalogue=catalogue)
    node.stats.on_change.append(PositionTicker(node).changed)
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
        _supervise("stats", node.stats.run()),
        _supervise("sweeper", Sweeper(node).run()),
        _supervise("relay-events", read_relay_events(node.blocking, node.settings,
                                                     lambda f: _on_relay_event(node, f))),
        _supervise("configure", _configure_when_ready(node)),
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
    """On shutdown, before aiohttp waits for handlers: close every socket at once (a client
    that does not answer the close is cut after 2 s), so each records its disconnect."""
    node = app[NODE]
    closing = [asyncio.wait_for(c.ws.close(code=1001, message=b"server shutting down"), 2.0)
               for c in list(node.connections)]
    await asyncio.gather(*closing, return_exceptions=True)
    if node.tasks:
        await asyncio.wait(list(node.tasks), timeout=3)


def create_app(settings: Settings) -> web.Application:
    """The application for one signaling node."""
    app = web.Application(middlewares=[security_headers], client_max_size=64 * 1024)
    app[NODE] = build_node(settings)
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_close_sockets)
    app.router.add_get("/ws", ws_handler)
    app.router.add_post("/api/login", login_handler)
    app.router.add_get("/api/stats", stats_handler)
    app.router.add_get("/api/calls.csv", csv_handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler)
    for path, (package, filename) in PAGES.items():
        app.router.add_get(path, page(package, filename))
    for prefix, package in STATIC.items():
        app.router.add_static(prefix, web_dir(package), follow_symlinks=False)
    app.router.add_get("/", _home)
    return app


async def _home(request: web.Request) -> web.Response:
    raise web.HTTPFound("/kiosk")
