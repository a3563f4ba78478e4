"""What is kept, by age (PROTOCOL.md section 15): the events stream for
``TSUNAGU_EVENTS_RETENTION_DAYS``, finished-call records for ``TSUNAGU_RECORD_RETENTION_DAYS``.

Run by the node holding the sweep lease (signaling/sweeper.py), once a minute. The events'
count cap (``TSUNAGU_EVENTS_MAX_ENTRIES``) stays in the scripts' XADD as a safety only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from signaling.recorder import LOOKBACK
from signaling.records import day_score
from tsunagu.redis_keys import Keys
from tsunagu.store import RedisClient

log = logging.getLogger(__name__)
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """What is older than these goes."""

    events_min_id: str  # XTRIM MINID: events before this instant
    records_before_day: str  # record days (UTC) before this one


def cutoffs(now_ms: int, *, events_days: int, record_days: int) -> Cutoffs:
    """The limits at ``now_ms``: events older than ``events_days`` days; records of UTC days
    wholly older than ``record_days`` days (a day is kept while any call in it is young
    enough)."""
    oldest_day = datetime.fromtimestamp(now_ms / 1000, UTC).date() - timedelta(days=record_days)
    return Cutoffs(events_min_id=f"{now_ms - events_days * DAY_MS}-0",
                   records_before_day=oldest_day.isoformat())


def _ms(event_id: str) -> int:
    return int(event_id.partition("-")[0])


def events_floor(limits: Cutoffs, records_upto: str | None) -> str | None:
    """The MINID to trim the events to: their age limit, but never past what the record
    writers still need (the events after the records cursor, and a lookback before it for
    the starts of the calls that end after it). None (trim nothing by age) while no record
    has been written: a deployment upgraded to records keeps its events until they are."""
    if records_upto is None:
        return None
    needed = _ms(records_upto) - int(LOOKBACK.total_seconds() * 1000)
    return limits.events_min_id if _ms(limits.events_min_id) <= needed else f"{needed}-0"


async def apply(redis: RedisClient, keys: Keys, limits: Cutoffs) -> tuple[int, int]:
    """Trim the events and delete old record days; (events trimmed, record days deleted)."""
    floor = events_floor(limits, await redis.get(keys.records_upto))
    # Exact, not '~': the stream is trimmed once a minute, and an exact MINID is cheap there.
    trimmed: int = 0 if floor is None else await redis.xtrim(keys.events, minid=floor,
                                                             approximate=False)
    old = await redis.zrangebyscore(keys.record_days, "-inf",
                                    f"({day_score(limits.records_before_day)}")
    if old:
        await redis.delete(*(keys.records(day) for day in old))
        await redis.zrem(keys.record_days, *old)
        log.info("records: %d days older than %s deleted", len(old), limits.records_before_day)
    return trimmed, len(old)
