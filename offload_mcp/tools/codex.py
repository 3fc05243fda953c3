"""The `delegate_to_codex` tool: a bounded coding task to the Codex CLI, in an isolated
workspace, checked by the caller's verify command (orchestration: offload_mcp/delegate)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations
from pydantic import Field

from offload_mcp.tools.common import progress_reporter, tool_errors

if TYPE_CHECKING:
    from mcp.server import MCPServer

    from offload_mcp.server import AppState

DELEGATE_DESCRIPTION = (
    "Hand a bounded coding task to Codex in an isolated copy of the repo; a failing `verify` "
    "command gets one retry. Returns outcome, summary, diff stat, patch file; `apply` writes "
    "it only if verified."
)


def register(server: MCPServer, state: AppState) -> None:
    @server.tool(
        description=DELEGATE_DESCRIPTION,
        structured_output=False,
        annotations=ToolAnnotations(destructive_hint=False, open_world_hint=True),
    )
    async def delegate_to_codex(
        task: Annotated[str, Field(min_length=1, max_length=20_000, description="The brief.")],
        path: Annotated[str, Field(min_length=1, description="Repository or directory.")],
        ctx: Context,
        constraints: str = "",
        acceptance: str = "",
        files: list[str] = [],  # noqa: B006
        verify: Annotated[str, Field(description="Shell check, e.g. `pytest -q`.")] = "",
        schema: Annotated[dict[str, Any], Field(description="JSON Schema of the reply.")] = {},  # noqa: B006
        sandbox: Literal["workspace-write", "read-only"] = "workspace-write",
        timeout_s: Annotated[float, Field(ge=0, le=7200)] = 0,
        apply: bool = False,
        keep_workspace: bool = False,
    ) -> str:
        with tool_errors("delegate_to_codex"):
            from offload_mcp.delegate import report
            from offload_mcp.delegate.run import Brief, delegate

            brief = Brief(
                task=task,
                path=path,
                constraints=constraints,
                acceptance=acceptance,
                files=tuple(files),
                verify=verify,
                schema=schema or None,
                sandbox=sandbox,
                timeout_s=timeout_s,
                apply=apply,
                keep_workspace=keep_workspace,
            )
            done = await delegate(state.dispatcher, state.paths, brief, progress_reporter(ctx))
            return report.render(done)
