"""What `status` reports: per provider, whether it can be used now, why not, and its use.

Shared by the `status` tool (a few short lines: Claude pays for every token) and the CLI
(rich tables). Days and months here are the machine's local ones; caps use each provider's
own reset zone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

import anyio

from offload_mcp import quota
from offload_mcp.config import ProviderConfig, Settings
from offload_mcp.delegate.pool import Pool
from offload_mcp.delegate.pool import describe as describe_pool
from offload_mcp.dispatch import Dispatcher
from offload_mcp.ledger import ProviderTotals, WindowUse
from offload_mcp.windows import describe_reset, describe_wait

log = logging.getLogger(__name__)

#: how long status waits for a look at the Claude window before answering without one
WINDOW_WAIT_S = 2.0


@dataclass(frozen=True)
class ProviderStatus:
    name: str
    model: str
    trust: str
    chains: tuple[str, ...]
    key: str
    problem: str | None
    reachable: str | None
    today: ProviderTotals | None
    month_usd: float
    windows: list[WindowUse] = field(default_factory=list)
    cooling_until: float | None = None
    cooling_reason: str = ""
    #: the health check's verdict (None when not checked)
    healthy: bool | None = None


@dataclass(frozen=True)
class StatusReport:
    config_source: str
    providers: list[ProviderStatus]
    hidden: int
    now: float
    tokens_today: int = 0
    tokens_month: int = 0
    ledger_problem: str | None = None
    #: the Claude budget window (offload_mcp.audit.window); empty without transcripts
    claude_window: str = ""
    #: delegate_to_codex's worktree pool (offload_mcp.delegate.pool.describe); empty without
    #: a delegate chain
    worktree_pool: str = ""


def _local_midnight(now: float, *, month: bool = False) -> float:
    local = datetime.fromtimestamp(now).astimezone()
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return (start.replace(day=1) if month else start).timestamp()


async def collect(
    dispatcher: Dispatcher, *, check_health: bool = True, pool: Pool | None = None
) -> StatusReport:
    """Providers in a chain, with a key, or used this month; health checks run concurrently.
    With `pool`, a line on delegate_to_codex's worktrees (no git: a few directory reads)."""
    settings = dispatcher.settings
    ledger = dispatcher.ledger
    now = dispatcher.clock()
    ledger_problem = None
    try:
        today = await dispatcher.ledger_call(ledger.totals_since, _local_midnight(now))
        month = await dispatcher.ledger_call(ledger.totals_since, _local_midnight(now, month=True))
        cooling = await dispatcher.ledger_call(ledger.cooldowns)
    except Exception as exc:  # a broken ledger must not break status: report it instead
        today, month, cooling = {}, {}, {}
        ledger_problem = f"ledger unusable: {exc}"
    rows: list[ProviderStatus] = []

    async def one(provider: ProviderConfig) -> None:
        found, problem = await dispatcher.availability(provider)
        chains = tuple(tool for tool, names in settings.chains.items() if provider.name in names)
        if not (chains or found or provider.name in month):
            return
        windows: list[WindowUse] = []
        if ledger_problem is None and provider.caps:
            windows = await dispatcher.ledger_call(
                ledger.window_use, provider.name, quota.cap_windows(provider, now)
            )
        reachable, healthy = None, None
        if problem is None and check_health:
            key = found.value if found else None
            health = await dispatcher.health(provider, key)
            reachable, healthy = health.detail, health.ok
        until, reason = cooling.get(provider.name, (None, ""))
        rows.append(
            ProviderStatus(
                name=provider.name,
                model=provider.model,
                trust=provider.trust,
                chains=chains,
                key=_key_text(provider, found.source if found else None),
                problem=problem,
                reachable=reachable,
                today=today.get(provider.name),
                month_usd=month[provider.name].usd if provider.name in month else 0.0,
                windows=windows,
                cooling_until=until,
                cooling_reason=reason,
                healthy=healthy,
            )
        )

    claude: list[str] = []

    async def claude_window() -> None:  # a thread: the first read of transcripts may take a while
        watch, threshold = dispatcher.claude_window(), settings.limits.hot_window_percentile
        claude.append(await anyio.to_thread.run_sync(watch.status_line, threshold, WINDOW_WAIT_S))

    async with anyio.create_task_group() as group:
        group.start_soon(claude_window)
        for provider in settings.providers.values():
            group.start_soon(one, provider)
    order = list(settings.providers)
    rows.sort(key=lambda row: _chain_position(settings, row.name, order))
    return StatusReport(
        config_source=settings.source,
        providers=rows,
        hidden=len(settings.providers) - len(rows),
        now=now,
        tokens_today=sum(t.input_tokens + t.output_tokens for t in today.values()),
        tokens_month=sum(t.input_tokens + t.output_tokens for t in month.values()),
        ledger_problem=ledger_problem,
        claude_window=claude[0] if claude else "",
        worktree_pool=describe_pool(pool) if pool and settings.chains.get("delegate") else "",
    )


def _chain_position(settings: Settings, name: str, order: list[str]) -> tuple[int, int]:
    chain = settings.chains.get("offload", [])
    return (chain.index(name) if name in chain else len(chain), order.index(name))


def _key_text(provider: ProviderConfig, source: str | None) -> str:
    if source == "env":
        return f"env {provider.key_env}"
    if source:
        return source
    return "missing" if provider.needs_key else "not needed"


def window_text(use: WindowUse, now: float, *, with_reset: bool) -> str:
    """'day 3/1000 req, 1200/100000 tok (resets at 00:00 UTC (in 3h12m))'."""
    parts = []
    limit = use.limit
    if limit.requests is not None:
        parts.append(f"{use.requests}/{limit.requests} req")
    if limit.tokens is not None:
        parts.append(f"{use.tokens}/{limit.tokens} tok")
    if limit.usd is not None:
        parts.append(f"${use.usd:.2f}/${limit.usd:.2f}")
    reset = ""
    if with_reset:
        reset = f" (resets {describe_reset(use.reset, now)})" if use.reset else " (rolling)"
    return f"{use.window} {', '.join(parts)}{reset}"


def _nearly_full(use: WindowUse) -> bool:
    pairs = (
        (use.requests, use.limit.requests),
        (use.tokens, use.limit.tokens),
        (use.usd, use.limit.usd),
    )
    return any(cap is not None and used >= 0.8 * cap for used, cap in pairs)


def short_text(report: StatusReport) -> str:
    """A few lines for Claude: one per provider, problems spelled out with their fix."""
    lines = [f"config: {report.config_source}"]
    if report.ledger_problem:
        lines.append(report.ledger_problem)
    for row in report.providers:
        chain = f" [{','.join(row.chains)}]" if row.chains else ""
        if row.problem:
            # The model does not matter while the provider cannot be used; the fix does.
            problem = row.problem.removeprefix(f"{row.name}: ")
            lines.append(f"- {row.name}{chain} ({row.trust}): {problem}")
            continue
        head = f"{row.name}{chain} {row.model} ({row.trust})"
        details = [row.reachable or "ready"]
        if row.key != "not needed":
            details.append(f"key {row.key}")
        if row.cooling_until:
            wait = describe_wait(row.cooling_until - report.now)
            details.append(f"cooling down {wait} ({row.cooling_reason})")
        if row.today:
            tokens = row.today.input_tokens + row.today.output_tokens
            today = f"today {row.today.ok}/{row.today.calls} ok, {tokens} tok"
            today += f", {row.today.cache_hits} cached" if row.today.cache_hits else ""
            details.append(today)
        if row.month_usd:
            details.append(f"month ${row.month_usd:.4f}")
        details += [
            window_text(use, report.now, with_reset=_nearly_full(use))
            for use in row.windows
            if use.requests or _nearly_full(use)
        ]
        lines.append(f"- {head}: {'; '.join(details)}")
    if not any(row.problem is None for row in report.providers):
        lines.append("No provider is usable yet: store a key with 'offload-mcp keys set NAME'.")
    lines += [
        line for line in (research_line(report), report.worktree_pool, report.claude_window) if line
    ]
    lines.append(
        f"handled off-Claude: {report.tokens_today} tokens today, {report.tokens_month} this month"
    )
    if report.hidden:
        lines.append(f"({report.hidden} more presets: 'offload-mcp config presets')")
    return "\n".join(lines)


RESEARCH_FIX = (
    "set GEMINI_API_KEY (or 'offload-mcp keys set gemini'), or install the Gemini CLI "
    "(npm install -g @google/gemini-cli) and run `gemini` once to log in"
)


def research_line(report: StatusReport) -> str:
    """Which provider `gemini_research` would use now (API key or logged-in CLI) and its quota,
    or what to set or run when none can."""
    chain = [row for row in report.providers if "research" in row.chains]
    if not chain:
        return ""
    for row in chain:
        if row.problem or row.healthy is False:
            continue
        if row.cooling_until and row.cooling_until > report.now:
            continue
        keyless = row.key in ("missing", "not needed")
        how = (row.reachable or "logged-in CLI") if keyless else f"key {row.key}"
        quota = ", ".join(window_text(use, report.now, with_reset=False) for use in row.windows)
        return f"gemini_research: via {row.name} ({how})" + (f"; quota {quota}" if quota else "")
    why = "; ".join(f"{row.name}: {_unusable_because(row)[:120]}" for row in chain)
    return f"gemini_research: unusable ({why}). Fix: {RESEARCH_FIX}."


def _unusable_because(row: ProviderStatus) -> str:
    if row.problem:
        return row.problem.removeprefix(f"{row.name}: ")
    if row.healthy is False:
        return row.reachable or ""
    return "cooling down"
