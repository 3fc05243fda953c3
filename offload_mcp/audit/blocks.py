"""Budget windows: ccusage's 5-hour blocks and a rolling 7-day window, against the user's past.

Block rule (ccusage `blocks.rs`): entries in time order; a block starts at its first entry's
time floored to the hour and lasts 5 hours; an entry more than 5 hours after the block start,
or more than 5 hours after the previous entry, starts a new block. A block is active while
`now` is inside it and its last entry is less than 5 hours old.
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


def build_blocks(entries: Iterable[Entry], prices: PriceTable) -> list[Block]:
    blocks: list[Block] = []
    for entry in sorted(entries, key=lambda e: e.timestamp):
        ts = entry.timestamp
        current = blocks[-1] if blocks else None
        if current is None or ts - current.start > BLOCK_S or ts - current.last > BLOCK_S:
            current = Block(start=ts - ts % 3600, last=ts, first=ts)
            blocks.append(current)
        current.last = ts
        current.tokens += entry.total
        current.usd += prices.cost(entry) or 0.0
        current.requests += 1
    return blocks


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

    def as_dict(self) -> dict[str, Any]:
        past = [b for b in self.blocks if b is not self.active]
        out: dict[str, Any] = {
            "blocks": len(self.blocks),
            "block_usd_p50": _pct([b.usd for b in past], 50),
            "block_usd_p90": _pct([b.usd for b in past], 90),
            "active_block": None,
            "week": self.week,
        }
        block = self.active
        if block is not None:
            elapsed_min = max((self.now - block.first) / 60, 1.0)
            remaining_min = max((block.end - self.now) / 60, 0.0)
            usd_per_min = block.usd / elapsed_min
            tokens_per_min = block.tokens / elapsed_min
            projected_usd = block.usd + usd_per_min * remaining_min
            out["active_block"] = {
                "start": block.start,
                "end": block.end,
                "requests": block.requests,
                "tokens": block.tokens,
                "usd": block.usd,
                "tokens_per_minute": tokens_per_min,
                "usd_per_hour": usd_per_min * 60,
                "projected_tokens": block.tokens + tokens_per_min * remaining_min,
                "projected_usd": projected_usd,
                "projected_percentile": rank(projected_usd, [b.usd for b in past]),
            }
        return out


def _pct(values: list[float], q: float) -> float:
    from offload_mcp.audit.report import percentile

    return percentile(sorted(values), q)


def budget_windows(entries: list[Entry], prices: PriceTable, now: float) -> Windows:
    """Blocks, the active one, and the last 7 days against every earlier 7-day window."""
    blocks = build_blocks(entries, prices)
    windows = Windows(blocks=blocks, now=now)
    if blocks:
        last = blocks[-1]
        if last.start <= now < last.end and now - last.last < BLOCK_S:
            windows.active = last
    weeks: dict[int, list[float]] = {}
    for entry in entries:
        index = int((now - entry.timestamp) // WEEK_S)
        if index >= 0:
            tally = weeks.setdefault(index, [0.0, 0.0])
            tally[0] += entry.total
            tally[1] += prices.cost(entry) or 0.0
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
