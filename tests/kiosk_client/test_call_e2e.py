"""A whole call through the real service: headless kiosk client <-> relay <-> answering bot.

Video and audio both ways, frames decoded and counted at both ends, stamps read back
(so the relay forwarded the kiosk's own frames, and the bot's). Run it in a
loopback-only namespace:
    unshare -n sh -c 'ip link set lo up && .venv/bin/python -m pytest tests/kiosk_client'
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from interpreter_console.bot import AnsweringBot
from kiosk_client.screen import ScreenState
from kiosk_client.session import KioskSession
from tests.support.service import Service
from tsunagu.client import SignalingClient, server_urls
from tsunagu.endpoint.leg import prepare_rtc
from tsunagu.endpoint.tracks import SyntheticVideoTrack, ToneAudioTrack
from tsunagu.settings import BotSettings

pytestmark = pytest.mark.webrtc
TALK_S = 8.0


async def run_kiosk(service: Service, token_file: Path, *extra: str) -> dict[str, object]:
    """``python -m kiosk_client --headless ...`` as a subprocess; its JSON summary."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kiosk_client", "--server", service.url,
        "--token-file", str(token_file), "--headless", "--source", "synthetic", *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=90)
    assert proc.returncode == 0, (f"kiosk failed: {out.decode()[-3000:]}\n{err.decode()[-3000:]}"
                                  f"\n{service.logs()}")
    summary: dict[str, object] = json.loads(out.decode().strip().splitlines()[-1])
    return summary


def assert_media(received: dict[str, dict[str, float]], seconds: float, who: str) -> None:
    video, audio = received["video"], received["audio"]
    assert video["frames"] >= 20 * seconds * 0.8, (who, video)
    assert video["fps"] >= 20, (who, video)
    assert video["stamped"] >= video["frames"] * 0.95, (who, video)  # the sender's own frames
    assert video["latency_ms_p95"] is not None and video["latency_ms_p95"] < 400, (who, video)
    assert audio["frames"] >= 40 * seconds * 0.8, (who, audio)
    assert audio["mean_level"] > 0.02, (who, audio)  # the tone, not silence


async def test_kiosk_calls_and_the_bot_answers_with_media_both_ways(
        loopback_only: None, service: Service, tmp_path: Path) -> None:
    service.add_interpreter("bot1", "pw-bot1-secret", "jsl,en")
    token_file = tmp_path / "kiosk.token"
    token_file.write_text(service.add_kiosk("k1") + "\n")
    bot = AnsweringBot(BotSettings(server=service.url, username="bot1", password="pw-bot1-secret",
                                 media=True, talk_s=None, max_calls=1, wrapup_s=0.0))
    bot_task = asyncio.create_task(bot.run())
    await asyncio.wait_for(bot.ready.wait(), timeout=15)

    summary = await run_kiosk(service, token_file, "--call", "jsl", "--duration", str(TALK_S))
    report = await asyncio.wait_for(bot_task, timeout=30)

    call = summary["call"]
    assert isinstance(call, dict)
    assert call["state"] == "ended" and call["end_reason"] == "hangup"
    assert call["media_connected"] is True
    assert summary["self_test"]["ok"] is True, summary["self_test"]
    assert call["outbound"]["video"]["acknowledged"] is True  # the relay's receiver reports
    assert call["media"]["sent"]["video"] >= 25 * TALK_S * 0.8
    assert_media(call["media"]["received"], TALK_S, "kiosk")

    assert len(report.calls) == 1
    record = report.calls[0]
    assert record.call_id == call["call_id"] and record.language == "jsl"
    assert record.ward == "Kita" and record.end_reason == "hangup"
    assert record.media is not None
    assert_media(record.media["received"], TALK_S - 1, "bot")
    print("kiosk received:", json.dumps(call["media"]["received"]))
    print("bot received:", json.dumps(record.media["received"]))


async def test_kiosk_resumes_after_its_socket_drops_mid_call(
        loopback_only: None, service: Service) -> None:
    service.add_interpreter("bot2", "pw-bot2-secret", "en")
    bot = AnsweringBot(BotSettings(server=service.url, username="bot2", password="pw-bot2-secret",
                                 media=True, talk_s=None, max_calls=1, wrapup_s=0.0))
    bot_task = asyncio.create_task(bot.run())
    await asyncio.wait_for(bot.ready.wait(), timeout=15)
    prepare_rtc()
    client = SignalingClient(server_urls(service.url)[1], service.add_kiosk("k2"))
    session = KioskSession(client, lambda: [ToneAudioTrack(), SyntheticVideoTrack()])
    await client.connect()
    reader = asyncio.create_task(session.run())
    try:
        await session.request_call("en")
        await session.wait_for(ScreenState.IN_CALL, within_s=15)
        assert session.leg is not None and await session.leg.wait_connected(within_s=15)
        await asyncio.sleep(2)
        before = session.leg.video.frames
        await client.drop()  # as a network loss would
        await asyncio.sleep(3)
        assert client.reconnects == 1
        assert session.state is ScreenState.IN_CALL  # the call survived the drop
        assert session.leg.video.frames > before + 45  # media kept flowing meanwhile
        await session.hangup()
        await session.wait_for(ScreenState.ENDED, within_s=15)
        assert session.end_reason == "hangup"
        report = await asyncio.wait_for(bot_task, timeout=20)
    finally:
        reader.cancel()
        await session.close()
        await client.close()
    assert report.calls[0].end_reason == "hangup"
