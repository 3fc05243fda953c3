"""`offload-mcp scan`: exit codes, masked previews, JSON offsets, binary files."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from offload_mcp.cli import cli

TOKEN = "ghp_" + "x7Kq9ZrT2mVbN4pL8sWc1yHd5jFa3gEu6oRi"


def test_findings_exit_1_with_masked_preview(tmp_path: Path) -> None:
    dirty = tmp_path / "settings.py"
    dirty.write_text(f"DEBUG = True\nGITHUB = '{TOKEN}'\n")
    result = CliRunner().invoke(cli, ["scan", str(dirty)])
    assert result.exit_code == 1
    assert f"{dirty}:2: github_token (secret)" in result.output
    assert TOKEN not in result.output and TOKEN[4:12] not in result.output


def test_json_offsets_are_characters(tmp_path: Path) -> None:
    dirty = tmp_path / "notes.txt"
    text = f"café ☕\nkey {TOKEN}\n"
    dirty.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["scan", "--json", str(tmp_path)])
    (row,) = json.loads(result.output)
    assert text[row["start"] : row["end"]] == TOKEN
    assert (row["file"], row["line"], row["category"]) == (str(dirty), 2, "secret")


def test_clean_and_binary_exit_0_missing_exit_2(tmp_path: Path) -> None:
    (tmp_path / "ok.py").write_text("def add(a, b):\n    return a + b\n")
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0" + TOKEN.encode())
    result = CliRunner().invoke(cli, ["scan", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert CliRunner().invoke(cli, ["scan", str(tmp_path / "missing")]).exit_code == 2


def test_stdin(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["scan", "-"], input="mail maria.gonzalez84@gmail.com\n")
    assert result.exit_code == 1 and "<stdin>:1: email (pii)" in result.output


def test_pre_commit_hook_runs_scan_on_the_staged_files(tmp_path: Path) -> None:
    import tomllib

    import yaml

    root = Path(__file__).resolve().parent.parent
    (hook,) = yaml.safe_load((root / ".pre-commit-hooks.yaml").read_text())
    assert {"id", "name", "entry", "language"} <= hook.keys()
    command, *args = hook["entry"].split()
    scripts = tomllib.loads((root / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[command] == "offload_mcp.cli:cli"
    clean, dirty = tmp_path / "app.py", tmp_path / "settings.py"
    clean.write_text("DEBUG = True\n")
    dirty.write_text(f"GITHUB = '{TOKEN}'\n")
    assert CliRunner().invoke(cli, [*args, str(clean)]).exit_code == 0
    assert CliRunner().invoke(cli, [*args, str(clean), str(dirty)]).exit_code == 1
