"""The city lab (deploy/lab/up), brought up once per test module and taken down after it,
and one Chromium in each of ward, home and strict for the modules that call across it."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.deploy.calls import launch_browsers
from tests.deploy.lab import LAB, Lab, read_env_file


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """The lab, up (deploy/lab/up), for one test module; down afterwards."""
    started = time.monotonic()
    # The steady load places calls from a few kiosks faster than the field's limit of 6 a
    # minute per kiosk: raised for the lab's nodes, as every limit can be for load tests.
    env = dict(os.environ, TSUNAGU_CALLS_PER_MINUTE="600")
    result = subprocess.run([str(LAB / "up")], capture_output=True, text=True, timeout=180,
                            env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"lab up in {time.monotonic() - started:.1f} s")
    try:
        yield Lab(info, read_env_file(Path(info["env_file"])))
    finally:
        subprocess.run([str(LAB / "down")], capture_output=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def browsers(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Browser]]:
    """Chromium in ward, home and strict (deploy/lab/exec), trusting the lab CA."""
    with sync_playwright() as pw:
        out = launch_browsers(pw, lab, tmp_path_factory.mktemp("chromium"))
        try:
            yield out
        finally:
            for b in out.values():
                b.close()
