"""Every way providers say "come back later", turned into seconds."""

from __future__ import annotations

import time

import pytest

from offload_mcp.ratelimits import (
    exhausted_for_s,
    parse_duration_s,
    retry_after_s,
    wait_in_message,
)

NOW = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13:20 GMT


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        ("0", 0.0),
        ("7.66", 7.66),
        (" 12 ", 12.0),
        ("-3", 0.0),
        ("1s", 1.0),
        ("7.66s", 7.66),
        ("6m0s", 360.0),
        ("2m59.56s", 179.56),
        ("9m38.016s", 578.016),
        ("1h2m", 3720.0),
        ("1h", 3600.0),
        ("1h0m30s", 3630.0),
        ("2M59S", 179.0),
        ("250ms", 0.25),
        ("1.5ms", 0.0015),
        # epoch seconds and OpenRouter's epoch milliseconds
        (str(int(NOW + 90)), 90.0),
        (str(int((NOW + 90) * 1000)), 90.0),
        (str(int(NOW - 90)), 0.0),
        (str(int((NOW - 90) * 1000)), 0.0),
    ],
)
def test_parse_duration(value: str, expected: float) -> None:
    assert parse_duration_s(value, now=NOW) == pytest.approx(expected)


@pytest.mark.parametrize(
    "value",
    ["", "   ", "soon", "s", "ms", "m", "1d", "1h2m3s4", "12 s", "nan", "inf", "-inf", "1,5"],
)
def test_parse_duration_garbage(value: str) -> None:
    assert parse_duration_s(value, now=NOW) is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "30"}, 30.0),
        ({"Retry-After": "30"}, 30.0),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after-ms": "junk", "retry-after": "9"}, 9.0),
        ({"retry-after-ms": "nan", "retry-after": "9"}, 9.0),
        ({"Retry-After": "Tue, 14 Nov 2023 22:15:20 GMT"}, 120.0),
        ({"Retry-After": "Tue, 14 Nov 2023 22:15:20 -0000"}, 120.0),
        ({"Retry-After": "Tue, 14 Nov 2023 22:10:00 GMT"}, 0.0),
        ({"retry-after": "soon", "x-ratelimit-reset-requests": "2m59.56s"}, 179.56),
        ({"x-ratelimit-reset-requests": "2m59.56s", "x-ratelimit-reset-tokens": "7.66s"}, 179.56),
        ({"X-RateLimit-Reset": str(int((NOW + 60) * 1000))}, 60.0),
        ({"x-ratelimit-reset": str(int(NOW + 60))}, 60.0),
    ],
)
def test_retry_after(headers: dict[str, str], expected: float) -> None:
    assert retry_after_s(headers, now=NOW) == pytest.approx(expected)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"content-type": "application/json"},
        {"retry-after": "whenever"},
        {"retry-after-ms": "junk"},
        # only the token window's reset is given: not the request's wait
        {"x-ratelimit-reset-tokens": "7.66s"},
    ],
)
def test_retry_after_absent_or_garbage(headers: dict[str, str]) -> None:
    assert retry_after_s(headers, now=NOW) is None


def test_epoch_uses_the_clock_when_no_now_is_given() -> None:
    wait = parse_duration_s(str(int((time.time() + 100) * 1000)))
    assert wait is not None
    assert 95 < wait <= 100


def test_http_date_without_a_zone_is_utc_whatever_the_local_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        wait = retry_after_s({"Retry-After": "Tue, 14 Nov 2023 22:15:20 -0000"}, now=NOW)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert wait == pytest.approx(120.0)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Please try again in 9m38.016s.", 578.016),
        ("Please retry in 23.5s", 23.5),
        ("Rate limit exceeded", None),
        ("try again in a moment", None),
    ],
)
def test_wait_in_message(message: str, expected: float | None) -> None:
    assert wait_in_message(message) == (pytest.approx(expected) if expected else None)


def test_exhausted_for_s_takes_the_longest_used_up_window() -> None:
    headers = {
        "x-ratelimit-remaining-requests-day": "0",
        "x-ratelimit-reset-requests-day": "3600.5",
        "x-ratelimit-remaining-tokens-minute": "0",
        "x-ratelimit-reset-tokens-minute": "12",
    }
    assert exhausted_for_s(headers) == 3600.5
    assert exhausted_for_s({"x-ratelimit-remaining-requests": "3"}) is None
    assert exhausted_for_s({"x-ratelimit-remaining-requests": "0"}) is None
