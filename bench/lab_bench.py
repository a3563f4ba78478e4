"""The city lab under real clients: call set-up time (tap to the first frame decoded on both
ends) from ward to home (NAT) and to strict (TURN over TLS), p50/p95 over N calls each; then
one live call through four failures (Redis primary, signaling on dc1, the serving relay
killed; home's link cut 10 s) with the media recovery time after each, under a steady load
of calls (Python kiosks in ward, answering bots in home, no media: tests/deploy/steady_load.py);
calls lost (set-up failed, the drill's call did not survive, a load call never ended) and
double-assigned (more than one live call in Redis after the drill, a load call connected to
two bots or a bot in two calls), and whether today's statistics count the load's calls as its
clients do. Prints one JSON line.

As root, inside a network namespace of its own (deploy/lab/up builds the lab in it):

    unshare -n sh -c 'ip link set lo up && .venv/bin/python -m bench.lab_bench --calls 20'
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, sync_playwright

from tests.deploy import calls
from tests.deploy.lab import LAB, Lab, read_env_file

log = logging.getLogger("lab_bench")
TARGETS = (("home", "alice", "jsl"), ("strict", "carol", "en"))


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50 and p95 (nearest rank) of ``values``, in seconds rounded to 10 ms."""
    if not values:
        return {"p50": None, "p95": None, "n": 0}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * len(ordered) + 0.5) - 1)]
    return {"p50": round(statistics.median(ordered), 2), "p95": round(p95, 2),
            "n": len(ordered)}


def setup_times(lab: Lab, browsers: dict[str, Browser], n: int) -> tuple[dict[str, Any], int]:
    """``n`` calls from ward to each target in turn; their set-up times, and calls lost."""
    out: dict[str, Any] = {}
    lost = 0
    for ns, user, language in TARGETS:
        times = []
        for i in range(n):
            try:
                kiosk, console, seconds = calls.call(lab, browsers, ns, user, language,
                                                     kiosk_id=f"bench-{ns}-{i}")
                calls.hang_up(kiosk, console)
                times.append(seconds)
            except Exception as exc:  # a call that failed is counted, not fatal
                log.warning("call %d to %s failed: %s", i, ns, exc)
                lost += 1
        out[f"setup_ward_to_{ns}_s"] = percentiles(times)
    return out, lost


def main() -> int:
    """Bring the lab up, measure, take it down; one JSON line on standard output."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20, help="calls to each target")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    env = dict(os.environ, TSUNAGU_CALLS_PER_MINUTE="600")  # the load's few kiosks call often
    up = subprocess.run([str(LAB / "up")], capture_output=True, text=True, timeout=300, env=env)
    if up.returncode != 0:
        print(up.stderr.strip().splitlines()[-1], file=sys.stderr)
        return 1
    info = json.loads(up.stdout.strip().splitlines()[-1])
    lab = Lab(info, read_env_file(Path(info["env_file"])))
    try:
        with sync_playwright() as pw, tempfile.TemporaryDirectory() as tmp:
            browsers = calls.launch_browsers(pw, lab, Path(tmp))
            try:
                result, lost = setup_times(lab, browsers, args.calls)
                report = calls.drill(lab, browsers, load=calls.SteadyLoad(lab, Path(tmp)))
            finally:
                for b in browsers.values():
                    b.close()
    finally:
        subprocess.run([str(LAB / "down")], capture_output=True, timeout=60, check=False)
    summary = calls.summary(report)
    result["recovery_s"] = {name: summary[name]["recovered_s"] for name in calls.FAILURES}
    result["recovery_s"]["home_link_cut_10s_from_cut"] = \
        summary["home_link_cut_10s"]["recovered_from_cut_s"]
    load = report["load"]
    result["load"] = {k: load[k] for k in ("calls", "answered", "ended_by_reason", "refused",
                                            "unconfirmed_requests", "lost", "double_assigned",
                                            "stats", "stats_add_up", "reconnects", "seconds")}
    result["calls_lost"] = lost + (0 if report["live_calls"] >= 1 else 1) + load["lost"]
    result["calls_double_assigned"] = max(0, report["live_calls"] - 1) + load["double_assigned"]
    result["statistics_add_up"] = load["stats_add_up"]
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
