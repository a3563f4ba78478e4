"""Settings read from the environment and command-line flags, one object per process kind."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tsunagu import tokens
from tsunagu.opening_hours import OpeningHours, OpeningHoursError
from tsunagu.redis_keys import Keys

MIN_SECRET_BYTES = 32
MIN_SECRET_DISTINCT_BYTES = 12
# Placeholders published in the project's deployment files: anyone could mint tokens with them.
SAMPLE_SECRETS = frozenset({b"change-me-to-at-least-32-random-bytes-xxxxxxxx"})


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
            data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(48))
        secret = path.read_text().strip().encode()
    else:
        raise ConfigError("TSUNAGU_SECRET is not set")
    check_secret(secret)
    return secret


def check_secret(secret: bytes) -> None:
    """Refuse a short secret, the deployment files' sample value and a secret that is not
    random (fewer than 12 distinct byte values; random hex or base64 always has more)."""
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigError(f"the signing secret must be at least {MIN_SECRET_BYTES} bytes")
    if secret in SAMPLE_SECRETS or secret.startswith(b"change-me"):
        raise ConfigError("TSUNAGU_SECRET is the sample value of the deployment files; "
                          "set a random one (openssl rand -hex 32)")
    if len(set(secret)) < MIN_SECRET_DISTINCT_BYTES:
        raise ConfigError(f"the signing secret has fewer than {MIN_SECRET_DISTINCT_BYTES} "
                          "distinct byte values: it is not random (openssl rand -hex 32)")


@dataclass(frozen=True, slots=True)
class SignalingSettings:
    """Everything a signaling node needs to know; defaults follow PROTOCOL.md."""

    secret: bytes
    redis_url: str = "redis://127.0.0.1:6379/0"
    keys: Keys = field(default_factory=Keys)
    node_id: str = field(default_factory=lambda: "n_" + secrets.token_hex(4))
    timezone: str = "Asia/Tokyo"
    # the fleet's opening hours and holidays (tsunagu/opening_hours.py, docs/fleet.md)
    opening_hours: OpeningHours = field(default_factory=OpeningHours)
    # how often a node marks its connected kiosks as seen (the fleet's last seen)
    kiosk_seen_interval_s: float = 30.0
    jwt_algorithms: tuple[str, ...] = ("HS256",)
    jwt_issuer: str = "tsunagu"
    jwt_audience: str = "tsunagu"
    staff_token_ttl_s: int = tokens.STAFF_MAX_LIFETIME_S
    kiosk_token_ttl_s: int = tokens.KIOSK_MAX_LIFETIME_S
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
    service_level_goal_pct: float = 80.0  # the report's staffing target (docs/report.md)
    stats_interval_s: float = 2.0
    sweep_interval_s: float = 0.2
    relay_dead_s: float = 10.0  # a relay whose heartbeat is this old is gone
    node_dead_s: float = 10.0  # a signaling node whose heartbeat is this old is gone
    redis_timeout_s: float = 2.0
    ice_servers: list[dict[str, Any]] = field(default_factory=list)
    turn_secret: str | None = None
    turn_ttl_s: int = 3600
    languages_file: str | None = None
    relay_urls: frozenset[str] = frozenset()  # TSUNAGU_RELAY_URLS: relays trusted by URL
    metrics_token: str | None = None
    login_failures_per_user: int = 5
    login_failures_per_address: int = 20
    login_window_s: float = 300.0
    login_backoff_max_s: float = 900.0
    preauth_per_address: int = 20
    header_timeout_s: float = 10.0
    # what is kept (PROTOCOL.md section 15, docs/records.md)
    events_retention_days: int = 35  # TSUNAGU_EVENTS_RETENTION_DAYS: the events stream, by age
    events_max_entries: int = 1_000_000  # TSUNAGU_EVENTS_MAX_ENTRIES: a safety cap only
    record_retention_days: int = 1826  # TSUNAGU_RECORD_RETENTION_DAYS: finished-call records
    rating_window_s: float = 120.0  # call.rate is taken this long after the call ended
    retention_every_s: float = 60.0  # how often the sweeping node applies the two above
    # The kiosks' daily test call (docs/testcall.md): when each kiosk's test is due by default,
    # on which weekdays (0 = Monday), how often the scheduler looks, how long after a skip for
    # a real call it tries again, how many tries a day, how long a test call may wait for the
    # bot, and how long a sent test may go without a result before it counts as lost.
    test_at: str = "08:30"  # TSUNAGU_TEST_AT
    test_days: frozenset[int] = frozenset(range(7))  # TSUNAGU_TEST_DAYS, e.g. "mon-fri"
    test_tick_s: float = 5.0
    test_retry_s: float = 300.0
    test_max_tries: int = 3
    test_answer_s: float = 60.0
    test_result_timeout_s: float = 180.0
    # TEST ONLY: TSUNAGU_TEST_CLOCK=1 makes the test-call scheduler add the offset in the
    # Redis key Keys.test_clock (ms) to its clock, so a test can put it at 08:29:58.
    test_clock: bool = False
    # The default is 2**17; TSUNAGU_SCRYPT_N lowers it for test suites only.
    scrypt_n: int = field(default_factory=lambda: int(os.environ.get("TSUNAGU_SCRYPT_N") or 2**17))

    def __post_init__(self) -> None:
        if self.opening_hours.timezone != self.timezone:  # one zone for dates and hours
            object.__setattr__(self, "opening_hours",
                               replace(self.opening_hours, timezone=self.timezone))
        if not 0 < self.staff_token_ttl_s <= tokens.STAFF_MAX_LIFETIME_S:
            raise ConfigError("TSUNAGU_STAFF_TOKEN_TTL_S must be 1 to "
                              f"{tokens.STAFF_MAX_LIFETIME_S} s")
        if not 0 < self.kiosk_token_ttl_s <= tokens.KIOSK_MAX_LIFETIME_S:
            raise ConfigError("TSUNAGU_KIOSK_TOKEN_TTL_S must be 1 to "
                              f"{tokens.KIOSK_MAX_LIFETIME_S} s")
        check_retention(self.events_retention_days, self.events_max_entries,
                        self.record_retention_days)
        if not 0 < self.service_level_goal_pct < 100:
            raise ConfigError("TSUNAGU_SERVICE_LEVEL_GOAL_PCT must be above 0 and below 100")

    @classmethod
    def from_env(cls, *, data_dir: Path | None = None, create_secret: bool = False,
                 **overrides: Any) -> SignalingSettings:
        """Build settings from ``TSUNAGU_*`` variables, then apply ``overrides``."""
        env = os.environ
        timezone = overrides.get("timezone") or env.get("TSUNAGU_TIMEZONE", "Asia/Tokyo")
        try:
            opening_hours = OpeningHours.from_env(env, timezone)
        except OpeningHoursError as exc:
            raise ConfigError(str(exc)) from None
        values: dict[str, Any] = {
            "secret": load_secret(data_dir, create=create_secret),
            "opening_hours": opening_hours,
            "ice_servers": parse_ice_servers(env.get("TSUNAGU_ICE_SERVERS")),
            "turn_secret": env.get("TSUNAGU_TURN_SECRET") or None,
            "timezone": env.get("TSUNAGU_TIMEZONE", "Asia/Tokyo"),
            "relay_urls": frozenset(u.strip().rstrip("/") for u in
                                    env.get("TSUNAGU_RELAY_URLS", "").split(",") if u.strip()),
            "metrics_token": env.get("TSUNAGU_METRICS_TOKEN") or None,
            "test_at": check_test_at(env.get("TSUNAGU_TEST_AT") or "08:30"),
            "test_days": parse_weekdays(env.get("TSUNAGU_TEST_DAYS") or "mon-sun"),
            "test_clock": env.get("TSUNAGU_TEST_CLOCK") == "1",
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
                try:
                    values[name] = conv(raw)
                except ValueError:
                    raise ConfigError(f"TSUNAGU_{name.upper()} must be a number") from None
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
    "service_level_goal_pct": float,
    "heartbeat_s": float,
    "flood_disconnect_s": float,
    "stats_interval_s": float,
    "staff_token_ttl_s": int,
    "kiosk_token_ttl_s": int,
    "sweep_interval_s": float,
    "relay_dead_s": float,
    "node_dead_s": float,
    "auth_timeout_s": float,
    "turn_ttl_s": int,
    "login_failures_per_user": int,
    "login_failures_per_address": int,
    "preauth_per_address": int,
    "header_timeout_s": float,
    "scrypt_n": int,
    "events_retention_days": int,
    "events_max_entries": int,
    "record_retention_days": int,
    "kiosk_seen_interval_s": float,
    "test_tick_s": float,
    "test_retry_s": float,
    "test_max_tries": int,
    "test_answer_s": float,
    "test_result_timeout_s": float,
}

# A starting node rebuilds records from the events of the last few days (signaling/recorder.py):
# the stream must keep at least that much.
MIN_EVENTS_RETENTION_DAYS = 3
MIN_EVENTS_MAX_ENTRIES = 10_000


def check_retention(events_days: int, events_max: int, record_days: int) -> None:
    """Refuse retention settings that would lose records or make the events useless."""
    if events_days < MIN_EVENTS_RETENTION_DAYS:
        raise ConfigError(f"TSUNAGU_EVENTS_RETENTION_DAYS must be at least "
                          f"{MIN_EVENTS_RETENTION_DAYS} (records are rebuilt from the events)")
    if events_max < MIN_EVENTS_MAX_ENTRIES:
        raise ConfigError(f"TSUNAGU_EVENTS_MAX_ENTRIES must be at least {MIN_EVENTS_MAX_ENTRIES}")
    if record_days < events_days:
        raise ConfigError("TSUNAGU_RECORD_RETENTION_DAYS must be at least "
                          "TSUNAGU_EVENTS_RETENTION_DAYS")


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def check_test_at(raw: str) -> str:
    """``HH:MM`` (24-hour) as given; ConfigError otherwise."""
    hh, sep, mm = raw.strip().partition(":")
    if not (sep and hh.isdigit() and mm.isdigit() and len(mm) == 2 and int(hh) < 24
            and int(mm) < 60):
        raise ConfigError(f"a test time is HH:MM (24-hour), not {raw!r}")
    return f"{int(hh):02d}:{mm}"


def parse_weekdays(raw: str) -> frozenset[int]:
    """``mon-fri``, ``mon,wed,fri`` or ``mon-sun`` as weekday numbers (0 = Monday)."""
    days: set[int] = set()
    for part in raw.lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first not in WEEKDAYS or (last and last not in WEEKDAYS):
            raise ConfigError(f"weekdays are mon..sun, e.g. mon-fri, not {raw!r}")
        a, b = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(b + 1)])
    return frozenset(days)

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
    # TEST ONLY fault injection (TSUNAGU_TEST_RELAY_DROP=video|audio|video,audio): forward
    # none of these kinds, so a test call can be seen to fail. Empty unless the variable is set.
    drop_kinds: frozenset[str] = frozenset()

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
            "drop_kinds": parse_drop(env.get("TSUNAGU_TEST_RELAY_DROP")),
        }
        if args.relay_id:
            values["relay_id"] = args.relay_id
        return cls(**values)


def parse_drop(raw: str | None) -> frozenset[str]:
    """TSUNAGU_TEST_RELAY_DROP: the media kinds a relay must drop (a test-only fault)."""
    kinds = frozenset(k.strip() for k in (raw or "").split(",") if k.strip())
    if not kinds <= {"video", "audio"}:
        raise ConfigError(f"TSUNAGU_TEST_RELAY_DROP takes video and/or audio, not {raw!r}")
    return kinds


# -- the Python kiosk client ---------------------------------------------------------------------

MIC_TONE = "tone"  # --mic tone: the synthetic 440 Hz tone (headless self-tests)
DEVICE_OFF = "none"  # --mic none: send silence; --speaker none: play nothing


@dataclass(frozen=True, slots=True)
class KioskSettings:
    """The Python kiosk's settings, from ``tsunagu kiosk``'s flags (names as the flags)."""

    server: str
    token_file: Path
    headless: bool = False
    source: str = "0"
    mic: str | None = None
    speaker: str | None = None
    no_audio_out: bool = False
    call: str | None = None
    priority: str = "normal"
    duration: float = 10.0
    max_wait: float = 120.0
    fps: float = 30.0
    size: str = "1280x720"
    windowed: bool = False
    no_early_release: bool = False
    verbose: bool = False

    @classmethod
    def from_argv(cls, argv: list[str] | None) -> KioskSettings:
        """Parse ``tsunagu kiosk``'s command line. (The media settings every Python endpoint
        shares, ``TSUNAGU_ICE_ADDRESSES``, are read by ``tsunagu.endpoint.leg.prepare_rtc``.)"""
        p = argparse.ArgumentParser(prog="tsunagu kiosk", description="tsunagu counter kiosk")
        p.add_argument("--server", required=True, help="http://host:port of a signaling node")
        p.add_argument("--token-file", required=True, type=Path,
                       help="file with the device token")
        p.add_argument("--headless", action="store_true",
                       help="no window (tests, screenless kiosks)")
        p.add_argument("--source", default="0",
                       help='camera: device index, video or image file, or "synthetic"')
        p.add_argument("--mic", metavar="DEVICE",
                       help='ALSA capture device (default "default"; with --source synthetic '
                            f'the synthetic tone); "{MIC_TONE}" for the tone, "{DEVICE_OFF}" '
                            "for silence")
        p.add_argument("--speaker", metavar="DEVICE",
                       help="ALSA playback device for the interpreter's voice (default "
                            f'"default"; none with --source synthetic); "{DEVICE_OFF}" for none')
        p.add_argument("--no-audio-out", action="store_true",
                       help=f"play nothing (same as --speaker {DEVICE_OFF})")
        p.add_argument("--call", metavar="LANG", help="headless: place one call in this language")
        p.add_argument("--priority", default="normal", choices=("normal", "urgent"))
        p.add_argument("--duration", type=float, default=10.0, metavar="S",
                       help="headless: talk this long after media connects, then hang up")
        p.add_argument("--max-wait", type=float, default=120.0, metavar="S",
                       help="headless: give up if nobody answers within S seconds")
        p.add_argument("--fps", type=float, default=30.0)
        p.add_argument("--size", default="1280x720", help="window size when not full screen")
        p.add_argument("--windowed", action="store_true", help="do not go full screen")
        p.add_argument("--no-early-release", action="store_true",
                       help="keep aiortc's stock jitter buffer (for latency comparisons)")
        p.add_argument("-v", "--verbose", action="store_true")
        return cls(**vars(p.parse_args(argv)))


# -- the answering bot ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class BotSettings:
    """How an answering bot behaves (``tsunagu bot``'s flags; the password from stdin)."""

    server: str
    username: str
    password: str
    media: bool = True
    accept_delay_s: float = 0.0
    decline_rate: float = 0.0
    talk_s: float | None = 10.0  # None: wait until the other side hangs up
    wrapup_s: float | None = None  # None: the server's wrap-up; a number: end it after that
    max_calls: int | None = None
    seed: int | None = None
    max_call_s: float = 3600.0
    early_release: bool = True  # release video frames on their marker packet (see relay)
    verbose: bool = False
    test_calls: bool = True  # also answer the kiosks' test calls (PROTOCOL.md section 14)

    @staticmethod
    def parser() -> argparse.ArgumentParser:
        """``tsunagu bot``'s command line."""
        p = argparse.ArgumentParser(prog="tsunagu bot",
                                    description="automatic answering interpreter")
        p.add_argument("--server", required=True, help="http://host:port of a signaling node")
        p.add_argument("--username", required=True)
        p.add_argument("--password-stdin", action="store_true", required=True,
                       help="read the password from the first line of standard input")
        p.add_argument("--no-media", action="store_true", help="answer without WebRTC")
        p.add_argument("--accept-delay", type=float, default=0.0, metavar="S")
        p.add_argument("--decline-rate", type=float, default=0.0, metavar="R")
        p.add_argument("--talk", type=float, default=10.0, metavar="S",
                       help="hang up after S seconds (0: wait for the other side)")
        p.add_argument("--wrapup", type=float, default=None, metavar="S",
                       help="end wrap-up after S seconds (default: the server's wrap-up)")
        p.add_argument("--calls", type=int, default=None, help="stop after N answered calls")
        p.add_argument("--seed", type=int, default=None)
        p.add_argument("--no-test-calls", action="store_true",
                       help="do not answer the kiosks' test calls (language test)")
        p.add_argument("-v", "--verbose", action="store_true")
        return p

    @classmethod
    def from_args(cls, args: argparse.Namespace, password: str) -> BotSettings:
        """Settings from :meth:`parser`'s flags and the password read from stdin."""
        return cls(server=args.server, username=args.username, password=password,
                   media=not args.no_media, accept_delay_s=args.accept_delay,
                   decline_rate=args.decline_rate, talk_s=args.talk or None,
                   wrapup_s=args.wrapup, max_calls=args.calls, seed=args.seed,
                   verbose=args.verbose, test_calls=not args.no_test_calls)
