"""delegate_to_codex end to end (in-process MCP client) against the scripted replay fake:
verify and the one retry, apply, patch files, the ledger and the result text."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import pytest

from offload_mcp.config import Paths
from offload_mcp.delegate import gitcmd
from tests.delegate_helpers import (
    Codex,
    connect,
    delegate,
    eventually,
    given_back,
    ledger_rows,
    make_repo,
    result_path,
    sh,
    worktrees,
)
from tests.delegate_helpers import write_config as configure

pytestmark = pytest.mark.anyio

VERIFY = 'cat answer.txt; test "$(cat answer.txt)" = 42'


@pytest.fixture
def codex(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Codex:
    return Codex(tmp_path, monkeypatch)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "project", {"answer.txt": "0\n", "keep.txt": "keep\n"})


@pytest.fixture(autouse=True)
def config(paths: Paths, tmp_path: Path, codex: Codex) -> None:
    configure(paths, tmp_path, codex)


def wrote(text: str, message: str = "done") -> list[dict[str, str]]:
    return [{"write": "answer.txt", "text": text}, {"message": message}]


async def test_verify_fails_then_passes_on_the_retry(paths: Paths, repo: Path, codex: Codex):
    codex.plays([wrote("41\n", "I wrote the answer."), wrote("42\n", "Fixed: the answer is 42.")])
    async with connect(paths, repo) as client:
        is_error, text = await delegate(
            client, task="Put the answer in answer.txt.", path=".", verify=VERIFY
        )
    assert not is_error, text
    assert text.startswith("outcome: verified (after 1 retry with the verify output)")
    assert "Fixed: the answer is 42." in text
    assert "verify before the retry: `" in text and "exit 1" in text
    assert "verify: `cat answer.txt;" in text and "exit 0" in text
    assert "answer.txt | 2 +-" in text
    first, second = codex.calls()
    # the first run keeps its session (a retry may follow) and writes in the workspace only
    assert "--ephemeral" not in first["argv"]
    assert first["argv"][first["argv"].index("-s") + 1] == "workspace-write"
    assert "--ignore-user-config" in first["argv"] and "mcp_servers={}" in first["argv"]
    workdir = first["argv"][first["argv"].index("-C") + 1]
    assert Path(workdir) != repo and Path(workdir).name == "project"
    assert "Put the answer in answer.txt." in first["stdin"]
    assert VERIFY in first["stdin"]
    # the retry resumes the same thread with the failing output, in the same workspace
    thread = second["argv"][second["argv"].index("resume") + 1]
    assert thread.startswith("019a7c1e-")
    assert 'sandbox_mode="workspace-write"' in second["argv"]
    assert second["cwd"] == workdir
    assert "41" in second["stdin"] and "exit 1" in second["stdin"]
    # the user's tree is untouched (apply was not asked), the worktree back in the pool clean
    assert (repo / "answer.txt").read_text() == "0\n"
    assert await eventually(lambda: given_back(Path(workdir)))
    assert len(worktrees(repo)) == 2
    patch = result_path(text, "patch").read_text()
    assert "-0\n+42\n" in patch
    # one ledger row per Codex run, each with its own tokens (usage is thread-cumulative)
    rows = ledger_rows(paths)
    assert rows == [
        ("delegate", "codex", "ok", 0, 240, 200, 14),
        ("delegate", "codex", "ok", 1, 240, 200, 14),
    ]
    assert "480 (400 cached)->28 tokens" in text


async def test_verify_fails_twice(paths: Paths, repo: Path, codex: Codex):
    codex.plays([wrote("41\n"), wrote("40\n", "Tried again.")])
    async with connect(paths, repo) as client:
        is_error, text = await delegate(
            client, task="Answer.", path=str(repo), verify=VERIFY, apply=True
        )
    assert not is_error, text
    assert text.startswith("outcome: verify_failed (after 1 retry")
    lines = text.splitlines()
    verify_at = next(i for i, line in enumerate(lines) if line.startswith("verify: "))
    assert "exit 1" in lines[verify_at] and lines[verify_at + 1] == "40"
    assert "not applied: the outcome is verify_failed, not verified." in text
    assert (repo / "answer.txt").read_text() == "0\n"
    assert len(codex.calls()) == 2


async def test_apply_success(paths: Paths, repo: Path, codex: Codex):
    codex.plays(
        [
            [
                {"write": "answer.txt", "text": "42\n"},
                {"write": "src/new.py", "text": "print('new')\n"},
                {"delete": "keep.txt"},
                {"message": "Answered, added src/new.py, removed keep.txt."},
            ]
        ]
    )
    (repo / "notes.txt").write_text("untracked user notes\n")
    async with connect(paths, repo) as client:
        is_error, text = await delegate(
            client, task="Answer.", path=str(repo), verify=VERIFY, apply=True
        )
    assert not is_error, text
    assert text.startswith("outcome: verified\n")
    assert "applied to the working tree" in text
    assert (repo / "answer.txt").read_text() == "42\n"
    assert (repo / "src" / "new.py").read_text() == "print('new')\n"
    assert not (repo / "keep.txt").exists()
    assert (repo / "notes.txt").read_text() == "untracked user notes\n"
    assert len(codex.calls()) == 1  # verify passed: no retry


async def test_a_repository_codex_initialised_is_applied_as_plain_files(
    paths: Paths, repo: Path, codex: Codex
):
    scaffold = "mkdir app && cd app && git init -q && echo 'print(1)' > main.py"
    codex.plays([[{"command": scaffold}, *wrote("42\n", "Scaffolded app/.")]])
    async with connect(paths, repo) as client:
        is_error, text = await delegate(
            client, task="Scaffold.", path=str(repo), verify=VERIFY, apply=True
        )
    assert not is_error, text
    assert "applied to the working tree" in text
    assert "note: nested git repositories: app/ (their files" in text
    assert (repo / "app" / "main.py").read_text() == "print(1)\n"
    assert not (repo / "app" / ".git").exists()


async def test_lfs_files_without_git_lfs_are_applied_and_named(
    paths: Paths, tmp_path: Path, codex: Codex, monkeypatch: pytest.MonkeyPatch
):
    files = {".gitattributes": "*.bin filter=lfs\n", "answer.txt": "0\n", "m.bin": "pointer\n"}
    repo = make_repo(tmp_path / "lfs", files)
    sh(repo, "git", "config", "filter.lfs.process", "git-lfs-not-installed filter-process")
    sh(repo, "git", "config", "filter.lfs.required", "true")
    monkeypatch.setattr(gitcmd, "lfs_installed", lambda: False)
    codex.plays([[{"write": "m.bin", "text": "model\n"}, *wrote("42\n")]])
    async with connect(paths, repo) as client:
        is_error, text = await delegate(
            client, task="Retrain.", path=str(repo), verify=VERIFY, apply=True
        )
    assert not is_error, text
    assert "applied to the working tree" in text
    assert "note: Git LFS files, as plain bytes since git-lfs is not installed: m.bin" in text
    assert (repo / "m.bin").read_text() == "model\n"


async def test_apply_refused_when_the_tree_changed_meanwhile(
    paths: Paths, repo: Path, codex: Codex
):
    # While Codex works, the user edits answer.txt in their own tree.
    codex.plays(
        [
            [
                {"command": f"echo 'user edit' > {repo / 'answer.txt'}"},
                {"write": "answer.txt", "text": "42\n"},
                {"write": "other.txt", "text": "new\n"},
                {"message": "done"},
            ]
        ]
    )
    async with connect(paths, repo) as client:
        is_error, text = await delegate(
            client, task="Answer.", path=str(repo), verify=VERIFY, apply=True
        )
    assert not is_error, text
    assert text.startswith("outcome: verified")
    assert "not applied: 1 file(s) changed" in text and "(answer.txt)" in text
    assert "nothing was written" in text
    assert (repo / "answer.txt").read_text() == "user edit\n"
    assert not (repo / "other.txt").exists()  # all or nothing
    assert "+42" in result_path(text, "patch").read_text()


async def test_no_changes_and_unverified(paths: Paths, repo: Path, codex: Codex):
    codex.plays([[{"message": "Nothing needed changing."}]])
    async with connect(paths, repo) as client:
        is_error, text = await delegate(client, task="Check.", path=str(repo), verify=VERIFY)
        assert not is_error and text.startswith("outcome: no_changes"), text
        assert "verify:" not in text and "patch:" not in text
        codex.plays([wrote("7\n", "Wrote 7.")])
        is_error, text = await delegate(client, task="Write 7.", path=str(repo))
    assert not is_error and text.startswith("outcome: unverified"), text
    assert "--ephemeral" in codex.calls()[-1]["argv"]  # no verify: no retry, no session kept


async def test_read_only_review_with_schema(paths: Paths, repo: Path, codex: Codex):
    codex.plays([[{"message": '{"verdict": "ok", "problems": []}'}]])
    schema = {
        "type": "object",
        "properties": {"verdict": {"type": "string"}, "problems": {"type": "array"}},
        "required": ["verdict", "problems"],
    }
    async with connect(paths, repo) as client:
        is_error, text = await delegate(
            client, task="Review answer.txt.", path=str(repo), sandbox="read-only", schema=schema
        )
    assert not is_error, text
    assert text.startswith('outcome: no_changes\n\n{"verdict":"ok","problems":[]}')
    argv = codex.calls()[0]["argv"]
    assert argv[argv.index("-s") + 1] == "read-only"
    assert Path(argv[argv.index("--output-schema") + 1]).name == "schema.json"
    assert "read-only run" in codex.calls()[0]["stdin"]
    problems = [f"line {n}: a long finding about the code" for n in range(100)]
    codex.plays([[{"message": json.dumps({"verdict": "bad", "problems": problems})}]])
    async with connect(paths, repo) as client:
        is_error, text = await delegate(
            client, task="Review.", path=str(repo), sandbox="read-only", schema=schema
        )
    assert not is_error and "(JSON reply of " in text, text
    spilled = Path(text.split(" characters in ")[1].split(")")[0])
    assert json.loads(spilled.read_text())["problems"] == problems


async def test_codex_failure_is_an_outcome_and_plan_limit_an_error(
    paths: Paths, repo: Path, codex: Codex
):
    codex.plays([[{"write": "answer.txt", "text": "half\n"}, {"exit": 3}]])
    async with connect(paths, repo) as client:
        is_error, text = await delegate(client, task="Answer.", path=str(repo), verify=VERIFY)
        assert not is_error and text.startswith("outcome: codex_failed"), text
        assert "note: codex failed: codex: failed (codex exited 3" in text
        assert "+half" in result_path(text, "patch").read_text()  # what it did so far
        limit = "You've hit your usage limit. Upgrade to Pro or try again in 2 hours 30 minutes."
        codex.plays([[{"fail": limit}]])
        is_error, text = await delegate(client, task="Answer.", path=str(repo))
        assert is_error and "ChatGPT plan usage limit reached" in text, text
        assert "Resets in 2.5 h" in text
        is_error, text = await delegate(client, task="Answer.", path=str(repo))
    assert is_error and "codex: cooling down" in text, text
    assert len(codex.calls()) == 2  # the cool-down refused the third run before it started
    assert [row[2] for row in ledger_rows(paths)] == ["provider_error", "rate_limited"]


async def test_progress_is_throttled(paths: Paths, repo: Path, codex: Codex):
    # 40 events in about 3.5 s: a burst of commands, a pause, a file change, a pause
    steps: list[dict[str, object]] = [{"command": f"echo step {n}"} for n in range(20)]
    steps += [{"sleep": 2.1}, {"write": "answer.txt", "text": "42\n"}, {"sleep": 1.1}]
    codex.plays([[*steps, {"message": "ok"}]])
    seen: list[tuple[float, str]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((time.monotonic(), message or ""))

    async with connect(paths, repo) as client:
        result = await client.call_tool(
            "delegate_to_codex",
            {"task": "Answer.", "path": str(repo), "verify": VERIFY},
            progress_callback=on_progress,
        )
    assert not result.is_error
    messages = [m for _, m in seen]
    assert any(m.startswith("codex runs: /bin/bash -lc") for m in messages), messages
    assert any(m.startswith("codex changed: answer.txt") for m in messages), messages
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(seen)]
    assert all(gap >= 0.9 for gap in gaps), gaps
    assert len(seen) < 10


async def test_model_and_profile_reach_the_retry(
    paths: Paths, repo: Path, tmp_path: Path, codex: Codex
):
    configure(paths, tmp_path, codex, model="gpt-5.1-codex", extra_body={"profile": "fast"})
    codex.plays([wrote("41\n"), wrote("42\n")])
    async with connect(paths, repo) as client:
        is_error, text = await delegate(client, task="Answer.", path=str(repo), verify=VERIFY)
    assert not is_error and text.startswith("outcome: verified (after 1 retry"), text
    first, second = (call["argv"] for call in codex.calls())
    assert (
        first[first.index("-p") + 1] == "fast" and first[first.index("-m") + 1] == "gpt-5.1-codex"
    )
    resume = second.index("resume")
    assert second[second.index("-p") + 1] == "fast" and second.index("-p") < resume
    assert second[second.index("-m") + 1] == "gpt-5.1-codex"
    assert second[resume + 2 :] == ["-"]
