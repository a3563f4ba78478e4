"""Test calls never reach the statistics: the ledger keeps no record of them (pure)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from signaling.ledger import Ledger, summarise

TZ = ZoneInfo("Asia/Tokyo")
T0 = 1_800_000_000_000


def events(call: str, lang: str, t0: int, seq: int) -> list[tuple[str, dict[str, str]]]:
    def ev(dt: int, n: int, **f: str) -> tuple[str, dict[str, str]]:
        return f"{t0 + dt}-{seq + n}", {"at": str(t0 + dt), "call": call, **f}
    return [ev(0, 0, ev="enqueued", lang=lang, kiosk="k1", ward="W", counter="1"),
            ev(500, 1, ev="offered"),
            ev(1000, 2, ev="answered", interp="bot"),
            ev(9000, 3, ev="ended", outcome="answered", reason="hangup")]


def test_a_test_call_is_not_counted_beside_a_real_one() -> None:
    ledger = Ledger()
    ledger.fold_all(events("c_test", "test", T0, 0))
    ledger.fold_all(events("c_real", "jsl", T0 + 20_000, 10))
    ledger.fold("1800000040000-0", {"ev": "test", "at": "1800000040000", "kiosk": "k1",
                                    "ok": "1"})
    assert set(ledger.records) == {"c_real"}
    assert list(ledger.recent_answers) == ["jsl"] and len(ledger.recent_talks_ms) == 1
    day = datetime.fromtimestamp(T0 / 1000, TZ).date()
    today = summarise(ledger.records.values(), day=day, tz=TZ, service_level_s=30)
    assert today["offered"] == 1 and today["answered"] == 1
    assert set(today["by_language"]) == {"jsl"}  # type: ignore[arg-type]
