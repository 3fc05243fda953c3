"""delegate_to_codex's worktree pool: a reused worktree is exactly a fresh one, concurrent
delegations never share one, a dead holder's lock is taken over, the pool stays bounded, kept
workspaces stay out of it; and old delegation outputs are pruned."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from offload_mcp.config import Paths
from offload_mcp.delegate import pool as pooling
from offload_mcp.delegate import retention
from offload_mcp.delegate.workspace import DenyList, Workspace, create, remove
from tests.delegate_helpers import (
    Codex,
    connect,
    delegate,
    eventually,
    given_back,
    make_repo,
    result_path,
    sh,
    worktrees,
)
from tests.delegate_helpers import write_config as configure

pytestmark = pytest.mark.anyio

DENY = DenyList((".env", "*.pem", "secrets"))
FILES = {
    "a.txt": "a\n",
    "gone.txt": "gone\n",
    "run.sh": "echo hi\n",
    "src/app.py": "x = 1\n",
    "src/deep/mod.py": "y = 2\n",
    ".gitignore": "*.log\nbuild/\n",
    "config/server.pem": "committed key\n",
}


def tree(root: Path) -> dict[str, str]:
    """Every directory, file (content, exec bit) and symlink under `root`, `.git` aside."""
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        here = Path(dirpath)
        for name in dirnames:
            path = here / name
            kind = f"link->{os.readlink(path)}" if path.is_symlink() else "dir"
            found[path.relative_to(root).as_posix() + "/"] = kind
        for name in filenames:
            path = here / name
            if path == root / ".git":
                continue
            if path.is_symlink():
                found[path.relative_to(root).as_posix()] = f"link->{os.readlink(path)}"
            else:
                exe = "x" if path.stat().st_mode & stat.S_IXUSR else "-"
                found[path.relative_to(root).as_posix()] = exe + path.read_text()
    return found


def same_as_fresh(reused: Workspace, path: Path, tmp_path: Path) -> None:
    fresh = create(path, DENY, parent=tmp_path / "fresh", max_copy_files=100)
    try:
        assert tree(reused.root) == tree(fresh.root)
        assert reused.base_tree == fresh.base_tree
        assert sorted(reused.denied) == sorted(fresh.denied)
        assert reused.carried == fresh.carried
        assert reused.workdir.relative_to(reused.root) == fresh.workdir.relative_to(fresh.root)
        assert sorted(p.name for p in reused.scratch.iterdir()) == [reused.root.name]
    finally:
        remove(fresh)


def make_pool(tmp_path: Path, **bounds: int) -> pooling.Pool:
    return pooling.Pool(tmp_path / "pool", **bounds)


def mess_up(root: Path) -> None:
    """What a Codex run (and its verify) may leave: every kind of change, staged by collect."""
    (root / "a.txt").write_text("changed by codex\n")
    (root / "gone.txt").unlink()
    (root / "src" / "new.py").write_text("new\n")
    (root / "src" / "deep" / "mod.py").unlink()  # its directory left empty
    (root / "run.sh").chmod(0o755)
    (root / "link").symlink_to("a.txt")
    (root / "build" / "obj").mkdir(parents=True)
    (root / "build" / "obj" / "out.o").write_text("ignored output\n")
    (root / "debug.log").write_text("ignored\n")
    (root / ".env").write_text("SECRET=from-codex\n")
    (root / "config" / "server.pem").write_text("codex wrote a key\n")
    (root / "nested").mkdir()
    sh(root / "nested", "git", "init", "-q")
    who = ["-c", "user.name=c", "-c", "user.email=c@example.invalid"]
    sh(root / "nested", "git", *who, "commit", "-q", "--allow-empty", "-m", "n")  # add -A needs it
    (root.parent / "schema.json").write_text("{}")
    sh(root, "git", "add", "-A")
    (root / "sub" / "inside.txt").write_text("written into the submodule's directory\n")


def with_gitlink(repo: Path) -> None:
    """A submodule entry (gitlink) without a .gitmodules: git checks out an empty directory."""
    head = sh(repo, "git", "rev-parse", "HEAD").strip()
    sh(repo, "git", "update-index", "--add", "--cacheinfo", f"160000,{head},sub")
    sh(repo, "git", "commit", "-q", "-m", "gitlink")
    (repo / "sub").mkdir()  # as for a submodule not checked out


def user_moves_on(repo: Path) -> None:
    """The user's tree changes between two delegations: a commit and uncommitted work."""
    (repo / "src" / "app.py").write_text("x = 2\n")
    sh(repo, "git", "commit", "-qam", "x = 2")
    (repo / "a.txt").write_text("user's unstaged edit\n")
    (repo / "untracked.txt").write_text("new\n")
    (repo / "run.sh").unlink()
    (repo / "user.log").write_text("the user's ignored file is never copied\n")
    (repo / ".env").write_text("USER_SECRET=1\n")


@pytest.mark.parametrize("given_back_clean", [True, False], ids=["released", "holder-died"])
def test_reused_worktree_is_exactly_a_fresh_one(tmp_path: Path, given_back_clean: bool):
    repo = make_repo(tmp_path / "repo", FILES)
    with_gitlink(repo)
    pool = make_pool(tmp_path)
    first = create(repo / "src", DENY, parent=tmp_path / "ws", max_copy_files=100, pool=pool)
    assert first.lease is not None and not first.lease.reused
    assert not (first.root / "config" / "server.pem").exists()
    mess_up(first.root)
    sh(first.root, "git", "commit", "-qm", "codex committed")  # moves the worktree's HEAD
    if given_back_clean:
        remove(first)
    else:
        first.lease.close()  # the server died: no scrub, only the kernel dropping the lock
    user_moves_on(repo)
    second = create(repo / "src", DENY, parent=tmp_path / "ws", max_copy_files=100, pool=pool)
    try:
        assert second.lease is not None and second.lease.reused
        assert second.root == first.root
        assert sh(second.root, "git", "rev-parse", "HEAD") == sh(repo, "git", "rev-parse", "HEAD")
        assert (second.root / "a.txt").read_text() == "user's unstaged edit\n"
        for leftover in ("link", "build", "debug.log", "nested", "sub/inside.txt", "run.sh"):
            assert not os.path.lexists(second.root / leftover), leftover
        assert not (second.root / ".env").exists()
        assert not (second.root / "config" / "server.pem").exists()
        same_as_fresh(second, repo / "src", tmp_path)
    finally:
        remove(second)
    # idle in the pool: clean, and without the committed key either
    assert not (second.root / "config" / "server.pem").exists()
    assert sh(second.root, "git", "status", "--porcelain", "--ignored") == " D config/server.pem\n"
    assert len(worktrees(repo)) == 2  # the user's and the pooled one


def test_concurrent_leases_get_different_worktrees(tmp_path: Path):
    repo = make_repo(tmp_path / "repo", FILES)
    pool = make_pool(tmp_path)
    one = create(repo, DENY, parent=tmp_path / "ws", max_copy_files=100, pool=pool)
    two = create(repo, DENY, parent=tmp_path / "ws", max_copy_files=100, pool=pool)
    assert one.root != two.root and one.scratch != two.scratch
    remove(one)
    three = create(repo, DENY, parent=tmp_path / "ws", max_copy_files=100, pool=pool)
    assert three.root == one.root  # the idle one, while `two` is still held
    remove(two)
    remove(three)
    assert len(worktrees(repo)) == 3


async def test_concurrent_delegations_work_in_different_worktrees(
    paths: Paths, tmp_path: Path, codex: Codex
):
    repo = make_repo(tmp_path / "repo", {"answer.txt": "0\n"})
    codex.plays([[{"write": "answer.txt", "text": "1\n"}, {"sleep": 0.5}, {"message": "ok"}]])
    texts: list[str] = []
    async with connect(paths, repo) as client:

        async def one() -> None:
            is_error, text = await delegate(client, task="t", path=".")
            assert not is_error, text
            texts.append(text)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(one)
            tasks.start_soon(one)
    cwds = {call["cwd"] for call in codex.calls()}
    assert len(cwds) == 2 and all(text.startswith("outcome: unverified") for text in texts)
    for cwd in cwds:
        assert Path(cwd).is_relative_to(paths.data_dir / "delegate" / "pool")
        assert await eventually(lambda cwd=cwd: given_back(Path(cwd)))
    for text in texts:
        assert "+1" in result_path(text, "patch").read_text()


HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.ftruncate(fd, 0)
os.write(fd, f"{os.getpid()}\\n".encode())
print("locked", flush=True)
time.sleep(60)
"""


def test_a_dead_holders_lock_is_taken_over(tmp_path: Path):
    repo = make_repo(tmp_path / "repo", FILES)
    pool = make_pool(tmp_path)
    space = create(repo, DENY, parent=tmp_path / "ws", max_copy_files=100, pool=pool)
    assert space.lease is not None
    lock = space.lease.lock
    remove(space)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        assert lock.read_text() == f"{holder.pid}\n"
        busy = create(repo, DENY, parent=tmp_path / "ws", max_copy_files=100, pool=pool)
        assert busy.root != space.root  # held by a live process: not taken
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()  # type: ignore[union-attr]
    # killed without releasing anything: its pid is still in the file, the lock is not
    assert lock.read_text() == f"{holder.pid}\n"
    taken = create(repo, DENY, parent=tmp_path / "ws", max_copy_files=100, pool=pool)
    try:
        assert taken.root == space.root and lock.read_text() == f"{os.getpid()}\n"
    finally:
        remove(taken)
        remove(busy)


def test_a_dropped_workspace_frees_its_slot(tmp_path: Path):
    """A delegation cancelled while its workspace was made never gets it: the slot is freed
    when the lease is collected, and the next taker scrubs it."""
    repo = make_repo(tmp_path / "repo", FILES)
    pool = make_pool(tmp_path)
    space = create(repo, DENY, parent=tmp_path / "ws", max_copy_files=100, pool=pool)
    root = space.root
    (root / "stray.txt").write_text("left by a run nobody finished\n")
    del space
    again = create(repo, DENY, parent=tmp_path / "ws", max_copy_files=100, pool=pool)
    try:
        assert again.root == root and not (root / "stray.txt").exists()
    finally:
        remove(again)


def test_pool_is_bounded_per_repository_and_in_all(tmp_path: Path):
    a = make_repo(tmp_path / "a", FILES)
    b = make_repo(tmp_path / "b", FILES)
    pool = make_pool(tmp_path, per_repo=2, total=3)

    def lease(repo: Path) -> Workspace:
        return create(repo, DENY, parent=tmp_path / "ws", max_copy_files=100, pool=pool)

    spaces = [lease(a) for _ in range(3)]  # three at once: the bound does not block anyone
    assert len({s.root for s in spaces}) == 3 and len(worktrees(a)) == 4
    for space in spaces:
        remove(space)
        time.sleep(0.01)  # distinct release times
    assert len(worktrees(a)) == 3  # two kept
    assert not spaces[0].root.exists()  # the least recently released went
    assert spaces[1].root.exists() and spaces[2].root.exists()
    for space in [lease(b), lease(b)]:
        remove(space)
        time.sleep(0.01)
    # b holds two now; the pool holds three in all, so a's oldest made room
    assert len(worktrees(b)) == 3 and len(worktrees(a)) == 2
    assert not spaces[1].root.exists() and spaces[2].root.exists()
    assert len(list(pool.folder.glob("*/*.lock"))) == 3


def test_idle_slots_expire_and_half_made_slots_are_cleared(tmp_path: Path):
    a = make_repo(tmp_path / "a", FILES)
    b = make_repo(tmp_path / "b", FILES)
    pool = make_pool(tmp_path)
    old = create(a, DENY, parent=tmp_path / "ws", max_copy_files=100, pool=pool)
    assert old.lease is not None
    remove(old)
    long_ago = time.time() - pooling.IDLE_S - 60
    os.utime(old.lease.lock, (long_ago, long_ago))
    remove(create(b, DENY, parent=tmp_path / "ws", max_copy_files=100, pool=pool))
    assert not old.root.exists() and len(worktrees(a)) == 1
    # a creator that died between its lock file and its checkout
    home = next(pool.folder.glob("b-*"))
    (home / "deadbeef.lock").write_text("12345\n")
    (home / "deadbeef").mkdir()
    os.utime(home / "deadbeef.lock")  # the most recent: tried first
    space = create(b, DENY, parent=tmp_path / "ws", max_copy_files=100, pool=pool)
    try:
        assert space.lease is not None and space.lease.reused
        assert not (home / "deadbeef").exists() and not (home / "deadbeef.lock").exists()
    finally:
        remove(space)


def test_a_broken_pooled_worktree_is_replaced(tmp_path: Path):
    repo = make_repo(tmp_path / "repo", FILES)
    pool = make_pool(tmp_path)
    first = create(repo, DENY, parent=tmp_path / "ws", max_copy_files=100, pool=pool)
    remove(first)
    sh(repo, "git", "worktree", "remove", "--force", str(first.root))  # the user's doing
    first.root.mkdir()
    (first.root / ".git").write_text(f"gitdir: {tmp_path / 'elsewhere'}\n")
    second = create(repo, DENY, parent=tmp_path / "ws", max_copy_files=100, pool=pool)
    try:
        assert second.root != first.root and not first.scratch.exists()
        same_as_fresh(second, repo, tmp_path)
    finally:
        remove(second)
    assert len(worktrees(repo)) == 2


def test_no_pool_when_disabled(tmp_path: Path):
    repo = make_repo(tmp_path / "repo", FILES)
    space = create(
        repo, DENY, parent=tmp_path / "ws", max_copy_files=100, pool=make_pool(tmp_path, per_repo=0)
    )
    assert space.lease is None and space.root.is_relative_to(tmp_path / "ws")
    remove(space)
    assert len(worktrees(repo)) == 1 and not (tmp_path / "pool").exists()


def test_describe_counts_slots_and_this_servers_leases_without_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    pool = make_pool(tmp_path)
    assert pooling.describe(pool).startswith("worktree pool: 0 kept for 0 repo(s), 0 in use")
    repo = make_repo(tmp_path / "repo", FILES)
    one = create(repo, DENY, parent=tmp_path / "ws", max_copy_files=100, pool=pool)
    two = create(repo, DENY, parent=tmp_path / "ws", max_copy_files=100, pool=pool)
    remove(one)
    monkeypatch.setattr(pooling, "git", None)  # no git call on the status path
    assert pooling.describe(pool) == (
        "worktree pool: 2 kept for 1 repo(s), 1 in use by this server; at most 2 per repo, 8 in all"
    )
    monkeypatch.undo()
    remove(two)
    assert ", 0 in use" in pooling.describe(pool)
    assert pooling.describe(make_pool(tmp_path, per_repo=0)).startswith("worktree pool: off")


@pytest.fixture
def codex(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Codex:
    return Codex(tmp_path, monkeypatch)


@pytest.fixture(autouse=True)
def config(paths: Paths, tmp_path: Path, codex: Codex) -> None:
    configure(paths, tmp_path, codex)


async def test_keep_workspace_stays_out_of_the_pool(paths: Paths, tmp_path: Path, codex: Codex):
    repo = make_repo(tmp_path / "repo", {"answer.txt": "0\n"})
    codex.plays([[{"write": "answer.txt", "text": "1\n"}, {"message": "ok"}]])
    async with connect(paths, repo) as client:
        is_error, text = await delegate(client, task="t", path=".")
        assert not is_error, text
        pooled = Path(codex.calls()[0]["cwd"])
        assert await eventually(lambda: given_back(pooled))
        is_error, text = await delegate(client, task="t", path=".", keep_workspace=True)
        assert not is_error, text
        kept = result_path(text, "workspace kept")
        assert kept != pooled and kept.is_relative_to(paths.data_dir / "delegate" / "workspaces")
        assert (kept / "answer.txt").read_text() == "1\n"
        assert given_back(pooled)  # the idle pooled one was not taken
        is_error, text = await delegate(client, task="t", path=".")
        assert Path(codex.calls()[2]["cwd"]) == pooled
    assert await eventually(lambda: given_back(pooled))
    assert (kept / "answer.txt").read_text() == "1\n"  # still there, untouched
    assert len(list((paths.data_dir / "delegate" / "pool").glob("*/*.lock"))) == 1
    sh(repo, "git", "worktree", "remove", "--force", str(kept))


def test_retention_prunes_old_outputs_only(tmp_path: Path):
    folder = tmp_path / "delegate"
    (folder / "workspaces").mkdir(parents=True)
    (folder / "pool").mkdir()
    now = time.time()
    old, fresh = now - retention.MAX_AGE_S - 60, now - 60
    names = {
        "20250101-000000-a1b2c3.patch": old,
        "20250101-000000-a1b2c3.verify.log": old,
        "20250101-000000-a1b2c3.verify-retry.log": old,
        "20250101-000000-a1b2c3.answer.json": old,
        "20260101-000000-d4e5f6.patch": fresh,
        "20260101-000000-d4e5f6.verify.log": fresh,
        "notes.txt": old,  # not ours
        "20250101-000000-a1b2c3.patch.bak": old,  # not ours either
    }
    for name, mtime in names.items():
        (folder / name).write_text("x")
        os.utime(folder / name, (mtime, mtime))
    os.utime(folder / "workspaces", (old, old))
    deleted = retention.prune(folder)
    assert sorted(deleted) == sorted(n for n in names if n.startswith("2025") and n[-4:] != ".bak")
    assert sorted(p.name for p in folder.iterdir()) == [
        "20250101-000000-a1b2c3.patch.bak",
        "20260101-000000-d4e5f6.patch",
        "20260101-000000-d4e5f6.verify.log",
        "notes.txt",
        "pool",
        "workspaces",
    ]
    # the count bound: the newest stay
    for n in range(5):
        path = folder / f"20260102-00000{n}-aaaaaa.patch"
        path.write_text("x")
        os.utime(path, (now - 10 + n, now - 10 + n))
    deleted = retention.prune(folder, max_files=3)
    assert sorted(deleted) == sorted(
        ["20260101-000000-d4e5f6.patch", "20260101-000000-d4e5f6.verify.log"]
        + [f"20260102-00000{n}-aaaaaa.patch" for n in range(2)]
    )
    assert retention.prune(tmp_path / "missing") == []


def test_retention_runs_at_most_once_an_interval(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(retention, "_last", 0.0)
    assert retention.due(now=1000.0)
    assert not retention.due(now=1000.0 + retention.INTERVAL_S - 1)
    assert retention.due(now=1000.0 + retention.INTERVAL_S)
