"""Shared set-up for the delegate_to_codex tests: a scripted fake `codex`, repos, a client."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from offload_mcp.config import Paths
from offload_mcp.server import build_server

FAKE = Path(__file__).parent / "fakes" / "codex"


class Codex:
    """Scripts the replay fake for one test and reads back what it was given."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.home = root / "codex-home"
        self.home.mkdir()
        self.script = root / "codex-script.json"
        self.log = root / "codex-log.jsonl"
        monkeypatch.setenv("FAKE_CODEX_SCRIPT", str(self.script))
        monkeypatch.setenv("FAKE_CODEX_LOG", str(self.log))
        monkeypatch.setenv("FAKE_CODEX_LOGGED_IN", "1")
        monkeypatch.delenv("CODEX_API_KEY", raising=False)
        self.plays([[{"message": "nothing to do"}]])

    def plays(self, runs: list[list[dict[str, Any]]]) -> None:
        self.script.write_text(json.dumps({"runs": runs}))

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


def write_config(paths: Paths, root: Path, codex: Codex, extra: str = "", **provider: Any) -> None:
    """config.toml: the codex provider runs the fake; files under `root` may be delegated."""
    fields = {"command": str(FAKE), "env": {"CODEX_HOME": str(codex.home)}, **provider}
    body = "\n".join(f"{key} = {_toml(value)}" for key, value in fields.items())
    paths.config_file.write_text(
        f'[limits]\nallowed_roots = ["{root}"]\n\n[providers.codex]\n{body}\n{extra}\n'
    )


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


@asynccontextmanager
async def connect(paths: Paths, cwd: Path) -> AsyncIterator[Client]:
    async with Client(build_server(paths=paths, cwd=cwd)) as client:
        yield client


async def delegate(client: Client, **arguments: Any) -> tuple[bool, str]:
    result = await client.call_tool("delegate_to_codex", arguments)
    assert result.structured_content is None
    return result.is_error, result.content[0].text  # type: ignore[union-attr]


def sh(cwd: Path, *argv: str) -> str:
    return subprocess.run(argv, cwd=cwd, check=True, capture_output=True, text=True).stdout


def make_repo(path: Path, files: dict[str, str]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    sh(path, "git", "init", "-q", "-b", "main")
    sh(path, "git", "config", "user.email", "t@example.invalid")
    sh(path, "git", "config", "user.name", "t")
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    sh(path, "git", "add", "-A")
    sh(path, "git", "commit", "-q", "-m", "init")
    return path


def worktrees(repo: Path) -> list[str]:
    out = sh(repo, "git", "worktree", "list", "--porcelain")
    return [line for line in out.splitlines() if line.startswith("worktree ")]


def ledger_rows(paths: Paths) -> list[tuple[Any, ...]]:
    with sqlite3.connect(paths.ledger_file) as conn:
        return conn.execute(
            "SELECT tool, provider, outcome, retries, input_tokens, cached_tokens, output_tokens "
            "FROM calls ORDER BY id"
        ).fetchall()


def result_path(text: str, label: str) -> Path:
    line = next(line for line in text.splitlines() if line.startswith(f"{label}: "))
    return Path(line.removeprefix(f"{label}: "))


async def eventually(check: Callable[[], object], timeout: float = 8.0) -> bool:
    """Poll `check` until true (cleanup and kills finish just after a call returns)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        await anyio.sleep(0.02)
    return bool(check())


def given_back(workdir: Path) -> bool:
    """The run's worktree is back in the pool: at HEAD with no change and no untracked or
    ignored file, beside no leftover scratch file, and its slot's lock free."""
    import fcntl
    import os

    root = Path(sh(workdir, "git", "rev-parse", "--show-toplevel").strip())
    slot = root.parent
    if sorted(p.name for p in slot.iterdir()) != [root.name]:
        return False
    if sh(root, "git", "status", "--porcelain", "--ignored", "--untracked-files=all"):
        return False
    fd = os.open(slot.with_suffix(".lock"), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True
