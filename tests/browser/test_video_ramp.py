"""Video through the relay sharpens as fast as browser to browser (issue 11 item 1).

Two Chromium pages call each other directly, then through the relay (``bench/ramp.py``'s
harness: a relay process of this checkout on a Redis of its own, offers posted to its
control API), with the same fake camera; then through the relay with a textured picture,
and with the interpreter's leg shaped to 500 kbps each way (tc htb on lo; needs root in
the namespace: ``unshare -rn``). Times are from the receiver's first decoded frame.

``RAMP_RELAY_SRC=/path/to/checkout`` runs the relay from another checkout (the module
fails against main before the relay's own estimate: 200-350 kbps at 480x360,
bandwidth-limited, against about 750 kbps at 640x480 direct).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from bench.ramp import ROOT, Direction, Relay, launch, run_call, write_textured_y4m

pytestmark = [pytest.mark.browser, pytest.mark.webrtc]

ARTIFACTS = Path(os.environ.get("TSUNAGU_TEST_ARTIFACTS", ROOT / "test-artifacts"))

WITHIN_S = 3.0  # of the first decoded frame
HOLD_S = 4.0  # and still so a second later
SHARE_OF_DIRECT = 0.8
TEXTURED_BPS = 1_000_000
SHAPED_KBIT = 500
MIN_FPS = 25


def _can_shape() -> bool:
    done = subprocess.run(["tc", "qdisc", "show", "dev", "lo"], capture_output=True, check=False)
    return done.returncode == 0 and os.geteuid() == 0


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relay]:
    src = Path(os.environ.get("RAMP_RELAY_SRC", ROOT)).resolve()
    r = Relay(src, tmp_path_factory.mktemp("ramp"))
    r.start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def fake_camera(playwright: Playwright) -> Iterator[Browser]:
    browser = launch(playwright, None)
    yield browser
    browser.close()


def _keep(name: str, report: dict[str, Any]) -> None:
    """What a test measured, in test-artifacts/ramp/<name>.json (passed or failed)."""
    path = ARTIFACTS / "ramp" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1))


def _window(d: Direction, start_s: float, end_s: float) -> list[dict[str, Any]]:
    """The sender's samples between two times after the receiver's first decoded frame."""
    assert d.first_frame_ms is not None, f"{d.receiver} decoded nothing from {d.sender}"
    t0 = d.first_frame_ms
    return [s for s in d.samples if t0 + start_s * 1000 <= s["t"] <= t0 + end_s * 1000]


def _kbps(d: Direction, at_s: float) -> float:
    mark = d.at(at_s)
    assert mark is not None, f"{d.sender}: no sample {at_s} s after the first frame"
    return float(mark["kbps"])


def test_fake_camera_through_the_relay_reaches_what_it_reaches_direct(
        fake_camera: Browser, relay: Relay) -> None:
    direct = run_call(fake_camera, "direct", None, seconds=HOLD_S + 0.3)
    relayed = run_call(fake_camera, "relay", relay, seconds=HOLD_S + 0.3, call_id="ramp-fake")
    report = {name: {"direct": direct[name].summary((1, 2, 2.5, 3, 3.5, 4)),
                     "relay": relayed[name].summary((1, 2, 2.5, 3, 3.5, 4))} for name in direct}
    _keep("fake", report)
    for name, d in direct.items():
        r = relayed[name]
        reference = statistics.mean([_kbps(d, WITHIN_S), _kbps(d, HOLD_S)])
        # "within 3 s": the best second ending between 2.5 and 3.5 s (the sender's bytes
        # come in frames, a big one now and then), and still so at 4 s
        best = max(_kbps(r, at) for at in (2.5, WITHIN_S, 3.5))
        assert best >= SHARE_OF_DIRECT * reference, (name, report)
        assert _kbps(r, HOLD_S) >= SHARE_OF_DIRECT * reference, (name, report)
        # the resolution direct holds, held through the relay (at least as many pixels in
        # every sample; a busy machine sometimes starts the direct call smaller)
        direct_px = min(s["w"] * s["h"] for s in _window(d, WITHIN_S, HOLD_S))
        relay_px = min(s["w"] * s["h"] for s in _window(r, WITHIN_S, HOLD_S))
        assert relay_px >= direct_px, (name, report)
        limits = {s["limit"] for s in _window(r, WITHIN_S, HOLD_S)}
        assert "bandwidth" not in limits, (name, report)


def test_textured_camera_through_the_relay_reaches_1_mbps(
        playwright: Playwright, relay: Relay, tmp_path: Path) -> None:
    browser = launch(playwright, write_textured_y4m(tmp_path / "texture.y4m"))
    try:
        direct = run_call(browser, "direct", None, seconds=HOLD_S + 0.3)
        relayed = run_call(browser, "relay", relay, seconds=HOLD_S + 0.3, call_id="ramp-tex")
    finally:
        browser.close()
    report = {name: {"direct": direct[name].summary((1, 2, 2.5, 3, 3.5, 4)),
                     "relay": relayed[name].summary((1, 2, 2.5, 3, 3.5, 4))} for name in direct}
    _keep("textured", report)
    for name, d in relayed.items():
        # 1 Mbps, unless this machine, busy, encodes less even browser to browser
        reference = statistics.mean([_kbps(direct[name], WITHIN_S), _kbps(direct[name], HOLD_S)])
        floor_kbps = min(TEXTURED_BPS / 1000, SHARE_OF_DIRECT * reference)
        # "within 3 s": the best second ending between 2.5 and 3.5 s (the sender's bytes
        # come in frames, a big one now and then), and still so at 4 s
        best = max(_kbps(d, at) for at in (2.5, 3.0, 3.5))
        assert best >= floor_kbps, (name, report)
        assert _kbps(d, HOLD_S) >= floor_kbps, (name, report)


@pytest.mark.skipif(not _can_shape(), reason="tc needs root in the namespace (unshare -rn)")
def test_a_500_kbps_leg_keeps_the_frame_rate(fake_camera: Browser, relay: Relay) -> None:
    relayed = run_call(fake_camera, "relay", relay, seconds=8.3, shape=True,
                       call_id="ramp-shaped")
    report = {name: d.summary((1, 2, 3, 4, 5, 6, 7, 8)) for name, d in relayed.items()}
    _keep("shaped", report)
    for name, d in relayed.items():
        fps = [s["fps"] for s in _window(d, 3.0, 8.3) if s["fps"]]
        assert fps and statistics.median(fps) >= MIN_FPS, (name, fps, report)
        # never traded away: a few samples under 20 fps are the busy machine's, not a
        # sender that gave up frame rate for its picture
        assert sum(f < MIN_FPS - 5 for f in fps) <= len(fps) // 5, (name, fps, report)
        # the sender came down to the leg (what it sends, with audio and resends, fits)
        assert statistics.mean(_kbps(d, at) for at in (5, 6, 7, 8)) <= SHAPED_KBIT, (name,
                                                                                       report)
