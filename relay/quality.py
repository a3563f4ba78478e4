"""Per-leg media counters, their per-interval rates, and the quality flags of a call."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

MIN_SIGN_FPS = 20.0
MAX_RTT_MS = 400.0


@dataclass(slots=True)
class InboundLoss:
    """Received versus expected packets of one incoming stream (RFC 3550 A.3, simplified),
    and what the relay's receiver reports on it need (the sender's last SR, the last report)."""

    base: int | None = None
    highest: int = 0  # extended sequence number
    received: int = 0
    last_sr: tuple[int, float] | None = None  # middle 32 bits of its NTP time, arrival (s)
    reported: tuple[int, int] = (0, 0)  # expected, received at the last receiver report

    def add(self, seq: int) -> None:
        if self.base is None:
            self.base, self.highest = seq, seq
        else:
            delta = (seq - (self.highest & 0xFFFF)) & 0xFFFF
            if 0 < delta < 0x8000:
                self.highest += delta
        self.received += 1

    @property
    def expected(self) -> int:
        return 0 if self.base is None else self.highest - self.base + 1

    def report_block(self, now: float) -> tuple[int, int, int, int, int]:
        """(fraction lost, cumulative lost, extended highest sequence, LSR, DLSR) for an RTCP
        receiver report block (RFC 3550 6.4.1); the interval starts at the previous call."""
        expected, received = self.expected, self.received
        exp_interval = expected - self.reported[0]
        lost_interval = exp_interval - (received - self.reported[1])
        fraction = (lost_interval << 8) // exp_interval if exp_interval > 0 and \
            lost_interval > 0 else 0
        self.reported = (expected, received)
        cumulative = max(-0x800000, min(0x7FFFFF, expected - received))
        lsr, dlsr = 0, 0
        if self.last_sr is not None:
            lsr = self.last_sr[0]
            dlsr = int((now - self.last_sr[1]) * 65536) & 0xFFFFFFFF
        return min(fraction, 255), cumulative, self.highest & 0xFFFFFFFF, lsr, dlsr


@dataclass(slots=True)
class LegCounters:
    """Totals kept by the forwarding path for one leg (cheap integer updates only)."""

    packets_in: int = 0
    bytes_in: int = 0
    frames_in: int = 0
    packets_out: int = 0
    bytes_out: int = 0
    frames_out: int = 0
    dropped_out: int = 0
    waiting_keyframe: int = 0  # video packets not sent: this receiver waits for a keyframe
    bad_in: int = 0  # packets that could not be forwarded (malformed)
    other_ssrc_in: int = 0  # packets of a second stream of one kind, not forwarded
    transcoded_frames: int = 0  # frames re-encoded for this leg (no codec in common)
    transcode_dropped: int = 0  # frames the transcoder dropped: overload, waiting for a keyframe
    nacks: int = 0
    plis: int = 0
    # least (arrival - abs-send-time, mod 64 s) of the video frames' last packets since the
    # estimate last took it: its growth is a queue on the way in
    frame_delay_s: float = float("inf")
    resends_skipped: int = 0  # NACKed packets not resent: the leg's share for resends spent
    remb_bps: int | None = None
    loss: dict[int, InboundLoss] = field(default_factory=dict)

    def expected_and_received(self) -> tuple[int, int]:
        return (sum(s.expected for s in self.loss.values()),
                sum(s.received for s in self.loss.values()))


@dataclass(slots=True)
class LegRates:
    """Turns a leg's totals into per-second rates between two snapshots."""

    last: tuple[float, int, int, int, int, int, int, int, int] | None = None
    current: dict[str, Any] = field(default_factory=dict)

    def update(self, c: LegCounters, rtt_s: float | None,
               now: float | None = None) -> dict[str, Any]:
        now = time.monotonic() if now is None else now
        expected, received = c.expected_and_received()
        snap = (now, c.packets_in, c.bytes_in, c.frames_in, c.packets_out, c.bytes_out,
                c.frames_out, expected, received)
        prev = self.last or (now - 1e-9, 0, 0, 0, 0, 0, 0, 0, 0)
        dt = max(now - prev[0], 1e-6)
        lost = (expected - prev[7]) - (received - prev[8])
        exp_delta = expected - prev[7]
        self.current = {
            "fps_in": round((c.frames_in - prev[3]) / dt, 1),
            "fps_out": round((c.frames_out - prev[6]) / dt, 1),
            "pps_in": round((c.packets_in - prev[1]) / dt, 1),
            "kbps_in": round((c.bytes_in - prev[2]) * 8 / dt / 1000, 1),
            "kbps_out": round((c.bytes_out - prev[5]) * 8 / dt / 1000, 1),
            "loss_pct": round(100.0 * max(lost, 0) / exp_delta, 2) if exp_delta > 0 else 0.0,
            "nacks": c.nacks,
            "plis": c.plis,
            "transcoded_frames": c.transcoded_frames,
            "transcode_dropped": c.transcode_dropped,
            "rtt_ms": None if rtt_s is None else round(rtt_s * 1000, 1),
        }
        self.last = snap
        return self.current


def call_flags(modality: str | None, legs: dict[str, dict[str, Any]]) -> list[str]:
    """Quality flags of a call: a sign-language call under 20 fps, any leg over 400 ms RTT."""
    flags: list[str] = []
    if modality == "sign" and any(q["fps_in"] < MIN_SIGN_FPS for q in legs.values()):
        flags.append("low_fps")
    if any(q["rtt_ms"] is not None and q["rtt_ms"] > MAX_RTT_MS for q in legs.values()):
        flags.append("high_rtt")
    return flags


class ProcessCpu:
    """This process's CPU use as a fraction of one core, between successive reads.

    The first read only sets the baseline: the work of starting up (imports, the control
    API) is not load, and counting it refused a relay's first calls."""

    def __init__(self) -> None:
        self._last: tuple[float, float] | None = None
        self.value = 0.0

    def sample(self) -> float:
        now, cpu = time.monotonic(), time.process_time()
        if self._last is None:
            self._last = (now, cpu)
            return self.value
        wall = now - self._last[0]
        if wall > 0.05:
            self.value = max(0.0, (cpu - self._last[1]) / wall)
            self._last = (now, cpu)
        return self.value
