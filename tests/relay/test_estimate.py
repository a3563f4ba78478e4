"""The relay's per-leg bandwidth estimate, driven with a fake clock and byte counts."""

from __future__ import annotations

import pytest

from relay.estimate import (
    BETA,
    CAP_BPS,
    FLOOR_BPS,
    HOLD_S,
    INTERVAL_S,
    RESEND_SHARE,
    SLOW_START_FACTOR,
    START_BPS,
    LegEstimate,
)


class Path:
    """A leg that delivers what the sender sends, the sender sending min(want, estimate)."""

    def __init__(self, want_bps: int, limit_bps: int | None = None) -> None:
        self.want, self.limit = want_bps, limit_bps
        self.est = LegEstimate()
        self.now, self.sent = 0.0, 0
        self.seq, self.lost = 0, 0  # as the receiver's report blocks count them
        self.est.on_loss_report(self.seq, self.lost)
        self.est.update(self.now, self.sent)

    def step(self, loss: float | None = None, remb: int | None = None,
             rtt: float | None = None) -> int:
        """Half a second: the sender sends, the receiver reports ``loss`` (a fraction)."""
        rate = min(self.want, self.est.bps)
        self.now += INTERVAL_S
        self.sent += int(rate * INTERVAL_S / 8)
        if loss is None and self.limit is not None and rate > self.limit:
            loss = (rate - self.limit) / rate  # what a full queue drops
        packets = rate * INTERVAL_S // 4000  # 500-byte packets
        self.seq += packets
        self.lost += int(packets * (loss or 0.0))
        self.est.on_loss_report(self.seq, self.lost)
        if remb is not None:
            self.est.on_receiver_remb(remb)
        if rtt is not None:
            self.est.on_delay(rtt)
        return self.est.update(self.now, self.sent)


def test_starts_above_a_sender_start_and_ramps_on_what_is_delivered() -> None:
    path = Path(want_bps=800_000)
    assert path.est.bps == START_BPS
    bps = path.step()  # the sender sent 600 kbps (the start)
    assert bps == pytest.approx(SLOW_START_FACTOR * START_BPS, rel=0.001)
    while path.est.bps < SLOW_START_FACTOR * 800_000 * 0.999:
        assert path.step() > bps  # up while the sender uses what it is allowed
        bps = path.est.bps
    assert path.step() == bps  # and no more while it wants no more
    path.want = 1_000_000
    for _ in range(3):
        path.step()
    assert path.est.bps == pytest.approx(SLOW_START_FACTOR * 1_000_000, rel=0.001)


def test_capped() -> None:
    path = Path(want_bps=10_000_000)
    for _ in range(20):
        path.step()
    assert path.est.bps == CAP_BPS


def test_holds_when_the_sender_sends_less_and_nothing_is_congested() -> None:
    path = Path(want_bps=750_000)
    for _ in range(8):
        path.step()
    held = path.est.bps
    assert held == pytest.approx(SLOW_START_FACTOR * 750_000, rel=0.001)
    for _ in range(40):  # 20 s of a steady, app-limited sender
        path.step(loss=0.0, rtt=0.002)
    assert path.est.bps == held
    assert path.est.decreases == 0


def test_loss_on_the_leg_decreases_to_a_share_of_what_was_delivered() -> None:
    path = Path(want_bps=2_000_000)
    for _ in range(4):
        path.step()
    bps = path.step(loss=0.25)
    # of what got through (the test's packets are whole: about 25 % lost)
    assert bps == pytest.approx(BETA * 0.75 * path.est.delivered_bps, rel=0.02)
    assert path.est.decreases == 1 and not path.est.slow_start


def test_a_decrease_is_followed_by_a_hold_then_slow_additive_increase() -> None:
    path = Path(want_bps=2_000_000)
    for _ in range(4):
        path.step()
    after = path.step(loss=0.25)
    for _ in range(int(HOLD_S / INTERVAL_S) - 1):
        assert path.step(loss=0.25) == after  # still reported while the queue drains: held
    raised = path.step()
    assert after < raised <= after * 1.1  # additive, not twice what is delivered


def test_a_few_percent_loss_holds_the_estimate() -> None:
    path = Path(want_bps=2_000_000)
    path.step()
    before = path.est.bps
    assert path.step(loss=0.06) == before  # neither up nor down


def test_converges_under_a_limit_without_collapsing() -> None:
    path = Path(want_bps=2_000_000, limit_bps=500_000)
    rates = [path.step() for _ in range(60)]  # 30 s
    late = rates[20:]
    assert min(late) >= 300_000, late
    assert sum(late) / len(late) <= 650_000, late


def test_receiver_remb_dropping_below_what_is_delivered_decreases() -> None:
    path = Path(want_bps=2_000_000)
    for _ in range(8):
        path.step(remb=3_000_000)  # high and steady: no signal
    assert path.est.decreases == 0
    before = path.est.bps
    remb = int(0.7 * path.est.delivered_bps)
    bps = path.step(remb=remb)
    assert path.est.decreases == 1
    assert bps == max(before // 2, remb)  # the receiver's own estimate, under BETA x through


def test_a_few_lost_packets_in_a_short_report_are_not_ten_percent_loss() -> None:
    est = LegEstimate()
    est.on_loss_report(1000, 0)
    est.update(0.0, 0)
    for highest in range(1001, 1101):  # a report with every NACK: one loss in the first
        est.on_loss_report(highest, 1)
    est.update(INTERVAL_S, 50_000)
    assert est.decreases == 0


def test_a_receiver_remb_that_lags_but_does_not_drop_is_no_signal() -> None:
    path = Path(want_bps=2_000_000)
    for remb in range(300_000, 1_500_000, 100_000):  # a receiver catching up, slowly
        path.step(remb=remb)
    assert path.est.decreases == 0
    assert path.est.bps == CAP_BPS


def test_a_growing_round_trip_decreases_a_draining_one_does_not() -> None:
    path = Path(want_bps=2_000_000)
    path.step(rtt=0.002)
    path.step(rtt=0.05)
    assert path.est.decreases == 0
    path.step(rtt=0.3)
    assert path.est.decreases == 1
    for _ in range(int(HOLD_S / INTERVAL_S) + 1):
        path.step(rtt=0.25)  # the smoothed value falls as the queue drains
    assert path.est.decreases == 1


def test_a_delay_on_a_new_clock_is_a_new_floor_not_a_queue() -> None:
    path = Path(want_bps=2_000_000)
    path.step(rtt=5.0)
    path.step(rtt=5.0 + 47_721.0)  # the RTP timestamp wrapped (2**32 / 90 kHz)
    path.step(rtt=5.0 + 47_721.01)
    assert path.est.decreases == 0


def test_a_send_queue_at_the_relay_decreases() -> None:
    path = Path(want_bps=2_000_000)
    path.step()
    path.est.on_send_queue(64 * 1024)
    path.step()
    assert path.est.decreases == 1


def test_one_decrease_at_most_halves() -> None:
    path = Path(want_bps=2_000_000)
    for _ in range(4):
        path.step()
    before = path.est.bps
    assert path.step(loss=0.9) == before // 2


def test_never_below_the_floor() -> None:
    path = Path(want_bps=2_000_000)
    for _ in range(40):
        path.step(loss=0.8)
    assert path.est.bps == FLOOR_BPS


def test_resends_get_a_share_of_the_interval() -> None:
    est = LegEstimate()
    est.update(0.0, 0)
    budget = int(RESEND_SHARE * START_BPS * INTERVAL_S / 8)
    sent = 0
    while est.allow_resend(1200):
        sent += 1200
    assert budget - 1200 < sent <= budget
    est.update(INTERVAL_S, 0)
    assert est.allow_resend(1200)  # a new interval, a new share
