"""`offload-mcp config`: what is in force, a starter file, where files live, the presets."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import click

from offload_mcp.cli.keys import console, key_status, load_or_exit
from offload_mcp.config import (
    STARTER_CONFIG,
    Paths,
    ProviderConfig,
    Settings,
    build_settings,
    load_presets,
    missing_env_refs,
)

# Header values that may carry a credential are shown as this, never as themselves.
HIDDEN = "<hidden>"
_SECRET_HEADER = re.compile(r"auth|key|token|secret|cookie|session|password", re.IGNORECASE)


@click.group(invoke_without_command=True)
@click.pass_context
def config(ctx: click.Context) -> None:
    """Show and create the configuration. With no command, show it.

    \b
    Example usage:
        offload-mcp config init
        offload-mcp config show
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(config_show)


@config.command(name="show")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def config_show(as_json: bool) -> None:
    """The settings in force: source file, limits, chains and every provider.

    Each provider shows where its key is found (keyring, file, env VAR) or that it is
    missing; key values are never shown.

    \b
    Example usage:
        offload-mcp config show
        offload-mcp config show --json | jq '.providers.groq'
    """
    paths = Paths.discover()
    document = describe(load_or_exit(paths), paths)
    if as_json:
        click.echo(json.dumps(document, indent=2))
        return
    _print(document)


def describe(settings: Settings, paths: Paths) -> dict[str, Any]:
    """The settings as plain data, with each provider's key status instead of any key."""
    from offload_mcp.keys import KeyStore, keyring_backend_name

    store = KeyStore(paths.config_dir)
    providers: dict[str, dict[str, Any]] = {}
    for name, provider in settings.providers.items():
        found = store.find(provider.key_name, provider.key_env)
        entry = provider.model_dump(mode="json", exclude={"name"})
        entry["headers"] = _safe_headers(provider.headers)
        entry["key_name"] = provider.key_name
        entry["key_status"] = key_status(found, provider.key_env, provider.needs_key)
        entry["missing_env"] = missing_env_refs(provider.base_url)
        entry["chains"] = [tool for tool, names in settings.chains.items() if name in names]
        providers[name] = entry
    return {
        "source": settings.source,
        "config_file": str(paths.config_file),
        "key_file": str(store.file),
        "keyring": keyring_backend_name(),
        "limits": settings.limits.model_dump(mode="json"),
        "cache": settings.cache.model_dump(mode="json"),
        "local": settings.local.model_dump(mode="json"),
        "chains": settings.chains,
        "providers": providers,
    }


def _safe_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: HIDDEN if _SECRET_HEADER.search(k) else v for k, v in headers.items()}


def _print(document: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console()
    source = document["source"]
    if source != document["config_file"]:
        source = f"{source} (no {document['config_file']})"
    out.print(f"[bold]config[/bold]  {escape(source)}")
    keyring = document["keyring"] or "none, so keys go to the file"
    out.print(f"[bold]keys[/bold]    OS keyring: {keyring}; file: {escape(document['key_file'])}")
    for section in ("limits", "cache", "local"):
        values = " ".join(f"{k}={json.dumps(v)}" for k, v in document[section].items())
        out.print(f"[bold]{section:7}[/bold] {escape(values)}")
    out.print("[bold]chains[/bold]")
    for tool, chain in document["chains"].items():
        out.print(f"  {tool:16} {escape(' -> '.join(chain) or '(empty)')}")

    table = Table(title="providers (prices: USD per million tokens, input / cached / output)")
    for column in ("provider", "kind", "model / base_url", "trust", "key", "prices", "caps"):
        table.add_column(column, overflow="fold")
    for name, p in document["providers"].items():
        label = name if p["enabled"] else f"{name}\n(disabled)"
        where = f"{p['model']}\n{p['base_url']}"
        if p["missing_env"]:
            where += "\nneeds " + ", ".join(p["missing_env"])
        table.add_row(
            escape(label),
            p["kind"],
            escape(where),
            p["trust"],
            escape(_key_text(name, p)),
            _prices_text(p["prices"]),
            escape(_caps_text(p["caps"])),
        )
    out.print(table)
    if any(p["key_status"] == "missing" for p in document["providers"].values()):
        out.print("A key is missing: 'offload-mcp keys list' says how to add each one.")


def _key_text(name: str, provider: dict[str, Any]) -> str:
    status: str = provider["key_status"]
    key_name: str = provider["key_name"]
    return status if key_name == name else f"{key_name}: {status}"


def _prices_text(prices: dict[str, float | None]) -> str:
    given, cached, output = prices["input"] or 0.0, prices["cached_input"], prices["output"] or 0.0
    if not given and not output:
        return "free"
    return f"{given:g} / {given if cached is None else cached:g} / {output:g}"


def _caps_text(caps: dict[str, dict[str, float | None]]) -> str:
    units = {"requests": "req", "tokens": "tok", "usd": "USD"}
    lines = []
    for window, limit in caps.items():
        parts = [
            f"{value:g} USD" if what == "usd" else f"{int(value)} {units[what]}"
            for what, value in limit.items()
            if value is not None
        ]
        lines.append(f"{window}: {', '.join(parts)}")
    return "\n".join(lines) or "none"


@config.command(name="init")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def config_init(force: bool) -> None:
    """Write a commented starter config.toml (refuses to overwrite one without --force).

    \b
    Example usage:
        offload-mcp config init
        offload-mcp config init --force
    """
    path = Paths.discover().config_file
    if path.exists() and not force:
        click.echo(f"offload-mcp: {path} exists; use --force to overwrite it.", err=True)
        sys.exit(1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(STARTER_CONFIG, encoding="utf-8")
    click.echo(f"Wrote {path}")
    click.echo("Next: 'offload-mcp keys set groq', then 'offload-mcp config show'.")


@config.command(name="path")
def config_path() -> None:
    """Where the config file, the key file, the ledger and the log file live.

    OFFLOAD_MCP_HOME moves them all to one directory.

    \b
    Example usage:
        offload-mcp config path
    """
    paths = Paths.discover()
    click.echo(f"config: {paths.config_file}")
    click.echo(f"keys:   {paths.config_dir / 'keys.json'} (only without an OS keyring)")
    click.echo(f"ledger: {paths.ledger_file}")
    click.echo(f"log:    {paths.log_file}")


@config.command(name="presets")
def config_presets() -> None:
    """The built-in provider presets, one a line: name, model, trust, free or paid.

    Use one by its name as a [providers.NAME] table, or as `preset = "NAME"` in your own.

    \b
    Example usage:
        offload-mcp config presets
    """
    providers = list(build_settings({}).providers.values())
    name_width = max(len(p.name) for p in providers)
    model_width = max(len(p.model) for p in providers)
    for provider in providers:
        click.echo(
            f"{provider.name:{name_width}}  {provider.model:{model_width}}  "
            f"{provider.trust:9}  {_cost(provider)}".rstrip()
        )
    bases = [name for name, entry in load_presets().items() if entry.get("abstract")]
    click.echo(f'\nBases, usable only as `preset = "NAME"`: {", ".join(bases)}')


def _cost(provider: ProviderConfig) -> str:
    if not provider.is_paid:
        return "free"
    prices = provider.prices
    return f"paid (${prices.input:g} in / ${prices.output:g} out per M tokens)"
