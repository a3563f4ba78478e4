// /console: the interpreter's page. Presence, the idle screen (camera
// preview, calls waiting per language, today's own calls: the server's
// `queue` message), the ringing offer, the call (video, chat, transfer, media
// quality, [data-role=call-facts]) and wrap-up.
//
// <html data-state> is the hook: away, available, ringing, in-call, wrapup.

import { MediaLeg, getLocalMedia, mediaErrorKind } from "/static/common/tsunagu-media.js";
import { ChatPanel, applyText, formatDuration, makeText, setBilingual } from "/static/common/tsunagu-ui.js";
import { LOGIN_TEXT, startStaffSession } from "/static/staff/staff-session.js";

const TEXT = {
  ...LOGIN_TEXT,
  "login.title": { ja: "通訳者コンソール サインイン", en: "Interpreter console sign-in" },
  "app.title": { ja: "通訳者コンソール", en: "Interpreter console" },
  "app.logout": { ja: "サインアウト", en: "Sign out" },
  "presence.label": { ja: "受付状態", en: "Presence" },
  "presence.available": { ja: "受付可", en: "Available" },
  "presence.away": { ja: "離席", en: "Away" },
  "conn.open": { ja: "接続中", en: "Online" },
  "conn.connecting": { ja: "接続しています…", en: "Connecting…" },
  "conn.reconnecting": { ja: "再接続しています…", en: "Reconnecting…" },
  "conn.offline": { ja: "ネットワークが切れています", en: "Network lost" },
  "idle.title": { ja: "待機", en: "Standing by" },
  "idle.available": { ja: "受付可: 着信を待っています。", en: "Available: waiting for calls." },
  "idle.away": { ja: "離席中: 着信はありません。「受付可」を押すと着信を受けます。", en: "Away: no calls are offered. Press “Available” to take calls." },
  "idle.missed": { ja: "着信に応答しなかったため離席にしました。", en: "You missed an offer, so you were set to away." },
  "ring.title": { ja: "着信", en: "Incoming call" },
  "ring.accept": { ja: "応答する", en: "Accept" },
  "ring.decline": { ja: "見送る", en: "Decline" },
  "ring.countdown": { ja: "あと {s} 秒", en: "{s} s left" },
  "ring.gone_taken": { ja: "この着信は他の通訳者が受けました。", en: "Another interpreter took this call." },
  "ring.gone_cancelled": { ja: "相談者が呼び出しをやめました。", en: "The caller gave up." },
  "ring.gone_timeout": { ja: "応答がなかったため着信を戻しました。", en: "The offer timed out." },
  "f.language": { ja: "言語", en: "Language" },
  "f.ward": { ja: "区", en: "Ward" },
  "f.counter": { ja: "窓口", en: "Counter" },
  "f.procedure": { ja: "手続き", en: "Procedure" },
  "f.waited": { ja: "待ち時間", en: "Waited" },
  "video.preview": { ja: "自分のカメラの確認", en: "Your camera" },
  "idle.preview_hint": { ja: "受付を始める前に、明るさと映る位置を確かめてください。", en: "Check the light and framing before taking calls." },
  "queue.title": { ja: "待っている呼び出し", en: "Calls waiting" },
  "queue.waiting": { ja: "{n}件", en: "{n} waiting" },
  "queue.oldest": { ja: "最長 {t}", en: "oldest {t}" },
  "mine.title": { ja: "今日の自分の通話", en: "My calls today" },
  "mine.none": { ja: "今日の通話はまだありません", en: "No calls yet today" },
  "mine.live": { ja: "通話中", en: "live" },
  "col.time": { ja: "時刻", en: "Time" },
  "col.talk": { ja: "通話", en: "Talk" },
  "call.title": { ja: "通話中", en: "In a call" },
  "video.remote": { ja: "相談者の映像", en: "Resident's video" },
  "video.self": { ja: "自分の映像", en: "Your video" },
  "ring.announce": { ja: "着信: {language}、{ward} {counter}番窓口", en: "Incoming call: {language}, {ward}, counter {counter}" },
  "title.ringing": { ja: "● 着信", en: "Incoming" },
  "title.idle": { ja: "通訳者コンソール", en: "Interpreter console" },
  "quality.label": { ja: "映像品質", en: "Media" },
  "call.facts": { ja: "{language} · {ward} {counter}番窓口", en: "{language_en}, counter {counter}" },
  "call.procedure": { ja: "手続き: {p}", en: "Procedure: {p}" },
  "call.timer": { ja: "通話時間 {t}", en: "Duration {t}" },
  "call.mute": { ja: "マイクを切る", en: "Mute" },
  "call.unmute": { ja: "マイクを入れる", en: "Unmute" },
  "call.camera": { ja: "カメラを切る", en: "Camera off" },
  "call.camera_on": { ja: "カメラを入れる", en: "Camera on" },
  "call.hangup": { ja: "通話を終える", en: "Hang up" },
  "call.transfer_label": { ja: "別の言語へ転送", en: "Transfer to language" },
  "call.transfer": { ja: "転送", en: "Transfer" },
  "call.transfer_none": { ja: "その言語の通訳者はいまサインインしていません。転送できませんでした。", en: "Nobody for that language is signed in; the call was not transferred." },
  "call.transfer_failed": { ja: "転送できませんでした。", en: "The call could not be transferred." },
  "call.quality_wait": { ja: "映像品質: 計測中…", en: "Media quality: measuring…" },
  "chat.title": { ja: "チャット（名前・番号・住所の確認に）", en: "Chat (for names, numbers, addresses)" },
  "chat.label": { ja: "メッセージ", en: "Message" },
  "chat.placeholder": { ja: "入力して Enter で送信", en: "Type, Enter to send" },
  "chat.send": { ja: "送信", en: "Send" },
  "chat.me": { ja: "自分", en: "Me" },
  "wrapup.title": { ja: "後処理", en: "Wrap-up" },
  "wrapup.ready": { ja: "受付を再開する", en: "Ready now" },
  "wrapup.left": { ja: "あと {s} 秒で受付可に戻ります", en: "Available again in {s} s" },
  "wrapup.elapsed": { ja: "後処理 {t}", en: "Wrap-up {t}" },
  "ended.hangup": { ja: "通話が終わりました。", en: "The call has ended." },
  "ended.transferred": { ja: "通話を転送しました。", en: "The call was transferred." },
  "ended.peer_lost": { ja: "相談者との接続が切れました。", en: "The connection to the caller was lost." },
  "ended.other": { ja: "通話が終わりました（{reason}）。", en: "The call ended ({reason})." },
  "media.permission": { ja: "カメラとマイクが許可されていません。ブラウザのアドレスバーの設定から許可してください。", en: "Camera and microphone are blocked. Allow them from the browser's address bar." },
  "media.nodevice": { ja: "カメラまたはマイクが見つかりません。接続を確かめてください。", en: "No camera or microphone found. Check the connection." },
  "media.busy": { ja: "カメラが他のアプリで使われています。他のアプリを閉じてください。", en: "The camera is used by another app. Close it." },
  "media.other": { ja: "カメラとマイクを開始できませんでした。", en: "Could not start the camera and microphone." },
};

const t = makeText(TEXT);
const root = document.documentElement;
const $ = (sel) => document.querySelector(sel);

const ui = {
  me: $("#me"),
  conn: $("#conn"),
  idleHint: $("#idle-hint"),
  mediaProblem: $("#media-problem"),
  ringLanguage: $("#ring-language"),
  ringWard: $("#ring-ward"),
  ringCounter: $("#ring-counter"),
  ringProcedure: $("#ring-procedure"),
  ringWaited: $("#ring-waited"),
  ringCountdown: $("#ring-countdown"),
  callFacts: $("#call-facts-line"),
  callProcedure: $("#call-procedure"),
  preview: $("video[data-role=preview]"),
  queue: $("[data-role=queue]"),
  myCalls: $("[data-role=my-calls]"),
  callTimer: $("#call-timer"),
  quality: $("#quality"),
  remote: $("video[data-role=remote]"),
  self: $("video[data-role=self]"),
  mute: $("#btn-mute"),
  camera: $("#btn-camera"),
  transferSelect: $("#transfer-language"),
  wrapupEnded: $("#wrapup-ended"),
  wrapupCountdown: $("#wrapup-countdown"),
  announce: $("#announce"),
};

const state = {
  client: null,
  leg: null,
  languages: [],
  presence: { status: "away", state: "away", since_ms: Date.now() },
  presenceKnown: false,
  offer: null, // call.offer + received_at
  call: null, // {id, language, ward, counter, since}
  stream: null,
  clockSkew: 0, // server time - local time, ms
  note: null, // a one-off sentence for the idle view
};

// --- ring tone (WebAudio, nothing fetched) -----------------------------------

const ringer = {
  ctx: null,
  timer: null,
  unlock() {
    try {
      if (!this.ctx) this.ctx = new AudioContext();
      if (this.ctx.state === "suspended") this.ctx.resume();
    } catch { /* no audio */ }
  },
  beep(at, freq) {
    const ctx = this.ctx;
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.type = "sine";
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0, at);
    gain.gain.linearRampToValueAtTime(0.25, at + 0.02);
    gain.gain.setValueAtTime(0.25, at + 0.3);
    gain.gain.linearRampToValueAtTime(0, at + 0.35);
    osc.connect(gain).connect(ctx.destination);
    osc.start(at);
    osc.stop(at + 0.4);
  },
  start() {
    this.unlock();
    if (!this.ctx || this.timer) return;
    const pattern = () => {
      const now = this.ctx.currentTime + 0.05;
      this.beep(now, 880);
      this.beep(now + 0.45, 660);
    };
    pattern();
    this.timer = setInterval(pattern, 2000);
  },
  stop() {
    clearInterval(this.timer);
    this.timer = null;
  },
};

// --- helpers -----------------------------------------------------------------

function languageName(code) {
  const lang = state.languages.find((l) => l.code === code);
  return lang ? `${lang.name}${lang.name_en && lang.name_en !== lang.name ? ` (${lang.name_en})` : ""}` : code;
}

function serverNow() {
  return Date.now() + state.clockSkew;
}

function announce(text) {
  ui.announce.textContent = `${text.ja} ${text.en}`;
}

function deriveState() {
  if (state.call) return "in-call";
  if (state.offer) return "ringing";
  switch (state.presence.state) {
    case "in_call": return "in-call";
    case "wrapup": return "wrapup";
    case "available":
    case "offered": return "available";
    default: return "away";
  }
}

function render() {
  // No routing state is shown until the server has said what it is.
  if (!state.presenceKnown && !state.call && !state.offer) return;
  const next = deriveState();
  const prev = root.dataset.state;
  root.dataset.state = next;
  const status = state.presence.status || (next === "away" ? "away" : "available");
  $("[data-action=available]").setAttribute("aria-pressed", String(status === "available"));
  $("[data-action=away]").setAttribute("aria-pressed", String(status === "away"));
  if (next === "ringing") ringer.start(); else ringer.stop();
  const title = t(next === "ringing" ? "title.ringing" : "title.idle");
  document.title = `${title.ja} / ${title.en} — tsunagu`;
  if (next === "available" || next === "away") {
    showPreview();
    const lines = [t(next === "available" ? "idle.available" : "idle.away")];
    if (state.note) lines.unshift(state.note);
    setBilingual(ui.idleHint, {
      ja: lines.map((l) => l.ja).join(" "), en: lines.map((l) => l.en).join(" "),
    });
  }
  if (prev !== next) {
    const focus = {
      ringing: "[data-action=accept]",
      "in-call": "textarea[name=chat]",
      wrapup: "[data-action=ready]",
    }[next];
    if (focus) $(focus).focus({ preventScroll: true });
    if (next === "ringing") {
      const o = state.offer;
      announce(t("ring.announce", { language: languageName(o.language), ward: o.ward || "", counter: o.counter || "" }));
    } else if (next === "wrapup" || next === "available" || next === "away") {
      announce(t(next === "wrapup" ? "wrapup.title" : `presence.${next}`));
    }
  }
  tick();
}

function tick() {
  const s = root.dataset.state;
  if (s === "ringing" && state.offer) {
    const o = state.offer;
    const elapsed = (Date.now() - o.received_at) / 1000;
    if (elapsed > (o.expires_in_s || 30) + 5) {
      // The withdrawal never reached us (a reconnect in between): stop ringing.
      state.offer = null;
      render();
      return;
    }
    ui.ringWaited.textContent = formatDuration((o.waited_s || 0) + elapsed);
    const left = Math.max(0, Math.ceil((o.expires_in_s || 0) - elapsed));
    setBilingual(ui.ringCountdown, t("ring.countdown", { s: left }));
  } else if (s === "in-call" && state.call) {
    setBilingual(ui.callTimer, t("call.timer", { t: formatDuration((Date.now() - state.call.since) / 1000) }));
  } else if (s === "wrapup") {
    const p = state.presence;
    const until = p.until_ms || (p.wrapup_s && p.since_ms ? p.since_ms + p.wrapup_s * 1000 : null);
    if (until) {
      const left = Math.max(0, Math.ceil((until - serverNow()) / 1000));
      setBilingual(ui.wrapupCountdown, t("wrapup.left", { s: left }));
    } else {
      const since = p.since_ms || serverNow();
      setBilingual(ui.wrapupCountdown, t("wrapup.elapsed", { t: formatDuration((serverNow() - since) / 1000) }));
    }
  }
}

function setConn(status) {
  ui.conn.dataset.status = status;
  const key = `conn.${status}`;
  if (TEXT[key]) setBilingual(ui.conn, t(key));
  ui.conn.classList.add("inline");
}

// --- media -------------------------------------------------------------------

function showMediaProblem(kind) {
  if (kind) {
    setBilingual(ui.mediaProblem, t(`media.${kind}`));
    ui.mediaProblem.hidden = false;
  } else {
    ui.mediaProblem.hidden = true;
  }
}

function ensureLocalMedia() {
  if (state.stream && state.stream.getTracks().some((tr) => tr.readyState === "live")) return Promise.resolve(state.stream);
  // The idle preview and an answer may both ask at once: one camera request.
  if (!state.mediaPending) {
    state.mediaPending = (async () => {
      try {
        state.stream = await getLocalMedia();
        ui.self.srcObject = state.stream;
        showMediaProblem(null);
        applyToggles();
      } catch (err) {
        state.stream = null;
        showMediaProblem(mediaErrorKind(err));
      }
      state.mediaPending = null;
      return state.stream;
    })();
  }
  return state.mediaPending;
}

/** The camera on the idle screen, so light and framing can be fixed before a call. */
async function showPreview() {
  const stream = await ensureLocalMedia();
  if (stream && ui.preview.srcObject !== stream) {
    ui.preview.srcObject = stream;
    ui.preview.play().catch(() => {});
  }
}

function stopMedia() {
  if (state.leg) state.leg.stop();
  if (state.stream) for (const tr of state.stream.getTracks()) tr.stop();
  state.stream = null;
  ui.self.srcObject = null;
  ui.preview.srcObject = null;
  ui.quality.textContent = "";
  delete ui.quality.dataset.level;
}

function applyToggles() {
  const muted = ui.mute.getAttribute("aria-pressed") === "true";
  const camOff = ui.camera.getAttribute("aria-pressed") === "true";
  if (state.stream) {
    for (const tr of state.stream.getAudioTracks()) tr.enabled = !muted;
    for (const tr of state.stream.getVideoTracks()) tr.enabled = !camOff;
  }
  setBilingual(ui.mute, t(muted ? "call.unmute" : "call.mute"));
  setBilingual(ui.camera, t(camOff ? "call.camera_on" : "call.camera"));
}

function showQuality(q) {
  const parts = [
    `fps ${q.fps ?? "–"}`,
    `RTT ${q.rtt_ms ?? "–"} ms`,
    `loss ${q.loss_pct ?? "–"}%`,
  ];
  if (q.width && q.height) parts.push(`${q.width}×${q.height}`);
  const label = t("quality.label");
  ui.quality.textContent = `${label.ja} / ${label.en}: ${parts.join(" · ")}`;
  const bad = (q.fps !== null && q.fps < 20) || (q.rtt_ms !== null && q.rtt_ms > 300)
    || (q.loss_pct !== null && q.loss_pct > 5);
  ui.quality.dataset.level = bad ? "bad" : "good";
}

// --- protocol events ---------------------------------------------------------

function onWelcome(msg) {
  // A ring from before the drop was withdrawn by the server; if it still
  // stands, call.offer comes again right after this welcome.
  state.offer = null;
  state.clockSkew = (msg.server_time_ms || Date.now()) - Date.now();
  state.languages = Array.isArray(msg.languages) ? msg.languages : [];
  const user = msg.user || {};
  const langs = (user.languages || []).map(languageName).join(", ");
  ui.me.textContent = `${user.name || user.id || ""}${langs ? ` — ${langs}` : ""}`;
  fillTransferLanguages();
}

/** The server's `queue` message: calls waiting per language, and my calls today. */
function onQueue(msg) {
  const items = Object.entries(msg.languages || {}).map(([code, waiting]) => {
    const li = document.createElement("li");
    li.dataset.language = code;
    li.dataset.waiting = String(waiting);
    if (waiting > 0) li.classList.add("has-waiting");
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = languageName(code);
    const count = document.createElement("span");
    count.className = "count inline";
    setBilingual(count, t("queue.waiting", { n: waiting }));
    li.append(name, count);
    const oldest = (msg.oldest_wait_s || {})[code];
    if (waiting > 0 && oldest) {
      const o = document.createElement("span");
      o.className = "oldest inline";
      setBilingual(o, t("queue.oldest", { t: formatDuration(oldest) }));
      li.append(o);
    }
    return li;
  });
  ui.queue.replaceChildren(...items);
  const rows = (msg.today_calls || []).map((c) => {
    const tr = document.createElement("tr");
    tr.dataset.call = c.call_id;
    const time = new Date(c.answered_ms).toLocaleTimeString("ja-JP", { hour: "2-digit", minute: "2-digit" });
    const talk = typeof c.talk_s === "number" ? formatDuration(c.talk_s) : `${t("mine.live").ja} / ${t("mine.live").en}`;
    for (const [text, cls] of [[time, ""], [languageName(c.language), ""], [c.ward || "", ""], [c.counter || "", ""], [talk, "num"]]) {
      const td = document.createElement("td");
      if (cls) td.className = cls;
      td.textContent = text;
      tr.append(td);
    }
    return tr;
  });
  if (!rows.length) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = 5;
    td.className = "empty";
    setBilingual(td, t("mine.none"));
    tr.append(td);
    rows.push(tr);
  }
  ui.myCalls.replaceChildren(...rows);
}

function fillTransferLanguages() {
  const current = state.call ? state.call.language : null;
  ui.transferSelect.replaceChildren();
  for (const l of state.languages) {
    if (l.code === current) continue;
    const opt = document.createElement("option");
    opt.value = l.code;
    opt.textContent = languageName(l.code);
    ui.transferSelect.append(opt);
  }
}

function onPresence(msg) {
  state.presence = { ...msg };
  state.presenceKnown = true;
  if (state.call && msg.state !== "in_call") {
    // The routing state says the call is over (it ended while we were away
    // from the socket, and its call.ended never reached us).
    endCall(null);
  }
  if (typeof msg.since_ms === "number" && msg.since_ms > serverNow() + 1000) state.clockSkew += msg.since_ms - serverNow();
  render();
}

function onOffer(msg) {
  state.offer = { ...msg, received_at: Date.now() };
  state.note = null;
  ui.ringLanguage.textContent = languageName(msg.language);
  ui.ringWard.textContent = msg.ward || "–";
  ui.ringCounter.textContent = msg.counter || "–";
  ui.ringProcedure.textContent = msg.procedure || "–";
  render();
}

function onOfferCancelled(msg) {
  if (!state.offer || state.offer.offer_id !== msg.offer_id) return;
  state.offer = null;
  const key = { taken: "ring.gone_taken", cancelled: "ring.gone_cancelled", timeout: "ring.gone_timeout" }[msg.reason];
  state.note = key ? t(key) : null;
  if (msg.reason === "timeout") state.note = t("idle.missed");
  render();
}

async function onConnected(msg) {
  const same = state.call && state.call.id === msg.call_id;
  const offer = state.offer && state.offer.call_id === msg.call_id ? state.offer : null;
  const peer = msg.peer || {};
  if (!same) {
    state.call = {
      id: msg.call_id,
      language: peer.language || (offer && offer.language),
      ward: peer.ward || (offer && offer.ward) || "",
      counter: peer.counter || (offer && offer.counter) || "",
      procedure: (offer && offer.procedure) || peer.procedure || "",
      since: Date.now(),
    };
    chat.clear();
  }
  state.offer = null;
  state.note = null;
  const c = state.call;
  const lang = state.languages.find((l) => l.code === c.language) || {};
  setBilingual(ui.callFacts, t("call.facts", {
    language: lang.name || c.language, language_en: lang.name_en || c.language, ward: c.ward, counter: c.counter,
  }));
  if (c.procedure) setBilingual(ui.callProcedure, t("call.procedure", { p: c.procedure }));
  else ui.callProcedure.replaceChildren();
  setBilingual(ui.quality, t("call.quality_wait"));
  fillTransferLanguages();
  $("#transfer-error").hidden = true;
  render();
  const stream = await ensureLocalMedia();
  if (!state.call || state.call.id !== msg.call_id) return;
  state.leg.start(msg.call_id, msg.ice_servers || state.client.welcome?.ice_servers || [], stream);
}

function onEnded(msg) {
  if (state.offer && state.offer.call_id === msg.call_id) {
    state.offer = null;
    render();
    return;
  }
  if (!state.call || state.call.id !== msg.call_id) return;
  endCall(msg.reason);
  if (!["wrapup", "available", "away"].includes(state.presence.state)) {
    state.presence = { ...state.presence, state: "wrapup", since_ms: serverNow() };
  }
  render();
}

function endCall(reason) {
  stopMedia();
  state.call = null;
  const key = { hangup: "ended.hangup", transferred: "ended.transferred", peer_lost: "ended.peer_lost" }[reason];
  setBilingual(ui.wrapupEnded, key ? t(key) : reason ? t("ended.other", { reason }) : t("ended.hangup"));
}

// --- actions -----------------------------------------------------------------

async function setPresence(status) {
  if (!state.client) return;
  try {
    await state.client.request("presence.set", { status });
  } catch { /* the presence message shows the truth */ }
}

async function answer(kind) {
  const offer = state.offer;
  if (!offer) return;
  ringer.stop();
  for (const b of document.querySelectorAll("[data-action=accept],[data-action=decline]")) b.disabled = true;
  try {
    await state.client.request(`call.${kind}`, { call_id: offer.call_id, offer_id: offer.offer_id });
    if (kind === "decline") {
      state.offer = null;
      render();
    } else {
      ensureLocalMedia(); // start the camera while call.connected is on its way
    }
  } catch (err) {
    if (err.code === "conflict" || err.code === "not_found") {
      state.offer = null;
      state.note = t("ring.gone_taken");
      render();
    }
  } finally {
    for (const b of document.querySelectorAll("[data-action=accept],[data-action=decline]")) b.disabled = false;
  }
}

// --- wiring ------------------------------------------------------------------

applyText(t);
applyToggles();

const chat = new ChatPanel({
  form: $("#chat-form"),
  input: $("textarea[name=chat]"),
  log: $("[data-role=chat-log]"),
  myRole: "interpreter",
  labels: { me: `${t("chat.me").ja} / ${t("chat.me").en}` },
  onSend: async (text) => {
    if (!state.call || !state.client) return false;
    try {
      await state.client.request("chat.send", { call_id: state.call.id, text });
      return true;
    } catch {
      return false;
    }
  },
});

const session = startStaffSession({
  t,
  page: "console",
  roles: ["interpreter"],
  onGesture: () => ringer.unlock(),
  onClient: (client) => {
    state.client = client;
    state.leg = new MediaLeg(client, { remoteVideo: ui.remote });
    state.leg.addEventListener("quality", (ev) => showQuality(ev.detail));
    client.on("status", setConn);
    client.on("welcome", onWelcome);
    client.on("presence", onPresence);
    client.on("queue", onQueue);
    client.on("call.offer", onOffer);
    client.on("call.offer_cancelled", onOfferCancelled);
    client.on("call.connected", onConnected);
    client.on("call.ended", onEnded);
    client.on("chat", (m) => { if (state.call && m.call_id === state.call.id) chat.add(m); });
    window.tsunagu = { client, leg: state.leg, state };
    render();
  },
});

document.addEventListener("tsunagu:signed-out", () => {
  stopMedia();
  ringer.stop();
  state.client = null;
  state.presenceKnown = false;
  state.offer = null;
  state.call = null;
});
// Any click on the page may unlock audio (a reload keeps the sign-in but
// needs a fresh user gesture before the ring can sound).
document.addEventListener("pointerdown", () => ringer.unlock(), { capture: true });
document.addEventListener("keydown", () => ringer.unlock(), { capture: true });

$("[data-action=available]").addEventListener("click", () => { state.note = null; setPresence("available"); });
$("[data-action=away]").addEventListener("click", () => setPresence("away"));
$("[data-action=ready]").addEventListener("click", () => setPresence("available"));
$("[data-action=accept]").addEventListener("click", () => answer("accept"));
$("[data-action=decline]").addEventListener("click", () => answer("decline"));
$("[data-action=hangup]").addEventListener("click", async () => {
  if (!state.call) return;
  try { await state.client.request("call.hangup", { call_id: state.call.id }); } catch { /* call.ended settles it */ }
});
$("#transfer").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const language = ui.transferSelect.value;
  if (!state.call || !language) return;
  const errorEl = $("#transfer-error");
  errorEl.hidden = true;
  try {
    await state.client.request("call.transfer", { call_id: state.call.id, language });
  } catch (err) {
    // The call stays here; say why.
    const none = err.code === "conflict" && err.reply && /interpreter/.test(`${err.reply.reason || ""} ${err.reply.message || ""}`);
    setBilingual(errorEl, t(none ? "call.transfer_none" : "call.transfer_failed"));
    errorEl.hidden = false;
  }
});
$("#logout").addEventListener("click", () => session.signOut());
ui.mute.addEventListener("click", () => {
  ui.mute.setAttribute("aria-pressed", String(ui.mute.getAttribute("aria-pressed") !== "true"));
  applyToggles();
});
ui.camera.addEventListener("click", () => {
  ui.camera.setAttribute("aria-pressed", String(ui.camera.getAttribute("aria-pressed") !== "true"));
  applyToggles();
});
setInterval(tick, 500);
