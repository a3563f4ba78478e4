"""The interpreter declines or misses an offer; sign-in refused; nobody for a language."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

STACK_ENV = {"TSUNAGU_OFFER_TIMEOUT_S": "4"}

# A tablet whose camera and microphone permission was refused.
DENY_CAMERA = """
navigator.mediaDevices.getUserMedia = () =>
  Promise.reject(new DOMException("Permission denied", "NotAllowedError"));
"""


def test_wrong_password_is_refused(pages, shot) -> None:
    for path in ("/console", "/supervisor"):
        blank = pages.new(path)
        expect(blank.locator("input[name=username]")).to_be_focused()
        shot(blank, f"{path.strip('/')}-login")
    page = pages.staff("/console", "alice", "wrong password")
    error = page.locator("#login-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("パスワードが違います")
    expect(error).to_contain_text("Wrong username or password")
    expect(page.locator("html")).not_to_have_attribute("data-state", re.compile(".+"))
    expect(page.locator("input[name=password]")).to_be_visible()
    expect(page.locator("[data-action=available]")).to_be_hidden()
    shot(page, "console-login-refused")


def test_decline_passes_the_call_on(pages, shot) -> None:
    """Bob declines; the call stays queued (nobody else for English); the kiosk cancels."""
    sup = pages.supervisor()
    bob = pages.console("bob")
    pages.available(bob)
    kiosk = pages.kiosk("k1")
    kiosk.click("[data-language=en]")
    bob.wait_for_selector("html[data-state=ringing]")
    expect(bob.locator("#ring-language")).to_contain_text("English")
    bob.click("[data-action=decline]")
    bob.wait_for_selector("html[data-state=available]")
    # The resident is still in line, told where they stand.
    expect(kiosk.locator("html")).to_have_attribute("data-state", "waiting")
    expect(kiosk.locator("#waiting-position")).to_contain_text("次の順番です")
    expect(sup.locator("#tiles [data-language=en] [data-field=waiting]")).to_have_text("1")
    shot(kiosk, "kiosk-waiting")
    shot(sup, "supervisor-waiting")
    kiosk.click("[data-action=cancel]")
    kiosk.wait_for_selector("html[data-state=home]")
    expect(sup.locator("#tiles [data-language=en] [data-field=waiting]")).to_have_text("0")
    expect(bob.locator("html")).to_have_attribute("data-state", "available")


def test_missed_offer_rings_counts_down_and_sets_away(pages, shot) -> None:
    """Nobody answers for 4 s: the ring stops and the interpreter is set away."""
    bob = pages.console("bob")
    pages.available(bob)
    kiosk = pages.kiosk("k2")
    kiosk.click("[data-language=en]")
    bob.wait_for_selector("html[data-state=ringing]")
    countdown = bob.locator("#ring-countdown")
    expect(countdown).to_contain_text(re.compile(r"あと [1-4] 秒"))
    first = countdown.inner_text()
    expect(countdown).not_to_have_text(first, timeout=3000)  # it counts down
    ringing = bob.evaluate("() => window.tsunagu && !!document.title.match(/着信/)")
    assert ringing
    bob.wait_for_selector("html[data-state=away]", timeout=10_000)
    expect(bob.locator("#idle-hint")).to_contain_text("離席")
    expect(bob.locator("[data-action=away]")).to_have_attribute("aria-pressed", "true")
    shot(bob, "console-missed-offer")
    # The call is still waiting for someone.
    expect(kiosk.locator("html")).to_have_attribute("data-state", "waiting")
    kiosk.click("[data-action=cancel]")
    kiosk.wait_for_selector("html[data-state=home]")


def test_no_interpreter_for_the_language(pages, shot) -> None:
    """Nobody who speaks Vietnamese is signed in: a plain sentence says what to do."""
    kiosk = pages.kiosk("k1")
    kiosk.click("[data-language=vi]")
    kiosk.wait_for_selector("html[data-state=error]")
    message = kiosk.locator("[data-role=status]")
    expect(message).to_contain_text("この言語の通訳者がいません")
    expect(message).to_contain_text("窓口の職員にお知らせください")
    # In the resident's language beside Japanese (PROTOCOL.md section 12).
    expect(message).to_have_attribute("lang", "vi")
    expect(message).to_contain_text("Hiện không có phiên dịch viên tiếng này")
    expect(message.locator('[lang="ja"]')).to_contain_text("この言語の通訳者がいません")
    expect(kiosk.locator("html")).to_have_attribute("data-reason", "no_interpreter")
    shot(kiosk, "kiosk-no-interpreter")
    kiosk.click("#error-back")
    kiosk.wait_for_selector("html[data-state=home]")


def test_kiosk_without_token_says_it_is_not_registered(pages, shot) -> None:
    page = pages.new("/kiosk", width=800, height=1180)
    page.wait_for_selector("html[data-state=error]")
    expect(page.locator("[data-role=status]")).to_contain_text("登録されていません")
    expect(page.locator("[data-language]")).to_have_count(0)
    shot(page, "kiosk-not-registered")


def test_camera_blocked_says_what_to_do(pages, shot) -> None:
    pages.console("alice")  # someone for 日本手話 is signed in (away): the call waits
    kiosk = pages.kiosk("k2", init_script=DENY_CAMERA)
    kiosk.click("[data-language=jsl]")
    kiosk.wait_for_selector("html[data-state=waiting]")
    problem = kiosk.locator("#waiting-media")
    expect(problem).to_be_visible()
    expect(problem).to_contain_text("カメラとマイクが使えません")
    expect(problem).to_contain_text("許可")
    # 日本手話 was chosen: Japanese with a pictogram (no written form of JSL).
    expect(problem.locator("svg.pict")).to_have_count(1)
    shot(kiosk, "kiosk-camera-blocked")
    kiosk.click("[data-action=cancel]")
    kiosk.wait_for_selector("html[data-state=home]")


def test_transfer_to_another_language(pages, shot) -> None:
    """Alice takes a 日本手話 call and transfers it to English; Bob answers it."""
    alice = pages.console("alice")
    bob = pages.console("bob")
    pages.available(bob)
    pages.available(alice)
    kiosk = pages.kiosk("k1")
    pages.connect(kiosk, alice)  # only Alice signs 日本手話
    alice.select_option("#transfer-language", "en")
    alice.click("[data-action=transfer]")
    alice.wait_for_selector("html[data-state=wrapup]")
    expect(alice.locator("#wrapup-ended")).to_contain_text("転送しました")
    bob.wait_for_selector("html[data-state=ringing]")
    expect(bob.locator("#ring-language")).to_contain_text("English")
    expect(kiosk.locator("html")).to_have_attribute("data-state", "waiting")
    shot(kiosk, "kiosk-transferred-waiting")
    bob.click("[data-action=accept]")
    kiosk.wait_for_selector("html[data-state=in-call]")
    expect(kiosk.locator("[data-role=status]")).to_contain_text("Bob")
    bob.click("[data-action=hangup]")
    kiosk.wait_for_selector("html[data-state=ended]")
