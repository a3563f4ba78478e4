"""The node's HTTP endpoints: the WebSocket at ``/ws``, ``/api/*``, health and metrics."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import date
from zoneinfo import ZoneInfo

from aiohttp import web

from signaling.accounts import AccountDisabled
from signaling.metrics import render_fleet
from signaling.monthly_report import PdfError, month_of, pdf_of, report_html
from signaling.node import NODE, Node
from signaling.report import calls_csv
from signaling.session import Connection
from tsunagu import store, tokens
from tsunagu.access import client_address, guard_metrics
from tsunagu.protocol import ErrorCode
from tsunagu.settings import SignalingSettings

log = logging.getLogger(__name__)
STAFF_VIEWERS = frozenset({"supervisor", "admin"})


def origin_allowed(request: web.Request, settings: SignalingSettings) -> bool:
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
    address = client_address(request, node.proxies)
    if node.preauth.get(address, 0) >= s.preauth_per_address:
        raise web.HTTPTooManyRequests(text="too many sockets waiting to sign in")
    # aiohttp refuses a frame of exactly max_msg_size bytes (it compares >=); the contract
    # refuses only frames larger than 64 KiB (FIELD-NOTES).
    ws = web.WebSocketResponse(max_msg_size=s.max_frame_bytes + 1, compress=False,
                               heartbeat=s.heartbeat_s, autoping=True)
    allow_pong_within(ws, s.heartbeat_s)
    node.preauth[address] = node.preauth.get(address, 0) + 1
    conn = Connection(node, ws)
    conn.on_signed_in = lambda: _preauth_done(node, address)
    try:
        await ws.prepare(request)
        await conn.serve()
    finally:
        if conn.on_signed_in is not None:  # never signed in
            _preauth_done(node, address)
    return ws


def _preauth_done(node: Node, address: str) -> None:
    """A socket of ``address`` signed in or closed: one fewer waiting for ``hello``."""
    left = node.preauth.get(address, 0) - 1
    if left > 0:
        node.preauth[address] = left
    else:
        node.preauth.pop(address, None)


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
    address = client_address(request, node.proxies)
    try:
        blocked = (await node.throttle.check(username, address)).blocked
        found = None if blocked else await node.accounts.login(username, password)
        if found is None:
            # One line per failure: who and from where, never the password.
            log.warning("login failed for user %r from %s%s", username, address,
                        " (throttled)" if blocked else "")
            verdict = await node.throttle.failed(username, address)
    except AccountDisabled:
        log.warning("login refused for disabled user %r from %s", username, address)
        return _json_error(403, ErrorCode.FORBIDDEN, "this account is disabled")
    except store.REDIS_ERRORS:
        return _json_error(503, ErrorCode.UNAVAILABLE, "the service is unavailable")
    if found is None:
        if blocked:  # past the limit before this attempt: 429, whatever the password
            response = _json_error(429, ErrorCode.RATE_LIMITED, "too many failed logins")
            response.headers["Retry-After"] = str(verdict.retry_after_s)
            return response
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


async def fleet_handler(request: web.Request) -> web.Response:
    """``GET /api/fleet``: every kiosk, rated (PROTOCOL.md section 14)."""
    node = await _viewer(request)
    try:
        entries = await node.fleet.entries()
    except store.REDIS_ERRORS:
        return _json_error(503, ErrorCode.UNAVAILABLE, "the service is unavailable")
    return web.json_response(entries, dumps=lambda o: json.dumps(o, ensure_ascii=False))


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


# The report page is static HTML with inline style and SVG: nothing else may load or run.
REPORT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
              "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
# PDFs printed at once by this node: each is a child process taking a core for seconds.
PDF_SLOTS = web.AppKey("pdf_slots", asyncio.Semaphore)


async def report_handler(request: web.Request) -> web.Response:
    """``GET /api/report?month=YYYY-MM[&format=html|pdf]``: the month's evaluation report."""
    fmt = request.query.get("format", "html")
    try:
        node = await _viewer(request)
        try:
            month = month_of(request.query["month"], node.settings)
        except (KeyError, ValueError):
            raise web.HTTPBadRequest(text="month=YYYY-MM") from None
        if fmt not in ("html", "pdf"):
            raise web.HTTPBadRequest(text="format=html or format=pdf")
        html = await report_html(node.redis, node.settings, month, node.languages)
    except store.REDIS_ERRORS as exc:
        log.warning("report: Redis failed: %s", type(exc).__name__)
        raise web.HTTPServiceUnavailable(text="the report is unavailable: Redis cannot be "
                                              "reached") from None
    name = f"tsunagu-report-{month.label}"
    if fmt == "html":
        return web.Response(text=html, content_type="text/html", charset="utf-8",
                            headers={"Content-Security-Policy": REPORT_CSP})
    try:
        async with request.app[PDF_SLOTS]:
            pdf = await pdf_of(html)
    except PdfError as exc:
        log.warning("report %s: %s", month.label, exc)
        raise web.HTTPServiceUnavailable(text="the PDF could not be printed") from None
    return web.Response(body=pdf, content_type="application/pdf",
                        headers={"Content-Disposition": f'inline; filename="{name}.pdf"'})


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
    text = node.metrics.render(gauges)
    try:
        async with asyncio.timeout(2.0):
            text += render_fleet(await node.fleet.entries(fresh=False))
    except store.REDIS_ERRORS + (TimeoutError,):
        pass  # the fleet's gauges are absent while Redis is; the alert rules see that
    return web.Response(text=text, content_type="text/plain")


def add_routes(app: web.Application) -> None:
    """Route the WebSocket, the API, health and metrics."""
    app.router.add_get("/ws", ws_handler)
    app.router.add_post("/api/login", login_handler)
    app.router.add_get("/api/stats", stats_handler)
    app.router.add_get("/api/calls.csv", csv_handler)
    app.router.add_get("/api/report", report_handler)
    app[PDF_SLOTS] = asyncio.Semaphore(1)
    app.router.add_get("/api/fleet", fleet_handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    token = app[NODE].settings.metrics_token
    app.router.add_get("/metrics", guard_metrics(metrics_handler, token or ""))
