"""The `status` tool: a few short lines per provider (Claude pays for every token of it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mcp.types import ToolAnnotations

from offload_mcp import status as status_report
from offload_mcp.delegate import pool as pooling
from offload_mcp.tools.common import tool_errors

if TYPE_CHECKING:
    from mcp.server import MCPServer

    from offload_mcp.server import AppState


def register(server: MCPServer, state: AppState) -> None:
    @server.tool(
        description="Which offload providers are usable, why not, and today's calls, tokens, cost.",
        structured_output=False,
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=True),
    )
    async def status() -> str:
        with tool_errors("status"):
            delegate = state.dispatcher.settings.delegate
            pool = pooling.at(state.paths.data_dir, delegate.pool_per_repo, delegate.pool_max)
            report = await status_report.collect(state.dispatcher, pool=pool)
        return status_report.short_text(report)
