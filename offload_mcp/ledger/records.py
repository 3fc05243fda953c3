"""The ledger's vocabulary: rows, windows, refusals and cache entries (no SQL here)."""

from __future__ import annotations

from dataclasses import dataclass

from offload_mcp.config import CapLimit, Window


class WouldBlock(Exception):
    """A write would have to wait for a lock (raised only inside `Ledger.without_waiting`)."""


@dataclass(frozen=True)
class CallRecord:
    """A finished row written in one go (cache hits, and anything that needs no reservation)."""

    ts: float
    tool: str
    provider: str
    model: str
    outcome: str
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    usd: float = 0.0
    latency_ms: float = 0.0
    retries: int = 0
    failovers: int = 0
    packet_hash: str = ""
    cache_hit: int = 0
    privacy: str = ""


@dataclass(frozen=True)
class CapWindow:
    """One capped window of one provider, resolved to unix times for `now`."""

    window: Window
    start: float
    reset: float | None  # None: rolling, frees up as old use ages out
    limit: CapLimit


@dataclass(frozen=True)
class WindowUse:
    window: Window
    requests: int
    tokens: int
    usd: float
    limit: CapLimit
    reset: float | None


@dataclass(frozen=True)
class Refusal:
    """Why a provider cannot take a request now, and when it can (unix time), if known."""

    provider: str
    reason: str
    retry_at: float | None


@dataclass(frozen=True)
class Cached:
    """An earlier answer to the identical packet from the same provider and model."""

    answer: str
    #: its `Grounding` as JSON, when it had one
    grounding: str | None = None


@dataclass(frozen=True)
class CacheEntry:
    key: str
    answer: str
    ttl_s: float
    grounding: str | None = None


@dataclass(frozen=True)
class ProviderTotals:
    calls: int
    ok: int
    input_tokens: int
    output_tokens: int
    usd: float
    cache_hits: int = 0
