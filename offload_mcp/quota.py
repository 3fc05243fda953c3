"""Quota policy around the ledger: which windows a provider's caps define right now, what a
packet is estimated to cost, and which provider signals turn into shared cool-downs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from offload_mcp import errors
from offload_mcp.config import ProviderConfig
from offload_mcp.ledger import CapWindow, Refusal
from offload_mcp.packets import Message
from offload_mcp.windows import describe_reset, window_reset, window_start

#: characters per token for estimates; low on purpose, so a reservation over- rather than
#: under-counts (code and non-English text run well below four characters a token).
CHARS_PER_TOKEN = 3.0
#: a 429 without a retry time still means "not now"
DEFAULT_RATE_LIMIT_COOLDOWN_S = 60.0
#: a provider that timed out is likely to time out again; do not make every call wait for it
TIMEOUT_COOLDOWN_S = 60.0


def cap_windows(provider: ProviderConfig, now_ts: float) -> list[CapWindow]:
    now = datetime.fromtimestamp(now_ts, UTC)
    result = []
    for window, limit in provider.caps.items():
        reset = window_reset(window, now, provider.reset_tz)
        result.append(
            CapWindow(
                window=window,
                start=window_start(window, now, provider.reset_tz).timestamp(),
                reset=reset.timestamp() if reset else None,
                limit=limit,
            )
        )
    return result


def estimate(
    provider: ProviderConfig, messages: Sequence[Message], max_output_tokens: int
) -> tuple[int, int, float]:
    """(input tokens, output tokens, USD) to reserve before the call."""
    chars = sum(len(m.content) for m in messages)
    est_input = int(chars / CHARS_PER_TOKEN) + 8 * len(messages)
    return est_input, max_output_tokens, provider.prices.cost(est_input, 0, max_output_tokens)


def cooldown_for(error: errors.ProviderError, now_ts: float) -> tuple[float, str] | None:
    """A shared cool-down for signals that say "not now" (never for bad keys or bad answers)."""
    if isinstance(error, errors.RateLimited):
        wait = error.retry_after_s
        if wait is None:
            wait = DEFAULT_RATE_LIMIT_COOLDOWN_S
        return now_ts + wait, "rate limited by the provider"
    if isinstance(error, errors.ProviderTimeout):
        return now_ts + TIMEOUT_COOLDOWN_S, "timed out"
    return None


def describe(refusal: Refusal, now_ts: float) -> str:
    when = f", resets {describe_reset(refusal.retry_at, now_ts)}" if refusal.retry_at else ""
    return f"{refusal.provider}: {refusal.reason}{when}."
