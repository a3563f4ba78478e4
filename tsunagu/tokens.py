"""JSON Web Tokens: minting and checking, with every claim required.

Algorithms are fixed by configuration (never read from the token's header),
so ``alg=none`` and key confusion are refused by PyJWT before any claim is
looked at.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt

REQUIRED_CLAIMS = ["exp", "iat", "sub", "aud", "iss", "role", "jti"]
ROLES = frozenset({"kiosk", "interpreter", "supervisor", "admin"})
SERVICE_AUDIENCE = "tsunagu-relay"
SERVICE_ROLE = "signaling"
STAFF_MAX_LIFETIME_S = 12 * 3600
KIOSK_MAX_LIFETIME_S = 400 * 24 * 3600
RELAY_MAX_LIFETIME_S = 30
# PROTOCOL.md section 13: the longest ``exp - iat`` each role's token may have.
MAX_LIFETIME_S = {"kiosk": KIOSK_MAX_LIFETIME_S, "interpreter": STAFF_MAX_LIFETIME_S,
                  "supervisor": STAFF_MAX_LIFETIME_S, "admin": STAFF_MAX_LIFETIME_S,
                  SERVICE_ROLE: RELAY_MAX_LIFETIME_S}


class TokenError(Exception):
    """The token is not acceptable (expired, forged, wrong audience, revoked…)."""


@dataclass(frozen=True, slots=True)
class Claims:
    """The checked claims of a token."""

    sub: str
    role: str
    jti: str
    exp: int
    extra: dict[str, Any]
    iat: int = 0


def mint(secret: bytes, *, sub: str, role: str, ttl_s: int, audience: str = "tsunagu",
         issuer: str = "tsunagu", algorithm: str = "HS256", **extra: Any) -> str:
    """A signed token for ``sub`` with ``role`` valid for ``ttl_s`` seconds (at most the
    role's maximum lifetime)."""
    ttl_s = min(ttl_s, MAX_LIFETIME_S.get(role, STAFF_MAX_LIFETIME_S))
    now = int(time.time())
    payload = {
        "sub": sub, "role": role, "iat": now, "exp": now + ttl_s,
        "aud": audience, "iss": issuer, "jti": secrets.token_urlsafe(12), **extra,
    }
    return jwt.encode(payload, secret, algorithm=algorithm)


def verify(secret: bytes, token: str, *, audience: str = "tsunagu", issuer: str = "tsunagu",
           algorithms: tuple[str, ...] = ("HS256",), roles: frozenset[str] = ROLES) -> Claims:
    """Check signature, algorithm, every required claim and the role; raise TokenError."""
    try:
        payload = jwt.decode(
            token, secret, algorithms=list(algorithms), audience=audience, issuer=issuer,
            options={"require": REQUIRED_CLAIMS}, leeway=5,
        )
    except jwt.PyJWTError as exc:
        raise TokenError(type(exc).__name__) from exc
    role = payload.get("role")
    sub = payload.get("sub")
    if role not in roles or not isinstance(sub, str) or not sub:
        raise TokenError("bad role or subject")
    jti = payload.get("jti")
    if not isinstance(jti, str) or not jti:
        raise TokenError("no token id")
    try:
        iat, exp = int(payload["iat"]), int(payload["exp"])
    except (TypeError, ValueError) as exc:
        raise TokenError("bad times") from exc
    if exp - iat > MAX_LIFETIME_S.get(role, 0):
        raise TokenError("lifetime longer than the role allows")
    known = {"sub", "role", "jti", "exp", "iat", "aud", "iss"}
    return Claims(sub=sub, role=role, jti=jti, exp=exp, iat=iat,
                  extra={k: v for k, v in payload.items() if k not in known})


def mint_service_token(secret: bytes, *, relay_id: str, call_id: str, party: str, method: str,
                       ttl_s: int = RELAY_MAX_LIFETIME_S) -> str:
    """A token a signaling node presents to one relay's control API, for one request: bound to
    the relay (``sub``), the call, the party (``*`` for none) and the HTTP method; valid for
    at most 30 s and, at the relay, once."""
    return mint(secret, sub=relay_id, role=SERVICE_ROLE, ttl_s=ttl_s, audience=SERVICE_AUDIENCE,
                call=call_id, party=party, method=method.upper())


def verify_service_token(secret: bytes, token: str, *, relay_id: str, call_id: str,
                         party: str, method: str) -> Claims:
    """Check a token presented to a relay's control API for this very request (the relay's
    replay store checks that it is used once); raise TokenError."""
    claims = verify(secret, token, audience=SERVICE_AUDIENCE, roles=frozenset({SERVICE_ROLE}))
    bound = (claims.sub, claims.extra.get("call"), claims.extra.get("party"),
             claims.extra.get("method"))
    if bound != (relay_id, call_id, party, method.upper()):
        raise TokenError("token bound to another relay, call, party or method")
    return claims


class ReplayStore:
    """Token ids already used, each kept until its token expires; bounded in size (a full
    store refuses new tokens rather than forget used ones)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._seen: dict[str, int] = {}

    def use(self, jti: str, exp: int, now: float | None = None) -> bool:
        """Record ``jti``; False if it was used before (or the store is full)."""
        t = time.time() if now is None else now
        if len(self._seen) >= self.capacity:
            self._seen = {k: e for k, e in self._seen.items() if e >= t}
        if jti in self._seen or len(self._seen) >= self.capacity:
            return False
        self._seen[jti] = exp
        return True


def relay_registration_key(secret: bytes, relay_id: str, url: str) -> str:
    """The key a relay registers beside its control URL: an HMAC of both under the shared
    secret, so a URL written into Redis by anyone without the secret is never posted to."""
    message = f"tsunagu-relay-registration|{relay_id}|{url}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def relay_registration_ok(secret: bytes, relay_id: str, url: str, key: str) -> bool:
    """Whether ``key`` is :func:`relay_registration_key` of this relay id and URL."""
    return hmac.compare_digest(relay_registration_key(secret, relay_id, url).encode(),
                               key.encode())
