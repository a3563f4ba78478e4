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
