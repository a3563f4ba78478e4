"""deploy/prometheus/tsunagu-alerts.yml: valid rule-file structure, on the fleet's metrics
(and ``promtool check rules`` on machines that have promtool)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "tsunagu-alerts.yml"
DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def test_alert_rules_parse_and_cover_the_fleet() -> None:
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    assert set(doc) == {"groups"}
    names: dict[str, str] = {}
    for group in doc["groups"]:
        assert set(group) <= {"name", "interval", "limit", "rules"} and group["name"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations",
                                 "keep_firing_for"}, rule
            assert NAME.match(rule["alert"]) and isinstance(rule["expr"], str)
            assert DURATION.match(str(rule.get("for", "0s"))), rule
            for key, value in {**rule.get("labels", {}), **rule.get("annotations", {})}.items():
                assert NAME.match(key) and isinstance(value, str)
            assert rule["expr"].count("(") == rule["expr"].count(")")
            names[rule["alert"]] = rule["expr"]
    assert 'tsunagu_kiosks{status="red"}' in names["TsunaguKioskRed"]
    assert "tsunagu_kiosk_test_ok" in names["TsunaguKioskTestFailed"]
    assert names["TsunaguKioskTestFailed"].endswith("== 0")
    promtool = shutil.which("promtool")
    if promtool:  # the full PromQL check where Prometheus's own tool is installed
        done = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True,
                              text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
