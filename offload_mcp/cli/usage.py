"""`offload-mcp usage`: what the ledger recorded, grouped the way you ask."""

from __future__ import annotations

import csv
import json
import re
import sys
import time
from datetime import datetime

import click

from offload_mcp.config import Paths

GROUPS = ("day", "provider", "tool", "model")


def parse_since(value: str, now: float | None = None) -> float:
    """`7d`, `12h`, `30m` ago, or a local date/time like `2026-11-01` or `2026-11-01T09:00`."""
    now = time.time() if now is None else now
    relative = re.fullmatch(r"(\d+(?:\.\d+)?)([dhm])", value.strip())
    if relative:
        amount, unit = float(relative.group(1)), relative.group(2)
        return now - amount * {"d": 86400, "h": 3600, "m": 60}[unit]
    try:
        return datetime.fromisoformat(value.strip()).astimezone().timestamp()
    except ValueError:
        raise click.BadParameter(f"{value!r}: use 7d, 12h, 30m or a date like 2026-11-01") from None


@click.command()
@click.option("--since", default="30d", show_default=True, help="7d, 12h, or a local date.")
@click.option(
    "--by",
    "group_by",
    type=click.Choice(GROUPS),
    multiple=True,
    help="Group rows by these (repeatable; default: day and provider).",
)
@click.option("--json", "as_json", is_flag=True, help="JSON rows.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV rows.")
def usage(since: str, group_by: tuple[str, ...], as_json: bool, as_csv: bool) -> None:
    """Calls, tokens and cost from the ledger, by day, provider, tool or model.

    \b
    Example usage:
        offload-mcp usage
        offload-mcp usage --since 7d --by provider --by model
        offload-mcp usage --since 2026-11-01 --csv > usage.csv
    """
    from offload_mcp.ledger import Ledger

    since_ts = parse_since(since)
    groups = list(dict.fromkeys(group_by)) or ["day", "provider"]
    ledger = Ledger(Paths.discover().ledger_file)
    try:
        rows = ledger.usage(since_ts, groups)
    finally:
        ledger.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif as_csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=[*groups, *_METRICS])
        writer.writeheader()
        writer.writerows(rows)
    else:
        _print_table(rows, groups)


_METRICS = (
    "calls",
    "ok",
    "cache_hits",
    "input_tokens",
    "cached_tokens",
    "output_tokens",
    "usd",
)


def _print_table(rows: list[dict[str, object]], groups: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="offload-mcp usage")
    for column in (*groups, *_METRICS):
        table.add_column(column, justify="left" if column in groups else "right")
    for row in rows:
        table.add_row(*(_cell(row[column]) for column in (*groups, *_METRICS)))
    if rows:
        totals = {m: sum(_number(r[m]) for r in rows) for m in _METRICS}
        table.add_row(
            "total",
            *([""] * (len(groups) - 1)),
            *(_cell(totals[m]) for m in _METRICS),
            style="bold",
        )
    Console().print(table)
    if not rows:
        click.echo("No calls recorded in that period.")


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if not value.is_integer() else f"{int(value)}"
    return "" if value is None else str(value)
