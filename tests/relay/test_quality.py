"""Per-leg rates and the quality flags of a call (pure)."""

from __future__ import annotations

from relay.quality import InboundLoss, LegCounters, LegRates, call_flags


def test_rates_between_snapshots_and_loss() -> None:
    c, rates = LegCounters(), LegRates()
    rates.update(c, None, now=100.0)
    loss = c.loss[1] = InboundLoss()
    for seq in (65534, 65535, 1, 2):  # seq 0 lost, across the wrap
        loss.add(seq)
    c.frames_in, c.packets_in, c.bytes_in = 60, 4, 250_000
    q = rates.update(c, 0.0421, now=102.0)
    assert q["fps_in"] == 30.0 and q["pps_in"] == 2.0 and q["kbps_in"] == 1000.0
    assert q["loss_pct"] == 20.0 and q["rtt_ms"] == 42.1


def test_sign_call_flags() -> None:
    good = {"fps_in": 29.0, "rtt_ms": 80.0}
    slow = {"fps_in": 12.0, "rtt_ms": 80.0}
    far = {"fps_in": 30.0, "rtt_ms": 450.0}
    assert call_flags("sign", {"kiosk": good, "interpreter": good}) == []
    assert call_flags("sign", {"kiosk": slow, "interpreter": good}) == ["low_fps"]
    assert call_flags("spoken", {"kiosk": slow, "interpreter": far}) == ["high_rtt"]
    assert call_flags("sign", {"kiosk": {"fps_in": 30.0, "rtt_ms": None}}) == []


def test_receiver_report_block_counts_an_interval_and_the_sender_report() -> None:
    from relay.quality import InboundLoss

    loss = InboundLoss()
    for seq in [65530, 65531, 65533, 65534, 65535, 0, 1]:  # 65532 lost, the counter wraps
        loss.add(seq)
    loss.last_sr = (0x12345678, 100.0)
    fraction, lost, highest, lsr, dlsr = loss.report_block(now=100.5)
    assert (lost, highest, lsr) == (1, 65536 + 1, 0x12345678)
    assert fraction == (1 << 8) // 8  # 1 of 8 expected, in 1/256
    assert dlsr == 32768  # 0.5 s in 1/65536 s
    for seq in range(2, 12):
        loss.add(seq)
    fraction, lost, _highest, _lsr, _dlsr = loss.report_block(now=101.0)
    assert (fraction, lost) == (0, 1)  # nothing lost in the new interval; 1 in all
