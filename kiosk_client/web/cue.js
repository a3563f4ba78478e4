// The cue that tells the resident and the clerk that something happened
// without their looking at the tablet: a full-screen flash (the resident may
// be deaf) and a chime (the clerk may have turned away), when the interpreter
// answers and when the call ends. The chime is made with WebAudio, nothing
// fetched; the browser lets it sound only after a tap on the page (unlock).
//
// Every cue is recorded in `log` ({kind, shownAt, audioAt} in
// performance.now() milliseconds) for tests and kiosk management tools.

import { pictogram } from "./pictograms.js";

const TONES = {
  connected: [523.25, 659.25, 783.99], // rising: someone is here
  ended: [783.99, 659.25, 523.25], // falling: it is over
};

export class Cue {
  constructor(overlay, textEl, durationMs) {
    this.overlay = overlay;
    this.textEl = textEl;
    this.durationMs = durationMs;
    this.ctx = null;
    this.timer = null;
    this.log = [];
  }

  /** Create or wake the AudioContext (call from a user gesture). */
  unlock() {
    try {
      if (!this.ctx) this.ctx = new AudioContext();
      if (this.ctx.state === "suspended") this.ctx.resume();
    } catch { /* no audio on this device: the flash still shows */ }
  }

  /** Flash the whole screen with `text` ({text, ja, tag, pictogram?}) and sound the chime for `kind`. */
  show(kind, text) {
    const shownAt = performance.now();
    this.overlay.dataset.kind = kind;
    this.textEl.replaceChildren();
    const pict = text.pictogram && pictogram(text.pictogram);
    if (pict) this.textEl.append(pict);
    for (const [s, lang] of [[text.text, text.tag], [text.ja, "ja"]]) {
      if (!s) continue;
      const span = document.createElement("span");
      span.lang = lang;
      span.textContent = s;
      this.textEl.append(span);
    }
    this.overlay.hidden = false;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => { this.overlay.hidden = true; }, this.durationMs);
    this.log.push({ kind, shownAt, audioAt: this._chime(kind) });
  }

  /** Sound the chime; returns when it starts (performance.now() ms), or null with no audio. */
  _chime(kind) {
    const ctx = this.ctx;
    if (!ctx || ctx.state === "closed") return null;
    if (ctx.state === "suspended") ctx.resume();
    const t0 = ctx.currentTime + 0.02;
    TONES[kind].forEach((freq, i) => {
      const at = t0 + i * 0.18;
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = "sine";
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0, at);
      gain.gain.linearRampToValueAtTime(0.3, at + 0.02);
      gain.gain.setValueAtTime(0.3, at + 0.22);
      gain.gain.linearRampToValueAtTime(0, at + 0.4);
      osc.connect(gain).connect(ctx.destination);
      osc.start(at);
      osc.stop(at + 0.45);
    });
    return performance.now() + (t0 - ctx.currentTime) * 1000;
  }
}
