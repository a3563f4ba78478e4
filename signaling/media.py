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
from typing import Any

import aiohttp

from tsunagu import tokens
from tsunagu.protocol import ErrorCode, ProtocolError, now_ms
from tsunagu.settings import SignalingSettings
from tsunagu.store import RedisClient

log = logging.getLogger(__name__)


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


_CLAIM = """
local now = redis.call('HGET', KEYS[1], 'relay') or ''
if now == ARGV[1] and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'relay', ARGV[2])
  return ARGV[2]
end
return now
"""


class RelayPool:
    """Picks relays and forwards media offers to them."""

    def __init__(self, redis: RedisClient, settings: SignalingSettings) -> None:
        self.redis = redis
        self.settings = settings
        self.keys = settings.keys
        self.http: aiohttp.ClientSession | None = None
        self._cas = redis.register_script(_CLAIM)

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

    async def live_relays(self) -> list[dict[str, str]]:
        """Live relays, least loaded first (by share of capacity used, then CPU)."""
        alive_since = now_ms() - int(self.settings.relay_dead_s * 1000)
        ids = await self.redis.zrangebyscore(self.keys.relays, alive_since, "+inf")
        pipe = self.redis.pipeline(transaction=False)
        for rid in ids:
            pipe.hgetall(self.keys.relay(rid))
        rows = [dict(r, id=rid) for rid, r in zip(ids, await pipe.execute(), strict=True)
                if r and self.trusted(rid, r)]

        def load(r: dict[str, str]) -> tuple[float, float]:
            cap = max(1, int(r.get("capacity", "1")))
            return int(r.get("calls", "0")) / cap, float(r.get("cpu", "0"))

        return sorted(rows, key=load)

    async def offer(self, call_id: str, party: str, sdp: str, modality: str,
                    rid: str | None) -> tuple[str, bool]:
        """Hand a party's offer to the call's relay, choosing one if it has none or its relay
        is gone; return the answer and whether the call moved to another relay (then the
        other party must offer again). Both legs of a call always share one relay: the
        choice is a compare-and-set on the call's ``relay`` field."""
        live = {r["id"]: r for r in await self.live_relays()}
        current = await self.redis.hget(self.keys.call(call_id), "relay") or ""
        if current in live:
            answer = await self._post(live[current], call_id, party, sdp, modality)
            if answer is not None:
                return answer, False
        was = current
        for relay in live.values():
            if relay["id"] == was or int(relay.get("calls", "0")) >= int(
                    relay.get("capacity", "0")):
                continue
            holder = await self._claim(call_id, expected=current, relay_id=relay["id"])
            if holder != relay["id"]:  # the other party chose first: join its relay
                if holder in live:
                    answer = await self._post(live[holder], call_id, party, sdp, modality)
                    if answer is not None:
                        return answer, False
                break
            current = relay["id"]
            answer = await self._post(relay, call_id, party, sdp, modality)
            if answer is not None:
                log.info("call %s: relay %s -> %s", call_id, was or "-", relay["id"])
                return answer, bool(was)
        raise ProtocolError(ErrorCode.UNAVAILABLE, "no media relay can take this call now", rid)

    async def _claim(self, call_id: str, *, expected: str, relay_id: str) -> str:
        """Set the call's relay to ``relay_id`` if it is still ``expected``; the relay now."""
        return str(await self._cas(keys=[self.keys.call(call_id)], args=[expected, relay_id]))

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


