"""Erlang C: how many interpreters a language needs for its service-level target. Pure.

The model (M/M/N): calls arrive as a Poisson stream, handling times are exponential, nobody
hangs up while waiting, and the N interpreters of a language serve only that language. With
traffic ``A = arrival rate x mean handling time`` (Erlangs) and ``N > A`` interpreters:

    P_wait = (A^N / N! * N / (N - A)) / (sum_{k<N} A^k / k! + A^N / N! * N / (N - A))
    SL(T)  = 1 - P_wait * exp(-(N - A) * T / AHT)

``SL(T)`` is the share of calls answered within ``T`` seconds. The factorials overflow for a
few hundred agents, so ``P_wait`` is computed through the Erlang B recursion
``B(0) = 1, B(k) = A B(k-1) / (k + A B(k-1))`` and ``C = N B / (N - A (1 - B))``, which is the
same number (tests/signaling/test_erlang.py checks it against the factorial form).
"""

from __future__ import annotations

import math

ASSUMPTIONS_JA = ("到着はポアソン分布、対応時間は指数分布、待っている間に切る人はいない、"
                  "通訳者は言語ごとに専任と仮定 (Erlang C)")
ASSUMPTIONS_EN = ("Assumes Poisson arrivals, exponential handling times, no abandonment, "
                  "interpreters dedicated per language (Erlang C).")
MAX_EXTRA_AGENTS = 10_000


def erlang_b(agents: int, erlangs: float) -> float:
    """The probability that a call finds all ``agents`` busy in a loss system (Erlang B)."""
    b = 1.0
    for k in range(1, agents + 1):
        b = erlangs * b / (k + erlangs * b)
    return b


def p_wait(agents: int, erlangs: float) -> float:
    """Erlang C: the probability that a call has to wait (1.0 when ``agents <= erlangs``)."""
    if agents <= erlangs:
        return 1.0
    b = erlang_b(agents, erlangs)
    return agents * b / (agents - erlangs * (1 - b))


def service_level(agents: int, erlangs: float, target_s: float, handle_s: float) -> float:
    """The share (0-1) of calls answered within ``target_s`` with ``agents`` interpreters."""
    if erlangs <= 0:
        return 1.0
    if agents <= erlangs:
        return 0.0
    return 1 - p_wait(agents, erlangs) * math.exp(-(agents - erlangs) * target_s / handle_s)


def agents_needed(erlangs: float, target_s: float, handle_s: float, goal: float) -> int:
    """The smallest number of interpreters, more than ``erlangs``, whose service level
    reaches ``goal`` (0-1); 0 when there is no traffic."""
    if erlangs <= 0:
        return 0
    agents = math.floor(erlangs) + 1
    for _ in range(MAX_EXTRA_AGENTS):
        if service_level(agents, erlangs, target_s, handle_s) >= goal:
            return agents
        agents += 1
    raise ValueError(f"no staffing up to {agents} reaches {goal:.0%}")
