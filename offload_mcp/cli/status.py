"""`offload-mcp status`: the same report as the `status` tool, as a table for people."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING

import anyio
import click

from offload_mcp.config import Paths, load_settings
from offload_mcp.errors import ConfigError

if TYPE_CHECKING:
    from offload_mcp.status import StatusReport


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--no-check", is_flag=True, help="Skip the reachability checks (no network).")
def status(as_json: bool, no_check: bool) -> None:
    """Which providers are usable, why not, and today's calls, tokens and cost.

    \b
    Example usage:
        offload-mcp status
        offload-mcp status --json --no-check
    """
    from offload_mcp import status as report_module
    from offload_mcp.dispatch import Dispatcher

    paths = Paths.discover()
    try:
        settings = load_settings(paths)
    except ConfigError as exc:
        click.echo(f"offload-mcp: {exc}", err=True)
        sys.exit(2)
    dispatcher = Dispatcher.for_paths(settings, paths)

    async def gather() -> report_module.StatusReport:
        try:
            return await report_module.collect(dispatcher, check_health=not no_check)
        finally:
            await dispatcher.aclose()

    report = anyio.run(gather)
    if as_json:
        click.echo(json.dumps(asdict(report), indent=2, default=_jsonable))
        return
    _print_table(report)


def _jsonable(value: object) -> object:
    """Pydantic models (cap limits) inside the report's dataclasses."""
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        return value.model_dump(exclude_none=True)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _print_table(report: StatusReport) -> None:
    from rich.console import Console
    from rich.table import Table

    from offload_mcp.status import window_text
    from offload_mcp.windows import describe_wait

    table = Table(title=f"offload-mcp providers (config: {report.config_source})")
    for column in ("provider", "model", "trust", "chains", "key", "state", "today", "month"):
        table.add_column(column)
    caps = Table(title="caps: used / limit per window (resets in local time)")
    caps.add_column("provider")
    caps.add_column("window")
    for row in report.providers:
        today = ""
        if row.today:
            tokens = row.today.input_tokens + row.today.output_tokens
            today = f"{row.today.ok}/{row.today.calls} ok, {tokens} tok, ${row.today.usd:.4f}"
            today += f", {row.today.cache_hits} cached" if row.today.cache_hits else ""
        state = "[red]unavailable[/red]" if row.problem else (row.reachable or "ready")
        if row.cooling_until:
            wait = describe_wait(row.cooling_until - report.now)
            state += f"\n[yellow]cooling {wait}[/yellow]: {row.cooling_reason}"
        table.add_row(
            row.name, row.model, row.trust, ",".join(row.chains), row.key, state, today,
            f"${row.month_usd:.4f}",
        )  # fmt: skip
        for use in row.windows:
            caps.add_row(row.name, window_text(use, report.now, with_reset=True))
    console = Console()
    console.print(table)
    if caps.row_count:
        console.print(caps)
    for row in report.providers:
        if row.problem:
            console.print(f"[red]•[/red] {row.problem}")
    if report.ledger_problem:
        console.print(f"[red]{report.ledger_problem}[/red]")
    if report.claude_window:
        console.print(report.claude_window)
    console.print(
        f"handled off-Claude: {report.tokens_today} tokens today, {report.tokens_month} this month"
    )
    if report.hidden:
        console.print(f"{report.hidden} more presets: offload-mcp config presets")
