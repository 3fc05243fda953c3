from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from offload_mcp.windows import describe_wait, window_reset, window_start

LA = "America/Los_Angeles"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("window", "now", "tz", "start", "reset"),
    [
        (
            "minute",
            utc(2026, 3, 5, 10, 7, 59),
            "UTC",
            utc(2026, 3, 5, 10, 7),
            utc(2026, 3, 5, 10, 8),
        ),
        ("hour", utc(2026, 3, 5, 10, 0, 0), "UTC", utc(2026, 3, 5, 10), utc(2026, 3, 5, 11)),
        ("day", utc(2026, 3, 5, 23, 59, 59), "UTC", utc(2026, 3, 5), utc(2026, 3, 6)),
        # 03:00 UTC on the 5th is still the 4th in Los Angeles (UTC-8 in winter)
        ("day", utc(2026, 3, 5, 3), LA, utc(2026, 3, 4, 8), utc(2026, 3, 5, 8)),
        # Thursday 5 March 2026: the ISO week started on Monday the 2nd
        ("week", utc(2026, 3, 5, 12), "UTC", utc(2026, 3, 2), utc(2026, 3, 9)),
        ("month", utc(2026, 12, 31, 23), "UTC", utc(2026, 12, 1), utc(2027, 1, 1)),
        ("month", utc(2026, 2, 10), "UTC", utc(2026, 2, 1), utc(2026, 3, 1)),
        # India is UTC+5:30, so its hours start at :30 UTC
        (
            "hour",
            utc(2026, 3, 5, 10, 20),
            "Asia/Kolkata",
            utc(2026, 3, 5, 9, 30),
            utc(2026, 3, 5, 10, 30),
        ),
    ],
)
def test_calendar_windows(window, now, tz, start, reset):
    assert window_start(window, now, tz) == start
    assert window_reset(window, now, tz) == reset


def test_day_across_spring_forward_is_23_hours():
    # US DST starts 2026-03-08 at 02:00 local: that day has 23 hours in Los Angeles.
    now = utc(2026, 3, 8, 12)
    start, reset = window_start("day", now, LA), window_reset("day", now, LA)
    assert start == utc(2026, 3, 8, 8)
    assert reset == utc(2026, 3, 9, 7)
    assert (reset - start).total_seconds() == 23 * 3600


def test_week_across_fall_back_is_169_hours():
    now = utc(2026, 11, 4, 12)  # a Wednesday; DST ended on Sunday 1 November
    start, reset = window_start("week", now, LA), window_reset("week", now, LA)
    assert start == utc(2026, 11, 2, 8)
    assert (reset - start).total_seconds() == 7 * 24 * 3600
    sunday = utc(2026, 11, 1, 12)
    span = window_reset("week", sunday, LA) - window_start("week", sunday, LA)
    assert span.total_seconds() == (7 * 24 + 1) * 3600


def test_minute_and_hour_inside_the_repeated_hour():
    # 01:30 happens twice on 2026-11-01 in Los Angeles; 09:30 UTC is the second (PST) one.
    second = utc(2026, 11, 1, 9, 30)
    assert window_start("minute", second, LA) == second
    assert window_reset("minute", second, LA) == utc(2026, 11, 1, 9, 31)
    assert window_reset("hour", second, LA) == utc(2026, 11, 1, 10)
    first = utc(2026, 11, 1, 8, 30)
    assert window_reset("hour", first, LA) == utc(2026, 11, 1, 9)


def test_rolling_five_hours():
    now = datetime(2026, 11, 1, 3, 0, tzinfo=ZoneInfo(LA))  # 11:00 UTC: PST since 02:00 PDT
    assert window_start("5h", now, LA) == utc(2026, 11, 1, 6)
    assert window_reset("5h", now, LA) is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.2, "1s"), (59, "59s"), (61, "1m01s"), (3600, "1h00m"), (90000, "1d1h")],
)
def test_describe_wait(seconds, text):
    assert describe_wait(seconds) == text
