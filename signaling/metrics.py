"""Prometheus text exposition of a node's counters (no client library needed)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

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


def label_value(value: str) -> str:
    """A label value escaped for the text format (backslash, double quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_fleet(entries: Iterable[Mapping[str, Any]]) -> str:
    """``tsunagu_kiosks{status}`` (every status, 0 included) and ``tsunagu_kiosk_test_ok{kiosk}``
    (1 passed, 0 failed; only kiosks with a last test), from the fleet list (section 14)."""
    entries = list(entries)
    counts = dict.fromkeys(("green", "amber", "red"), 0)
    for e in entries:
        counts[e["status"]] = counts.get(e["status"], 0) + 1
    lines = ["# HELP tsunagu_kiosks Kiosks by fleet status.", "# TYPE tsunagu_kiosks gauge"]
    lines += [f'tsunagu_kiosks{{status="{s}"}} {n}' for s, n in counts.items()]
    lines += ["# HELP tsunagu_kiosk_test_ok Whether the kiosk's last test call passed.",
              "# TYPE tsunagu_kiosk_test_ok gauge"]
    for e in sorted(entries, key=lambda e: str(e["kiosk_id"])):
        test = e.get("last_test")
        if isinstance(test, Mapping) and isinstance(test.get("ok"), bool):
            lines.append(f'tsunagu_kiosk_test_ok{{kiosk="{label_value(str(e["kiosk_id"]))}"}} '
                         f'{1 if test["ok"] else 0}')
    return "\n".join(lines) + "\n"
