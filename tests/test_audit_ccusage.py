"""ccusage 20.0.24 as the oracle: the same totals on the same real transcripts.

Matched against `ccusage claude session --offline --json --mode calculate`, the report that reads
top-level usage only (its `daily` report also counts subagent usage replayed in `progress`
lines; reference claude-code.md §3.6), and against `blocks` for the 5-hour windows: `blocks`
counts the same entries as `session`. Its quirks we copy: the burn rate runs from a block's
first to its last entry (none while they are one instant), the projection adds whole minutes
left. Its gap blocks (rows for idle stretches) carry nothing and are left out here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from offload_mcp.audit.blocks import budget_windows, build_blocks
from offload_mcp.audit.run import Audit, run_audit
from tests.clients import NODE_DIR, child_env, unavailable

FIXTURES = Path(__file__).parent / "fixtures" / "claude-transcripts" / "spotter"
CCUSAGE_BIN = NODE_DIR / "node_modules" / ".bin" / "ccusage"
CCUSAGE_VERSION = "20.0.24"
SESSIONS = ("fa812bfe-b295-4cca-9c2f-fdf01028cb46", "4d5611e5-241a-462a-8d15-5122611a9569")
SMALL = ("short", "tool_heavy", "subagent")


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Claude config dir: two big sessions with their subagents, three small ones."""
    root = tmp_path_factory.mktemp("claude")
    big = root / "projects" / "-home-USER-projects-spotter"
    small = root / "projects" / "-home-marco-projects-spotter"
    big.mkdir(parents=True)
    small.mkdir(parents=True)
    for session in SESSIONS:
        shutil.copy(FIXTURES / f"{session}.jsonl", big)
        shutil.copytree(FIXTURES / session, big / session)
    for name in SMALL:
        shutil.copy(FIXTURES / f"{name}.jsonl", small)
    return root


@pytest.fixture(scope="module")
def ours(config_dir: Path) -> Audit:
    return run_audit([config_dir / "projects"], tz=UTC)


def ccusage(config_dir: Path, report: str, *extra: str) -> dict[str, object]:
    install = "npm ci --prefix tests/node --no-audit --no-fund"
    if shutil.which("node") is None:
        unavailable(f"node is not on PATH; install Node.js and run '{install}'")
    if not CCUSAGE_BIN.exists():
        unavailable(f"ccusage is not installed in tests/node; run '{install}'")
    env = child_env(config_dir, {"CLAUDE_CONFIG_DIR": str(config_dir), "TZ": "UTC"})
    command = [str(CCUSAGE_BIN), "claude", report, "--offline", "--json", "--mode", "calculate"]
    command += extra
    version = subprocess.run(
        [str(CCUSAGE_BIN), "--version"], capture_output=True, text=True, env=env, timeout=60
    )
    if CCUSAGE_VERSION not in version.stdout:
        unavailable(f"ccusage --version said {version.stdout.strip()!r}; run '{install}'")
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def _tokens(row: dict[str, object]) -> tuple[object, ...]:
    keys = ("inputTokens", "outputTokens", "cacheCreationTokens", "cacheReadTokens")
    return tuple(row[key] for key in keys)


def test_totals_equal_ccusage_session_report(config_dir: Path, ours: Audit) -> None:
    theirs = ccusage(config_dir, "session")
    total = ours.report.total
    totals = theirs["totals"]
    assert isinstance(totals, dict)
    assert (total.input, total.output, total.cache_write, total.cache_read) == _tokens(totals)
    assert total.usd == pytest.approx(totals["totalCost"], abs=1e-6)
    sessions = theirs["sessions"]
    assert isinstance(sessions, list)
    assert len(sessions) == len(ours.report.by_session) == 5
    for row in sessions:
        tally = ours.report.by_session[row["sessionId"]]
        assert (tally.input, tally.output, tally.cache_write, tally.cache_read) == _tokens(row)
        assert tally.usd == pytest.approx(row["totalCost"], abs=1e-6)


def test_daily_report_differs_only_by_progress_replays(config_dir: Path, ours: Audit) -> None:
    """ccusage `daily` also counts the usage replayed inside `progress` lines: the one session
    without subagent files (`subagent.jsonl`) is where it exceeds us; other days agree."""
    theirs = ccusage(config_dir, "daily")
    daily = theirs["daily"]
    assert isinstance(daily, list)
    by_day = {row["date"]: row for row in daily}
    later = ours.report.by_day["2026-02-12"]
    assert _tokens(by_day["2026-02-12"]) == (
        later.input,
        later.output,
        later.cache_write,
        later.cache_read,
    )
    earlier = ours.report.by_day["2026-02-10"]
    assert by_day["2026-02-10"]["cacheReadTokens"] > earlier.cache_read


def test_known_figures_without_node(ours: Audit) -> None:
    """The ccusage figures recorded in the reference (§3.6), checked even where node is absent."""
    by_session = ours.report.by_session
    short = by_session["short"]
    assert (short.input, short.output, short.cache_write, short.cache_read) == (3, 13, 13835, 11515)
    assert short.usd == pytest.approx(0.1444475, abs=1e-9)
    assert short.requests == 1
    heavy = by_session["tool_heavy"]
    assert (heavy.input, heavy.output, heavy.cache_write, heavy.cache_read) == (
        54,
        212,
        17696,
        88231,
    )
    sub = by_session["subagent"]
    assert (sub.input, sub.output, sub.cache_write, sub.cache_read) == (1576, 1586, 25842, 427286)
    total = ours.report.total
    assert (total.input, total.output, total.cache_write, total.cache_read) == (
        3493,
        67017,
        977657,
        29090258,
    )
    assert total.usd == pytest.approx(21.5167313, abs=1e-6)
    assert ours.stats.malformed == 0 and not ours.stats.unknown_types


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_blocks_equal_ccusage_blocks(config_dir: Path, ours: Audit) -> None:
    theirs = [row for row in ccusage(config_dir, "blocks")["blocks"] if not row["isGap"]]  # type: ignore[union-attr]
    blocks = build_blocks(ours.entries, ours.prices)
    assert len(blocks) == len(theirs) == 3
    for block, row in zip(blocks, theirs, strict=True):
        assert (_iso(block.start), _iso(block.end), _iso(block.last)) == (
            row["startTime"],
            row["endTime"],
            row["actualEndTime"],
        )
        counts = row["tokenCounts"]
        assert block.requests == row["entries"]
        assert block.tokens == row["totalTokens"] == sum(counts.values())
        assert block.usd == pytest.approx(row["costUSD"], abs=1e-6)
        assert not row["isActive"] and row["burnRate"] is None


def test_active_block_burn_rate_and_projection_equal_ccusage(tmp_path: Path) -> None:
    now = time.time()
    lines = [
        (now - 100 * 60, 1_000, 20_000, 300),
        (now - 40 * 60, 2_000, 25_000, 500),
        (now - 10 * 60, 500, 30_000, 800),
    ]
    project = tmp_path / "projects" / "-x-proj"
    project.mkdir(parents=True)
    with (project / "s.jsonl").open("w") as handle:
        for i, (ts, write, read, out) in enumerate(lines):
            usage = {
                "input_tokens": 5,
                "cache_creation_input_tokens": write,
                "cache_read_input_tokens": read,
                "cache_creation": {"ephemeral_5m_input_tokens": write},
                "output_tokens": out,
            }
            message = {"id": f"m{i}", "model": "claude-sonnet-4-5", "usage": usage}
            line = {"type": "assistant", "timestamp": _iso(ts), "requestId": f"r{i}"}
            # compact, as Claude Code writes: ccusage only reads lines holding `"usage":{`
            compact = json.dumps({**line, "message": message}, separators=(",", ":"))
            handle.write(compact + "\n")
    rows = ccusage(tmp_path, "blocks", "--active")["blocks"]
    mine = run_audit([tmp_path / "projects"], tz=UTC)
    active = budget_windows(mine.entries, mine.prices, time.time()).active_dict()
    assert isinstance(rows, list) and len(rows) == 1 and active is not None
    row = rows[0]
    assert row["isActive"] and row["startTime"] == _iso(active["start"])
    assert active["tokens"] == row["totalTokens"]
    assert active["tokens_per_minute"] == pytest.approx(row["burnRate"]["tokensPerMinute"])
    assert active["usd_per_hour"] == pytest.approx(row["burnRate"]["costPerHour"])
    # ccusage looked a moment earlier: at most one minute of burn apart, cost in whole cents
    projection = row["projection"]
    assert abs(active["projected_tokens"] - projection["totalTokens"]) <= (
        active["tokens_per_minute"] + 1
    )
    assert abs(active["projected_usd"] - projection["totalCost"]) <= (
        active["usd_per_hour"] / 60 + 0.005
    )
