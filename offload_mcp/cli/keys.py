"""`offload-mcp keys`: store, list and delete provider API keys (values are never shown)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn

import click

from offload_mcp.cli.serve import TOKEN_ENV, TOKEN_KEY
from offload_mcp.config import Paths, Settings, load_settings
from offload_mcp.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console

    from offload_mcp.keys import FoundKey


def load_or_exit(paths: Paths) -> Settings:
    """Settings, or the config error on stderr and exit status 2 (no traceback)."""
    try:
        return load_settings(paths)
    except ConfigError as exc:
        click.echo(f"offload-mcp: {exc}", err=True)
        sys.exit(2)


def console() -> Console:
    """A rich console; piped output is for grep and files, so it is not wrapped at 80 columns."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=200)


@dataclass
class KeyUse:
    """Who uses one key name: its environment variable and the providers that read it."""

    env_var: str | None = None
    providers: list[str] = field(default_factory=list)
    needed: bool = False


def key_uses(settings: Settings) -> dict[str, KeyUse]:
    """Key name -> its use, for every provider that can send a key (all but `embedded`)."""
    uses: dict[str, KeyUse] = {}
    for provider in settings.providers.values():
        if provider.kind == "embedded":
            continue
        use = uses.setdefault(provider.key_name, KeyUse())
        use.env_var = use.env_var or provider.key_env
        use.providers.append(provider.name)
        use.needed = use.needed or provider.needs_key
    uses.setdefault(TOKEN_KEY, KeyUse(TOKEN_ENV, ["serve --transport http"]))
    return uses


def key_status(found: FoundKey | None, env_var: str | None, needed: bool) -> str:
    """Where a key was found, in a word or two ("keyring", "env GROQ_API_KEY", "missing")."""
    if found is None:
        return "missing" if needed else "not needed"
    return f"env {env_var}" if found.source == "env" else found.source


def key_fix(name: str, env_var: str | None) -> str:
    """How to add a missing key, as `MissingKey` says it."""
    fix = f"run 'offload-mcp keys set {name}'"
    return f"{fix} or set {env_var}" if env_var else fix


@click.group(invoke_without_command=True)
@click.pass_context
def keys(ctx: click.Context) -> None:
    """Provider API keys: the OS keyring first, then a 0600 file, then the environment.

    With no command, list them.

    \b
    Example usage:
        offload-mcp keys set groq
        offload-mcp keys list
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(keys_list)


@keys.command(name="set")
@click.argument("name")
def keys_set(name: str) -> None:
    """Store the key NAME, typed at a hidden prompt or read from standard input.

    The key goes to the OS keyring, or to a 0600 file in the config directory when this machine
    has no keyring (headless Linux, CI). NAME is the provider's key name, as 'keys list' shows.

    \b
    Example usage:
        offload-mcp keys set groq
        echo "$OPENROUTER_API_KEY" | offload-mcp keys set openrouter
    """
    from offload_mcp.keys import KeyStore, keyring_backend_name

    paths = Paths.discover()
    uses = key_uses(load_or_exit(paths))
    if not name.strip():
        _fail("the key name is empty.")
    if name not in uses:
        click.echo(
            f"Warning: no configured provider uses a key named {name!r}; "
            f"storing it anyway. Known names: {', '.join(sorted(uses))}.",
            err=True,
        )
    if stdin_is_tty():
        value = click.prompt(f"API key for {name}", hide_input=True, err=True)
    else:
        value = sys.stdin.read()
    value = value.strip()
    if not value:
        _fail("the key is empty; nothing stored.")
    if any(char.isspace() for char in value):
        _fail("the key contains spaces or line breaks; give exactly one key. Nothing stored.")
    where = KeyStore(paths.config_dir).set(name, value)
    if where == "the OS keyring":
        click.echo(f"Stored the key {name!r} in the OS keyring ({keyring_backend_name()}).")
    else:
        click.echo(f"Stored the key {name!r} in {where} (mode 0600): no usable OS keyring here.")
    env_var = uses[name].env_var if name in uses else None
    if env_var and os.environ.get(env_var):
        click.echo(f"{env_var} is also set; the stored key takes precedence over it.")


def stdin_is_tty() -> bool:
    """A person at a terminal gets a hidden prompt; a pipe is read to its end."""
    return sys.stdin.isatty()


def _fail(message: str) -> NoReturn:
    click.echo(f"offload-mcp: {message}", err=True)
    sys.exit(2)


@keys.command(name="list")
def keys_list() -> None:
    """Where each key is found (keyring, file or env VAR), or how to add it; never the key.

    Lists every key name a configured provider reads, plus any other name in the key file.
    Local servers that need no key appear only when a key is stored for them.

    \b
    Example usage:
        offload-mcp keys list
    """
    from rich.markup import escape
    from rich.table import Table

    from offload_mcp.keys import KeyStore, keyring_backend_name

    paths = Paths.discover()
    store = KeyStore(paths.config_dir)
    uses = key_uses(load_or_exit(paths))
    for extra in store.file_names():
        uses.setdefault(extra, KeyUse())
    backend = keyring_backend_name()
    table = Table(
        title=f"API keys (OS keyring: {backend or 'none, so keys go to the file'}; "
        f"file: {escape(str(store.file))})"
    )
    for column in ("key name", "used by", "environment variable", "found"):
        table.add_column(column)
    for name, use in sorted(uses.items()):
        found = store.find(name, use.env_var)
        if found is None and not use.needed and use.env_var is None:
            continue  # a local server's optional key that nobody stored
        table.add_row(
            escape(name),
            escape(", ".join(use.providers)),
            use.env_var or "",
            escape(_found_text(name, use, found)),
        )
    console().print(table)


def _found_text(name: str, use: KeyUse, found: FoundKey | None) -> str:
    status = key_status(found, use.env_var, use.needed)
    if status == "missing":
        return f"missing: {key_fix(name, use.env_var)}"
    if status == "not needed":
        return "not set (optional)"
    return status


@keys.command(name="delete")
@click.argument("name")
def keys_delete(name: str) -> None:
    """Remove the stored key NAME from the OS keyring and the key file.

    An environment variable holding the same key is left alone: it is not ours to change.
    Exits with status 1 when no key of that name was stored.

    \b
    Example usage:
        offload-mcp keys delete groq
    """
    from offload_mcp.keys import KeyStore

    paths = Paths.discover()
    store = KeyStore(paths.config_dir)
    if not store.delete(name):
        click.echo(
            f"No stored key named {name!r} (looked in the OS keyring and {store.file}).", err=True
        )
        sys.exit(1)
    click.echo(f"Deleted the stored key {name!r}.")
    try:  # only for the note below: a broken config must not stop a deletion
        use = key_uses(load_settings(paths)).get(name)
    except ConfigError:
        use = None
    if use and use.env_var and os.environ.get(use.env_var):
        users = ", ".join(use.providers)
        click.echo(f"{use.env_var} is still set, so {users} will still find a key.")
