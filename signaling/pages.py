"""The three web apps and their static files, served with security headers."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from aiohttp import web


def web_dir(package: str) -> Path:
    """The ``web`` folder of an installed package, found without importing the package (the
    signaling server serves the kiosk's and the console's files but imports neither)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise LookupError(f"package {package} is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "web"


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


async def _home(request: web.Request) -> web.Response:
    raise web.HTTPFound("/kiosk")


def add_pages(app: web.Application) -> None:
    """Route ``/kiosk``, ``/console``, ``/supervisor``, their static files and ``/``."""
    for path, (package, filename) in PAGES.items():
        app.router.add_get(path, page(package, filename))
    for prefix, package in STATIC.items():
        app.router.add_static(prefix, web_dir(package), follow_symlinks=False)
    app.router.add_get("/", _home)
