"""Failures a city will have, during a live call across the lab (ward kiosk, home console)
and under a steady load of calls (Python kiosks in ward, answering bots in home, no media):
the Redis primary killed, the signaling node on dc1 killed, the relay serving the call killed,
home's link cut for 10 s. After each the call's media flows again both ways (measured from
getStats, and written to test-artifacts/lab-failures.json) and the call is the same call; over
the whole drill no load call was double-assigned or lost, every one ended with a reason, and
today's statistics count the calls the kiosks counted."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.deploy import calls
from tests.deploy.lab import Lab

pytestmark = [pytest.mark.browser, pytest.mark.webrtc, pytest.mark.timeout(600)]
ARTIFACTS = Path(os.environ.get("TSUNAGU_TEST_ARTIFACTS", "test-artifacts"))


def test_live_call_survives_four_failures(lab: Lab, browsers: dict[str, Browser],
                                          tmp_path: Path) -> None:
    report = calls.drill(lab, browsers, load=calls.SteadyLoad(lab, tmp_path))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "lab-failures.json").write_text(json.dumps(report))
    print("lab failures:", json.dumps(calls.summary(report)))
    assert report["live_calls"] == 1  # the call, never assigned twice; no load call left
    load = report["load"]
    assert load["calls"] >= 20, load  # a steady load: calls before, during and after
    assert load["lost"] == 0 and load["double_assigned"] == 0, load
    assert load["answered_unknown_to_a_bot"] == [] == load["taken_unknown_to_a_kiosk"], load
    assert load["stats_add_up"], load
    for name in calls.FAILURES:  # the load went on through each failure
        assert load["during"][name]["placed_within_20s"] > 0, (name, load["during"])
    for name in calls.FAILURES:
        r = report[name]
        assert r["recovered_s"] is not None and r["recovered_s"] < 30, (name, r)
