// /kiosk: the counter tablet. One tap on a language calls an interpreter.
//
// States (on <html data-state>): home, waiting, in-call, ended, error.
// The device token arrives once as /kiosk#token=… and is kept in
// localStorage; the resume session is kept in sessionStorage by the client.

import { TsunaguClient } from "/static/common/tsunagu-client.js";
import { MediaLeg, getLocalMedia, mediaErrorKind } from "/static/common/tsunagu-media.js";
import { ChatPanel, applyText, formatDuration, makeText, setBilingual } from "/static/common/tsunagu-ui.js";

const TOKEN_KEY = "tsunagu.kiosk.token";
const ENDED_HOME_MS = 6000;
const ERROR_HOME_MS = 20000;
const RESYNC_MS = 5000;

const TEXT = {
  "home.title": { ja: "ことばを選んでください", en: "Choose your language" },
  "home.hint": { ja: "押すと通訳者を呼びます", en: "Tap a language to call an interpreter" },
  "home.loading": { ja: "準備しています…", en: "Getting ready…" },
  "waiting.title": { ja: "通訳者を呼んでいます", en: "Calling an interpreter" },
  "waiting.requesting": { ja: "受付中です…", en: "Requesting…" },
  "waiting.position": { ja: "順番: {n}番目", en: "Your place in line: {n}" },
  "waiting.next": { ja: "次の順番です", en: "You are next" },
  "waiting.estimate": { ja: "待ち時間の目安: 約{m}分", en: "Estimated wait: about {m} min" },
  "waiting.estimate_soon": { ja: "まもなくつながります", en: "Connecting soon" },
  "waiting.elapsed": { ja: "待っている時間 {t}", en: "Waiting for {t}" },
  "waiting.cancel": { ja: "やめる", en: "Cancel" },
  "call.title": { ja: "通話中", en: "In a call" },
  "video.remote": { ja: "通訳者の映像", en: "Interpreter's video" },
  "video.self": { ja: "自分の映像", en: "Your video" },
  "call.peer": { ja: "通訳者: {name}", en: "Interpreter: {name}" },
  "call.mute": { ja: "マイクを切る", en: "Mute" },
  "call.unmute": { ja: "マイクを入れる", en: "Unmute" },
  "call.camera": { ja: "カメラを切る", en: "Camera off" },
  "call.camera_on": { ja: "カメラを入れる", en: "Camera on" },
  "call.hangup": { ja: "通話を終わる", en: "End call" },
  "call.connecting": { ja: "映像をつないでいます…", en: "Connecting video…" },
  "chat.title": { ja: "文字で伝える（名前・番号・住所など）", en: "Type (names, numbers, addresses)" },
  "chat.label": { ja: "メッセージ", en: "Message" },
  "chat.placeholder": { ja: "ここに入力", en: "Type here" },
  "chat.send": { ja: "送る", en: "Send" },
  "chat.me": { ja: "窓口", en: "Counter" },
  "ended.title": { ja: "通話が終わりました", en: "The call has ended" },
  "ended.hint": { ja: "まもなく最初の画面に戻ります", en: "Returning to the start screen shortly" },
  "ended.peer_lost": { ja: "通訳者との接続が切れました。必要なら、もう一度呼んでください。", en: "The connection to the interpreter was lost. Call again if you need to." },
  "ended.failed": { ja: "通話が途中で切れました。必要なら、もう一度呼んでください。", en: "The call was cut off. Call again if you need to." },
  "ended.thanks": { ja: "ご利用ありがとうございました。", en: "Thank you." },
  "back": { ja: "最初の画面に戻る", en: "Back to start" },
  "error.title": { ja: "お知らせ", en: "Notice" },
  "error.no_interpreter": {
    ja: "ただいま、この言語の通訳者がいません。窓口の職員にお知らせください。しばらくしてから、もう一度お試しください。",
    en: "No interpreter for this language is available right now. Please tell the counter staff, and try again later.",
  },
  "error.timeout": {
    ja: "通訳者につながりませんでした。しばらくしてから、もう一度お試しください。",
    en: "We could not reach an interpreter. Please try again in a little while.",
  },
  "error.failed": {
    ja: "通訳者を呼べませんでした。もう一度お試しください。続く場合は職員にお知らせください。",
    en: "The interpreter could not be called. Please try again; if it keeps happening, tell the staff.",
  },
  "error.no_token": {
    ja: "このタブレットはまだ登録されていません。管理者に登録用のリンクを開いてもらってください。",
    en: "This tablet is not registered yet. Ask the administrator to open its registration link.",
  },
  "error.unauthorized": {
    ja: "このタブレットの登録が無効になっています。管理者に連絡してください。",
    en: "This tablet's registration is no longer valid. Please contact the administrator.",
  },
  "media.permission": {
    ja: "カメラとマイクが使えません。画面の「許可」を押すか、ブラウザの設定でこのページのカメラとマイクを許可してください。",
    en: "The camera and microphone are blocked. Tap “Allow”, or allow them for this page in the browser settings.",
  },
  "media.nodevice": {
    ja: "カメラまたはマイクが見つかりません。つながっているか確かめて、職員にお知らせください。",
    en: "No camera or microphone was found. Check that they are connected, and tell the staff.",
  },
  "media.busy": {
    ja: "カメラが他のアプリで使われています。他のアプリを閉じてから、もう一度お試しください。",
    en: "The camera is in use by another app. Close the other app, then try again.",
  },
  "media.other": {
    ja: "カメラとマイクを使えませんでした。職員にお知らせください。",
    en: "The camera and microphone could not be started. Please tell the staff.",
  },
  "net.lost": {
    ja: "ネットワークが切れています。自動でつなぎ直しています。このままお待ちください。",
    en: "The network connection is lost. Reconnecting automatically; please wait.",
  },
  "net.back": { ja: "ネットワークに再接続しました。", en: "Reconnected to the network." },
};

// Names in each language's own script, and in Japanese, for the default
// catalogue; other languages fall back to what the server sends.
const NATIVE = {
  jsl: "日本手話", en: "English", zh: "中文", ko: "한국어", vi: "Tiếng Việt",
  pt: "Português", es: "Español", tl: "Tagalog", ne: "नेपाली",
};
const LANG_TAG = { jsl: "ja", tl: "tl", ne: "ne", zh: "zh", ko: "ko", vi: "vi", pt: "pt", es: "es", en: "en" };

const t = makeText(TEXT);
const root = document.documentElement;
const $ = (sel) => document.querySelector(sel);

const ui = {
  banner: $("#net-banner"),
  languages: $("#languages"),
  waitingLanguage: $("#waiting-language"),
  waitingPosition: $("#waiting-position"),
  waitingEstimate: $("#waiting-estimate"),
  waitingElapsed: $("#waiting-elapsed"),
  waitingMedia: $("#waiting-media"),
  callMedia: $("#call-media"),
  callPeer: $("#call-peer"),
  remote: $("video[data-role=remote]"),
  self: $("video[data-role=self]"),
  mute: $("#btn-mute"),
  camera: $("#btn-camera"),
  endedReason: $("#ended-reason"),
  errorMessage: $("#error-message"),
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
  call: null, // {id, language, position, estimate, since}
  stream: null,
  mediaProblem: null,
  homeTimer: null,
  resyncTimer: null,
  resyncSeen: false,
  cancelIds: new Set(), // calls the resident gave up on, not yet confirmed by the server
  cancelNext: 0, // when cancel was pressed before the call had an id
  tick: null,
  wasDown: false,
};

function announce(text) {
  ui.announce.textContent = `${text.ja} ${text.en}`;
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
  }[next];
  const el = focusTarget && focusTarget();
  if (el) el.focus({ preventScroll: true });
}

function languageLabel(code) {
  const lang = state.languages.find((l) => l.code === code) || { code };
  const native = lang.name || NATIVE[code] || code;
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
    native.lang = LANG_TAG[lang.code] || lang.code;
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
  stopMedia();
  state.call = null;
  chat.clear();
  setState("home");
}

function showEnded(text) {
  stopMedia();
  setBilingual(ui.endedReason, text);
  setState("ended");
  announce(t("ended.title"));
  state.homeTimer = setTimeout(goHome, ENDED_HOME_MS);
}

function showError(key) {
  stopMedia();
  state.call = null;
  setBilingual(ui.errorMessage, t(key));
  setState("error", key.replace(/^error\./, ""));
  announce(t(key));
  const permanent = key === "error.no_token" || key === "error.unauthorized";
  $("#error-back").hidden = permanent;
  if (!permanent) state.homeTimer = setTimeout(goHome, ERROR_HOME_MS);
}

// --- waiting -------------------------------------------------------------------

function renderWaiting() {
  const call = state.call;
  if (!call) return;
  const label = languageLabel(call.language);
  ui.waitingLanguage.textContent = label.native === label.ja ? label.native : `${label.native}`;
  if (typeof call.position === "number") {
    setBilingual(ui.waitingPosition,
      call.position <= 1 ? t("waiting.next") : t("waiting.position", { n: call.position }));
  } else {
    setBilingual(ui.waitingPosition, t("waiting.requesting"));
  }
  if (typeof call.estimate === "number") {
    const minutes = Math.max(1, Math.round(call.estimate / 60));
    setBilingual(ui.waitingEstimate,
      call.estimate < 45 ? t("waiting.estimate_soon") : t("waiting.estimate", { m: minutes }));
  } else {
    ui.waitingEstimate.replaceChildren();
  }
  renderElapsed();
}

function renderElapsed() {
  if (!state.call || root.dataset.state !== "waiting") return;
  const s = (Date.now() - state.call.since) / 1000;
  setBilingual(ui.waitingElapsed, t("waiting.elapsed", { t: formatDuration(s) }));
}

async function requestCall(code) {
  if (state.call || !client.ready) return;
  state.call = { id: null, language: code, position: null, estimate: null, since: Date.now() };
  chat.clear();
  setState("waiting");
  renderWaiting();
  announce(t("waiting.title"));
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
  state.call = {
    id: msg.call_id,
    language: msg.language,
    position: msg.position,
    estimate: msg.estimated_wait_s,
    since: sameLanguage && state.call.since ? state.call.since : since,
  };
  if (root.dataset.state !== "waiting") {
    stopLeg();
    setState("waiting");
  }
  renderWaiting();
}

function onPosition(msg) {
  if (!state.call || (state.call.id && state.call.id !== msg.call_id)) return;
  state.call.id = msg.call_id;
  state.call.position = msg.position;
  state.call.estimate = msg.estimated_wait_s;
  renderWaiting();
}

// --- media -------------------------------------------------------------------

function showMediaProblem(kind) {
  state.mediaProblem = kind;
  for (const el of [ui.waitingMedia, ui.callMedia]) {
    if (kind) {
      setBilingual(el, t(`media.${kind}`));
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
  return state.stream;
}

function applyToggles() {
  if (!state.stream) return;
  const muted = ui.mute.getAttribute("aria-pressed") === "true";
  const camOff = ui.camera.getAttribute("aria-pressed") === "true";
  for (const tr of state.stream.getAudioTracks()) tr.enabled = !muted;
  for (const tr of state.stream.getVideoTracks()) tr.enabled = !camOff;
  setBilingual(ui.mute, t(muted ? "call.unmute" : "call.mute"));
  setBilingual(ui.camera, t(camOff ? "call.camera_on" : "call.camera"));
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
  setBilingual(ui.mute, t("call.mute"));
  setBilingual(ui.camera, t("call.camera"));
  showMediaProblem(null);
}

async function onConnected(msg) {
  const fresh = root.dataset.state !== "in-call" || !state.call || state.call.id !== msg.call_id;
  state.call = { ...(state.call || {}), id: msg.call_id, language: (msg.peer && msg.peer.language) || (state.call && state.call.language) };
  if (fresh) {
    setState("in-call");
    const name = (msg.peer && msg.peer.name) || "";
    setBilingual(ui.callPeer, t("call.peer", { name }));
    announce(t("call.title"));
  }
  const stream = await ensureLocalMedia();
  if (!state.call || state.call.id !== msg.call_id) return;
  leg.start(msg.call_id, msg.ice_servers || client.welcome?.ice_servers || [], stream);
}

function onEnded(msg) {
  if (!state.call) return; // nothing live here (a repeat, or an old call)
  if (state.call.id && msg.call_id !== state.call.id) return;
  clearTimeout(state.resyncTimer);
  const reason = msg.reason;
  if (reason === "transferred") {
    // Back in the queue for another language; call.queued follows.
    stopLeg();
    state.call = { ...(state.call || {}), id: null, position: null, estimate: null };
    setState("waiting");
    renderWaiting();
    return;
  }
  const wasInCall = root.dataset.state === "in-call";
  state.call = null;
  if (reason === "cancelled" && !wasInCall) { goHome(); return; }
  if (reason === "no_interpreter") { showError("error.no_interpreter"); return; }
  if (!wasInCall && (reason === "timeout")) { showError("error.timeout"); return; }
  if (!wasInCall && reason !== "hangup") { showError("error.failed"); return; }
  if (reason === "peer_lost") showEnded(t("ended.peer_lost"));
  else if (reason === "failed") showEnded(t("ended.failed"));
  else showEnded(t("ended.thanks"));
}

// --- connection ----------------------------------------------------------------

let bannerTimer = null;
function onStatus(status) {
  root.dataset.connection = status;
  clearTimeout(bannerTimer);
  if (status === "open") {
    if (state.wasDown) {
      setBilingual(ui.banner, t("net.back"));
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
      setBilingual(ui.banner, t("net.lost"));
      ui.banner.className = "banner alert";
      ui.banner.hidden = false;
    }, status === "offline" ? 0 : 1500);
  }
  for (const b of ui.languages.querySelectorAll("button")) b.disabled = status !== "open";
}

function onWelcome(msg) {
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
        if (root.dataset.state === "in-call") showEnded(t("ended.failed"));
        else showError("error.failed");
      }
    }, RESYNC_MS);
  }
}

// --- wiring --------------------------------------------------------------------

takeTokenFromHash();
applyText(t);
applyToggles();

const client = new TsunaguClient({ token: storedToken, sessionKey: "tsunagu.kiosk.session" });
const leg = new MediaLeg(client, { remoteVideo: ui.remote });
const chat = new ChatPanel({
  form: $("#chat-form"),
  input: $("textarea[name=chat]"),
  log: $("[data-role=chat-log]"),
  myRole: "kiosk",
  labels: { me: `${t("chat.me").ja} / ${t("chat.me").en}` },
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

client.on("status", onStatus);
client.on("welcome", onWelcome);
client.on("unauthorized", (m) => showError(m && m.code === "no_token" ? "error.no_token" : "error.unauthorized"));
for (const type of ["call.queued", "call.position", "call.connected"]) {
  client.on(type, () => { state.resyncSeen = true; });
}
client.on("call.queued", onQueued);
client.on("call.position", onPosition);
client.on("call.connected", onConnected);
client.on("call.ended", onEnded);
client.on("chat", (m) => { if (state.call && m.call_id === state.call.id) chat.add(m); });

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
for (const b of document.querySelectorAll("[data-action=home]")) b.addEventListener("click", goHome);
ui.mute.addEventListener("click", () => {
  ui.mute.setAttribute("aria-pressed", String(ui.mute.getAttribute("aria-pressed") !== "true"));
  applyToggles();
});
ui.camera.addEventListener("click", () => {
  ui.camera.setAttribute("aria-pressed", String(ui.camera.getAttribute("aria-pressed") !== "true"));
  applyToggles();
});
state.tick = setInterval(renderElapsed, 1000);

// For tests and kiosk management tools: the live objects, no secrets.
window.tsunagu = { client, leg, state };

if (!storedToken()) showError("error.no_token");
else client.start();
