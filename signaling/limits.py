"""Flood limits per principal (kiosk id or username), counted in Redis across all of its
sockets and all nodes (PROTOCOL.md section 13).

- any messages: at most ``messages_per_s`` in a wall-clock second (a counter per second);
- ``call.request``: at most ``calls_per_minute`` per kiosk in any 60 s (a sliding window of
  at most that many timestamps);
- a principal whose messages are refused for the rate without a 2 s pause is *flooding*; once
  that has lasted ``flood_disconnect_s`` its sockets are closed with 4429, on whichever node.

Redis holds at most three small keys per principal, each with a TTL of 60 s or less, so a
flood grows memory by a bounded amount whatever its rate. A socket that has already gone
over the rate in the current second is refused without asking Redis again (its count can
only be higher across all sockets). When Redis cannot answer, messages are let through:
the requests themselves then get ``unavailable``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from tsunagu.protocol import now_ms
from tsunagu.redis_keys import Keys
from tsunagu.store import REDIS_ERRORS, RedisClient

log = logging.getLogger(__name__)

# KEYS[1] = this second's counter, KEYS[2] = the flood start; ARGV: now ms, limit.
# Returns {count, flood_ms}: flood_ms = how long the principal has been refused (-1 if not).
_MESSAGE = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], 2000) end
if n <= tonumber(ARGV[2]) then return {n, -1} end
local now = tonumber(ARGV[1])
local started = redis.call('GET', KEYS[2])
if started then
  redis.call('PEXPIRE', KEYS[2], 2000)
  return {n, now - tonumber(started)}
end
redis.call('SET', KEYS[2], now, 'PX', 2000)
return {n, 0}
"""

# KEYS[1] = the kiosk's window; ARGV: now ms, limit, a unique member. 1 = allowed.
_CALL = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60000)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], 60000)
return 1
"""


@dataclass(slots=True)
class Verdict:
    """``allowed``, else refused; ``disconnect`` when the flood has lasted too long."""

    allowed: bool
    disconnect: bool = False


class Limits:
    """The node's view of the flood limits; one per node, shared by its sockets."""

    def __init__(self, redis: RedisClient, keys: Keys, *, messages_per_s: int,
                 calls_per_minute: int, flood_disconnect_s: float) -> None:
        self.keys = keys
        self.messages_per_s = messages_per_s
        self.calls_per_minute = calls_per_minute
        self.flood_disconnect_ms = flood_disconnect_s * 1000
        self._message = redis.register_script(_MESSAGE)
        self._call = redis.register_script(_CALL)
        self._seq = 0

    async def message(self, client_id: str, counter: SocketCounter) -> Verdict:
        """Count one message of ``client_id`` arriving on a socket (``counter``)."""
        now = now_ms()
        second = now // 1000
        if counter.over(second):
            return self._refused(now - counter.flood_since_ms if counter.flood_since_ms else 0)
        try:
            _n, flood_ms = await self._message(
                keys=[self.keys.rate_messages(client_id, second), self.keys.rate_flood(client_id)],
                args=[now, self.messages_per_s])
        except REDIS_ERRORS as exc:
            log.debug("rate limit not counted (%s)", type(exc).__name__)
            return Verdict(True)
        flood_ms = int(flood_ms)
        if flood_ms < 0:
            counter.flood_since_ms = 0
            return Verdict(True)
        counter.refused_in(second, now - flood_ms)
        return self._refused(flood_ms)

    def _refused(self, flood_ms: float) -> Verdict:
        return Verdict(False, disconnect=flood_ms >= self.flood_disconnect_ms)

    async def call(self, kiosk_id: str) -> bool:
        """Count one call request of a kiosk; False if it is over its calls per minute."""
        self._seq += 1
        try:
            allowed = await self._call(keys=[self.keys.rate_calls(kiosk_id)],
                                       args=[now_ms(), self.calls_per_minute,
                                             f"{time.monotonic_ns()}:{self._seq}"])
        except REDIS_ERRORS as exc:
            log.debug("call limit not counted (%s)", type(exc).__name__)
            return True
        return bool(int(allowed))


@dataclass(slots=True)
class SocketCounter:
    """One socket's memory of the current second: once Redis refused it in this second, the
    rest of the second is refused locally (the principal's count can only be higher)."""

    refused_second: int = -1
    flood_since_ms: int = 0

    def over(self, second: int) -> bool:
        """True if this socket was already refused in ``second``."""
        return self.refused_second == second

    def refused_in(self, second: int, flood_since_ms: int) -> None:
        """Remember a refusal by Redis and when the principal's flood began."""
        self.refused_second = second
        self.flood_since_ms = flood_since_ms
