// /supervisor: live calls, interpreters and alerts first (above the fold at
// 1280x800), then the queues per language, today's calls (filterable), the
// CSV report and a chart of waits through the day. Live data comes from
// `stats` (stats.subscribe over the WebSocket); today's calls from the CSV
// endpoint, fetched again when today's count changes. A person is counted
// once: calls in progress are counted as calls, not per language.

import { applyText, formatDuration, makeText, setBilingual } from "/static/common/tsunagu-ui.js";
import { LOGIN_TEXT, startStaffSession } from "/static/staff/staff-session.js";

const TIME_ZONE = "Asia/Tokyo"; // the deployment's zone (PROTOCOL.md section 8)

const TEXT = {
  ...LOGIN_TEXT,
  "login.title": { ja: "監督画面 サインイン", en: "Supervisor sign-in" },
  "app.title": { ja: "監督画面", en: "Supervisor" },
  "app.logout": { ja: "サインアウト", en: "Sign out" },
  "conn.open": { ja: "接続中", en: "Live" },
  "conn.connecting": { ja: "接続しています…", en: "Connecting…" },
  "conn.reconnecting": { ja: "再接続しています…", en: "Reconnecting…" },
  "conn.offline": { ja: "ネットワークが切れています", en: "Network lost" },
  "updated": { ja: "更新 {time}", en: "Updated {time}" },
  "today.title": { ja: "今日の実績", en: "Today" },
  "stat.waiting": { ja: "待ち", en: "Waiting" },
  "stat.answered": { ja: "応答", en: "Answered" },
  "stat.sl": { ja: "{s}秒以内応答率", en: "Answered within {s} s" },
  "stat.asa": { ja: "平均待ち時間", en: "Mean wait" },
  "stat.abandon": { ja: "放棄率", en: "Abandon rate" },
  "stat.offered": { ja: "受付", en: "Offered" },
  "stat.in_call": { ja: "通話中の呼び出し", en: "Calls in progress" },
  "stat.free": { ja: "受付可の通訳者", en: "Interpreters free" },
  "alerts.title": { ja: "注意", en: "Alerts" },
  "alerts.none": { ja: "いまは問題ありません", en: "Nothing needs attention" },
  "alarm.nobody": { ja: "{language}: {n}件待ち、受付可の通訳者がいません", en: "{language}: {n} waiting, no interpreter free" },
  "alarm.long": { ja: "{language}: 最長 {t} 待っています", en: "{language}: the oldest call has waited {t}" },
  "queues.note": { ja: "「受付可」は、その言語を受けられる人数です（複数言語の人は各言語に数えます）。通話中の数は上の「通話中の呼び出し」です。", en: "“Free” is how many people could take the language now (someone with two languages counts for each); calls in progress are counted once, above." },
  "day.title": { ja: "今日の呼び出し", en: "Today's calls" },
  "day.count": { ja: "{n}件", en: "{n} calls" },
  "day.none": { ja: "該当する呼び出しはありません", en: "No calls match" },
  "filter.all": { ja: "すべて", en: "All" },
  "col.time": { ja: "時刻", en: "Time" },
  "col.outcome": { ja: "結果", en: "Outcome" },
  "outcome.answered": { ja: "応答", en: "Answered" },
  "outcome.abandoned": { ja: "放棄", en: "Abandoned" },
  "outcome.failed": { ja: "不成立", en: "Failed" },
  "queues.title": { ja: "言語別の待ち", en: "Queues by language" },
  "tile.oldest": { ja: "最長待ち", en: "Oldest wait" },
  "tile.available": { ja: "受付可", en: "Available" },
  "tile.offered": { ja: "着信中", en: "Offered" },
  "tile.in_call": { ja: "通話中", en: "In call" },
  "tile.wrapup": { ja: "後処理", en: "Wrap-up" },
  "tile.away": { ja: "離席", en: "Away" },
  "tile.today": { ja: "今日 応答{answered}件", en: "Today {answered} answered" },
  "tile.today_sl": { ja: "応答率{sl}%", en: "{sl}% in time" },
  "tile.today_asa": { ja: "平均{asa}秒", en: "mean wait {asa} s" },
  "alarm": { ja: "{language}: 待っている人がいて、応答できる通訳者がいないか、待ちが長くなっています", en: "{language}: callers are waiting with nobody free, or waiting too long" },
  "calls.title": { ja: "進行中の呼び出し", en: "Live calls" },
  "calls.none": { ja: "進行中の呼び出しはありません", en: "No live calls" },
  "interp.title": { ja: "通訳者", en: "Interpreters" },
  "interp.none": { ja: "通訳者はいません", en: "No interpreters" },
  "col.ward": { ja: "区", en: "Ward" },
  "col.counter": { ja: "窓口", en: "Counter" },
  "col.language": { ja: "言語", en: "Language" },
  "col.state": { ja: "状態", en: "State" },
  "col.wait": { ja: "待ち", en: "Wait" },
  "col.duration": { ja: "通話", en: "Talk" },
  "col.interpreter": { ja: "通訳者", en: "Interpreter" },
  "col.quality": { ja: "品質", en: "Quality" },
  "quality.transcoding": { ja: "変換中", en: "transcoding" },
  "col.name": { ja: "名前", en: "Name" },
  "col.in_state": { ja: "経過", en: "Time in state" },
  "col.languages": { ja: "言語", en: "Languages" },
  "chart.title": { ja: "今日の待ち時間の推移", en: "Waits through the day" },
  "chart.none": { ja: "今日応答した呼び出しはまだありません", en: "No answered calls yet today" },
  "chart.desc": { ja: "応答した呼び出しごとの待ち時間（縦軸 秒）と受付時刻（横軸）", en: "Wait of each answered call (seconds) by time it entered the queue" },
  "csv.title": { ja: "CSV レポート", en: "CSV report" },
  "csv.from": { ja: "開始日", en: "From" },
  "csv.to": { ja: "終了日", en: "To" },
  "csv.download": { ja: "ダウンロード", en: "Download" },
  "csv.working": { ja: "作成しています…", en: "Preparing…" },
  "csv.done": { ja: "ダウンロードしました", en: "Downloaded" },
  "csv.failed": { ja: "ダウンロードできませんでした（{why}）", en: "Download failed ({why})" },
  "report.title": { ja: "月次評価報告", en: "Monthly evaluation report" },
  "report.month": { ja: "月", en: "Month" },
  "report.pdf": { ja: "PDF で保存", en: "Save PDF" },
  "report.html": { ja: "HTML で保存", en: "Save HTML" },
  "state.available": { ja: "受付可", en: "Available" },
  "state.offered": { ja: "着信中", en: "Offered" },
  "state.in_call": { ja: "通話中", en: "In call" },
  "state.wrapup": { ja: "後処理", en: "Wrap-up" },
  "state.away": { ja: "離席", en: "Away" },
  "state.offline": { ja: "オフライン", en: "Offline" },
  "state.queued": { ja: "待ち", en: "Queued" },
  "state.connecting": { ja: "接続中", en: "Connecting" },
  "state.connected": { ja: "通話中", en: "Connected" },
  "tab.live": { ja: "運用状況", en: "Service" },
  "tab.fleet": { ja: "タブレット", en: "Tablets" },
  "fleet.title": { ja: "タブレットの状態", en: "Tablet fleet" },
  "fleet.summary": { ja: "赤 {red}台・黄 {amber}台・緑 {green}台", en: "{red} red, {amber} amber, {green} green" },
  "fleet.none": { ja: "登録されたタブレットはありません", en: "No tablets registered" },
  "col.status": { ja: "評価", en: "Rating" },
  "col.kiosk": { ja: "端末", en: "Tablet" },
  "col.reasons": { ja: "理由", en: "Reasons" },
  "col.last_seen": { ja: "最終接続", en: "Last seen" },
  "col.last_test": { ja: "最終テスト", en: "Last test" },
  "col.test_now": { ja: "テスト", en: "Test" },
  "status.green": { ja: "良好", en: "Green" },
  "status.amber": { ja: "注意", en: "Amber" },
  "status.red": { ja: "要対応", en: "Red" },
  "seen.online": { ja: "接続中", en: "Online" },
  "seen.never": { ja: "接続なし", en: "Never" },
  "test.never": { ja: "未実施", en: "Not tested" },
  "test.passed": { ja: "合格", en: "Passed" },
  "test.failed": { ja: "不合格", en: "Failed" },
  "test.now": { ja: "今すぐテスト", en: "Test now" },
  "test.sending": { ja: "送信中…", en: "Sending…" },
  "test.started": { ja: "テスト通話を始めました", en: "Test call started" },
  "test.not_found": { ja: "その端末は登録されていません", en: "No such tablet" },
  "test.conflict": { ja: "オフラインか通話中のためテストできません", en: "Offline or in a call: cannot test now" },
  "test.error": { ja: "テストできません（{code}）", en: "Cannot test ({code})" },
  "test.lost": { ja: "接続が切れました。もう一度押してください", en: "Connection lost: press again" },
  "alarm.kiosk": { ja: "タブレット {ward} {counter}番窓口（{id}）: {reason}", en: "Tablet at {ward} counter {counter} ({id}): {reason}" },
};

const t = makeText(TEXT);
const $ = (sel) => document.querySelector(sel);
const ui = {
  conn: $("#conn"),
  updated: $("#updated"),
  tiles: $("#tiles"),
  calls: $("#calls"),
  interpreters: $("#interpreters"),
  chart: $("#chart"),
  csvStatus: $("#csv-status"),
  reportStatus: $("#report-status"),
  alerts: $("#alerts"),
  dayCalls: $("#day-calls"),
  dayCount: $("#day-count"),
  dayFilter: $("#day-filter"),
  announce: $("#announce"),
  main: $("#main"),
  fleet: $("#fleet"),
  fleetSection: $("#fleet-section"),
  fleetSummary: $("#fleet-summary"),
  fleetRed: $("#fleet-red"),
};

const state = {
  client: null,
  snapshot: null,
  skew: 0, // server clock - local clock, ms
  languages: [],
  alarms: new Set(),
  redKiosks: new Set(), // red during opening hours, as of the last snapshot
  testResults: new Map(), // kiosk id -> {result, text} of the last "test now"
  fleetKey: "",
};

const serverNow = () => Date.now() + state.skew;

function languageName(code) {
  const l = state.languages.find((x) => x.code === code);
  return l ? l.name : code;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return node;
}

function bilingual(text) {
  const span = el("span", { class: "inline" });
  setBilingual(span, text);
  return span;
}

function stateBadge(s) {
  const key = `state.${s}`;
  const label = TEXT[key] ? `${TEXT[key].ja} / ${TEXT[key].en}` : s;
  return el("span", { class: "state-badge", "data-state": s }, label);
}

function fmtNum(v, digits = 1) {
  if (typeof v !== "number" || !Number.isFinite(v)) return "–";
  return Number.isInteger(v) ? String(v) : v.toFixed(digits);
}

function setStat(name, value, digits) {
  const node = document.querySelector(`[data-stat="${name}"]`);
  if (!node) return;
  node.textContent = fmtNum(value, digits);
  if (typeof value === "number") node.dataset.value = String(value); else delete node.dataset.value;
}

// --- rendering ---------------------------------------------------------------

function renderToday(snap) {
  const today = snap.today || {};
  const waiting = (snap.languages || []).reduce((n, l) => n + (l.waiting || 0), 0);
  setStat("waiting", waiting, 0);
  // Each call and each person once, whatever languages they speak.
  setStat("in_call", (snap.calls || []).filter((c) => c.state === "connected" || c.state === "connecting").length, 0);
  setStat("available_interpreters", (snap.interpreters || []).filter((i) => i.state === "available").length, 0);
  setStat("answered", today.answered, 0);
  setStat("offered", today.offered, 0);
  setStat("service_level_pct", today.service_level_pct, 1);
  setStat("asa_s", today.asa_s, 1);
  setStat("abandon_rate_pct", today.abandon_rate_pct, 1);
  setBilingual($("#sl-label"), t("stat.sl", { s: today.service_level_s ?? 30 }));
}

function renderTiles(snap) {
  const slS = (snap.today && snap.today.service_level_s) || 30;
  const tiles = [];
  const alarms = new Set();
  for (const l of snap.languages || []) {
    const alarm = l.waiting > 0 && (l.available === 0 || (l.oldest_wait_s || 0) > slS);
    if (alarm) alarms.add(l.code);
    const dl = el("dl");
    // Per language only what belongs to the language: its queue, and who could take it now.
    // People in a call are not counted here (one person of two languages would read as two).
    const rows = [
      ["tile.oldest", l.waiting ? formatDuration(l.oldest_wait_s || 0) : "–"],
      ["tile.available", l.available ?? 0],
    ];
    for (const [key, value] of rows) {
      dl.append(el("dt", {}, bilingual(t(key))), el("dd", { "data-field": key.slice(5) }, value ?? 0));
    }
    tiles.push(el("article", { class: `tile${alarm ? " alarm" : ""}`, "data-language": l.code },
      el("h3", {}, `${languageName(l.code)} `, el("small", {}, l.code)),
      el("p", { class: "waiting" }, el("span", { class: "value", "data-field": "waiting" }, l.waiting || 0),
        bilingual(t("stat.waiting"))),
      dl,
      todayLine(snap.today && snap.today.by_language && snap.today.by_language[l.code])));
  }
  ui.tiles.replaceChildren(...tiles);
  renderAlerts(snap, alarms, slS);
  const fresh = [...alarms].filter((c) => !state.alarms.has(c));
  if (fresh.length) {
    ui.announce.textContent = fresh.map((c) => {
      const a = t("alarm", { language: languageName(c) });
      return `${a.ja} / ${a.en}`;
    }).join("。");
  }
  state.alarms = alarms;
}

function todayLine(day) {
  if (!day) return "";
  // Only numbers that exist: no "mean – s" before any call was answered.
  const parts = [t("tile.today", { answered: day.answered ?? 0 })];
  if (typeof day.service_level_pct === "number") parts.push(t("tile.today_sl", { sl: fmtNum(day.service_level_pct, 0) }));
  if (typeof day.asa_s === "number") parts.push(t("tile.today_asa", { asa: fmtNum(day.asa_s) }));
  const text = { ja: parts.map((p) => p.ja).join("・"), en: parts.map((p) => p.en).join(", ") };
  return el("p", { class: "tile-today" }, bilingual(text));
}

function renderAlerts(snap, alarms, slS) {
  const items = [];
  for (const l of snap.languages || []) {
    if (!alarms.has(l.code)) continue;
    const text = l.available === 0
      ? t("alarm.nobody", { language: languageName(l.code), n: l.waiting })
      : t("alarm.long", { language: languageName(l.code), t: formatDuration(l.oldest_wait_s || 0) });
    items.push(el("li", { class: "alert-item", "data-language": l.code }, bilingual(text)));
  }
  const kiosks = fleetAlerts(snap);
  items.push(...kiosks);
  if (!items.length) items.push(el("li", { class: "empty" }, bilingual(t("alerts.none"))));
  ui.alerts.replaceChildren(...items);
  ui.alerts.dataset.count = String(alarms.size + kiosks.length);
  void slS;
}

// --- the tablet fleet (PROTOCOL.md section 14) ----------------------------------

/** "カメラが暗すぎます / camera too dark" -> {ja, en}. */
function splitReason(reason) {
  const at = String(reason).indexOf(" / ");
  return at < 0 ? { ja: reason, en: reason } : { ja: reason.slice(0, at), en: reason.slice(at + 3) };
}

/** An alert per kiosk that is red while its ward is open; newly red ones are announced. */
function fleetAlerts(snap) {
  const open = snap.fleet_open || {};
  const red = (snap.fleet || []).filter((k) => k.status === "red" && open[k.ward]);
  const now = new Set(red.map((k) => k.kiosk_id));
  const fresh = red.filter((k) => !state.redKiosks.has(k.kiosk_id));
  state.redKiosks = now;
  const items = red.map((k) => {
    const reason = splitReason(k.reasons[0] || "");
    const vars = { ward: k.ward, counter: k.counter, id: k.kiosk_id };
    const text = { ja: t("alarm.kiosk", { ...vars, reason: reason.ja }).ja, en: t("alarm.kiosk", { ...vars, reason: reason.en }).en };
    const item = el("li", { class: "alert-item", "data-kiosk-alert": k.kiosk_id }, bilingual(text));
    item.addEventListener("click", () => showTab("fleet"));
    return item;
  });
  if (fresh.length) {
    ui.announce.textContent = fresh.map((k) => {
      const reason = splitReason(k.reasons[0] || "");
      const a = t("alarm.kiosk", { ward: k.ward, counter: k.counter, id: k.kiosk_id, reason: reason.ja });
      return a.ja;
    }).join("。");
  }
  return items;
}

function clock(ms) {
  const d = new Date(ms);
  const today = dateFormat.format(new Date(serverNow())) === dateFormat.format(d);
  const opts = today ? { hour: "2-digit", minute: "2-digit" } : { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" };
  return d.toLocaleString("ja-JP", { timeZone: TIME_ZONE, ...opts });
}

function statusBadge(status) {
  return el("span", { class: "status-badge", "data-status": status }, `${t(`status.${status}`).ja} / ${t(`status.${status}`).en}`);
}

function lastTestCell(test) {
  if (!test) return bilingual(t("test.never"));
  const verdict = t(test.ok ? "test.passed" : "test.failed");
  const figures = [`${fmtNum(test.fps_out, 0)}/${fmtNum(test.fps_in, 0)} fps`, `${fmtNum(test.rtt_ms, 0)} ms`,
    `${fmtNum(test.loss_pct)}%`, `${fmtNum((test.setup_ms || 0) / 1000)} s`].join(" · ");
  return el("span", { "data-field": "last-test", "data-ok": String(Boolean(test.ok)) },
    `${test.ok ? "✓" : "✗"} ${verdict.ja} / ${verdict.en} ${clock(test.at_ms)}`, el("br"),
    el("span", { class: "hint" }, figures));
}

function fleetRow(k) {
  const reasons = k.reasons.length
    ? el("ul", { class: "reasons" }, ...k.reasons.map((r) => el("li", { "data-reason": "" }, r)))
    : "–";
  const seen = k.online ? bilingual(t("seen.online"))
    : (k.last_seen_ms ? clock(k.last_seen_ms) : bilingual(t("seen.never")));
  const button = el("button", { type: "button", "data-action": "test-kiosk", "data-kiosk-id": k.kiosk_id }, bilingual(t("test.now")));
  button.addEventListener("click", () => testKiosk(k.kiosk_id));
  const result = el("span", { class: "test-result", "data-role": "test-result", role: "status" });
  const shown = state.testResults.get(k.kiosk_id);
  if (shown) {
    result.dataset.result = shown.result;
    result.dataset.code = shown.code;
    setBilingual(result, shown.text);
  }
  return el("tr", { "data-kiosk": k.kiosk_id, "data-status": k.status, "data-ward": k.ward, "data-counter": k.counter },
    el("td", {}, statusBadge(k.status)), el("td", {}, k.ward), el("td", {}, k.counter),
    el("td", {}, k.kiosk_id), el("td", { "data-field": "reasons" }, reasons),
    el("td", { "data-field": "last-seen" }, seen), el("td", {}, lastTestCell(k.last_test)),
    el("td", {}, button, result));
}

function renderFleet(snap, force = false) {
  const fleet = Array.isArray(snap.fleet) ? snap.fleet : null;
  if (!fleet) return;
  const key = JSON.stringify(fleet);
  if (!force && key === state.fleetKey) return; // redraw only on change (keeps focus)
  state.fleetKey = key;
  const n = { red: 0, amber: 0, green: 0 };
  for (const k of fleet) n[k.status] = (n[k.status] || 0) + 1;
  setBilingual(ui.fleetSummary, t("fleet.summary", n));
  ui.fleetRed.textContent = String(n.red);
  ui.fleetRed.hidden = n.red === 0;
  const rows = fleet.map(fleetRow);
  if (!rows.length) rows.push(el("tr", {}, el("td", { colSpan: 8, class: "empty" }, bilingual(t("fleet.none")))));
  ui.fleet.replaceChildren(...rows);
}

/** "Test now": kiosk.test over the WebSocket; the reply (ack or error) is said plainly. */
async function testKiosk(kioskId) {
  const show = (result, code, text) => {
    state.testResults.set(kioskId, { result, code, text });
    const cell = ui.fleet.querySelector(`[data-kiosk="${CSS.escape(kioskId)}"] [data-role="test-result"]`);
    if (cell) {
      cell.dataset.result = result;
      cell.dataset.code = code;
      setBilingual(cell, text);
    }
  };
  show("sending", "", t("test.sending"));
  try {
    await state.client.request("kiosk.test", { kiosk_id: kioskId });
    show("ack", "ack", t("test.started"));
  } catch (err) {
    if (!err.code || err.code === "disconnected") { show("error", "disconnected", t("test.lost")); return; }
    const key = `test.${err.code}`;
    show("error", err.code, TEXT[key] ? t(key) : t("test.error", { code: err.code }));
  }
}

function showTab(name) {
  ui.main.dataset.tab = name;
  ui.fleetSection.hidden = name !== "fleet";
  for (const b of document.querySelectorAll("[data-tab]")) {
    if (b.tagName === "BUTTON") b.setAttribute("aria-selected", String(b.dataset.tab === name));
  }
}

function interpreterName(id, snap) {
  const i = (snap.interpreters || []).find((x) => x.id === id);
  return i ? i.name || i.id : id || "";
}

// A call's quality is either flat {fps, rtt_ms, loss_pct, flags} or the
// relay's per-leg report {legs: {kiosk: {fps_in, rtt_ms, loss_pct}, ...}, flags}:
// the worst leg is what the supervisor needs to see.
function summarizeQuality(q) {
  if (!q || typeof q !== "object") return null;
  const flags = [].concat(q.flags || []);
  // kinds the relay re-encodes because the two ends share no codec (costs relay CPU)
  const transcoding = [].concat(q.transcoding || []);
  if (typeof q.fps === "number" || !q.legs) {
    return { fps: q.fps, rtt_ms: q.rtt_ms, loss_pct: q.loss_pct, flags, transcoding };
  }
  const legs = Object.values(q.legs).filter((l) => l && typeof l === "object");
  const nums = (key) => legs.map((l) => l[key]).filter((v) => typeof v === "number");
  const pick = (values, fn) => (values.length ? fn(...values) : null);
  return {
    fps: pick(nums("fps_in"), Math.min),
    rtt_ms: pick(nums("rtt_ms"), Math.max),
    loss_pct: pick(nums("loss_pct"), Math.max),
    flags,
    transcoding,
  };
}

function renderCalls(snap) {
  const now = serverNow();
  const rows = (snap.calls || []).map((c) => {
    const wait = ((c.answered_ms || now) - c.enqueued_ms) / 1000;
    const talk = c.answered_ms ? (now - c.answered_ms) / 1000 : null;
    const q = summarizeQuality(c.quality);
    const quality = q ? `${fmtNum(q.fps, 0)} fps · ${fmtNum(q.rtt_ms, 0)} ms · ${fmtNum(q.loss_pct)}%${q.flags.length ? ` ⚠ ${q.flags.join(",")}` : ""}${q.transcoding.length ? ` · ${t("quality.transcoding").ja} transcoding ${q.transcoding.join("+")}` : ""}` : "–";
    return el("tr", { "data-call": c.call_id, "data-state": c.state },
      el("td", {}, c.ward || ""), el("td", {}, c.counter || ""), el("td", {}, languageName(c.language)),
      el("td", {}, stateBadge(c.state)),
      el("td", { class: "num", "data-field": "wait" }, formatDuration(wait)),
      el("td", { class: "num", "data-field": "duration" }, talk === null ? "–" : formatDuration(talk)),
      el("td", {}, interpreterName(c.interpreter, snap)),
      el("td", { "data-field": "quality" }, quality));
  });
  if (!rows.length) rows.push(el("tr", {}, el("td", { colSpan: 8, class: "empty" }, bilingual(t("calls.none")))));
  ui.calls.replaceChildren(...rows);
}

function renderInterpreters(snap) {
  const now = serverNow();
  const order = { in_call: 0, offered: 1, wrapup: 2, available: 3, away: 4, offline: 5 };
  const list = [...(snap.interpreters || [])].sort(
    (a, b) => (order[a.state] ?? 9) - (order[b.state] ?? 9) || String(a.name).localeCompare(String(b.name)));
  const rows = list.map((i) => el("tr", { "data-interpreter": i.id, "data-state": i.state },
    el("td", {}, i.name || i.id), el("td", {}, stateBadge(i.state)),
    el("td", { class: "num", "data-field": "in_state" }, i.since_ms ? formatDuration((now - i.since_ms) / 1000) : "–"),
    el("td", {}, (i.languages || []).map(languageName).join(", "))));
  if (!rows.length) rows.push(el("tr", {}, el("td", { colSpan: 4, class: "empty" }, bilingual(t("interp.none")))));
  ui.interpreters.replaceChildren(...rows);
}

const hourFormat = new Intl.DateTimeFormat("en-GB", { timeZone: TIME_ZONE, hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
function hourOfDay(ms) {
  const [h, m] = hourFormat.format(new Date(ms)).split(":").map(Number);
  return h + m / 60;
}

function renderChart(snap) {
  const waits = (snap.today && Array.isArray(snap.today.waits)) ? snap.today.waits : null;
  const key = JSON.stringify([waits && waits.length, waits && waits[waits.length - 1]]);
  if (key === state.chartKey) return; // redraw only on change
  state.chartKey = key;
  if (!waits || !waits.length) {
    ui.chart.replaceChildren(el("p", { class: "empty" }, bilingual(t("chart.none"))));
    return;
  }
  const slS = (snap.today && snap.today.service_level_s) || 30;
  const pts = waits.map(([at, w]) => [hourOfDay(at), w]);
  const x0 = Math.min(8, Math.floor(Math.min(...pts.map((p) => p[0]))));
  const x1 = Math.max(18, Math.ceil(Math.max(...pts.map((p) => p[0]))));
  const maxW = Math.max(slS * 1.5, ...pts.map((p) => p[1]));
  const step = [10, 30, 60, 120, 300, 600, 1200, 1800].find((s) => maxW / s <= 6) || 3600;
  const y1 = Math.ceil(maxW / step) * step;
  const W = 720; const H = 220; const L = 48; const R = 24; const T = 12; const B = 28;
  const sx = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const sy = (y) => H - B - (y / y1) * (H - T - B);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("role", "img");
  const desc = t("chart.desc");
  svg.setAttribute("aria-label", `${desc.ja} / ${desc.en}: ${pts.length}`);
  const add = (tag, attrs, text) => {
    const n = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    svg.append(n);
    return n;
  };
  for (let y = 0; y <= y1; y += step) {
    add("line", { x1: L, x2: W - R, y1: sy(y), y2: sy(y), stroke: "#d5d7de" });
    add("text", { x: L - 6, y: sy(y) + 4, "text-anchor": "end", "font-size": 11, fill: "#44474e" }, y >= 60 ? `${y / 60}m` : `${y}s`);
  }
  for (let x = x0; x <= x1; x += x1 - x0 > 12 ? 2 : 1) {
    add("text", { x: sx(x), y: H - 8, "text-anchor": "middle", "font-size": 11, fill: "#44474e" }, `${x}:00`);
  }
  add("line", { x1: L, x2: W - R, y1: sy(slS), y2: sy(slS), stroke: "#a4161a", "stroke-dasharray": "6 4" });
  add("text", { x: W - R, y: sy(slS) - 4, "text-anchor": "end", "font-size": 11, fill: "#a4161a" }, `${slS}s`);
  for (const [x, y] of pts) {
    add("circle", { cx: sx(x).toFixed(1), cy: sy(Math.min(y, y1)).toFixed(1), r: 4, fill: y > slS ? "#a4161a" : "#0b4fbd", "fill-opacity": 0.8 });
  }
  ui.chart.replaceChildren(svg);
}

function render() {
  const snap = state.snapshot;
  if (!snap) return;
  renderToday(snap);
  renderTiles(snap);
  renderCalls(snap);
  renderInterpreters(snap);
  renderChart(snap);
  renderFleet(snap);
  const time = new Date(snap.at_ms || Date.now()).toLocaleTimeString("ja-JP", { timeZone: TIME_ZONE });
  setBilingual(ui.updated, t("updated", { time }));
  ui.updated.classList.add("inline");
}

function onStats(msg) {
  if (typeof msg.at_ms === "number") state.skew = msg.at_ms - Date.now();
  state.snapshot = msg;
  render();
  // A call ended: the list of today's calls (finished calls) has a new row.
  const key = `${msg.today ? msg.today.offered : ""}|${(msg.calls || []).map((c) => c.call_id).join(",")}`;
  if (key !== state.dayKey) {
    state.dayKey = key;
    loadDay();
  }
}

// --- today's calls (the CSV of today, in a table with filters) ----------------

/** Parse the report CSV (RFC 4180 quoting) into objects keyed by the header row. */
function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') { field += '"'; i++; } else if (ch === '"') quoted = false; else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") { row.push(field); field = ""; } else if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && text[i + 1] === "\n") i++;
      row.push(field); field = "";
      if (row.some((f) => f !== "")) rows.push(row);
      row = [];
    } else field += ch;
  }
  if (field !== "" || row.length) { row.push(field); rows.push(row); }
  const [header, ...body] = rows;
  if (!header) return [];
  const names = header.map((h) => h.replace(/^\ufeff/, ""));
  // Section 13: fields that would start a formula carry a leading '.
  const clean = (v) => (/^'[=+\-@\t\r]/.test(v) ? v.slice(1) : v);
  return body.map((r) => Object.fromEntries(names.map((n, k) => [n, clean(r[k] ?? "")])));
}

async function loadDay() {
  const token = state.client && state.client.currentToken();
  if (!token) return;
  const day = dateFormat.format(new Date());
  try {
    const res = await fetch(`/api/calls.csv?from=${day}&to=${day}`, {
      headers: { Authorization: `Bearer ${token}` }, credentials: "same-origin",
    });
    if (!res.ok) return;
    state.day = parseCsv(await res.text());
    fillDayFilters();
    renderDay();
  } catch { /* the next change tries again */ }
}

function fillDayFilters() {
  const form = ui.dayFilter;
  const all = t("filter.all");
  const options = {
    language: [...new Set(state.day.map((c) => c.language))].sort().map((v) => [v, languageName(v)]),
    ward: [...new Set(state.day.map((c) => c.ward))].sort().map((v) => [v, v]),
    outcome: ["answered", "abandoned", "failed"].map((v) => [v, `${t(`outcome.${v}`).ja} / ${t(`outcome.${v}`).en}`]),
  };
  for (const [name, list] of Object.entries(options)) {
    const select = form.elements[name];
    const current = select.value;
    select.replaceChildren(el("option", { value: "" }, `${all.ja} / ${all.en}`),
      ...list.map(([value, label]) => el("option", { value }, label)));
    select.value = list.some(([v]) => v === current) ? current : "";
  }
}

function renderDay() {
  const f = ui.dayFilter.elements;
  const want = { language: f.language.value, ward: f.ward.value, outcome: f.outcome.value };
  const calls = (state.day || []).filter((c) => Object.entries(want).every(([k, v]) => !v || c[k] === v));
  calls.sort((a, b) => String(b.enqueued).localeCompare(String(a.enqueued)));
  const rows = calls.map((c) => {
    const time = c.enqueued ? new Date(c.enqueued).toLocaleTimeString("ja-JP", { timeZone: TIME_ZONE, hour: "2-digit", minute: "2-digit" }) : "";
    const outcome = TEXT[`outcome.${c.outcome}`] ? `${t(`outcome.${c.outcome}`).ja} / ${t(`outcome.${c.outcome}`).en}` : c.outcome;
    return el("tr", { "data-call": c.call_id, "data-outcome": c.outcome, "data-language": c.language },
      el("td", {}, time), el("td", {}, c.ward), el("td", {}, c.counter), el("td", {}, languageName(c.language)),
      el("td", { class: "num" }, c.wait_s ? formatDuration(Number(c.wait_s)) : "–"),
      el("td", { class: "num" }, c.talk_s && Number(c.talk_s) > 0 ? formatDuration(Number(c.talk_s)) : "–"),
      el("td", {}, outcome));
  });
  if (!rows.length) rows.push(el("tr", {}, el("td", { colSpan: 7, class: "empty" }, bilingual(t("day.none")))));
  ui.dayCalls.replaceChildren(...rows);
  setBilingual(ui.dayCount, t("day.count", { n: calls.length }));
  ui.dayCount.classList.add("inline");
}

// Durations tick between snapshots.
setInterval(() => {
  if (!state.snapshot) return;
  renderCalls(state.snapshot);
  renderInterpreters(state.snapshot);
}, 1000);

// --- CSV -----------------------------------------------------------------------

const dateFormat = new Intl.DateTimeFormat("en-CA", { timeZone: TIME_ZONE, year: "numeric", month: "2-digit", day: "2-digit" });

// Fetch `path` with the staff token and save it as `filename`; progress in `status`.
async function download(path, filename, type, status) {
  setBilingual(status, t("csv.working"));
  try {
    const token = state.client && state.client.currentToken();
    const res = await fetch(path, {
      headers: { Authorization: `Bearer ${token}` },
      credentials: "same-origin",
    });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const blob = await res.blob();
    const url = URL.createObjectURL(blob.type ? blob : new Blob([blob], { type }));
    const a = document.createElement("a");
    a.href = url;
    a.download = filename;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    setBilingual(status, t("csv.done"));
  } catch (err) {
    setBilingual(status, t("csv.failed", { why: err.message }));
  }
}

function downloadCsv(from, to) {
  return download(`/api/calls.csv?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`,
    `tsunagu-calls-${from}_${to}.csv`, "text/csv", ui.csvStatus);
}

// The monthly evaluation report (docs/report.md), as PDF or HTML.
function downloadReport(month, format) {
  return download(`/api/report?month=${encodeURIComponent(month)}&format=${format}`,
    `tsunagu-report-${month}.${format}`, format === "pdf" ? "application/pdf" : "text/html",
    ui.reportStatus);
}

// --- wiring ------------------------------------------------------------------

applyText(t);
for (const b of document.querySelectorAll("button[data-tab]")) {
  b.addEventListener("click", () => showTab(b.dataset.tab));
}
ui.dayFilter.addEventListener("change", renderDay);
ui.dayFilter.addEventListener("submit", (ev) => ev.preventDefault());
const csvForm = $("#csv");
const today = dateFormat.format(new Date());
csvForm.elements.from.value = today;
csvForm.elements.to.value = today;
csvForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const from = csvForm.elements.from.value;
  const to = csvForm.elements.to.value;
  if (from && to) downloadCsv(from <= to ? from : to, from <= to ? to : from);
});
const reportForm = $("#report");
// Last month by default: the report is usually made once a month has ended.
const [thisYear, thisMonth] = today.split("-").map(Number);
reportForm.elements.month.value = thisMonth === 1 ? `${thisYear - 1}-12`
  : `${thisYear}-${String(thisMonth - 1).padStart(2, "0")}`;
reportForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const value = reportForm.elements.month.value;
  const format = ev.submitter && ev.submitter.value === "html" ? "html" : "pdf";
  if (/^\d{4}-\d{2}$/.test(value)) downloadReport(value, format);
});

const session = startStaffSession({
  t,
  page: "supervisor",
  roles: ["supervisor", "admin"],
  onClient: (client) => {
    state.client = client;
    client.on("status", (s) => {
      ui.conn.dataset.status = s;
      const key = `conn.${s}`;
      if (TEXT[key]) setBilingual(ui.conn, t(key));
    });
    client.on("welcome", (m) => {
      state.languages = Array.isArray(m.languages) ? m.languages : [];
      if (typeof m.server_time_ms === "number") state.skew = m.server_time_ms - Date.now();
      // Subscribe on every (re)connect: a new socket starts unsubscribed.
      client.request("stats.subscribe", {}).catch(() => {});
    });
    client.on("stats", onStats);
    window.tsunagu = { client, state };
  },
});
$("#logout").addEventListener("click", () => session.signOut());
