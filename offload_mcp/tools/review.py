"""The `cross_check` tool: a second opinion from models built by others (offload_mcp/crosscheck)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations

from offload_mcp.tools.common import progress_reporter, tool_errors

if TYPE_CHECKING:
    from mcp.server import MCPServer

    from offload_mcp.server import AppState

CROSS_CHECK_DESCRIPTION = (
    "Read-only second opinion from 2-3 other model families (openai, google, local...) at once "
    "on a question or claim about a diff or files: verdicts, file:line problems, disagreements."
)


def register(server: MCPServer, state: AppState) -> None:
    @server.tool(
        description=CROSS_CHECK_DESCRIPTION,
        structured_output=False,
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=True),
    )
    async def cross_check(
        question: str,
        ctx: Context,
        diff: str = "",
        files: list[str] = [],  # noqa: B006
        families: list[str] = [],  # noqa: B006
        timeout_s: float = 0,
    ) -> str:
        # bounds are checked in Ask, not in the schema Claude reads on every turn
        with tool_errors("cross_check"):
            from offload_mcp.crosscheck import report
            from offload_mcp.crosscheck.run import Ask, cross_check

            ask = Ask(question, diff, tuple(files), tuple(families), timeout_s)
            outcome = await cross_check(state.dispatcher, ask, progress_reporter(ctx))
            return report.render(outcome)
