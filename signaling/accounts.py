"""Staff accounts and kiosk devices, kept in Redis; passwords hashed with scrypt."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Collection
from dataclasses import dataclass

from tsunagu import tokens
from tsunagu.languages import TEST_LANGUAGE
from tsunagu.settings import SignalingSettings
from tsunagu.store import RedisClient

STAFF_ROLES = frozenset({"interpreter", "supervisor", "admin"})
SCRYPT_N = 2**17  # PROTOCOL.md section 13 / issue 9; older hashes are raised at the next login
_SCRYPT_R, _SCRYPT_P = 8, 1
# test calls (section 14) are no interpreter's language
RESERVED_LANGUAGES = frozenset({TEST_LANGUAGE})


# Create a hash only if it does not exist, all fields at once.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""


class AccountError(ValueError):
    """An account command cannot be done; the message is the one line the operator sees."""


class AccountDisabled(Exception):
    """The right password, but the account is disabled (HTTP 403)."""


def _maxmem(n: int, r: int) -> int:
    return 2 * 128 * r * n + 1024 * 1024


def hash_password(password: str, n: int = SCRYPT_N) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, n=n, r=_SCRYPT_R,
                            p=_SCRYPT_P, maxmem=_maxmem(n, _SCRYPT_R))
    b64 = base64.b64encode
    return f"scrypt${n}${_SCRYPT_R}${_SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    """Constant-time check of ``password`` against a stored scrypt hash."""
    try:
        algo, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if algo != "scrypt":
        return False
    got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), dklen=32,
                         n=int(n), r=int(r), p=int(p), maxmem=_maxmem(int(n), int(r)))
    return hmac.compare_digest(got, base64.b64decode(digest))


def needs_rehash(stored: str, n: int = SCRYPT_N) -> bool:
    """Whether a stored hash is weaker than ``n`` (then the next good login rehashes it)."""
    parts = stored.split("$")
    return len(parts) != 6 or parts[0] != "scrypt" or int(parts[1]) < n


def check_languages(role: str, languages: list[str], catalogue: Collection[str]) -> None:
    """Languages must be in the catalogue (never ``test``); an interpreter needs one."""
    unknown = [c for c in languages if c not in catalogue or c in RESERVED_LANGUAGES]
    if unknown:
        raise AccountError(f"unknown language code(s): {', '.join(unknown)} "
                           f"(known: {', '.join(sorted(set(catalogue) - RESERVED_LANGUAGES))})")
    if role == "interpreter" and not languages:
        raise AccountError("an interpreter needs at least one language (--languages)")


_DUMMY_HASHES: dict[int, str] = {}


def _dummy_hash(n: int) -> str:
    """A hash to compare against when the user does not exist, so timing does not tell."""
    if n not in _DUMMY_HASHES:
        _DUMMY_HASHES[n] = hash_password(secrets.token_urlsafe(12), n)
    return _DUMMY_HASHES[n]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is on a connection: a kiosk device or a staff member, with its token's generation
    and expiry (the socket is closed when either no longer holds)."""

    id: str
    role: str
    name: str
    languages: tuple[str, ...] = ()
    ward: str = ""
    counter: str = ""
    gen: int = 0
    exp: int = 0

    @property
    def client_id(self) -> str:
        """The routing address: ``k:<kiosk>``, ``i:<interpreter>``, ``s:<supervisor/admin>``."""
        return {"kiosk": "k:", "interpreter": "i:"}.get(self.role, "s:") + self.id

    @property
    def revocation_subject(self) -> str:
        """``kiosk|<id>`` or ``user|<name>``: what a revocation names."""
        return ("kiosk|" if self.role == "kiosk" else "user|") + self.id


class Accounts:
    """Accounts and devices in Redis. Every change that must end open sockets raises the
    principal's token generation and announces it on the revocations channel."""

    def __init__(self, redis: RedisClient, settings: SignalingSettings) -> None:
        self.redis = redis
        self.settings = settings
        self.keys = settings.keys

    def _hash(self, password: str) -> str:
        return hash_password(password, self.settings.scrypt_n)

    async def _announce(self, subject: str, gen: int) -> None:
        await self.redis.publish(self.keys.revocations, f"{subject}|{gen}")

    # -- staff ---------------------------------------------------------------
    async def add_user(self, username: str, *, role: str, password: str, name: str = "",
                       languages: list[str] | None = None,
                       catalogue: Collection[str] | None = None) -> None:
        """Create a staff account; an existing username is refused (AccountError)."""
        if role not in STAFF_ROLES:
            raise AccountError(f"role must be one of {', '.join(sorted(STAFF_ROLES))}")
        langs = list(languages or [])
        if catalogue is not None:
            check_languages(role, langs, catalogue)
        hashed = await asyncio.to_thread(self._hash, password)
        fields = {"password": hashed, "role": role, "name": name or username,
                  "languages": ",".join(langs), "gen": "1", "disabled": "0"}
        created = await self.redis.eval(_CREATE, 1, self.keys.user(username),
                                        *[x for kv in fields.items() for x in kv])
        if not created:
            raise AccountError(f"user {username} exists (use update-user or set-password)")

    async def update_user(self, username: str, *, name: str | None = None,
                          languages: list[str] | None = None, role: str | None = None,
                          catalogue: Collection[str] | None = None) -> None:
        """Change only what is given of an existing account."""
        user = await self._user(username)
        new_role = role or user.get("role", "")
        if new_role not in STAFF_ROLES:
            raise AccountError(f"role must be one of {', '.join(sorted(STAFF_ROLES))}")
        langs = languages if languages is not None else [
            x for x in user.get("languages", "").split(",") if x]
        if catalogue is not None and (languages is not None or role is not None):
            check_languages(new_role, langs, catalogue)
        changes: dict[str, str] = {"role": new_role, "languages": ",".join(langs)}
        if name is not None:
            changes["name"] = name
        await self.redis.hset(self.keys.user(username), mapping=changes)
        if new_role != user.get("role"):
            await self._bump_user(username)

    async def _user(self, username: str) -> dict[str, str]:
        user: dict[str, str] = await self.redis.hgetall(self.keys.user(username))
        if not user:
            raise AccountError(f"no user {username}")
        return user

    async def _bump_user(self, username: str) -> None:
        gen = await self.redis.hincrby(self.keys.user(username), "gen", 1)
        await self._announce("user|" + username, gen)

    async def set_password(self, username: str, password: str) -> None:
        """A new password; every token issued before is refused and its sockets closed."""
        await self._user(username)
        hashed = await asyncio.to_thread(self._hash, password)
        await self.redis.hset(self.keys.user(username), "password", hashed)
        await self._bump_user(username)

    async def disable_user(self, username: str) -> None:
        """Refuse the account's logins (403) and tokens; close its sockets."""
        await self._user(username)
        await self.redis.hset(self.keys.user(username), "disabled", "1")
        await self._bump_user(username)

    async def enable_user(self, username: str) -> None:
        """Allow logins again; tokens issued before the disable stay refused."""
        await self._user(username)
        await self.redis.hset(self.keys.user(username), "disabled", "0")

    async def list_users(self) -> list[dict[str, object]]:
        """Every staff account (no password hash), by username."""
        out = []
        async for key in self.redis.scan_iter(match=self.keys.user("*"), count=500):
            user = await self.redis.hgetall(key)
            username = key[len(self.keys.user("")):]
            out.append({"username": username, "role": user.get("role", ""),
                        "name": user.get("name", ""),
                        "languages": [x for x in user.get("languages", "").split(",") if x],
                        "disabled": user.get("disabled") == "1"})
        return sorted(out, key=lambda u: str(u["username"]))

    async def login(self, username: str, password: str) -> tuple[str, str, int] | None:
        """Check credentials; return (token, role, expires_at_ms) or None; raise
        AccountDisabled for the right password of a disabled account."""
        user = await self.redis.hgetall(self.keys.user(username))
        stored = user.get("password") or _dummy_hash(self.settings.scrypt_n)
        # scrypt takes a good part of a second of CPU: keep it off the event loop.
        ok = await asyncio.to_thread(check_password, password, stored)
        if not user or not ok:
            return None
        if user.get("disabled") == "1":
            raise AccountDisabled(username)
        if needs_rehash(stored, self.settings.scrypt_n):
            hashed = await asyncio.to_thread(self._hash, password)
            await self.redis.hset(self.keys.user(username), "password", hashed)
        s = self.settings
        token = tokens.mint(s.secret, sub=username, role=user["role"], ttl_s=s.staff_token_ttl_s,
                            audience=s.jwt_audience, issuer=s.jwt_issuer,
                            algorithm=s.jwt_algorithms[0], gen=int(user.get("gen") or 0))
        claims = tokens.verify(s.secret, token, audience=s.jwt_audience, issuer=s.jwt_issuer,
                               algorithms=s.jwt_algorithms)
        return token, user["role"], claims.exp * 1000

    # -- kiosks --------------------------------------------------------------
    async def add_kiosk(self, kiosk_id: str, *, ward: str, counter: str,
                        rotate: bool = False, test_at: str | None = None) -> str:
        """Register a kiosk and return its token. An existing id is refused unless
        ``rotate``: then a new token is issued and every older one revoked. ``test_at``
        (HH:MM): its daily test call (default: the deployment's, 08:30)."""
        key = self.keys.kiosk(kiosk_id)
        if not rotate and not await self.redis.hsetnx(key, "ward", ward):
            raise AccountError(f"kiosk {kiosk_id} exists (--rotate issues a new token and "
                               "revokes the old one)")
        gen = await self.redis.hincrby(key, "gen", 1)
        # a kiosk added after today's test time is first tested tomorrow (docs/testcall.md)
        await self.redis.hsetnx(key, "added_ms", int(time.time() * 1000))
        fields = {"ward": ward, "counter": counter, "revoked": "0"}
        if test_at is not None or not await self.redis.hexists(key, "test_at"):
            fields["test_at"] = test_at or self.settings.test_at
        await self.redis.hset(key, mapping=fields)
        if rotate:
            await self._announce("kiosk|" + kiosk_id, gen)
        s = self.settings
        token = tokens.mint(s.secret, sub=kiosk_id, role="kiosk", ttl_s=s.kiosk_token_ttl_s,
                            audience=s.jwt_audience, issuer=s.jwt_issuer,
                            algorithm=s.jwt_algorithms[0], gen=gen)
        claims = tokens.verify(s.secret, token, audience=s.jwt_audience, issuer=s.jwt_issuer,
                               algorithms=s.jwt_algorithms)
        # the fleet says when to rotate it (PROTOCOL.md section 14; at most 400 days, 13)
        await self.redis.hset(key, "token_exp_ms", claims.exp * 1000)
        return token

    async def update_kiosk(self, kiosk_id: str, *, test_at: str | None = None) -> None:
        """Change what is given of a kiosk (its test time); AccountError if no such kiosk."""
        key = self.keys.kiosk(kiosk_id)
        if not await self.redis.exists(key):
            raise AccountError(f"no kiosk {kiosk_id}")
        if test_at is not None:
            await self.redis.hset(key, "test_at", test_at)

    async def revoke_kiosk(self, kiosk_id: str) -> bool:
        """Refuse every token of this kiosk from now on; False if no such kiosk."""
        key = self.keys.kiosk(kiosk_id)
        if not await self.redis.exists(key):
            return False
        await self.redis.hset(key, "revoked", "1")
        await self.redis.sadd(self.keys.revoked, "kiosk:" + kiosk_id)
        gen = await self.redis.hincrby(key, "gen", 1)
        await self._announce("kiosk|" + kiosk_id, gen)
        return True

    async def list_kiosks(self) -> list[dict[str, object]]:
        """Every kiosk device (no token), by id."""
        out = []
        async for key in self.redis.scan_iter(match=self.keys.kiosk("*"), count=500):
            kiosk = await self.redis.hgetall(key)
            out.append({"kiosk_id": key[len(self.keys.kiosk("")):],
                        "ward": kiosk.get("ward", ""), "counter": kiosk.get("counter", ""),
                        "revoked": kiosk.get("revoked") == "1",
                        "test_at": kiosk.get("test_at") or self.settings.test_at})
        return sorted(out, key=lambda k: str(k["kiosk_id"]))

    # -- tokens --------------------------------------------------------------
    async def authenticate(self, token: str) -> Principal:
        """Check a token and that its kiosk or user still stands at the token's generation;
        raise TokenError."""
        s = self.settings
        claims = tokens.verify(s.secret, token, audience=s.jwt_audience, issuer=s.jwt_issuer,
                               algorithms=s.jwt_algorithms)
        gen = claims.extra.get("gen")
        if claims.role == "kiosk":
            kiosk = await self.redis.hgetall(self.keys.kiosk(claims.sub))
            if not kiosk or kiosk.get("revoked") == "1" or str(gen) != kiosk.get("gen"):
                raise tokens.TokenError("revoked")
            return Principal(id=claims.sub, role="kiosk", name=claims.sub,
                             ward=kiosk.get("ward", ""), counter=kiosk.get("counter", ""),
                             gen=int(gen or 0), exp=claims.exp)
        if await self.redis.sismember(self.keys.revoked, "jti:" + claims.jti):
            raise tokens.TokenError("revoked")
        user = await self.redis.hgetall(self.keys.user(claims.sub))
        if not user or user.get("role") != claims.role:
            raise tokens.TokenError("unknown user")
        if user.get("disabled") == "1" or str(gen) != user.get("gen", "0"):
            raise tokens.TokenError("revoked")
        langs = tuple(x for x in user.get("languages", "").split(",") if x)
        return Principal(id=claims.sub, role=claims.role, name=user.get("name", claims.sub),
                         languages=langs, gen=int(gen or 0), exp=claims.exp)
