"""The daily test call from the web kiosk (Chromium) through the real signaling, relay and
answering bot: at its time (test clock), quietly, measured with getStats, stored, never counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from subprocess import Popen

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Stack
from tests.browser.testcall import (
    KEYS,
    TEST_CALL_ENV,
    api_stats,
    kiosk_test,
    last_test,
    redis_client,
    set_clock,
    start_bot,
    tomorrow_at,
)

pytestmark = [pytest.mark.browser, pytest.mark.webrtc]

NEEDS_RELAY = True
STACK_ENV = TEST_CALL_ENV
MIN_FPS = 12.0  # both ways over the 5 s measured (the fake camera and the bot send 30)

# Every data-state the console shows, recorded from the page itself.
WATCH_STATES = """() => {
  window.__states = [document.documentElement.dataset.state];
  new MutationObserver(() => window.__states.push(document.documentElement.dataset.state))
    .observe(document.documentElement, {attributes: true, attributeFilter: ["data-state"]});
}"""


@pytest.fixture(scope="module")
def bot(stack: Stack) -> Iterator[Popen[bytes]]:
    yield from start_bot(stack)


def test_scheduled_test_call_runs_at_its_time_quietly_and_is_not_counted(
        pages, shot, stack: Stack, bot: Popen[bytes]) -> None:
    console = pages.console("alice")  # a person, available: must never ring for a test
    pages.available(console)
    console.evaluate(WATCH_STATES)
    kiosk = pages.kiosk("k1")
    before = api_stats(stack)
    offset = set_clock(stack, tomorrow_at(8, 29, 58))
    kiosk.wait_for_timeout(1000)  # 08:29:59: not yet
    assert kiosk.locator("html").get_attribute("data-selfcheck") is None
    expect(kiosk.locator("html")).to_have_attribute("data-selfcheck", "running", timeout=10_000)
    # quietly: the home screen stays, with the small notice and no chime
    expect(kiosk.locator("html")).to_have_attribute("data-state", "home")
    expect(kiosk.locator("#selfcheck")).to_be_visible()
    expect(kiosk.locator("#cue")).to_be_hidden()
    shot(kiosk, "kiosk-selfcheck")
    expect(kiosk.locator("html")).to_have_attribute("data-selfcheck", "passed", timeout=40_000)
    expect(kiosk.locator("#selfcheck")).to_be_hidden()
    result = kiosk.evaluate("() => window.tsunagu.selfCheck.results[0]")
    stored = last_test(stack, "k1")
    with redis_client(stack) as r:
        day = r.hgetall(KEYS.test_day("k1", tomorrow_at(8, 30).date().isoformat()))
        run = r.hgetall(KEYS.test_run(day["test_id"]))
    after = api_stats(stack)
    print("web kiosk measured:", result, "stored:", stored)
    assert result["ok"] is True and result["fps_in"] >= MIN_FPS and result["fps_out"] >= MIN_FPS
    assert 0 < result["setup_ms"] < 15_000 and result["rtt_ms"] is not None
    assert stored is not None and stored["ok"] is True and "reason" not in stored
    assert stored["fps_in"] >= MIN_FPS and stored["fps_out"] >= MIN_FPS
    sent_local = int(run["sent_ms"]) + offset  # on the scheduler's clock: at 08:30:00
    assert tomorrow_at(8, 30).timestamp() * 1000 <= sent_local
    assert sent_local < tomorrow_at(8, 30, 2).timestamp() * 1000
    assert int(run["bot_video"]) > 0 and int(run["bot_audio"]) > 0
    assert after["today"]["offered"] == before["today"]["offered"]
    assert after["today"]["answered"] == before["today"]["answered"]
    assert "test" not in after["today"]["by_language"]
    assert "ringing" not in console.evaluate("() => window.__states")
    expect(console.locator("html")).to_have_attribute("data-state", "available")
    expect(kiosk.locator("html")).to_have_attribute("data-state", "home")

    # the supervisor's fleet page shows the passed test in the kiosk's row
    sup = pages.supervisor()
    sup.click('[data-tab="fleet"]')
    row = sup.locator('[data-section="fleet"] [data-kiosk="k1"]')
    expect(row.locator('[data-field="last-test"]')).to_have_attribute("data-ok", "true",
                                                                     timeout=15_000)
    expect(row).not_to_contain_text("test call failed")
    shot(sup, "fleet-page-test-passed")


def test_kiosk_test_replies_and_a_tap_cancels_the_test(
        pages, stack: Stack, bot: Popen[bytes]) -> None:
    assert kiosk_test(stack, "nope") == {"type": "error", "code": "not_found"}
    assert kiosk_test(stack, "k2") == {"type": "error", "code": "conflict"}  # offline
    kiosk = pages.kiosk("k2")
    console = pages.console("alice")
    pages.available(console)
    earlier = last_test(stack, "k2")
    assert kiosk_test(stack, "k2")["type"] == "ack"
    expect(kiosk.locator("html")).to_have_attribute("data-selfcheck", "running", timeout=10_000)
    kiosk.click("[data-language=jsl]")  # a resident: the real call wins
    expect(kiosk.locator("html")).to_have_attribute("data-selfcheck", "cancelled")
    console.wait_for_selector("html[data-state=ringing]", timeout=15_000)
    assert kiosk_test(stack, "k2") == {"type": "error", "code": "conflict"}  # in a real call
    console.click("[data-action=accept]")
    kiosk.wait_for_selector("html[data-state=in-call]")
    kiosk.click("[data-action=hangup]")
    kiosk.wait_for_selector("html[data-state=ended]")
    assert last_test(stack, "k2") == earlier  # the cancelled test was not reported
    kiosk.click("[data-action=skip-rating]")  # the real call's rating faces
    kiosk.wait_for_selector("html[data-state=home]", timeout=15_000)
    assert kiosk_test(stack, "k2")["type"] == "ack"
    expect(kiosk.locator("html")).to_have_attribute("data-selfcheck", "passed", timeout=40_000)
    stored = last_test(stack, "k2")
    assert stored is not None and stored["ok"] is True


def test_a_reload_during_the_test_leaves_no_test_call_behind(
        pages, stack: Stack, bot: Popen[bytes]) -> None:
    kiosk = pages.kiosk("k1")
    assert kiosk_test(stack, "k1")["type"] == "ack"
    expect(kiosk.locator("html")).to_have_attribute("data-selfcheck", "running", timeout=10_000)
    with redis_client(stack) as r:
        for _ in range(100):  # wait until the test call is live
            if r.get(KEYS.kiosk_call("k1")):
                break
            kiosk.wait_for_timeout(100)
        assert r.get(KEYS.kiosk_call("k1"))
        kiosk.reload()  # the page forgets its test; the resumed session is told of the call
        kiosk.wait_for_selector("[data-language=jsl]:not([disabled])")
        for _ in range(100):  # the reloaded page hangs the stray test call up
            if not r.get(KEYS.kiosk_call("k1")):
                break
            kiosk.wait_for_timeout(100)
        assert not r.get(KEYS.kiosk_call("k1"))
    expect(kiosk.locator("html")).to_have_attribute("data-state", "home")
    assert kiosk_test(stack, "k1")["type"] == "ack"  # free for the next test at once
