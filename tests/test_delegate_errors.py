"""delegate_to_codex when things go wrong: bad arguments, Codex missing or logged out, the
privacy gate, idle timeouts, hung verify commands, and cancellation (no process survives)."""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path

import anyio
import pytest

from offload_mcp.backends.process import group_members
from offload_mcp.config import Paths
from tests.delegate_helpers import (
    Codex,
    connect,
    delegate,
    eventually,
    given_back,
    ledger_rows,
    make_repo,
    worktrees,
)
from tests.delegate_helpers import write_config as configure

pytestmark = pytest.mark.anyio

SECRET = "ghp_R7tq2LbW9xKd4mZp8NvJc3HsY6fQe1Ua0GiT"
NOTE = (
    "Discharge summary. Patient: Maria Gonzalez, MRN: 00482913. "
    "Diagnosis: type 2 diabetes mellitus."
)


@pytest.fixture
def codex(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Codex:
    return Codex(tmp_path, monkeypatch)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "project", {"answer.txt": "0\n"})


@pytest.fixture(autouse=True)
def config(paths: Paths, tmp_path: Path, codex: Codex) -> None:
    configure(paths, tmp_path, codex)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


async def test_bad_arguments_are_actionable(paths: Paths, repo: Path, tmp_path: Path):
    (tmp_path / "outside").mkdir()
    async with connect(paths, repo) as client:
        result = await client.call_tool("delegate_to_codex", {"task": "t"})
        assert result.is_error and "path" in result.content[0].text  # type: ignore[union-attr]
        cases = {
            "path: missing does not exist.": {"path": "missing"},
            "path: answer.txt is not a directory.": {"path": "answer.txt"},
            "name the file in `files`": {"path": "answer.txt"},
            "outside the allowed roots": {"path": "/"},
            "apply: needs a verify command": {"path": ".", "apply": True},
            "apply: a read-only run": {
                "path": ".",
                "apply": True,
                "verify": "true",
                "sandbox": "read-only",
            },
            "schema: not a valid JSON Schema": {"path": ".", "schema": {"type": 12}},
            "task: must not be blank.": {"path": ".", "task": "   "},
        }
        for expected, arguments in cases.items():
            is_error, text = await delegate(client, **{"task": "t", **arguments})
            assert is_error and expected in text, (expected, text)
        result = await client.call_tool(
            "delegate_to_codex", {"task": "t", "path": ".", "sandbox": "full-access"}
        )
        text = result.content[0].text  # type: ignore[union-attr]
        assert result.is_error and "workspace-write" in text and "read-only" in text


async def test_codex_not_installed(paths: Paths, repo: Path, tmp_path: Path, codex: Codex):
    configure(paths, tmp_path, codex, command=str(tmp_path / "no-such-codex"))
    async with connect(paths, repo) as client:
        is_error, text = await delegate(client, task="t", path=".")
    assert is_error and "no-such-codex` not found" in text
    assert "npm install -g @openai/codex" in text
    assert len(worktrees(repo)) == 1


async def test_codex_not_logged_in_then_api_key(
    paths: Paths, repo: Path, codex: Codex, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("FAKE_CODEX_LOGGED_IN")
    async with connect(paths, repo) as client:
        is_error, text = await delegate(client, task="t", path=".")
        assert is_error and "not logged in. Run `codex login`" in text, text
        assert codex.calls() == []
    monkeypatch.setenv("CODEX_API_KEY", "sk-test-codex-key")
    async with connect(paths, repo) as client:
        is_error, text = await delegate(client, task="t", path=".")
    assert not is_error and text.startswith("outcome: no_changes"), text


async def test_status_shows_codex(paths: Paths, repo: Path):
    async with connect(paths, repo) as client:
        result = await client.call_tool("status", {})
    text = result.content[0].text  # type: ignore[union-attr]
    line = next(line for line in text.splitlines() if line.startswith("- codex"))
    assert "[delegate]" in line and "codex 0.169.0; Logged in using ChatGPT" in line
    assert "worktree pool: 0 kept for 0 repo(s), 0 in use by this server" in text


async def test_status_shows_the_worktree_pool(paths: Paths, repo: Path, codex: Codex):
    async with connect(paths, repo) as client:
        is_error, text = await delegate(client, task="t", path=".")
        assert not is_error, text
        assert await eventually(lambda: given_back(Path(codex.calls()[0]["cwd"])))
        result = await client.call_tool("status", {})
    text = result.content[0].text  # type: ignore[union-attr]
    line = next(line for line in text.splitlines() if line.startswith("worktree pool"))
    assert line == (
        "worktree pool: 1 kept for 1 repo(s), 0 in use by this server; at most 2 per repo, 8 in all"
    )


async def test_brief_passes_the_privacy_gate(paths: Paths, repo: Path, codex: Codex):
    codex.plays([[{"message": "Used token [[SECRET_1]] as told."}]])
    async with connect(paths, repo) as client:
        is_error, text = await delegate(
            client, task=f"Rotate the token {SECRET} in the CI config.", path="."
        )
        assert not is_error, text
        sent = codex.calls()[0]["stdin"]
        assert SECRET not in sent and "[[SECRET_1]]" in sent
        assert f"Used token {SECRET} as told." in text  # restored for Claude
        is_error, text = await delegate(client, task=f"Summarise: {NOTE}", path=".")
    assert is_error and "may not see" in text and "medical_record_number" in text
    assert "Maria" not in text and len(codex.calls()) == 1


async def test_idle_timeout_kills_codex(paths: Paths, repo: Path, tmp_path: Path, codex: Codex):
    configure(paths, tmp_path, codex, extra_body={"idle_timeout_s": 0.5})
    pidfile = tmp_path / "grandchild.pid"
    codex.plays(
        [
            [
                {"write": "answer.txt", "text": "half\n"},
                {"background": "sleep 60", "pidfile": str(pidfile)},
                {"sleep": 30},
            ]
        ]
    )
    started = time.monotonic()
    async with connect(paths, repo) as client:
        is_error, text = await delegate(client, task="t", path=".", verify="true")
    assert time.monotonic() - started < 10
    assert not is_error and text.startswith("outcome: codex_failed"), text
    assert "printed nothing for 0.5 s; killed" in text
    fake = codex.calls()[0]["pid"]
    assert not alive(fake) and not alive(int(pidfile.read_text()))
    assert group_members(fake) == []
    assert [row[2] for row in ledger_rows(paths)] == ["timeout"]
    workdir = Path(codex.calls()[0]["cwd"])
    assert await eventually(lambda: given_back(workdir))  # pooled, its half-done work gone
    assert len(worktrees(repo)) == 2


async def test_verify_timeout_kills_its_group(
    paths: Paths, repo: Path, tmp_path: Path, codex: Codex
):
    configure(paths, tmp_path, codex, extra="\n[delegate]\nverify_timeout_s = 0.5\n")
    codex.plays([[{"write": "answer.txt", "text": "42\n"}, {"message": "ok"}]])
    pidfile = tmp_path / "verify.pid"
    verify = f"sleep 60 & echo $! > {pidfile}; echo started; wait"
    async with connect(paths, repo) as client:
        is_error, text = await delegate(client, task="t", path=".", verify=verify)
    assert not is_error and text.startswith("outcome: verify_failed"), text
    assert "timed out" in text and "[verify ran longer than 0.5 s; killed]" in text
    assert await eventually(lambda: not alive(int(pidfile.read_text())))
    # the retry ran (resume) and verify timed out again
    assert len(codex.calls()) == 2


async def test_cancellation_leaves_no_process_behind(
    paths: Paths, repo: Path, tmp_path: Path, codex: Codex
):
    pidfile = tmp_path / "grandchild.pid"
    codex.plays(
        [
            [
                {"write": "answer.txt", "text": "half\n"},
                {"background": "sleep 120", "pidfile": str(pidfile)},
                {"hang": True},
            ]
        ]
    )
    async with connect(paths, repo) as client:
        async with anyio.create_task_group() as group:
            group.start_soon(functools.partial(delegate, client, task="t", path=".", verify="1"))
            assert await eventually(lambda: pidfile.exists() and pidfile.read_text().strip())
            fake = codex.calls()[0]["pid"]
            grandchild = int(pidfile.read_text())
            assert alive(fake) and alive(grandchild)
            group.cancel_scope.cancel()
        assert await eventually(lambda: not alive(fake) and not alive(grandchild))
        assert group_members(fake) == []
        workdir = Path(codex.calls()[0]["cwd"])
        assert await eventually(lambda: given_back(workdir))
        assert len(worktrees(repo)) == 2
        # the server is still serving
        codex.plays([[{"message": "fine"}]])
        is_error, text = await delegate(client, task="t", path=".")
        assert not is_error and text.startswith("outcome: no_changes"), text
        assert codex.calls()[1]["cwd"] == str(workdir)  # the same worktree, reused
    outcomes = [row[2] for row in ledger_rows(paths)]
    assert outcomes == ["cancelled", "ok"]
