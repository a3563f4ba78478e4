"""Settings read from the environment and command-line flags, one object per process kind."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tsunagu.redis_keys import Keys

MIN_SECRET_BYTES = 32


class ConfigError(ValueError):
    """A setting is missing or malformed."""


def parse_ice_addresses(raw: str | None) -> list[str] | None:
    """``TSUNAGU_ICE_ADDRESSES``: comma-separated addresses, or None for "every non-loopback"."""
    if not raw:
        return None
    return [a.strip() for a in raw.split(",") if a.strip()]


def parse_ice_servers(raw: str | None) -> list[dict[str, Any]]:
    """``TSUNAGU_ICE_SERVERS``: a JSON list of ``{"urls": [...], ...}``; empty when unset."""
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"TSUNAGU_ICE_SERVERS is not JSON: {exc}") from exc
    if not isinstance(value, list) or not all(
        isinstance(s, dict) and "urls" in s for s in value
    ):
        raise ConfigError('TSUNAGU_ICE_SERVERS must be a list of {"urls": [...]} objects')
    return value


def load_secret(data_dir: Path | None, *, create: bool) -> bytes:
    """The signing secret: ``TSUNAGU_SECRET``, else ``<data_dir>/secret`` (made if ``create``)."""
    env = os.environ.get("TSUNAGU_SECRET")
    if env:
        secret = env.encode()
    elif data_dir is not None:
        path = data_dir / "secret"
        if not path.exists():
            if not create:
                raise ConfigError(f"no TSUNAGU_SECRET and no {path}; run `tsunagu up` first")
            data_dir.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(48))
        secret = path.read_text().strip().encode()
    else:
        raise ConfigError("TSUNAGU_SECRET is not set")
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigError(f"the signing secret must be at least {MIN_SECRET_BYTES} bytes")
    return secret


@dataclass(frozen=True, slots=True)
class SignalingSettings:
    """Everything a signaling node needs to know; defaults follow PROTOCOL.md."""

    secret: bytes
    redis_url: str = "redis://127.0.0.1:6379/0"
    keys: Keys = field(default_factory=Keys)
    node_id: str = field(default_factory=lambda: "n_" + secrets.token_hex(4))
    timezone: str = "Asia/Tokyo"
    jwt_algorithms: tuple[str, ...] = ("HS256",)
    jwt_issuer: str = "tsunagu"
    jwt_audience: str = "tsunagu"
    staff_token_ttl_s: int = 12 * 3600
    allowed_origins: tuple[str, ...] = ()  # empty: same origin only
    heartbeat_s: float = 10.0
    auth_timeout_s: float = 10.0
    max_frame_bytes: int = 64 * 1024
    # flood limits per principal, across sockets and nodes (PROTOCOL.md section 13)
    messages_per_s: int = 20  # TSUNAGU_MESSAGES_PER_SECOND
    calls_per_minute: int = 6  # TSUNAGU_CALLS_PER_MINUTE
    flood_disconnect_s: float = 10.0  # TSUNAGU_FLOOD_DISCONNECT_S
    offer_timeout_s: float = 20.0
    wrapup_s: float = 15.0
    kiosk_grace_s: float = 20.0
    call_grace_s: float = 30.0
    interp_grace_s: float = 30.0
    max_wait_s: float = 1800.0
    no_interpreter_wait_s: float = 0.0
    urgent_boost_s: float = 600.0
    service_level_s: float = 30.0
    stats_interval_s: float = 2.0
    sweep_interval_s: float = 0.2
    relay_dead_s: float = 10.0  # a relay whose heartbeat is this old is gone
    node_dead_s: float = 10.0  # a signaling node whose heartbeat is this old is gone
    redis_timeout_s: float = 2.0
    ice_servers: list[dict[str, Any]] = field(default_factory=list)
    turn_secret: str | None = None
    turn_ttl_s: int = 3600
    languages_file: str | None = None

    @classmethod
    def from_env(cls, *, data_dir: Path | None = None, create_secret: bool = False,
                 **overrides: Any) -> SignalingSettings:
        """Build settings from ``TSUNAGU_*`` variables, then apply ``overrides``."""
        env = os.environ
        values: dict[str, Any] = {
            "secret": load_secret(data_dir, create=create_secret),
            "ice_servers": parse_ice_servers(env.get("TSUNAGU_ICE_SERVERS")),
            "turn_secret": env.get("TSUNAGU_TURN_SECRET") or None,
            "timezone": env.get("TSUNAGU_TIMEZONE", "Asia/Tokyo"),
        }
        if env.get("REDIS_URL"):
            values["redis_url"] = env["REDIS_URL"]
        if env.get("TSUNAGU_ALLOWED_ORIGINS"):
            values["allowed_origins"] = tuple(
                o.strip() for o in env["TSUNAGU_ALLOWED_ORIGINS"].split(",") if o.strip()
            )
        for name, conv in _NUMERIC_ENV.items():
            raw = env.get("TSUNAGU_" + name.upper())
            if raw:
                values[name] = conv(raw)
        for var, name in _LIMIT_ENV.items():
            if env.get(var):
                values[name] = int(env[var])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


_NUMERIC_ENV: dict[str, Any] = {
    "offer_timeout_s": float,
    "wrapup_s": float,
    "kiosk_grace_s": float,
    "call_grace_s": float,
    "interp_grace_s": float,
    "max_wait_s": float,
    "no_interpreter_wait_s": float,
    "urgent_boost_s": float,
    "service_level_s": float,
    "heartbeat_s": float,
    "flood_disconnect_s": float,
    "stats_interval_s": float,
    "staff_token_ttl_s": int,
    "sweep_interval_s": float,
    "relay_dead_s": float,
    "node_dead_s": float,
    "auth_timeout_s": float,
}

# The contract's names for the per-principal limits (PROTOCOL.md section 13).
_LIMIT_ENV = {"TSUNAGU_MESSAGES_PER_SECOND": "messages_per_s",
              "TSUNAGU_CALLS_PER_MINUTE": "calls_per_minute"}


# -- the relay -----------------------------------------------------------------------------------

# bench/relay_bench.py measured 0.020-0.027 core per a+v call at 16-24 calls (30 fps delivered);
# 25 keeps a relay under ~0.65 of a core with room for keyframe bursts (docs/media.md).
RELAY_CALLS_PER_CORE = 25
RELAY_CONNECT_TIMEOUT_S = 15.0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def add_relay_arguments(p: argparse.ArgumentParser) -> None:
    """The relay's own flags; ``tsunagu relay`` and ``python -m relay`` share them."""
    p.add_argument("--host", default=os.environ.get("TSUNAGU_RELAY_HOST", "127.0.0.1"),
                   help="address the control API binds (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=int(os.environ.get("TSUNAGU_RELAY_PORT", 8081)))
    p.add_argument("--capacity", type=int, default=None,
                   help="calls this relay takes (default TSUNAGU_RELAY_CAPACITY, else "
                        f"{RELAY_CALLS_PER_CORE})")
    p.add_argument("--relay-id", default=os.environ.get("TSUNAGU_RELAY_ID"),
                   help="this relay's name in Redis (default TSUNAGU_RELAY_ID, else random)")
    p.add_argument("--public-url", default=os.environ.get("TSUNAGU_RELAY_PUBLIC_URL"),
                   help="control URL the signaling nodes post to (default "
                        "TSUNAGU_RELAY_PUBLIC_URL, else http://HOST:PORT)")


@dataclass(frozen=True, slots=True)
class RelaySettings:
    """Everything a relay node needs to know, from its flags and ``TSUNAGU_*`` variables."""

    secret: bytes
    redis_url: str
    host: str = "127.0.0.1"
    port: int = 8081
    relay_id: str = field(default_factory=lambda: "r_" + secrets.token_hex(4))
    public_url: str | None = None
    capacity: int = RELAY_CALLS_PER_CORE
    ice_addresses: list[str] | None = None
    ice_servers: list[dict[str, Any]] = field(default_factory=list)
    connect_timeout_s: float = RELAY_CONNECT_TIMEOUT_S

    def __post_init__(self) -> None:
        if self.public_url is None and not _is_loopback(self.host):
            raise ConfigError(
                f"the relay binds {self.host} but would register a control URL built from it; "
                "give the URL the signaling nodes reach with --public-url "
                "(TSUNAGU_RELAY_PUBLIC_URL)")
        if self.public_url is not None and not _is_loopback(self.host):
            url_host = self.public_url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
            if _is_loopback(url_host):
                raise ConfigError(
                    f"the relay binds {self.host} for other machines but registers the loopback "
                    f"control URL {self.public_url}, which they cannot reach: give its "
                    "reachable address with --public-url (TSUNAGU_RELAY_PUBLIC_URL)")

    def control_url(self, bound_port: int) -> str:
        """The URL registered in Redis: ``public_url``, else the loopback address bound."""
        return self.public_url or f"http://{self.host}:{bound_port}"

    @classmethod
    def from_args(cls, args: argparse.Namespace, redis_url: str,
                  data_dir: Path | None = None) -> RelaySettings:
        """SignalingSettings from :func:`add_relay_arguments`' flags and the environment."""
        env = os.environ
        capacity = args.capacity or int(env.get("TSUNAGU_RELAY_CAPACITY") or RELAY_CALLS_PER_CORE)
        values: dict[str, Any] = {
            "secret": load_secret(data_dir, create=False),
            "redis_url": redis_url,
            "host": args.host,
            "port": args.port,
            "public_url": args.public_url or None,
            "capacity": capacity,
            "ice_addresses": parse_ice_addresses(env.get("TSUNAGU_ICE_ADDRESSES")),
            "ice_servers": parse_ice_servers(env.get("TSUNAGU_ICE_SERVERS")),
            "connect_timeout_s": float(env.get("TSUNAGU_RELAY_CONNECT_TIMEOUT_S")
                                       or RELAY_CONNECT_TIMEOUT_S),
        }
        if args.relay_id:
            values["relay_id"] = args.relay_id
        return cls(**values)
