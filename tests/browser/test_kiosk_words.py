"""The kiosk speaks the resident's language (issue 11 item 5) and knows when another
screen took its token (item 7).

Item 5: after a language is chosen every visible sentence is in that language or in
Japanese (each text's nearest `lang` says which), the status element carries the
language's tag with the Japanese sentence in a child [lang=ja] (PROTOCOL.md section 12),
for every language of the default catalogue. Item 7: one device token open on two
screens: the newer keeps it, the older shows `elsewhere` and stops reconnecting until
tapped.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot_path
from tests.browser.layout import KIOSK_SIZES

pytestmark = pytest.mark.browser

# Calls for languages nobody speaks wait (instead of ending at once) so the waiting
# screen can be read.
STACK_ENV = {"TSUNAGU_NO_INTERPRETER_WAIT_S": "120"}

TAGS = {"jsl": "ja", "en": "en", "zh": "zh", "ko": "ko", "vi": "vi", "pt": "pt", "es": "es",
        "tl": "tl", "ne": "ne"}
# Each language's own script, where it has one of its own.
SCRIPTS = {"zh": r"[\u4e00-\u9fff]", "ko": r"[\uac00-\ud7af]", "ne": r"[\u0900-\u097f]",
           "vi": r"[ạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹđ]"}

WORDS = r"""() => {
  const bad = [];
  const walker = document.createTreeWalker(document.querySelector(".kiosk"), NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const n = walker.currentNode;
    if (!n.textContent.trim()) continue;
    const el = n.parentElement;
    if (!el.checkVisibility({visibilityProperty: true})) continue;
    const holder = el.closest("[lang]");
    bad.push({lang: holder ? holder.lang : null, text: n.textContent.trim().slice(0, 60)});
  }
  const status = document.querySelector("[data-role=status]");
  const ja = status.querySelector(":scope > [lang=ja]");
  const own = status.querySelector(":scope > .own");
  return {texts: bad, statusLang: status.getAttribute("lang"),
          reason: status.dataset.reason || null, ja: ja ? ja.textContent : null,
          own: own ? own.textContent : null, ownLang: own ? own.lang : null,
          pictogram: !!status.querySelector("svg.pict"),
          placeholder: document.querySelector("textarea[name=chat]").placeholder};
}"""


def _check_words(m: dict, code: str) -> list[str]:
    tag = TAGS[code]
    bad = [f"{t['text']!r} in lang {t['lang']}" for t in m["texts"] if t["lang"] not in (tag, "ja")]
    if m["statusLang"] != tag:
        bad.append(f"status lang {m['statusLang']} (want {tag})")
    if not m["ja"] or not re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", m["ja"]):
        bad.append(f"no Japanese sentence in the status: {m['ja']!r}")
    if code == "jsl":
        if not m["pictogram"]:
            bad.append("no pictogram for JSL")
    else:
        if not m["own"] or m["ownLang"] != tag:
            bad.append(f"status has no sentence in {tag}: {m['own']!r} ({m['ownLang']})")
        if code in SCRIPTS and not re.search(SCRIPTS[code], m["own"] or "", re.IGNORECASE):
            bad.append(f"status {m['own']!r} is not written in {code}'s script")
        if code != "en" and m["own"] in ("Calling an interpreter", "The call has ended"):
            bad.append(f"status left in English: {m['own']!r}")
    return bad


def test_every_language_of_the_catalogue_is_spoken_while_waiting(pages, shot) -> None:
    """Tap each language in turn (nobody answers): every sentence in it or in Japanese."""
    kiosk = pages.kiosk("k1", portrait=False)
    problems = []
    for code in TAGS:
        kiosk.click(f"[data-language={code}]")
        kiosk.wait_for_selector("html[data-state=waiting]")
        expect(kiosk.locator("#waiting-position")).to_contain_text(re.compile(r"\S"))
        # Nobody is signed in: the screen says so plainly and promises no wait time.
        expect(kiosk.locator("[data-role=status]")).to_have_attribute(
            "data-reason", "none-available"
        )
        estimate = kiosk.locator("[data-role=wait-estimate]")
        expect(estimate).not_to_have_attribute("data-max-s", re.compile(r".*"))
        problems += [f"{code}: {p}" for p in _check_words(kiosk.evaluate(WORDS), code)]
        kiosk.screenshot(path=str(screenshot_path(f"kiosk-waiting-{code}-1180x800-chromium")))
        kiosk.click("[data-action=cancel]")
        kiosk.wait_for_selector("html[data-state=home]")
        status = kiosk.evaluate("() => document.querySelector('[data-role=status]').textContent")
        assert status == "", status
    assert not problems, "\n".join(problems)


@pytest.mark.webrtc
def test_in_call_and_ended_in_the_chosen_language(pages, shot) -> None:
    """An English call: the name label, buttons, chat and the end, in English beside Japanese."""
    bob = pages.console("bob")
    pages.available(bob)
    kiosk = pages.kiosk("k2")
    pages.connect(kiosk, bob, "en")
    kiosk.wait_for_selector("#cue", state="hidden", timeout=5000)
    kiosk.click("[data-action=chat]")
    m = kiosk.evaluate(WORDS)
    problems = _check_words(m, "en")
    assert "Interpreter: Bob" in (m["own"] or ""), m
    assert "通訳者: Bob" in (m["ja"] or ""), m
    assert "Type here" in m["placeholder"] and "ここに入力" in m["placeholder"]
    shot(kiosk, "kiosk-in-call-en-chat")
    bob.click("[data-action=hangup]")
    kiosk.wait_for_selector("html[data-state=ended]")
    m = kiosk.evaluate(WORDS)
    problems += _check_words(m, "en")
    assert m["own"] == "The call has ended" and m["ja"] == "通話が終わりました", m
    shot(kiosk, "kiosk-ended-en")
    assert not problems, "\n".join(problems)


COUNT_SOCKETS = r"""
(() => {
  window.__sockets = 0;
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) { super(...args); window.__sockets += 1; }
  };
})();
"""


def test_one_token_on_two_screens_the_newer_wins(pages, stack) -> None:
    """The older screen says so and stops retrying until tapped; then it takes over."""
    url = f"/kiosk#token={stack.kiosks['k2']}"
    older = pages.new(url, width=800, height=600, has_touch=True, init_script=COUNT_SOCKETS)
    older.wait_for_selector("[data-language=jsl]:not([disabled])")
    newer = pages.new(url, width=800, height=600, has_touch=True, init_script=COUNT_SOCKETS)
    newer.wait_for_selector("[data-language=jsl]:not([disabled])")
    older.wait_for_selector("html[data-state=elsewhere]", timeout=10_000)
    view = older.locator("#view-elsewhere")
    expect(view).to_contain_text("このタブレットは別の画面で開かれています")
    expect(view).to_contain_text("This tablet is open on another screen")
    sockets = older.evaluate("() => window.__sockets")
    older.wait_for_timeout(6000)  # several backoff periods: nothing may reconnect
    assert older.evaluate("() => window.__sockets") == sockets
    assert newer.evaluate("() => window.__sockets") == 1
    expect(newer.locator("html")).to_have_attribute("data-connection", "open")
    expect(newer.locator("html")).to_have_attribute("data-state", "home")
    for w, h in KIOSK_SIZES:
        older.set_viewport_size({"width": w, "height": h})
        older.screenshot(path=str(screenshot_path(f"kiosk-elsewhere-{w}x{h}-chromium")))
    # A tap on the older screen takes the tablet back; the other one now steps aside.
    older.click("[data-action=reconnect]")
    expect(older.locator("html")).to_have_attribute("data-connection", "open", timeout=10_000)
    expect(older.locator("html")).to_have_attribute("data-state", "home")
    newer.wait_for_selector("html[data-state=elsewhere]", timeout=10_000)
    older.click("[data-language=jsl]")  # and it works
    older.wait_for_selector("html[data-state=waiting]")
    older.click("[data-action=cancel]")


def test_wait_estimate_range_and_nobody_free(pages) -> None:
    """[data-role=wait-estimate] shows the server's range (data-min-s/data-max-s), falls back to
    estimated_wait_s, and the status says plainly when nobody is free (never "soon")."""
    kiosk = pages.kiosk("k2", portrait=False)
    kiosk.click("[data-language=vi]")
    pages.wait_js(kiosk, "() => window.tsunagu.state.call && window.tsunagu.state.call.id")
    estimate = kiosk.locator("[data-role=wait-estimate]")
    status = kiosk.locator("[data-role=status]")
    # From the server itself: nobody for Vietnamese is signed in, so nobody is free, and there
    # is no estimate to give (call.queued's reason "none_available", no range).
    expect(status).to_have_attribute("data-reason", "none-available")
    expect(estimate).not_to_have_attribute("data-min-s", re.compile(".*"))
    tell = """(fields) => window.tsunagu.client.dispatchEvent(new CustomEvent("call.position",
        {detail: {type: "call.position", call_id: window.tsunagu.state.call.id, position: 2,
                  ...fields}}))"""
    # As the server sends it today: one number.
    kiosk.evaluate(tell, {"estimated_wait_s": 400})
    expect(estimate).to_have_attribute("data-min-s", "400")
    expect(estimate).to_have_attribute("data-max-s", "400")
    expect(estimate).to_contain_text("khoảng 7 phút")
    # A range, with nobody for the language free.
    kiosk.evaluate(tell, {"estimated_wait_s": 400, "estimated_wait_min_s": 240,
                          "estimated_wait_max_s": 600, "reason": "none_available"})
    expect(estimate).to_have_attribute("data-min-s", "240")
    expect(estimate).to_have_attribute("data-max-s", "600")
    expect(estimate).to_contain_text("4–10 phút")
    expect(estimate.locator('[lang="ja"]')).to_contain_text("4〜10分")
    expect(status).to_have_attribute("data-reason", "none-available")
    expect(status).to_contain_text("đang bận hoặc vắng mặt")
    text = kiosk.evaluate("() => document.body.innerText")
    assert "まもなく" not in text and "soon" not in text.lower()
    kiosk.screenshot(path=str(screenshot_path("kiosk-waiting-none-available-vi-1180x800-chromium")))
    # Someone became free: the reason goes away.
    kiosk.evaluate(tell, {"estimated_wait_s": 5, "available": 1})
    expect(status).not_to_have_attribute("data-reason", "none-available")
    expect(estimate).to_have_attribute("data-max-s", "5")
    kiosk.click("[data-action=cancel]")
    kiosk.wait_for_selector("html[data-state=home]")
