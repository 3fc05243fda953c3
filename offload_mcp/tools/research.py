"""The `gemini_research` tool: a question answered from the web, with numbered sources.

The packet goes through dispatch like any other (privacy gate, quota, cache, ledger) on the
`research` chain: the Gemini API with Google Search grounding, else the Gemini CLI. The
backend's sources come beside the answer (`Result.grounding`, kept by the cache too); this
module places citation markers after the passages they support, and keeps only markers that
point at a source it returns. Long JSON answers go to a file the result names.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import anyio
from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations
from pydantic import Field

from offload_mcp import contract
from offload_mcp.errors import InvalidOutput, InvalidRequest
from offload_mcp.packets import Grounding, OutputContract, Packet, Result
from offload_mcp.tools.common import progress_reporter, tool_errors

if TYPE_CHECKING:
    from mcp.server import MCPServer

    from offload_mcp.dispatch import Dispatcher, Progress
    from offload_mcp.server import AppState

RESEARCH_DESCRIPTION = (
    "Answer a question from the public web (Gemini with Google Search) with numbered sources. "
    "Optional context files/URLs; `schema` for a JSON answer; `entities`+`fields` for a "
    "sourced table (CSV/JSON files). Public facts only."
)
#: JSON answers longer than this go to a file
INLINE_CHARS = 4000
_MARKER = re.compile(r"\[(\d+)\]")


def register(server: MCPServer, state: AppState) -> None:
    @server.tool(
        description=RESEARCH_DESCRIPTION,
        structured_output=False,
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=True),
    )
    async def gemini_research(
        question: Annotated[str, Field(min_length=1, max_length=20_000)],
        ctx: Context,
        files: Annotated[list[str], Field(description="Context file paths.")] = [],  # noqa: B006
        urls: Annotated[list[str], Field(description="Pages to consult.")] = [],  # noqa: B006
        max_sources: Annotated[int, Field(ge=1, le=20)] = 5,
        schema: Annotated[dict[str, Any], Field(description="JSON Schema of the answer.")] = {},  # noqa: B006
        provider: Annotated[str, Field(description="Force one provider.")] = "",
        entities: list[str] = [],  # noqa: B006
        fields: list[str] = [],  # noqa: B006
    ) -> str:
        with tool_errors("gemini_research"):
            if entities or fields:
                return await _batch(
                    state, question, ctx, entities, fields, files, urls, schema, provider
                )
            answer = await research(
                state.dispatcher,
                question,
                files=files,
                urls=urls,
                schema=schema or None,
                provider=provider or None,
                progress=progress_reporter(ctx),
            )
            return await anyio.to_thread.run_sync(
                answer.render, max_sources, state.paths.data_dir / "results"
            )


async def _batch(
    state: AppState,
    question: str,
    ctx: Context,
    entities: list[str],
    fields: list[str],
    files: list[str],
    urls: list[str],
    schema: dict[str, Any],
    provider: str,
) -> str:
    """`entities` + `fields`: one grounded look-up per entity, a table in files (research_batch)."""
    from offload_mcp import research_batch

    if schema:
        raise InvalidRequest("give schema or entities+fields, not both.")

    async def report(done: int, total: int, message: str) -> None:
        await ctx.report_progress(done, total, message)

    table = await research_batch.run_batch(
        state.dispatcher,
        question,
        entities,
        fields,
        results_dir=state.paths.data_dir / "results",
        files=files,
        urls=urls,
        provider=provider or None,
        progress=report,
    )
    return research_batch.summary(table)


class Answer:
    """A research result: the answer text (or JSON), its grounding, and who produced it."""

    def __init__(self, text: str, data: Any, grounding: Grounding | None, result: Result) -> None:
        self.text = text
        self.data = data
        self.grounding = grounding
        self.result = result

    def render(self, max_sources: int, results_dir: Path) -> str:
        grounding = self.grounding or Grounding()
        sources = grounding.sources[:max_sources]
        if self.data is None:
            body = place_markers(self.text, grounding.cites, len(sources))
        else:
            body = json.dumps(self.data, ensure_ascii=False, indent=None)
            if len(body) > INLINE_CHARS:
                path = results_dir / _result_name(body)
                write_json(path, self.data, grounding)
                body = f"{_size(self.data)}; JSON with sources in {path}"
        lines = [body, ""]
        if sources:
            lines.append("Sources:")
            lines.extend(f"[{i}] {s.title} - {s.url}" for i, s in enumerate(sources, start=1))
        else:
            lines.append(f"(no sources: {self.result.provider} returned none)")
        if grounding.queries:
            lines.append("Searched: " + "; ".join(grounding.queries[:5]))
        lines.append(footer(self.result))
        return "\n".join(lines)


async def research(
    dispatcher: Dispatcher,
    question: str,
    *,
    files: list[str] | tuple[str, ...] = (),
    urls: list[str] | tuple[str, ...] = (),
    schema: dict[str, Any] | None = None,
    provider: str | None = None,
    progress: Progress | None = None,
    wait_s: float | None = None,
) -> Answer:
    """One grounded packet through dispatch; a JSON answer is checked, with one retry.

    `wait_s` (default: the configured limit) is how long to wait out caps and cool-downs.
    """
    if not question.strip():
        raise InvalidRequest("question: must not be blank.")
    bad = [u for u in urls if not re.match(r"https?://\S+$", u)]
    if bad:
        raise InvalidRequest(f"urls: not an http(s) URL: {bad[0][:100]}")
    checked = contract.make_contract(schema=schema) if schema is not None else None
    task = question.strip()
    if urls:
        task += "\nConsult these pages first:\n" + "\n".join(f"- {u}" for u in urls)
    rules = contract.output_rules(checked) if checked else "Reply in plain text."
    limits = dispatcher.settings.limits
    why = ""
    for attempt in range(2):
        retry = f"\nYour previous answer was rejected: {why}." if why else ""
        packet = Packet(
            tool="research",
            task=f"{task}\n\n{rules}{retry}",
            files=tuple(files),
            max_output_tokens=limits.max_output_tokens,
            timeout_s=limits.timeout_s,
            provider=provider,
            template="research",
            cache=attempt == 0,
            wait_s=limits.wait_s if wait_s is None else wait_s,
        )
        result = await dispatcher.run(packet, progress)
        text, grounding = result.text, result.grounding
        if checked is None:
            return Answer(text.strip(), None, grounding, result)
        try:
            value = _check_json(checked, text)
        except ValueError as exc:
            why = str(exc)
            continue
        return Answer(text.strip(), value, grounding, result)
    raise InvalidOutput(result.provider, f"the answer failed the schema twice ({why}).")


def _check_json(checked: OutputContract, text: str) -> Any:
    """The parsed answer; a model that cited inline inside the JSON gets its markers removed."""
    try:
        return contract.check(checked, text).data
    except ValueError:
        stripped = _MARKER.sub("", text)
        if stripped == text:
            raise
        return contract.check(checked, stripped).data


def place_markers(text: str, cites: tuple[tuple[str, tuple[int, ...]], ...], count: int) -> str:
    """Markers `[n]` after each cited passage; any marker not naming one of `count` sources goes.

    A backend that wrote its own markers (the CLI) keeps those that point at a source.
    """
    text = _MARKER.sub(lambda m: m.group(0) if 1 <= int(m.group(1)) <= count else "", text)
    inserts: dict[int, list[int]] = {}
    start = 0
    for passage, numbers in cites:
        keep = [n for n in numbers if 1 <= n <= count]
        found = text.find(passage, start)
        if found < 0:
            found = text.find(passage)
        if not keep or found < 0 or not passage:
            continue
        end = found + len(passage.rstrip())
        start = end
        inserts.setdefault(end, [])
        inserts[end].extend(n for n in keep if n not in inserts[end])
    for end in sorted(inserts, reverse=True):
        marks = "".join(f"[{n}]" for n in inserts[end])
        text = text[:end] + marks + text[end:]
    return text


def footer(result: Result) -> str:
    if result.cached:
        return f"[gemini_research: {result.provider} ({result.model}), from cache, $0]"
    usage = result.usage
    cost = f"${result.cost_usd:.4f}" if result.cost_usd else "$0"
    return (
        f"[gemini_research: {result.provider} ({result.model}), "
        f"{usage.input_tokens}->{usage.output_tokens} tokens, {cost}, "
        f"{result.latency_ms / 1000:.1f} s]"
    )


def _size(data: Any) -> str:
    if isinstance(data, list):
        return f"{len(data)} rows"
    if isinstance(data, dict):
        return f"{len(data)} fields"
    return "1 value"


def _result_name(body: str) -> str:
    digest = hashlib.sha256(body.encode()).hexdigest()[:8]
    return f"gemini_research-{time.strftime('%Y%m%d-%H%M%S')}-{digest}.json"


def write_json(path: Path, data: Any, grounding: Grounding) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "answer": data,
        "sources": [
            {"n": i, "title": s.title, "url": s.url} for i, s in enumerate(grounding.sources, 1)
        ],
        "queries": list(grounding.queries),
    }
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=1), "utf-8")
