"""Erlang C against the textbook: the factorial formula written out here, and a published
worked example."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from signaling import erlang


def textbook_p_wait(n: int, a: float) -> float:
    """P_wait = (A^N/N! * N/(N-A)) / (sum_{k<N} A^k/k! + A^N/N! * N/(N-A)), exactly."""
    fa = Fraction(a)
    top = fa ** n / math.factorial(n) * Fraction(n) / (n - fa)
    below = sum(fa ** k / math.factorial(k) for k in range(n)) + top
    return float(top / below)


def textbook_needed(a: float, t: float, aht: float, goal: float) -> int:
    n = math.ceil(a) if a != math.ceil(a) else int(a) + 1
    while 1 - textbook_p_wait(n, a) * math.exp(-(n - a) * t / aht) < goal:
        n += 1
    return n


@pytest.mark.parametrize(("n", "a"), [(1, 0.5), (2, 1.2), (11, 10.0), (14, 10.0), (30, 24.7),
                                      (60, 48.0)])
def test_p_wait_equals_the_factorial_formula(n: int, a: float) -> None:
    assert erlang.p_wait(n, a) == pytest.approx(textbook_p_wait(n, a), rel=1e-9)


def test_the_call_centre_helper_worked_example() -> None:
    # Call Centre Helper, "Erlang C Formula - Made Simple With an Easy Worked Example":
    # 100 calls per 30 min, AHT 180 s -> A = 10 Erlangs; target 80 % answered in 20 s.
    # Published: 11 agents wait with probability 68.21 % (service level 39.0 %);
    # 14 agents reach a service level of 88.84 %, the first count above 80 %.
    a = 200 * 180 / 3600
    assert a == 10
    assert erlang.p_wait(11, a) == pytest.approx(0.6821, abs=5e-5)
    assert erlang.service_level(11, a, 20, 180) == pytest.approx(0.390, abs=5e-4)
    assert erlang.service_level(13, a, 20, 180) < 0.80
    assert erlang.service_level(14, a, 20, 180) == pytest.approx(0.8884, abs=5e-5)
    assert erlang.agents_needed(a, 20, 180, 0.80) == 14


def test_erlang_b_matches_the_table() -> None:
    # Erlang B tables: 10 circuits carry 5.08 Erlangs at 2 % blocking.
    assert erlang.erlang_b(10, 5.084) == pytest.approx(0.02, abs=2e-4)


@pytest.mark.parametrize(("a", "t", "aht", "goal"), [
    (0.05, 30, 400, 0.8), (0.3, 30, 413.5, 0.8), (2.7, 30, 300, 0.8), (10, 20, 180, 0.9),
    (25.3, 15, 240, 0.8), (4.0, 30, 360, 0.95)])
def test_agents_needed_is_the_smallest_count_meeting_the_goal(a: float, t: float, aht: float,
                                                              goal: float) -> None:
    n = erlang.agents_needed(a, t, aht, goal)
    assert n == textbook_needed(a, t, aht, goal)
    assert n > a
    assert erlang.service_level(n, a, t, aht) >= goal
    if n - 1 > a:
        assert erlang.service_level(n - 1, a, t, aht) < goal


def test_no_traffic_needs_nobody_and_an_overloaded_queue_never_meets_a_target() -> None:
    assert erlang.agents_needed(0.0, 30, 300, 0.8) == 0
    assert erlang.p_wait(3, 3.0) == 1.0
    assert erlang.service_level(3, 3.5, 30, 300) == 0.0
