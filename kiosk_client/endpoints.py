"""The server's addresses as the Python clients use them."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def server_urls(server: str) -> tuple[str, str]:
    """(HTTP base, WebSocket URL of /ws) for ``http[s]://host:port`` or ``ws[s]://host:port``."""
    parts = urlsplit(server if "://" in server else "http://" + server)
    secure = parts.scheme in ("https", "wss")
    http_base = urlunsplit(("https" if secure else "http", parts.netloc, "", "", ""))
    ws_url = urlunsplit(("wss" if secure else "ws", parts.netloc, "/ws", "", ""))
    return http_base, ws_url
