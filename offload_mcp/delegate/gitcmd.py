"""Running git for the delegate workspace and its pool: a clean environment, errors that say
which command failed, and a way to overlap independent calls.

Git LFS without git-lfs: a repository whose config names the `lfs` filter (`git lfs install`
wrote it, usually `required`) while git-lfs is not on PATH makes git die on every checkout,
status or hash of a file `.gitattributes` marks `filter=lfs` (a worktree could not even be
made). Our calls then switch the filter off (`_NO_LFS`, through the environment, so no config
file changes): LFS files are handled as their bytes, pointer files as pointer files, as a
user without git-lfs sees them; `patch.collect` names such files so the result can say so.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from offload_mcp.errors import OffloadError

#: git variables that would point our git calls at some other repository or index
_GIT_ENV_DROP = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY")
#: the `lfs` filter switched off: no command (empty ones mean none) and not required
_NO_LFS = (
    ("filter.lfs.process", ""),
    ("filter.lfs.clean", ""),
    ("filter.lfs.smudge", ""),
    ("filter.lfs.required", "false"),
)


class GitError(OffloadError):
    """A git command the workspace needs failed."""


def git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _GIT_ENV_DROP}
    env["GIT_OPTIONAL_LOCKS"] = "0"  # reading the user's repo must not take its index lock
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["LC_ALL"] = "C"
    if not lfs_installed():
        count = int(env.get("GIT_CONFIG_COUNT") or 0)
        for offset, (key, value) in enumerate(_NO_LFS):
            env[f"GIT_CONFIG_KEY_{count + offset}"] = key
            env[f"GIT_CONFIG_VALUE_{count + offset}"] = value
        env["GIT_CONFIG_COUNT"] = str(count + len(_NO_LFS))
    return env


@functools.cache
def lfs_installed() -> bool:
    return shutil.which("git-lfs") is not None


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
        raise _failed(argv, done.returncode, done.stderr)
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
        raise _failed(argv, process.returncode, err)
    return out


def _failed(argv: Sequence[str], returncode: int, stderr: bytes) -> GitError:
    said = stderr.decode("utf-8", "replace").strip().splitlines()
    why = said[-1][:300] if said else f"exit {returncode}"
    return GitError(f"git {_subcommand(argv)} failed: {why}")


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
