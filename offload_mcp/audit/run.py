"""The whole audit in one call: find files, read, dedupe, aggregate."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path

from offload_mcp.audit.dedupe import dedupe
from offload_mcp.audit.pricing import PriceTable
from offload_mcp.audit.reader import Entry, ReadStats, default_roots, find_files
from offload_mcp.audit.report import Report, build_report
from offload_mcp.audit.scan import read_all


@dataclass
class Audit:
    files: list[Path]
    stats: ReadStats
    entries: list[Entry]
    report: Report
    prices: PriceTable


def run_audit(
    paths: Sequence[Path] = (),
    *,
    since: float | None = None,
    project: str | None = None,
    tz: tzinfo | None = None,
    workers: int | None = None,
) -> Audit:
    """Audit the given files/directories, or Claude Code's own `projects/` folders.

    `workers` None reads big audits in several processes (see `scan`); 1 forces one.
    """
    files = find_files(paths or default_roots())
    stats = ReadStats()
    prices = PriceTable.load()
    with _no_cycle_collection():
        entries = dedupe(read_all(files, stats, since, project, workers))
        report = build_report(entries, prices, tz)
    return Audit(files, stats, entries, report, prices)


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Entries form no reference cycles: the collector would only rescan the growing lists
    over and over (a tenth of the time on big audits)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
