"""Each kiosk's day, rolled up for the monthly report: availability and test calls.

The fleet check (every report interval, during opening hours) adds the seconds it covered and
whether the kiosk was connected; the test-call scheduler adds each test call's result. Both go
into one hash per local day (``Keys.fleet_day``) with HINCRBY, so several nodes may add and
nothing is read back before writing. The report sums a month of days.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from tsunagu.redis_keys import Keys
from tsunagu.store import RedisClient

FIELDS = ("open_s", "up_s", "tests", "passed")


@dataclass(slots=True)
class KioskMonth:
    """One kiosk's sums over the days read."""

    kiosk: str
    open_s: int = 0
    up_s: int = 0
    tests: int = 0
    passed: int = 0
    ward: str = ""
    counter: str = ""

    @property
    def availability_pct(self) -> float | None:
        return round(100 * self.up_s / self.open_s, 1) if self.open_s else None

    @property
    def pass_rate_pct(self) -> float | None:
        return round(100 * self.passed / self.tests, 1) if self.tests else None


async def add_availability(redis: RedisClient, keys: Keys, day: date, kiosk: str, *,
                           open_s: int, up_s: int) -> None:
    """``open_s`` seconds of the kiosk's opening hours on ``day`` were checked; it was
    connected for ``up_s`` of them."""
    pipe = redis.pipeline(transaction=False)
    pipe.hincrby(keys.fleet_day(day.isoformat()), f"{kiosk}|open_s", int(open_s))
    pipe.hincrby(keys.fleet_day(day.isoformat()), f"{kiosk}|up_s", int(up_s))
    await pipe.execute()


async def add_test_result(redis: RedisClient, keys: Keys, day: date, kiosk: str, *,
                          passed: bool) -> None:
    """One test call of the kiosk on ``day`` ended, passed or not."""
    pipe = redis.pipeline(transaction=False)
    pipe.hincrby(keys.fleet_day(day.isoformat()), f"{kiosk}|tests", 1)
    pipe.hincrby(keys.fleet_day(day.isoformat()), f"{kiosk}|passed", 1 if passed else 0)
    await pipe.execute()


def fold(days: Iterable[dict[str, str]]) -> dict[str, KioskMonth]:
    """Sum day hashes into one entry per kiosk (unknown fields are ignored)."""
    out: dict[str, KioskMonth] = {}
    for fields in days:
        for name, value in fields.items():
            kiosk, _, what = name.rpartition("|")
            if not kiosk or what not in FIELDS:
                continue
            entry = out.setdefault(kiosk, KioskMonth(kiosk))
            setattr(entry, what, getattr(entry, what) + int(value))
    return out


async def load_fleet(redis: RedisClient, keys: Keys, days: Iterable[date]
                     ) -> list[KioskMonth]:
    """The kiosks' sums over ``days``, with each kiosk's ward and counter; by ward, counter."""
    pipe = redis.pipeline(transaction=False)
    for day in days:
        pipe.hgetall(keys.fleet_day(day.isoformat()))
    kiosks = fold(await pipe.execute())
    if not kiosks:
        return []
    pipe = redis.pipeline(transaction=False)
    for kiosk in kiosks:
        pipe.hmget(keys.kiosk(kiosk), ["ward", "counter"])
    for entry, (ward, counter) in zip(kiosks.values(), await pipe.execute(), strict=True):
        entry.ward, entry.counter = ward or "", counter or ""
    return sorted(kiosks.values(), key=lambda k: (k.ward, k.counter, k.kiosk))
