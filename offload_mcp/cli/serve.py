"""`offload-mcp serve`: the MCP server over stdio (Claude Code's default) or HTTP."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from offload_mcp.config import Paths, is_loopback, load_settings
from offload_mcp.errors import ConfigError
from offload_mcp.logs import setup_logging

if TYPE_CHECKING:
    from mcp.server import MCPServer

TOKEN_ENV = "OFFLOAD_MCP_TOKEN"
TOKEN_KEY = "http-token"


@click.command()
@click.option(
    "--transport",
    type=click.Choice(["stdio", "http", "sse"]),
    default="stdio",
    show_default=True,
    help="stdio for Claude Code; http is streamable HTTP; sse is the older HTTP transport.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="HTTP bind address.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535))
@click.option("--log-level", default="INFO", show_default=True, help="For the log file.")
def serve(transport: str, host: str, port: int, log_level: str) -> None:
    """Run the MCP server.

    Over HTTP it binds 127.0.0.1 unless told otherwise; any other address needs a bearer token
    (OFFLOAD_MCP_TOKEN, or 'offload-mcp keys set http-token'), and requests whose Origin is not
    local are refused.

    \b
    Example usage:
        claude mcp add offload -- offload-mcp serve
        offload-mcp serve --transport http --port 8765
    """
    paths = Paths.discover()
    setup_logging(paths.log_file, log_level.upper())
    try:
        settings = load_settings(paths)
    except ConfigError as exc:
        click.echo(f"offload-mcp: {exc}", err=True)
        sys.exit(2)

    from offload_mcp.server import build_server  # imports the MCP SDK: only when serving

    server = build_server(settings, paths)
    if transport == "stdio":
        server.run()
        return
    _serve_http(server, transport, host, port, paths)


def _serve_http(server: MCPServer, transport: str, host: str, port: int, paths: Paths) -> None:
    import uvicorn

    from offload_mcp.http_guard import HttpGuard
    from offload_mcp.keys import KeyStore

    token = KeyStore(paths.config_dir).get(TOKEN_KEY, TOKEN_ENV)
    if not token and not is_loopback(f"http://{_bracket(host)}"):
        click.echo(
            f"offload-mcp: refusing to listen on {host} without a bearer token; "
            f"set {TOKEN_ENV} or run 'offload-mcp keys set {TOKEN_KEY}'.",
            err=True,
        )
        sys.exit(2)
    app = (
        server.streamable_http_app(host=host) if transport == "http" else server.sse_app(host=host)
    )
    path = "/mcp" if transport == "http" else "/sse"
    click.echo(
        f"offload-mcp: serving {transport} on http://{_bracket(host)}:{port}{path}", err=True
    )
    config = uvicorn.Config(
        HttpGuard(app, token), host=host, port=port, log_config=None, log_level="warning"
    )
    uvicorn.Server(config).run()


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host
