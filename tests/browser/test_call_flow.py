"""A resident calls from the counter tablet, an interpreter answers, the supervisor watches."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.webrtc]

NEEDS_RELAY = True

# What the page itself measures, straight from the peer connection.
INBOUND_VIDEO = """async () => {
  const leg = window.tsunagu && window.tsunagu.leg;
  if (!leg || !leg.pc) return {frames: 0, t: performance.now(), state: "none"};
  const report = await leg.pc.getStats();
  let frames = 0;
  report.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
  });
  return {frames, t: performance.now(), state: leg.pc.connectionState};
}"""

OUTBOUND_SETTINGS = """async () => {
  const pc = window.tsunagu.leg.pc;
  const sender = pc.getSenders().find((s) => s.track && s.track.kind === "video");
  const params = sender.getParameters();
  return {hint: sender.track.contentHint, pref: params.degradationPreference || null,
          kinds: pc.getSenders().filter((s) => s.track).map((s) => s.track.kind).sort()};
}"""


def _decoded_fps(pages, page: Page, seconds: float = 3.0) -> float:
    """Frames decoded per second by the page over `seconds` (after frames started)."""
    pages.wait_js(page, f"async () => ({INBOUND_VIDEO})().then((r) => r.frames > 10)")
    first = page.evaluate(INBOUND_VIDEO)
    page.wait_for_timeout(seconds * 1000)
    second = page.evaluate(INBOUND_VIDEO)
    return (second["frames"] - first["frames"]) / ((second["t"] - first["t"]) / 1000)


def test_call_chat_hangup_from_kiosk_and_supervisor_counts(pages, shot) -> None:
    """Kiosk calls 日本手話, the console answers, both chat, the kiosk hangs up."""
    sup = pages.supervisor()
    console = pages.console("alice", ensure_away=False)
    # The first session of the day starts away: nothing is offered until 受付可.
    expect(console.locator("html")).to_have_attribute("data-state", "away")
    expect(console.locator("[data-action=away]")).to_have_attribute("aria-pressed", "true")
    shot(console, "console-away")
    pages.available(console)
    shot(console, "console-available")
    kiosk = pages.kiosk("k1")
    # 日本手話 first, then spoken languages, each in its own script.
    buttons = kiosk.locator("[data-language]")
    expect(buttons.first).to_have_attribute("data-language", "jsl")
    expect(buttons.first).to_contain_text("日本手話")
    expect(kiosk.locator("[data-language=ko]")).to_contain_text("한국어")
    expect(kiosk.locator("[data-language=ko]")).to_contain_text("韓国語")
    assert "token" not in kiosk.url  # the device token left the address bar
    shot(kiosk, "kiosk-home")

    kiosk.click("[data-language=jsl]")
    console.wait_for_selector("html[data-state=ringing]")
    ring = console.locator("#view-ringing")
    expect(ring).to_contain_text("日本手話")
    expect(ring).to_contain_text("北区")
    expect(ring).to_contain_text("3")
    expect(console.locator("#ring-countdown")).to_contain_text(re.compile(r"\d+ 秒"))
    shot(console, "console-ringing")
    expect(kiosk.locator("html")).to_have_attribute("data-state", re.compile("waiting|in-call"))

    console.click("[data-action=accept]")
    console.wait_for_selector("html[data-state=in-call]")
    kiosk.wait_for_selector("html[data-state=in-call]")
    expect(kiosk.locator("[data-role=status]")).to_contain_text("Alice")
    expect(console.locator("#call-facts")).to_contain_text("北区")

    # The supervisor sees the call live, with its ward, counter and language.
    row = sup.locator("#calls tr[data-state=connected]")
    expect(row).to_have_count(1, timeout=10_000)
    expect(row).to_contain_text("北区")
    expect(row).to_contain_text("日本手話")
    expect(sup.locator("#interpreters tr[data-interpreter=alice]")).to_have_attribute(
        "data-state", "in_call"
    )
    shot(sup, "supervisor-live-call")

    # Chat both ways: a name from the counter, a number from the interpreter.
    kiosk.click("[data-action=chat]")  # the chat opens when used
    kiosk.fill("textarea[name=chat]", "山田 太郎")
    kiosk.press("textarea[name=chat]", "Enter")
    expect(console.locator("[data-role=chat-log]")).to_contain_text("山田 太郎")
    expect(kiosk.locator("textarea[name=chat]")).to_have_value("")
    console.fill("textarea[name=chat]", "03-1234-5678")
    console.press("textarea[name=chat]", "Enter")
    expect(kiosk.locator("[data-role=chat-log]")).to_contain_text("03-1234-5678")
    shot(kiosk, "kiosk-in-call")
    shot(console, "console-in-call")

    # Mute and camera toggles act on the tracks being sent.
    kiosk.click("[data-action=mute]")
    expect(kiosk.locator("[data-action=mute]")).to_have_attribute("aria-pressed", "true")
    expect(kiosk.locator("[data-action=mute]")).to_contain_text("マイクを入れる")
    tracks = "() => window.tsunagu.state.stream.getTracks().map((t) => [t.kind, t.enabled])"
    assert ["audio", False] in kiosk.evaluate(tracks)
    kiosk.click("[data-action=camera]")
    assert ["video", False] in kiosk.evaluate(tracks)
    kiosk.click("[data-action=mute]")
    kiosk.click("[data-action=camera]")
    assert sorted(kiosk.evaluate(tracks)) == [["audio", True], ["video", True]]

    kiosk.click("[data-action=hangup]")
    kiosk.wait_for_selector("html[data-state=ended]")
    expect(kiosk.locator("[data-role=status]")).to_contain_text("通話が終わりました")
    shot(kiosk, "kiosk-ended")
    kiosk.click("[data-action=skip-rating]")  # the rating faces (tests/browser/test_rating.py)
    console.wait_for_selector("html[data-state=wrapup]")
    shot(console, "console-wrapup")
    # Wrap-up ends by itself (TSUNAGU_WRAPUP_S=3) and the kiosk goes home.
    console.wait_for_selector("html[data-state=available]", timeout=15_000)
    kiosk.wait_for_selector("html[data-state=home]", timeout=15_000)

    # Today's numbers after the call, without reloading the page.
    expect(sup.locator("#calls tr[data-call]")).to_have_count(0, timeout=10_000)
    expect(sup.locator("[data-stat=answered]")).to_have_text("1", timeout=10_000)
    expect(sup.locator("[data-stat=waiting]")).to_have_text("0")
    expect(sup.locator("[data-stat=service_level_pct]")).to_have_text("100")
    expect(sup.locator("[data-stat=abandon_rate_pct]")).to_have_text("0")
    sup.wait_for_selector("#chart svg circle")
    shot(sup, "supervisor-after-call")

    # The report for today, fetched with the supervisor's token and saved as a file.
    with sup.expect_download() as info:
        sup.click("[data-action=download-csv]")
    download = info.value
    assert download.suggested_filename.endswith(".csv")
    rows = Path(download.path()).read_text(encoding="utf-8-sig").strip().splitlines()
    assert len(rows) == 2, rows  # header + the one finished call
    assert "北区" in rows[1]
    assert "jsl" in rows[1]
    assert "山田" not in "".join(rows)  # no conversation content


def test_console_hangs_up_and_ready_now(pages, shot) -> None:
    """The interpreter ends the call; wrap-up; 'ready now' makes them available at once."""
    console = pages.console("alice")
    pages.available(console)
    kiosk = pages.kiosk("k1", portrait=False)
    pages.connect(kiosk, console)
    shot(kiosk, "kiosk-in-call-landscape")
    console.click("[data-action=hangup]")
    kiosk.wait_for_selector("html[data-state=ended]")
    console.wait_for_selector("html[data-state=wrapup]")
    console.click("[data-action=ready]")
    console.wait_for_selector("html[data-state=available]")
    expect(console.locator("[data-action=available]")).to_have_attribute("aria-pressed", "true")


def test_media_flows_both_ways_through_relay(pages, stack, shot) -> None:
    """Both pages decode the other's video at >= 20 fps, through the relay."""
    assert stack.relay is not None, f"relay did not start: {stack.relay_error}"
    sup = pages.supervisor()
    console = pages.console("alice")
    pages.available(console)
    kiosk = pages.kiosk("k2")
    pages.connect(kiosk, console)
    kiosk_fps = _decoded_fps(pages, kiosk)
    console_fps = _decoded_fps(pages, console)
    assert kiosk_fps >= 20, f"kiosk decodes the interpreter at {kiosk_fps:.1f} fps"
    assert console_fps >= 20, f"console decodes the resident at {console_fps:.1f} fps"
    for page in (kiosk, console):
        settings = page.evaluate(OUTBOUND_SETTINGS)
        assert settings["hint"] == "motion"
        assert settings["pref"] == "maintain-framerate"
        assert settings["kinds"] == ["audio", "video"]
        width = page.evaluate("document.querySelector('video[data-role=remote]').videoWidth")
        assert width > 0
    # The console's live quality line shows what getStats says.
    expect(console.locator("#quality")).to_contain_text(re.compile(r"fps [1-9]\d"))
    # The relay's measurements reach the supervisor's table of live calls.
    quality = sup.locator("#calls tr[data-state=connected] [data-field=quality]")
    expect(quality).to_contain_text(re.compile(r"\b[1-9]\d* fps"), timeout=15_000)
    shot(sup, "supervisor-live-call-quality")
    shot(kiosk, "kiosk-in-call-video")
    shot(console, "console-in-call-video")
    console.click("[data-action=hangup]")
    kiosk.wait_for_selector("html[data-state=ended]")


def test_media_comes_back_after_the_relay_restarts(pages, stack) -> None:
    """The relay dies mid-call: the call goes on and both pages offer again by themselves."""
    assert stack.relay is not None, f"relay did not start: {stack.relay_error}"
    console = pages.console("alice")
    pages.available(console)
    kiosk = pages.kiosk("k1")
    pages.connect(kiosk, console)
    for page in (kiosk, console):
        pages.wait_js(page, f"async () => ({INBOUND_VIDEO})().then((r) => r.frames > 10)")
        page.evaluate("() => { window.__firstPc = window.tsunagu.leg.pc; }")
    stack.kill_relay()
    stack.start_relay()
    assert stack.relay is not None, f"relay did not restart: {stack.relay_error}"
    fresh_leg_decoding = f"""async () => window.tsunagu.leg.pc !== window.__firstPc
        && ({INBOUND_VIDEO})().then((r) => r.frames > 10)"""
    for page in (kiosk, console):
        pages.wait_js(page, fresh_leg_decoding, timeout=45)
        expect(page.locator("html")).to_have_attribute("data-state", "in-call")
    assert _decoded_fps(pages, kiosk, 2.0) >= 15
    kiosk.click("[data-action=hangup]")
    console.wait_for_selector("html[data-state=wrapup]")
