"""Synthetic transcripts for each edge case of the reader, dedupe, pricing and windows."""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from offload_mcp.audit.blocks import budget_windows, build_blocks
from offload_mcp.audit.pricing import PriceTable, targets
from offload_mcp.audit.projection import parse_target, project
from offload_mcp.audit.reader import Entry
from offload_mcp.audit.run import run_audit
from offload_mcp.audit.share import classify

T0 = "2026-03-02T10:15:00.000Z"


def usage(inp: int = 3, c5: int = 0, c1: int = 0, read: int = 0, out: int = 10) -> dict[str, Any]:
    return {
        "input_tokens": inp,
        "cache_creation_input_tokens": c5 + c1,
        "cache_read_input_tokens": read,
        "cache_creation": {"ephemeral_5m_input_tokens": c5, "ephemeral_1h_input_tokens": c1},
        "output_tokens": out,
    }


def assistant(
    mid: str | None,
    rid: str | None,
    u: dict[str, Any],
    model: str = "claude-opus-4-6",
    ts: str = T0,
    content: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    message: dict[str, Any] = {"model": model, "role": "assistant", "usage": u}
    message["content"] = content or [{"type": "text", "text": "ok"}]
    if mid is not None:
        message["id"] = mid
    line: dict[str, Any] = {"type": "assistant", "timestamp": ts, "message": message}
    line.update({"cwd": "/x/proj", "sessionId": "s", "isSidechain": False, **extra})
    if rid is not None:
        line["requestId"] = rid
    return line


def write(path: Path, lines: list[Any], tail: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(
        (line if isinstance(line, str) else json.dumps(line, separators=(",", ":"))) + "\n"
        for line in lines
    )
    path.write_text(text + tail, "utf-8")
    return path


def audit(root: Path, **kw: Any) -> Any:
    return run_audit([root], tz=UTC, **kw)


def test_streamed_lines_of_one_request_keep_the_largest(tmp_path: Path) -> None:
    tool = {"type": "tool_use", "name": "Read", "input": {"file_path": "a"}}
    write(
        tmp_path / "p" / "s.jsonl",
        [
            assistant("m1", "r1", usage(c5=100, read=1000, out=9)),
            assistant("m1", "r1", usage(c5=100, read=1000, out=9), content=[tool]),
            assistant("m1", "r1", usage(c5=100, read=1000, out=299)),
        ],
    )
    result = audit(tmp_path)
    assert len(result.entries) == 1
    assert result.report.total.output == 299
    assert result.report.total.cache_read == 1000
    assert result.entries[0].tools == ("Read",)  # tool names from every line of the request


def test_subagent_files_count_and_progress_replays_do_not(tmp_path: Path) -> None:
    replay = {
        "type": "progress",
        "timestamp": T0,
        "data": {
            "type": "agent_progress",
            "message": {"message": assistant("m9", "r9", usage(out=77))},
        },
    }
    write(tmp_path / "p" / "sess.jsonl", [assistant("m1", "r1", usage(out=5)), replay])
    write(
        tmp_path / "p" / "sess" / "subagents" / "agent-a1.jsonl",
        [assistant("m9", "r9", usage(out=77), model="claude-haiku-4-5-20251001", isSidechain=True)],
    )
    write(
        tmp_path / "p" / "sess" / "subagents" / "agent-acompact-1.jsonl",
        [assistant("m8", "r8", usage(out=40), isSidechain=True)],  # a compaction call
    )
    result = audit(tmp_path)
    assert result.report.total.output == 5 + 77 + 40
    assert set(result.report.by_session) == {"sess"}
    assert set(result.report.by_model) == {"claude-opus-4-6", "claude-haiku-4-5-20251001"}


def test_sidechain_copy_matches_on_message_id_and_loses(tmp_path: Path) -> None:
    write(
        tmp_path / "p" / "s.jsonl",
        [
            assistant("m1", "r-side", usage(out=50), isSidechain=True),
            assistant("m1", "r-main", usage(out=20)),
        ],
    )
    result = audit(tmp_path)
    assert len(result.entries) == 1
    assert result.entries[0].output == 20 and not result.entries[0].sidechain


def test_lines_without_message_id_are_never_merged(tmp_path: Path) -> None:
    write(
        tmp_path / "p" / "s.jsonl", [assistant(None, "r", usage()), assistant(None, "r", usage())]
    )
    assert len(audit(tmp_path).entries) == 2


def test_malformed_truncated_unknown_and_synthetic_are_counted_and_skipped(tmp_path: Path) -> None:
    synthetic = assistant("m0", None, usage(0, out=0), model="<synthetic>", isApiErrorMessage=True)
    write(
        tmp_path / "p" / "s.jsonl",
        [
            "{not json",
            "[1, 2]",
            {"type": "brand-new-kind", "message": {"usage": usage(out=1000)}},
            {"type": "user", "timestamp": T0, "message": {"role": "user", "content": "hi"}},
            synthetic,
            assistant("m1", "r1", usage(out=7)),
            "",
        ],
        tail='{"type":"assistant","message":{"id":"m2","usa',
    )
    result = audit(tmp_path)
    stats = result.stats
    assert stats.malformed == 2
    assert stats.truncated_files == 1
    assert stats.unknown_types == {"brand-new-kind": 1}
    assert stats.synthetic == 1
    assert result.report.total.output == 7
    assert result.report.total.requests == 1


def test_several_models_and_one_hour_cache_writes_are_priced_from_the_table(tmp_path: Path) -> None:
    write(
        tmp_path / "p" / "s.jsonl",
        [
            assistant("m1", "r1", usage(inp=10, c1=1_000_000, read=0, out=0)),
            assistant("m2", "r2", usage(inp=0, c5=1_000_000, out=0), model="claude-sonnet-4-6"),
            assistant(
                "m3",
                "r3",
                usage(inp=0, read=1_000_000, out=1_000_000),
                model="claude-haiku-4-5-20251001",
            ),
            assistant("m4", "r4", usage(out=1_000_000), model="mystery-model"),
        ],
    )
    report = audit(tmp_path).report
    assert report.by_model["claude-opus-4-6"].cache_1h == 1_000_000
    assert report.by_model["claude-opus-4-6"].usd == pytest.approx(10.0 + 10 * 5e-6)
    assert report.by_model["claude-sonnet-4-6"].usd == pytest.approx(3.75)
    assert report.by_model["claude-haiku-4-5-20251001"].usd == pytest.approx(0.1 + 5.0)
    assert report.unpriced == {"mystery-model"}


def test_long_context_tier_and_fast_mode_follow_ccusage() -> None:
    prices = PriceTable.load()
    base: dict[str, Any] = {
        "timestamp": 0.0,
        "session": "s",
        "project": "p",
        "message_id": "m",
        "request_id": "r",
        "sidechain": False,
        "input": 0,
        "cache_5m": 0,
        "cache_1h": 0,
        "output": 0,
    }
    sonnet = Entry(model="claude-sonnet-4-5-20250929", cache_read=300_000, **base)
    assert prices.cost(sonnet) == pytest.approx((200_000 * 0.3 + 100_000 * 0.6) / 1e6)
    fast = Entry(model="claude-opus-4-6", cache_read=0, fast=True, **{**base, "output": 1_000_000})
    assert prices.cost(fast) == pytest.approx(25.0 * 6)


def test_since_and_project_narrow_the_audit(tmp_path: Path) -> None:
    write(
        tmp_path / "alpha" / "a.jsonl",
        [assistant("m1", "r1", usage(out=1), ts="2026-01-01T00:00:00Z")],
    )
    write(tmp_path / "alpha" / "b.jsonl", [assistant("m2", "r2", usage(out=2))])
    write(tmp_path / "beta" / "c.jsonl", [assistant("m3", "r3", usage(out=4), cwd="/src/beta")])
    assert audit(tmp_path, since=1767225600.0 + 86400).report.total.output == 6
    assert audit(tmp_path, project="beta").report.total.output == 4
    assert audit(tmp_path, project="alpha").report.total.output == 3


def _entry(ts: float, out: int) -> Entry:
    return Entry(ts, "s", "p", "claude-opus-4-6", f"m{ts}", "r", False, 0, 0, 0, 0, out)


def test_five_hour_blocks_follow_ccusage_rules() -> None:
    h = 3600.0
    day = 1_767_225_600.0  # 2026-01-01T00:00Z
    entries = [
        _entry(day + 1.5 * h, 10),  # block 1 starts 01:00 (floored)
        _entry(day + 5.9 * h, 10),  # still block 1 (4.9 h after its start)
        _entry(day + 6.1 * h, 10),  # 5.1 h after start -> block 2 at 06:00
        _entry(day + 12.0 * h, 10),  # 5.9 h gap after the last entry -> block 3 at 12:00
        _entry(day + 12.5 * h, 10),
    ]
    blocks = build_blocks(entries, PriceTable.load())
    assert [(b.start - day) / h for b in blocks] == [1.0, 6.0, 12.0]
    assert [b.requests for b in blocks] == [2, 1, 2]
    windows = budget_windows(entries, PriceTable.load(), now=day + 13.0 * h).as_dict()
    active = windows["active_block"]
    assert active is not None and active["start"] == day + 12 * h
    usd = 20 * 25e-6
    assert active["usd"] == pytest.approx(usd)
    assert active["usd_per_hour"] == pytest.approx(usd * 2)  # 30 min from first to last
    assert active["tokens_per_minute"] == pytest.approx(20 / 30)
    assert active["projected_usd"] == pytest.approx(usd + usd / 30 * 240)  # 240 min left
    assert active["projected_percentile"] == 100.0
    assert windows["week"]["usd"] == pytest.approx(50 * 25e-6)
    assert (
        budget_windows(entries, PriceTable.load(), now=day + 20 * h).as_dict()["active_block"]
        is None
    )
    one = budget_windows(entries[:4], PriceTable.load(), now=day + 13.0 * h).as_dict()
    assert one["active_block"]["usd_per_hour"] is None  # one instant: no rate (as ccusage)
    assert one["active_block"]["projected_usd"] is None


def test_offloadable_kinds() -> None:
    def kinds(*tools: str) -> str:
        entry = _entry(0, 1)
        entry.tools = tools
        return classify(entry)

    assert kinds() == "reply"
    assert kinds("Read", "Grep") == "lookup"
    assert kinds("Edit") == "edit"
    assert kinds("Bash:test") == "tests"
    assert kinds("Task") == "coordination"
    assert kinds("Read", "Edit") == "coordination"


def test_projection_naive_real_and_packets() -> None:
    from offload_mcp.audit.report import Tally

    total = Tally(
        requests=100, input=1_000, cache_5m=9_000, cache_read=990_000, output=50_000, usd=9.0
    )
    glm = targets()["glm"]
    p = project(total, glm, share=0.5, packet_tokens=2_000)
    assert p.naive_usd == pytest.approx(0.5 * (10_000 * 0.40 + 50_000 * 1.75) / 1e6)
    assert p.real_usd == pytest.approx(0.5 * (1_000_000 * 0.40 + 50_000 * 1.75) / 1e6)
    assert p.packet_usd == pytest.approx(0.5 * (100 * 2_000 * 0.40 + 50_000 * 1.75) / 1e6)
    assert p.cache_read_share == pytest.approx(0.99)
    assert parse_target("0.3,1.2", targets()).output == 1.2
    with pytest.raises(ValueError):
        parse_target("cheapest", targets())
