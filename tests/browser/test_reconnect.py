"""Pages that lose the server or the network come back by themselves, with their place kept."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

STACK_ENV = {"TSUNAGU_KIOSK_GRACE_S": "30", "TSUNAGU_CALL_GRACE_S": "30"}


def test_queue_places_survive_a_signaling_crash(pages, stack, shot) -> None:
    """Two counters wait for 日本手話; the signaling node dies and comes back."""
    alice = pages.console("alice")  # signed in but away: the calls wait for her
    k1 = pages.kiosk("k1")
    k2 = pages.kiosk("k2")
    k1.click("[data-language=jsl]")
    expect(k1.locator("#waiting-position")).to_contain_text("次の順番です")
    k2.click("[data-language=jsl]")
    expect(k2.locator("#waiting-position")).to_contain_text("順番: 2番目")

    stack.kill_signaling()
    banner = k1.locator("#net-banner")
    expect(banner).to_be_visible(timeout=10_000)
    expect(banner).to_contain_text("ネットワークが切れています")
    # 日本手話 was chosen: Japanese with a pictogram (no written form of JSL).
    expect(banner.locator("svg.pict")).to_have_count(1)
    expect(k1.locator("html")).to_have_attribute("data-state", "waiting")
    shot(k1, "kiosk-network-lost")

    stack.start_signaling()
    for kiosk in (k1, k2):
        expect(kiosk.locator("html")).to_have_attribute("data-connection", "open", timeout=20_000)
        expect(kiosk.locator("html")).to_have_attribute("data-state", "waiting")
    expect(k1.locator("#net-banner")).to_contain_text("再接続しました")
    shot(k1, "kiosk-reconnected")
    expect(k1.locator("#waiting-position")).to_contain_text("次の順番です")
    expect(k2.locator("#waiting-position")).to_contain_text("順番: 2番目")

    # The interpreter's console came back too; the first in line is served first.
    expect(alice.locator("#conn")).to_have_attribute("data-status", "open", timeout=20_000)
    alice.click("[data-action=available]")  # calls are waiting: it rings at once
    alice.wait_for_selector("html[data-state=ringing]")
    expect(alice.locator("#ring-ward")).to_have_text("北区")
    alice.click("[data-action=accept]")
    k1.wait_for_selector("html[data-state=in-call]")
    expect(k2.locator("#waiting-position")).to_contain_text("次の順番です")
    alice.click("[data-action=hangup]")
    k1.wait_for_selector("html[data-state=ended]")
    k2.click("[data-action=cancel]")
    k2.wait_for_selector("html[data-state=home]")


def test_kiosk_offline_mid_queue_gets_its_place_back(pages, stack, shot) -> None:
    """The tablet's network drops while waiting; back online, it is still in line."""
    pages.console("alice")
    k1 = pages.kiosk("k1")
    k2 = pages.kiosk("k2")
    k1.click("[data-language=jsl]")
    expect(k1.locator("#waiting-position")).to_contain_text("次の順番です")
    k2.click("[data-language=jsl]")
    expect(k2.locator("#waiting-position")).to_contain_text("順番: 2番目")

    # Offline emulation blocks new connections but leaves an open WebSocket
    # alone (and in a loopback-only namespace the browser never reports a
    # network change), so the socket is dropped through the client's hook.
    k1.context.set_offline(True)
    k1.evaluate("() => window.tsunagu.client.reconnect()")
    expect(k1.locator("#net-banner")).to_contain_text("ネットワークが切れています")
    expect(k1.locator("html")).to_have_attribute(
        "data-connection", re.compile("offline|reconnecting")
    )
    shot(k1, "kiosk-offline")
    k1.wait_for_timeout(3000)
    expect(k1.locator("html")).not_to_have_attribute("data-connection", "open")
    k1.context.set_offline(False)
    expect(k1.locator("html")).to_have_attribute("data-connection", "open", timeout=20_000)
    expect(k1.locator("html")).to_have_attribute("data-state", "waiting")
    expect(k1.locator("#waiting-position")).to_contain_text("次の順番です")
    expect(k2.locator("#waiting-position")).to_contain_text("順番: 2番目")
    for kiosk in (k1, k2):
        kiosk.click("[data-action=cancel]")
        kiosk.wait_for_selector("html[data-state=home]")


def test_a_connected_call_survives_a_signaling_crash(pages, stack) -> None:
    """In a call, the signaling node dies and returns: both pages resume, chat still works."""
    alice = pages.console("alice")
    pages.available(alice)
    kiosk = pages.kiosk("k1")
    pages.connect(kiosk, alice)
    stack.kill_signaling()
    stack.start_signaling()
    for page in (kiosk, alice):
        expect(page.locator("html")).to_have_attribute("data-state", "in-call")
    expect(kiosk.locator("html")).to_have_attribute("data-connection", "open", timeout=20_000)
    expect(alice.locator("#conn")).to_have_attribute("data-status", "open", timeout=20_000)
    kiosk.click("[data-action=chat]")  # the chat opens when used
    kiosk.fill("textarea[name=chat]", "東京都北区王子1-2-3")
    kiosk.press("textarea[name=chat]", "Enter")
    expect(alice.locator("[data-role=chat-log]")).to_contain_text("東京都北区王子1-2-3")
    expect(kiosk.locator("html")).to_have_attribute("data-state", "in-call")
    kiosk.click("[data-action=hangup]")
    kiosk.wait_for_selector("html[data-state=ended]")
    alice.wait_for_selector("html[data-state=wrapup]")


def test_kiosk_reload_mid_queue_keeps_its_place(pages) -> None:
    """Someone reloads the tablet while waiting: the stored token signs in, the call is back."""
    pages.console("alice")
    k1 = pages.kiosk("k1")
    k1.click("[data-language=jsl]")
    expect(k1.locator("#waiting-position")).to_contain_text("次の順番です")
    k1.reload()
    expect(k1.locator("html")).to_have_attribute("data-state", "waiting", timeout=10_000)
    expect(k1.locator("#waiting-position")).to_contain_text("次の順番です")
    expect(k1.locator("#waiting-language")).to_contain_text("日本手話")
    assert "token" not in k1.url
    k1.click("[data-action=cancel]")
    k1.wait_for_selector("html[data-state=home]")
