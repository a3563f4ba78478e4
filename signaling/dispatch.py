"""What the server does with each client message (PROTOCOL.md sections 4-8).

Handlers turn a parsed message into one routing transition, map its outcome
to the reply, and then send the messages the transition produced for the
requester. Errors leave as ``ProtocolError`` and change nothing.
"""

from __future__ import annotations

import time
from typing import Any

from signaling.connection import Connection
from signaling.routing import Outcome, new_call_id, new_op_id
from tsunagu.languages import TEST_LANGUAGE
from tsunagu.protocol import (
    CallAccept,
    CallCancel,
    CallDecline,
    CallHangup,
    CallRate,
    CallRequest,
    CallTransfer,
    ChatSend,
    ErrorCode,
    KioskHealth,
    KioskTest,
    KioskTestResult,
    MediaOffer,
    Message,
    PresenceSet,
    ProtocolError,
    StatsSubscribe,
    StatsUnsubscribe,
    TestMedia,
    now_ms,
)
from tsunagu.server_messages import (
    Ack,
    Chat,
    MediaAnswer,
    MediaFailed,
    Presence,
    Queue,
    Stats,
    Welcome,
    dump_server_message,
    server_message_fields,
)
from tsunagu.states import ANSWERED_CALL_STATES, WAITING_CALL_STATES, InterpreterState

_ERRORS = {"conflict": ErrorCode.CONFLICT, "forbidden": ErrorCode.FORBIDDEN,
           "not_found": ErrorCode.NOT_FOUND}
_MESSAGES = {
    ErrorCode.CONFLICT: "that is not possible in the call's current state",
    ErrorCode.FORBIDDEN: "this call is not yours",
    ErrorCode.NOT_FOUND: "no such call",
}


def _check(out: Outcome, rid: str | None, conflict: str | None = None) -> Outcome:
    if out.ok:
        return out
    code = _ERRORS.get(str(out.err), ErrorCode.INTERNAL)
    message = conflict if conflict and code is ErrorCode.CONFLICT else _MESSAGES.get(
        code, "internal error")
    raise ProtocolError(code, message, rid)


async def _run(conn: Connection, name: str, coro: Any) -> Outcome:
    started = time.perf_counter()
    out: Outcome = await coro
    conn.observe(name, (time.perf_counter() - started) * 1000)
    return out


async def _then_self(conn: Connection, out: Outcome) -> None:
    for msg in out.self_messages:
        await conn.push(msg)


async def handle(conn: Connection, message: Message) -> None:
    """Dispatch one message from an authenticated client."""
    match message:
        case CallRequest():
            await _call_request(conn, message)
        case CallCancel():
            await _call_cancel(conn, message)
        case PresenceSet():
            await _presence(conn, message)
        case CallAccept() | CallDecline():
            await _answer(conn, message)
        case CallTransfer():
            await _transfer(conn, message)
        case CallHangup():
            await _hangup(conn, message)
        case CallRate():
            await _rate(conn, message)
        case MediaOffer():
            conn.background(_media_offer(conn, message), message.rid)
        case ChatSend():
            await _chat(conn, message)
        case StatsSubscribe():
            conn.subscribe_stats(lambda snap: _push_stats(conn, snap))
            conn.send(Stats.of(rid=message.rid, **await conn.stats_snapshot()))
        case StatsUnsubscribe():
            conn.subscribe_stats(None)
            conn.send(Ack(rid=message.rid))
        case KioskHealth():
            await conn.record_health(message.report)
            conn.send(Ack(rid=message.rid))
        case KioskTest():
            await conn.tests.test_now(message.kiosk_id, message.rid)
            conn.send(Ack(rid=message.rid))
        case KioskTestResult():
            await _test_result(conn, message)
        case TestMedia():
            assert conn.principal is not None
            await conn.tests.bot_media(conn.principal.id, message)
            conn.send(Ack(rid=message.rid))
        case _:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "unsupported message", message.rid)


async def _test_result(conn: Connection, m: KioskTestResult) -> None:
    p = conn.principal
    assert p is not None
    await conn.tests.result(p.id, m)
    conn.send(Ack(rid=m.rid))


async def _push_stats(conn: Connection, snap: dict[str, Any]) -> None:
    conn.send(Stats.of(**snap))


async def _call_request(conn: Connection, m: CallRequest) -> None:
    p = conn.principal
    assert p is not None
    testing = m.language == TEST_LANGUAGE
    if testing != (m.test_id is not None):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "a test call has language test and a "
                            "test_id, and only a test call has either", m.rid)
    if not testing and m.language not in conn.languages:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "unknown language", m.rid)
    if m.test_id is not None:
        await conn.tests.check_request(p.id, m.test_id, m.rid)
    if not await conn.call_allowed():
        raise ProtocolError(ErrorCode.RATE_LIMITED, "too many calls; wait a minute", m.rid)
    call_id = new_call_id()
    out = await _run(conn, "enqueue", conn.router.enqueue(
        kiosk=p.id, ward=p.ward, counter=p.counter, language=m.language,
        priority=m.priority.value, procedure=m.procedure, call_id=call_id, op=new_op_id(),
        requester=p.client_id,
        max_wait_s=conn.settings.test_answer_s if testing else None))
    _check(out, m.rid, "this counter already has a call")
    if m.test_id is not None:
        await conn.tests.bind(m.test_id, call_id)
    conn.waiting = (call_id, m.language)
    conn.tell_position(int(out.get("position", 1)), int(out.get("available", 0)),
                       int(out.get("serving_milli", 0)) / 1000, force=True, rid=m.rid)
    await _then_self(conn, out)


async def _call_cancel(conn: Connection, m: CallCancel) -> None:
    p = conn.principal
    assert p is not None
    out = await _run(conn, "cancel", conn.router.cancel(
        p.id, m.call_id, op=new_op_id(), requester=p.client_id))
    _check(out, m.rid, "the call is already answered; hang up instead")
    conn.send(Ack(rid=m.rid))
    await _then_self(conn, out)


async def _presence(conn: Connection, m: PresenceSet) -> None:
    p = conn.principal
    assert p is not None
    out = await _run(conn, "presence", conn.router.presence(
        p.id, m.status.value, op=new_op_id(), requester=p.client_id))
    _check(out, m.rid)
    state = str(out.get("ok"))
    conn.send(Presence(rid=m.rid, status=m.status.value, state=state,
                       since_ms=out.get("since_ms"), until_ms=out.get("until_ms")))
    for msg in out.self_messages:
        if msg.get("type") != "presence":  # the reply above already says it
            await conn.push(msg)


async def _answer(conn: Connection, m: CallAccept | CallDecline) -> None:
    p = conn.principal
    assert p is not None
    router = conn.router
    if isinstance(m, CallAccept):
        out = await _run(conn, "accept", router.accept(
            p.id, m.call_id, m.offer_id, op=new_op_id(), requester=p.client_id))
        _check(out, m.rid, "this offer is no longer valid")
    else:
        out = await _run(conn, "decline", router.decline(
            p.id, m.call_id, m.offer_id, op=new_op_id(), requester=p.client_id))
        _check(out, m.rid, "this offer is no longer valid")
    conn.send(Ack(rid=m.rid))
    await _then_self(conn, out)


async def _transfer(conn: Connection, m: CallTransfer) -> None:
    p = conn.principal
    assert p is not None
    if m.language not in conn.languages:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "unknown language", m.rid)
    out = await _run(conn, "transfer", conn.router.transfer(
        p.id, m.call_id, m.language, op=new_op_id(), requester=p.client_id))
    _check(out, m.rid, "nobody for that language is signed in, or the call is not connected")
    conn.send(Ack(rid=m.rid))
    await _then_self(conn, out)
    _close_on_relay(conn, m.call_id, out.get("relay"))


async def _hangup(conn: Connection, m: CallHangup) -> None:
    p = conn.principal
    assert p is not None
    out = await _run(conn, "hangup", conn.router.hangup(
        p.role, p.id, m.call_id, op=new_op_id(), requester=p.client_id))
    _check(out, m.rid, "the call has already ended")
    conn.send(Ack(rid=m.rid))
    await _then_self(conn, out)
    _close_on_relay(conn, m.call_id, out.get("relay"))


async def _rate(conn: Connection, m: CallRate) -> None:
    p = conn.principal
    assert p is not None
    out = await _run(conn, "rate", conn.router.rate(p.id, m.call_id, m.score, op=new_op_id()))
    if out.err == "not_found":
        raise ProtocolError(ErrorCode.NOT_FOUND, "no finished, answered call of yours", m.rid)
    _check(out, m.rid, "the call was rated already, or ended over 120 s ago")
    conn.send(Ack(rid=m.rid))


def _close_on_relay(conn: Connection, call_id: str, relay_id: str | None) -> None:
    """Tell the call's relay to drop its legs, without making the client wait for it."""
    if relay_id:
        conn.spawn(conn.relays.close_call(call_id, relay_id), f"close {call_id}")


async def _party_call(conn: Connection, call_id: str, rid: str | None) -> dict[str, str]:
    """The call's hash, if the sender is one of its two parties and it is answered."""
    p = conn.principal
    assert p is not None
    call = await conn.router.read_call(call_id)
    if not call:
        raise ProtocolError(ErrorCode.NOT_FOUND, "no such call", rid)
    field = "kiosk" if p.role == "kiosk" else "interpreter"
    if call.get(field) != p.id:
        raise ProtocolError(ErrorCode.FORBIDDEN, "this call is not yours", rid)
    if call.get("state") not in ANSWERED_CALL_STATES:
        raise ProtocolError(ErrorCode.CONFLICT, "the call is not connected", rid)
    return call


async def _media_offer(conn: Connection, m: MediaOffer) -> None:
    p = conn.principal
    assert p is not None

    def modality(code: str) -> str:
        lang = conn.languages.get(code)
        return lang.modality if lang else "spoken"

    answer = await conn.relays.offer(m.call_id, p.role, p.id, m.sdp, modality, m.rid)
    conn.send(MediaAnswer(rid=m.rid, call_id=m.call_id, sdp=answer.sdp))
    if answer.moved:
        # The call changed relay: the other party's leg is on the old one, so it offers again.
        await conn.deliver(answer.other, server_message_fields(
            MediaFailed(call_id=m.call_id, reason="relay_changed")))


async def _chat(conn: Connection, m: ChatSend) -> None:
    p = conn.principal
    assert p is not None
    call = await _party_call(conn, m.call_id, m.rid)
    msg = server_message_fields(Chat(call_id=m.call_id, sender={"role": p.role, "name": p.name},
                                     text=m.text, at_ms=now_ms()))
    other = "i:" + call["interpreter"] if p.role == "kiosk" else "k:" + call["kiosk"]
    # Chat is never stored: it crosses nodes by pub/sub, at most once, so a message that
    # cannot reach the other party is refused here (or, if lost on the way, comes back as an
    # error with the same rid from the other party's node).
    if not await conn.deliver_chat(other, dict(msg), m.rid):
        raise ProtocolError(ErrorCode.UNAVAILABLE, "the message did not reach the other party",
                            m.rid)
    conn.send(Ack(rid=m.rid))
    await conn.push(msg)


# -- connection lifecycle ----------------------------------------------------

async def on_connect(conn: Connection, resumed: bool) -> None:
    """Register the client and run its connect transition, then greet it: ``welcome`` first,
    then the state it must see again, then whatever reached it meanwhile. A client that has
    its ``welcome`` is fully signed in (an interpreter counts as logged in, for example)."""
    p = conn.principal
    assert p is not None
    user: dict[str, Any] = {"id": p.id, "name": p.name}
    if p.role == "kiosk":
        user.update(ward=p.ward, counter=p.counter)
    elif p.role == "interpreter":
        user["languages"] = list(p.languages)
    conn.hold()
    await conn.attach()
    if p.role == "kiosk":
        await _resume_kiosk(conn)
    elif p.role == "interpreter":
        await _resume_interpreter(conn, resumed)
    conn.release(dump_server_message(Welcome(
        session=conn.session_id, role=p.role, user=user, resumed=resumed,
        languages=[lang.to_wire() for lang in conn.catalogue],
        ice_servers=[s for s in conn.settings.ice_servers if not _is_turn(s)],
        heartbeat_s=conn.settings.heartbeat_s, server_time_ms=now_ms())))
    if p.role == "interpreter":
        # The console's idle screen: waiting calls per language and today's own calls,
        # pushed once per stats interval (unsubscribed when the socket closes).
        conn.watch_stats(lambda snap: _push_queue(conn, snap))
        await _push_queue(conn, await conn.stats_snapshot())


async def _push_queue(conn: Connection, snap: dict[str, Any]) -> None:
    conn.send(Queue.of(**conn.queue_view(snap)))


async def _resume_kiosk(conn: Connection) -> None:
    p = conn.principal
    assert p is not None
    out = await conn.router.kiosk_connect(p.id)
    missed = out.get("ended")
    if isinstance(missed, dict):
        await conn.push(missed)  # its call ended while it was away
    state = out.get("state")
    if state in WAITING_CALL_STATES:
        conn.waiting = (out.get("call_id"), out.get("language"))
        await conn.refresh_position(force=True)
    await _resend(conn, out.get("resend"))


async def _resume_interpreter(conn: Connection, resumed: bool) -> None:
    p = conn.principal
    assert p is not None
    # The presence sent below says what the transition's own presence messages would.
    out = await conn.router.interp_connect(p.id, p.languages, p.name, resumed=resumed,
                                           requester=p.client_id)
    state = str(out.get("state"))
    away = state in (InterpreterState.AWAY, InterpreterState.OFFLINE)
    conn.send(Presence(status="away" if away else "available", state=state,
                       since_ms=out.get("since_ms"), until_ms=out.get("until_ms")))
    await _resend(conn, out.get("resend"))


async def _resend(conn: Connection, msg: object) -> None:
    """Send again what a resumed client must see (built by the connect transition, as the
    transition that first sent it built it); ``call.connected`` is marked ``resumed``."""
    if not isinstance(msg, dict):
        return
    if msg.get("type") == "call.connected":
        msg["resumed"] = True
    await conn.push(msg)


def _is_turn(server: dict[str, Any]) -> bool:
    urls = server.get("urls", [])
    return any(str(u).startswith(("turn:", "turns:"))
               for u in (urls if isinstance(urls, list) else [urls]))


async def on_disconnect(conn: Connection) -> None:
    """The client's current socket closed: start its grace periods (only if this node still
    holds the client; a newer socket elsewhere makes this a no-op)."""
    p = conn.principal
    assert p is not None
    router, node_id = conn.router, conn.settings.node_id
    if p.role == "kiosk":
        await router.kiosk_disconnect(p.id, node=node_id)
    elif p.role == "interpreter":
        await router.interp_disconnect(p.id, node=node_id)
    else:
        await router.staff_disconnect(p.client_id, node=node_id)
    await router.renew_session(conn.session_id, conn.session_ttl_s)
