"""The kiosk's microphone and speaker through a real call: kiosk <-> relay <-> answering bot.

The kiosk runs as ``python -m kiosk_client --headless`` with ALSA devices made of files
(``file`` plugin on ``null``): its microphone file holds a 1 kHz tone, which the bot must
receive as its dominant frequency; the bot sends 660 Hz, which must land in the kiosk's
speaker file. Neither is the kiosk's synthetic 440 Hz tone, so a broken path cannot pass.
Run it in a loopback-only namespace:
    unshare -n sh -c 'ip link set lo up && .venv/bin/python -m pytest \
        tests/kiosk_client/test_audio_devices.py'
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_audio import AlsaFiles, make_alsa_files, read_speaker, tone

from interpreter_console.bot import AnsweringBot, BotReport
from kiosk_client.audio import MIC_PROBLEM, RATE
from tests.support.service import Service
from tsunagu.settings import BotSettings

pytestmark = pytest.mark.webrtc
TALK_S = 8.0
MIC_HZ = 1000.0  # in the kiosk's microphone file
BOT_HZ = 660.0  # the bot's tone (interpreter_console.bot)
SYNTHETIC_HZ = 440.0  # the kiosk's own tone, which must not be what arrives


@pytest.fixture
def alsa(tmp_path: Path) -> AlsaFiles:
    return make_alsa_files(tmp_path, mic_hz=MIC_HZ, seconds=60.0)


async def call_with_devices(service: Service, alsa: AlsaFiles, tmp_path: Path, username: str,
                            *device_args: str) -> tuple[dict[str, Any], BotReport]:
    """One headless kiosk call with ``device_args``, answered by a bot with media."""
    service.add_interpreter(username, f"pw-{username}-secret", "jsl")
    token_file = tmp_path / "kiosk.token"
    token_file.write_text(service.add_kiosk(f"k-{username}") + "\n")
    bot = AnsweringBot(BotSettings(server=service.url, username=username,
                                 password=f"pw-{username}-secret", media=True, talk_s=None,
                                 max_calls=1, wrapup_s=0.0))
    bot_task = asyncio.create_task(bot.run())
    await asyncio.wait_for(bot.ready.wait(), timeout=15)
    env = {**os.environ, "ALSA_CONFIG_PATH": str(alsa.config)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kiosk_client", "--server", service.url,
        "--token-file", str(token_file), "--headless", "--source", "synthetic", *device_args,
        "--call", "jsl", "--duration", str(TALK_S),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=90)
    assert proc.returncode == 0, f"kiosk failed: {err.decode()[-3000:]}\n{service.logs()}"
    summary: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    report = await asyncio.wait_for(bot_task, timeout=30)
    assert len(report.calls) == 1 and report.calls[0].media is not None
    print("kiosk summary:", json.dumps(summary))
    print("bot received:", json.dumps(report.calls[0].media["received"]))
    return summary, report


async def test_the_bot_hears_the_microphone_and_the_speaker_plays_the_bot(
        loopback_only: None, service: Service, alsa: AlsaFiles, tmp_path: Path) -> None:
    summary, report = await call_with_devices(
        service, alsa, tmp_path, "bot-audio", "--mic", "tsunagu_mic",
        "--speaker", "tsunagu_speaker")
    check = summary["audio_check"]
    assert check["mic"]["ok"] is True and check["speaker"]["ok"] is True, check
    assert check["notices"] == []
    call = summary["call"]
    assert call["state"] == "ended" and call["media_connected"] is True

    # microphone -> bot: the mic file's tone, not the synthetic one, not silence
    mic = call["audio"]["mic"]
    assert mic["ok"] is True and mic["device"] == "tsunagu_mic", mic
    assert mic["frames_sent"] >= 50 * TALK_S * 0.8, mic
    assert mic["silent_frames"] <= mic["frames_sent"] * 0.05, mic
    heard = report.calls[0].media["received"]["audio"]  # type: ignore[index]
    assert heard["frames"] >= 50 * (TALK_S - 1) * 0.8, heard
    assert heard["dominant_hz"] == pytest.approx(MIC_HZ, abs=10), heard
    assert abs(heard["dominant_hz"] - SYNTHETIC_HZ) > 100
    assert heard["mean_level"] > 0.05, heard

    # bot -> speaker: the bot's tone, played with a bounded delay
    received = call["media"]["received"]["audio"]
    assert received["dominant_hz"] == pytest.approx(BOT_HZ, abs=10), received
    speaker = call["audio"]["speaker"]
    assert speaker["ok"] is True and speaker["frames_played"] >= 50 * TALK_S * 0.8, speaker
    played = read_speaker(alsa.speaker)
    assert played.shape[0] >= RATE * TALK_S * 0.8, played.shape
    body = played[RATE // 2:]  # past the start (silence while the call connected)
    assert tone(body).dominant_hz() == pytest.approx(BOT_HZ, abs=10)
    rms = math.sqrt(float(np.mean(body.astype(np.float64) ** 2))) / 32768
    assert rms > 0.05, rms
    print(f"bot heard {heard['dominant_hz']} Hz (level {heard['mean_level']}); speaker file "
          f"{tone(body).dominant_hz():.1f} Hz, rms {rms:.3f}, {played.shape[0] / RATE:.2f} s; "
          f"speaker buffer p50/p95/max {speaker['buffer_ms_p50']}/{speaker['buffer_ms_p95']}/"
          f"{speaker['buffer_ms_max']} ms")


async def test_without_a_microphone_the_call_goes_on_and_the_kiosk_says_so(
        loopback_only: None, service: Service, alsa: AlsaFiles, tmp_path: Path) -> None:
    summary, report = await call_with_devices(
        service, alsa, tmp_path, "bot-nomic", "--mic", "tsunagu_unplugged",
        "--speaker", "tsunagu_speaker")
    check = summary["audio_check"]
    assert check["mic"]["ok"] is False and "cannot open" in check["mic"]["problem"], check
    assert check["notices"] == [MIC_PROBLEM[1]]
    call = summary["call"]
    assert call["state"] == "ended" and call["end_reason"] == "hangup"
    assert call["media_connected"] is True
    mic = call["audio"]["mic"]
    assert mic["ok"] is False and mic["silent_frames"] == mic["frames_sent"] > 0, mic
    assert call["audio"]["notices"] == [MIC_PROBLEM[1]]
    received = report.calls[0].media["received"]  # type: ignore[index]
    assert received["video"]["fps"] >= 20 and received["video"]["frames"] >= 20 * TALK_S * 0.7
    assert received["audio"]["frames"] >= 50 * (TALK_S - 1) * 0.8  # silence, still sent
    assert received["audio"]["mean_level"] < 0.01
    # the speaker still works without a microphone
    assert call["audio"]["speaker"]["ok"] is True
    assert tone(read_speaker(alsa.speaker)[RATE // 2:]).dominant_hz() == pytest.approx(
        BOT_HZ, abs=10)
