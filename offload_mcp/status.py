"""What `status` reports: per provider, whether it can be used, why not, and today's use."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio

from offload_mcp.config import ProviderConfig, Settings
from offload_mcp.dispatch import Dispatcher
from offload_mcp.ledger import ProviderTotals, start_of_day

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class StatusReport:
    config_source: str
    providers: list[ProviderStatus]
    hidden: int
    ledger_problem: str | None = None


async def collect(dispatcher: Dispatcher, *, check_health: bool = True) -> StatusReport:
    """Providers in a chain, with a key, or used today; health checks run concurrently."""
    settings = dispatcher.settings
    today, ledger_problem = await _today(dispatcher)
    rows: list[ProviderStatus] = []

    async def one(provider: ProviderConfig) -> None:
        key, problem = await dispatcher.availability(provider)
        found = await anyio.to_thread.run_sync(
            dispatcher.keys.find, provider.key_name, provider.key_env
        )
        chains = tuple(tool for tool, names in settings.chains.items() if provider.name in names)
        if not (chains or found or provider.name in today):
            return
        reachable = None
        if problem is None and check_health:
            health = await dispatcher.health(provider, key)
            reachable = health.detail
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
            )
        )

    async with anyio.create_task_group() as group:
        for provider in settings.providers.values():
            group.start_soon(one, provider)
    order = list(settings.providers)
    rows.sort(key=lambda row: _chain_position(settings, row.name, order))
    return StatusReport(
        config_source=settings.source,
        providers=rows,
        hidden=len(settings.providers) - len(rows),
        ledger_problem=ledger_problem,
    )


def _chain_position(settings: Settings, name: str, order: list[str]) -> tuple[int, int]:
    chain = settings.chains.get("offload", [])
    return (chain.index(name) if name in chain else len(chain), order.index(name))


async def _today(dispatcher: Dispatcher) -> tuple[dict[str, ProviderTotals], str | None]:
    if dispatcher.ledger is None:
        return {}, None
    since = start_of_day(datetime.now(UTC))
    try:
        return await anyio.to_thread.run_sync(dispatcher.ledger.totals_since, since), None
    except Exception as exc:  # a broken ledger must not break status: report it instead
        log.error("ledger read failed: %s", exc)
        return {}, f"ledger unreadable: {exc}"


def _key_text(provider: ProviderConfig, source: str | None) -> str:
    if source == "env":
        return f"env {provider.key_env}"
    if source:
        return source
    return "missing" if provider.needs_key else "not needed"


def short_text(report: StatusReport) -> str:
    """A few lines for Claude: one per provider, problems spelled out with their fix."""
    lines = [f"config: {report.config_source}"]
    if report.ledger_problem:
        lines.append(report.ledger_problem)
    for row in report.providers:
        chain = f" [{','.join(row.chains)}]" if row.chains else ""
        head = f"{row.name}{chain} {row.model} ({row.trust})"
        if row.problem:
            lines.append(f"- {head}: unavailable: {row.problem}")
            continue
        state = row.reachable or "ready"
        used = ""
        if row.today:
            tokens = row.today.input_tokens + row.today.output_tokens
            used = f"; today {row.today.ok}/{row.today.calls} ok, {tokens} tok"
            used += f", ${row.today.usd:.4f}" if row.today.usd else ""
        lines.append(f"- {head}: {state}, key {row.key}{used}")
    if not any(row.problem is None for row in report.providers):
        lines.append("No provider is usable yet: store a key with 'offload-mcp keys set NAME'.")
    if report.hidden:
        lines.append(f"({report.hidden} more presets: 'offload-mcp config presets')")
    return "\n".join(lines)
