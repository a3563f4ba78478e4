"""Ending what is open when a token stops being good (PROTOCOL.md section 13).

A kiosk revoked or rotated, a user disabled or given a new password: ``Accounts`` raises the
principal's token generation and publishes ``kind|id|gen`` on the revocations channel; every
node closes that principal's sockets whose token is of an older generation (``error
unauthorized``, close code 4401). Pub/sub delivers at most once, so whenever a node
(re)subscribes it checks the generation of every principal it holds. Each socket also
closes itself at its token's ``exp`` (``Connection``'s expiry timer).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Protocol

from signaling.accounts import Principal
from tsunagu.redis_keys import Keys
from tsunagu.store import RedisClient

log = logging.getLogger(__name__)


class Revocable(Protocol):
    """A signed-in socket that can be ended."""

    principal: Principal | None

    def revoke(self, why: str) -> None: ...


def parse(raw: str) -> tuple[str, int] | None:
    """``kind|id|gen`` -> (``kind|id``, gen), or None for anything else."""
    subject, _, gen = raw.rpartition("|")
    if not subject or "|" not in subject or not gen.isdigit():
        return None
    return subject, int(gen)


def announced(raw: str, connections: Iterable[Revocable]) -> int:
    """Close the sockets a revocation names; how many."""
    parsed = parse(raw)
    if parsed is None:
        return 0
    subject, gen = parsed
    closed = 0
    for conn in list(connections):
        p = conn.principal
        if p is not None and p.revocation_subject == subject and p.gen < gen:
            conn.revoke("the token was revoked")
            closed += 1
    if closed:
        log.info("revocation of %s: %d socket(s) closed", subject, closed)
    return closed


async def recheck(redis: RedisClient, keys: Keys, connections: Iterable[Revocable]) -> int:
    """Close every socket whose principal no longer stands at its token's generation (for the
    revocations a node may have missed while it was not subscribed); how many."""
    held = [c for c in list(connections) if c.principal is not None]
    if not held:
        return 0
    pipe = redis.pipeline(transaction=False)
    for conn in held:
        p = conn.principal
        assert p is not None
        if p.role == "kiosk":
            pipe.hmget(keys.kiosk(p.id), "gen", "revoked", "disabled", "ward")
        else:
            pipe.hmget(keys.user(p.id), "gen", "revoked", "disabled", "role")
    rows: list[list[Any]] = await pipe.execute()
    closed = 0
    for conn, (gen, revoked, disabled, present) in zip(held, rows, strict=True):
        p = conn.principal
        assert p is not None
        gone = present is None or (p.role != "kiosk" and present != p.role)
        if gone or int(gen or 0) != p.gen or revoked == "1" or disabled == "1":
            conn.revoke("the token was revoked")
            closed += 1
    return closed
