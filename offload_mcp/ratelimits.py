"""Parse the many ways providers say "come back later" into seconds."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping

_GO_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?$")
_MS = re.compile(r"(\d+(?:\.\d+)?)ms$")
#: numbers above this are timestamps, not durations (epoch seconds from 2001 on)
_EPOCH_S = 1e9


def parse_duration_s(value: str, *, now: float | None = None) -> float | None:
    """Seconds until reset from `7`, `7.66`, `2m59.56s`, `1h2m`, `250ms` or an epoch (s or ms)."""
    text = value.strip().lower()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None:
        if not math.isfinite(number):
            return None
        if number > _EPOCH_S * 1000:  # epoch milliseconds (OpenRouter's X-RateLimit-Reset)
            number = number / 1000 - (now if now is not None else time.time())
        elif number > _EPOCH_S:
            number = number - (now if now is not None else time.time())
        return max(number, 0.0)
    ms = _MS.match(text)
    if ms:
        return float(ms.group(1)) / 1000
    match = _GO_DURATION.match(text)
    if match and any(match.groups()):
        hours, minutes, seconds = (float(part) if part else 0.0 for part in match.groups())
        return hours * 3600 + minutes * 60 + seconds
    return None


def retry_after_s(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """The wait a 429 asks for: `retry-after-ms`, `retry-after`, else the request-reset header."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if "retry-after-ms" in lowered:
        try:
            ms = float(lowered["retry-after-ms"])
        except ValueError:
            ms = math.nan
        if math.isfinite(ms):
            return max(ms / 1000, 0.0)
    for name in ("retry-after", "x-ratelimit-reset-requests", "x-ratelimit-reset"):
        if name in lowered:
            parsed = parse_duration_s(lowered[name], now=now)
            if parsed is None:  # not `or`: a wait of 0 s is an answer
                parsed = _http_date_s(lowered[name], now)
            if parsed is not None:
                return parsed
    return None


def _http_date_s(value: str, now: float | None) -> float | None:
    """`Retry-After` may also be an HTTP date (RFC 9110)."""
    from datetime import UTC
    from email.utils import parsedate_to_datetime

    try:
        date = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if date.tzinfo is None:  # "-0000" parses naive; HTTP dates are UTC
        date = date.replace(tzinfo=UTC)
    when = date.timestamp()
    return max(when - (now if now is not None else time.time()), 0.0)


_TRY_AGAIN = re.compile(r"(?:try again|retry) in ([0-9hms.]+)", re.IGNORECASE)


def wait_in_message(message: str) -> float | None:
    """Groq and Gemini put the wait in prose: "Please try again in 9m38.016s"."""
    match = _TRY_AGAIN.search(message)
    return parse_duration_s(match.group(1).rstrip(".")) if match else None


def exhausted_for_s(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """After a successful answer: seconds until reset of any window whose remaining hit 0.

    Matches `x-ratelimit-remaining-X` with `x-ratelimit-reset-X` (OpenAI, Groq, Cerebras's
    `-requests-day` / `-tokens-minute`); the longest such wait wins.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    waits = []
    for name, value in lowered.items():
        if not name.startswith("x-ratelimit-remaining"):
            continue
        try:
            remaining = float(value)
        except ValueError:
            continue
        reset = lowered.get(name.replace("remaining", "reset", 1))
        if remaining <= 0 and reset is not None:
            wait = parse_duration_s(reset, now=now)
            if wait is not None:
                waits.append(wait)
    return max(waits, default=None)
