"""Deduplicated entries -> usage and API-price cost by model, day, session and project."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from offload_mcp.audit.pricing import PriceTable
from offload_mcp.audit.reader import Entry


@dataclass
class Tally:
    """Token counts and API-price cost of a group of requests."""

    requests: int = 0
    input: int = 0
    cache_5m: int = 0
    cache_1h: int = 0
    cache_read: int = 0
    output: int = 0
    usd: float = 0.0

    def add(self, entry: Entry, usd: float) -> None:
        self.requests += 1
        self.input += entry.input
        self.cache_5m += entry.cache_5m
        self.cache_1h += entry.cache_1h
        self.cache_read += entry.cache_read
        self.output += entry.output
        self.usd += usd

    def merge(self, other: Tally) -> None:
        self.requests += other.requests
        self.input += other.input
        self.cache_5m += other.cache_5m
        self.cache_1h += other.cache_1h
        self.cache_read += other.cache_read
        self.output += other.output
        self.usd += other.usd

    @property
    def cache_write(self) -> int:
        return self.cache_5m + self.cache_1h

    @property
    def context(self) -> int:
        return self.input + self.cache_write + self.cache_read

    @property
    def total(self) -> int:
        return self.context + self.output

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "cache_write": self.cache_write, "total_tokens": self.total}


def percentile(sorted_values: list[int] | list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of an ascending list; 0 for an empty one."""
    if not sorted_values:
        return 0.0
    rank = (len(sorted_values) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return float(sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low))


@dataclass
class Report:
    total: Tally = field(default_factory=Tally)
    by_model: dict[str, Tally] = field(default_factory=dict)
    by_day: dict[str, Tally] = field(default_factory=dict)
    by_session: dict[str, Tally] = field(default_factory=dict)
    by_project: dict[str, Tally] = field(default_factory=dict)
    session_project: dict[str, str] = field(default_factory=dict)
    contexts: list[int] = field(default_factory=list)
    unpriced: set[str] = field(default_factory=set)

    @property
    def cache_read_share(self) -> float:
        context = self.total.context
        return self.total.cache_read / context if context else 0.0

    def context_stats(self) -> dict[str, float]:
        values = sorted(self.contexts)
        return {"median": percentile(values, 50), "p90": percentile(values, 90)}

    def as_dict(self) -> dict[str, Any]:
        def table(groups: dict[str, Tally]) -> dict[str, dict[str, Any]]:
            return {name: tally.as_dict() for name, tally in sorted(groups.items())}

        sessions = table(self.by_session)
        for name, row in sessions.items():
            row["project"] = self.session_project.get(name, "")
        return {
            "totals": self.total.as_dict(),
            "cache_read_share": self.cache_read_share,
            "context_tokens": self.context_stats(),
            "by_model": table(self.by_model),
            "by_day": table(self.by_day),
            "by_session": sessions,
            "by_project": table(self.by_project),
            "unpriced_models": sorted(self.unpriced),
        }


def model_name(entry: Entry) -> str:
    return f"{entry.model}-fast" if entry.fast else entry.model


def build_report(entries: Iterable[Entry], prices: PriceTable, tz: tzinfo | None) -> Report:
    """Aggregate entries; days are dates in `tz` (None: the machine's local zone).

    Each entry is added once, to the tally of its (model, day, session, project); those few
    tallies are then rolled up into the four tables and the total.
    """
    report = Report()
    combos: dict[tuple[str, str, str, str], Tally] = {}
    days: dict[int, str] = {}  # by quarter hour: every zone's offset is a multiple of 15 min
    contexts = report.contexts
    for entry in entries:
        usd = prices.cost(entry)
        if usd is None:
            if entry.total:
                report.unpriced.add(entry.model)
            usd = 0.0
        quarter = int(entry.timestamp // 900)
        day = days.get(quarter)
        if day is None:
            day = days[quarter] = datetime.fromtimestamp(entry.timestamp, tz).date().isoformat()
        key = (model_name(entry), day, entry.session, entry.project)
        tally = combos.get(key)
        if tally is None:
            tally = combos[key] = Tally()
        tally.add(entry, usd)
        contexts.append(entry.context)
    for (model, day, session, project), tally in combos.items():
        report.total.merge(tally)
        for group, name in (
            (report.by_model, model),
            (report.by_day, day),
            (report.by_session, session),
            (report.by_project, project),
        ):
            target = group.get(name)
            if target is None:
                target = group[name] = Tally()
            target.merge(tally)
        report.session_project.setdefault(session, project)
    return report
