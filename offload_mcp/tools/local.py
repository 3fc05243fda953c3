"""The local lane's tools: classify, extract and summarise without data leaving the machine.

`local_classify` works right after install (embedded model); `local_extract` and
`local_summarize` need a generative local model (Ollama or a local OpenAI-compatible server).
Batch-first: a file path costs Claude far fewer tokens than pasted items, and big results go to
a file the answer names, with counts per label inline.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import anyio
from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations
from pydantic import Field

from offload_mcp import classify
from offload_mcp.classify import MAX_ITEMS, UNSURE, Verdict
from offload_mcp.contract import make_contract
from offload_mcp.errors import InvalidRequest
from offload_mcp.inputs import read_inputs
from offload_mcp.packets import Packet, Result
from offload_mcp.tools.common import progress_reporter, tool_errors
from offload_mcp.tools.offload import footer

if TYPE_CHECKING:
    from mcp.server import MCPServer

    from offload_mcp.dispatch import Dispatcher
    from offload_mcp.server import AppState

#: more items than this and the verdicts go to a file instead of the answer
INLINE_MAX = 40

CLASSIFY_DESCRIPTION = (
    "Classify many short texts on this machine (no data leaves it, $0). "
    "Give labels as name->description (much more accurate than bare names) and optionally "
    "examples per label. Returns label and score per item in order, or `unsure`."
)
EXTRACT_DESCRIPTION = "Extract JSON matching `schema` from text or a file with a local model."
SUMMARIZE_DESCRIPTION = "Summarise text or a file with a local model, within `words`."

_LOCAL = ToolAnnotations(read_only_hint=True, open_world_hint=False)


def register(server: MCPServer, state: AppState) -> None:
    dispatcher = state.dispatcher
    limits = state.settings.limits

    @server.tool(description=CLASSIFY_DESCRIPTION, structured_output=False, annotations=_LOCAL)
    async def local_classify(
        labels: Annotated[
            dict[str, str] | list[str], Field(description="Names, or name -> description.")
        ],
        ctx: Context,
        items: Annotated[list[str], Field(description="Texts to classify.")] = [],  # noqa: B006
        file: Annotated[str, Field(description="Or a file: one item per line, or JSONL.")] = "",
        field: Annotated[str, Field(description="JSONL field holding the text.")] = "",
        examples: Annotated[
            dict[str, list[str]], Field(description="Label -> example texts.")
        ] = {},  # noqa: B006
        multi: Annotated[bool, Field(description="Allow several labels per item.")] = False,
    ) -> str:
        with tool_errors("local_classify"):
            specs = classify.make_labels(labels, examples)
            texts = await anyio.to_thread.run_sync(read_items, dispatcher, items, file, field)
            outcome = await classify.classify(
                dispatcher, texts, specs, multi=multi, progress=progress_reporter(ctx)
            )
            if len(texts) <= INLINE_MAX:
                body = "\n".join(_line(i, v) for i, v in enumerate(outcome.verdicts, start=1))
            else:
                path = state.paths.data_dir / "results" / _result_name(texts)
                await anyio.to_thread.run_sync(write_results, path, texts, outcome.verdicts)
                body = f"{len(texts)} items; one JSON line per item in {path}"
        tally = ", ".join(f"{k} {n}" for k, n in counts(outcome.verdicts).items())
        took = f"{outcome.latency_ms / 1000:.2f} s"
        cost = f"${outcome.cost_usd:.4f}" if outcome.cost_usd else "$0"
        return (
            f"{body}\n\n[local_classify: {outcome.provider} ({outcome.model}), "
            f"{len(texts)} item{'s' if len(texts) > 1 else ''}, {took}, {cost}; {tally}]"
        )

    @server.tool(description=EXTRACT_DESCRIPTION, structured_output=False, annotations=_LOCAL)
    async def local_extract(
        schema: Annotated[dict[str, Any], Field(description="JSON Schema of the result.")],
        ctx: Context,
        text: Annotated[str, Field(max_length=1_000_000)] = "",
        file: str = "",
        instructions: Annotated[str, Field(description="What to extract, if not obvious.")] = "",
    ) -> str:
        with tool_errors("local_extract"):
            packet = Packet(
                tool="local_extract",
                task=instructions.strip() or "Extract the data the schema asks for.",
                text=text,
                files=_files(text, file),
                contract=make_contract(schema=schema),
                max_output_tokens=limits.max_output_tokens,
                timeout_s=limits.timeout_s,
            )
            result = await classify.run_local(dispatcher, packet, progress_reporter(ctx))
        return f"{result.text}\n\n{_footer(result)}"

    @server.tool(description=SUMMARIZE_DESCRIPTION, structured_output=False, annotations=_LOCAL)
    async def local_summarize(
        ctx: Context,
        text: Annotated[str, Field(max_length=1_000_000)] = "",
        file: str = "",
        words: Annotated[int, Field(ge=10, le=2000, description="Maximum length.")] = 150,
        focus: Annotated[str, Field(description="What the summary should cover.")] = "",
    ) -> str:
        with tool_errors("local_summarize"):
            focus_text = f" Focus on: {focus.strip()}." if focus.strip() else ""
            packet = Packet(
                tool="local_summarize",
                task=f"Summarise the input in at most {words} words.{focus_text} "
                "Keep facts, names and numbers exact; add nothing.",
                text=text,
                files=_files(text, file),
                max_output_tokens=min(limits.max_output_tokens, words * 3 + 64),
                timeout_s=limits.timeout_s,
            )
            result = await classify.run_local(dispatcher, packet, progress_reporter(ctx))
        return f"{fit_words(result.text, words)}\n\n{_footer(result)}"


def _files(text: str, file: str) -> tuple[str, ...]:
    if bool(text) == bool(file.strip()):
        raise InvalidRequest("give either text or file (one of them).")
    return (file,) if file.strip() else ()


def _footer(result: Result) -> str:
    return footer(result).replace("[offload:", "[local:", 1)


def _line(index: int, verdict: Verdict) -> str:
    if verdict.score is None:
        return f"{index}. {'+'.join(verdict.labels) or verdict.label}"
    if verdict.label == UNSURE:
        return f"{index}. unsure ({verdict.best} vs {verdict.runner_up})"
    label = "+".join(verdict.labels) or verdict.label
    return f"{index}. {label} {verdict.score:.2f}"


def _result_name(texts: list[str]) -> str:
    digest = hashlib.sha256("\0".join(texts).encode()).hexdigest()[:8]
    return f"local_classify-{time.strftime('%Y%m%d-%H%M%S')}-{digest}.jsonl"


def fit_words(text: str, words: int) -> str:
    """Hold a summary to its length: cut at the last sentence end that fits, else at `words`."""
    tokens = text.split()
    if len(tokens) <= words:
        return text.strip()
    head = " ".join(tokens[:words])
    ends = [m.end() for m in re.finditer(r"[.!?](?=\s|$)", head)]
    if ends and ends[-1] > len(head) // 2:
        return head[: ends[-1]]
    return head.rstrip(",;:") + "…"


def read_items(dispatcher: Dispatcher, items: Sequence[str], file: str, field: str) -> list[str]:
    """Items from the list, or from a file: one per line, or a JSONL field (inputs rules apply)."""
    if items and file:
        raise InvalidRequest("give either items or file, not both.")
    if file:
        found = read_inputs([file], dispatcher.settings.limits, dispatcher.cwd)[0]
        lines = [line for line in found.text.splitlines() if line.strip()]
        if field or file.endswith(".jsonl"):
            result = [_jsonl_field(file, n, line, field or "text") for n, line in enumerate(lines)]
        else:
            result = lines
    else:
        result = list(items)
    if not result:
        raise InvalidRequest("items: nothing to classify.")
    if len(result) > MAX_ITEMS:
        raise InvalidRequest(f"items: {len(result)} items, over the {MAX_ITEMS} limit per call.")
    return result


def _jsonl_field(file: str, index: int, line: str, field: str) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        raise InvalidRequest(f"{file}: line {index + 1} is not JSON.") from None
    value = record.get(field) if isinstance(record, dict) else None
    if not isinstance(value, str):
        raise InvalidRequest(f"{file}: line {index + 1} has no string field {field!r}.")
    return value


def counts(verdicts: Sequence[Verdict]) -> dict[str, int]:
    """Items per label (multi-label: each label given counts), most common first."""
    tally: dict[str, int] = {}
    for verdict in verdicts:
        for label in verdict.labels or (verdict.label,):
            tally[label] = tally.get(label, 0) + 1
    return dict(sorted(tally.items(), key=lambda kv: (-kv[1], kv[0])))


def write_results(path: Path, items: Sequence[str], verdicts: Sequence[Verdict]) -> None:
    """JSONL, one line per item in order, for batches too big to hand back inline."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for index, (item, verdict) in enumerate(zip(items, verdicts, strict=True), start=1):
            row: dict[str, Any] = {"i": index, "label": verdict.label}
            if verdict.score is not None:
                row["score"] = verdict.score
            if verdict.label == UNSURE:
                row["between"] = [verdict.best, verdict.runner_up]
            if verdict.labels:
                row["labels"] = list(verdict.labels)
            row["text"] = item[:200]
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
