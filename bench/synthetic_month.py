"""A month of synthetic finished calls with known rates, for the evaluation report.

    python -m bench.synthetic_month --month 2026-10 [--seed 7] [--redis-url URL]

Weekdays only, 09:00-17:00 local: in each hour each language gets a Poisson number of calls at
its known rate (``RATES``), uniform in the hour; each call's ward, counter and procedure are
drawn from fixed lists, its wait and talk time from exponentials with known means, its outcome
from known shares. Sign-language calls in 北区 wait four times longer than elsewhere, so that
ward's equal-access gap is large. A test-language call per kiosk each morning (which the report
must leave out), and each kiosk's availability and test results for the fleet section. With
``--redis-url`` the records go in through ``records.write_records``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from signaling.evaluation import Month
from signaling.fleet_rollup import add_availability, add_test_result
from signaling.ledger import CallRecord
from signaling.records import write_records
from tsunagu import store
from tsunagu.redis_keys import Keys

TZ = ZoneInfo("Asia/Tokyo")
HOURS = range(9, 17)
# Calls per hour by language; jsl peaks before noon.
RATES: dict[str, dict[int, float]] = {
    "jsl": {h: 3.0 if h < 12 else 1.5 for h in HOURS},
    "en": dict.fromkeys(HOURS, 2.0),
    "zh": {h: 1.0 if h != 13 else 2.5 for h in HOURS},
    "vi": dict.fromkeys(HOURS, 0.5),
}
MODALITY = {"jsl": "sign", "en": "spoken", "zh": "spoken", "vi": "spoken"}
MEAN_WAIT_S = {"jsl": 20.0, "en": 12.0, "zh": 15.0, "vi": 25.0}
SLOW_SIGN_WARD = "北区"
MEAN_TALK_S = {"jsl": 420.0, "en": 300.0, "zh": 330.0, "vi": 360.0}
ANSWERED_SHARE, ABANDONED_SHARE = 0.85, 0.10  # the rest fail (nobody answered in time)
RATED_SHARE = 0.6
WARDS = {"北区": ["1", "2"], "中央区": ["1", "3"], "南区": ["1"]}
PROCEDURES = ["住民票", "国民健康保険", "子育て支援", "転入届"]
INTERPRETERS = 4  # per language


@dataclass(frozen=True, slots=True)
class Kiosk:
    kiosk: str
    ward: str
    counter: str


KIOSKS = [Kiosk(f"k-{w}-{c}", w, c) for w, cs in WARDS.items() for c in cs]


def poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method: count uniform draws until their product falls below e^-mean."""
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def weekdays(month: Month) -> list[date]:
    return [d for d in month.days() if d.weekday() < 5]


def ms_at(day: date, hour: int, seconds: float) -> int:
    start = datetime.combine(day, time(hour), TZ)
    return int(start.timestamp() * 1000 + seconds * 1000)


def generate(month: Month, seed: int = 7) -> list[CallRecord]:
    """The month's records (real calls and the morning test calls), in no particular order."""
    rng = random.Random(seed)
    out: list[CallRecord] = []
    n = 0
    for day in weekdays(month):
        for k in KIOSKS:
            n += 1
            at = ms_at(day, 8, 30 * 60)
            out.append(CallRecord(f"t{n}", language="test", kiosk=k.kiosk, ward=k.ward,
                                  counter=k.counter, enqueued_ms=at, answered_ms=at + 2000,
                                  exit_ms=at + 2000, exit_outcome="answered",
                                  ended_ms=at + 20_000, talk_ms=18_000, outcome="answered",
                                  reason="hangup", interpreter="bot", modality="test"))
        for hour in HOURS:
            for lang, rates in RATES.items():
                for _ in range(poisson(rng, rates[hour])):
                    n += 1
                    out.append(_call(rng, f"c{n}", lang, ms_at(day, hour, rng.uniform(0, 3600))))
    return out


def _call(rng: random.Random, call_id: str, lang: str, enqueued: int) -> CallRecord:
    k = rng.choice(KIOSKS)
    mean_wait = MEAN_WAIT_S[lang] * (4 if lang == "jsl" and k.ward == SLOW_SIGN_WARD else 1)
    wait_ms = int(rng.expovariate(1 / mean_wait) * 1000)
    draw = rng.random()
    r = CallRecord(call_id, language=lang, ward=k.ward, counter=k.counter, kiosk=k.kiosk,
                   modality=MODALITY[lang], procedure=rng.choice(PROCEDURES),
                   priority="normal", enqueued_ms=enqueued, exit_ms=enqueued + wait_ms)
    if draw < ANSWERED_SHARE:
        r.exit_outcome = r.outcome = "answered"
        r.answered_ms = r.exit_ms
        r.talk_ms = int(rng.expovariate(1 / MEAN_TALK_S[lang]) * 1000) + 1000
        r.ended_ms = r.answered_ms + r.talk_ms
        r.reason = "hangup"
        r.interpreter = f"{lang}-{rng.randrange(INTERPRETERS)}"
        if rng.random() < RATED_SHARE:
            r.rating = rng.choices([1, 2, 3, 4, 5], weights=[1, 1, 2, 4, 6])[0]
    elif draw < ANSWERED_SHARE + ABANDONED_SHARE:
        r.exit_outcome = r.outcome = "abandoned"
        r.reason, r.ended_ms = "cancelled", r.exit_ms
    else:
        r.exit_outcome = r.outcome = "failed"
        r.reason, r.ended_ms = "no_interpreter", r.exit_ms
    return r


def fleet_days(month: Month, seed: int = 7) -> list[tuple[date, Kiosk, int, int, bool]]:
    """Each kiosk's weekdays: (day, kiosk, open seconds, connected seconds, test passed).
    Opening hours 08:45-17:30 (31,500 s); 南区's kiosk misses the odd morning and test."""
    rng = random.Random(seed + 1)
    out = []
    for day in weekdays(month):
        for k in KIOSKS:
            flaky = k.ward == "南区" and rng.random() < 0.3
            up = 31_500 - (rng.randrange(1800, 7200) if flaky else 0)
            out.append((day, k, 31_500, up, not flaky))
    return out


async def write_month(redis: store.RedisClient, keys: Keys, month: Month,
                      seed: int = 7) -> list[CallRecord]:
    """Generate the month and store its records and fleet rollup; the records."""
    records = generate(month, seed)
    await write_records(redis, keys, records)
    for day, k, open_s, up_s, passed in fleet_days(month, seed):
        await add_availability(redis, keys, day, k.kiosk, open_s=open_s, up_s=up_s)
        await add_test_result(redis, keys, day, k.kiosk, passed=passed)
    for k in KIOSKS:
        await redis.hset(keys.kiosk(k.kiosk), mapping={"ward": k.ward, "counter": k.counter})
    return records


async def _main(args: argparse.Namespace) -> None:
    redis = store.connect(args.redis_url)
    try:
        month = Month.parse(args.month, tz=TZ)
        records = await write_month(redis, Keys(), month, args.seed)
        print(f"{len(records)} records written for {month.label}")
    finally:
        await redis.aclose()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--month", default="2026-10")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--redis-url", required=True)
    asyncio.run(_main(p.parse_args()))
