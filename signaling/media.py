"""The signaling side of media: choosing a relay, passing offers to it, hearing from it.

Relays register themselves in Redis (``relay:<id>`` and the ``relays`` set,
see relay/registry). A call's relay is kept in its hash; the first offer of a
call picks the least-loaded live relay with room (admission: a relay at
capacity answers 503 and the next one is tried). TURN credentials follow
coturn's REST scheme (``username = expiry:call``, ``credential =
base64(HMAC-SHA1(secret, username))``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from signaling.routing import Router
from tsunagu import tokens
from tsunagu.protocol import ErrorCode, ProtocolError, now_ms
from tsunagu.settings import SignalingSettings
from tsunagu.store import RedisClient

log = logging.getLogger(__name__)
MAX_RELAY_TRIES = 3
TRUSTED_REFRESH_S = 2.0  # the relays' heartbeat interval
_PICK_ERRORS = {"not_found": ErrorCode.NOT_FOUND, "forbidden": ErrorCode.FORBIDDEN,
                "conflict": ErrorCode.CONFLICT, "unavailable": ErrorCode.UNAVAILABLE}
_PICK_MESSAGES = {"not_found": "no such call", "forbidden": "this call is not yours",
                  "conflict": "the call is not connected",
                  "unavailable": "no media relay can take this call now"}


@dataclass(frozen=True, slots=True)
class RelayAnswer:
    """A relay's answer to a party's offer; ``moved``: the call changed relay, so ``other``
    (the other party's client id) must offer again."""

    sdp: str
    moved: bool
    other: str


def ice_servers_for(settings: SignalingSettings, call_id: str) -> list[dict[str, Any]]:
    """The configured STUN/TURN servers, TURN ones with per-call REST credentials."""
    out: list[dict[str, Any]] = []
    expiry = int(time.time()) + settings.turn_ttl_s
    for server in settings.ice_servers:
        entry = dict(server)
        urls = entry["urls"] if isinstance(entry["urls"], list) else [entry["urls"]]
        is_turn = any(str(u).startswith(("turn:", "turns:")) for u in urls)
        if is_turn and settings.turn_secret and "credential" not in entry:
            username = f"{expiry}:{call_id}"
            digest = hmac.new(settings.turn_secret.encode(), username.encode(), hashlib.sha1)
            entry["username"] = username
            entry["credential"] = base64.b64encode(digest.digest()).decode()
        out.append(entry)
    return out


class RelayPool:
    """Picks relays and forwards media offers to them."""

    def __init__(self, redis: RedisClient, settings: SignalingSettings, router: Router) -> None:
        self.redis = redis
        self.settings = settings
        self.keys = settings.keys
        self.router = router
        self.http: aiohttp.ClientSession | None = None
        self._trusted: list[str] = []
        self._trusted_at = -TRUSTED_REFRESH_S
        self._verified: dict[tuple[str, str, str], bool] = {}

    async def start(self) -> None:
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.close()

    def trusted(self, relay_id: str, relay: dict[str, str]) -> bool:
        """A relay signaling may post to: its control URL is on the allow-list
        (``TSUNAGU_RELAY_URLS``), or its registration carries the key only a holder of the
        secret can make. Anyone else who can write to Redis cannot redirect offers."""
        url = relay.get("url", "")
        if url and url.rstrip("/") in self.settings.relay_urls:
            return True
        ok = tokens.relay_registration_ok(self.settings.secret, relay_id, url,
                                          relay.get("key", ""))
        if not ok:
            log.warning("relay %s: registration without a valid key; ignored", relay_id)
        return ok

    async def trusted_ids(self, *, fresh: bool = False) -> list[str]:
        """The live relays this node may post to, read at most once per heartbeat interval
        (a registration's key is checked once per URL and key)."""
        loop_now = time.monotonic()
        if not fresh and loop_now - self._trusted_at < TRUSTED_REFRESH_S:
            return self._trusted
        alive_since = now_ms() - int(self.settings.relay_dead_s * 1000)
        ids = await self.redis.zrangebyscore(self.keys.relays, alive_since, "+inf")
        pipe = self.redis.pipeline(transaction=False)
        for rid in ids:
            pipe.hmget(self.keys.relay(rid), ["url", "key"])
        trusted = []
        for rid, (url, key) in zip(ids, await pipe.execute(), strict=True):
            seen = (rid, url or "", key or "")
            if seen not in self._verified:
                self._verified[seen] = self.trusted(rid, {"url": url or "", "key": key or ""})
            if self._verified[seen]:
                trusted.append(rid)
        if len(self._verified) > 1000:  # relays come and go: keep the check cache small
            self._verified = {k: v for k, v in self._verified.items() if k[0] in ids}
        self._trusted, self._trusted_at = trusted, loop_now
        return trusted

    async def offer(self, call_id: str, role: str, who: str, sdp: str,
                    modality_of: Callable[[str], str], rid: str | None) -> RelayAnswer:
        """Hand a party's offer to the call's relay (checked, chosen among the trusted live
        relays and claimed in one script: ``pick_relay``), moving on to another relay when
        one does not answer."""
        avoid, first, fresh = "", "", False
        for _ in range(MAX_RELAY_TRIES):
            allowed = await self.trusted_ids(fresh=fresh)
            out = await self.router.pick_relay(call_id, role, who, allowed, avoid=avoid)
            if out.err == "unavailable" and not fresh:
                fresh = True  # a relay that registered a moment ago: look again once
                continue
            if not out.ok:
                raise ProtocolError(_PICK_ERRORS.get(str(out.err), ErrorCode.INTERNAL),
                                    _PICK_MESSAGES.get(str(out.err), "internal error"), rid)
            relay = {"id": str(out.get("relay")), "url": str(out.get("url"))}
            first = first or str(out.get("was") or relay["id"])
            answer = await self._post(relay, call_id, role, sdp,
                                      modality_of(str(out.get("language", ""))))
            if answer is not None:
                moved = relay["id"] != first or bool(out.get("moved"))
                if moved:
                    log.info("call %s: relay %s -> %s", call_id, first or "-", relay["id"])
                return RelayAnswer(answer, moved, str(out.get("other")))
            avoid = relay["id"]
        raise ProtocolError(ErrorCode.UNAVAILABLE, "no media relay can take this call now", rid)

    async def _post(self, relay: dict[str, str], call_id: str, party: str, sdp: str,
                    modality: str) -> str | None:
        assert self.http is not None
        url = f"{relay['url'].rstrip('/')}/v1/calls/{call_id}/legs/{party}"
        token = tokens.mint_service_token(self.settings.secret, relay_id=relay["id"],
                                          call_id=call_id, party=party, method="POST")
        headers = {"Authorization": "Bearer " + token}
        try:
            async with self.http.post(url, json={"sdp": sdp, "language_modality": modality},
                                      headers=headers) as resp:
                if resp.status == 200:
                    body = await resp.json()
                    return str(body["sdp"])
                if resp.status == 400:
                    raise ProtocolError(ErrorCode.BAD_REQUEST, "the relay refused this offer")
                if resp.status == 409:  # a newer offer of this party, or the call ended
                    raise ProtocolError(ErrorCode.CONFLICT, "this offer was replaced")
                log.info("call %s: relay %s answered %s", call_id, relay["id"], resp.status)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("call %s: relay %s unreachable (%s)", call_id, relay["id"],
                        type(exc).__name__)
        return None

    async def close_call(self, call_id: str, relay_id: str | None) -> None:
        """Tell the call's relay to drop both legs (best effort)."""
        if not relay_id or self.http is None:
            return
        relay = await self.redis.hgetall(self.keys.relay(relay_id))
        url = relay.get("url") if relay else None
        if not url or not self.trusted(relay_id, relay):
            return
        token = tokens.mint_service_token(self.settings.secret, relay_id=relay_id,
                                          call_id=call_id, party="*", method="DELETE")
        headers = {"Authorization": "Bearer " + token}
        try:
            async with self.http.delete(f"{url.rstrip('/')}/v1/calls/{call_id}",
                                        headers=headers) as resp:
                await resp.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("call %s: relay %s close failed (%s)", call_id, relay_id,
                        type(exc).__name__)


