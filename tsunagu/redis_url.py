"""Redis Sentinel URLs: ``redis+sentinel://[user:password@]host:port[,host:port…]/SERVICE[/DB]``.

Pure parsing, no I/O; ``signaling.store.connect`` turns the result into a client.

- ``redis+sentinel://`` talks plain TCP to the Sentinels and to the data nodes;
  ``rediss+sentinel://`` uses TLS for both (Redis built with TLS, ``tls-port``).
- The user and password are the data nodes' (an ACL user, or ``requirepass``
  with no user). Sentinel's own password is not in the URL: it comes from
  ``TSUNAGU_SENTINEL_PASSWORD`` (``sentinel_password`` below).
- A port left out is Sentinel's 26379. IPv6 hosts go in brackets: ``[2001:db8::1]:26379``.
- TLS options go in the query: ``ssl_ca_certs`` (a CA file to trust instead of the
  system's), ``ssl_certfile`` and ``ssl_keyfile`` (a client certificate, for
  ``tls-auth-clients yes``). Certificates are always verified; there is no option
  to turn that off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

SCHEMES = {"redis+sentinel": False, "rediss+sentinel": True}
TLS_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")
DEFAULT_PORT = 26379


@dataclass(frozen=True)
class SentinelUrl:
    """Where the Sentinels are, which service they watch, and how to log in to its nodes."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False
    tls_options: dict[str, str] = field(default_factory=dict)

    def node_kwargs(self) -> dict[str, Any]:
        """Connection arguments for the data nodes (primary and replicas)."""
        kwargs: dict[str, Any] = {"db": self.db, "username": self.username,
                                  "password": self.password}
        if self.tls:
            kwargs.update(ssl=True, ssl_cert_reqs="required", **self.tls_options)
        return kwargs

    def sentinel_kwargs(self, sentinel_password: str | None) -> dict[str, Any]:
        """Connection arguments for the Sentinels themselves."""
        kwargs: dict[str, Any] = {"password": sentinel_password or None}
        if self.tls:
            kwargs.update(ssl=True, ssl_cert_reqs="required", **self.tls_options)
        return kwargs


def is_sentinel_url(url: str) -> bool:
    """True for ``redis+sentinel://`` and ``rediss+sentinel://`` URLs."""
    return url.split("://", 1)[0].lower() in SCHEMES


def parse_sentinel_url(url: str) -> SentinelUrl:
    """Parse a Sentinel URL; ``ValueError`` says what is wrong (never echoing the password)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        raise ValueError("a Sentinel URL starts with redis+sentinel:// or rediss+sentinel://")
    rest, _, query = rest.partition("?")
    userinfo, at, location = rest.rpartition("@")
    if not at:
        userinfo, location = "", rest
    hosts, _, path = location.partition("/")
    username, password = _credentials(userinfo)
    service, db = _service_and_db(path)
    tls_options = _tls_options(query)
    if tls_options and not SCHEMES[scheme.lower()]:
        raise ValueError("TLS options need a rediss+sentinel:// URL")
    return SentinelUrl(
        sentinels=tuple(_host_port(h) for h in hosts.split(",")),
        service=service, db=db, username=username, password=password,
        tls=SCHEMES[scheme.lower()], tls_options=tls_options,
    )


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    if not userinfo:
        return None, None
    user, colon, password = userinfo.partition(":")
    if not colon:  # redis://secret@host means a password with no user, as redis-py reads it
        return None, unquote(user) or None
    return unquote(user) or None, unquote(password) or None


def _host_port(text: str) -> tuple[str, int]:
    text = text.strip()
    if not text:
        raise ValueError("a Sentinel URL needs at least one host:port, with no empty entries")
    if text.startswith("["):
        host, bracket, tail = text[1:].partition("]")
        if not bracket or (tail and not tail.startswith(":")):
            raise ValueError(f"bad IPv6 Sentinel address {text!r}")
        port_text = tail[1:]
    else:
        host, _, port_text = text.partition(":")
        if ":" in port_text:
            raise ValueError(f"put an IPv6 address in brackets: {text!r}")
    if not host:
        raise ValueError(f"no host in Sentinel address {text!r}")
    return unquote(host), _port(port_text, text)


def _port(port_text: str, text: str) -> int:
    if not port_text:
        return DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"bad port in Sentinel address {text!r}")
    return int(port_text)


def _service_and_db(path: str) -> tuple[str, int]:
    parts = [unquote(p) for p in path.split("/")] if path else []
    if parts and parts[-1] == "":
        parts.pop()  # a trailing slash
    if not parts or not parts[0]:
        raise ValueError("a Sentinel URL names its service: redis+sentinel://host:port/SERVICE")
    if len(parts) > 2:
        raise ValueError("a Sentinel URL's path is /SERVICE or /SERVICE/DB")
    if len(parts) == 1:
        return parts[0], 0
    if not parts[1].isdigit():
        raise ValueError(f"the database must be a number, not {parts[1]!r}")
    return parts[0], int(parts[1])


def _tls_options(query: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for name, values in parse_qs(query, keep_blank_values=True).items():
        if name not in TLS_OPTIONS:
            raise ValueError(f"unknown Sentinel URL option {name!r} "
                             f"(known: {', '.join(TLS_OPTIONS)})")
        options[name] = values[-1]
    return options
