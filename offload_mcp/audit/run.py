"""The whole audit in one call: find files, read, dedupe, aggregate."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path

from offload_mcp.audit.dedupe import dedupe
from offload_mcp.audit.pricing import PriceTable
from offload_mcp.audit.reader import (
    Entry,
    ReadStats,
    default_roots,
    find_files,
    read_file,
    session_and_dir,
)
from offload_mcp.audit.report import Report, build_report


@dataclass
class Audit:
    files: list[Path]
    stats: ReadStats
    entries: list[Entry]
    report: Report
    prices: PriceTable


def _entries(
    files: Sequence[Path], stats: ReadStats, since: float | None, project: str | None
) -> Iterator[Entry]:
    needle = project.lower() if project else None
    for path in files:
        in_dir = needle is not None and needle in session_and_dir(path)[1].lower()
        for entry in read_file(path, stats, since):
            if needle is None or in_dir or needle in entry.project.lower():
                yield entry


def run_audit(
    paths: Sequence[Path] = (),
    *,
    since: float | None = None,
    project: str | None = None,
    tz: tzinfo | None = None,
) -> Audit:
    """Audit the given files/directories, or Claude Code's own `projects/` folders."""
    files = find_files(paths or default_roots())
    stats = ReadStats()
    prices = PriceTable.load()
    entries = dedupe(_entries(files, stats, since, project))
    return Audit(files, stats, entries, build_report(entries, prices, tz), prices)
