"""Real clients across the lab: Chromium as a kiosk in `ward` calls an interpreter console in
Chromium in `home` (behind NAT) and in `strict` (only TCP 443 out: TURN over TLS), over
https://tsunagu.lab.test with the lab CA trusted through an NSS database (no certificate error
is ignored). Video is decoded at >= 20 fps both ways, measured from getStats."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

from tests.deploy import calls
from tests.deploy.lab import Lab

pytestmark = [pytest.mark.browser, pytest.mark.webrtc, pytest.mark.timeout(400)]


def test_ward_calls_home_behind_nat(lab: Lab, browsers: dict[str, Browser]) -> None:
    kiosk, console, setup_s = calls.call(lab, browsers, "home", "alice", "jsl")
    fps, windows = calls.steady_fps([kiosk, console])
    pair = console.evaluate(calls.SELECTED_PAIR)
    print(f"ward->home: set-up {setup_s:.2f} s, fps kiosk/console {windows}, pair {pair}")
    assert min(fps) >= 20, fps
    assert pair["remoteAddress"] in ("198.18.1.2", "198.18.2.2")  # straight to a relay
    calls.hang_up(kiosk, console)


def test_ward_calls_strict_through_turn_over_tls(lab: Lab, browsers: dict[str, Browser]
                                                 ) -> None:
    kiosk, console, setup_s = calls.call(lab, browsers, "strict", "carol", "en")
    fps, windows = calls.steady_fps([kiosk, console])
    pair = console.evaluate(calls.SELECTED_PAIR)
    print(f"ward->strict: set-up {setup_s:.2f} s, fps kiosk/console {windows}, pair {pair}, "
          f"console sending {console.evaluate(calls.OUTBOUND_VIDEO)}")
    assert pair["localType"] == "relay" and pair["relayProtocol"] == "tls", pair
    assert min(fps) >= 20, fps
    calls.hang_up(kiosk, console)
