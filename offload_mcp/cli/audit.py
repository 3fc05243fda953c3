"""`offload-mcp audit`: what Claude Code really spent, what an offload would really cost."""

from __future__ import annotations

import json
import time
from datetime import tzinfo
from pathlib import Path
from typing import Any

import click

from offload_mcp.cli.usage import parse_since


def _zone(name: str | None) -> tzinfo | None:
    if not name:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(f"{name!r} is not a known time zone (e.g. UTC)") from None


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--since", help="Only requests since: 7d, 12h, or a local date like 2026-11-01.")
@click.option("--project", help="Only projects whose path contains this text.")
@click.option("--timezone", "tz_name", help="Time zone for days (default: this machine's).")
@click.option("--json", "as_json", is_flag=True, help="Everything as one JSON object.")
@click.option("--project-offload", is_flag=True, help="Price offloading a share of requests.")
@click.option(
    "--target",
    default="glm",
    show_default=True,
    help="Offload target: glm, qwen, kimi, flash-lite, haiku, or IN,OUT USD per M tokens.",
)
@click.option(
    "--share",
    type=click.FloatRange(0, 1),
    help="Share of requests to offload (default: the offloadable-share estimate).",
)
@click.option(
    "--packet-tokens",
    type=click.IntRange(0),
    default=4000,
    show_default=True,
    help="Input tokens one one-shot packet carries.",
)
def audit(
    paths: tuple[Path, ...],
    since: str | None,
    project: str | None,
    tz_name: str | None,
    as_json: bool,
    project_offload: bool,
    target: str,
    share: float | None,
    packet_tokens: int,
) -> None:
    """Usage and API-price cost from Claude Code transcripts, budget windows, offload projection.

    Reads ~/.claude/projects (or CLAUDE_CONFIG_DIR, or the PATHS given), one entry per API
    request (streamed lines deduplicated as ccusage does).

    \b
    Example usage:
        offload-mcp audit
        offload-mcp audit --since 7d --project myrepo
        offload-mcp audit --project-offload --target qwen --share 0.3
        offload-mcp audit --project-offload --target 0.4,1.6 --json
    """
    from offload_mcp.audit.blocks import budget_windows
    from offload_mcp.audit.pricing import targets
    from offload_mcp.audit.projection import parse_target
    from offload_mcp.audit.projection import project as project_cost
    from offload_mcp.audit.run import run_audit
    from offload_mcp.audit.share import offloadable_share

    presets = targets()
    try:
        chosen = parse_target(target, presets)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--target") from None
    tz = _zone(tz_name)
    result = run_audit(
        list(paths), since=parse_since(since) if since else None, project=project, tz=tz
    )
    data: dict[str, Any] = {
        "read": result.stats.as_dict(),
        **result.report.as_dict(),
        "requests_per_session": _requests_per_session(result.report.by_session),
        "windows": budget_windows(result.entries, result.prices, time.time()).as_dict(),
        "offloadable": offloadable_share(result.entries),
    }
    if project_offload:
        chosen_share = data["offloadable"]["share"] if share is None else share
        data["projection"] = project_cost(
            result.report.total, chosen, chosen_share, packet_tokens
        ).as_dict()
        data["projection"]["share_source"] = "estimate" if share is None else "--share"
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        from offload_mcp.audit.view import show

        show(data, tz)


def _requests_per_session(by_session: dict[str, Any]) -> dict[str, float]:
    from offload_mcp.audit.report import percentile

    counts = sorted(tally.requests for tally in by_session.values())
    return {
        "sessions": len(counts),
        "median": percentile(counts, 50),
        "p90": percentile(counts, 90),
    }
