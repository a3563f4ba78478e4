"""Relay benchmark: prints ONE JSON line.

For N concurrent audio+video calls (640x480 VP8 at 30 fps and Opus, ~1.2 Mbps each
way, pre-encoded so the endpoints only packetize), through the forwarding relay
(``python -m relay``) and through a stock aiortc MediaRelay relay (decode and
re-encode, the baseline): relay process CPU per call (from /proc), delivered fps
per 1-s window at the receiving endpoints (complete frames: marker packet with no
sequence gap), and the latency the relay adds per video packet (arrival minus send
time of the same RTP packet, through the relay minus a direct hop).

Run inside a loopback-only namespace:
  unshare -n sh -c 'ip link set lo up && .venv/bin/python bench/relay_bench.py'
Endpoints of one side run in one process each (kiosk side, interpreter side). With two or
more cores the relay runs on the first and the endpoints on the second (``--no-pin``: let
the kernel place them), so what the relay adds is not the endpoints' scheduling.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiohttp import ClientSession, web
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.codecs import get_encoder
from aiortc.contrib.media import MediaRelay
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.sdp import SessionDescription

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from relay.leg import IdleTrack  # noqa: E402
from tsunagu import rtc_internals  # noqa: E402
from tsunagu.redis_server import RedisServer, free_port  # noqa: E402
from tsunagu.tokens import mint_service_token  # noqa: E402

SECRET = "bench-secret-0123456789abcdef0123456789"
PY = sys.executable
HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
GOP = 60


# -- pre-encoded media -----------------------------------------------------------------

def encode_media(path: Path, kbps: int = 1150, transcode: bool = False) -> None:
    """Encode one 2-s VP8 GOP (640x480@30) and 1 s of Opus once; endpoints replay them.
    With ``transcode``, the same pictures as H.264 and the same sound as PCMU too."""
    rng = np.random.default_rng(1)
    vp8 = av.CodecContext.create("libvpx", "w")
    vp8.width, vp8.height, vp8.pix_fmt = 640, 480, "yuv420p"
    vp8.time_base, vp8.framerate = fractions.Fraction(1, 30), fractions.Fraction(30)
    vp8.bit_rate, vp8.gop_size = kbps * 1000, GOP
    vp8.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    coarse = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
    base = np.kron(coarse, np.ones((8, 8, 1), dtype=np.uint8))  # textured, not white noise
    video: list[bytes] = []
    for i in range(GOP):
        img = np.roll(base, i * 3, axis=1)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        video += [bytes(p) for p in vp8.encode(frame)]
    opus = av.CodecContext.create("libopus", "w")
    opus.sample_rate, opus.layout, opus.format, opus.bit_rate = 48000, "stereo", "s16", 32000
    audio: list[bytes] = []
    for i in range(50):
        samples = (rng.standard_normal((1, 960 * 2)) * 3000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="stereo")
        frame.sample_rate, frame.pts = 48000, i * 960
        audio += [bytes(p) for p in opus.encode(frame)]
    media = {"video": video[:GOP], "audio": audio}
    if transcode:
        media |= encode_h264_pcmu(base, kbps)
    path.write_text(json.dumps({k: [x.hex() for x in v] for k, v in media.items()}))


def encode_h264_pcmu(base: np.ndarray[Any, Any], kbps: int) -> dict[str, list[bytes]]:
    """The --transcode side's media: one H.264 GOP (constrained baseline) and 1 s of PCMU."""
    h264 = av.CodecContext.create("libx264", "w")
    h264.width, h264.height, h264.pix_fmt = 640, 480, "yuv420p"
    h264.time_base, h264.framerate = fractions.Fraction(1, 30), fractions.Fraction(30)
    h264.bit_rate, h264.gop_size, h264.profile = kbps * 1000, GOP, "Baseline"
    h264.options = {"preset": "veryfast", "tune": "zerolatency", "level": "31"}
    video: list[bytes] = []
    for i in range(GOP):
        frame = av.VideoFrame.from_ndarray(np.roll(base, i * 3, axis=1), format="rgb24")
        frame = frame.reformat(format="yuv420p")
        frame.pts = i
        video += [bytes(p) for p in h264.encode(frame)]
    pcmu = av.CodecContext.create("pcm_mulaw", "w")
    pcmu.sample_rate, pcmu.layout, pcmu.format = 8000, "mono", "s16"
    rng = np.random.default_rng(2)
    audio: list[bytes] = []
    for i in range(50):
        samples = (rng.standard_normal((1, 160)) * 3000).astype(np.int16)
        sound = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        sound.sample_rate, sound.pts = 8000, i * 160
        audio += [bytes(p) for p in pcmu.encode(sound)]
    return {"h264": video[:GOP], "pcmu": audio}


def packetize(media: dict[str, list[bytes]]) -> dict[str, list[list[bytes]]]:
    """RTP payloads of every pre-encoded frame, packetized once by aiortc's own packers."""
    out: dict[str, list[list[bytes]]] = {}
    for kind, mime, clock, step in (("video", "video/VP8", 90000, 3000),
                                    ("audio", "audio/opus", 48000, 960),
                                    ("h264", "video/H264", 90000, 3000),
                                    ("pcmu", "audio/PCMU", 8000, 160)):
        if kind not in media:
            continue
        encoder = get_encoder(RTCRtpCodecParameters(mimeType=mime, clockRate=clock,
                                                    channels=2 if kind == "audio" else None))
        frames = []
        for i, data in enumerate(media[kind]):
            packet = av.Packet(data)
            packet.pts, packet.time_base = i * step, fractions.Fraction(1, clock)
            frames.append(encoder.pack(packet)[0])
        out[kind] = frames
    return out


STEP = {"video": 3000, "audio": 960, "h264": 3000, "pcmu": 160}
RATE = {"video": 30, "audio": 50}
CODEC = {"video": "video/vp8", "audio": "audio/opus"}
# --transcode: the interpreter side offers and sends only these (media key per kind)
H264_PCMU = {"video": ("h264", "video/h264"), "audio": ("pcmu", "audio/pcmu")}


class Endpoint:
    """Sends pre-packetized a+v straight to SRTP (cheap); timestamps video packets."""

    def __init__(self, frames: dict[str, list[list[bytes]]], h264_pcmu: bool = False,
                 only: bool = False) -> None:
        self.pc = RTCPeerConnection(rtc_internals.rtc_configuration([]))
        self.pc.addTrack(IdleTrack("audio"))
        self.pc.addTrack(IdleTrack("video"))
        self.media = {"video": "video", "audio": "audio"}
        self.codec = dict(CODEC)
        if h264_pcmu:
            self.media = {kind: key for kind, (key, _mime) in H264_PCMU.items()}
            self.codec = {kind: mime for kind, (_key, mime) in H264_PCMU.items()}
        if only:  # offer only what this endpoint sends (--transcode: nothing in common)
            for t in self.pc.getTransceivers():
                t.setCodecPreferences([c for c in RTCRtpSender.getCapabilities(t.kind).codecs
                                       if c.mimeType.lower() in (self.codec[t.kind],
                                                                 "video/rtx")])
        self.frames = frames
        # Where in the keyframe cycle this endpoint starts: calls placed at different times
        # do not send their keyframes (bursts of packets) in the same frame interval.
        self.phase = 0
        self.streams: dict[str, list[Any]] = {}  # kind -> [dtls, ssrc, pt, seq, ts0]
        self.video_pts: set[int] = set()
        self.sent: dict[int, float] = {}
        self.recv: list[tuple[int, int, int, float]] = []  # seq, ts, marker, time
        self.window = (0.0, 0.0)
        self.refused = False  # the relay answered 503 (admission control)

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def accept(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))
        self.tap(sdp)

    def tap(self, answer_sdp: str) -> None:
        pts: dict[str, int] = {}
        for m in SessionDescription.parse(answer_sdp).media:
            if m.kind == "video":
                self.video_pts |= {c.payloadType for c in m.rtp.codecs}
            for c in m.rtp.codecs:
                if c.mimeType.lower() == self.codec.get(m.kind):
                    pts.setdefault(m.kind, c.payloadType)
        for t in self.pc.getTransceivers():
            if t.kind in pts:
                self.streams[t.kind] = [t.sender.transport, rtc_internals.sender_ssrc(t.sender),
                                        pts[t.kind], 1000, 5000]
        for dtls in rtc_internals.dtls_transports(self.pc):
            rtc_internals.tap_transport(dtls, self._on_rtp, self._on_rtcp)

    def send_frame(self, kind: str, k: int) -> None:
        stream = self.streams.get(kind)
        if stream is None:
            return
        dtls, ssrc, pt, seq, ts0 = stream
        media = self.frames[self.media[kind]]
        payloads = media[(k + self.phase) % len(media)]
        ts = (ts0 + k * STEP[self.media[kind]]) & 0xFFFFFFFF
        record = kind == "video" and self.window[0] <= time.time() <= self.window[1]
        last = len(payloads) - 1
        for i, payload in enumerate(payloads):
            packet = struct.pack("!BBHII", 0x80, ((i == last) << 7) | pt, seq, ts, ssrc)
            if record:
                self.sent[(seq << 32) | ts] = time.time()
            rtc_internals.send_rtp_now(dtls, packet + payload)
            seq = (seq + 1) & 0xFFFF
        stream[3] = seq

    async def _on_rtp(self, data: bytes, arrival_time_ms: int) -> None:
        now = time.time()
        if self.window[0] <= now <= self.window[1] and (data[1] & 0x7F) in self.video_pts:
            _, b1, seq, ts = struct.unpack_from("!BBHI", data)
            self.recv.append((seq, ts, b1 >> 7, now))

    async def _on_rtcp(self, data: bytes) -> None:
        return None


async def pace(ends: list[Endpoint], kind: str, until: float) -> None:
    """Send every endpoint's frames on time, the endpoints spread over each frame interval."""
    n, period = len(ends), 1.0 / RATE[kind]
    t0, i = time.monotonic(), 0
    stop = t0 + (until - time.time())
    while time.monotonic() < stop:
        delay = t0 + i * period / n - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        ends[i % n].send_frame(kind, i // n)
        i += 1


async def worker(args: argparse.Namespace,
                 media: dict[str, list[list[bytes]]]) -> list[dict[str, Any]]:
    """One side's endpoints: what each sent and received in the measurement window."""
    rtc_internals.restrict_ice_addresses(["127.0.0.1"])
    if args.side == "answerer":
        ends = await answer_directly(args, media)
    else:
        h264_pcmu = args.transcode and args.side == "interpreter"
        ends = [Endpoint(media, h264_pcmu, only=args.transcode) for _ in range(args.calls)]
        if not args.transcode:  # (a transcoder must start on a keyframe: keep them aligned)
            for j, end in enumerate(ends):
                end.phase = j * GOP // len(ends)
        async with ClientSession() as http:
            for i, end in enumerate(ends):
                url = f"{args.relay}/v1/calls/b{i}/legs/{args.side}"
                token = mint_service_token(SECRET.encode(), relay_id=BENCH_RELAY_ID,
                                           call_id=f"b{i}", party=args.side, method="POST")
                async with http.post(url, json={"sdp": await end.offer()},
                                     headers={"Authorization": f"Bearer {token}"}) as resp:
                    body = await resp.json()
                if resp.status == 200:
                    await end.accept(body["sdp"])
                else:
                    end.refused = True
    for end in ends:
        end.window = (args.start, args.start + args.duration)
    until = args.start + args.duration + 0.5
    await asyncio.gather(pace(ends, "video", until), pace(ends, "audio", until))
    for end in ends:
        await end.pc.close()
    return [{"sent": e.sent, "recv": e.recv, "refused": e.refused} for e in ends]


async def answer_directly(args: argparse.Namespace,
                          media: dict[str, list[list[bytes]]]) -> list[Endpoint]:
    """The direct hop: answer the kiosk side's offers with our own endpoints (no relay)."""
    ends = [Endpoint(media) for _ in range(args.calls)]
    for j, end in enumerate(ends):
        end.phase = j * GOP // len(ends)  # as the relayed interpreter side

    async def post_leg(request: web.Request) -> web.Response:
        end = ends[int(request.match_info["call_id"][1:])]
        offer = RTCSessionDescription((await request.json())["sdp"], "offer")
        await end.pc.setRemoteDescription(offer)
        await end.pc.setLocalDescription(await end.pc.createAnswer())
        end.tap(end.pc.localDescription.sdp)
        return web.json_response({"sdp": end.pc.localDescription.sdp})

    app = web.Application()
    app.router.add_post("/v1/calls/{call_id}/legs/{party}", post_leg)
    app.router.add_get("/healthz", lambda r: web.json_response({"ok": True}))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", int(args.relay.rsplit(":", 1)[1])).start()
    return ends


# -- the stock aiortc relay (baseline) ------------------------------------------------------

class ProxyTrack(MediaStreamTrack):
    """Sends whatever the other leg's track yields, once that leg exists."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.source: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()

    async def recv(self) -> Any:
        source = await self.source
        return await source.recv()


async def stock_relay(port: int) -> None:
    """aiortc's MediaRelay between legs: the receiver decodes, the sender re-encodes."""
    rtc_internals.restrict_ice_addresses(["127.0.0.1"])
    media_relay = MediaRelay()
    proxies: dict[tuple[str, str, str], ProxyTrack] = {}

    async def post_leg(request: web.Request) -> web.Response:
        call_id, party = request.match_info["call_id"], request.match_info["party"]
        other = "interpreter" if party == "kiosk" else "kiosk"
        pc = RTCPeerConnection(rtc_internals.rtc_configuration([]))

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            proxy = proxies.setdefault((call_id, other, track.kind), ProxyTrack(track.kind))
            if not proxy.source.done():
                proxy.source.set_result(media_relay.subscribe(track))

        await pc.setRemoteDescription(RTCSessionDescription((await request.json())["sdp"],
                                                            "offer"))
        for t in pc.getTransceivers():
            proxy = proxies.setdefault((call_id, party, t.kind), ProxyTrack(t.kind))
            t.direction = "sendrecv"
            t.sender.replaceTrack(proxy)
        await pc.setLocalDescription(await pc.createAnswer())
        return web.json_response({"sdp": pc.localDescription.sdp})

    app = web.Application()
    app.router.add_post("/v1/calls/{call_id}/legs/{party}", post_leg)
    app.router.add_get("/healthz", lambda r: web.json_response({"ok": True}))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


# -- orchestration ----------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_healthy(url: str) -> None:
    for _ in range(100):
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("relay did not start")


BENCH_RELAY_ID = "r_bench"  # relay tokens are bound to the relay (PROTOCOL.md section 13)
PIN: dict[str, set[int]] = {}  # "relay" / "endpoints" -> CPUs (set in main unless --no-pin)


def pinned(role: str) -> Any:
    """A preexec_fn putting the child on its role's CPUs before it starts (threads too)."""
    cpus = PIN.get(role)
    return (lambda: os.sched_setaffinity(0, cpus)) if cpus else None


def run_workers(sides: list[str], calls: int, relay: str, media: Path, duration: float,
                settle: float, relay_pid: int | None, tmp: Path,
                transcode: bool = False) -> dict[str, Any]:
    start = time.time() + settle
    outs = [tmp / f"{side}-{calls}.json" for side in sides]
    procs = [subprocess.Popen([PY, str(HERE), "--worker", side, "--calls", str(calls),
                               "--relay", relay, "--media", str(media), "--start", str(start),
                               "--duration", str(duration), "--out", str(out)]
                              + (["--transcode"] if transcode else []),
                              preexec_fn=pinned("endpoints"))
             for side, out in zip(sides, outs, strict=True)]
    time.sleep(max(0.0, start - time.time()))
    pids = [relay_pid or 0] + [p.pid for p in procs]
    cpu0 = [cpu_seconds(pid) if pid else 0.0 for pid in pids]
    time.sleep(duration)
    cpu1 = [cpu_seconds(pid) if pid else 0.0 for pid in pids]
    for proc in procs:
        proc.wait(timeout=settle + duration + 60)
    ends = [e for out in outs for e in json.loads(out.read_text())]
    used = [(b - a) / duration for a, b in zip(cpu0, cpu1, strict=True)]
    return {"ends": ends, "relay_cpu": used[0], "endpoint_cpu": used[1:], "start": start}


def fps_windows(recv: list[list[float]], start: float, duration: float) -> list[int]:
    """Complete frames per 1-s window: marker packets with no sequence gap before them."""
    counts = [0] * int(duration)
    last_seq = None
    gap = False
    for seq, _ts, marker, t in sorted(recv, key=lambda r: r[3]):
        if last_seq is not None and seq != (int(last_seq) + 1) & 0xFFFF:
            gap = True
        last_seq = seq
        if marker:
            i = int(t - start)
            if not gap and 0 <= i < len(counts):
                counts[i] += 1
            gap = False
    return counts[1:]  # the first window may start mid-connection


def latencies(ends: list[dict[str, Any]], pairs: list[tuple[int, int]]) -> list[float]:
    out = []
    for a, b in pairs:
        for src, dst in ((a, b), (b, a)):
            sent = ends[src]["sent"]
            for seq, ts, _m, t in ends[dst]["recv"]:
                t0 = sent.get(str((int(seq) << 32) | int(ts)))
                if t0 is not None:
                    out.append((t - t0) * 1000)
    return out


def pct(values: list[float], q: float) -> float | None:
    return round(statistics.quantiles(values, n=100)[int(q) - 1], 2) if len(values) > 10 else None


def summarize(res: dict[str, Any], calls: int, duration: float) -> dict[str, Any]:
    ends = res["ends"]
    admitted = [i for i in range(calls)
                if not ends[i].get("refused") and not ends[i + calls].get("refused")]
    windows = [w for i in admitted for e in (ends[i], ends[i + calls])
               for w in fps_windows(e["recv"], res["start"], duration)]
    lat = latencies(ends, [(i, i + calls) for i in admitted])
    return {"calls": calls, "admitted": len(admitted), "relay_cpu": round(res["relay_cpu"], 3),
            "cpu_per_call": round(res["relay_cpu"] / max(1, len(admitted)), 4),
            "endpoint_procs_cpu": [round(c, 3) for c in res["endpoint_cpu"]],
            "fps_median": statistics.median(windows) if windows else 0,
            "fps_worst_1s": min(windows) if windows else 0,
            "latency_p50_ms": pct(lat, 50), "latency_p95_ms": pct(lat, 95),
            "video_packets_matched": len(lat)}


def scenario(kind: str, calls: int, redis_url: str, media: Path, tmp: Path,
             duration: float) -> dict[str, Any]:
    """One run; "overload" uses the relay's default capacity (admission control on)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    if kind == "direct":
        return run_direct(calls, url, media, tmp, duration)
    forward = [PY, "-m", "relay", "--port", str(port), "--redis-url", redis_url,
               "--relay-id", BENCH_RELAY_ID]
    cmd = (forward + ["--capacity", "1000"] if kind in ("forward", "transcode")
           else forward if kind == "overload"
           else [PY, str(HERE), "--stock-relay", str(port)])
    relay = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.DEVNULL,
                             preexec_fn=pinned("relay"))
    try:
        wait_healthy(url)
        settle = 3.0 + 0.25 * calls
        res = run_workers(["kiosk", "interpreter"], calls, url, media, duration, settle,
                          relay.pid, tmp, transcode=kind == "transcode")
        return summarize(res, calls, duration)
    finally:
        relay.terminate()
        relay.wait(timeout=10)


def run_direct(calls: int, url: str, media: Path, tmp: Path,
               duration: float) -> dict[str, Any]:
    """Kiosk-side endpoints connected straight to interpreter-side endpoints."""
    start = time.time() + 3.0 + 0.25 * calls
    out = tmp / f"answerer-{calls}.json"
    answerer = subprocess.Popen([PY, str(HERE), "--worker", "answerer", "--calls", str(calls),
                                 "--relay", url, "--media", str(media), "--start", str(start),
                                 "--duration", str(duration), "--out", str(out)],
                                preexec_fn=pinned("endpoints"))
    wait_healthy(url)
    res = run_workers(["kiosk"], calls, url, media, duration, start - time.time(), None, tmp)
    answerer.wait(timeout=60)
    res["ends"] += json.loads(out.read_text())
    return summarize(res, calls, duration)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker"), parser.add_argument("--calls", type=int, default=1)
    parser.add_argument("--relay"), parser.add_argument("--media"), parser.add_argument("--out")
    parser.add_argument("--start", type=float), parser.add_argument("--side")
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--stock-relay", type=int)
    parser.add_argument("--ns", default="1,4,8,16,24")
    parser.add_argument("--stock-ns", default="1,2,4")
    parser.add_argument("--overload", type=int, default=30)
    parser.add_argument("--no-e2e", action="store_true",
                        help="skip the kiosk client <-> bot capture-to-decoded measurement")
    parser.add_argument("--no-pin", action="store_true",
                        help="do not put the relay and the endpoints on separate cores")
    parser.add_argument("--transcode", action="store_true",
                        help="instead: calls whose legs share no codec (VP8+Opus against "
                             "H.264+PCMU), which the relay decodes and re-encodes")
    args = parser.parse_args()
    if args.worker:
        args.side = args.worker
        raw = json.loads(Path(args.media).read_text())
        media = packetize({k: [bytes.fromhex(x) for x in v] for k, v in raw.items()})
        Path(args.out).write_text(json.dumps(asyncio.run(worker(args, media))))
        return
    if args.stock_relay:
        asyncio.run(stock_relay(args.stock_relay))
        return
    cpus = sorted(os.sched_getaffinity(0))
    if not args.no_pin and len(cpus) >= 2:
        PIN.update(relay={cpus[0]}, endpoints=set(cpus[1:]))
    os.environ["TSUNAGU_SECRET"] = SECRET
    os.environ["TSUNAGU_ICE_ADDRESSES"] = "127.0.0.1"
    os.environ["TSUNAGU_ICE_SERVERS"] = "[]"
    os.environ.pop("TSUNAGU_RELAY_CAPACITY", None)  # the default capacity, for --overload
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        media = tmp / "media.json"
        encode_media(media, transcode=args.transcode)
        redis = RedisServer(tmp / "redis", persist=False)
        redis.start()
        try:
            report = (run_transcoded(args, redis.url, media, tmp) if args.transcode
                      else run_all(args, redis.url, media, tmp))
        finally:
            redis.stop()
    if not args.no_e2e and not args.transcode:
        report["kiosk_bot_one_call"] = kiosk_bot_latency()
    print(json.dumps(report))


def kiosk_bot_latency() -> Any:
    """Capture-to-decoded latency both ways for one call between the Python kiosk client and
    the bot through signaling and a relay (bench/e2e_latency.py, in its own process)."""
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("e2e_latency.py")),
                           "--calls", "1", "--seconds", "10"],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ))
    if done.returncode != 0:
        return {"error": done.stderr[-500:]}
    result = json.loads(done.stdout.strip().splitlines()[-1])["results"][0]
    return {way: {k: result[way][k] for k in ("fps", "latency_ms_p50", "latency_ms_p95")}
            for way in ("kiosk_to_bot", "bot_to_kiosk")}


def run_transcoded(args: argparse.Namespace, redis_url: str, media: Path,
                   tmp: Path) -> dict[str, Any]:
    """Relay CPU and delivered fps for calls the relay must transcode both ways (640x480
    VP8 -> H.264 and back, Opus <-> PCMU). Latency is not matched: packets are re-encoded."""
    report: dict[str, Any] = {"cores": len(os.sched_getaffinity(0)),
                              "duration_s": args.duration,
                              "pinned": {k: sorted(v) for k, v in PIN.items()}, "transcode": []}
    for n in (int(x) for x in (args.ns if args.ns != "1,4,8,16,24" else "1").split(",")):
        row = scenario("transcode", n, redis_url, media, tmp, args.duration)
        for key in ("latency_p50_ms", "latency_p95_ms", "video_packets_matched"):
            row.pop(key, None)
        report["transcode"].append(row)
        print(json.dumps(row), file=sys.stderr)
    return report


def run_all(args: argparse.Namespace, redis_url: str, media: Path, tmp: Path) -> dict[str, Any]:
    duration = args.duration
    report: dict[str, Any] = {"cores": len(os.sched_getaffinity(0)), "duration_s": duration,
                              "pinned": {k: sorted(v) for k, v in PIN.items()},
                              "direct_hop": [], "forward": [], "stock": []}
    for key, ns, kind in (("forward", args.ns, "forward"), ("stock", args.stock_ns, "stock")):
        for n in (int(x) for x in ns.split(",")):
            row = scenario(kind, n, redis_url, media, tmp, duration)
            direct: dict[str, Any] = {"latency_p50_ms": None, "latency_p95_ms": None}
            if kind == "forward":
                direct = scenario("direct", n, redis_url, media, tmp, duration)
                report["direct_hop"].append(direct)
            for q in ("p50", "p95"):
                through, hop = row[f"latency_{q}_ms"], direct[f"latency_{q}_ms"]
                row[f"added_{q}_ms"] = (round(through - hop, 2)
                                        if through is not None and hop is not None else None)
            report[key].append(row)
            print(json.dumps(row), file=sys.stderr)
            if row["relay_cpu"] > 0.9 or row["fps_median"] < 25:
                break  # saturated: stop growing N
    if args.overload:
        # more calls than the default capacity: the relay refuses the excess up front
        report["overload"] = scenario("overload", args.overload, redis_url, media, tmp,
                                      duration)
        print(json.dumps(report["overload"]), file=sys.stderr)
    return report


if __name__ == "__main__":
    main()
