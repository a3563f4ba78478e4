"""A test call through a relay that drops all video (TSUNAGU_TEST_RELAY_DROP, a test-only
fault): the web kiosk's test fails, and the stored result says why in plain words."""

from __future__ import annotations

from collections.abc import Iterator
from subprocess import Popen

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Stack
from tests.browser.testcall import TEST_CALL_ENV, last_test, set_clock, start_bot, tomorrow_at

pytestmark = [pytest.mark.browser, pytest.mark.webrtc]

NEEDS_RELAY = True
STACK_ENV = {**TEST_CALL_ENV, "TSUNAGU_TEST_RELAY_DROP": "video"}


@pytest.fixture(scope="module")
def bot(stack: Stack) -> Iterator[Popen[bytes]]:
    yield from start_bot(stack)


def test_relay_dropping_video_fails_the_test_call_with_the_reason(
        pages, shot, stack: Stack, bot: Popen[bytes]) -> None:
    kiosk = pages.kiosk("k1")
    set_clock(stack, tomorrow_at(8, 29, 59))
    expect(kiosk.locator("html")).to_have_attribute("data-selfcheck", "failed", timeout=50_000)
    result = kiosk.evaluate("() => window.tsunagu.selfCheck.results[0]")
    stored = last_test(stack, "k1")
    print("web kiosk measured:", result, "stored:", stored)
    assert result["ok"] is False and "no video from the bot" in result["reason"]
    assert stored is not None and stored["ok"] is False
    assert "no video from the bot" in stored["reason"]
    assert "no video from the tablet" in stored["reason"]  # what the bot said it received
    assert "TEST FAULT" in (stack.logdir / "relay.log").read_text()
    expect(kiosk.locator("html")).to_have_attribute("data-state", "home")

    # the supervisor's fleet page: the kiosk is red with the failed test, in plain words
    sup = pages.supervisor()
    sup.click('[data-tab="fleet"]')
    row = sup.locator('[data-section="fleet"] [data-kiosk="k1"]')
    expect(row).to_have_attribute("data-status", "red", timeout=15_000)
    expect(row.locator('[data-field="last-test"]')).to_have_attribute("data-ok", "false")
    expect(row).to_contain_text("test call failed: no video from the bot")
    expect(row).to_contain_text("テスト通話に失敗しました: テスト応答ボットからの映像が届きません")
    shot(sup, "fleet-page-test-failed")
