"""Writes a finished-call record for every real call that ends (PROTOCOL.md section 15).

Every signaling node's stats follower folds every event into its ledger; when it folds
``ended`` events it hands them here, and the calls' records are written (``HSETNX``: every
node may write the same record, the first wins). ``Keys.records_upto`` then says up to which
event every end has its record, so a node that starts after all were down backfills from
there: nothing is lost while no node runs, as long as the events are kept (35 days by
default). A rating that came before its record (``rate.lua`` left it pending) is merged in.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta

from signaling.ledger import CallRecord, Ledger
from signaling.records import utc_day, write_records
from tsunagu.languages import TEST_LANGUAGE, Language
from tsunagu.redis_keys import Keys
from tsunagu.store import RedisClient

log = logging.getLogger(__name__)

# Events are folded from this long before the cursor, so a call that ended after it has its
# start (a call waits 30 minutes at most, and few talk for a day).
LOOKBACK = timedelta(days=2)
PAGE = 5000
# With no end in a batch the cursor moves at most this often: a cursor a little behind only
# makes a starting node fold a few more events, and a busy node saves a script per batch.
ADVANCE_EVERY_S = 5.0
Entries = Sequence[tuple[str, Mapping[str, str]]]

# KEYS[1] = records_upto, ARGV[1] = an event id: the cursor only moves forward.
_ADVANCE = """
local cur = redis.call('GET', KEYS[1])
local function parts(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
if cur then
  local cm, cs = parts(cur)
  local nm, ns = parts(ARGV[1])
  if nm < cm or (nm == cm and ns <= cs) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""

# KEYS = (rating_pending, records hash) per call, ARGV = the call ids: a score that came before
# the record goes into it (unless the record has one), and the pending key goes.
_MERGE_RATINGS = """
local merged = 0
for i, call_id in ipairs(ARGV) do
  local pending_key, records_key = KEYS[2 * i - 1], KEYS[2 * i]
  local score = redis.call('GET', pending_key)
  local stored = score and redis.call('HGET', records_key, call_id)
  if stored then
    local record = cjson.decode(stored)
    if record.rating == nil then
      record.rating = tonumber(score)
      redis.call('HSET', records_key, call_id, cjson.encode(record))
      merged = merged + 1
    end
    redis.call('DEL', pending_key)
  end
end
return merged
"""


def recordable(record: CallRecord) -> bool:
    """A finished real call (the daily test call is never recorded)."""
    return record.ended_ms is not None and record.language != TEST_LANGUAGE


def ended_calls(entries: Iterable[tuple[str, Mapping[str, str]]]) -> list[str]:
    """The call ids of the ``ended`` events among ``entries``, in order."""
    return [f["call"] for _id, f in entries if f.get("ev") == "ended" and f.get("call")]


def event_ms(event_id: str) -> int:
    return int(event_id.partition("-")[0])


class Recorder:
    """Writes the records of the calls a ledger saw end, and keeps the cursor."""

    def __init__(self, redis: RedisClient, keys: Keys,
                 catalogue: Iterable[Language]) -> None:
        self.redis = redis
        self.keys = keys
        self.modality = {lang.code: lang.modality for lang in catalogue}
        self._advance = redis.register_script(_ADVANCE)
        self._merge = redis.register_script(_MERGE_RATINGS)
        self._advanced_at = -ADVANCE_EVERY_S

    async def record(self, ledger: Ledger, entries: Entries, *, force: bool = False) -> int:
        """Write the records of the calls that end in ``entries`` (already folded into
        ``ledger``), then move the cursor past them (when they held an end, or ``force``, or
        a while after the last move); how many records were new."""
        if not entries:
            return 0
        found = (ledger.records.get(call_id) for call_id in ended_calls(entries))
        done = [r for r in found if r is not None and recordable(r)]
        for r in done:
            r.modality = r.modality or self.modality.get(r.language, "")
        added = await write_records(self.redis, self.keys, done) if done else 0
        if done:
            await self.merge_ratings(done)
        now = time.monotonic()
        if done or force or now - self._advanced_at >= ADVANCE_EVERY_S:
            await self._advance(keys=[self.keys.records_upto], args=[entries[-1][0]])
            self._advanced_at = now
        return added

    async def merge_ratings(self, records: Sequence[CallRecord]) -> int:
        """Put ratings that came before their records into them."""
        keys: list[str] = []
        for r in records:
            assert r.ended_ms is not None
            keys += [self.keys.rating_pending(r.call_id), self.keys.records(utc_day(r.ended_ms))]
        merged: int = await self._merge(keys=keys, args=[r.call_id for r in records])
        return merged

    async def cursor(self) -> str | None:
        """The event up to which every end has its record (None: nothing recorded yet)."""
        value: str | None = await self.redis.get(self.keys.records_upto)
        return value

    async def backfill(self) -> int:
        """Record the ends after the cursor (from the stream's start when there is none yet:
        a deployment upgraded to records gets the calls its events still hold); how many
        records were new."""
        cursor = await self.cursor()
        start = "-" if cursor is None else str(
            max(0, event_ms(cursor) - int(LOOKBACK.total_seconds() * 1000)))
        ledger, added, pos = Ledger(), 0, start
        while True:
            batch = await self.redis.xrange(self.keys.events, min=pos, count=PAGE)
            if not batch:
                break
            ledger.fold_all(batch)
            added += await self.record(ledger, batch, force=True)
            # Written or skipped for good: keep only the calls still open in memory.
            ledger.records = {k: r for k, r in ledger.records.items() if r.ended_ms is None}
            if len(batch) < PAGE:
                break
            pos = "(" + batch[-1][0]
        if added:
            log.info("records: %d written from the events after %s", added, cursor or "start")
        return added
