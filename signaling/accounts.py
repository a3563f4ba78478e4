"""Staff accounts and kiosk devices, kept in Redis; passwords hashed with scrypt."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from tsunagu import tokens
from tsunagu.settings import SignalingSettings
from tsunagu.store import RedisClient

STAFF_ROLES = frozenset({"interpreter", "supervisor", "admin"})
KIOSK_TOKEN_TTL_S = 5 * 365 * 24 * 3600
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    b64 = base64.b64encode
    return "scrypt${n}${r}${p}$".format(**_SCRYPT) + f"{b64(salt).decode()}${b64(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    """Constant-time check of ``password`` against a stored scrypt hash."""
    try:
        algo, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if algo != "scrypt":
        return False
    got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), dklen=32,
                         n=int(n), r=int(r), p=int(p))
    return hmac.compare_digest(got, base64.b64decode(digest))


# A hash to compare against when the user does not exist, so timing does not tell.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(12))


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is on a connection: a kiosk device or a staff member."""

    id: str
    role: str
    name: str
    languages: tuple[str, ...] = ()
    ward: str = ""
    counter: str = ""

    @property
    def client_id(self) -> str:
        """The routing address: ``k:<kiosk>``, ``i:<interpreter>``, ``s:<supervisor/admin>``."""
        return {"kiosk": "k:", "interpreter": "i:"}.get(self.role, "s:") + self.id


class Accounts:
    """Accounts and devices in Redis."""

    def __init__(self, redis: RedisClient, settings: SignalingSettings) -> None:
        self.redis = redis
        self.settings = settings
        self.keys = settings.keys

    async def add_user(self, username: str, *, role: str, password: str, name: str = "",
                       languages: list[str] | None = None) -> None:
        """Create or replace a staff account."""
        if role not in STAFF_ROLES:
            raise ValueError(f"role must be one of {sorted(STAFF_ROLES)}")
        await self.redis.hset(self.keys.user(username), mapping={
            "role": role, "name": name or username, "languages": ",".join(languages or []),
            "password": hash_password(password),
        })

    async def login(self, username: str, password: str) -> tuple[str, str, int] | None:
        """Check credentials; return (token, role, expires_at_ms) or None."""
        user = await self.redis.hgetall(self.keys.user(username))
        # scrypt takes tens of ms of CPU: keep it off the event loop.
        ok = await asyncio.to_thread(check_password, password, user.get("password", _DUMMY_HASH))
        if not user or not ok:
            return None
        ttl = self.settings.staff_token_ttl_s
        token = tokens.mint(self.settings.secret, sub=username, role=user["role"], ttl_s=ttl,
                            audience=self.settings.jwt_audience, issuer=self.settings.jwt_issuer,
                            algorithm=self.settings.jwt_algorithms[0])
        claims = tokens.verify(self.settings.secret, token, audience=self.settings.jwt_audience,
                               algorithms=self.settings.jwt_algorithms)
        return token, user["role"], claims.exp * 1000

    async def add_kiosk(self, kiosk_id: str, *, ward: str, counter: str) -> str:
        """Register (or re-register) a kiosk and return its token; older tokens stop working."""
        gen = await self.redis.hincrby(self.keys.kiosk(kiosk_id), "gen", 1)
        await self.redis.hset(self.keys.kiosk(kiosk_id), mapping={
            "ward": ward, "counter": counter, "revoked": "0"})
        s = self.settings
        return tokens.mint(s.secret, sub=kiosk_id, role="kiosk", ttl_s=KIOSK_TOKEN_TTL_S,
                           audience=s.jwt_audience, issuer=s.jwt_issuer,
                           algorithm=s.jwt_algorithms[0], gen=gen)

    async def revoke_kiosk(self, kiosk_id: str) -> bool:
        """Refuse every token of this kiosk from now on; False if no such kiosk."""
        key = self.keys.kiosk(kiosk_id)
        if not await self.redis.exists(key):
            return False
        await self.redis.hset(key, "revoked", "1")
        await self.redis.sadd(self.keys.revoked, "kiosk:" + kiosk_id)
        return True

    async def authenticate(self, token: str) -> Principal:
        """Check a token and that its kiosk or user still stands; raise TokenError."""
        s = self.settings
        claims = tokens.verify(s.secret, token, audience=s.jwt_audience, issuer=s.jwt_issuer,
                               algorithms=s.jwt_algorithms)
        if claims.role == "kiosk":
            kiosk = await self.redis.hgetall(self.keys.kiosk(claims.sub))
            if not kiosk or kiosk.get("revoked") == "1" or str(
                claims.extra.get("gen")) != kiosk.get("gen"):
                raise tokens.TokenError("revoked")
            return Principal(id=claims.sub, role="kiosk", name=claims.sub,
                             ward=kiosk.get("ward", ""), counter=kiosk.get("counter", ""))
        if claims.jti and await self.redis.sismember(self.keys.revoked, "jti:" + claims.jti):
            raise tokens.TokenError("revoked")
        user = await self.redis.hgetall(self.keys.user(claims.sub))
        if not user or user.get("role") != claims.role:
            raise tokens.TokenError("unknown user")
        langs = tuple(x for x in user.get("languages", "").split(",") if x)
        return Principal(id=claims.sub, role=claims.role, name=user.get("name", claims.sub),
                         languages=langs)
