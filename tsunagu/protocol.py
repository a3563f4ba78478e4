"""The wire protocol: client messages parsed into frozen dataclasses, server messages dumped.

Pure: no I/O, no event loop. ``parse_message`` raises one ``ProtocolError``
carrying the error code the server answers with (PROTOCOL.md section 9).
"""

from __future__ import annotations

import json
import time
from dataclasses import MISSING, dataclass, fields
from enum import StrEnum
from typing import Any, ClassVar

from tsunagu.fleet import HealthError, check_health

MAX_CHAT = 2000
MAX_SDP = 60_000
MAX_RID = 64


class ErrorCode(StrEnum):
    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


class ProtocolError(Exception):
    """A message the server refuses; ``code`` goes on the wire."""

    def __init__(self, code: ErrorCode, message: str, rid: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.rid = rid


class Priority(StrEnum):
    NORMAL = "normal"
    URGENT = "urgent"


class PresenceStatus(StrEnum):
    AVAILABLE = "available"
    AWAY = "away"


@dataclass(frozen=True, slots=True)
class Message:
    """Base of every client message; ``rid`` is echoed on the direct reply."""

    TYPE: ClassVar[str] = ""
    rid: str | None


@dataclass(frozen=True, slots=True)
class Hello(Message):
    TYPE: ClassVar[str] = "hello"
    token: str
    resume: str | None = None
    answers: str | None = None  # "test": an answering bot also takes test calls (section 14)


@dataclass(frozen=True, slots=True)
class CallRequest(Message):
    TYPE: ClassVar[str] = "call.request"
    language: str
    priority: Priority = Priority.NORMAL
    procedure: str | None = None
    test_id: str | None = None  # with language "test": the kiosk.test_due it answers


@dataclass(frozen=True, slots=True)
class CallCancel(Message):
    TYPE: ClassVar[str] = "call.cancel"
    call_id: str


@dataclass(frozen=True, slots=True)
class PresenceSet(Message):
    TYPE: ClassVar[str] = "presence.set"
    status: PresenceStatus


@dataclass(frozen=True, slots=True)
class CallAccept(Message):
    TYPE: ClassVar[str] = "call.accept"
    call_id: str
    offer_id: str


@dataclass(frozen=True, slots=True)
class CallDecline(Message):
    TYPE: ClassVar[str] = "call.decline"
    call_id: str
    offer_id: str


@dataclass(frozen=True, slots=True)
class CallTransfer(Message):
    TYPE: ClassVar[str] = "call.transfer"
    call_id: str
    language: str


@dataclass(frozen=True, slots=True)
class CallHangup(Message):
    TYPE: ClassVar[str] = "call.hangup"
    call_id: str


@dataclass(frozen=True, slots=True)
class MediaOffer(Message):
    TYPE: ClassVar[str] = "media.offer"
    call_id: str
    sdp: str


@dataclass(frozen=True, slots=True)
class ChatSend(Message):
    TYPE: ClassVar[str] = "chat.send"
    call_id: str
    text: str


@dataclass(frozen=True, slots=True)
class StatsSubscribe(Message):
    TYPE: ClassVar[str] = "stats.subscribe"


@dataclass(frozen=True, slots=True)
class StatsUnsubscribe(Message):
    TYPE: ClassVar[str] = "stats.unsubscribe"


@dataclass(frozen=True, slots=True)
class CallRate(Message):
    """The resident's one-tap rating of a finished call (PROTOCOL.md section 15)."""

    TYPE: ClassVar[str] = "call.rate"
    call_id: str
    score: int

    MIN_SCORE: ClassVar[int] = 1
    MAX_SCORE: ClassVar[int] = 5


@dataclass(frozen=True, slots=True)
class KioskHealth(Message):
    """PROTOCOL.md section 14: the kiosk's health, checked by ``tsunagu.fleet.check_health``
    (``report`` holds only the section's fields)."""

    TYPE: ClassVar[str] = "kiosk.health"
    report: dict[str, Any]


@dataclass(frozen=True, slots=True)
class KioskTest(Message):
    """A supervisor or admin: test that kiosk now (PROTOCOL.md section 14)."""

    TYPE: ClassVar[str] = "kiosk.test"
    kiosk_id: str


@dataclass(frozen=True, slots=True)
class KioskTestResult(Message):
    """What a kiosk measured on its test call (section 14); figures null when unmeasured."""

    TYPE: ClassVar[str] = "kiosk.test_result"
    test_id: str
    ok: bool
    fps_in: float | None = None
    fps_out: float | None = None
    rtt_ms: float | None = None
    loss_pct: float | None = None
    setup_ms: float | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class TestMedia(Message):
    """The answering bot on a test call: what it has received so far (docs/protocol.md)."""

    TYPE: ClassVar[str] = "test.media"
    __test__ = False  # a message, not a pytest class
    call_id: str
    video_frames: float
    audio_frames: float
    fps_in: float | None = None


MESSAGES: dict[str, type[Message]] = {
    cls.TYPE: cls
    for cls in (Hello, CallRequest, CallCancel, PresenceSet, CallAccept, CallDecline,
                CallTransfer, CallHangup, MediaOffer, ChatSend, StatsSubscribe, StatsUnsubscribe,
                CallRate, KioskHealth, KioskTest, KioskTestResult, TestMedia)
}

# Which roles may send which message (hello is handled before a role exists).
ALLOWED: dict[str, frozenset[str]] = {
    "call.request": frozenset({"kiosk"}),
    "call.cancel": frozenset({"kiosk"}),
    "presence.set": frozenset({"interpreter"}),
    "call.accept": frozenset({"interpreter"}),
    "call.decline": frozenset({"interpreter"}),
    "call.transfer": frozenset({"interpreter"}),
    "call.hangup": frozenset({"kiosk", "interpreter"}),
    "media.offer": frozenset({"kiosk", "interpreter"}),
    "chat.send": frozenset({"kiosk", "interpreter"}),
    "stats.subscribe": frozenset({"supervisor", "admin"}),
    "stats.unsubscribe": frozenset({"supervisor", "admin"}),
    "call.rate": frozenset({"kiosk"}),
    "kiosk.health": frozenset({"kiosk"}),
    "kiosk.test": frozenset({"supervisor", "admin"}),
    "kiosk.test_result": frozenset({"kiosk"}),
    "test.media": frozenset({"interpreter"}),
}

_LIMITS = {"text": MAX_CHAT, "sdp": MAX_SDP, "procedure": 200, "language": 32, "call_id": 64,
           "offer_id": 64, "token": 8192, "resume": 128, "test_id": 64, "kiosk_id": 128,
           "reason": 200}
MAX_FIGURE = 1e9  # a measured figure (fps, ms, %) beyond this is nonsense


def parse_message(raw: str | bytes) -> Message:
    """Parse one text frame into its message; raise ProtocolError(bad_request)."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # RecursionError: a deeply nested frame (1,000 levels fit in 2 KB)
        raise ProtocolError(ErrorCode.BAD_REQUEST, "not JSON") from exc
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "a message is a JSON object")
    problem = _hostile(data)
    if problem:
        raise ProtocolError(ErrorCode.BAD_REQUEST, problem)
    rid = data.get("rid")
    if rid is not None and (not isinstance(rid, str) or len(rid) > MAX_RID):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "rid must be a short string")
    type_ = data.get("type")
    cls = MESSAGES.get(type_) if isinstance(type_, str) else None
    if cls is None:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"unknown type {type_!r:.40}", rid)
    if cls is KioskHealth:  # nested objects and numbers: checked by its own rules
        try:
            return KioskHealth(rid=rid, report=check_health(data))
        except HealthError as exc:
            raise ProtocolError(ErrorCode.BAD_REQUEST, str(exc), rid) from None
    kwargs: dict[str, Any] = {"rid": rid}
    for f in fields(cls):
        if f.name == "rid":
            continue
        kwargs[f.name] = _field(data, f.name, str(f.type), f.default is not MISSING, rid)
    return cls(**{k: v for k, v in kwargs.items() if v is not _ABSENT})


MAX_DEPTH = 16  # no message nests deeper than 2; the parser's own limit is the recursion limit


def _hostile(data: dict[str, Any]) -> str | None:
    """Why ``data`` cannot be served, or None: nesting deeper than ``MAX_DEPTH`` (whatever
    the interpreter's recursion limit let the parser accept), or a string, key or value, at
    any depth, that is no valid Unicode (a lone surrogate escape ``"\\ud800"`` is valid JSON
    but could be neither echoed nor stored). Iterative: adds no recursion of its own."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                return "nesting too deep"
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "text must be valid Unicode"
    return None


class _Absent:
    pass


_ABSENT: Any = _Absent()


def _field(data: dict[str, Any], name: str, type_: str, has_default: bool, rid: str | None) -> Any:
    value = data.get(name)
    if value is None:
        if has_default:
            return _ABSENT
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"missing field {name}", rid)
    if type_ == "int":
        return _int_field(value, name, rid)
    enum: type[StrEnum] | None = {"Priority": Priority, "PresenceStatus": PresenceStatus}.get(
        type_.split(" ")[0])
    if type_.startswith(("bool", "float")):
        return _figure(name, value, type_, rid)
    if not isinstance(value, str):
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"field {name} must be a string", rid)
    if enum is not None:
        try:
            return enum(value)
        except ValueError:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"bad value for {name}", rid) from None
    limit = _LIMITS.get(name, 256)
    if len(value) > limit or (name not in ("text", "sdp") and not value and not has_default):
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"field {name} is empty or too long", rid)
    return value


# Integer fields and their allowed range.
_INT_RANGES = {"score": (CallRate.MIN_SCORE, CallRate.MAX_SCORE)}


def _int_field(value: Any, name: str, rid: str | None) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"field {name} must be an integer", rid)
    low, high = _INT_RANGES.get(name, (0, 2**31))
    if not low <= value <= high:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"field {name} must be {low} to {high}", rid)
    return value


def _figure(name: str, value: Any, type_: str, rid: str | None) -> bool | float:
    """A boolean, or a finite number from 0 to ``MAX_FIGURE`` (JSON has no NaN, but a
    client may still send 1e400, which json reads as infinity)."""
    if type_.startswith("bool"):
        if not isinstance(value, bool):
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"field {name} must be true or false", rid)
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not 0 <= value <= MAX_FIGURE:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"field {name} must be a number "
                            f"from 0 to {MAX_FIGURE:.0e}", rid)
    return float(value)


def now_ms() -> int:
    """Wall-clock milliseconds since the epoch."""
    return int(time.time() * 1000)


def dump_message(type_: str, /, **fields_: Any) -> str:
    """Serialise one server message (``None`` fields are left out)."""
    return json.dumps({"type": type_, **{k: v for k, v in fields_.items() if v is not None}},
                      ensure_ascii=False, separators=(",", ":"))


def error_message(code: ErrorCode, message: str, rid: str | None = None) -> str:
    """The ``error`` frame."""
    return dump_message("error", code=code.value, message=message, rid=rid)
