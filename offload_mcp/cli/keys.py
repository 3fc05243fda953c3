"""`offload-mcp keys`: store, list and delete provider API keys (values are never shown)."""

from __future__ import annotations

import sys

import click

from offload_mcp.config import Paths, Settings, load_settings
from offload_mcp.errors import ConfigError


def load_or_exit(paths: Paths) -> Settings:
    """Settings, or the config error on stderr and exit status 2 (no traceback)."""
    try:
        return load_settings(paths)
    except ConfigError as exc:
        click.echo(f"offload-mcp: {exc}", err=True)
        sys.exit(2)


def known_key_names(settings: Settings) -> dict[str, str | None]:
    """Key name -> its environment variable, for every configured provider."""
    names: dict[str, str | None] = {}
    for provider in settings.providers.values():
        if provider.needs_key or provider.key_env:
            names.setdefault(provider.key_name, provider.key_env)
    names.setdefault("http-token", "OFFLOAD_MCP_TOKEN")
    return names


@click.group()
def keys() -> None:
    """Provider API keys: OS keyring first, then a 0600 file, then the environment."""


@keys.command(name="set")
@click.argument("name")
def keys_set(name: str) -> None:
    """Store the key NAME (prompted, or read from standard input).

    \b
    Example usage:
        offload-mcp keys set groq
        echo "$OPENROUTER_API_KEY" | offload-mcp keys set openrouter
    """
    from offload_mcp.keys import KeyStore

    paths = Paths.discover()
    known = known_key_names(load_or_exit(paths))
    if name not in known:
        click.echo(
            f"Warning: no configured provider uses a key named {name!r}. "
            f"Known names: {', '.join(sorted(known))}.",
            err=True,
        )
    if sys.stdin.isatty():
        value = click.prompt(f"Key for {name}", hide_input=True)
    else:
        value = sys.stdin.read()
    value = value.strip()
    if not value:
        click.echo("offload-mcp: empty key; nothing stored.", err=True)
        sys.exit(2)
    where = KeyStore(paths.config_dir).set(name, value)
    click.echo(f"Stored the key {name!r} in {where}.")


@keys.command(name="list")
def keys_list() -> None:
    """Where each provider's key is found; never the key itself.

    \b
    Example usage:
        offload-mcp keys list
    """
    from rich.console import Console
    from rich.table import Table

    from offload_mcp.keys import KeyStore, keyring_backend_name

    paths = Paths.discover()
    store = KeyStore(paths.config_dir)
    names = known_key_names(load_or_exit(paths))
    for extra in store.file_names():
        names.setdefault(extra, None)
    table = Table(title=f"keys (keyring backend: {keyring_backend_name() or 'none'})")
    for column in ("name", "environment variable", "found in"):
        table.add_column(column)
    for name, env_var in sorted(names.items()):
        found = store.find(name, env_var)
        where = _source_text(found.source, env_var) if found else "[red]missing[/red]"
        table.add_row(name, env_var or "", where)
    Console().print(table)


def _source_text(source: str, env_var: str | None) -> str:
    return f"env {env_var}" if source == "env" else source


@keys.command(name="delete")
@click.argument("name")
def keys_delete(name: str) -> None:
    """Remove the stored key NAME from the keyring and the key file.

    An environment variable of the same provider is left alone (it is not ours to change).

    \b
    Example usage:
        offload-mcp keys delete groq
    """
    from offload_mcp.keys import KeyStore

    if KeyStore(Paths.discover().config_dir).delete(name):
        click.echo(f"Deleted the stored key {name!r}.")
        return
    click.echo(f"No stored key named {name!r}.", err=True)
    sys.exit(1)
