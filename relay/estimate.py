"""The relay's own bandwidth estimate of one path of a leg: pure, no I/O, no clock.

The relay forwards RTP without decoding, and it answers with aiortc, which negotiates
no transport-cc: each sender's congestion control hears only REMB. Forwarding the
receiver's REMB holds a sender near what it already sends (a receiver can only vouch
for what it received, and the sender's padding probes end at the relay), so senders
started low and stayed there for seconds. Instead the relay keeps its own estimates per
leg, as an SFU does per transport (mediasoup): of the path from the relay to the party
(downlink) and from the party to the relay (uplink), and sends each sender the lower of
its uplink and the other party's downlink as the relay's own REMB (relay/call.py;
docs/media.md, "Ramp-up").

The estimate, updated every ``INTERVAL_S`` from what went over the path:

- **start**: ``START_BPS``; until the first sign of congestion it is raised to
  ``SLOW_START_FACTOR`` x the best rate delivered over the last ``WINDOW_S`` (slow
  start), up to ``CAP_BPS``;
- **decrease** (multiplicative): on loss over ``LOSS_DECREASE`` in the interval, on the
  receiver's own REMB dropping below what is delivered, on a send queue at the relay, or
  on a delay grown by ``delay_queue_s`` over its floor: to ``BETA`` x what got through
  (delivered x (1 - loss)), at most halving, then neither increase nor decrease for
  ``HOLD_S`` (the signals still show the queue the decrease is draining);
- **increase** after that (additive): by ``ADD_FRACTION`` of the estimate or
  ``ADD_MIN_BPS`` per interval, never above ``PROBE_FACTOR`` x the best delivered;
- it never falls because a sender sends less than allowed: only congestion lowers it.

Resends (NACK answers) share the leg: at most ``RESEND_SHARE`` of the estimate per
interval, so retransmissions never starve a shaped leg of new media.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

INTERVAL_S = 0.25  # how often the estimates are updated (and the REMB sent if it moved)
START_BPS = 600_000
CAP_BPS = 2_500_000  # above what a 640x480 camera stream uses (Chromium: ~1.7 Mbps)
FLOOR_BPS = 150_000  # never ask a sender for less: audio plus a small picture
WINDOW_S = 1.5  # "best delivered" looks this far back (keyframes and frame timing vary)
SLOW_START_FACTOR = 1.25
PROBE_FACTOR = 1.5
BETA = 0.85  # multiplicative decrease (as Google's congestion control)
HOLD_S = 1.0
ADD_FRACTION = 0.05
ADD_MIN_BPS = 30_000
LOSS_DECREASE = 0.1  # of the packets sent over the interval, as the receiver's RRs count
LOSS_HOLD = 0.02  # between the two: hold, neither raise nor lower
REMB_DROP = 0.9  # the receiver's REMB under this x delivered (and lower than before)
DELAY_QUEUE_S = 0.1  # a delay above its floor by this much (and growing): a queue builds
ONE_WAY_QUEUE_S = 0.05  # the same for a one-way delay (precise: abs-send-time, unsmoothed)
DELAY_RESET_S = 10.0  # a jump this large is a new clock (a wrapped RTP timestamp, a new stream)
QUEUE_BYTES = 32 * 1024  # bytes waiting in the relay's socket for this leg
RESEND_SHARE = 0.2


@dataclass(slots=True)
class LegEstimate:
    """What may be sent towards one receiving leg, in bits per second."""

    bps: int = START_BPS
    cap_bps: int = CAP_BPS
    delay_queue_s: float = DELAY_QUEUE_S
    slow_start: bool = True
    decreases: int = 0
    delivered_bps: int = 0  # over the last interval
    reason: str = ""  # the signal of the last decrease
    _last: tuple[float, int] | None = None  # (time, bytes sent) at the last update
    _history: deque[tuple[float, int]] = field(default_factory=deque)  # (time, rate)
    _hold_until: float = 0.0
    _reports: tuple[int, int] | None = None  # (highest seq, lost) at the interval's start
    _reported: tuple[int, int] | None = None  # the same, as last reported
    _loss: float = 0.0  # over the last interval
    _remb: int | None = None  # the receiver's latest REMB
    _remb_dropped: bool = False
    _delay_floor: float | None = None
    _delay: float | None = None
    _delay_seen: float | None = None  # the delay at the last update
    _queued: int = 0
    _resend_budget: float = 0.0

    def on_loss_report(self, highest_seq: int, cumulative_lost: int) -> None:
        """A receiver report block on the video the relay sends this leg: its extended
        highest sequence number and cumulative number of packets lost. (Chromium sends one
        with every NACK, so its own fraction lost covers a few packets: too noisy.)"""
        if self._reports is None:
            self._reports = (highest_seq, cumulative_lost)
        self._reported = (highest_seq, cumulative_lost)

    def on_receiver_remb(self, bps: int) -> None:
        """The leg's own REMB: a drop below the previous one means its path is overused."""
        if self._remb is not None and bps < self._remb:
            self._remb_dropped = True
        self._remb = bps

    def on_delay(self, delay_s: float) -> None:
        """A delay on the path whose growth means a queue: the round trip to the leg (from
        its reports on the relay's Sender Reports), or the least one-way delay of the
        interval's frames from the leg (arrival minus abs-send-time, plus a constant)."""
        floor = self._delay_floor
        if floor is None or delay_s < floor or delay_s - floor > DELAY_RESET_S:
            self._delay_floor, self._delay_seen = delay_s, None
        self._delay = delay_s

    def on_send_queue(self, queued_bytes: int) -> None:
        """Bytes waiting in the relay's socket to this leg."""
        self._queued = max(self._queued, queued_bytes)

    def update(self, now: float, sent_bytes: int) -> int:
        """Take the interval's signals and ``sent_bytes`` (the leg's running total of bytes
        sent); return the new estimate."""
        if self._last is None:
            self._last = (now, sent_bytes)
            self._reset_signals()
            self._resend_budget = self._interval_bytes()
            return self.bps
        dt = now - self._last[0]
        if dt <= 0:
            return self.bps
        rate = int((sent_bytes - self._last[1]) * 8 / dt)
        self._last = (now, sent_bytes)
        self._loss = self._interval_loss()
        self.delivered_bps = rate
        self._history.append((now, rate))
        while self._history and self._history[0][0] < now - WINDOW_S:
            self._history.popleft()
        best = max(r for _t, r in self._history)
        if now < self._hold_until:
            pass  # the last decrease has not reached the signals yet (queued, reported late)
        elif self._congested(rate):
            # what got through, not what the relay put on the wire (a full queue drops
            # the rest), and no more than the receiver's own estimate after a drop
            through = int(BETA * rate * (1.0 - self._loss))
            if self._remb_dropped and self._remb is not None:
                through = min(through, self._remb)
            # the loss reported now is of packets sent before the last decrease took
            # effect: never more than halve at once
            self.bps = max(FLOOR_BPS, self.bps // 2, min(self.bps, through))
            self.slow_start = False
            self.decreases += 1
            self._hold_until = now + HOLD_S
            self._history.clear()  # what was delivered before the queue is no guide now
        elif self._loss > LOSS_HOLD:
            pass
        elif self.slow_start:
            self.bps = max(self.bps, min(self.cap_bps, int(SLOW_START_FACTOR * best)))
        else:
            step = max(ADD_MIN_BPS, int(ADD_FRACTION * self.bps))
            ceiling = max(self.bps, min(self.cap_bps, int(PROBE_FACTOR * best)))
            self.bps = min(ceiling, self.bps + step)
        self._delay_seen = self._delay
        self._reset_signals()
        self._resend_budget = self._interval_bytes()
        return self.bps

    def _congested(self, delivered: int) -> bool:
        if self._loss >= LOSS_DECREASE:
            self.reason = f"loss {self._loss:.0%}"
        elif self._queued >= QUEUE_BYTES:
            self.reason = f"send queue {self._queued} B"
        elif self._remb_dropped and self._remb is not None and \
                self._remb < REMB_DROP * delivered:
            self.reason = f"receiver REMB {self._remb // 1000} kbps"
        elif self._delay_growing():
            self.reason = f"delay +{(self._delay or 0) - (self._delay_floor or 0):.3f} s"
        else:
            return False
        return True

    def _delay_growing(self) -> bool:
        # a delay that is high but falling is a queue draining, not building
        delay, floor, seen = self._delay, self._delay_floor, self._delay_seen
        return (delay is not None and floor is not None and delay - floor > self.delay_queue_s
                and (seen is None or delay > seen))

    def _interval_loss(self) -> float:
        start, last = self._reports, self._reported
        if start is None or last is None or last[0] <= start[0]:
            return 0.0
        return max(0.0, min(1.0, (last[1] - start[1]) / (last[0] - start[0])))

    def _reset_signals(self) -> None:
        self._reports = self._reported
        self._queued, self._remb_dropped = 0, False

    def _interval_bytes(self) -> float:
        return RESEND_SHARE * self.bps * INTERVAL_S / 8

    def allow_resend(self, nbytes: int) -> bool:
        """Whether a resend of ``nbytes`` fits this interval's share for resends."""
        if self._resend_budget < nbytes:
            return False
        self._resend_budget -= nbytes
        return True
