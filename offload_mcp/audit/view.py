"""Rich tables for `offload-mcp audit` (the JSON dict in, text out)."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from rich.console import Console
from rich.table import Table

COLUMNS = ("requests", "input", "cache_5m", "cache_1h", "cache_read", "output", "usd")
TOP_SESSIONS = 10


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _table(title: str, key: str, rows: dict[str, dict[str, Any]], total: dict[str, Any]) -> Table:
    table = Table(title=title)
    table.add_column(key)
    for column in COLUMNS:
        table.add_column(column if column != "usd" else "USD (API)", justify="right")
    for name, row in rows.items():
        table.add_row(name, *(_num(row[c]) for c in COLUMNS))
    if len(rows) > 1:
        table.add_row("total", *(_num(total[c]) for c in COLUMNS), style="bold")
    return table


def _when(ts: float, tz: tzinfo | None) -> str:
    return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M")


def show(data: dict[str, Any], tz: tzinfo | None, console: Console | None = None) -> None:
    console = console or Console()
    total = data["totals"]
    read = data["read"]
    if not total["requests"]:
        console.print(f"No Claude Code usage found ({read['files']} files read).")
        return
    console.print(_table("By model", "model", data["by_model"], total))
    console.print(_table("By day", "day", data["by_day"], total))
    sessions = sorted(data["by_session"].items(), key=lambda kv: -kv[1]["usd"])
    top = dict(sessions[:TOP_SESSIONS])
    console.print(_table(f"Top {len(top)} of {len(sessions)} sessions", "session", top, total))
    console.print(_table("By project", "project", data["by_project"], total))
    ctx, rps = data["context_tokens"], data["requests_per_session"]
    console.print(
        f"Context per request: median {ctx['median']:,.0f}, p90 {ctx['p90']:,.0f} tokens; "
        f"cache reads are {data['cache_read_share']:.1%} of input. "
        f"Requests per session: median {rps['median']:.0f}, p90 {rps['p90']:.0f}."
    )
    skipped = (
        read["malformed_lines"] + read["truncated_files"] + sum(read["unknown_types"].values())
    )
    console.print(
        f"Read {read['files']} files, {read['lines']:,} lines; skipped {skipped} "
        f"(malformed {read['malformed_lines']}, truncated files {read['truncated_files']}, "
        f"unknown types {read['unknown_types'] or 0}, synthetic {read['synthetic_lines']})."
    )
    if data["unpriced_models"]:
        console.print(f"[yellow]No price for: {', '.join(data['unpriced_models'])} (counted $0)")
    _windows(data["windows"], tz, console)
    share = data["offloadable"]
    console.print(
        f"Offloadable share (estimate): {share['share']:.0%} of {share['requests']} requests "
        f"{share['by_kind']}.\n  Heuristic: {share['heuristic']}"
    )
    if "projection" in data:
        _projection(data["projection"], console)


def _windows(windows: dict[str, Any], tz: tzinfo | None, console: Console) -> None:
    active = windows["active_block"]
    if active:
        pct = active["projected_percentile"]
        rate = (
            f"burn ${active['usd_per_hour']:.2f}/h; "
            f"projected ${active['projected_usd']:.2f} by {_when(active['end'], tz)}"
            if active["usd_per_hour"] is not None
            else f"no burn rate yet (one instant); ends {_when(active['end'], tz)}"
        )
        console.print(
            f"Active 5-hour block since {_when(active['start'], tz)}: "
            f"{active['tokens']:,} tokens, ${active['usd']:.2f}; {rate}"
            + (f" ({pct:.0f}th percentile of your past blocks)." if pct is not None else ".")
        )
    else:
        console.print(
            f"No active 5-hour block; {windows['blocks']} past blocks, median "
            f"${windows['block_usd_p50']:.2f}, p90 ${windows['block_usd_p90']:.2f}."
        )
    week = windows["week"]
    pct = week["percentile"]
    console.print(
        f"Last 7 days: {week['tokens']:,.0f} tokens, ${week['usd']:.2f}"
        + (f" ({pct:.0f}th percentile of your past weeks)." if pct is not None else ".")
    )


def _projection(p: dict[str, Any], console: Console) -> None:
    table = Table(title=f"Offload {p['share']:.0%} of requests to {p['target_label']}")
    table.add_column("way of counting")
    table.add_column("USD", justify="right")
    table.add_row("Claude at API prices (these requests)", f"{p['claude_usd']:.2f}")
    table.add_row("naive: fresh input only", f"{p['naive_usd']:.2f}")
    table.add_row("real: whole context re-billed every turn", f"{p['real_usd']:.2f}")
    table.add_row(
        f"one-shot packets ({p['packet_tokens']:,} input tokens each)", f"{p['packet_usd']:.2f}"
    )
    console.print(table)
    ratio = p["real_over_naive"]
    console.print(
        f"Cache reads are {p['cache_read_share']:.1%} of the context: the real cost is "
        + (f"{ratio:.1f}x the naive one." if ratio else "not comparable.")
        + f"\n  Heuristic: {p['heuristic']}."
    )
