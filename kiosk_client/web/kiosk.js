// /kiosk: the counter tablet. One tap on a language calls an interpreter.
//
// States (on <html data-state>): home, waiting, in-call, ended, error, and
// elsewhere (the same device token is open on another screen, which won).
// After a language is chosen every sentence is shown in that language beside
// Japanese (./i18n/); the status sentence is [data-role=status].
// The device token arrives once as /kiosk#token=… and is kept in
// localStorage; the resume session is kept in sessionStorage by the client.

import { TsunaguClient } from "/static/common/tsunagu-client.js";
import { MediaLeg, getLocalMedia, mediaErrorKind } from "/static/common/tsunagu-media.js";
import { ChatPanel, applyText, formatDuration, makeText, setBilingual } from "/static/common/tsunagu-ui.js";
import { phrase, tagFor } from "/static/kiosk/i18n/index.js";
import { Cue } from "/static/kiosk/cue.js";
import { HealthReporter } from "/static/kiosk/health.js";
import { pictogram } from "/static/kiosk/pictograms.js";
import { RATING_MS, SCORES, ratingOffered } from "/static/kiosk/rating.js";
import { SelfCheck } from "/static/kiosk/selfcheck.js";

const TOKEN_KEY = "tsunagu.kiosk.token";
const ENDED_HOME_MS = 6000;
const ERROR_HOME_MS = 20000;
const RESYNC_MS = 5000;
// Timers tests may shorten (window.tsunagu.timings); the defaults are the contract's.
const timings = { ratingMs: RATING_MS };

// Words shown before a language is chosen (Japanese with English): the home
// screen, the tablet's own problems. Everything after the choice comes from
// the per-language tables in ./i18n/.
const TEXT = {
  "home.title": { ja: "ことばを選んでください", en: "Choose your language" },
  "home.loading": { ja: "準備しています…", en: "Getting ready…" },
  "video.remote": { ja: "通訳者の映像", en: "Interpreter's video" },
  "video.self": { ja: "自分の映像", en: "Your video" },
  "chat.label": { ja: "メッセージ", en: "Message" },
  "elsewhere.text": { ja: "このタブレットは別の画面で開かれています", en: "This tablet is open on another screen" },
  "elsewhere.reconnect": { ja: "この画面で使う", en: "Use this screen" },
  "error.no_token": {
    ja: "このタブレットはまだ登録されていません。管理者に登録用のリンクを開いてもらってください。",
    en: "This tablet is not registered yet. Ask the administrator to open its registration link.",
  },
  "error.unauthorized": {
    ja: "このタブレットの登録が無効になっています。管理者に連絡してください。",
    en: "This tablet's registration is no longer valid. Please contact the administrator.",
  },
};

// Names in each language's own script, for the default catalogue; other
// languages fall back to what the server sends.
const NATIVE = {
  jsl: "日本手話", en: "English", zh: "中文", ko: "한국어", vi: "Tiếng Việt",
  pt: "Português", es: "Español", tl: "Tagalog", ne: "नेपाली",
};
const CUE_MS = 1500;

const t = makeText(TEXT);
const root = document.documentElement;
const $ = (sel) => document.querySelector(sel);

const ui = {
  banner: $("#net-banner"),
  languages: $("#languages"),
  status: $("[data-role=status]"),
  waitingLanguage: $("#waiting-language"),
  waitingPosition: $("#waiting-position"),
  waitingEstimate: $("[data-role=wait-estimate]"),
  waitingElapsed: $("#waiting-elapsed"),
  waitingMedia: $("#waiting-media"),
  callMedia: $("#call-media"),
  remote: $("video[data-role=remote]"),
  self: $("video[data-role=self]"),
  selfToggle: $("[data-action=toggle-self]"),
  chatToggle: $("[data-action=chat]"),
  chatPanel: $("#chat"),
  mute: $("#btn-mute"),
  camera: $("#btn-camera"),
  endedReason: $("#ended-reason"),
  rating: $("#rating"),
  faces: $("#rating-faces"),
  announce: $("#announce"),
};

// --- token -------------------------------------------------------------------

function takeTokenFromHash() {
  const m = /(?:^#|&)token=([^&]+)/.exec(window.location.hash);
  if (!m) return;
  try { localStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1])); } catch { /* storage off */ }
  // Out of the address bar (and history) at once.
  history.replaceState(null, "", window.location.pathname + window.location.search);
}

function storedToken() {
  try { return localStorage.getItem(TOKEN_KEY); } catch { return null; }
}

// --- state -------------------------------------------------------------------

const state = {
  languages: [],
  chosen: null, // the language code the resident chose (their words until home)
  call: null, // {id, language, position, estimate, estMin, estMax, noneAvailable, since}
  stream: null,
  mediaProblem: null,
  homeTimer: null,
  resyncTimer: null,
  resyncSeen: false,
  cancelIds: new Set(), // calls the resident gave up on, not yet confirmed by the server
  cancelNext: 0, // when cancel was pressed before the call had an id
  tick: null,
  wasDown: false,
  statusKey: null, // [key, vars] of the status sentence, to redraw it
  rating: null, // the call id the faces rate while they are up
};

// --- words -------------------------------------------------------------------

/** Fill `el` with the sentence `key` in the chosen language beside Japanese. */
function say(el, key, vars = {}) {
  const p = phrase(state.chosen || "en", key, vars);
  el.replaceChildren();
  const pict = p.pictogram && pictogram(p.pictogram);
  if (pict) el.append(pict);
  if (p.text) {
    const own = document.createElement("span");
    own.className = "own";
    own.lang = p.tag;
    own.textContent = p.text;
    el.append(own);
  }
  const ja = document.createElement("span");
  ja.className = "ja";
  ja.lang = "ja";
  ja.textContent = p.ja;
  el.append(ja);
  return p;
}

/** The status sentence ([data-role=status], lang = the chosen language's tag). */
function setStatus(key, vars = {}, reason = null) {
  state.statusKey = key ? [key, vars] : null;
  ui.status.lang = state.chosen ? tagFor(state.chosen) : "ja";
  if (reason) ui.status.dataset.reason = reason; else delete ui.status.dataset.reason;
  if (!key) { ui.status.replaceChildren(); return; }
  const p = say(ui.status, key, vars);
  ui.status.lang = state.chosen ? tagFor(state.chosen) : p.tag;
}

/** The status sentence for things that happen before any language is chosen (ja + en). */
function setStatusBilingual(text) {
  state.statusKey = null;
  ui.status.lang = "ja";
  delete ui.status.dataset.reason;
  setBilingual(ui.status, text);
}

/** Every static label of the call screens in the chosen language ([data-t] markup). */
function applyChosen() {
  for (const el of document.querySelectorAll("[data-t]")) say(el, el.dataset.t);
  const ph = phrase(state.chosen || "en", "chat.placeholder");
  $("textarea[name=chat]").placeholder = ph.text ? `${ph.text} / ${ph.ja}` : ph.ja;
  $("textarea[name=chat]").lang = ph.tag;
  chat.labels.me = phrase(state.chosen || "en", "chat.me").ja;
  applyToggles();
}

function announce(key) {
  const p = phrase(state.chosen || "en", key);
  ui.announce.lang = p.tag;
  ui.announce.textContent = `${p.text} ${p.ja}`.trim();
}

function setState(next, reason) {
  const prev = root.dataset.state;
  root.dataset.state = next;
  if (reason) root.dataset.reason = reason; else delete root.dataset.reason;
  clearTimeout(state.homeTimer);
  if (prev === next) return;
  const focusTarget = {
    home: () => ui.languages.querySelector("button"),
    waiting: () => $("[data-action=cancel]"),
    "in-call": () => $("[data-action=hangup]"),
    ended: () => $("#view-ended [data-action=home]"),
    error: () => $("#error-back"),
    elsewhere: () => $("[data-action=reconnect]"),
  }[next];
  const el = focusTarget && focusTarget();
  if (el) el.focus({ preventScroll: true });
}

function languageLabel(code) {
  const lang = state.languages.find((l) => l.code === code) || { code };
  const native = NATIVE[code] || lang.name || code;
  // The catalogue (welcome.languages) carries the Japanese name; under a name that is already
  // Japanese (日本手話) the English one is shown instead.
  let ja = lang.name_ja || lang.name_en || "";
  if (ja === native) ja = lang.name_en || "";
  return { native, ja };
}

function renderLanguages(languages) {
  // 日本手話 (and any other sign language) first, then spoken languages as configured.
  const sorted = [...languages].sort((a, b) => {
    const rank = (l) => (l.code === "jsl" ? 0 : l.modality === "sign" ? 1 : 2);
    return rank(a) - rank(b);
  });
  state.languages = sorted;
  ui.languages.replaceChildren();
  for (const lang of sorted) {
    const btn = document.createElement("button");
    btn.type = "button";
    btn.dataset.language = lang.code;
    if (lang.modality === "sign") btn.classList.add("sign");
    const label = languageLabel(lang.code);
    const native = document.createElement("span");
    native.className = "native";
    native.lang = tagFor(lang.code);
    native.textContent = label.native;
    const sub = document.createElement("span");
    sub.className = "sub";
    sub.lang = /[\u3040-\u30ff\u4e00-\u9fff]/.test(label.ja) ? "ja" : "en";
    sub.textContent = label.ja;
    btn.append(native, sub);
    btn.addEventListener("click", () => requestCall(lang.code));
    ui.languages.append(btn);
  }
  root.dataset.ready = "";
}

function goHome() {
  closeRating();
  stopMedia();
  state.call = null;
  state.chosen = null;
  chat.clear();
  openChat(false);
  setStatus(null);
  setState("home");
}

/** The call is over: say why; offer the faces for `rateId` (a real answered call). */
function showEnded(key, rateId = null) {
  stopMedia();
  setStatus("ended.title");
  say(ui.endedReason, key);
  setState("ended");
  announce("ended.title");
  if (rateId) openRating(rateId);
  else state.homeTimer = setTimeout(goHome, ENDED_HOME_MS);
}

// --- rating --------------------------------------------------------------------

function renderFaces() {
  ui.faces.replaceChildren();
  for (const score of SCORES) {
    const btn = document.createElement("button");
    btn.type = "button";
    btn.className = "face";
    btn.dataset.rating = String(score);
    btn.setAttribute("aria-label", `${score} / ${SCORES.length}`);
    btn.append(pictogram(`face${score}`));
    btn.addEventListener("click", () => rate(score));
    ui.faces.append(btn);
  }
}

function openRating(callId) {
  state.rating = callId;
  ui.rating.hidden = false;
  root.dataset.asking = "rating";
  ui.faces.querySelector("button").focus({ preventScroll: true });
  state.homeTimer = setTimeout(goHome, timings.ratingMs);
}

function closeRating() {
  state.rating = null;
  ui.rating.hidden = true;
  delete root.dataset.asking;
}

/** One tap: the score goes to the server (a refusal changes nothing here), then home. */
function rate(score) {
  const callId = state.rating;
  goHome();
  if (callId) client.request("call.rate", { call_id: callId, score }).catch(() => {});
}

function showError(key) {
  stopMedia();
  state.call = null;
  const permanent = key === "error.no_token" || key === "error.unauthorized";
  if (permanent) setStatusBilingual(t(key));
  else { setStatus(key); announce(key); }
  setState("error", key.replace(/^error\./, ""));
  $("#error-back").hidden = permanent;
  if (!permanent) state.homeTimer = setTimeout(goHome, ERROR_HOME_MS);
}

// --- waiting -------------------------------------------------------------------

const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);

/** What call.queued / call.position say about the wait (a range when the server sends one). */
function waitFacts(msg) {
  const est = num(msg.estimated_wait_s);
  const none = msg.reason === "none_available" || msg.reason === "none-available"
    || msg.none_available === true || msg.available === 0;
  return {
    estimate: est,
    estMin: num(msg.estimated_wait_min_s) ?? est,
    estMax: num(msg.estimated_wait_max_s) ?? est,
    noneAvailable: none,
  };
}

function renderEstimate(call) {
  const el = ui.waitingEstimate;
  if (call.estMin === null || call.estMax === null) {
    el.replaceChildren();
    delete el.dataset.minS;
    delete el.dataset.maxS;
    return;
  }
  const lo = Math.min(call.estMin, call.estMax);
  const hi = Math.max(call.estMin, call.estMax);
  el.dataset.minS = String(Math.round(lo));
  el.dataset.maxS = String(Math.round(hi));
  const a = Math.floor(lo / 60);
  const b = Math.max(1, Math.ceil(hi / 60));
  if (hi < 60) say(el, "waiting.estimate_short");
  else if (a === b || Math.round(lo / 60) === Math.round(hi / 60)) say(el, "waiting.estimate", { m: Math.max(1, Math.round(hi / 60)) });
  else say(el, "waiting.estimate_range", { a: Math.max(0, a), b });
}

function renderWaiting() {
  const call = state.call;
  if (!call) return;
  if (call.noneAvailable) setStatus("waiting.none_available", {}, "none-available");
  else setStatus("waiting.title");
  // Which language was called, in its own script and in Japanese (for the clerk).
  const label = languageLabel(call.language);
  const native = document.createElement("span");
  native.lang = tagFor(call.language);
  native.textContent = label.native;
  ui.waitingLanguage.replaceChildren(native);
  if (/[\u3040-\u30ff\u4e00-\u9fff]/.test(label.ja) && label.ja !== label.native) {
    const ja = document.createElement("span");
    ja.className = "sub";
    ja.lang = "ja";
    ja.textContent = label.ja;
    ui.waitingLanguage.append(" ", ja);
  }
  if (typeof call.position === "number") {
    say(ui.waitingPosition, call.position <= 1 ? "waiting.next" : "waiting.position", { n: call.position });
  } else {
    say(ui.waitingPosition, "waiting.requesting");
  }
  renderEstimate(call);
  renderElapsed();
}

function renderElapsed() {
  if (!state.call || root.dataset.state !== "waiting") return;
  const s = (Date.now() - state.call.since) / 1000;
  say(ui.waitingElapsed, "waiting.elapsed", { t: formatDuration(s) });
}

function newCall(code) {
  return { id: null, language: code, position: null, estimate: null, estMin: null, estMax: null,
    noneAvailable: false, since: Date.now() };
}

async function requestCall(code) {
  if (state.call || !client.ready) return;
  cue.unlock(); // the tap is the gesture that lets the chime play later
  state.chosen = code;
  applyChosen();
  state.call = newCall(code);
  chat.clear();
  setState("waiting");
  renderWaiting();
  announce("waiting.title");
  try {
    await selfCheck.cancel(); // a resident's call wins over the daily test call
  } catch { /* the test call is gone either way */ }
  ensureLocalMedia(); // ask for the camera now, not when the interpreter is already there
  try {
    const reply = await client.request("call.request", { language: code });
    if (reply.type === "call.queued") onQueued(reply);
  } catch (err) {
    if (err.code === "disconnected") return; // the resumed session tells us where we are
    if (err.code === "conflict") return; // a call is already live; the server resends it
    showError("error.failed");
  }
}

function onQueued(msg) {
  if (selfCheck.owns(msg)) { selfCheck.dropStray(msg); return; } // test calls: no screen
  // The resident already pressed cancel (while the request or the cancel
  // itself was in flight, or the network was down): finish the job.
  if (state.cancelIds.has(msg.call_id) || (state.cancelNext && Date.now() - state.cancelNext < 30000)) {
    state.cancelNext = 0;
    state.cancelIds.add(msg.call_id);
    client.request("call.cancel", { call_id: msg.call_id }).then(
      () => state.cancelIds.delete(msg.call_id), () => {});
    return;
  }
  const since = state.call && state.call.id === msg.call_id ? state.call.since : Date.now();
  const sameLanguage = state.call && state.call.language === msg.language;
  if (!state.chosen || !sameLanguage) {
    state.chosen = msg.language; // a resumed tablet, or a transfer to another language
    applyChosen();
  }
  state.call = {
    ...newCall(msg.language),
    id: msg.call_id,
    position: msg.position,
    ...waitFacts(msg),
    since: sameLanguage && state.call.since ? state.call.since : since,
  };
  if (root.dataset.state !== "waiting") {
    stopLeg();
    setState("waiting");
  }
  renderWaiting();
}

function onPosition(msg) {
  if (selfCheck.owns(msg)) return;
  if (!state.call || (state.call.id && state.call.id !== msg.call_id)) return;
  state.call.id = msg.call_id;
  state.call.position = msg.position;
  Object.assign(state.call, waitFacts(msg));
  renderWaiting();
}

// --- media -------------------------------------------------------------------

function showMediaProblem(kind) {
  state.mediaProblem = kind;
  for (const el of [ui.waitingMedia, ui.callMedia]) {
    if (kind) {
      say(el, `media.${kind}`);
      el.hidden = false;
    } else {
      el.hidden = true;
    }
  }
}

async function ensureLocalMedia() {
  if (state.stream && state.stream.getTracks().some((tr) => tr.readyState === "live")) return state.stream;
  try {
    state.stream = await getLocalMedia();
    showMediaProblem(null);
    ui.self.srcObject = state.stream;
    applyToggles();
  } catch (err) {
    state.stream = null;
    showMediaProblem(mediaErrorKind(err));
  }
  health.checkAndReport(); // a camera check: the fleet hears how it went
  return state.stream;
}

function applyToggles() {
  const muted = ui.mute.getAttribute("aria-pressed") === "true";
  const camOff = ui.camera.getAttribute("aria-pressed") === "true";
  const selfHidden = ui.selfToggle.getAttribute("aria-pressed") === "true";
  if (state.stream) {
    for (const tr of state.stream.getAudioTracks()) tr.enabled = !muted;
    for (const tr of state.stream.getVideoTracks()) tr.enabled = !camOff;
  }
  ui.self.hidden = selfHidden;
  say(ui.mute, muted ? "call.unmute" : "call.mute");
  say(ui.camera, camOff ? "call.camera_on" : "call.camera");
  say(ui.selfToggle, selfHidden ? "call.self_show" : "call.self_hide");
}

function openChat(open) {
  ui.chatPanel.hidden = !open;
  ui.chatToggle.setAttribute("aria-expanded", String(open));
  if (open) root.dataset.chat = "open"; else delete root.dataset.chat;
  say(ui.chatToggle, open ? "chat.close" : "chat.open");
}

function stopLeg() {
  leg.stop();
}

function stopMedia() {
  leg.stop();
  if (state.stream) for (const tr of state.stream.getTracks()) tr.stop();
  state.stream = null;
  ui.self.srcObject = null;
  ui.mute.setAttribute("aria-pressed", "false");
  ui.camera.setAttribute("aria-pressed", "false");
  applyToggles();
  showMediaProblem(null);
}

async function onConnected(msg) {
  if (selfCheck.owns(msg)) { selfCheck.dropStray(msg); return; }
  const fresh = root.dataset.state !== "in-call" || !state.call || state.call.id !== msg.call_id;
  const language = (msg.peer && msg.peer.language) || (state.call && state.call.language);
  state.call = { ...(state.call || {}), id: msg.call_id, language };
  if (!state.chosen && language) {
    state.chosen = language;
    applyChosen();
  }
  if (fresh) {
    setState("in-call");
    setStatus("call.peer", { name: (msg.peer && msg.peer.name) || "" });
    if (!msg.resumed) cue.show("connected", phrase(state.chosen || "en", "call.connected"));
    announce("call.connected");
  }
  const stream = await ensureLocalMedia();
  if (!state.call || state.call.id !== msg.call_id) return;
  leg.start(msg.call_id, msg.ice_servers || client.welcome?.ice_servers || [], stream);
}

function onEnded(msg) {
  if (selfCheck.owns(msg)) return;
  if (!state.call) return; // nothing live here (a repeat, or an old call)
  if (state.call.id && msg.call_id !== state.call.id) return;
  clearTimeout(state.resyncTimer);
  const reason = msg.reason;
  if (reason === "transferred") {
    // Back in the queue for another language; call.queued follows.
    stopLeg();
    state.call = { ...newCall(state.call.language), since: state.call.since || Date.now() };
    setState("waiting");
    renderWaiting();
    return;
  }
  const wasInCall = root.dataset.state === "in-call";
  const rateId = ratingOffered({ wasInCall, call: state.call, reason }) ? state.call.id : null;
  state.call = null;
  if (wasInCall) cue.show("ended", phrase(state.chosen || "en", "ended.title"));
  if (reason === "cancelled" && !wasInCall) { goHome(); return; }
  if (reason === "no_interpreter") { showError("error.no_interpreter"); return; }
  if (!wasInCall && (reason === "timeout")) { showError("error.timeout"); return; }
  if (!wasInCall && reason !== "hangup") { showError("error.failed"); return; }
  if (reason === "peer_lost") showEnded("ended.peer_lost", rateId);
  else if (reason === "failed") showEnded("ended.failed", rateId);
  else showEnded("ended.thanks", rateId);
}

// --- connection ----------------------------------------------------------------

let bannerTimer = null;
function onStatus(status) {
  root.dataset.connection = status;
  clearTimeout(bannerTimer);
  if (status === "open") {
    if (state.wasDown) {
      say(ui.banner, "net.back");
      ui.banner.className = "banner good";
      ui.banner.hidden = false;
      bannerTimer = setTimeout(() => { ui.banner.hidden = true; }, 4000);
    } else {
      ui.banner.hidden = true;
    }
    state.wasDown = false;
  } else if (status === "reconnecting" || status === "offline") {
    state.wasDown = true;
    // A blip shorter than a second and a half is not worth alarming anyone.
    bannerTimer = setTimeout(() => {
      say(ui.banner, "net.lost");
      ui.banner.className = "banner alert";
      ui.banner.hidden = false;
    }, status === "offline" ? 0 : 1500);
  } else if (status === "replaced") {
    ui.banner.hidden = true;
  }
  for (const b of ui.languages.querySelectorAll("button")) b.disabled = status !== "open";
}

/** Another screen opened this tablet's token and now holds it: stop until tapped. */
function onReplaced() {
  clearTimeout(state.resyncTimer);
  stopMedia();
  state.call = null;
  state.chosen = null;
  setStatus(null);
  setState("elsewhere");
}

function onWelcome(msg) {
  if (root.dataset.state === "elsewhere") setState("home");
  if (Array.isArray(msg.languages) && msg.languages.length) renderLanguages(msg.languages);
  for (const b of ui.languages.querySelectorAll("button")) b.disabled = false;
  // A resumed session repeats call.queued / call.connected at once. If
  // nothing comes, the call did not survive the outage: say so.
  clearTimeout(state.resyncTimer);
  if (state.call && !state.call.id && root.dataset.state === "waiting") {
    // The request may never have reached the server. Asking again is safe: a
    // kiosk has at most one live call, a repeat is refused with `conflict`.
    const language = state.call.language;
    state.resyncSeen = false;
    state.resyncTimer = setTimeout(() => {
      if (state.resyncSeen || !state.call || state.call.id) return;
      client.request("call.request", { language }).then((reply) => {
        if (reply.type === "call.queued") onQueued(reply);
      }, (err) => { if (err.code !== "conflict" && err.code !== "disconnected") showError("error.failed"); });
    }, RESYNC_MS);
  }
  if (state.call && state.call.id && ["waiting", "in-call"].includes(root.dataset.state)) {
    const id = state.call.id;

    state.resyncSeen = false;
    state.resyncTimer = setTimeout(() => {
      if (!state.resyncSeen && state.call && state.call.id === id) {
        if (root.dataset.state === "in-call") showEnded("ended.failed");
        else showError("error.failed");
      }
    }, RESYNC_MS);
  }
}

// --- wiring --------------------------------------------------------------------

takeTokenFromHash();
applyText(t);

const cue = new Cue($("#cue"), $("#cue-text"), CUE_MS);
const client = new TsunaguClient({ token: storedToken, sessionKey: "tsunagu.kiosk.session", stopWhenReplaced: true });
const leg = new MediaLeg(client, { remoteVideo: ui.remote });
// kiosk.health on connect, every 5 minutes and after each camera check (health.js)
const health = new HealthReporter(client, { currentStream: () => state.stream });
leg.addEventListener("quality", (ev) => health.noteQuality(ev.detail));
health.start();
const selfCheck = new SelfCheck(client, { notice: $("#selfcheck"), video: $("#selfcheck-video"), root });
const chat = new ChatPanel({
  form: $("#chat-form"),
  input: $("textarea[name=chat]"),
  log: $("[data-role=chat-log]"),
  myRole: "kiosk",
  labels: { me: "窓口" },
  onSend: async (text) => {
    if (!state.call || !state.call.id) return false;
    try {
      await client.request("chat.send", { call_id: state.call.id, text });
      return true;
    } catch {
      return false;
    }
  },
});
applyChosen();
openChat(false);
renderFaces();

client.on("status", onStatus);
client.on("welcome", onWelcome);
client.on("replaced", onReplaced);
client.on("unauthorized", (m) => showError(m && m.code === "no_token" ? "error.no_token" : "error.unauthorized"));
for (const type of ["call.queued", "call.position", "call.connected"]) {
  client.on(type, () => { state.resyncSeen = true; });
}
client.on("call.queued", onQueued);
client.on("call.position", onPosition);
client.on("call.connected", onConnected);
client.on("call.ended", onEnded);
// The daily test call: only from the idle home screen (a busy tablet is tried again later).
client.on("kiosk.test_due", (m) => {
  if (root.dataset.state === "home" && !state.call && client.ready) selfCheck.start(m.test_id);
});
client.on("chat", (m) => {
  if (!state.call || m.call_id !== state.call.id) return;
  chat.add(m);
  // The interpreter wrote something: the resident must see it.
  if (m.from && m.from.role !== "kiosk") openChat(true);
});

$("[data-action=cancel]").addEventListener("click", async () => {
  const call = state.call;
  if (!call || !call.id) {
    state.cancelNext = Date.now();
    goHome();
    return;
  }
  state.cancelIds.add(call.id);
  try {
    await client.request("call.cancel", { call_id: call.id });
    state.cancelIds.delete(call.id);
  } catch (err) {
    if (err.code === "conflict") {
      // Already answered: call.connected is on its way.
      state.cancelIds.delete(call.id);
      return;
    }
    if (err.code !== "disconnected") state.cancelIds.delete(call.id);
  }
  goHome();
});
$("[data-action=hangup]").addEventListener("click", async () => {
  const call = state.call;
  if (!call || !call.id) { goHome(); return; }
  try {
    await client.request("call.hangup", { call_id: call.id });
  } catch { /* call.ended or the resumed session settles it */ }
});
$("[data-action=skip-rating]").addEventListener("click", goHome);
$("[data-action=reconnect]").addEventListener("click", () => {
  cue.unlock();
  setState("home");
  client.resume();
});
for (const b of document.querySelectorAll("[data-action=home]")) b.addEventListener("click", goHome);
for (const b of [ui.mute, ui.camera, ui.selfToggle]) {
  b.addEventListener("click", () => {
    b.setAttribute("aria-pressed", String(b.getAttribute("aria-pressed") !== "true"));
    applyToggles();
  });
}
ui.chatToggle.addEventListener("click", () => {
  const open = ui.chatPanel.hidden;
  openChat(open);
  if (open) $("textarea[name=chat]").focus();
});
// Any touch may unlock audio (a reloaded tablet needs a fresh gesture).
document.addEventListener("pointerdown", () => cue.unlock(), { capture: true });
state.tick = setInterval(renderElapsed, 1000);

// For tests and kiosk management tools: the live objects, no secrets.
window.tsunagu = { client, leg, state, cue, timings, health, selfCheck };

if (!storedToken()) showError("error.no_token");
else client.start();
