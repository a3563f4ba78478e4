"""Who is asking, over HTTP: the client's address behind trusted proxies, and who may read
``/metrics`` (PROTOCOL.md section 13). Shared by the signaling node and the relay."""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def trusted_proxies(raw: str | None = None) -> frozenset[str]:
    """``TSUNAGU_TRUSTED_PROXIES``: comma-separated addresses whose X-Forwarded-For is used."""
    value = os.environ.get("TSUNAGU_TRUSTED_PROXIES", "") if raw is None else raw
    return frozenset(a.strip() for a in value.split(",") if a.strip())


def client_address(request: web.Request, proxies: frozenset[str]) -> str:
    """The TCP peer's address, or, when the peer is a trusted proxy, the last address that
    proxy added to ``X-Forwarded-For``."""
    peer = request.remote or ""
    if peer in proxies:
        forwarded = request.headers.get("X-Forwarded-For", "")
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        if hops:
            return hops[-1]
    return peer


def is_loopback(address: str) -> bool:
    """Whether ``address`` is a loopback IP address."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def metrics_allowed(request: web.Request, token: str | None) -> bool:
    """With a metrics token, only ``Authorization: Bearer <token>`` (loopback included);
    without one, only the TCP peer on loopback (a proxy on the same machine must not
    forward ``/metrics``: the nginx sample blocks it)."""
    if token:
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                                  token.encode())
    return is_loopback(request.remote or "")


def guard_metrics(handler: Handler, token: str | None = None) -> Handler:
    """Wrap a ``/metrics`` handler: 401 for whoever :func:`metrics_allowed` refuses.
    ``token`` defaults to ``TSUNAGU_METRICS_TOKEN``."""
    secret = token if token is not None else (os.environ.get("TSUNAGU_METRICS_TOKEN") or None)

    async def guarded(request: web.Request) -> web.StreamResponse:
        if not metrics_allowed(request, secret):
            raise web.HTTPUnauthorized(text="metrics need a bearer token or loopback")
        return await handler(request)
    return guarded
