"""The interpreter's console and the supervisor's screen for a working day (issue 11).

Item 9: in a call at 1280x800 and 1920x1080 the console never scrolls as a page, the call
facts stay in view, the chat log shows at least 6 messages and the remote video is the
largest element. Item 10: the idle screen shows the camera, the calls waiting per
language and today's own calls. Item 11: the supervisor's live calls, interpreters and
alerts are above the fold at 1280x800, a person is counted once, no "mean – s" without
data, and today's calls can be filtered beside the CSV.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import screenshot_path

pytestmark = [pytest.mark.browser, pytest.mark.webrtc]

NEEDS_RELAY = True
STAFF_SIZES = [(1280, 800), (1920, 1080)]

MEASURE_CONSOLE_CALL = r"""() => {
  const se = document.scrollingElement;
  const rect = (el) => el.getBoundingClientRect();
  const inView = (r) => r.width > 0 && r.height > 0 && r.top >= 0 && r.left >= 0
    && r.bottom <= innerHeight + 0.5 && r.right <= innerWidth + 0.5;
  const facts = document.querySelector("[data-role=call-facts]");
  const log = document.querySelector("[data-role=chat-log]");
  const lr = rect(log);
  const shown = [...log.querySelectorAll("li")].filter((li) => {
    const r = rect(li);
    return r.top >= lr.top - 0.5 && r.bottom <= lr.bottom + 0.5;
  }).length;
  const video = document.querySelector("video[data-role=remote]");
  const vr = rect(video);
  const videoArea = vr.width * vr.height;
  let largest = null;
  for (const el of document.querySelectorAll("body *")) {
    // The picture's own frame (.stage and what is in it) is the video's, not a rival.
    if (el === video || el.contains(video) || el.closest(".stage") === video.closest(".stage"))
      continue;
    if (!el.checkVisibility()) continue;
    const r = rect(el);
    const a = r.width * r.height;
    if (a > videoArea && (!largest || a > largest.area)) {
      const name = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + "." + el.className;
      largest = {area: a, name};
    }
  }
  const input = document.querySelector("textarea[name=chat]");
  const logout = document.querySelector("[data-action=logout]");
  const title = document.querySelector(".topbar h1");
  return {vw: innerWidth, vh: innerHeight, scrollW: se.scrollWidth, scrollH: se.scrollHeight,
          factsInView: inView(rect(facts)), factsText: facts.textContent,
          chatShown: shown, chatTotal: log.querySelectorAll("li").length,
          inputInView: inView(rect(input)), video: [vr.width, vr.height], largerThanVideo: largest,
          headerOneRow: Math.abs(rect(logout).top - rect(title).top) < 20,
          headerHeight: rect(document.querySelector(".topbar")).height};
}"""


def console_problems(m: dict[str, Any]) -> list[str]:
    """Every way the console in a call breaks item 9."""
    bad = []
    if m["scrollH"] > m["vh"] or m["scrollW"] > m["vw"]:
        bad.append(f"page scrolls: {m['scrollW']}x{m['scrollH']} on {m['vw']}x{m['vh']}")
    if not m["factsInView"]:
        bad.append("call facts out of view")
    if m["chatShown"] < min(6, m["chatTotal"]):
        bad.append(f"chat log shows {m['chatShown']} of {m['chatTotal']} messages (< 6)")
    if not m["inputInView"]:
        bad.append("chat input out of view")
    if m["largerThanVideo"]:
        bad.append(f"{m['largerThanVideo']['name']} is larger than the remote video")
    if not m["headerOneRow"]:
        bad.append(f"header wraps ({m['headerHeight']:.0f} px)")
    return bad


def _sizes(page: Page, name: str, measure: str | None = None) -> dict[str, Any]:
    out = {}
    for w, h in STAFF_SIZES:
        page.set_viewport_size({"width": w, "height": h})
        page.wait_for_timeout(250)
        page.screenshot(path=str(screenshot_path(f"{name}-{w}x{h}-chromium")))
        if measure:
            out[f"{w}x{h}"] = page.evaluate(measure)
    return out


def test_console_idle_call_and_wrapup(pages, stack) -> None:
    """Idle: camera, queue per language, own calls; in a call: one screen with facts and chat."""
    assert stack.relay is not None, f"relay did not start: {stack.relay_error}"
    alice = pages.console("alice")
    # Item 10: the camera shows before going available.
    pages.wait_js(alice, "() => document.querySelector('video[data-role=preview]').videoWidth > 0")
    expect(alice.locator("video[data-role=preview]")).to_be_visible()
    queue = alice.locator("[data-role=queue]")
    expect(queue.locator("li[data-language=jsl]")).to_have_attribute("data-waiting", "0")
    expect(queue.locator("li[data-language=en]")).to_have_attribute("data-waiting", "0")
    expect(queue.locator("li[data-language=vi]")).to_have_count(0)  # not hers
    expect(alice.locator("[data-role=my-calls] tr[data-call]")).to_have_count(0)
    _sizes(alice, "console-away")
    kiosk = pages.kiosk("k1", portrait=False)
    kiosk.click("[data-language=jsl]")
    expect(queue.locator("li[data-language=jsl]")).to_have_attribute("data-waiting", "1",
                                                                       timeout=5000)
    _sizes(alice, "console-away-call-waiting")
    alice.click("[data-action=available]")
    alice.wait_for_selector("html[data-state=ringing]")
    _sizes(alice, "console-ringing")
    alice.click("[data-action=accept]")
    alice.wait_for_selector("html[data-state=in-call]")
    kiosk.wait_for_selector("html[data-state=in-call]")
    pages.wait_js(alice, "() => document.querySelector('video[data-role=remote]').videoWidth > 0")

    # Item 9: eight chat messages, then measure at both sizes.
    kiosk.click("[data-action=chat]")
    for n in range(4):
        kiosk.fill("textarea[name=chat]", f"山田 太郎 {n}")
        kiosk.press("textarea[name=chat]", "Enter")
        alice.fill("textarea[name=chat]", f"確認します {n}")
        alice.press("textarea[name=chat]", "Enter")
    expect(alice.locator("[data-role=chat-log] li")).to_have_count(8)
    problems = []
    for size, m in _sizes(alice, "console-in-call", MEASURE_CONSOLE_CALL).items():
        problems += [f"{size}: {p}" for p in console_problems(m)]
        assert "北区" in m["factsText"] and "日本手話" in m["factsText"], m["factsText"]
        print(f"console {size}: video {m['video']}, chat shows {m['chatShown']}, "
              f"header {m['headerHeight']:.0f} px")
    assert not problems, "\n".join(problems)

    alice.set_viewport_size({"width": 1280, "height": 800})
    alice.click("[data-action=hangup]")
    alice.wait_for_selector("html[data-state=wrapup]")
    _sizes(alice, "console-wrapup")
    alice.click("[data-action=away]")
    alice.wait_for_selector("html[data-state=away]")
    # Item 10: today's own call is listed, and the preview is back.
    expect(alice.locator("[data-role=my-calls] tr[data-call]")).to_have_count(1, timeout=5000)
    expect(alice.locator("[data-role=my-calls] tr[data-call]")).to_contain_text("北区")
    pages.wait_js(alice, "() => document.querySelector('video[data-role=preview]').videoWidth > 0")
    _sizes(alice, "console-away-after-call")


MEASURE_SUPERVISOR = r"""() => {
  const fold = (sel) => {
    const el = document.querySelector(sel);
    const r = el && el.getBoundingClientRect();
    return r ? {top: r.top, bottom: r.bottom} : null;
  };
  return {vh: innerHeight, calls: fold("[data-section=calls] tbody tr"),
          interpreters: fold("[data-section=interpreters] tbody tr"),
          alerts: fold("[data-section=alerts] li"), text: document.body.innerText};
}"""


def test_supervisor_first_screen_counts_people_once(pages, stack) -> None:
    """Alice (jsl + en) in a jsl call: one call in progress, not two; live data above the fold."""
    sup = pages.supervisor()
    expect(sup.locator("[data-stat=in_call]")).to_have_text("0", timeout=10_000)
    text = sup.evaluate("() => document.body.innerText")
    assert not re.search(r"平均\s*–|–\s*秒|mean –", text), "a mean shown without data"
    alice = pages.console("alice")
    pages.available(alice)
    kiosk = pages.kiosk("k2", portrait=False)
    pages.connect(kiosk, alice)
    call_id = kiosk.evaluate("() => window.tsunagu.state.call.id")
    expect(sup.locator("#calls tr[data-state=connected]")).to_have_count(1, timeout=10_000)
    expect(sup.locator("[data-stat=in_call]")).to_have_text("1")
    # Per language nothing counts people in calls (jsl and en would both say 1).
    expect(sup.locator("#tiles [data-field=in_call]")).to_have_count(0)
    in_call_numbers = sup.evaluate("""() => [...document.querySelectorAll('[data-stat=in_call]')]
        .map((e) => e.textContent)""")
    assert in_call_numbers == ["1"]
    # Someone waits for English with nobody free: an alert, above the fold.
    k1 = pages.kiosk("k1", portrait=False)
    k1.click("[data-language=en]")  # alice is busy, bob is not signed in: nobody free
    pages.wait_js(k1, "() => window.tsunagu.state.call && window.tsunagu.state.call.id")
    waited_id = k1.evaluate("() => window.tsunagu.state.call.id")
    expect(sup.locator("[data-section=alerts] li[data-language=en]")).to_have_count(1,
                                                                                   timeout=10_000)
    sup.set_viewport_size({"width": 1280, "height": 800})
    sup.wait_for_timeout(300)
    m = sup.evaluate(MEASURE_SUPERVISOR)
    for part in ("calls", "interpreters", "alerts"):
        assert m[part] is not None and m[part]["bottom"] <= m["vh"], (part, m[part])
    for w, h in STAFF_SIZES:
        sup.set_viewport_size({"width": w, "height": h})
        sup.wait_for_timeout(250)
        sup.screenshot(path=str(screenshot_path(f"supervisor-live-{w}x{h}-chromium")))
    k1.click("[data-action=cancel]")
    alice.click("[data-action=hangup]")
    kiosk.wait_for_selector("html[data-state=ended]")

    # Today's calls: the answered jsl call (南区) and the abandoned en call (北区), filterable.
    rows = sup.locator("[data-role=today-calls] tr[data-call]")
    expect(rows.and_(sup.locator(f"[data-call='{call_id}']"))).to_have_count(1, timeout=10_000)
    expect(rows.and_(sup.locator(f"[data-call='{waited_id}']"))).to_have_count(1, timeout=10_000)

    def shown() -> list[list[str]]:
        return sup.evaluate("""() => [...document.querySelectorAll(
            '[data-role=today-calls] tr[data-call]')].map((tr) => [tr.dataset.call,
            tr.dataset.language, tr.dataset.outcome, tr.children[1].textContent])""")

    sup.select_option("#day-filter select[name=language]", "jsl")
    expect(rows.and_(sup.locator(f"[data-call='{waited_id}']"))).to_have_count(0)
    assert shown() and all(r[1] == "jsl" for r in shown())
    sup.select_option("#day-filter select[name=language]", "")
    sup.select_option("#day-filter select[name=outcome]", "abandoned")
    expect(rows.and_(sup.locator(f"[data-call='{call_id}']"))).to_have_count(0)
    assert waited_id in [r[0] for r in shown()] and all(r[2] == "abandoned" for r in shown())
    sup.select_option("#day-filter select[name=outcome]", "")
    sup.select_option("#day-filter select[name=ward]", "南区")
    expect(rows.and_(sup.locator(f"[data-call='{waited_id}']"))).to_have_count(0)
    assert call_id in [r[0] for r in shown()] and all(r[3] == "南区" for r in shown())
    sup.set_viewport_size({"width": 1280, "height": 800})
    sup.screenshot(path=str(screenshot_path("supervisor-today-1280x800-chromium")), full_page=True)


SIGN_IN = """([user, password]) => {
  document.querySelector('input[name=username]').value = user;
  document.querySelector('input[name=password]').value = password;
  return true;
}"""


def test_staff_screens_firefox(pages, stack, firefox, lab_link) -> None:
    """The console (in a real call with a Chromium kiosk) and the supervisor, in Firefox."""
    from tests.browser.conftest import PASSWORD

    assert stack.relay is not None, f"relay did not start: {stack.relay_error}"
    firefox.open("sup", f"{stack.url}/supervisor", 1280, 800)
    firefox.evaluate("sup", SIGN_IN, ["sup", PASSWORD])
    firefox.click("sup", "button[type=submit]")
    firefox.wait("sup", "() => /^\\d+$/.test(document.querySelector('[data-stat=answered]')"
                        ".dataset.value || '')")
    firefox.open("alice", f"{stack.url}/console", 1280, 800)
    firefox.evaluate("alice", SIGN_IN, ["alice", PASSWORD])
    firefox.click("alice", "button[type=submit]")
    firefox.wait("alice", "() => ['away', 'available', 'wrapup'].includes("
                          "document.documentElement.dataset.state)")
    if firefox.evaluate("alice", "() => document.documentElement.dataset.state") != "away":
        firefox.click("alice", "[data-action=away]")
        firefox.wait("alice", "() => document.documentElement.dataset.state === 'away'")
    firefox.wait("alice", "() => document.querySelector('video[data-role=preview]').videoWidth > 0")
    for w, h in STAFF_SIZES:
        firefox.viewport("alice", w, h)
        firefox.screenshot("alice", screenshot_path(f"console-away-{w}x{h}-firefox"))
    kiosk = pages.kiosk("k1", portrait=False)
    kiosk.click("[data-language=jsl]")
    firefox.wait("alice", "() => document.querySelector("
                          "'[data-role=queue] li[data-language=jsl]').dataset.waiting === '1'")
    firefox.click("alice", "[data-action=available]")
    firefox.wait("alice", "() => document.documentElement.dataset.state === 'ringing'")
    for w, h in STAFF_SIZES:
        firefox.viewport("alice", w, h)
        firefox.screenshot("alice", screenshot_path(f"console-ringing-{w}x{h}-firefox"))
    firefox.click("alice", "[data-action=accept]")
    kiosk.wait_for_selector("html[data-state=in-call]")
    firefox.wait("alice", "() => document.querySelector('video[data-role=remote]').videoWidth > 0",
                 timeout=30)
    kiosk.click("[data-action=chat]")
    for n in range(8):
        kiosk.fill("textarea[name=chat]", f"番号 {n}")
        kiosk.press("textarea[name=chat]", "Enter")
        # each message acknowledged before the next, as a person types them
        kiosk.wait_for_function(f"() => document.querySelectorAll("
                                f"'[data-role=chat-log] li').length >= {n + 1}")
    firefox.wait("alice", "() => document.querySelectorAll('[data-role=chat-log] li').length === 8",
                 timeout=30)
    problems = []
    for w, h in STAFF_SIZES:
        firefox.viewport("alice", w, h)
        firefox.evaluate("alice", "() => new Promise((r) => setTimeout(r, 300))")
        firefox.screenshot("alice", screenshot_path(f"console-in-call-{w}x{h}-firefox"))
        m = firefox.evaluate("alice", MEASURE_CONSOLE_CALL)
        problems += [f"firefox {w}x{h}: {p}" for p in console_problems(m)]
        print(f"console firefox {w}x{h}: video {m['video']}, chat shows {m['chatShown']}")
    m = firefox.evaluate("sup", MEASURE_SUPERVISOR)
    for part in ("calls", "interpreters", "alerts"):
        assert m[part] is not None and m[part]["bottom"] <= m["vh"], (part, m[part])
    for w, h in STAFF_SIZES:
        firefox.viewport("sup", w, h)
        firefox.screenshot("sup", screenshot_path(f"supervisor-live-{w}x{h}-firefox"))
    firefox.click("alice", "[data-action=hangup]")
    firefox.wait("alice", "() => document.documentElement.dataset.state === 'wrapup'")
    for w, h in STAFF_SIZES:
        firefox.viewport("alice", w, h)
        firefox.screenshot("alice", screenshot_path(f"console-wrapup-{w}x{h}-firefox"))
    assert not firefox.errors()
    firefox.close_page("alice")
    firefox.close_page("sup")
    assert not problems, "\n".join(problems)
