// The tsunagu protocol client, shared by /kiosk, /console and /supervisor.
//
// One WebSocket to ws(s)://<same host>/ws. It authenticates with `hello`
// (token, plus the last `session` so the server re-attaches queued calls and
// connected calls after a drop), reconnects by itself with exponential backoff
// and jitter, matches replies to requests by `rid`, and dispatches every
// server message as an event named after its `type`.
//
// Events (addEventListener / on): every message type ("welcome", "call.queued",
// "stats", ...), plus "status" (detail: "connecting" | "open" | "reconnecting"
// | "offline"), "unauthorized" (the token was refused; no more reconnects),
// "replaced" (the same kiosk or user signed in on another device, close code
// 4409; with `stopWhenReplaced` no more reconnects until resume()) and
// "message" (every message).
//
// Never logs tokens, SDP or chat text.

const CLOSE_UNAUTHORIZED = 4401;
const CLOSE_REPLACED = 4409;
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 15000;

export class RequestError extends Error {
  constructor(reply) {
    super(reply.message || reply.code || "error");
    this.code = reply.code || "internal";
    this.reply = reply;
  }
}

export class ConnectionLost extends Error {
  constructor() {
    super("connection lost");
    this.code = "disconnected";
  }
}

/** The WebSocket URL of the server that served this page. */
export function defaultUrl(loc = window.location) {
  const scheme = loc.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${loc.host}/ws`;
}

export class TsunaguClient extends EventTarget {
  /**
   * @param {object} opts
   * @param {() => string|null} opts.token  returns the current token (read on every connect)
   * @param {string} opts.sessionKey        sessionStorage key for the resume session
   * @param {string} [opts.url]
   */
  constructor({ token, sessionKey, url = defaultUrl(), stopWhenReplaced = false }) {
    super();
    this._stopWhenReplaced = stopWhenReplaced;
    this._token = token;
    this._sessionKey = sessionKey;
    this._url = url;
    this._ws = null;
    this._pending = new Map(); // rid -> {resolve, reject, timer}
    this._nextRid = 1;
    this._attempt = 0;
    this._retryTimer = null;
    this._watchdog = null;
    this._stopped = true;
    this._welcomed = false;
    this._lastRx = 0;
    this.status = "idle";
    this.welcome = null;
    this.heartbeatS = 10;
    this._lastTick = 0;
    this._onOnline = () => this._retryNow();
    // The browser says the network is gone: the socket is dead or about to
    // be, so drop it now and come back on "online" (the server keeps our
    // place for its grace period).
    this._onOffline = () => {
      this._drop();
      this._setStatus("offline");
    };
  }

  /** Open the connection and keep it open until stop(). */
  start() {
    if (!this._stopped) return;
    this._stopped = false;
    window.addEventListener("online", this._onOnline);
    window.addEventListener("offline", this._onOffline);
    this._lastTick = Date.now();
    this._watchdog = setInterval(() => this._checkSleep(), 1000);
    this._open();
  }

  /**
   * Connect again after the client stopped because another device took over
   * (close code 4409): this device signs in and becomes the current one.
   */
  resume() {
    if (!this._stopped || this._ws) return;
    this._stopped = false;
    this._attempt = 0;
    this._open();
  }

  /** Close for good (sign-out). Forgets the resume session. */
  stop() {
    this._stopped = true;
    window.removeEventListener("online", this._onOnline);
    window.removeEventListener("offline", this._onOffline);
    clearTimeout(this._retryTimer);
    clearInterval(this._watchdog);
    this.forgetSession();
    if (this._ws) {
      this._ws.onclose = null;
      this._ws.close(1000);
      this._ws = null;
    }
    this._failPending();
    this._setStatus("idle");
  }

  /**
   * Drop the current socket and connect again, resuming the session (what
   * happens by itself when the network drops; kiosk tools and tests use it).
   */
  reconnect() {
    if (this._stopped) return;
    this._drop();
  }

  /** The token this client signs in with (for same-origin HTTP calls such as the CSV report). */
  currentToken() {
    return this._token();
  }

  forgetSession() {
    try { sessionStorage.removeItem(this._sessionKey); } catch { /* storage disabled */ }
  }

  /** True once `welcome` arrived on the current socket. */
  get ready() {
    return this._welcomed && this._ws && this._ws.readyState === WebSocket.OPEN;
  }

  on(type, handler) {
    const listener = (ev) => handler(ev.detail);
    this.addEventListener(type, listener);
    return () => this.removeEventListener(type, listener);
  }

  /** Send a message without waiting for a reply. Returns false when not connected. */
  send(type, fields = {}) {
    if (!this.ready) return false;
    this._ws.send(JSON.stringify({ ...fields, type }));
    return true;
  }

  /**
   * Send a request and resolve with the server's direct reply (the message
   * that echoes its rid). Rejects with RequestError on `error`, with
   * ConnectionLost if the socket drops or no reply comes in time.
   */
  request(type, fields = {}, { timeoutMs } = {}) {
    if (!this.ready) return Promise.reject(new ConnectionLost());
    const rid = `r${Date.now().toString(36)}${(this._nextRid++).toString(36)}`;
    const limit = timeoutMs ?? Math.max(5000, 2 * this.heartbeatS * 1000);
    const sentAt = Date.now();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(rid);
        reject(new ConnectionLost());
        // Nothing at all heard since the request: the socket is probably
        // dead even if the browser has not noticed yet. Start over.
        if (this._lastRx < sentAt) this._drop();
      }, limit);
      this._pending.set(rid, { resolve, reject, timer });
      this._ws.send(JSON.stringify({ ...fields, type, rid }));
    });
  }

  // --- internals ---------------------------------------------------------

  _setStatus(status) {
    if (this.status === status) return;
    this.status = status;
    this.dispatchEvent(new CustomEvent("status", { detail: status }));
  }

  _open() {
    if (this._stopped) return;
    const token = this._token();
    if (!token) {
      this.dispatchEvent(new CustomEvent("unauthorized", { detail: { code: "no_token" } }));
      return;
    }
    this._setStatus(this._attempt === 0 ? "connecting" : "reconnecting");
    let ws;
    try {
      ws = new WebSocket(this._url);
    } catch {
      this._scheduleRetry();
      return;
    }
    this._ws = ws;
    this._welcomed = false;
    ws.onopen = () => {
      const hello = { type: "hello", token };
      let session = null;
      try { session = sessionStorage.getItem(this._sessionKey); } catch { /* disabled */ }
      if (session) hello.resume = session;
      ws.send(JSON.stringify(hello));
    };
    ws.onmessage = (ev) => this._receive(ev.data);
    ws.onerror = () => { /* onclose follows */ };
    ws.onclose = (ev) => this._closed(ws, ev.code);
  }

  _receive(raw) {
    let msg;
    try { msg = JSON.parse(raw); } catch { return; }
    if (!msg || typeof msg.type !== "string") return;
    this._lastRx = Date.now();
    if (msg.type === "welcome") {
      this._welcomed = true;
      this._attempt = 0;
      this.welcome = msg;
      if (typeof msg.heartbeat_s === "number" && msg.heartbeat_s > 0) this.heartbeatS = msg.heartbeat_s;
      try { sessionStorage.setItem(this._sessionKey, msg.session); } catch { /* disabled */ }
      this._setStatus("open");
    } else if (msg.type === "error" && msg.code === "unauthorized" && !this._welcomed) {
      this._stopped = true;
      this.forgetSession();
      this.dispatchEvent(new CustomEvent("unauthorized", { detail: msg }));
    }
    if (msg.rid && this._pending.has(msg.rid)) {
      const p = this._pending.get(msg.rid);
      this._pending.delete(msg.rid);
      clearTimeout(p.timer);
      if (msg.type === "error") p.reject(new RequestError(msg));
      else p.resolve(msg);
    }
    this.dispatchEvent(new CustomEvent("message", { detail: msg }));
    this.dispatchEvent(new CustomEvent(msg.type, { detail: msg }));
  }

  _closed(ws, code) {
    if (ws !== this._ws) return;
    this._ws = null;
    this._welcomed = false;
    this._failPending();
    if (code === CLOSE_UNAUTHORIZED) {
      if (!this._stopped) {
        this._stopped = true;
        this.forgetSession();
        this.dispatchEvent(new CustomEvent("unauthorized", { detail: { code: "unauthorized" } }));
      }
      return;
    }
    if (code === CLOSE_REPLACED && this._stopWhenReplaced && !this._stopped) {
      // Another device now holds this token. Reconnecting would push it out
      // in turn, and the two would take turns for ever: stop until asked.
      this._stopped = true;
      clearTimeout(this._retryTimer);
      this._setStatus("replaced");
      this.dispatchEvent(new CustomEvent("replaced", { detail: { code } }));
      return;
    }
    if (this._stopped) return;
    this._setStatus(navigator.onLine === false ? "offline" : "reconnecting");
    this._scheduleRetry();
  }

  // A tablet that slept, or a tab the browser froze, for longer than two
  // heartbeats has been dropped by the server (PROTOCOL.md section 1) even if
  // the socket still looks open here: start over and resume at once.
  _checkSleep() {
    const now = Date.now();
    const gap = now - this._lastTick;
    this._lastTick = now;
    if (gap > 2 * this.heartbeatS * 1000 && this._ws) {
      this._attempt = 0;
      this._drop();
    }
  }

  _drop() {
    if (this._ws) {
      const ws = this._ws;
      try { ws.close(4000); } catch { /* already closing */ }
      this._closed(ws, 4000);
    }
  }

  _failPending() {
    for (const p of this._pending.values()) {
      clearTimeout(p.timer);
      p.reject(new ConnectionLost());
    }
    this._pending.clear();
  }

  _scheduleRetry() {
    clearTimeout(this._retryTimer);
    // Full jitter: a ward's worth of tablets must not reconnect in step
    // after a signaling node restarts.
    const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this._attempt);
    const delay = cap / 2 + Math.random() * (cap / 2);
    this._attempt = Math.min(this._attempt + 1, 10);
    this._retryTimer = setTimeout(() => this._open(), delay);
  }

  _retryNow() {
    if (this._stopped || this._ws) return;
    clearTimeout(this._retryTimer);
    this._attempt = 0;
    this._open();
  }
}

/** Staff sign-in: POST /api/login. Resolves with {token, role, expires_at_ms}. */
export async function login(username, password) {
  const res = await fetch("/api/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, password }),
    credentials: "same-origin",
  });
  if (res.status === 401 || res.status === 403) {
    const err = new Error("unauthorized");
    err.code = "unauthorized";
    throw err;
  }
  if (!res.ok) {
    const err = new Error(`HTTP ${res.status}`);
    err.code = "unavailable";
    throw err;
  }
  return res.json();
}
