"""What the layout tests measure in a page, and the rules the numbers must meet.

The JavaScript functions run in Chromium (Playwright) and Firefox (puppeteer-core) alike
and return plain JSON; the checks are pure Python on those numbers.
"""

from __future__ import annotations

from typing import Any

KIOSK_SIZES = [(800, 600), (1024, 768), (1280, 800), (768, 1024), (390, 844)]

# The rendered picture of video[data-role=remote] (its content box after object-fit), the
# self-view, the status (name) label, which element is on top at points over the picture,
# and whether the page scrolls.
MEASURE_KIOSK_CALL = r"""() => {
  const box = (el) => {
    const r = el.getBoundingClientRect();
    return {x: r.left, y: r.top, w: r.width, h: r.height};
  };
  const v = document.querySelector("video[data-role=remote]");
  const cs = getComputedStyle(v);
  const r = v.getBoundingClientRect();
  const px = (s) => parseFloat(s) || 0;
  const left = px(cs.borderLeftWidth) + px(cs.paddingLeft);
  const top = px(cs.borderTopWidth) + px(cs.paddingTop);
  const cw = r.width - left - px(cs.borderRightWidth) - px(cs.paddingRight);
  const ch = r.height - top - px(cs.borderBottomWidth) - px(cs.paddingBottom);
  const iw = v.videoWidth || 4, ih = v.videoHeight || 3;
  const fit = cs.objectFit;
  let s = 1;
  if (fit === "contain") s = Math.min(cw / iw, ch / ih);
  else if (fit === "cover") s = Math.max(cw / iw, ch / ih);
  else if (fit === "none") s = 1;
  const pw = fit === "fill" ? cw : iw * s, ph = fit === "fill" ? ch : ih * s;
  const pic = {x: r.left + left + (cw - pw) / 2, y: r.top + top + (ch - ph) / 2, w: pw, h: ph};
  const self = document.querySelector("video[data-role=self]");
  const selfShown = !!self && !self.hidden && getComputedStyle(self).display !== "none"
    && self.getBoundingClientRect().width > 0;
  // Sample a 13x13 grid over the picture: the topmost element must be the picture or the
  // self-view (hit-testing sees elements that ignore the pointer too, for this measure).
  const seeAll = document.createElement("style");
  seeAll.textContent = "* { pointer-events: auto !important; }";
  document.head.append(seeAll);
  const covered = [];
  for (let i = 0; i < 13; i++) for (let j = 0; j < 13; j++) {
    const x = pic.x + (i + 0.5) * pic.w / 13, y = pic.y + (j + 0.5) * pic.h / 13;
    if (x < 0 || y < 0 || x >= innerWidth || y >= innerHeight) continue;
    const top = document.elementFromPoint(x, y);
    if (top === v || top === self) continue;
    const name = top ? top.tagName.toLowerCase() + (top.id ? "#" + top.id : "") : "none";
    covered.push(`${name}@${Math.round(x)},${Math.round(y)}`);
  }
  seeAll.remove();
  const status = document.querySelector("[data-role=status]");
  const se = document.scrollingElement;
  return {
    vw: innerWidth, vh: innerHeight, fit, video: [v.videoWidth, v.videoHeight], pic,
    self: selfShown ? box(self) : null, label: box(status), labelText: status.textContent,
    covered, scrollW: se.scrollWidth, scrollH: se.scrollHeight,
  };
}"""


def area(r: dict[str, float]) -> float:
    return max(0.0, r["w"]) * max(0.0, r["h"])


def overlap(a: dict[str, float], b: dict[str, float]) -> float:
    """Area of the intersection of two boxes."""
    w = min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"])
    h = min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"])
    return max(0.0, w) * max(0.0, h)


def central_two_thirds(r: dict[str, float]) -> dict[str, float]:
    return {"x": r["x"] + r["w"] / 6, "y": r["y"] + r["h"] / 6, "w": r["w"] * 2 / 3,
            "h": r["h"] * 2 / 3}


def kiosk_call_problems(m: dict[str, Any]) -> list[str]:
    """Every way the measured in-call kiosk breaks issue 11 item 3 (empty when it meets it)."""
    vw, vh, pic = m["vw"], m["vh"], m["pic"]
    bad = []
    if m["fit"] != "contain":
        bad.append(f"object-fit {m['fit']} (the picture may be cropped)")
    if vw > vh:
        share = area(pic) / (vw * vh)
        if share < 0.55:
            bad.append(f"picture covers {share:.1%} of the screen (< 55 %)")
    else:
        if pic["w"] < 0.95 * vw:
            bad.append(f"picture {pic['w']:.0f} px wide of {vw} (< 95 %)")
        if pic["y"] < -0.5 or pic["y"] + pic["h"] > vh + 0.5:
            bottom = pic["y"] + pic["h"]
            bad.append(f"picture {pic['y']:.0f}..{bottom:.0f} not wholly on the first screen")
    if m["covered"]:
        bad.append(f"painted over the picture: {m['covered'][:5]}")
    if overlap(m["label"], pic) > 0:
        bad.append("the name label overlaps the picture")
    if m["self"] is not None:
        if area(m["self"]) > area(pic) / 9 + 0.5:
            bad.append(f"self-view {area(m['self']) / area(pic):.1%} of the picture (> 1/9)")
        if overlap(m["self"], central_two_thirds(pic)) > 0:
            bad.append("self-view inside the picture's central two-thirds")
    if m["scrollW"] > vw:
        bad.append(f"page {m['scrollW']} px wide on a {vw} px screen")
    return bad


# The home screen: every language button and the heading on the first screen, and no
# word broken across lines (a word's characters all on one line box).
MEASURE_HOME = r"""() => {
  const se = document.scrollingElement;
  const buttons = [...document.querySelectorAll("[data-language]")].map((b) => {
    const r = b.getBoundingClientRect();
    return {code: b.dataset.language, bottom: r.bottom, right: r.right};
  });
  const broken = [];
  const nodes = [...document.querySelectorAll(
    "h1 .ja, h1 .en, [data-language] .native, [data-language] .sub")];
  for (const el of nodes) {
    for (const tn of el.childNodes) {
      if (tn.nodeType !== 3) continue;
      const text = tn.textContent;
      // Japanese and Chinese have no spaces: the whole run counts as one word.
      const re = /\S+/g;
      let m;
      while ((m = re.exec(text))) {
        const range = document.createRange();
        range.setStart(tn, m.index);
        range.setEnd(tn, m.index + m[0].length);
        const rects = [...range.getClientRects()].filter((q) => q.width > 0);
        const tops = new Set(rects.map((q) => Math.round(q.top / 4)));
        if (tops.size > 1) broken.push(m[0]);
      }
    }
  }
  return {vw: innerWidth, vh: innerHeight, scrollH: se.scrollHeight, scrollW: se.scrollWidth,
          buttons, broken};
}"""


def home_problems(m: dict[str, Any], languages: int) -> list[str]:
    """Every way the home screen breaks issue 11 item 8."""
    bad = []
    if len(m["buttons"]) < languages:
        bad.append(f"{len(m['buttons'])} language buttons of {languages}")
    below = [b["code"] for b in m["buttons"]
             if b["bottom"] > m["vh"] + 0.5 or b["right"] > m["vw"] + 0.5]
    if below:
        bad.append(f"off the first screen: {below}")
    if m["scrollH"] > m["vh"] or m["scrollW"] > m["vw"]:
        bad.append(f"page scrolls ({m['scrollW']}x{m['scrollH']} on {m['vw']}x{m['vh']})")
    if m["broken"]:
        bad.append(f"broken inside a word: {m['broken']}")
    return bad
