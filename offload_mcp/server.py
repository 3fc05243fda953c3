"""Build the MCP server: settings, dispatcher and ledger wired once; tools and prompts registered.

`build_server` takes everything it needs as arguments so tests can hand it fakes.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver.prompts.base import Prompt, PromptArgument
from mcp.types import Tool

from offload_mcp import __version__
from offload_mcp.config import Paths, Settings, load_settings
from offload_mcp.dispatch import BackendFactory, Dispatcher
from offload_mcp.templates import Template, load_templates
from offload_mcp.tools import register_tools

INSTRUCTIONS = """\
offload-mcp hands bounded, one-shot work to cheaper models so it does not spend Claude's budget. \
Use `offload` for self-contained tasks (classify, extract, summarise, convert, draft) where \
everything needed fits in the packet: state the task, pass inputs as `files` paths (cheaper than \
pasting) or `text`, and give `labels` or a JSON `schema` when the answer must have a shape. \
Use the `local_*` tools for many items or sensitive data: they stay on this machine. \
Use `delegate_to_codex` for a bounded code change with a `verify` command, `cross_check` for a \
second opinion from other model families, `gemini_research` for public web facts with sources. \
Secrets and personal data are redacted or kept local by the privacy gate automatically. \
Keep judgment, multi-step coordination and anything needing this conversation's context \
yourself, and check answers before relying on them. `status` shows which providers are usable."""


class OffloadServer(MCPServer):
    """An `MCPServer` whose `tools/list` input schemas carry no words the model can do without.

    Claude Code sends every tool definition to the model on every turn. Pydantic's generated
    titles ("Max Output Tokens" beside `max_output_tokens`), "nothing given" defaults ("", [],
    {}, 0) and `additionalProperties: true` cost tokens and say nothing. Arguments are still
    validated against the full model.
    """

    async def list_tools(self) -> list[Tool]:
        return [
            tool.model_copy(update={"input_schema": compact_schema(tool.input_schema)})
            for tool in await super().list_tools()
        ]


def compact_schema(schema: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in schema.items():
        if (
            (key == "title" and isinstance(value, str))
            or (key == "default" and value in ("", [], {}, 0) and value is not False)
            or (key == "additionalProperties" and value is True)
        ):
            continue
        if key in ("properties", "$defs") and isinstance(value, dict):
            result[key] = {name: compact_schema(sub) for name, sub in value.items()}
        elif isinstance(value, dict):
            result[key] = compact_schema(value)
        elif isinstance(value, list):
            result[key] = [compact_schema(v) if isinstance(v, dict) else v for v in value]
        else:
            result[key] = value
    return result


@dataclass
class AppState:
    """What the tools share for the life of the process."""

    settings: Settings
    paths: Paths
    dispatcher: Dispatcher


def build_server(
    settings: Settings | None = None,
    paths: Paths | None = None,
    *,
    backend_factory: BackendFactory | None = None,
    cwd: Path | None = None,
) -> MCPServer:
    paths = paths or Paths.discover()
    settings = settings or load_settings(paths)
    dispatcher = Dispatcher.for_paths(settings, paths, cwd)
    if backend_factory is not None:
        dispatcher.backend_factory = backend_factory
    state = AppState(settings=settings, paths=paths, dispatcher=dispatcher)

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[AppState]:
        try:
            yield state
        finally:
            await dispatcher.aclose()

    server = OffloadServer(
        "offload", instructions=INSTRUCTIONS, version=__version__, lifespan=lifespan
    )
    register_tools(server, state)
    for template in load_templates().values():
        server.add_prompt(_prompt(template))
    return server


def _prompt(template: Template) -> Prompt:
    """Each packet template is also an MCP prompt, so users can see what backends are sent."""
    return Prompt(
        name=template.name,
        description=template.description,
        arguments=[PromptArgument(name=name, required=True) for name in template.variables],
        fn=functools.partial(_render, template),
    )


def _render(template: Template, **values: str) -> str:
    return template.render(**values)
