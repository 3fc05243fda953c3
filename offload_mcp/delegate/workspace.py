"""An isolated copy of the user's tree for Codex to work in; the user's tree is never touched.

A git repository gets a detached `git worktree` at HEAD, then the user's uncommitted work is
copied over it: staged and unstaged changes, deletions, and untracked files that are not
ignored (`git status`), so Codex starts from what the user sees. Any other directory is copied
to a temporary directory and tracked by a private git dir outside it (`--git-dir`), so Codex
finds no `.git` of ours and both kinds diff the same way. Either way the snapshot is recorded
as a git tree (`base_tree`): the diff and the apply check compare against it.

Deny list: paths whose name (any part) or relative path matches a pattern of
`[delegate] deny` + `deny_extra` (`.env*`, keys, credentials...) never enter the workspace
(copies skip them; files checked out from HEAD are removed before the snapshot), and files
Codex creates under such names are left out of the patch. What this does not do: Codex's
sandbox restricts writes, not reads, so a determined Codex could still read the user's own
tree by absolute path, and the worktree's `.git` link lets git show committed history.

Reuse: a git workspace comes from a small pool of finished worktrees per repository (`pool`;
`[delegate] pool_per_repo`, `pool_max`), because `git worktree add` writes every tracked file
(~250 ms for 500 files, seconds for 10k) while most of them are the same as last time. A
pooled worktree is first checked (its `.git` link still leads to this repository's git dir,
else it is replaced), then brought to the user's HEAD with `reset --hard <HEAD>` (only files
that differ from its index are written) and `clean -ffdx` (every untracked file goes: the
last run's new files, ignored build output and nested repositories; directories of
submodules, which git leaves alone, are emptied), and its scratch files beside it deleted;
from there the user's uncommitted work and the deny list are applied exactly as for a new
worktree, so a reused workspace is the same as a fresh one. `remove` gives it back scrubbed
the same way and without the deny-listed files (off the result's path, so the next taker's
reset has little to do), or evicts it when git cannot. A kept workspace (`keep_workspace`) is
always new and never pooled. Pooled worktrees show in the user's `git worktree list`,
detached.

New and kept workspaces live under the data dir (`delegate/workspaces/ws-*`), not the system
temp dir: a known place to find a kept one, the user's disk rather than a RAM-backed /tmp for
big trees (and this machine's /tmp made every file write ten times slower). They are removed
afterwards unless kept on request; the next delegation sweeps any older than a day (a killed
server's, or kept ones), and `git worktree prune` in the user's repo then clears their
entries.

Cost: one `rev-parse`; the checkout (`worktree add`, or `reset` + `clean` of a pooled one:
~15 ms for 2,000 files) while `status` and `ls-files` read the user's tree; `update-index` +
`write-tree` only when there is uncommitted work. `bench/delegate_overhead.py` measures the
whole call.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from offload_mcp.delegate import pool as pooling
from offload_mcp.delegate.gitcmd import GitError, finish_git, git, start_git
from offload_mcp.errors import InvalidRequest

__all__ = ["DenyList", "GitError", "Workspace", "add_all", "create", "git", "remove"]

#: a workspace older than this is removed by the next delegation (killed servers, kept ones)
STALE_S = 24 * 3600
#: how many levels of repositories nested in nested repositories `add_all` unfolds
NESTED_LEVELS = 8


@dataclass(frozen=True)
class DenyList:
    """Glob patterns; one without "/" matches any part of a path, one with "/" the whole path.

    Every tracked path of the repository is checked on each call, so the patterns are compiled
    once into one regular expression searched over the whole path (fnmatch per pattern and
    path part took ~100 ms per 1,000 paths).
    """

    patterns: tuple[str, ...]

    def denies(self, relative: str) -> bool:
        return self._compiled.search(relative) is not None

    @functools.cached_property
    def _compiled(self) -> re.Pattern[str]:
        part = "|".join(_glob(p) for p in self.patterns if "/" not in p)
        whole = "|".join(_glob(p.strip("/"), sep="") for p in self.patterns if "/" in p)
        alternatives = [f"(?:^|/)(?:{part})(?:/|\\Z)"] if part else []
        alternatives += [f"^(?:{whole})\\Z"] if whole else []
        return re.compile("|".join(alternatives) or "(?!)", re.DOTALL)


def _glob(pattern: str, sep: str = "/") -> str:
    """fnmatch's glob as a regex, except that `*`, `?` and classes never match `sep` (so a
    part pattern cannot span two parts of a path)."""
    out, i, n = [], 0, len(pattern)
    other = f"[^{sep}]" if sep else "."
    while i < n:
        char = pattern[i]
        i += 1
        if char == "*":
            out.append(other + "*")
        elif char == "?":
            out.append(other)
        elif char == "[":
            j = i + (i < n and pattern[i] == "!")
            j += j < n and pattern[j] == "]"
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append("\\[")
                continue
            body = pattern[i:j].replace("\\", "\\\\")
            i = j + 1
            negate = body.startswith("!")
            body = body[1:] if negate else body
            body = body.replace("^", "\\^").replace("[", "\\[")
            group = f"[^{body}]" if negate else f"[{body}]"
            out.append(f"(?!{re.escape(sep)}){group}" if sep else group)
        else:
            out.append(re.escape(char))
    return "".join(out)


@dataclass
class Workspace:
    #: the user's tree: the repository's top level, or the directory itself
    source_root: Path
    #: the copy of `source_root` Codex works in
    root: Path
    #: where Codex runs: the copy of the directory the caller named
    workdir: Path
    kind: Literal["worktree", "copy"]
    #: temp dir holding `root` (and the private git dir of a copy)
    scratch: Path
    #: git argv prefix that addresses the workspace
    git_prefix: list[str]
    base_tree: str = ""
    #: deny-listed paths kept out of it
    denied: list[str] = field(default_factory=list)
    #: uncommitted or untracked files copied from the user's tree
    carried: int = 0
    #: the pool slot of a pooled worktree (given back by `remove`)
    lease: pooling.Lease | None = None

    def git(self, *args: str, stdin: bytes | None = None) -> bytes:
        return git([*self.git_prefix, *args], stdin=stdin)


def create(
    path: Path,
    deny: DenyList,
    *,
    parent: Path,
    max_copy_files: int,
    pool: pooling.Pool | None = None,
) -> Workspace:
    """A workspace mirroring `path`'s tree: a worktree from `pool` when given and `path` is in
    a git repository, else a new directory under `parent`; the caller must `remove` it."""
    found = _repo_of(path)
    if found is not None and pool is not None and pooling.usable(pool):
        return _pooled(path, found, pool, deny)
    parent.mkdir(parents=True, exist_ok=True)
    _sweep(parent)
    scratch = Path(tempfile.mkdtemp(prefix="ws-", dir=parent))
    try:
        if found is None:
            return _copy(path, scratch, deny, max_copy_files)
        return _worktree(path, found, deny, scratch, scratch / (found.top.name or "repo"))
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def remove(workspace: Workspace) -> None:
    """Give a pooled worktree back clean; delete any other workspace and, for a worktree, its
    entry in the user's repository."""
    if workspace.lease is not None:
        _give_back(workspace.lease, workspace.denied)
        return
    source = str(workspace.source_root)
    if workspace.kind == "worktree":
        try:
            git(["-C", source, "worktree", "remove", "--force", "--force", str(workspace.root)])
        except GitError:
            shutil.rmtree(workspace.scratch, ignore_errors=True)
            with contextlib.suppress(GitError):
                git(["-C", source, "worktree", "prune"])
    shutil.rmtree(workspace.scratch, ignore_errors=True)


def _sweep(parent: Path) -> None:
    """Remove workspaces older than `STALE_S` (a killed server's, or kept ones)."""
    cutoff = time.time() - STALE_S
    for entry in parent.iterdir():
        with contextlib.suppress(OSError):
            if entry.name.startswith("ws-") and entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry, ignore_errors=True)


@dataclass(frozen=True)
class _Repo:
    top: Path
    head: str
    head_tree: str
    #: the repository's git dir shared by its worktrees (`.git` of the main one)
    common: Path


def _repo_of(path: Path) -> _Repo | None:
    """The repository holding `path`; None outside one or before its first commit."""
    try:
        asked = ("--show-toplevel", "--git-common-dir", "HEAD", "HEAD^{tree}")
        out = git(["-C", str(path), "rev-parse", *asked])
    except GitError:
        return None
    lines = out.decode("utf-8", "surrogateescape").splitlines()
    if len(lines) != 4:
        return None
    top = Path(lines[0]).resolve()
    return _Repo(top, lines[2].strip(), lines[3].strip(), (path / lines[1]).resolve())


class _Stale(Exception):
    """A pooled worktree git cannot bring to the user's state; it is replaced."""


def _pooled(path: Path, repo: _Repo, pool: pooling.Pool, deny: DenyList) -> Workspace:
    for _ in range(3):
        lease = pooling.acquire(pool, repo.top)
        try:
            return _worktree(path, repo, deny, lease.slot, lease.root, lease)
        except _Stale:
            pooling.evict(lease)
        except BaseException:
            _give_back(lease)
            raise
    raise GitError(f"cannot prepare a worktree of {repo.top}: pooled worktrees keep failing.")


def _worktree(
    path: Path,
    repo: _Repo,
    deny: DenyList,
    scratch: Path,
    root: Path,
    lease: pooling.Lease | None = None,
) -> Workspace:
    top = repo.top
    status, tracked = _checkout(repo, root, lease)
    workspace = Workspace(
        source_root=top,
        root=root,
        workdir=root / path.resolve().relative_to(top),
        kind="worktree",
        scratch=scratch,
        git_prefix=["-C", str(root)],
        lease=lease,
    )
    names: set[str] = set()
    for entry in tracked.split(b"\0"):
        meta, _, name = entry.partition(b"\t")
        if name:
            names.add(os.fsdecode(name))
            if meta.startswith(b"160000") and lease is not None and lease.reused:
                _empty_dir(root / os.fsdecode(name))  # a submodule's: git leaves what is in it
    touched: list[str] = []
    for entry in status.split(b"\0"):
        if len(entry) < 4:
            continue
        relative = os.fsdecode(entry[3:])
        names.add(relative)
        if deny.denies(relative) or relative.endswith("/"):  # "/": a nested repository
            continue
        _mirror(top / relative, root / relative)
        touched.append(relative)
    workspace.carried = len(touched)
    touched += _deny(workspace, names, deny)
    if not workspace.workdir.is_dir():
        raise InvalidRequest(
            f"path: {path} is neither tracked nor untracked in its repository (ignored?).",
            hint="Pass a directory git knows, or the repository itself.",
        )
    if touched:
        # Only the paths that differ from HEAD are hashed, not the whole tree.
        workspace.git(
            "update-index",
            "--add",
            "--remove",
            "-z",
            "--stdin",
            stdin=b"\0".join(os.fsencode(t) for t in touched) + b"\0",
        )
        workspace.base_tree = workspace.git("write-tree").decode().strip()
    else:
        workspace.base_tree = repo.head_tree
    return workspace


def _checkout(repo: _Repo, root: Path, lease: pooling.Lease | None) -> tuple[bytes, bytes]:
    """Put HEAD's files at `root` (a new worktree, or a pooled one refreshed) while the user's
    status and index are read; returns both (`status -z`, `ls-files -s -z`)."""
    top = str(repo.top)
    status_argv = ["-C", top, "status", "--porcelain=v1", "-z", "--untracked-files=all"]
    status_argv += ["--no-renames", "--ignore-submodules=all"]
    tracked_argv = ["-C", top, "ls-files", "-s", "-z"]
    status_run, tracked_run = start_git(status_argv), start_git(tracked_argv)
    try:
        if lease is not None and lease.reused:
            _refresh(lease, repo)
        else:
            git(["-C", top, "worktree", "add", "--detach", "--quiet", str(root), repo.head])
    finally:
        status = finish_git(status_run, status_argv)
        tracked = finish_git(tracked_run, tracked_argv)
    return status, tracked


def _deny(workspace: Workspace, names: set[str], deny: DenyList) -> list[str]:
    """Remove deny-listed paths checked out from HEAD; note every deny-listed path met."""
    removed = []
    root, top = workspace.root, workspace.source_root
    for relative in sorted(names):
        if not deny.denies(relative):
            continue
        if os.path.lexists(top / relative) or os.path.lexists(root / relative):
            workspace.denied.append(relative)
        if os.path.lexists(root / relative):
            (root / relative).unlink()
            removed.append(relative)
    return removed


def _refresh(lease: pooling.Lease, repo: _Repo) -> None:
    """Bring a pooled worktree to the user's HEAD, exactly: tracked files as committed, nothing
    else (no file the last run left, ignored or not); only files that differ are written."""
    if not _linked(lease.root, repo.common):
        raise _Stale
    try:
        _clear_scratch(lease)
        _scrub(lease.root, repo.head)
    except (GitError, OSError) as exc:
        raise _Stale from exc


def _scrub(root: Path, head: str = "HEAD") -> None:
    # no reflog entry per reuse: the worktree's HEAD log would grow forever
    git(["-C", str(root), "-c", "core.logAllRefUpdates=false", "reset", "--hard", "-q", head])
    git(["-C", str(root), "clean", "-ffdxq"])  # -ff: nested repositories too; -x: ignored


def _give_back(lease: pooling.Lease, denied: Iterable[str] = ()) -> None:
    """Return a slot to the pool clean (the next taker scrubs again: this only saves it the
    work), deny-listed files checked out from HEAD removed again, or evict it when that fails."""
    with pooling.returning(lease):
        try:
            if not (lease.root / ".git").is_file():
                raise _Stale
            _clear_scratch(lease)
            _scrub(lease.root)
            for relative in denied:
                if os.path.lexists(lease.root / relative):
                    (lease.root / relative).unlink()
        except (_Stale, GitError, OSError):
            pooling.evict(lease)
            return
        pooling.release(lease)


def _linked(root: Path, common: Path) -> bool:
    """`root` is still a worktree of the repository whose git dir is `common` (its `.git`
    file could have been rewritten, or the repository moved or pruned it)."""
    link = root / ".git"
    try:
        if link.is_symlink() or not link.is_file():
            return False
        admin = link.parent / link.read_text("utf-8").strip().removeprefix("gitdir:").strip()
        back = admin / (admin / "gitdir").read_text("utf-8").strip()
        return admin.resolve().parent == (common / "worktrees").resolve() and (
            back.resolve() == link.resolve()
        )
    except (OSError, UnicodeDecodeError):
        return False


def _clear_scratch(lease: pooling.Lease) -> None:
    """The last run's files beside the worktree (its schema file, anything else)."""
    for entry in lease.slot.iterdir():
        if entry != lease.root:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


def _empty_dir(directory: Path) -> None:
    if directory.is_dir() and not directory.is_symlink():
        for entry in list(directory.iterdir()):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


def _copy(path: Path, scratch: Path, deny: DenyList, max_files: int) -> Workspace:
    source = path.resolve()
    root = scratch / (source.name or "work")
    denied: list[str] = []
    files: list[str] = []
    for relative in _walk(source, deny, denied):
        files.append(relative)
        if len(files) > max_files:
            raise InvalidRequest(
                f"path: {source} holds more than {max_files} files, too many to copy.",
                hint="Point it at a smaller directory, make it a git repository (a worktree "
                "is used then), or raise [delegate] max_copy_files.",
            )
    root.mkdir()
    for relative in files:
        _mirror(source / relative, root / relative)
    git_dir = scratch / "git"
    workspace = Workspace(
        source_root=source,
        root=root,
        workdir=root,
        kind="copy",
        scratch=scratch,
        git_prefix=["--git-dir", str(git_dir), "--work-tree", str(root)],
        denied=denied,
    )
    workspace.git("init", "--quiet")
    workspace.base_tree = _snapshot(workspace)
    return workspace


def _walk(source: Path, deny: DenyList, denied: list[str]) -> Iterable[str]:
    """Relative paths of files and symlinks under `source`, deny-listed ones left out."""
    for dirpath, dirnames, filenames in os.walk(source):
        here = Path(dirpath).relative_to(source).as_posix()
        prefix = "" if here == "." else here + "/"
        kept = []
        for name in dirnames:
            relative = prefix + name
            if deny.denies(relative):
                denied.append(relative + "/")
            elif os.path.islink(os.path.join(dirpath, name)):
                filenames.append(name)  # a symlink to a directory is copied as a link
            else:
                kept.append(name)
        dirnames[:] = kept
        for name in filenames:
            relative = prefix + name
            if deny.denies(relative):
                denied.append(relative)
            else:
                yield relative


def _mirror(source: Path, target: Path) -> None:
    """Make `target` what `source` is now: a copied file, a symlink, or nothing."""
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    elif os.path.lexists(target):
        target.unlink()
    if source.is_symlink():
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.readlink(source), target)
    elif source.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def _snapshot(workspace: Workspace) -> str:
    """Record the workspace as it is now (the base Codex's changes are measured against)."""
    add_all(workspace)
    return workspace.git("write-tree").decode().strip()


def add_all(workspace: Workspace) -> list[str]:
    """`git add -A`, with every git repository nested in the workspace staged as plain files;
    returns the nested repositories' paths (each ending in "/").

    Codex (or a scaffolder it runs) may `git init` a subfolder, and a copied directory may hold
    a repository. Git alone stages such a folder as a gitlink (a commit id: its files would be
    missing from the patch and apply could not write them), or fails before its first commit.
    A user who asked for a new project expects its files in their tree, not an embedded
    repository, and Codex's private history has no place there: so each nested `.git` is
    moved aside for the add and put back after (a kept workspace still has it); the patch
    holds the files and the report names the folders. Cost when there is none: one listing of
    untracked files.
    """
    nested: list[str] = []
    hidden: list[tuple[Path, Path]] = []
    try:
        for _ in range(NESTED_LEVELS):
            out = workspace.git("ls-files", "-z", "--others", "--exclude-standard", "--full-name")
            found = [os.fsdecode(p) for p in out.split(b"\0") if p.endswith(b"/")]
            found = [p for p in found if os.path.lexists(workspace.root / p / ".git")]
            if not found:
                break
            for relative in found:
                link = workspace.root / relative / ".git"
                aside = Path(tempfile.mkdtemp(prefix="nested-", dir=workspace.scratch)) / ".git"
                os.rename(link, aside)
                hidden.append((aside, link))
            nested += found
        workspace.git("add", "-A")
    finally:
        for aside, link in reversed(hidden):
            os.rename(aside, link)
            aside.parent.rmdir()
    return nested
