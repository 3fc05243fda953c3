"""`offload-mcp audit` end to end through click, on the real fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from offload_mcp.cli import cli

FIXTURES = Path(__file__).parent / "fixtures" / "claude-transcripts" / "spotter"


def test_json_with_projection() -> None:
    args = ["audit", str(FIXTURES), "--timezone", "UTC", "--json", "--project-offload"]
    result = CliRunner().invoke(cli, [*args, "--target", "qwen", "--share", "0.25"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["totals"]["output"] == 67017
    assert data["context_tokens"]["p90"] > data["context_tokens"]["median"] > 0
    assert data["offloadable"]["estimate"] is True
    projection = data["projection"]
    assert projection["target"] == "qwen" and projection["share"] == 0.25
    assert projection["real_usd"] > 10 * projection["naive_usd"]  # the cache-read trap
    assert projection["packet_usd"] < projection["real_usd"]
    assert projection["cache_read_share"] == pytest.approx(data["cache_read_share"])


def test_tables_and_bad_target(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["audit", str(FIXTURES / "short.jsonl"), "--project-offload"])
    assert result.exit_code == 0, result.output
    assert "By model" in result.output and "real: whole context" in result.output
    bad = runner.invoke(cli, ["audit", str(tmp_path), "--target", "nope"])
    assert bad.exit_code == 2 and "IN,OUT" in bad.output
    empty = runner.invoke(cli, ["audit", str(tmp_path)])
    assert empty.exit_code == 0 and "No Claude Code usage" in empty.output


def test_reads_claude_config_dir_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    projects = tmp_path / "projects" / "p"
    projects.mkdir(parents=True)
    (projects / "short.jsonl").write_bytes((FIXTURES / "short.jsonl").read_bytes())
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path))
    result = CliRunner().invoke(cli, ["audit", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["totals"]["requests"] == 1
