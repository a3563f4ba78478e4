// Small pieces of page UI shared by /kiosk, /console and /supervisor:
// the Japanese/English text tables, durations, and the chat panel.

/**
 * A text table per page: t("key") returns {ja, en}. Fills every element with
 * data-i18n="key" (Japanese, with English underneath in a .en span) and
 * data-i18n-label="key" (aria-label "ja / en").
 */
export function makeText(table) {
  const t = (key, vars = {}) => {
    const entry = table[key] || { ja: key, en: key };
    const fill = (s) => s.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? String(vars[k]) : ""));
    return { ja: fill(entry.ja), en: fill(entry.en) };
  };
  return t;
}

/** Put Japanese text with English underneath into `el`. */
export function setBilingual(el, text) {
  el.replaceChildren();
  const ja = document.createElement("span");
  ja.className = "ja";
  ja.lang = "ja";
  ja.textContent = text.ja;
  const en = document.createElement("span");
  en.className = "en";
  en.lang = "en";
  en.textContent = text.en;
  el.append(ja, en);
}

/** Apply a text table to the static markup (data-i18n, data-i18n-label, data-i18n-placeholder). */
export function applyText(t, root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) setBilingual(el, t(el.dataset.i18n));
  for (const el of root.querySelectorAll("[data-i18n-label]")) {
    const s = t(el.dataset.i18nLabel);
    el.setAttribute("aria-label", `${s.ja} / ${s.en}`);
  }
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) {
    const s = t(el.dataset.i18nPlaceholder);
    el.setAttribute("placeholder", `${s.ja} / ${s.en}`);
  }
}

/** "m:ss" for a duration in seconds. */
export function formatDuration(s) {
  const total = Math.max(0, Math.round(s));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = String(total % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

/**
 * The chat beside the video: textarea[name=chat] (Enter sends, Shift+Enter
 * is a new line, Enter that confirms an IME conversion does not send) and
 * the [data-role=chat-log] list.
 */
export class ChatPanel {
  constructor({ form, input, log, onSend, myRole, labels }) {
    this.form = form;
    this.input = input;
    this.log = log;
    this.onSend = onSend;
    this.myRole = myRole;
    this.labels = labels || {};
    this._composing = false;
    input.addEventListener("compositionstart", () => { this._composing = true; });
    input.addEventListener("compositionend", () => { this._composing = false; });
    input.addEventListener("keydown", (ev) => {
      if (ev.key !== "Enter" || ev.shiftKey) return;
      if (ev.isComposing || this._composing || ev.keyCode === 229) return;
      ev.preventDefault();
      this._submit();
    });
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this._submit();
    });
  }

  async _submit() {
    const text = this.input.value.trim();
    if (!text) return;
    const ok = await this.onSend(text.slice(0, 2000));
    if (ok !== false) this.input.value = "";
    this.input.focus();
  }

  clear() {
    this.log.replaceChildren();
    this.input.value = "";
  }

  /** Show one `chat` message. */
  add(msg) {
    const li = document.createElement("li");
    const mine = msg.from && msg.from.role === this.myRole;
    if (mine) li.classList.add("mine");
    const who = document.createElement("span");
    who.className = "who";
    const at = typeof msg.at_ms === "number" ? new Date(msg.at_ms) : new Date();
    const time = at.toLocaleTimeString("ja-JP", { hour: "2-digit", minute: "2-digit" });
    const name = mine ? (this.labels.me || "") : ((msg.from && msg.from.name) || this.labels.peer || "");
    who.textContent = `${name} ${time}`.trim();
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = msg.text;
    li.append(who, text);
    this.log.append(li);
    this.log.scrollTop = this.log.scrollHeight;
  }
}
