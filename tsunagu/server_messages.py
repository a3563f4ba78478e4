"""The server's messages (PROTOCOL.md sections 2-9, 14-15) typed: frozen dataclasses, one
:func:`parse_server_message` (what the Python clients read every frame with) and one
:func:`dump_server_message`. Pure: no I/O.

The routing scripts build some of these messages in Lua; ``tests/signaling`` runs every
transition against a real Redis and parses each message they produce, so a script and its
clients cannot drift apart. Fields a client does not know are kept in ``extra`` (the protocol
may add fields; clients ignore what they do not know).
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar

from tsunagu.protocol import ErrorCode, ProtocolError


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerMessage:
    """Base of every server message; ``rid`` echoes the request a direct reply answers."""

    TYPE: ClassVar[str] = ""
    WIRE_NAMES: ClassVar[Mapping[str, str]] = {}  # field -> JSON key, where they differ
    rid: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, **values: Any) -> typing.Self:
        """Build from a mapping that may hold fields this class does not name (kept in
        ``extra``): for payloads assembled elsewhere, such as the statistics snapshot."""
        names = {f.name for f in fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in values.items() if k in names},
                   extra={k: v for k, v in values.items() if k not in names})


@dataclass(frozen=True, slots=True, kw_only=True)
class Welcome(ServerMessage):
    TYPE: ClassVar[str] = "welcome"
    session: str
    role: str
    user: dict[str, Any]
    languages: list[dict[str, Any]]
    ice_servers: list[dict[str, Any]]
    heartbeat_s: float
    server_time_ms: int
    resumed: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Ack(ServerMessage):
    TYPE: ClassVar[str] = "ack"


@dataclass(frozen=True, slots=True, kw_only=True)
class Error(ServerMessage):
    TYPE: ClassVar[str] = "error"
    code: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Presence(ServerMessage):
    TYPE: ClassVar[str] = "presence"
    status: str
    state: str
    since_ms: int | None = None
    until_ms: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallQueued(ServerMessage):
    TYPE: ClassVar[str] = "call.queued"
    call_id: str
    language: str
    position: int
    estimated_wait_s: float | None = None
    # version 1.1 additions: the honest range, and why nobody answers yet
    estimated_wait_min_s: float | None = None
    estimated_wait_max_s: float | None = None
    reason: str | None = None  # "none_available": no interpreter is free for this call now


@dataclass(frozen=True, slots=True, kw_only=True)
class CallPosition(ServerMessage):
    TYPE: ClassVar[str] = "call.position"
    call_id: str
    position: int
    estimated_wait_s: float | None = None
    estimated_wait_min_s: float | None = None
    estimated_wait_max_s: float | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallOffer(ServerMessage):
    TYPE: ClassVar[str] = "call.offer"
    call_id: str
    offer_id: str
    language: str
    ward: str
    counter: str
    waited_s: float
    expires_in_s: float
    procedure: str | None = None
    priority: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallOfferCancelled(ServerMessage):
    TYPE: ClassVar[str] = "call.offer_cancelled"
    call_id: str
    offer_id: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallConnected(ServerMessage):
    TYPE: ClassVar[str] = "call.connected"
    call_id: str
    role: str
    peer: dict[str, Any]
    ice_servers: list[dict[str, Any]] | None = None  # added by the node that sends it
    resumed: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEnded(ServerMessage):
    TYPE: ClassVar[str] = "call.ended"
    call_id: str
    reason: str
    by: str | None = None
    duration_s: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaAnswer(ServerMessage):
    TYPE: ClassVar[str] = "media.answer"
    call_id: str
    sdp: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaFailed(ServerMessage):
    TYPE: ClassVar[str] = "media.failed"
    call_id: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Chat(ServerMessage):
    TYPE: ClassVar[str] = "chat"
    WIRE_NAMES: ClassVar[Mapping[str, str]] = {"sender": "from"}
    call_id: str
    sender: dict[str, Any]
    text: str
    at_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Stats(ServerMessage):
    TYPE: ClassVar[str] = "stats"
    at_ms: int
    languages: list[dict[str, Any]]
    interpreters: list[dict[str, Any]]
    calls: list[dict[str, Any]]
    today: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Queue(ServerMessage):
    """An interpreter's view of the queues: waiting calls per own language, the oldest
    wait, and the interpreter's own calls today (docs/protocol.md)."""

    TYPE: ClassVar[str] = "queue"
    at_ms: int
    languages: dict[str, Any]
    oldest_wait_s: dict[str, Any]
    today_calls: list[dict[str, Any]]


@dataclass(frozen=True, slots=True, kw_only=True)
class KioskTestDue(ServerMessage):
    """To a kiosk: place the test call now (PROTOCOL.md section 14)."""

    TYPE: ClassVar[str] = "kiosk.test_due"
    test_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Unknown(ServerMessage):
    """A message type this client does not know (a newer server): kept, never an error."""

    type: str


SERVER_MESSAGES: dict[str, type[ServerMessage]] = {
    cls.TYPE: cls
    for cls in (Welcome, Ack, Error, Presence, CallQueued, CallPosition, CallOffer,
                CallOfferCancelled, CallConnected, CallEnded, MediaAnswer, MediaFailed, Chat,
                Stats, Queue, KioskTestDue)
}


def _accepts(annotation: Any) -> tuple[type, ...]:
    """The JSON types a field's annotation takes (``float`` takes ints too)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return tuple(t for a in typing.get_args(annotation) for t in _accepts(a))
    if annotation is type(None):
        return (type(None),)
    if annotation is float:
        return (int, float)
    return (typing.get_origin(annotation) or annotation,)


# Per message class: (field, JSON key, accepted types, required), worked out once.
_Plan = list[tuple[str, str, tuple[type, ...], bool]]
_PLANS: dict[type[ServerMessage], _Plan] = {}


def _plan(cls: type[ServerMessage]) -> _Plan:
    plan = _PLANS.get(cls)
    if plan is None:
        hints = typing.get_type_hints(cls)
        plan = _PLANS[cls] = [
            (f.name, cls.WIRE_NAMES.get(f.name, f.name), _accepts(hints[f.name]),
             f.default is MISSING and f.default_factory is MISSING)
            for f in fields(cls) if f.name != "extra"]
    return plan


def parse_server_message(raw: str | bytes | Mapping[str, Any]) -> ServerMessage:
    """One server frame (text or already decoded) as its message; ProtocolError if a known
    message lacks a field or has one of the wrong type."""
    if isinstance(raw, Mapping):
        data = dict(raw)
    else:
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "not JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "a message is a JSON object with a type")
    type_ = data.pop("type")
    cls = SERVER_MESSAGES.get(type_)
    if cls is None:
        rid = data.pop("rid", None)
        return Unknown(type=type_, rid=rid if isinstance(rid, str) else None, extra=data)
    kwargs: dict[str, Any] = {}
    for name, wire, accepts, required in _plan(cls):
        value = data.pop(wire, None)
        if value is None:
            if required:
                raise ProtocolError(ErrorCode.BAD_REQUEST, f"{type_} lacks {wire}")
            continue
        if not isinstance(value, accepts) or (isinstance(value, bool) and bool not in accepts):
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{type_}.{wire} has the wrong type")
        kwargs[name] = value
    return cls(**kwargs, extra=data)


def server_message_fields(msg: ServerMessage) -> dict[str, Any]:
    """The message as the JSON object sent on the wire (``None`` fields left out)."""
    out: dict[str, Any] = {"type": msg.type if isinstance(msg, Unknown) else msg.TYPE}
    for name, wire, *_ in _plan(type(msg)):
        value = getattr(msg, name)
        if value is not None and name != "type":
            out[wire] = value
    if msg.extra:
        out.update({k: v for k, v in msg.extra.items() if v is not None})
    return out


def dump_server_message(msg: ServerMessage) -> str:
    """Serialise one server message for the wire."""
    return json.dumps(server_message_fields(msg), ensure_ascii=False, separators=(",", ":"))
