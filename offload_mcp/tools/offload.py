"""The `offload` tool: one self-contained packet to the first usable provider of its chain."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from offload_mcp.contract import make_contract
from offload_mcp.packets import Packet, Result
from offload_mcp.tools.common import progress_reporter, tool_errors

if TYPE_CHECKING:
    from mcp.server import MCPServer

    from offload_mcp.server import AppState

OFFLOAD_DESCRIPTION = (
    "Send a self-contained one-shot task to a cheaper model (free tiers first). "
    "Inputs by file path or text; `labels` or a JSON `schema` make the answer checked. "
    "Not for work that needs this conversation's context."
)


def register(server: MCPServer, state: AppState) -> None:
    limits = state.settings.limits

    @server.tool(
        description=OFFLOAD_DESCRIPTION,
        structured_output=False,
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=True),
    )
    async def offload(
        task: Annotated[str, Field(min_length=1, max_length=20_000, description="What to do.")],
        ctx: Context,
        text: Annotated[str, Field(max_length=1_000_000, description="Input text.")] = "",
        files: Annotated[list[str], Field(description="Paths of input files.")] = [],  # noqa: B006
        labels: Annotated[list[str], Field(description="Answer must be one of these.")] = [],  # noqa: B006
        schema: Annotated[dict[str, Any], Field(description="JSON Schema of the answer.")] = {},  # noqa: B006
        provider: Annotated[str, Field(description="Force one provider.")] = "",
        max_output_tokens: Annotated[int, Field(ge=0, le=65_536)] = 0,
        timeout_s: Annotated[float, Field(ge=0, le=3600)] = 0,
        wait_s: Annotated[float, Field(ge=0, le=3600, description="Wait for a reset.")] = 0,
        cache: Annotated[bool, Field(description="Reuse an identical earlier answer.")] = True,
    ) -> str:
        with tool_errors("offload"):
            if not task.strip():
                raise ToolError("task: must not be blank.")
            packet = Packet(
                tool="offload",
                task=task,
                text=text,
                files=tuple(files),
                contract=make_contract(labels or None, schema or None),
                max_output_tokens=max_output_tokens or limits.max_output_tokens,
                timeout_s=timeout_s or limits.timeout_s,
                provider=provider or None,
                cache=cache,
                wait_s=wait_s or limits.wait_s,
            )
            result = await state.dispatcher.run(packet, progress_reporter(ctx))
        return f"{result.text}\n\n{footer(result)}"


def footer(result: Result) -> str:
    """One short line: who answered and what it cost."""
    if result.cached:
        return f"[offload: {result.provider} ({result.model}), from cache, $0]"
    usage = result.usage
    retry = ", after 1 retry" if result.attempts > 1 else ""
    cost = f"${result.cost_usd:.4f}" if result.cost_usd else "$0"
    return (
        f"[offload: {result.provider} ({result.model}), "
        f"{usage.input_tokens}->{usage.output_tokens} tokens, {cost}, "
        f"{result.latency_ms / 1000:.1f} s{retry}]"
    )
