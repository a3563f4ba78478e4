"""Real clients across the lab: Chromium as a kiosk in `ward` calls an interpreter console in
Chromium in `home` (behind NAT) and in `strict` (only TCP 443 out: TURN over TLS), over
https://tsunagu.lab.test with the lab CA trusted through an NSS database (no certificate error
is ignored). Video is decoded at >= 20 fps both ways, measured from getStats. And the Python
kiosk client in `ward` calling the answering bot in `home` through the same URL."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.deploy import calls
from tests.deploy.lab import LAB, REPO, Lab, clean_env

pytestmark = [pytest.mark.browser, pytest.mark.webrtc, pytest.mark.timeout(400)]
TALK_S = 8.0


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


def test_python_kiosk_in_ward_calls_the_bot_in_home(lab: Lab, tmp_path: Path) -> None:
    """The Python kiosk client (headless, synthetic camera and tone) in ward calls the
    answering bot in home, both through https://tsunagu.lab.test with the lab CA as their
    trust store (SSL_CERT_FILE); frames and audio decoded at both ends."""
    lab.run("dc1", "tsunagu", "admin", "add-user", "bot1", "--role", "interpreter",
            "--languages", "ko", "--password-stdin", input="lab bot password\n")
    token = tmp_path / "kiosk.token"
    token.write_text(lab.run("dc1", "tsunagu", "admin", "add-kiosk", "k-python", "--ward",
                             "北区", "--counter", "2").stdout)
    env = dict(clean_env(), SSL_CERT_FILE=lab.info["ca_file"], BOT_PASSWORD="lab bot password")
    bot = subprocess.Popen(
        [str(LAB / "exec"), "home", "sh", "-c", 'printf "%s\\n" "$BOT_PASSWORD" | exec '
         f'python -m interpreter_console.bot --server {lab.info["base_url"]} --username bot1 '
         '--password-stdin --calls 1 --talk 60 --wrapup 0'],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env, cwd=REPO)
    try:
        time.sleep(3)  # signed in and available
        kiosk = lab.run("ward", "python", "-m", "kiosk_client", "--server",
                        lab.info["base_url"], "--token-file", str(token), "--headless",
                        "--source", "synthetic", "--call", "ko", "--duration", str(TALK_S),
                        env=env, timeout=120)
        bot_out, bot_err = bot.communicate(timeout=60)
    finally:
        bot.kill()
    call = json.loads(kiosk.stdout.strip().splitlines()[-1])["call"]
    record = json.loads(bot_out.strip().splitlines()[-1])["calls"][0]
    print("python kiosk received:", json.dumps(call["media"]["received"]),
          "bot received:", json.dumps(record["media"]["received"]))
    assert call["state"] == "ended" and call["media_connected"] is True
    assert record["call_id"] == call["call_id"] and record["end_reason"] == "hangup"
    for who, received in (("kiosk", call["media"]["received"]),
                          ("bot", record["media"]["received"])):
        assert received["video"]["frames"] >= 5 * TALK_S, (who, received)
        assert received["audio"]["mean_level"] > 0.02, (who, received)
