"""Opening hours per ward and holidays: pure, no loop."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tsunagu.opening_hours import (
    OpeningHours,
    OpeningHoursError,
    parse_holidays,
    parse_schedule,
    parse_ward_schedules,
)
from tsunagu.settings import ConfigError, SignalingSettings

TOKYO = ZoneInfo("Asia/Tokyo")


def ms(y: int, mo: int, d: int, h: int, mi: int, tz: ZoneInfo = TOKYO) -> int:
    return int(datetime(y, mo, d, h, mi, tzinfo=tz).timestamp() * 1000)


# 2027-03-01 is a Monday.
def test_default_is_monday_to_friday_0845_to_1730_tokyo() -> None:
    hours = OpeningHours()
    assert not hours.is_open("北区", ms(2027, 3, 1, 8, 44))
    assert hours.is_open("北区", ms(2027, 3, 1, 8, 45))
    assert hours.is_open("北区", ms(2027, 3, 5, 17, 29))  # Friday
    assert not hours.is_open("北区", ms(2027, 3, 5, 17, 30))  # closing time: closed
    assert not hours.is_open("北区", ms(2027, 3, 6, 10, 0))  # Saturday
    assert not hours.is_open("北区", ms(2027, 3, 7, 10, 0))  # Sunday


def test_time_zone_is_the_deployments() -> None:
    # 10:00 in Tokyo is 01:00 UTC: open in Tokyo, closed for a deployment in UTC.
    at = ms(2027, 3, 1, 10, 0)
    assert OpeningHours().is_open("x", at)
    assert not OpeningHours(timezone="UTC").is_open("x", at)
    assert OpeningHours(timezone="UTC").is_open("x", ms(2027, 3, 1, 10, 0, ZoneInfo("UTC")))
    # settings keep one zone for both
    s = SignalingSettings(secret=b"s" * 40, timezone="Europe/Lisbon")
    assert s.opening_hours.timezone == "Europe/Lisbon"


def test_holidays_close_every_ward() -> None:
    hours = OpeningHours(holidays=parse_holidays(["2027-03-01, 2027-03-02", "# comment"]),
                         wards={"南区": parse_schedule("Mon-Sun 00:00-24:00")})
    assert not hours.is_open("北区", ms(2027, 3, 1, 10, 0))
    assert not hours.is_open("南区", ms(2027, 3, 2, 10, 0))
    assert hours.is_open("北区", ms(2027, 3, 3, 10, 0))


def test_ward_override_and_saturday_rule() -> None:
    wards = parse_ward_schedules('{"南区": "Mon-Fri 08:30-17:15, Sat 09:00-12:00", '
                                 '"出張所": "closed"}')
    hours = OpeningHours(wards=wards)
    assert hours.is_open("南区", ms(2027, 3, 1, 8, 30))
    assert not hours.is_open("北区", ms(2027, 3, 1, 8, 30))
    assert hours.is_open("南区", ms(2027, 3, 6, 11, 59))  # Saturday morning
    assert not hours.is_open("南区", ms(2027, 3, 6, 12, 0))
    assert not hours.is_open("北区", ms(2027, 3, 6, 11, 0))
    assert not hours.is_open("出張所", ms(2027, 3, 1, 10, 0))
    assert hours.describe("南区") == "Mon,Tue,Wed,Thu,Fri 08:30-17:15, Sat 09:00-12:00"
    assert hours.describe("出張所") == "closed"


def test_day_range_wraps_over_the_week_end() -> None:
    rule, = parse_schedule("Fri-Mon 10:00-11:00")
    assert rule.days == frozenset({4, 5, 6, 0})


@pytest.mark.parametrize("bad", ["Mon-Fri", "Mon-Fri 8:45", "Mox 08:00-09:00",
                                 "Mon 25:00-26:00", "Mon 17:00-09:00", "Mon 08:60-09:00"])
def test_bad_schedules_are_refused(bad: str) -> None:
    with pytest.raises(OpeningHoursError):
        parse_schedule(bad)


def test_bad_settings_are_refused_with_the_reason(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(OpeningHoursError, match="not a date"):
        parse_holidays(["2027-13-01"])
    with pytest.raises(OpeningHoursError, match="JSON"):
        parse_ward_schedules("{north: 1}")
    with pytest.raises(OpeningHoursError, match="ward 北区"):
        parse_ward_schedules('{"北区": "every day"}')
    monkeypatch.setenv("TSUNAGU_WARD_OPENING_HOURS", '{"北区": "Mon 9-5"}')
    with pytest.raises(ConfigError, match="ward 北区"):
        SignalingSettings.from_env()
    monkeypatch.delenv("TSUNAGU_WARD_OPENING_HOURS")
    holidays = tmp_path / "holidays.txt"
    holidays.write_text("# city holidays\n2027-12-29\n2027-12-30  # year end\n\n")
    monkeypatch.setenv("TSUNAGU_HOLIDAYS", "2027-01-04")
    monkeypatch.setenv("TSUNAGU_HOLIDAYS_FILE", str(holidays))
    monkeypatch.setenv("TSUNAGU_OPENING_HOURS", "Mon-Sat 09:00-17:00")
    s = SignalingSettings.from_env()
    assert {str(d) for d in s.opening_hours.holidays} == {"2027-01-04", "2027-12-29",
                                                          "2027-12-30"}
    assert s.opening_hours.is_open("北区", ms(2027, 3, 6, 9, 0))  # Saturday now opens
    monkeypatch.setenv("TSUNAGU_HOLIDAYS_FILE", str(tmp_path / "missing.txt"))
    with pytest.raises(ConfigError, match="TSUNAGU_HOLIDAYS_FILE"):
        SignalingSettings.from_env()
