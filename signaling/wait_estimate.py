"""The wait a kiosk is shown while its call is queued: an honest range, pure (no I/O).

A call at ``position`` with ``available`` interpreters free is offered now when
``position <= available``: the wait left is the ring, at most the offer timeout. Otherwise
``k = position - available`` interpreters must come free first. Each interpreter serving the
language (busy, ringing or in wrap-up, not going away) comes free at rate ``share / handle_s``
(``share``: their part of the queue, 1 / the number of their languages), so with exponential
handling times the wait is an Erlang (gamma) variable of shape ``k`` and rate
``sum(share) / handle_s``. Where the language's answers of the last minutes give a measured
rate too, the range runs from the faster rate's 5th percentile to the slower's 95th: when model
and measurement disagree the range widens rather than lying. Nobody serving the language:
no estimate at all (``none_available`` and no range).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LOW_Q, HIGH_Q = 0.05, 0.95
# Allowance for the ring itself (an interpreter who comes free answers within seconds) when
# no answers have been seen yet to measure it.
DEFAULT_ANSWER_S = 10.0
MIN_RATE_SAMPLES = 5


@dataclass(frozen=True, slots=True)
class WaitEstimate:
    """What ``call.queued``/``call.position`` carry about the wait."""

    point_s: int | None  # ``estimated_wait_s``: the mean, whole seconds
    min_s: int | None  # ``estimated_wait_min_s``
    max_s: int | None  # ``estimated_wait_max_s``
    none_available: bool  # no interpreter is free for this call now


def erlang_cdf(t: float, k: int, rate: float) -> float:
    """P(T <= t) for the sum of ``k`` exponential times of ``rate``."""
    if t <= 0:
        return 0.0
    x = rate * t
    term = total = math.exp(-x)
    for i in range(1, k):
        term *= x / i
        total += term
    return max(0.0, 1.0 - total)


def erlang_quantile(q: float, k: int, rate: float) -> float:
    """The ``q`` quantile of an Erlang(k, rate) time (bisection on the CDF)."""
    lo, hi = 0.0, max(1.0, 4 * k / rate)
    while erlang_cdf(hi, k, rate) < q:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        if erlang_cdf(mid, k, rate) < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def estimate_wait(position: int, available: int, serving: float, handle_s: float, *,
                  ring_s: float, measured_rate: float | None = None,
                  answer_s: float = DEFAULT_ANSWER_S) -> WaitEstimate:
    """The estimate for a call at ``position`` (1 = next) of its language's queue.

    ``serving``: the summed shares of the interpreters who will come free for the language;
    ``handle_s``: mean talk plus wrap-up; ``ring_s``: how long an offer may ring;
    ``measured_rate``: the language's recent answers per second, if enough were seen;
    ``answer_s``: how long recent offers rang before the answer (a high percentile)."""
    if position <= available:
        return WaitEstimate(point_s=min(5, int(ring_s)), min_s=0, max_s=math.ceil(ring_s),
                            none_available=False)
    if serving < 0.001 or handle_s <= 0:  # shares come in thousandths
        return WaitEstimate(point_s=None, min_s=None, max_s=None, none_available=True)
    k = position - available
    rates = [serving / handle_s]
    if measured_rate is not None and measured_rate > 0:
        rates.append(measured_rate)
    fast, slow = max(rates), min(rates)
    low = erlang_quantile(LOW_Q, k, fast)
    high = erlang_quantile(HIGH_Q, k, slow) + answer_s
    mean = k / math.sqrt(fast * slow)  # between the two rates' means
    return WaitEstimate(point_s=round(mean), min_s=math.floor(low), max_s=math.ceil(high),
                        none_available=True)


def answer_rate(answers_ms: list[int], now_ms: int, window_ms: int = 120_000) -> float | None:
    """Answers per second over the recent answers of a language (oldest first), or None when
    too few fell in the last ``window_ms`` to say."""
    recent = [t for t in answers_ms if now_ms - t <= window_ms]
    if len(recent) < MIN_RATE_SAMPLES:
        return None
    span = max(now_ms - recent[0], 1)
    return len(recent) / (span / 1000)


def ring_allowance_s(rings_ms: list[int]) -> float:
    """How long an offer rings before it is answered: the 90th percentile of recent rings (the
    default when none were seen)."""
    if len(rings_ms) < MIN_RATE_SAMPLES:
        return DEFAULT_ANSWER_S
    ordered = sorted(rings_ms)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))] / 1000
