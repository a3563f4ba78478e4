// The media leg between this page and the relay (PROTOCOL.md section 6).
//
// On call.connected: one RTCPeerConnection, both local tracks sendrecv, the
// video sender tuned for motion (sign language needs frame rate more than
// pixels), a complete non-trickle offer sent as media.offer, the relay's
// media.answer applied. On media.failed, or the connection going "failed",
// the leg is rebuilt with a fresh RTCPeerConnection; the other party does
// nothing. Never logs SDP.

import { ConnectionLost } from "./tsunagu-client.js";

const GATHER_TIMEOUT_MS = 5000;
const RETRY_MAX_MS = 8000;

/** Why getUserMedia failed, as one of: permission, nodevice, busy, other. */
export function mediaErrorKind(err) {
  const name = err && err.name;
  if (name === "NotAllowedError" || name === "SecurityError") return "permission";
  if (name === "NotFoundError" || name === "OverconstrainedError") return "nodevice";
  if (name === "NotReadableError" || name === "AbortError") return "busy";
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return "permission";
  return "other";
}

/** Camera and microphone, about 640x480 at 30 fps. Throws; see mediaErrorKind. */
export async function getLocalMedia() {
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30, min: 15 } },
  });
  for (const track of stream.getVideoTracks()) {
    if ("contentHint" in track) track.contentHint = "motion";
  }
  return stream;
}

function waitForGathering(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    };
    const check = () => { if (pc.iceGatheringState === "complete") done(); };
    const timer = setTimeout(done, GATHER_TIMEOUT_MS);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

async function tuneVideoSender(sender) {
  try {
    const params = sender.getParameters();
    params.degradationPreference = "maintain-framerate";
    if (params.encodings && params.encodings.length) {
      for (const enc of params.encodings) enc.maxFramerate = 30;
    }
    await sender.setParameters(params);
  } catch {
    // Older browsers lack degradationPreference; Chromium keeps frame rate
    // for camera video anyway.
  }
}

/**
 * One party's media leg for one call. Events: "state" (detail: the pc's
 * connectionState or "negotiating"), "quality" (detail: {fps, rtt_ms,
 * loss_pct, frames_decoded, width, height}), "remote" (detail: MediaStream).
 */
export class MediaLeg extends EventTarget {
  constructor(client, { remoteVideo }) {
    super();
    this.client = client;
    this.remoteVideo = remoteVideo;
    this.callId = null;
    this.pc = null;
    this.localStream = null;
    this.iceServers = [];
    this._gen = 0;
    this._retries = 0;
    this._retryTimer = null;
    this._statsTimer = null;
    this._prev = null;
    this._unsubs = [];
  }

  /** Start (or restart) media for a connected call. */
  start(callId, iceServers, localStream) {
    const sameCall = this.callId === callId;
    this.callId = callId;
    this.iceServers = Array.isArray(iceServers) ? iceServers : [];
    this.localStream = localStream;
    if (!this._unsubs.length) {
      this._unsubs.push(this.client.on("media.failed", (m) => {
        if (m.call_id === this.callId) this._renegotiate(0);
      }));
    }
    if (!this._statsTimer) this._statsTimer = setInterval(() => this._sampleStats(), 1000);
    // A resumed session repeats call.connected; a healthy leg is kept as it is.
    if (sameCall && this.pc && ["new", "connecting", "connected"].includes(this.pc.connectionState)
        && this.pc.signalingState === "stable" && this.pc.remoteDescription) return;
    if (sameCall && this._negotiating) return;
    this._renegotiate(0);
  }

  /** Replace the local stream (e.g. camera granted late) and renegotiate. */
  setLocalStream(stream) {
    this.localStream = stream;
    if (this.callId) this._renegotiate(0);
  }

  stop() {
    this._gen++;
    clearTimeout(this._retryTimer);
    clearInterval(this._statsTimer);
    this._statsTimer = null;
    for (const u of this._unsubs) u();
    this._unsubs = [];
    if (this.pc) this.pc.close();
    this.pc = null;
    this.callId = null;
    this._prev = null;
    this._negotiating = false;
    if (this.remoteVideo) this.remoteVideo.srcObject = null;
  }

  _renegotiate(delayMs) {
    clearTimeout(this._retryTimer);
    const gen = ++this._gen;
    this._retryTimer = setTimeout(() => {
      this._negotiate(gen).catch(() => {
        if (gen !== this._gen) return;
        this._negotiating = false;
        this._retries++;
        const wait = Math.min(RETRY_MAX_MS, 500 * 2 ** this._retries) * (0.5 + Math.random() / 2);
        if (this.client.ready) this._renegotiate(wait);
        else {
          // Wait for the socket: the server repeats call.connected on resume,
          // and the page calls start() again.
          const off = this.client.on("welcome", () => { off(); if (gen === this._gen) this._renegotiate(0); });
          this._unsubs.push(off);
        }
      });
    }, delayMs);
  }

  async _negotiate(gen) {
    this._negotiating = true;
    this._emit("state", "negotiating");
    if (this.pc) this.pc.close();
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    this.pc = pc;
    this._prev = null;
    const remote = new MediaStream();
    pc.ontrack = (ev) => {
      remote.addTrack(ev.track);
      if (this.remoteVideo && this.remoteVideo.srcObject !== remote) {
        this.remoteVideo.srcObject = remote;
        this.remoteVideo.play().catch(() => {});
      }
      this._emit("remote", remote);
    };
    pc.onconnectionstatechange = () => {
      if (gen !== this._gen) return;
      this._emit("state", pc.connectionState);
      if (pc.connectionState === "connected") this._retries = 0;
      if (pc.connectionState === "failed") this._renegotiate(500);
    };
    const stream = this.localStream;
    const kinds = new Set();
    const videoSenders = [];
    if (stream) {
      for (const track of stream.getTracks()) {
        if (track.kind === "video" && "contentHint" in track) track.contentHint = "motion";
        const sender = pc.addTrack(track, stream);
        kinds.add(track.kind);
        if (track.kind === "video") videoSenders.push(sender);
      }
    }
    // Without a camera or microphone we still see and hear the other party.
    for (const kind of ["audio", "video"]) {
      if (!kinds.has(kind)) pc.addTransceiver(kind, { direction: "recvonly" });
    }
    for (const sender of videoSenders) await tuneVideoSender(sender);
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    await waitForGathering(pc);
    if (gen !== this._gen) return;
    const reply = await this.client.request(
      "media.offer", { call_id: this.callId, sdp: pc.localDescription.sdp }, { timeoutMs: 20000 });
    if (gen !== this._gen) return;
    if (reply.type !== "media.answer" || typeof reply.sdp !== "string") throw new ConnectionLost();
    await pc.setRemoteDescription({ type: "answer", sdp: reply.sdp });
    for (const sender of videoSenders) await tuneVideoSender(sender);
    this._negotiating = false;
  }

  async _sampleStats() {
    const pc = this.pc;
    if (!pc || pc.connectionState === "closed") return;
    let report;
    try { report = await pc.getStats(); } catch { return; }
    const now = { t: performance.now(), frames: 0, lost: 0, recv: 0, fps: null, rtt: null, w: 0, h: 0 };
    let selectedPair = null;
    report.forEach((s) => {
      if (s.type === "transport" && s.selectedCandidatePairId) selectedPair = s.selectedCandidatePairId;
    });
    report.forEach((s) => {
      if (s.type === "inbound-rtp") {
        now.lost += s.packetsLost || 0;
        now.recv += s.packetsReceived || 0;
        if (s.kind === "video") {
          now.frames += s.framesDecoded || 0;
          if (typeof s.framesPerSecond === "number") now.fps = s.framesPerSecond;
          now.w = s.frameWidth || 0;
          now.h = s.frameHeight || 0;
        }
      } else if (s.type === "candidate-pair") {
        const chosen = selectedPair ? s.id === selectedPair : s.nominated && s.state === "succeeded";
        if (chosen && typeof s.currentRoundTripTime === "number") now.rtt = s.currentRoundTripTime * 1000;
      } else if (s.type === "remote-inbound-rtp" && now.rtt === null && typeof s.roundTripTime === "number") {
        now.rtt = s.roundTripTime * 1000;
      }
    });
    const prev = this._prev;
    this._prev = now;
    let fps = now.fps;
    let loss = null;
    if (prev) {
      const dt = (now.t - prev.t) / 1000;
      if (fps === null && dt > 0) fps = (now.frames - prev.frames) / dt;
      const dl = now.lost - prev.lost;
      const dr = now.recv - prev.recv;
      if (dl + dr > 0) loss = (100 * Math.max(0, dl)) / (dl + dr);
      else loss = 0;
    }
    this._emit("quality", {
      fps: fps === null ? null : Math.round(fps),
      rtt_ms: now.rtt === null ? null : Math.round(now.rtt),
      loss_pct: loss === null ? null : Math.round(loss * 10) / 10,
      frames_decoded: now.frames,
      width: now.w,
      height: now.h,
    });
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
