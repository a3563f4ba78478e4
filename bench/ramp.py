"""Video ramp-up: Chromium to Chromium directly, and through the relay, same camera.

For each direction (kiosk -> interpreter, interpreter -> kiosk) prints the sender's
video bitrate at 1, 2, 3, 5 and 8 s after the receiver's first decoded frame (bytes
sent over the second before), its resolution, frame rate and qualityLimitationReason.
Modes: ``fake`` (Chromium's fake camera, little motion), ``textured`` (a generated
y4m of a drifting fine texture that needs well over 1 Mbps), ``shaped`` (the fake
camera, with the interpreter's leg shaped to 500 kbps each way by ``tc`` htb on lo: the
relay's UDP port of that leg; directly, the interpreter page's port), and
``shaped-textured`` (the same with the textured picture).

Run inside a loopback-only namespace with root in it (tc):

  unshare -rn sh -c 'ip link set lo up && PYTHONPATH=. .venv/bin/python bench/ramp.py'

``--relay-src DIR`` runs the relay from another checkout (e.g. main, for the numbers
before a change). One JSON line per call with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tsunagu.redis_server import RedisServer, free_port  # noqa: E402
from tsunagu.tokens import mint_service_token  # noqa: E402

SECRET = "ramp-bench-secret-0123456789abcdef012345"
RELAY_ID = "ramp"
MARKS_S = (1, 2, 3, 5, 8)
PARTIES = ("kiosk", "interpreter")
SHAPE_KBIT = 500
CHROMIUM_ARGS = [
    "--no-sandbox", "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream=fps=30", "--allow-loopback-in-peer-connection",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-quic", "--no-first-run", "--mute-audio", "--disable-gpu",
]
PAGE_URL = "http://localhost/ramp"  # served by page.route: a secure context, no server
PAGE = """<!doctype html><meta charset=utf-8><title>ramp</title><script>
window.ramp = {pc: null, stream: null,
  async start() {
    this.stream = await navigator.mediaDevices.getUserMedia({audio: true,
      video: {width: {ideal: 640}, height: {ideal: 480}, frameRate: {ideal: 30}}});
    const video = this.stream.getVideoTracks()[0];
    video.contentHint = "motion";  // as the product's pages do (signaling/web)
    this.pc = new RTCPeerConnection({iceServers: []});
    for (const t of this.stream.getTracks()) this.pc.addTrack(t, this.stream);
  },
  async gathered() {
    if (this.pc.iceGatheringState !== "complete") await new Promise((ok) => {
      this.pc.addEventListener("icegatheringstatechange", () => {
        if (this.pc.iceGatheringState === "complete") ok(); });
    });
    return this.pc.localDescription.sdp;
  },
  async offer() {
    await this.pc.setLocalDescription(await this.pc.createOffer());
    return this.gathered();
  },
  async answer(sdp) {
    await this.pc.setRemoteDescription({type: "offer", sdp});
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    return this.gathered();
  },
  async accept(sdp) { await this.pc.setRemoteDescription({type: "answer", sdp}); },
  async tune() {
    const sender = this.pc.getSenders().find((s) => s.track && s.track.kind === "video");
    const params = sender.getParameters();
    params.degradationPreference = "maintain-framerate";
    try { await sender.setParameters(params); } catch (e) { return String(e); }
    return sender.getParameters().degradationPreference || null;
  },
  async stats() {
    const out = {t: performance.now(), state: this.pc.connectionState};
    (await this.pc.getStats()).forEach((s) => {
      if (s.kind !== "video") return;
      if (s.type === "outbound-rtp") Object.assign(out, {sent: s.bytesSent,
        resent: s.retransmittedBytesSent || 0, target: s.targetBitrate || 0,
        w: s.frameWidth || 0, h: s.frameHeight || 0, fps: s.framesPerSecond || 0,
        framesSent: s.framesSent || 0, limit: s.qualityLimitationReason,
        pli: s.pliCount || 0, nack: s.nackCount || 0, keyframes: s.keyFramesEncoded || 0});
      if (s.type === "inbound-rtp") Object.assign(out, {decoded: s.framesDecoded || 0,
        rw: s.frameWidth || 0, rh: s.frameHeight || 0});
    });
    return out;
  }};
</script>"""


# -- the camera picture ------------------------------------------------------------------


def write_textured_y4m(path: Path, frames: int = 60, width: int = 640, height: int = 480,
                       grain: int = 6) -> Path:
    """A y4m (C420, as Chromium wants) of a fine random texture drifting by a pixel a frame
    under a little fresh grain: far more detail than the fake camera (an encoder wants over
    1 Mbps for it at 640x480) yet encodable at 30 fps."""
    rng = np.random.default_rng(7)
    base = rng.integers(40, 216, (height // 2 + frames, width // 2 + frames), dtype=np.uint8)
    base = np.repeat(np.repeat(base, 2, axis=0), 2, axis=1)
    chroma = np.full((height // 2) * (width // 2) * 2, 128, dtype=np.uint8)
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420\n".encode())
        for i in range(frames):
            y = base[i:i + height, i:i + width].astype(np.int16)
            if grain:
                y += rng.integers(-grain, grain + 1, (height, width), dtype=np.int16)
            f.write(b"FRAME\n")
            f.write(np.clip(y, 0, 255).astype(np.uint8).tobytes())
            f.write(chroma.tobytes())
    return path


# -- the relay, as a process ---------------------------------------------------------------


@dataclass
class Relay:
    """``python -m relay`` from ``src`` (this checkout or another) on a Redis of its own."""

    src: Path
    workdir: Path
    port: int = field(default_factory=free_port)
    redis: RedisServer | None = None
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.redis = RedisServer(self.workdir / "redis", persist=False)
        self.redis.start()
        env = {**os.environ, "PYTHONPATH": str(self.src), "TSUNAGU_SECRET": SECRET,
               "TSUNAGU_ICE_ADDRESSES": "127.0.0.1", "TSUNAGU_ICE_SERVERS": "[]"}
        log = (self.workdir / "relay.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "relay", "--relay-id", RELAY_ID, "--host", "127.0.0.1",
             "--port", str(self.port), "--redis-url", self.redis.url],
            env=env, cwd=self.src, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError(f"relay did not start; see {self.workdir / 'relay.log'}")

    def offer(self, call_id: str, party: str, sdp: str) -> str:
        token = mint_service_token(SECRET.encode(), relay_id=RELAY_ID, call_id=call_id,
                                   party=party, method="POST")
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/v1/calls/{call_id}/legs/{party}", method="POST",
            data=json.dumps({"sdp": sdp, "language_modality": "sign"}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as resp:
            answer: str = json.loads(resp.read())["sdp"]
        return answer

    def end(self, call_id: str) -> None:
        token = mint_service_token(SECRET.encode(), relay_id=RELAY_ID, call_id=call_id,
                                   party="*", method="DELETE")
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/v1/calls/{call_id}",
                                         method="DELETE",
                                         headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=10):
            pass

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.redis is not None:
            self.redis.stop()


# -- shaping one leg ---------------------------------------------------------------------------


def candidate_port(sdp: str) -> int:
    """The port of the first 127.0.0.1 host candidate in an SDP."""
    match = re.search(r"a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 (\d+) typ host", sdp)
    if match is None:
        raise ValueError("no 127.0.0.1 candidate")
    return int(match.group(1))


@contextmanager
def shaped(port: int | None, kbit: int = SHAPE_KBIT) -> Iterator[None]:
    """Limit UDP from and to ``port`` on lo to ``kbit`` each way (htb; a 30-packet queue)."""
    if port is None:
        yield
        return
    cmds = [
        "qdisc add dev lo root handle 1: htb default 10",
        "class add dev lo parent 1: classid 1:10 htb rate 10gbit",
        f"class add dev lo parent 1: classid 1:20 htb rate {kbit}kbit ceil {kbit}kbit burst 6k",
        f"class add dev lo parent 1: classid 1:30 htb rate {kbit}kbit ceil {kbit}kbit burst 6k",
        "qdisc add dev lo parent 1:20 pfifo limit 30",
        "qdisc add dev lo parent 1:30 pfifo limit 30",
        f"filter add dev lo parent 1: protocol ip u32 match ip sport {port} 0xffff flowid 1:20",
        f"filter add dev lo parent 1: protocol ip u32 match ip dport {port} 0xffff flowid 1:30",
    ]
    try:
        for cmd in cmds:
            subprocess.run(["tc", *cmd.split()], check=True, capture_output=True, timeout=10)
        yield
        if os.environ.get("RAMP_TC_STATS"):
            shown = subprocess.run(["tc", "-s", "class", "show", "dev", "lo"],
                                   capture_output=True, text=True, timeout=10, check=False)
            print(f"port {port}:", shown.stdout, file=sys.stderr)
    finally:
        subprocess.run(["tc", "qdisc", "del", "dev", "lo", "root"], capture_output=True,
                       timeout=10, check=False)


# -- one call ------------------------------------------------------------------------------


@dataclass
class Direction:
    """What one sender sent and its receiver decoded, sampled about every 250 ms."""

    sender: str
    receiver: str
    samples: list[dict[str, Any]] = field(default_factory=list)  # sender stats + decoded
    first_frame_ms: float | None = None  # sender's clock, when the receiver first decoded

    def at(self, seconds: float) -> dict[str, Any] | None:
        """Bitrate over the second before ``seconds`` after the first decoded frame, and the
        sender's state then."""
        if self.first_frame_ms is None:
            return None
        t = self.first_frame_ms + seconds * 1000
        later = [s for s in self.samples if s["t"] >= t]
        if not later:
            return None
        end = later[0]
        start = min(self.samples, key=lambda s: abs(s["t"] - (end["t"] - 1000)))
        dt = (end["t"] - start["t"]) / 1000
        kbps = (end["sent"] - start["sent"]) * 8 / dt / 1000 if dt > 0.3 else 0.0
        return {"s": seconds, "kbps": round(kbps), "target_kbps": round(end["target"] / 1000),
                "res": f"{end['w']}x{end['h']}", "fps": round(end["fps"], 1),
                "limit": end["limit"]}

    def summary(self, marks: tuple[float, ...] = MARKS_S) -> list[dict[str, Any]]:
        return [m for s in marks if (m := self.at(s)) is not None]


def run_call(browser: Any, via: str, relay: Relay | None, seconds: float = 8.5,
             shape: bool = False, call_id: str = "ramp") -> dict[str, Direction]:
    """One two-way call between two pages, ``via`` "direct" or "relay"; the directions
    sampled until ``seconds`` after each receiver's first decoded frame."""
    contexts = [browser.new_context() for _ in PARTIES]
    try:
        pages = {}
        for party, ctx in zip(PARTIES, contexts, strict=True):
            page = ctx.new_page()
            page.route(PAGE_URL, lambda route: route.fulfill(body=PAGE, content_type="text/html"))
            page.goto(PAGE_URL)
            page.evaluate("ramp.start()")
            pages[party] = page
        kiosk, interp = pages["kiosk"], pages["interpreter"]
        port: int | None = None
        if via == "direct":
            answer = interp.evaluate("(sdp) => ramp.answer(sdp)", kiosk.evaluate("ramp.offer()"))
            port = candidate_port(answer) if shape else None
            apply = [(kiosk, answer)]
        else:
            assert relay is not None
            apply = []
            for party, page in pages.items():
                answer = relay.offer(call_id, party, page.evaluate("ramp.offer()"))
                if party == "interpreter" and shape:
                    port = candidate_port(answer)
                apply.append((page, answer))
        with shaped(port):
            for page, answer in apply:
                page.evaluate("(sdp) => ramp.accept(sdp)", answer)
            for page in pages.values():
                page.evaluate("ramp.tune()")
            dirs = {"kiosk->interpreter": Direction("kiosk", "interpreter"),
                    "interpreter->kiosk": Direction("interpreter", "kiosk")}
            _sample(pages, dirs, seconds)
        if relay is not None and via == "relay":
            relay.end(call_id)
        return dirs
    finally:
        for ctx in contexts:
            ctx.close()


def _sample(pages: dict[str, Any], dirs: dict[str, Direction], seconds: float) -> None:
    deadline = time.monotonic() + seconds + 15  # connecting and a first frame: 15 s at most
    while time.monotonic() < deadline:
        stats = {party: page.evaluate("ramp.stats()") for party, page in pages.items()}
        for d in dirs.values():
            out, inn = stats[d.sender], stats[d.receiver]
            if "sent" not in out:
                continue
            d.samples.append(out)
            if d.first_frame_ms is None and inn.get("decoded", 0) > 0:
                d.first_frame_ms = out["t"]  # both pages share the browser's clock
        if all(d.first_frame_ms is not None and d.samples[-1]["t"] - d.first_frame_ms
               >= seconds * 1000 for d in dirs.values()):
            return
        time.sleep(0.25)


# -- command line ------------------------------------------------------------------------------


def launch(playwright: Any, y4m: Path | None) -> Any:
    args = list(CHROMIUM_ARGS)
    if y4m is not None:
        args.append(f"--use-file-for-fake-video-capture={y4m}")
    return playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                      args=args)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--modes", default="fake,textured,shaped")
    p.add_argument("--via", default="direct,relay")
    p.add_argument("--relay-src", type=Path, default=ROOT)
    p.add_argument("--seconds", type=float, default=8.5)
    p.add_argument("--json", action="store_true")
    p.add_argument("--workdir", type=Path, help="keep the relay's log here (default: a "
                   "temporary directory)")
    args = p.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="ramp-") as tmp, sync_playwright() as pw:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        relay = Relay(args.relay_src.resolve(), workdir)
        relay.start()
        try:
            for mode in args.modes.split(","):
                textured = mode in ("textured", "shaped-textured")
                grain = int(os.environ.get("RAMP_GRAIN", "6"))
                y4m = write_textured_y4m(workdir / "texture.y4m", grain=grain) if textured else None
                browser = launch(pw, y4m)
                try:
                    for n, via in enumerate(args.via.split(",")):
                        dirs = run_call(browser, via, relay, args.seconds,
                                        shape=mode.startswith("shaped"),
                                        call_id=f"ramp-{mode}-{n}")
                        report(mode, via, dirs, args.json)
                finally:
                    browser.close()
        finally:
            relay.stop()


def report(mode: str, via: str, dirs: dict[str, Direction], as_json: bool) -> None:
    if os.environ.get("RAMP_TRACE"):  # every sample: time after the first frame, target
        for name, d in dirs.items():
            t0 = d.first_frame_ms or 0.0
            print(name, " ".join(f"{(s['t'] - t0) / 1000:.1f}:{s['target'] // 1000}/"
                                 f"{s['h']}/{s['fps']:.0f}/k{s['keyframes']}p{s['pli']}"
                                 f"n{s['nack']}" for s in d.samples), file=sys.stderr)
    if as_json:
        print(json.dumps({"mode": mode, "via": via,
                          **{k: d.summary() for k, d in dirs.items()}}), flush=True)
        return
    for name, d in dirs.items():
        cells = " | ".join(f"{m['s']}s {m['kbps']} kbps {m['res']} {m['fps']}fps {m['limit']}"
                           for m in d.summary())
        print(f"{mode:8} {via:6} {name:19} {cells}", flush=True)


if __name__ == "__main__":
    main()
