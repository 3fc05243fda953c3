"""The `offload-mcp` command line: one module per command group, each a thin layer."""

from __future__ import annotations

import click

from offload_mcp import __version__
from offload_mcp.cli.audit import audit
from offload_mcp.cli.config import config
from offload_mcp.cli.keys import keys
from offload_mcp.cli.scan import scan
from offload_mcp.cli.serve import serve
from offload_mcp.cli.status import status
from offload_mcp.cli.usage import usage


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="offload-mcp")
def cli() -> None:
    """Hand bounded, one-shot work packets from Claude Code to cheaper backends.

    \b
    Example usage:
        offload-mcp keys set groq          # store a key in the OS keyring
        offload-mcp status                 # what is configured, reachable, used today
        claude mcp add offload -- offload-mcp serve
    """


for command in (serve, status, usage, config, keys, scan, audit):
    cli.add_command(command)
