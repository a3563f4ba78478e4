"""The wait estimate on its own: the Erlang quantiles against a simulation and the textbook
sums, and the rules for what a waiting kiosk is told (issue 11 item 4)."""

from __future__ import annotations

import math
import random

from hypothesis import given
from hypothesis import strategies as st

from signaling.ledger import Ledger
from signaling.wait_estimate import (
    DEFAULT_ANSWER_S,
    answer_rate,
    erlang_cdf,
    erlang_quantile,
    estimate_wait,
    ring_allowance_s,
)


def test_erlang_cdf_matches_the_textbook_sum() -> None:
    # k = 1 is the exponential; k = 2 at t = 1/rate: 1 - 2/e.
    assert math.isclose(erlang_cdf(2.0, 1, 0.5), 1 - math.exp(-1.0))
    assert math.isclose(erlang_cdf(1.0, 2, 1.0), 1 - 2 / math.e)
    assert erlang_cdf(0.0, 3, 1.0) == 0.0


@given(k=st.integers(1, 60), rate=st.floats(0.001, 50), q=st.floats(0.01, 0.99))
def test_quantile_inverts_the_cdf(k: int, rate: float, q: float) -> None:
    t = erlang_quantile(q, k, rate)
    assert math.isclose(erlang_cdf(t, k, rate), q, abs_tol=1e-6)


def test_quantiles_cover_ninety_percent_of_simulated_waits() -> None:
    rng = random.Random(7)
    for k, rate in ((1, 0.01), (4, 0.05), (25, 2.0)):
        lo, hi = erlang_quantile(0.05, k, rate), erlang_quantile(0.95, k, rate)
        draws = [sum(rng.expovariate(rate) for _ in range(k)) for _ in range(4000)]
        inside = sum(lo <= d <= hi for d in draws) / len(draws)
        assert 0.88 <= inside <= 0.92, (k, rate, inside)


def test_an_interpreter_free_for_the_call_means_a_short_ring() -> None:
    est = estimate_wait(1, available=1, serving=1.0, handle_s=200, ring_s=20)
    assert (est.min_s, est.max_s, est.none_available) == (0, 20, False)


def test_nobody_serving_gives_no_estimate_and_says_so() -> None:
    est = estimate_wait(1, available=0, serving=0.0, handle_s=200, ring_s=20)
    assert est == type(est)(point_s=None, min_s=None, max_s=None, none_available=True)


def test_queued_behind_busy_interpreters() -> None:
    # Two interpreters of one language each, 200 s a call: the third in line waits for 3
    # of them to come free at 1 per 100 s: a mean of 300 s.
    est = estimate_wait(3, available=0, serving=2.0, handle_s=200, ring_s=20, answer_s=5)
    assert est.none_available and est.point_s == 300
    assert est.min_s == math.floor(erlang_quantile(0.05, 3, 0.01))
    assert est.max_s == math.ceil(erlang_quantile(0.95, 3, 0.01) + 5)
    assert est.min_s is not None and est.max_s is not None and est.min_s < 300 < est.max_s


def test_a_measured_rate_that_disagrees_widens_the_range() -> None:
    model = estimate_wait(5, available=0, serving=2.0, handle_s=100, ring_s=20, answer_s=0)
    slower = estimate_wait(5, available=0, serving=2.0, handle_s=100, ring_s=20, answer_s=0,
                           measured_rate=0.01)
    assert slower.min_s == model.min_s and slower.max_s is not None
    assert model.max_s is not None and slower.max_s > model.max_s


@given(position=st.integers(1, 100), available=st.integers(0, 10),
       serving=st.floats(0, 40), handle_s=st.floats(1, 3600),
       rate=st.none() | st.floats(0.0001, 10))
def test_a_range_is_always_ordered(position: int, available: int, serving: float,
                                   handle_s: float, rate: float | None) -> None:
    est = estimate_wait(position, available, serving, handle_s, ring_s=20, measured_rate=rate)
    if est.min_s is None:
        assert est.max_s is None and est.none_available
    else:
        assert est.max_s is not None and 0 <= est.min_s <= est.max_s
        assert est.none_available == (position > available)


def test_rates_and_rings_come_from_the_ledger() -> None:
    ledger = Ledger()
    t = 1_800_000_000_000
    for n in range(6):
        call = f"c{n}"
        ledger.fold(f"{t + n * 10_000}-0", {"ev": "enqueued", "call": call, "lang": "vi"})
        ledger.fold(f"{t + n * 10_000}-1", {"ev": "offered", "call": call, "interp": "a"})
        ledger.fold(f"{t + n * 10_000 + 2000}-0", {"ev": "answered", "call": call, "interp": "a"})
    answers = ledger.recent_answers["vi"]
    assert answers == [t + n * 10_000 + 2000 for n in range(6)]
    assert ledger.recent_rings_ms == [2000] * 6
    assert ring_allowance_s(ledger.recent_rings_ms) == 2.0
    assert ring_allowance_s([]) == DEFAULT_ANSWER_S
    rate = answer_rate(answers, answers[-1])
    assert rate is not None and math.isclose(rate, 6 / 50)
    assert answer_rate(answers, answers[-1] + 600_000) is None  # too old to say
