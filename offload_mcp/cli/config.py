"""`offload-mcp config`: what is in force, a starter file, where files live, the presets."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from offload_mcp.cli.keys import load_or_exit
from offload_mcp.config import STARTER_CONFIG, Paths, ProviderConfig, build_settings


@click.group()
def config() -> None:
    """Show and create the configuration."""


@config.command(name="show")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def config_show(as_json: bool) -> None:
    """The settings in force: limits, chains, and every provider (key values never shown).

    \b
    Example usage:
        offload-mcp config show
        offload-mcp config show --json
    """
    from offload_mcp.keys import KeyStore

    paths = Paths.discover()
    settings = load_or_exit(paths)
    store = KeyStore(paths.config_dir)
    providers: dict[str, dict[str, Any]] = {}
    for name, provider in settings.providers.items():
        found = store.find(provider.key_name, provider.key_env)
        entry = provider.model_dump(mode="json", exclude={"name"})
        entry["key_status"] = _key_status(provider, found.source if found else None)
        providers[name] = entry
    document = {
        "source": settings.source,
        "limits": settings.limits.model_dump(mode="json"),
        "cache": settings.cache.model_dump(mode="json"),
        "chains": settings.chains,
        "providers": providers,
    }
    if as_json:
        click.echo(json.dumps(document, indent=2))
        return
    _print(document)


def _key_status(provider: ProviderConfig, source: str | None) -> str:
    if source == "env":
        return f"env {provider.key_env}"
    if source:
        return source
    return "missing" if provider.needs_key else "not needed"


def _print(document: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]config:[/bold] {document['source']}")
    console.print(f"[bold]limits:[/bold] {document['limits']}")
    console.print(f"[bold]cache:[/bold] {document['cache']}")
    for tool, chain in document["chains"].items():
        console.print(f"[bold]chain {tool}:[/bold] {' -> '.join(chain)}")
    table = Table(title="providers")
    for column in ("name", "model", "base_url", "trust", "key", "prices $/M in/out", "caps"):
        table.add_column(column)
    for name, p in document["providers"].items():
        prices = p["prices"]
        caps = ", ".join(
            f"{window}: " + " ".join(f"{v} {k}" for k, v in limit.items() if v is not None)
            for window, limit in p["caps"].items()
        )
        table.add_row(
            name,
            p["model"],
            p["base_url"],
            p["trust"],
            p["key_status"],
            f"{prices['input']:g} / {prices['output']:g}",
            caps,
        )
    console.print(table)


@config.command(name="init")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def config_init(force: bool) -> None:
    """Write a commented starter config.toml.

    \b
    Example usage:
        offload-mcp config init
    """
    path = Paths.discover().config_file
    if path.exists() and not force:
        click.echo(f"offload-mcp: {path} exists; use --force to overwrite it.", err=True)
        sys.exit(1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(STARTER_CONFIG, encoding="utf-8")
    click.echo(f"Wrote {path}")


@config.command(name="path")
def config_path() -> None:
    """Where the config file, the ledger and the log file live."""
    paths = Paths.discover()
    click.echo(f"config: {paths.config_file}")
    click.echo(f"ledger: {paths.ledger_file}")
    click.echo(f"log:    {paths.log_file}")


@config.command(name="presets")
def config_presets() -> None:
    """The built-in provider presets: model, trust, and whether they cost money."""
    for name, provider in build_settings({}).providers.items():
        cost = "paid" if provider.is_paid else "free"
        click.echo(f"{name:24} {provider.trust:9} {cost:4}  {provider.model}")
