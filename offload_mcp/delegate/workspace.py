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

Workspaces live under the data dir (`delegate/workspaces/ws-*`), not the system temp dir: a
known place to find a kept one, the user's disk rather than a RAM-backed /tmp for big trees
(and this machine's /tmp made every file write ten times slower). They are removed afterwards
unless kept on request; the next delegation sweeps any older than a day (a killed server's,
or kept ones), and `git worktree prune` in the user's repo then clears their entries.

Cost: one `rev-parse`, `worktree add` (a checkout: most of the time, growing with the tree)
while `status` and `ls-files` read the user's tree, and `update-index` + `write-tree` only
when there is uncommitted work; `bench/delegate_overhead.py` measures the whole call.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from offload_mcp.errors import InvalidRequest, OffloadError

#: a workspace older than this is removed by the next delegation (killed servers, kept ones)
STALE_S = 24 * 3600
#: git variables that would point our git calls at some other repository or index
_GIT_ENV_DROP = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY")


class GitError(OffloadError):
    """A git command the workspace needs failed."""


@dataclass(frozen=True)
class DenyList:
    """Glob patterns; one without "/" matches any part of a path, one with "/" the whole path."""

    patterns: tuple[str, ...]

    def denies(self, relative: str) -> bool:
        parts = relative.split("/")
        for pattern in self.patterns:
            if "/" in pattern:
                if fnmatch.fnmatchcase(relative, pattern.strip("/")):
                    return True
            elif any(fnmatch.fnmatchcase(part, pattern) for part in parts):
                return True
        return False


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

    def git(self, *args: str, stdin: bytes | None = None) -> bytes:
        return git([*self.git_prefix, *args], stdin=stdin)


def git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _GIT_ENV_DROP}
    env["GIT_OPTIONAL_LOCKS"] = "0"  # reading the user's repo must not take its index lock
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["LC_ALL"] = "C"
    return env


def git(argv: Sequence[str], *, cwd: Path | None = None, stdin: bytes | None = None) -> bytes:
    """Run `git argv...`; its stdout, or `GitError` with the end of stderr."""
    try:
        done = subprocess.run(
            ["git", *argv],
            input=stdin,
            capture_output=True,
            cwd=cwd,
            env=git_env(),
            check=False,
            stdin=None if stdin is not None else subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise GitError("git is not installed.", hint="Install git; delegation needs it.") from None
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        why = said[-1][:300] if said else f"exit {done.returncode}"
        raise GitError(f"git {_subcommand(argv)} failed: {why}")
    return done.stdout


def start_git(argv: Sequence[str]) -> subprocess.Popen[bytes]:
    """Start `git argv...` now; `finish_git` collects it (lets independent calls overlap)."""
    try:
        return subprocess.Popen(
            ["git", *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=git_env(),
        )
    except FileNotFoundError:
        raise GitError("git is not installed.", hint="Install git; delegation needs it.") from None


def finish_git(process: subprocess.Popen[bytes], argv: Sequence[str]) -> bytes:
    out, err = process.communicate()
    if process.returncode != 0:
        said = err.decode("utf-8", "replace").strip().splitlines()
        why = said[-1][:300] if said else f"exit {process.returncode}"
        raise GitError(f"git {_subcommand(argv)} failed: {why}")
    return out


def _subcommand(argv: Sequence[str]) -> str:
    """`worktree` of `-C DIR worktree add ...`: the word to name in an error."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("-C", "--git-dir", "--work-tree", "-c"):
            skip = True
        elif not arg.startswith("-"):
            return arg
    return "command"


def create(path: Path, deny: DenyList, *, parent: Path, max_copy_files: int) -> Workspace:
    """A workspace mirroring `path`'s tree, in a new directory under `parent`; the caller
    must `remove` it."""
    found = _repo_of(path)
    parent.mkdir(parents=True, exist_ok=True)
    _sweep(parent)
    scratch = Path(tempfile.mkdtemp(prefix="ws-", dir=parent))
    try:
        if found is None:
            return _copy(path, scratch, deny, max_copy_files)
        return _worktree(path, *found, scratch, deny)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def remove(workspace: Workspace) -> None:
    """Delete the workspace and, for a worktree, its entry in the user's repository."""
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


def _repo_of(path: Path) -> tuple[Path, str, str] | None:
    """(top level, HEAD commit, its tree) of the repository holding `path`; None outside one
    or before its first commit."""
    try:
        out = git(["-C", str(path), "rev-parse", "--show-toplevel", "HEAD", "HEAD^{tree}"])
    except GitError:
        return None
    lines = out.decode("utf-8", "surrogateescape").splitlines()
    if len(lines) != 3:
        return None
    return Path(lines[0]).resolve(), lines[1].strip(), lines[2].strip()


def _worktree(
    path: Path, top: Path, head: str, head_tree: str, scratch: Path, deny: DenyList
) -> Workspace:
    root = scratch / (top.name or "repo")
    # What the user changed, and what is tracked, are read while git checks out the worktree.
    status_argv = [
        "-C",
        str(top),
        "status",
        "--porcelain=v1",
        "-z",
        "--untracked-files=all",
        "--no-renames",
        "--ignore-submodules=all",
    ]
    tracked_argv = ["-C", str(top), "ls-files", "-z"]
    status_run, tracked_run = start_git(status_argv), start_git(tracked_argv)
    try:
        git(["-C", str(top), "worktree", "add", "--detach", "--quiet", str(root), head])
    finally:
        status = finish_git(status_run, status_argv)
        tracked = finish_git(tracked_run, tracked_argv)
    workspace = Workspace(
        source_root=top,
        root=root,
        workdir=root / path.resolve().relative_to(top),
        kind="worktree",
        scratch=scratch,
        git_prefix=["-C", str(root)],
    )
    touched: list[str] = []
    for entry in status.split(b"\0"):
        if len(entry) < 4:
            continue
        relative = os.fsdecode(entry[3:])
        if deny.denies(relative) or relative.endswith("/"):  # "/": a nested repository
            continue
        _mirror(top / relative, root / relative)
        touched.append(relative)
    workspace.carried = len(touched)
    names = {os.fsdecode(name) for name in tracked.split(b"\0") if name}
    names.update(os.fsdecode(e[3:]) for e in status.split(b"\0") if len(e) >= 4)
    for relative in sorted(names):
        if not deny.denies(relative):
            continue
        if os.path.lexists(top / relative) or os.path.lexists(root / relative):
            workspace.denied.append(relative)
        if os.path.lexists(root / relative):
            (root / relative).unlink()
            touched.append(relative)
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
        workspace.base_tree = head_tree
    return workspace


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
    workspace.git("add", "-A")
    return workspace.git("write-tree").decode().strip()
