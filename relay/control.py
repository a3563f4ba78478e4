"""The relay's HTTP control API (for signaling nodes), health check and metrics."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from relay.errors import AtCapacity, BadOffer, Stale
from relay.node import RelayNode
from tsunagu.access import guard_metrics
from tsunagu.tokens import ReplayStore, TokenError, verify_service_token

NODE: web.AppKey[RelayNode] = web.AppKey("node")
SECRET = web.AppKey("secret", bytes)
REPLAYS = web.AppKey("replays", ReplayStore)
CALL_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
PARTIES = ("kiosk", "interpreter")
MODALITIES = ("sign", "spoken")
MAX_BODY = 256 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error(status: int, code: str) -> web.Response:
    return web.json_response({"error": code}, status=status)


@web.middleware
async def require_service_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every /v1 request carries a signaling token bound to this relay, its call, its party
    (``*`` for none) and its method, used once (PROTOCOL.md section 13): else 403."""
    if request.path.startswith("/v1/"):
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return error(401, "unauthorized")
        match = request.match_info
        try:
            claims = verify_service_token(
                request.app[SECRET], token.strip(), relay_id=request.app[NODE].relay_id,
                call_id=match.get("call_id", "*"), party=match.get("party", "*"),
                method=request.method)
        except TokenError:
            return error(403, "forbidden")
        if not request.app[REPLAYS].use(claims.jti, claims.exp):
            return error(403, "forbidden")
    return await handler(request)


async def post_leg(request: web.Request) -> web.Response:
    call_id, party = request.match_info["call_id"], request.match_info["party"]
    if not CALL_ID.match(call_id) or party not in PARTIES:
        return error(404, "not_found")
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return error(400, "bad_sdp")
    sdp = body.get("sdp") if isinstance(body, dict) else None
    modality = body.get("language_modality") if isinstance(body, dict) else None
    if not isinstance(sdp, str) or not sdp.startswith("v=0"):
        return error(400, "bad_sdp")
    if modality is not None and modality not in MODALITIES:
        return error(400, "bad_modality")
    try:
        answer = await request.app[NODE].offer(call_id, party, sdp, modality)
    except AtCapacity:
        return error(503, "capacity")
    except BadOffer:
        return error(400, "bad_sdp")
    except Stale as exc:
        return error(409, exc.reason)
    return web.json_response({"sdp": answer})


async def delete_call(request: web.Request) -> web.Response:
    call_id = request.match_info["call_id"]
    if not CALL_ID.match(call_id):
        return error(404, "not_found")
    await request.app[NODE].end(call_id)
    return web.json_response({"ok": True})


async def get_calls(request: web.Request) -> web.Response:
    node = request.app[NODE]
    return web.json_response({"relay_id": node.relay_id, "capacity": node.capacity,
                              "calls": node.snapshot()})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


LEG_GAUGES = ("fps_in", "fps_out", "pps_in", "kbps_in", "kbps_out", "loss_pct", "rtt_ms")
LEG_COUNTERS = ("nacks", "plis", "transcoded_frames", "transcode_dropped")


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_metrics(node: RelayNode) -> str:
    """Prometheus text: relay-wide calls, capacity and cpu, and per-leg quality."""
    lines = [
        "# TYPE tsunagu_relay_calls gauge", f"tsunagu_relay_calls {len(node.calls)}",
        "# TYPE tsunagu_relay_capacity gauge", f"tsunagu_relay_capacity {node.capacity}",
        "# TYPE tsunagu_relay_cpu gauge", f"tsunagu_relay_cpu {node.cpu.value:.3f}",
        "# TYPE tsunagu_relay_transcoding_calls gauge",
        f"tsunagu_relay_transcoding_calls {sum(1 for c in node.calls.values() if c.transcoding())}",
    ]
    legs: list[tuple[str, str, dict[str, Any]]] = [
        (cid, party, leg.rates.current)
        for cid, call in node.calls.items() for party, leg in call.legs.items()]
    for name in LEG_GAUGES + LEG_COUNTERS:
        kind = "counter" if name in LEG_COUNTERS else "gauge"
        metric = f"tsunagu_relay_leg_{name}" + ("_total" if kind == "counter" else "")
        lines.append(f"# TYPE {metric} {kind}")
        for cid, party, q in legs:
            value = q.get(name)
            if value is not None:
                lines.append(f'{metric}{{call_id="{_label(cid)}",party="{party}"}} {value}')
    return "\n".join(lines) + "\n"


async def metrics(request: web.Request) -> web.Response:
    return web.Response(text=render_metrics(request.app[NODE]),
                        content_type="text/plain", charset="utf-8")


def make_app(node: RelayNode, secret: bytes) -> web.Application:
    """The control application for one relay node."""
    app = web.Application(middlewares=[require_service_token], client_max_size=MAX_BODY)
    app[NODE] = node
    app[SECRET] = secret
    app[REPLAYS] = ReplayStore()
    app.router.add_post("/v1/calls/{call_id}/legs/{party}", post_leg)
    app.router.add_delete("/v1/calls/{call_id}", delete_call)
    app.router.add_get("/v1/calls", get_calls)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", guard_metrics(metrics))
    return app
