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

Workspaces live in the system temp dir (`offload-delegate-*`) and are removed afterwards
unless kept on request; `git worktree prune` in the user's repo clears the entry of one a
killed server left behind.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from offload_mcp.errors import InvalidRequest, OffloadError

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


def create(path: Path, deny: DenyList, *, max_copy_files: int) -> Workspace:
    """A workspace mirroring `path`'s tree; the caller must `remove` it."""
    found = _repo_of(path)
    scratch = Path(tempfile.mkdtemp(prefix="offload-delegate-"))
    try:
        if found is None:
            return _copy(path, scratch, deny, max_copy_files)
        top, head = found
        return _worktree(path, top, head, scratch, deny)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def remove(workspace: Workspace) -> None:
    """Delete the workspace and, for a worktree, its entry in the user's repository."""
    if workspace.kind == "worktree":
        with contextlib.suppress(GitError):
            git(
                [
                    "-C",
                    str(workspace.source_root),
                    "worktree",
                    "remove",
                    "--force",
                    "--force",
                    str(workspace.root),
                ]
            )
    shutil.rmtree(workspace.scratch, ignore_errors=True)
    if workspace.kind == "worktree" and workspace.root.exists() is False:
        with contextlib.suppress(GitError):
            git(["-C", str(workspace.source_root), "worktree", "prune"])


def _repo_of(path: Path) -> tuple[Path, str] | None:
    """(top level, HEAD commit) of the repository holding `path`; None outside one or unborn."""
    try:
        out = git(["-C", str(path), "rev-parse", "--show-toplevel", "HEAD"])
    except GitError:
        return None
    lines = out.decode("utf-8", "surrogateescape").splitlines()
    if len(lines) != 2:
        return None
    return Path(lines[0]).resolve(), lines[1].strip()


def _worktree(path: Path, top: Path, head: str, scratch: Path, deny: DenyList) -> Workspace:
    root = scratch / (top.name or "repo")
    git(["-C", str(top), "worktree", "add", "--detach", "--quiet", str(root), head])
    workspace = Workspace(
        source_root=top,
        root=root,
        workdir=root / path.resolve().relative_to(top),
        kind="worktree",
        scratch=scratch,
        git_prefix=["-C", str(root)],
    )
    status = git(
        [
            "-C",
            str(top),
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=all",
            "--no-renames",
            "--ignore-submodules=all",
        ]
    )
    for entry in status.split(b"\0"):
        if len(entry) < 4:
            continue
        relative = os.fsdecode(entry[3:])
        if deny.denies(relative):
            if os.path.lexists(top / relative):
                workspace.denied.append(relative)
            continue
        _mirror(top / relative, root / relative)
        workspace.carried += 1
    tracked = workspace.git("ls-files", "-z").split(b"\0")
    for relative in (os.fsdecode(name) for name in tracked if name):
        if deny.denies(relative) and os.path.lexists(root / relative):
            (root / relative).unlink()
            workspace.denied.append(relative)
    workspace.base_tree = _snapshot(workspace)
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
