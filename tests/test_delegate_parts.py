"""delegate_to_codex's parts on their own: the verify tail, the progress throttle, the patch
reader and the all-or-nothing apply."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import anyio
import pytest

from offload_mcp.delegate import gitcmd, patch
from offload_mcp.delegate.progress import Throttle
from offload_mcp.delegate.verify import run_verify
from offload_mcp.delegate.workspace import DenyList, create, remove
from tests.delegate_helpers import make_repo, sh

pytestmark = pytest.mark.anyio

NO_DENY = DenyList((".env",))


async def test_verify_tail_keeps_failures_from_before_it(tmp_path: Path):
    lines = ["FAILED tests/test_a.py::test_one - assert 1 == 2", "E   assert 1 == 2"]
    lines += [f"noise {n}" for n in range(100)]
    script = tmp_path / "out.txt"
    script.write_text("\n".join(lines) + "\n")
    log = tmp_path / "verify.log"
    result = await run_verify(f"cat {script} >&2; exit 3", tmp_path, timeout_s=10, log=log)
    assert result.exit_code == 3 and not result.passed
    tail = result.tail(max_lines=5, max_chars=2000).splitlines()
    assert tail[:3] == [lines[0], lines[1], "..."]
    assert tail[3:] == [f"noise {n}" for n in range(95, 100)]
    assert log.read_text().splitlines() == lines  # stderr folded in, whole output kept
    assert result.describe().startswith("`cat ") and "exit 3" in result.describe()
    short = result.tail(max_lines=50, max_chars=100)
    assert len(short) == 100 and short.startswith("...") and short.endswith("noise 99")


async def test_verify_that_cannot_start_or_times_out(tmp_path: Path):
    result = await run_verify("sleep 5", tmp_path / "missing-dir", timeout_s=5)
    assert result.exit_code is None and "cannot run verify" in result.tail()
    result = await run_verify("echo begun; sleep 5", tmp_path, timeout_s=0.3)
    assert result.exit_code is None and result.lines == ("begun",)
    assert result.tail().endswith("[verify ran longer than 0.3 s; killed]")
    assert "timed out" in result.describe()


async def test_throttle_sends_the_newest_at_most_once_per_interval_and_beats():
    sent: list[tuple[float, str]] = []

    async def send(message: str) -> None:
        sent.append((anyio.current_time(), message))

    throttle = Throttle(send, interval=0.2, heartbeat=0.5)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(throttle.run)
        throttle.enter("codex working")
        for n in range(50):
            throttle.note(f"event {n}")
            await anyio.sleep(0.01)
        await anyio.sleep(1.2)
        tasks.cancel_scope.cancel()
    messages = [m for _, m in sent]
    assert messages[0] == "codex working" and "event 49" in messages
    assert not any(m in messages for m in ("event 0", "event 1", "event 2"))
    assert any(m.startswith("still codex working (") for m in messages)
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(sent)]
    assert min(gaps) >= 0.19


def test_patch_reads_odd_names_and_applies_all_or_nothing(tmp_path: Path):
    repo = make_repo(tmp_path / "repo", {"a b.txt": "1\n", "é.txt": "2\n", "gone.txt": "3\n"})
    space = create(repo, NO_DENY, parent=tmp_path / "ws", max_copy_files=100)
    try:
        (space.root / "a b.txt").write_text("changed\n")
        (space.root / "é.txt").write_text("changé\n")
        (space.root / "gone.txt").unlink()
        (space.root / "new dir").mkdir()
        (space.root / "new dir" / "n.bin").write_bytes(b"\0\1\2")
        (space.root / ".env").write_text("K=v\n")
        changes = patch.collect(space, NO_DENY)
        assert sorted(changes.files) == [
            ("A", "new dir/n.bin"),
            ("D", "gone.txt"),
            ("M", "a b.txt"),
            ("M", "é.txt"),
        ]
        assert changes.dropped == [".env"]
        assert "4 files changed" in changes.stat and "GIT binary patch" in changes.patch.decode()
        # a directory where a new file should go: refused before anything is written
        (repo / "new dir" / "n.bin").mkdir(parents=True)
        with pytest.raises(patch.ApplyRefused, match=r"new dir/n\.bin"):
            patch.apply(space, changes)
        assert (repo / "a b.txt").read_text() == "1\n" and (repo / "gone.txt").exists()
        os.rmdir(repo / "new dir" / "n.bin")
        patch.apply(space, changes)
        assert (repo / "a b.txt").read_text() == "changed\n"
        assert (repo / "é.txt").read_text() == "changé\n"
        assert (repo / "new dir" / "n.bin").read_bytes() == b"\0\1\2"
        assert not (repo / "gone.txt").exists() and not (repo / ".env").exists()
        # applying twice: every file now differs from the snapshot
        with pytest.raises(patch.ApplyRefused, match="4 file"):
            patch.apply(space, changes)
    finally:
        remove(space)


@pytest.mark.parametrize("committed", [False, True], ids=["no-commit", "committed"])
@pytest.mark.parametrize("kind", ["worktree", "copy"])
def test_nested_repository_codex_made_is_collected_as_plain_files(
    tmp_path: Path, kind: str, committed: bool
):
    if kind == "worktree":
        source = make_repo(tmp_path / "src", {"a.txt": "1\n"})
    else:
        source = tmp_path / "src"
        source.mkdir()
        (source / "a.txt").write_text("1\n")
    space = create(source, NO_DENY, parent=tmp_path / "ws", max_copy_files=100)
    try:
        app = space.root / "app"
        if committed:
            make_repo(app, {"main.py": "print(1)\n"})
        else:
            app.mkdir()
            sh(app, "git", "init", "-q")
        (app / "new.txt").write_text("n\n")
        (app / "deep").mkdir()
        sh(app / "deep", "git", "init", "-q")  # a repository inside the nested one
        (app / "deep" / "d.txt").write_text("d\n")
        changes = patch.collect(space, NO_DENY)
        expected = {"app/new.txt", "app/deep/d.txt"} | ({"app/main.py"} if committed else set())
        assert sorted(changes.files) == sorted(("A", p) for p in expected)
        assert changes.nested == ["app/", "app/deep/"]
        assert b".git/" not in changes.patch
        assert (app / ".git").is_dir() and (app / "deep" / ".git").is_dir()  # put back
        patch.apply(space, changes)
        assert {p for p in expected if (source / p).is_file()} == expected
        assert not (source / "app" / ".git").exists()
    finally:
        remove(space)


LFS_POINTER = (
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n"
)


@pytest.mark.parametrize("configured", [False, True], ids=["no-filter", "filter-required"])
def test_lfs_files_without_git_lfs_go_through_as_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, configured: bool
):
    attributes = "*.bin filter=lfs diff=lfs merge=lfs -text\n"
    repo = make_repo(
        tmp_path / "repo", {".gitattributes": attributes, "big.bin": LFS_POINTER, "a.txt": "1\n"}
    )
    monkeypatch.setattr(gitcmd, "lfs_installed", lambda: False)
    if configured:  # what `git lfs install` leaves behind, with its command gone
        sh(repo, "git", "config", "filter.lfs.process", "git-lfs-not-installed filter-process")
        sh(repo, "git", "config", "filter.lfs.required", "true")
    space = create(repo, NO_DENY, parent=tmp_path / "ws", max_copy_files=100)
    try:
        assert (space.root / "big.bin").read_text() == LFS_POINTER  # as checked out without LFS
        (space.root / "big.bin").write_bytes(b"\0new content\n")
        (space.root / "a.txt").write_text("2\n")
        changes = patch.collect(space, NO_DENY)
        assert sorted(changes.files) == [("M", "a.txt"), ("M", "big.bin")]
        assert changes.lfs == ["big.bin"]
        (repo / "big.bin").write_bytes(b"\0real content, smudged while git-lfs was there\n")
        with pytest.raises(patch.ApplyRefused, match=r"big\.bin: Git LFS, and git-lfs is not"):
            patch.apply(space, changes)
        (repo / "big.bin").write_text(LFS_POINTER)
        patch.apply(space, changes)
        assert (repo / "big.bin").read_bytes() == b"\0new content\n"
    finally:
        remove(space)
