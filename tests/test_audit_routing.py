"""The Claude window in `status` and in routing, through the real tools and fake providers."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from pydantic import ValidationError

from offload_mcp.config import Paths, build_settings
from tests.fake_openai import FakeOpenAI

pytestmark = pytest.mark.anyio
Connect = Callable[[], Awaitable[Client]]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def transcripts(root: Path, busy_output: int, past_output: int = 2_000) -> None:
    """Twelve past days (one request a day) and a block under way now."""
    now = time.time()
    when = [(now - (d + 1) * 86400, past_output) for d in range(12)]
    when += [(now - 70 * 60, busy_output), (now - 10 * 60, busy_output)]
    lines = []
    for i, (ts, out) in enumerate(when):
        usage = {"input_tokens": 10, "cache_read_input_tokens": 50_000, "output_tokens": out}
        message = {"id": f"m{i}", "model": "claude-opus-4-6", "usage": usage}
        line = {"type": "assistant", "timestamp": _iso(ts), "requestId": f"r{i}", "cwd": "/w"}
        lines.append(json.dumps({**line, "message": message}))
    project = root / "projects" / "-w"
    project.mkdir(parents=True)
    (project / "s.jsonl").write_text("\n".join(lines) + "\n")


def configure(paths: Paths, first: str, second: str, percentile: int) -> None:
    paths.config_file.write_text(
        f"""
[limits]
hot_window_percentile = {percentile}

[providers.first]
base_url = "{first}"
model = "m1"
trust = "untrusted"
prices = {{ input = 2.0, output = 8.0 }}

[providers.second]
base_url = "{second}"
model = "m2"
trust = "untrusted"
prices = {{ input = 0.1, output = 0.4 }}
when_hot = "prefer"

[chains]
offload = ["first", "second"]
"""
    )


def providers_used(paths: Paths) -> list[str]:
    with sqlite3.connect(paths.ledger_file) as conn:
        return [row[0] for row in conn.execute("SELECT provider FROM calls ORDER BY id")]


async def text(client: Client, tool: str, **arguments: Any) -> str:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    return result.content[0].text  # type: ignore[union-attr]


async def window_line(client: Client) -> str:
    """The status line on the window, once its first read is done (status waits 2 s a call)."""
    for _ in range(10):
        status = await text(client, "status")
        line = next(row for row in status.splitlines() if row.startswith("Claude window"))
        if "under way" not in line:
            return line
    raise AssertionError(line)


async def test_hot_window_routes_cheap_and_status_says_so(
    paths: Paths,
    connect: Connect,
    first: FakeOpenAI,
    second: FakeOpenAI,
    tmp_path: Path,
) -> None:
    transcripts(tmp_path / "claude-config", busy_output=200_000)
    configure(paths, first.url, second.url, percentile=80)
    client = await connect()
    await text(client, "offload", task="Say hi.")  # the window is not known yet: not waited for
    line = await window_line(client)
    assert "5h block" in line and "(p100 of 12 past blocks)" in line
    assert "HOT (>= p80)" in line
    await text(client, "offload", task="Say hi again.")
    assert providers_used(paths) == ["first", "second"]
    assert (tmp_path / "home" / "claude-window.json").exists()  # the next server starts from it


async def test_calm_window_keeps_the_chain(
    paths: Paths,
    connect: Connect,
    first: FakeOpenAI,
    second: FakeOpenAI,
    tmp_path: Path,
) -> None:
    transcripts(tmp_path / "claude-config", busy_output=10, past_output=20_000)
    configure(paths, first.url, second.url, percentile=80)
    client = await connect()
    line = await window_line(client)
    assert line.startswith("Claude window (API-equivalent): 5h block") and "HOT" not in line, line
    await text(client, "offload", task="Say hi.")
    assert providers_used(paths) == ["first"]


async def test_no_transcripts_no_line(paths: Paths, connect: Connect) -> None:
    client = await connect()
    assert "Claude window" not in await text(client, "status")


def test_hot_chain_order_and_config_checks() -> None:
    settings = build_settings(
        {
            "limits": {"hot_window_percentile": 80},
            "providers": {
                "openrouter-flash-lite": {"when_hot": "avoid"},
                "groq": {"when_hot": "prefer"},
            },
            "chains": {"offload": ["openrouter-flash-lite", "openrouter-qwen", "groq"]},
        }
    )
    assert [p.name for p in settings.chain("offload")] == [
        "openrouter-flash-lite",
        "openrouter-qwen",
        "groq",
    ]
    hot = [p.name for p in settings.chain("offload", hot=True)]
    assert hot == ["groq", "openrouter-qwen", "openrouter-flash-lite"]
    with pytest.raises(ValidationError, match="when_hot"):
        build_settings({"providers": {"groq": {"when_hot": "sometimes"}}})
    with pytest.raises(ValidationError, match="hot_window_percentile"):
        build_settings({"limits": {"hot_window_percentile": 150}})
