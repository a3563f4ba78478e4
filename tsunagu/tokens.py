"""JSON Web Tokens: minting and checking, with every claim required.

Algorithms are fixed by configuration (never read from the token's header),
so ``alg=none`` and key confusion are refused by PyJWT before any claim is
looked at.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt

REQUIRED_CLAIMS = ["exp", "iat", "sub", "aud", "iss", "role"]
ROLES = frozenset({"kiosk", "interpreter", "supervisor", "admin"})
SERVICE_AUDIENCE = "tsunagu-relay"
SERVICE_ROLE = "signaling"


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


def mint(secret: bytes, *, sub: str, role: str, ttl_s: int, audience: str = "tsunagu",
         issuer: str = "tsunagu", algorithm: str = "HS256", **extra: Any) -> str:
    """A signed token for ``sub`` with ``role`` valid for ``ttl_s`` seconds."""
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
    known = {"sub", "role", "jti", "exp", "iat", "aud", "iss"}
    return Claims(sub=sub, role=role, jti=str(payload.get("jti", "")), exp=int(payload["exp"]),
                  extra={k: v for k, v in payload.items() if k not in known})


def mint_service_token(secret: bytes, ttl_s: int = 60) -> str:
    """A short-lived token a signaling node presents to a relay's control API."""
    return mint(secret, sub="signaling", role=SERVICE_ROLE, ttl_s=ttl_s, audience=SERVICE_AUDIENCE)


def verify_service_token(secret: bytes, token: str) -> Claims:
    """Check a token presented to a relay's control API; raise TokenError."""
    return verify(secret, token, audience=SERVICE_AUDIENCE, roles=frozenset({SERVICE_ROLE}))
