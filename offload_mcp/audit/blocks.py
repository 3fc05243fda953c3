"""Budget windows: ccusage's 5-hour blocks and a rolling 7-day window, against the user's past.

Block rule (ccusage `blocks.rs`): entries in time order; a block starts at its first entry's
time floored to the hour and lasts 5 hours; an entry more than 5 hours after the block start,
or more than 5 hours after the previous entry, starts a new block. A block is active while
`now` is inside it and its last entry is less than 5 hours old. Burn rate, as ccusage has it:
the block's tokens and cost over the minutes from its first to its last entry (none while
those are the same instant); the projection adds that rate over the whole minutes left.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from offload_mcp.audit.pricing import PriceTable
from offload_mcp.audit.reader import Entry

BLOCK_S = 5 * 3600
WEEK_S = 7 * 86400

#: one request: its time, all its tokens, its API-price cost
Point = tuple[float, int, float]


@dataclass
class Block:
    start: float
    last: float
    tokens: int = 0
    usd: float = 0.0
    requests: int = 0
    first: float = 0.0

    @property
    def end(self) -> float:
        return self.start + BLOCK_S

    def burn(self) -> tuple[float, float] | None:
        """(tokens per minute, USD per minute) from the first to the last request."""
        minutes = (self.last - self.first) / 60
        if minutes <= 0:
            return None
        return self.tokens / minutes, self.usd / minutes

    def projection(self, now: float) -> tuple[float, float] | None:
        """(tokens, USD) at the block's end if the burn rate holds."""
        rate = self.burn()
        if rate is None:
            return None
        minutes_left = round(max(self.end - now, 0.0) / 60)
        return self.tokens + rate[0] * minutes_left, self.usd + rate[1] * minutes_left


def points(entries: Iterable[Entry], prices: PriceTable) -> list[Point]:
    """Each request priced once, in time order."""
    return sorted((e.timestamp, e.total, prices.cost(e) or 0.0) for e in entries)


def blocks_of(ordered: Iterable[Point]) -> list[Block]:
    blocks: list[Block] = []
    current: Block | None = None
    for ts, tokens, usd in ordered:
        if current is None or ts - current.start > BLOCK_S or ts - current.last > BLOCK_S:
            current = Block(start=ts - ts % 3600, last=ts, first=ts)
            blocks.append(current)
        current.last = ts
        current.tokens += tokens
        current.usd += usd
        current.requests += 1
    return blocks


def build_blocks(entries: Iterable[Entry], prices: PriceTable) -> list[Block]:
    return blocks_of(points(entries, prices))


def rank(value: float, history: list[float]) -> float | None:
    """Percentile rank of `value` among past values (share strictly below, ties half)."""
    if not history:
        return None
    ordered = sorted(history)
    below = bisect_left(ordered, value)
    equal = sum(1 for v in ordered[below:] if v == value)
    return 100.0 * (below + equal / 2) / len(ordered)


@dataclass
class Windows:
    blocks: list[Block]
    now: float
    active: Block | None = None
    week: dict[str, float | None] = field(default_factory=dict)

    @property
    def past(self) -> list[Block]:
        return [b for b in self.blocks if b is not self.active]

    def active_dict(self) -> dict[str, Any] | None:
        block = self.active
        if block is None:
            return None
        rate = block.burn()
        projected = block.projection(self.now)
        projected_usd = projected[1] if projected else block.usd
        return {
            "start": block.start,
            "end": block.end,
            "first": block.first,
            "last": block.last,
            "requests": block.requests,
            "tokens": block.tokens,
            "usd": block.usd,
            "tokens_per_minute": rate[0] if rate else None,
            "usd_per_hour": rate[1] * 60 if rate else None,
            "projected_tokens": projected[0] if projected else None,
            "projected_usd": projected[1] if projected else None,
            "past_blocks": len(self.past),
            "projected_percentile": rank(projected_usd, [b.usd for b in self.past]),
        }

    def as_dict(self) -> dict[str, Any]:
        past = [b.usd for b in self.past]
        return {
            "blocks": len(self.blocks),
            "block_usd_p50": _pct(past, 50),
            "block_usd_p90": _pct(past, 90),
            "active_block": self.active_dict(),
            "week": self.week,
        }


def _pct(values: list[float], q: float) -> float:
    from offload_mcp.audit.report import percentile

    return percentile(sorted(values), q)


def windows_of(ordered: list[Point], now: float) -> Windows:
    """Blocks, the active one, and the last 7 days against every earlier 7-day window."""
    blocks = blocks_of(ordered)
    windows = Windows(blocks=blocks, now=now)
    if blocks:
        last = blocks[-1]
        if last.start <= now < last.end and now - last.last < BLOCK_S:
            windows.active = last
    weeks: dict[int, list[float]] = {}
    for ts, tokens, usd in ordered:
        index = int((now - ts) // WEEK_S)
        if index >= 0:
            tally = weeks.setdefault(index, [0.0, 0.0])
            tally[0] += tokens
            tally[1] += usd
    this_week = weeks.get(0, [0.0, 0.0])
    history = [usd for index, (_, usd) in weeks.items() if index > 0]
    oldest = max(weeks, default=0)
    history += [0.0] * (oldest - len(history))  # empty past weeks count as zero
    windows.week = {
        "start": now - WEEK_S,
        "tokens": this_week[0],
        "usd": this_week[1],
        "past_weeks": float(oldest),
        "percentile": rank(this_week[1], history),
    }
    return windows


def budget_windows(entries: Iterable[Entry], prices: PriceTable, now: float) -> Windows:
    return windows_of(points(entries, prices), now)
