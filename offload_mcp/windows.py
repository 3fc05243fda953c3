"""Quota window arithmetic: when a window started and when it resets, in the provider's zone.

Calendar windows (minute, hour, day, week, month) reset at boundaries of the provider's own time
zone, so a provider that resets at midnight Pacific is counted from midnight Pacific, across DST
changes too. `5h` is rolling: it always covers the last five hours, and frees up as old use
ages out. Pure functions over aware datetimes; the ledger supplies the clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from offload_mcp.config import Window

ROLLING = {"5h": timedelta(hours=5)}
WINDOWS: tuple[Window, ...] = ("minute", "hour", "day", "week", "month", "5h")


def window_start(window: Window, now: datetime, tz: str = "UTC") -> datetime:
    """The first instant counted by the window that contains `now`, in UTC.

    UTC out, because aware arithmetic and comparisons in one zone are wall-clock operations
    that go wrong around DST changes (PEP 495).
    """
    return _local_start(window, now, tz).astimezone(UTC)


def _local_start(window: Window, now: datetime, tz: str) -> datetime:
    if window in ROLLING:
        return now.astimezone(UTC) - ROLLING[window]
    local = now.astimezone(ZoneInfo(tz))
    if window == "minute":
        return local.replace(second=0, microsecond=0)
    if window == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    midnight = _midnight(local.year, local.month, local.day, tz)
    if window == "day":
        return midnight
    if window == "week":  # ISO weeks start on Monday
        monday = local.date() - timedelta(days=local.weekday())
        return _midnight(monday.year, monday.month, monday.day, tz)
    return _midnight(local.year, local.month, 1, tz)


def window_reset(window: Window, now: datetime, tz: str = "UTC") -> datetime | None:
    """When the calendar window containing `now` ends, in UTC; None for rolling windows."""
    if window in ROLLING:
        return None
    start = _local_start(window, now, tz)
    # Aware arithmetic is wall-clock arithmetic and drops `fold`; add short spans in UTC.
    if window == "minute":
        return start.astimezone(UTC) + timedelta(minutes=1)
    if window == "hour":
        return start.astimezone(UTC) + timedelta(hours=1)
    if window == "day":
        nxt = start.date() + timedelta(days=1)
    elif window == "week":
        nxt = start.date() + timedelta(days=7)
    else:
        nxt = (start.date().replace(day=28) + timedelta(days=4)).replace(day=1)
    return _midnight(nxt.year, nxt.month, nxt.day, tz).astimezone(UTC)


def _midnight(year: int, month: int, day: int, tz: str) -> datetime:
    # Wall-clock midnight in the zone; zoneinfo applies the offset in force on that date.
    return datetime(year, month, day, tzinfo=ZoneInfo(tz))


def from_ts(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def describe_reset(reset_ts: float, now_ts: float) -> str:
    """'at 00:00 PST (in 3h12m)': local time of the reset and how long until then."""
    when = datetime.fromtimestamp(reset_ts).astimezone()
    return f"at {when:%H:%M %Z} (in {describe_wait(reset_ts - now_ts)})"


def describe_wait(seconds: float) -> str:
    seconds = max(int(seconds + 0.999), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours >= 24:
        return f"{hours // 24}d{hours % 24}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"
