"""Login throttle (PROTOCOL.md section 13): failures counted per username and per client
address across every node, in Redis; past the limit every attempt gets 429 with a
``Retry-After`` that doubles per further failure, up to 15 minutes."""

from __future__ import annotations

import math
from dataclasses import dataclass

from tsunagu.protocol import now_ms
from tsunagu.settings import SignalingSettings
from tsunagu.store import RedisClient

BASE_BACKOFF_S = 30.0

# KEYS: the subjects' hashes. ARGV: now_ms. Returns the longest wait in ms (0: not blocked).
_CHECK = """
local wait = 0
for i, key in ipairs(KEYS) do
  local untl = tonumber(redis.call('HGET', key, 'until') or '0')
  if untl - tonumber(ARGV[1]) > wait then wait = untl - tonumber(ARGV[1]) end
end
return wait
"""

# KEYS: the subjects' hashes. ARGV: now_ms, window_ms, base_ms, max_ms, then one limit per key.
# Records one failure for each; returns the longest wait it causes in ms.
_FAIL = """
local now, window, base, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4])
local wait = 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[4 + i])
  local first = tonumber(redis.call('HGET', key, 'first') or '0')
  local untl = tonumber(redis.call('HGET', key, 'until') or '0')
  local n = tonumber(redis.call('HGET', key, 'n') or '0')
  if now - first > window and now >= untl then
    n = 0
    first = now
  end
  n = n + 1
  if n >= limit then
    local w = math.min(base * 2 ^ (n - limit), cap)
    untl = now + w
    if w > wait then wait = w end
  end
  redis.call('HSET', key, 'n', n, 'first', first, 'until', untl)
  redis.call('PEXPIRE', key, math.max(window, untl - now) + 1000)
end
return wait
"""


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether an attempt may go on; else the seconds to say in ``Retry-After``."""

    retry_after_s: int = 0

    @property
    def blocked(self) -> bool:
        return self.retry_after_s > 0


class LoginThrottle:
    """Failed logins per username and per client address, shared by every node."""

    def __init__(self, redis: RedisClient, settings: SignalingSettings) -> None:
        self.settings = settings
        self._check = redis.register_script(_CHECK)
        self._fail = redis.register_script(_FAIL)

    def _keys(self, username: str, address: str) -> list[str]:
        k = self.settings.keys
        return [k.login_failures("user", username), k.login_failures("addr", address)]

    async def check(self, username: str, address: str) -> Verdict:
        """Blocked (with its wait) or free to try; nothing is recorded."""
        wait_ms = int(await self._check(keys=self._keys(username, address), args=[now_ms()]))
        return Verdict(math.ceil(wait_ms / 1000) if wait_ms > 0 else 0)

    async def failed(self, username: str, address: str) -> Verdict:
        """Record a failure (a wrong password, or an attempt while blocked)."""
        s = self.settings
        wait_ms = int(await self._fail(
            keys=self._keys(username, address),
            args=[now_ms(), int(s.login_window_s * 1000), int(BASE_BACKOFF_S * 1000),
                  int(s.login_backoff_max_s * 1000), s.login_failures_per_user,
                  s.login_failures_per_address]))
        return Verdict(math.ceil(wait_ms / 1000) if wait_ms > 0 else 0)
