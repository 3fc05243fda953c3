"""The MCP tools: thin. Validate, build a packet, await dispatch, shape a compact result.

One module per tool family. Every tool definition costs Claude context on every turn, so
descriptions are short, and prose results use `structured_output=False` (Claude Code would
otherwise show the model a JSON wrapper instead of the text).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from offload_mcp.tools import codex, local, offload, research, review, status

if TYPE_CHECKING:
    from mcp.server import MCPServer

    from offload_mcp.server import AppState


def register_tools(server: MCPServer, state: AppState) -> None:
    for module in (offload, status, local, research, codex, review):
        module.register(server, state)
