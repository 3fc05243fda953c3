"""delegate_to_codex's workspace: the user's uncommitted work carried over, deny-listed files
kept out (and out of the patch), non-git directories, and nothing left behind."""

from __future__ import annotations

import fnmatch
import os
import shutil
from pathlib import Path

import pytest

from offload_mcp.config import DEFAULT_DENY, Paths
from offload_mcp.delegate.workspace import DenyList, create, remove
from tests.delegate_helpers import (
    Codex,
    connect,
    delegate,
    eventually,
    make_repo,
    result_path,
    sh,
    worktrees,
)
from tests.delegate_helpers import write_config as configure

pytestmark = pytest.mark.anyio

DENY = DenyList((".env", ".env.*", "*.pem", "id_rsa*", ".ssh", "secrets/*.json"))


@pytest.fixture
def codex(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Codex:
    return Codex(tmp_path, monkeypatch)


@pytest.fixture(autouse=True)
def config(paths: Paths, tmp_path: Path, codex: Codex) -> None:
    configure(paths, tmp_path, codex)


def listing(root: Path) -> set[str]:
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames:
            if name == ".git":  # a worktree's link to the repository
                continue
            found.add(Path(dirpath, name).relative_to(root).as_posix())
    return found


def test_deny_list_matches_names_parts_and_paths():
    assert DENY.denies(".env") and DENY.denies("app/.env.production")
    assert DENY.denies("certs/server.pem") and DENY.denies("home/.ssh/config")
    assert DENY.denies("id_rsa.pub") and DENY.denies("secrets/prod.json")
    assert not DENY.denies("src/environment.py") and not DENY.denies("other/secrets/x.json")
    assert not DENY.denies("docs/env.md")


def fnmatch_denies(patterns: tuple[str, ...], relative: str) -> bool:
    """The deny list's meaning, spelled with fnmatch (what the compiled regex must match)."""
    parts = relative.split("/")
    for pattern in patterns:
        if "/" in pattern:
            if fnmatch.fnmatchcase(relative, pattern.strip("/")):
                return True
        elif any(fnmatch.fnmatchcase(part, pattern) for part in parts):
            return True
    return False


def test_compiled_deny_list_means_what_fnmatch_means():
    patterns = (
        *DEFAULT_DENY,
        "[abc]x.txt",
        "[!a-m]y.txt",
        "q[]]z",
        "weird[",
        "a?c",
        "lit.eral+(x)",
        "docs/*.md",
        "/top/*/deep",
    )
    deny = DenyList(patterns)
    names = [
        "",
        ".env",
        ".envy",
        "x.env",
        "a/.env.local/b",
        "server.pem",
        "pem",
        "id_rsa",
        "keys/id_rsa.pub",
        "credentials",
        "my-credentials-prod.json",
        "a/credentials.yml",
        "secrets.toml",
        "secrets",
        "ax.txt",
        "dx.txt",
        "zy.txt",
        "by.txt",
        "q]z",
        "qz",
        "weird[",
        "weird",
        "abc",
        "a/c",
        "a/b/c",
        "lit.eral+(x)",
        "litxeral+(x)",
        "docs/a.md",
        "docs/sub/a.md",
        "x/docs/a.md",
        "top/a/deep",
        "top/a/b/deep",
        "a\nb.pem",
        "src/environment.py",
        "terraform/prod.tfvars",
        "x/.ssh",
        ".ssh/config",
    ]
    for pattern in patterns:
        for name in names:
            single = (pattern,)
            assert DenyList(single).denies(name) == fnmatch_denies(single, name), (pattern, name)
    for name in names:
        assert deny.denies(name) == fnmatch_denies(patterns, name), name
    assert not DenyList(()).denies("anything")


def test_worktree_carries_uncommitted_and_untracked_work(tmp_path: Path):
    repo = make_repo(
        tmp_path / "repo",
        {
            "a.txt": "a1\n",
            "b.txt": "b1\n",
            "gone.txt": "x\n",
            ".gitignore": "*.log\n",
            "config/.env.production": "TOKEN=committed\n",
            "src/app.py": "app\n",
        },
    )
    (repo / "a.txt").write_text("a2 unstaged\n")
    (repo / "b.txt").write_text("b2 staged\n")
    sh(repo, "git", "add", "b.txt")
    (repo / "b.txt").write_text("b3 staged then edited\n")
    (repo / "gone.txt").unlink()
    (repo / "new" / "c.txt").parent.mkdir()
    (repo / "new" / "c.txt").write_text("untracked\n")
    (repo / "build.log").write_text("ignored\n")
    (repo / ".env").write_text("SECRET=untracked\n")
    (repo / "server.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    space = create(repo / "src", DENY, parent=tmp_path / "ws", max_copy_files=100)
    try:
        assert space.kind == "worktree" and space.workdir == space.root / "src"
        assert listing(space.root) == {
            "a.txt",
            "b.txt",
            ".gitignore",
            "new/c.txt",
            "src/app.py",
        }
        assert (space.root / "a.txt").read_text() == "a2 unstaged\n"
        assert (space.root / "b.txt").read_text() == "b3 staged then edited\n"
        assert sorted(space.denied) == [".env", "config/.env.production", "server.pem"]
        # the user's repository is as it was: index, files, branch
        assert sh(repo, "git", "diff", "--cached", "--name-only") == "b.txt\n"
        assert (repo / "config" / ".env.production").exists()
        assert len(worktrees(repo)) == 2
    finally:
        remove(space)
    assert not space.scratch.exists() and len(worktrees(repo)) == 1


def test_non_git_copy_and_its_limit(tmp_path: Path):
    folder = tmp_path / "plain"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "x.txt").write_text("x\n")
    (folder / ".ssh").mkdir()
    (folder / ".ssh" / "id_ed25519").write_text("key\n")
    (folder / "id_rsa").write_text("key\n")
    (folder / "link").symlink_to("sub/x.txt")
    space = create(folder, DENY, parent=tmp_path / "ws", max_copy_files=100)
    try:
        assert space.kind == "copy"
        assert listing(space.root) == {"sub/x.txt", "link"}
        assert os.readlink(space.root / "link") == "sub/x.txt"
        assert not (space.root / ".git").exists()  # our git dir lives beside, not inside
        assert sorted(space.denied) == [".ssh/", "id_rsa"]
    finally:
        remove(space)
    assert not space.scratch.exists()
    with pytest.raises(Exception, match="more than 1 files, too many to copy"):
        create(folder, DENY, parent=tmp_path / "ws", max_copy_files=1)


async def test_non_git_directory_end_to_end(paths: Paths, tmp_path: Path, codex: Codex):
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "answer.txt").write_text("0\n")
    codex.plays([[{"write": "answer.txt", "text": "42\n"}, {"message": "Answered."}]])
    async with connect(paths, folder) as client:
        is_error, text = await delegate(
            client, task="Answer.", path=".", verify="grep -qx 42 answer.txt", apply=True
        )
    assert not is_error, text
    assert text.startswith("outcome: verified") and "applied to the working tree" in text
    assert (folder / "answer.txt").read_text() == "42\n"
    assert sorted(p.name for p in folder.iterdir()) == ["answer.txt"]  # no .git, no leftovers
    workdir = Path(codex.calls()[0]["cwd"])
    assert workdir != folder
    assert await eventually(lambda: not workdir.exists())


async def test_deny_listed_files_never_reach_codex_or_the_patch(
    paths: Paths, tmp_path: Path, codex: Codex
):
    repo = make_repo(tmp_path / "repo", {"app.py": "x = 1\n", "deploy/id_rsa": "tracked key\n"})
    (repo / ".env").write_text("API_KEY=untracked\n")
    (repo / "client.pem").write_text("pem\n")
    codex.plays(
        [
            [
                {"command": "find . -path ./.git -prune -o -type f -print | sort > ../seen.txt"},
                {"write": ".env", "text": "API_KEY=from-codex\n"},
                {"write": "app.py", "text": "x = 2\n"},
                {"message": "done"},
            ]
        ]
    )
    async with connect(paths, repo) as client:
        is_error, text = await delegate(client, task="Bump x.", path=str(repo), keep_workspace=True)
    assert not is_error, text
    kept = result_path(text, "workspace kept")
    try:
        seen = (kept.parent / "seen.txt").read_text().split()
        assert seen == ["./app.py"]
        assert "note: 3 deny-listed path(s) kept out of the workspace" in text
        assert "note: left out of the patch (deny-listed): .env" in text
        patch = result_path(text, "patch").read_text()
        assert "app.py" in patch and ".env" not in patch and "from-codex" not in patch
        assert (repo / ".env").read_text() == "API_KEY=untracked\n"
    finally:
        sh(repo, "git", "worktree", "remove", "--force", str(kept))
        shutil.rmtree(kept.parent, ignore_errors=True)


async def test_files_argument_rejects_deny_listed_and_missing(paths: Paths, tmp_path: Path):
    repo = make_repo(tmp_path / "repo", {"app.py": "x\n", ".env": "K=v\n"})
    async with connect(paths, repo) as client:
        is_error, text = await delegate(client, task="t", path=".", files=[".env"])
        assert is_error and "files: .env is on the delegate deny list" in text
        is_error, text = await delegate(client, task="t", path=".", files=["nope.py"])
        assert is_error and "files: nope.py is not a path inside ." in text
        is_error, text = await delegate(client, task="t", path=".", files=["../outside.py"])
        assert is_error and "is not a path inside" in text


async def test_deny_extra_from_config(paths: Paths, tmp_path: Path, codex: Codex):
    configure(paths, tmp_path, codex, extra='\n[delegate]\ndeny_extra = ["*.sqlite"]\n')
    repo = make_repo(tmp_path / "repo", {"app.py": "x\n", "data.sqlite": "rows\n", ".env": "k\n"})
    seen = tmp_path / "seen.txt"
    codex.plays([[{"command": f"ls -A > {seen}"}, {"message": "looked"}]])
    async with connect(paths, repo) as client:
        is_error, text = await delegate(client, task="Look.", path=".")
    assert not is_error and text.startswith("outcome: no_changes"), text
    assert seen.read_text().split() == [".git", "app.py"]
    assert "2 deny-listed path(s)" in text
