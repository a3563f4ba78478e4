// The tablet's daily test call (PROTOCOL.md section 14, docs/testcall.md).
//
// On kiosk.test_due, when the tablet is idle, the page calls the answering bot
// (language "test") quietly: the home screen stays, with a small
// "点検中 / Self-check" notice and no chime. After the bot's first decoded
// frame it measures 5 s of media with getStats (frames decoded in, frames
// encoded out, fps both ways, round trip, loss), sends kiosk.test_result and
// hangs up. A resident's tap on a language cancels it: the test is ended
// unreported and the server tries again later.

import { MediaLeg, getLocalMedia } from "/static/common/tsunagu-media.js";

const ANSWER_MS = 60000; // the bot must answer within this (the server ends it then, too)
const FIRST_FRAME_MS = 15000; // after the answer, its first frame must arrive within this
const MEASURE_MS = 5000;

const END_REASONS = {
  no_interpreter: "no answering bot is signed in",
  timeout: "the answering bot did not answer in time",
  peer_lost: "the connection to the answering bot was lost",
};

class Cancelled extends Error {}

export class SelfCheck {
  constructor(client, { notice, video, root }) {
    this.client = client;
    this.notice = notice;
    this.video = video;
    this.root = root;
    this.callId = null;
    this.active = false;
    this.results = []; // what this page reported (for tests and management tools)
    this._ids = new Set(); // every test call's id: the page's call screens ignore them
    this._leg = null;
    this._stream = null;
    this._cancelled = false;
    this._requesting = false;
    this._running = null;
    // Registered before the page's own handlers: the reply to our call.request is also
    // dispatched as an event, before the request's promise lets us see its id.
    client.on("call.queued", (m) => { if (m.language === "test") this._ids.add(m.call_id); });
  }

  /** Whether a call message is about a test call (ours now, or one left over). */
  owns(msg) {
    const testing = msg.language === "test" || (msg.peer && msg.peer.language === "test");
    if (testing && msg.call_id) this._ids.add(msg.call_id);
    return !!msg.call_id && this._ids.has(msg.call_id);
  }

  /** A test call this page is not running (a resumed session after the page lost it, or
   * a reload): hang it up, so the tablet is free for residents. */
  dropStray(msg) {
    if (this._requesting || msg.call_id === this.callId || msg.type === "call.ended") return;
    this.client.request("call.hangup", { call_id: msg.call_id }).catch(() => {});
  }

  /** Place the test call for `testId` (the caller checked the tablet is idle). */
  start(testId) {
    if (this.active) return;
    this._running = this._run(testId)
      .catch(async () => {
        // cancelled, or the socket dropped: leave no test call behind
        if (this.callId) {
          try { await this.client.request("call.hangup", { call_id: this.callId }); } catch { /* over */ }
        }
      })
      .finally(() => this._finish());
  }

  /** A resident tapped a language: end the test call unreported, then resolve. */
  async cancel() {
    if (!this.active) return;
    this._cancelled = true;
    const callId = this.callId;
    if (callId) {
      try {
        await this.client.request("call.hangup", { call_id: callId });
      } catch { /* already over */ }
    }
    if (this._running) await this._running;
  }

  async _run(testId) {
    this.active = true;
    this._cancelled = false;
    this.root.dataset.selfcheck = "running";
    this.notice.hidden = false;
    const t0 = performance.now();
    this._requesting = true; // our own call.queued comes as an event before this resolves
    let reply;
    try {
      reply = await this.client.request("call.request", { language: "test", test_id: testId });
    } finally {
      this._requesting = false;
    }
    this.callId = reply.call_id;
    this._ids.add(reply.call_id);
    if (this._cancelled) throw new Cancelled();
    const answer = await this._answered(reply.call_id);
    this._check();
    let result;
    if (answer.type === "call.connected") {
      this._stream = await getLocalMedia().catch(() => null);
      this._check();
      this._leg = new MediaLeg(this.client, { remoteVideo: this.video });
      this._leg.start(answer.call_id, answer.ice_servers || this.client.welcome?.ice_servers || [],
        this._stream);
      result = await this._measure(t0);
    } else {
      const why = answer.reason || "timeout";
      result = { ok: false, fps_in: null, fps_out: null, rtt_ms: null, loss_pct: null,
        setup_ms: null, reason: END_REASONS[why] || `the test call ended (${why})` };
    }
    this._check();
    await this.client.request("kiosk.test_result", { test_id: testId, ...result });
    this.results.push(result);
    this.root.dataset.selfcheck = result.ok ? "passed" : "failed";
    if (answer.type === "call.connected") {
      try {
        await this.client.request("call.hangup", { call_id: answer.call_id });
      } catch { /* ended meanwhile */ }
    }
  }

  _check() {
    if (this._cancelled) throw new Cancelled();
  }

  // call.connected, or call.ended before it, for the test call (or a timeout).
  _answered(callId) {
    return new Promise((resolve) => {
      const offs = [];
      const done = (msg) => { for (const off of offs) off(); clearTimeout(timer); resolve(msg); };
      const timer = setTimeout(() => done({ type: "call.ended", reason: "timeout" }), ANSWER_MS);
      for (const type of ["call.connected", "call.ended"]) {
        offs.push(this.client.on(type, (m) => { if (m.call_id === callId) done(m); }));
      }
      const poll = setInterval(() => { if (this._cancelled) { clearInterval(poll); done({ type: "cancelled" }); } }, 100);
      offs.push(() => clearInterval(poll));
    });
  }

  async _measure(t0) {
    let first = null;
    const deadline = performance.now() + FIRST_FRAME_MS;
    while (performance.now() < deadline) {
      this._check();
      const s = await this._sample();
      if (s && s.decoded > 0) { first = s; break; }
      await sleep(100);
    }
    const setupMs = first ? first.t - t0 : null;
    const a = first || (await this._sample());
    await sleep(MEASURE_MS);
    this._check();
    const b = await this._sample();
    if (!a || !b) {
      return { ok: false, fps_in: null, fps_out: null, rtt_ms: null, loss_pct: null,
        setup_ms: null, reason: "the media connection did not come up" };
    }
    const dt = (b.t - a.t) / 1000;
    const decoded = b.decoded - a.decoded;
    const lost = b.lost - a.lost;
    const received = b.received - a.received;
    const reasons = [];
    if (b.decoded <= 0) reasons.push("no video from the bot");
    if (b.audio <= 0) reasons.push("no sound from the bot");
    const result = {
      ok: reasons.length === 0,
      fps_in: round(decoded / dt),
      fps_out: round((b.encoded - a.encoded) / dt),
      rtt_ms: b.rtt === null ? null : round(b.rtt),
      loss_pct: lost + received > 0 ? round((100 * Math.max(0, lost)) / (lost + received)) : null,
      setup_ms: setupMs === null ? null : Math.round(setupMs),
    };
    if (reasons.length) result.reason = reasons.join("; ");
    return result;
  }

  // Counters from getStats: frames decoded in, encoded out, audio in, loss, round trip.
  async _sample() {
    const pc = this._leg && this._leg.pc;
    if (!pc) return null;
    let report;
    try { report = await pc.getStats(); } catch { return null; }
    const s = { t: performance.now(), decoded: 0, encoded: 0, audio: 0, lost: 0, received: 0, rtt: null };
    let pair = null;
    report.forEach((r) => { if (r.type === "transport" && r.selectedCandidatePairId) pair = r.selectedCandidatePairId; });
    report.forEach((r) => {
      if (r.type === "inbound-rtp") {
        s.lost += r.packetsLost || 0;
        s.received += r.packetsReceived || 0;
        if (r.kind === "video") s.decoded += r.framesDecoded || 0;
        else s.audio += r.packetsReceived || 0;
      } else if (r.type === "outbound-rtp" && r.kind === "video") {
        s.encoded += r.framesEncoded || r.framesSent || 0;
      } else if (r.type === "candidate-pair" && (pair ? r.id === pair : r.nominated)) {
        if (typeof r.currentRoundTripTime === "number") s.rtt = r.currentRoundTripTime * 1000;
      }
    });
    return s;
  }

  _finish() {
    if (this._leg) this._leg.stop();
    this._leg = null;
    if (this._stream) for (const tr of this._stream.getTracks()) tr.stop();
    this._stream = null;
    if (this._cancelled) this.root.dataset.selfcheck = "cancelled";
    this.notice.hidden = true;
    this.callId = null;
    this.active = false;
    this._running = null;
  }
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function round(x) {
  return Math.round(x * 10) / 10;
}
