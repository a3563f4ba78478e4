"""Prometheus text exposition of a node's counters (no client library needed)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 250, 1000)


@dataclass
class Metrics:
    """Counters and one latency histogram per routing transition."""

    messages: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    transitions: dict[str, list[int]] = field(default_factory=dict)
    transition_sum_ms: dict[str, float] = field(default_factory=dict)
    reads: Counter[str] = field(default_factory=Counter)  # background Redis reads, by kind

    def observe(self, name: str, ms: float) -> None:
        counts = self.transitions.setdefault(name, [0] * (len(BUCKETS_MS) + 1))
        for i, bound in enumerate(BUCKETS_MS):
            if ms <= bound:
                counts[i] += 1
        counts[-1] += 1
        self.transition_sum_ms[name] = self.transition_sum_ms.get(name, 0.0) + ms

    def render(self, gauges: dict[str, float]) -> str:
        lines = []
        for name, value in sorted(gauges.items()):
            lines += [f"# TYPE tsunagu_{name} gauge", f"tsunagu_{name} {value}"]
        lines.append("# TYPE tsunagu_messages_total counter")
        lines += [f'tsunagu_messages_total{{type="{t}"}} {n}' for t, n in
                  sorted(self.messages.items())]
        lines.append("# TYPE tsunagu_errors_total counter")
        lines += [f'tsunagu_errors_total{{code="{c}"}} {n}' for c, n in sorted(self.errors.items())]
        lines.append("# TYPE tsunagu_reads_total counter")
        lines += [f'tsunagu_reads_total{{kind="{k}"}} {n}' for k, n in sorted(self.reads.items())]
        lines.append("# TYPE tsunagu_transition_ms histogram")
        for name, counts in sorted(self.transitions.items()):
            for bound, n in zip(BUCKETS_MS, counts, strict=False):
                lines.append(f'tsunagu_transition_ms_bucket{{name="{name}",le="{bound}"}} {n}')
            lines.append(f'tsunagu_transition_ms_bucket{{name="{name}",le="+Inf"}} {counts[-1]}')
            lines.append(f'tsunagu_transition_ms_count{{name="{name}"}} {counts[-1]}')
            lines.append(f'tsunagu_transition_ms_sum{{name="{name}"}} '
                         f'{self.transition_sum_ms[name]:.3f}')
        return "\n".join(lines) + "\n"
