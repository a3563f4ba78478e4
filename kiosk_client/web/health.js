// The tablet's health report, kiosk.health (PROTOCOL.md section 14): sent on
// every (re)connect, every 5 minutes, and after every camera check.
//
// camera / microphone: ok, missing, denied, dark (the camera's picture is too
// dark), no_face (only where the browser has FaceDetector: without it no face
// is never claimed), unknown. Also the page's version, the browser, the
// screen, the battery (navigator.getBattery, where present) and the last
// call's round trip and loss (from the media leg's getStats samples).
// Nothing here is shown to the resident; the supervisor's fleet page shows it.

export const REPORT_EVERY_MS = 5 * 60 * 1000;
export const APP_VERSION = "0.1.0"; // the package's version (pyproject.toml)
const DARK_MEAN = 50; // mean luma (0-255) below this is too dark (as kiosk_client/camera_check.py)
const FRAME_WAIT_MS = 3000;

/** A getUserMedia failure as a device state of section 14. */
export function deviceState(err) {
  const name = err && err.name;
  if (name === "NotAllowedError" || name === "SecurityError" || name === "PermissionDeniedError") return "denied";
  if (name === "NotFoundError" || name === "OverconstrainedError" || name === "DevicesNotFoundError") return "missing";
  return "unknown"; // busy (NotReadableError), aborted, or something new
}

/** "Chromium 120.0.6099.224"-like: the brand and version the browser tells. */
export function browserName() {
  const data = navigator.userAgentData;
  if (data && Array.isArray(data.brands)) {
    const brand = data.brands.find((b) => !/not.?a.?brand/i.test(b.brand) && b.brand !== "Chromium")
      || data.brands.find((b) => !/not.?a.?brand/i.test(b.brand));
    if (brand) return `${brand.brand} ${brand.version}`;
  }
  const ua = navigator.userAgent || "";
  const m = ua.match(/(Firefox|Edg|OPR|Chrome|Chromium|Version)\/([\d.]+)/);
  if (!m) return ua.slice(0, 120);
  const name = m[1] === "Version" ? "Safari" : m[1] === "Edg" ? "Edge" : m[1];
  return `${name} ${m[2]}`;
}

/** Mean luma of one frame of a video track, 0-255, or null without a frame. */
async function brightness(track) {
  const video = document.createElement("video");
  video.muted = true;
  video.playsInline = true;
  video.srcObject = new MediaStream([track]);
  try {
    await video.play().catch(() => {});
    const deadline = Date.now() + FRAME_WAIT_MS;
    while (video.readyState < 2 || !video.videoWidth) {
      if (Date.now() > deadline) return null;
      await new Promise((r) => setTimeout(r, 50));
    }
    const w = 64;
    const h = Math.max(1, Math.round((w * video.videoHeight) / video.videoWidth));
    const canvas = document.createElement("canvas");
    canvas.width = w;
    canvas.height = h;
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(video, 0, 0, w, h);
    const px = ctx.getImageData(0, 0, w, h).data;
    let sum = 0;
    for (let i = 0; i < px.length; i += 4) sum += 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2];
    return { mean: sum / (px.length / 4), canvas };
  } finally {
    video.pause();
    video.srcObject = null;
  }
}

async function faceSeen(canvas) {
  if (typeof window.FaceDetector !== "function") return null; // cannot tell: claim nothing
  try {
    const faces = await new window.FaceDetector({ fastMode: true }).detect(canvas);
    return faces.length > 0;
  } catch {
    return null;
  }
}

/** Check a camera track's picture: ok, dark, no_face or unknown. */
async function pictureState(track) {
  if (!track || track.readyState !== "live") return "unknown";
  const frame = await brightness(track);
  if (!frame) return "unknown";
  if (frame.mean < DARK_MEAN) return "dark";
  return (await faceSeen(frame.canvas)) === false ? "no_face" : "ok";
}

/** One device on its own (so a refused camera does not hide a working microphone). */
async function probe(kind) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return { state: "denied" };
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ [kind]: true });
    return { state: "ok", stream };
  } catch (err) {
    return { state: deviceState(err) };
  }
}

export class HealthReporter {
  /**
   * client: the TsunaguClient; currentStream(): the page's live camera and
   * microphone stream, if it holds one (a call), so no second capture is opened.
   */
  constructor(client, { currentStream = () => null, everyMs = REPORT_EVERY_MS } = {}) {
    this.client = client;
    this.currentStream = currentStream;
    this.everyMs = everyMs;
    this.network = null; // the last call's {rtt_ms, loss_pct}
    this.last = null; // the last report sent (for tests and tools)
    this._running = null;
    this._timer = null;
  }

  start() {
    this.client.on("welcome", () => { this.checkAndReport(); });
    this._timer = setInterval(() => { this.checkAndReport(); }, this.everyMs);
  }

  /** Feed the media leg's "quality" samples: the latest figures are the last call's. */
  noteQuality(q) {
    if (!q) return;
    const rtt = typeof q.rtt_ms === "number" ? q.rtt_ms : this.network && this.network.rtt_ms;
    const loss = typeof q.loss_pct === "number" ? q.loss_pct : this.network && this.network.loss_pct;
    if (typeof rtt === "number" && typeof loss === "number") {
      this.network = { rtt_ms: Math.max(0, Math.round(rtt)), loss_pct: Math.min(100, Math.max(0, loss)) };
    }
  }

  /** Check camera and microphone (one at a time), then report. Never two at once. */
  checkAndReport() {
    if (!this._running) {
      this._running = this._check().then((devices) => this.report(devices)).finally(() => { this._running = null; });
    }
    return this._running;
  }

  async _check() {
    const held = this.currentStream();
    const liveVideo = held && held.getVideoTracks().find((t) => t.readyState === "live");
    const liveAudio = held && held.getAudioTracks().find((t) => t.readyState === "live");
    let camera;
    if (liveVideo) {
      camera = await pictureState(liveVideo);
    } else {
      const got = await probe("video");
      camera = got.state === "ok" ? await pictureState(got.stream.getVideoTracks()[0]) : got.state;
      if (got.stream) for (const t of got.stream.getTracks()) t.stop();
    }
    let microphone;
    if (liveAudio) {
      microphone = "ok";
    } else {
      const got = await probe("audio");
      microphone = got.state;
      if (got.stream) for (const t of got.stream.getTracks()) t.stop();
    }
    return { camera, microphone };
  }

  /** Send kiosk.health with the given device states (and everything else known). */
  async report({ camera, microphone }) {
    const msg = {
      camera,
      microphone,
      app: { kind: "web", version: APP_VERSION },
      browser: browserName(),
      screen: { w: Math.round(window.screen.width), h: Math.round(window.screen.height) },
    };
    if (typeof navigator.getBattery === "function") {
      try {
        const b = await navigator.getBattery();
        msg.battery = { level_pct: Math.round(b.level * 100), charging: Boolean(b.charging) };
      } catch { /* not told: left out */ }
    }
    if (this.network) msg.network = { ...this.network };
    this.last = msg;
    try {
      await this.client.request("kiosk.health", msg);
    } catch { /* offline: the next connect reports again */ }
    return msg;
  }
}
