"""`status` says which Gemini backend `gemini_research` would use and its quota, or the fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from offload_mcp.backends.gemini_cli import login_method
from offload_mcp.config import Paths
from offload_mcp.server import build_server
from tests.fake_gemini import FakeGemini

pytestmark = pytest.mark.anyio


def fake_cli(tmp_path: Path) -> Path:
    """A `gemini` that only answers `--version`, as the pinned CLI does."""
    script = tmp_path / "bin" / "gemini"
    script.parent.mkdir()
    script.write_text('#!/bin/sh\n[ "$1" = "--version" ] && echo 0.61.0 && exit 0\nexit 41\n')
    script.chmod(0o755)
    return script


def cli_home(tmp_path: Path, auth: str | None) -> Path:
    home = tmp_path / "cli-home"
    (home / ".gemini").mkdir(parents=True)
    if auth:
        settings = {"security": {"auth": {"selectedType": auth}}}
        (home / ".gemini" / "settings.json").write_text(json.dumps(settings))
    return home


def configure(paths: Paths, api_url: str, command: Path, home: Path) -> None:
    paths.config_file.write_text(
        f"""
[providers.gemini-search]
base_url = "{api_url}/v1beta"

[providers.gemini-cli]
command = "{command}"
env = {{ GEMINI_CLI_HOME = "{home}" }}
"""
    )


async def status_and_research(paths: Paths, tmp_path: Path) -> tuple[str, tuple[bool, str]]:
    async with Client(build_server(paths=paths, cwd=tmp_path)) as client:
        status = await client.call_tool("status", {})
        research = await client.call_tool("gemini_research", {"question": "Acme?"})
    return (
        status.content[0].text,  # type: ignore[union-attr]
        (research.is_error, research.content[0].text),  # type: ignore[union-attr]
    )


def research_line(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("gemini_research:"))


async def test_api_key_is_used_and_its_quota_shown(
    paths: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-status-key")
    with FakeGemini() as fake:
        fake.reply("Acme was founded in 1947.")
        configure(paths, fake.url, tmp_path / "none", cli_home(tmp_path, None))
        await status_and_research(paths, tmp_path)
        status, _ = await status_and_research(paths, tmp_path)
    line = research_line(status)
    # the minute window may have turned over between the two calls; the day has not
    assert line.startswith("gemini_research: via gemini-search (key env GEMINI_API_KEY); quota ")
    assert "tok, day 1/250 req" in line and line.endswith("day 1/250 req")


async def test_logged_in_cli_is_the_fallback(paths: Paths, tmp_path: Path) -> None:
    configure(paths, "http://127.0.0.1:9", fake_cli(tmp_path), cli_home(tmp_path, "oauth-personal"))
    status, _ = await status_and_research(paths, tmp_path)
    assert research_line(status) == (
        "gemini_research: via gemini-cli (Gemini CLI 0.61.0, using its Google login); "
        "quota minute 0/60 req, day 0/1000 req"
    )


async def test_neither_usable_says_what_to_set_or_run(paths: Paths, tmp_path: Path) -> None:
    configure(paths, "http://127.0.0.1:9", fake_cli(tmp_path), cli_home(tmp_path, None))
    status, (error, text) = await status_and_research(paths, tmp_path)
    line = research_line(status)
    assert line.startswith("gemini_research: unusable (gemini-search: ")
    assert "gemini-cli: Gemini CLI 0.61.0 is not logged in" in line
    assert "Fix: set GEMINI_API_KEY (or 'offload-mcp keys set gemini')" in line
    assert "npm install -g @google/gemini-cli" in line
    # the tool itself: the key fix for the API, the log-in fix for the CLI
    assert error
    assert "keys set gemini" in text and "GEMINI_API_KEY" in text
    assert "not logged in" in text and "log in" in text


async def test_no_cli_and_no_key(paths: Paths, tmp_path: Path) -> None:
    configure(paths, "http://127.0.0.1:9", tmp_path / "no-such-gemini", cli_home(tmp_path, None))
    status, (error, text) = await status_and_research(paths, tmp_path)
    assert research_line(status).startswith("gemini_research: unusable (")
    assert error and "npm install -g @google/gemini-cli" in text and "GEMINI_API_KEY" in text


@pytest.mark.parametrize(
    ("env", "settings", "expected"),
    [
        ({"GOOGLE_GENAI_USE_GCA": "true"}, None, "its Google login"),
        ({"GEMINI_API_KEY": "k"}, None, "an API key"),
        ({}, {"security": {"auth": {"selectedType": "oauth-personal"}}}, "its Google login"),
        ({}, {"selectedAuthType": "vertex-ai"}, "Vertex AI"),
        ({}, {"security": {"auth": {}}}, None),
        ({}, None, None),
    ],
)
def test_login_method(
    tmp_path: Path, env: dict[str, str], settings: Any, expected: str | None
) -> None:
    if settings is not None:
        (tmp_path / ".gemini").mkdir()
        (tmp_path / ".gemini" / "settings.json").write_text(json.dumps(settings))
    assert login_method({"GEMINI_CLI_HOME": str(tmp_path), **env}) == expected
