"""What Codex changed in the workspace, as a patch file, and applying it to the user's tree.

Changes are measured against the workspace's snapshot tree with git (`add -A`, then
`diff --cached BASE`), so new, deleted and binary files count and ignored build output does
not. Files Codex created under deny-listed names are left out (they would overwrite the
user's secrets otherwise). A git repository Codex created in a subfolder counts as its plain
files, without its `.git` (`workspace.add_all` says why). Without git-lfs, files marked
`filter=lfs` go in as their bytes (`gitcmd` says why) and are named in `lfs`. The full patch
goes to a file under the data dir; Claude gets the stat and the path.

Apply is all or nothing: every file the patch touches must still be what it was at the
snapshot (git blob ids compared: the user's file now, with the repository's filters, against
the snapshot's blob), else nothing is written and the error names the files that moved. Then
each file is replaced with the workspace's version (temp file + rename) or deleted; the
user's index is not touched, so the change shows as ordinary uncommitted work.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from offload_mcp.delegate.gitcmd import lfs_installed
from offload_mcp.delegate.workspace import DenyList, Workspace, add_all, git
from offload_mcp.errors import OffloadError


class ApplyRefused(OffloadError):
    """The user's tree changed under the patch (or cannot take it); nothing was written."""


@dataclass
class Changes:
    #: (status A/M/D/T, path relative to the workspace root)
    files: list[tuple[str, str]] = field(default_factory=list)
    stat: str = ""
    patch: bytes = b""
    #: deny-listed paths Codex created, left out of the patch
    dropped: list[str] = field(default_factory=list)
    #: folders holding a git repository: their files are in the patch, their `.git` is not
    nested: list[str] = field(default_factory=list)
    #: changed files `.gitattributes` sends through Git LFS, when git-lfs is not installed
    lfs: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.files


def collect(workspace: Workspace, deny: DenyList) -> Changes:
    """Everything in the workspace that differs from its snapshot, deny-listed paths aside."""
    nested = add_all(workspace)
    files, stat, patch = _diff(workspace)
    dropped = [path for _, path in files if deny.denies(path)]
    if dropped:
        workspace.git("rm", "--cached", "--quiet", "--ignore-unmatch", "--", *dropped)
        files, stat, patch = _diff(workspace)
    if not files:
        return Changes(dropped=dropped)
    lfs = [] if lfs_installed() else _lfs_files(workspace, [path for _, path in files])
    return Changes(files, stat, patch, dropped, nested, lfs)


def _lfs_files(workspace: Workspace, paths: list[str]) -> list[str]:
    """The paths whose `filter` attribute is `lfs` (read from the workspace's attributes)."""
    asked = b"".join(os.fsencode(path) + b"\0" for path in paths)
    out = workspace.git("check-attr", "-z", "--stdin", "filter", stdin=asked).split(b"\0")
    return [os.fsdecode(out[i]) for i in range(0, len(out) - 2, 3) if out[i + 2] == b"lfs"]


def _diff(workspace: Workspace) -> tuple[list[tuple[str, str]], str, bytes]:
    """(status, path) per changed file, the stat and the patch: one `git diff` for all three.

    With `--raw -z` first come `:<modes> <ids> <status>\\0<path>\\0` records, then the stat,
    then (after a NUL) the patch.
    """
    out = workspace.git(
        "diff",
        "--cached",
        "--raw",
        "-z",
        "--no-renames",
        "--binary",
        "--stat=100,70",
        "-p",
        workspace.base_tree,
    )
    files: list[tuple[str, str]] = []
    pos = 0
    while out.startswith(b":", pos):
        meta_end = out.index(b"\0", pos)
        path_end = out.index(b"\0", meta_end + 1)
        status = out[meta_end - 1 : meta_end].decode()
        files.append((status, os.fsdecode(out[meta_end + 1 : path_end])))
        pos = path_end + 1
    stat, found, patch = out[pos:].partition(b"\0diff --git ")
    return files, stat.decode("utf-8", "replace").strip(), b"diff --git " + patch if found else b""


def write_patch(changes: Changes, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.patch"
    path.write_bytes(changes.patch)
    return path


def apply(workspace: Workspace, changes: Changes) -> None:
    """Write the workspace's version of every changed file into the user's tree, or nothing."""
    source = workspace.source_root
    paths = [path for _, path in changes.files]
    expected = _base_blobs(workspace, paths)
    current = _current_blobs(workspace, paths)
    moved = [path for path in paths if expected.get(path) != current.get(path)]
    if moved:
        names = ", ".join(moved[:10]) + (f" and {len(moved) - 10} more" if len(moved) > 10 else "")
        raise ApplyRefused(
            f"not applied: {len(moved)} file(s) changed in {source} since the snapshot "
            f"({names}); nothing was written.",
            hint=_lfs_hint([path for path in moved if path in changes.lfs])
            + "Review the patch file and apply it by hand (git apply), or run again.",
        )
    for path in paths:
        target = source / path
        if not _inside(source, target):
            raise ApplyRefused(f"not applied: {path} lies outside {source}; nothing was written.")
    for status, path in changes.files:
        target = source / path
        if status == "D":
            if os.path.lexists(target):
                target.unlink()
            continue
        _replace(workspace.root / path, target)


def _lfs_hint(lfs: list[str]) -> str:
    if not lfs:
        return ""
    return (
        f"{', '.join(lfs[:3])}: Git LFS, and git-lfs is not installed, so a file holding its "
        "content (not its pointer) counts as changed. "
    )


def _base_blobs(workspace: Workspace, paths: list[str]) -> dict[str, str]:
    """path -> blob id in the snapshot tree (absent paths are missing from the dict)."""
    out = workspace.git("ls-tree", "-z", "--full-tree", workspace.base_tree, "--", *paths)
    blobs = {}
    for entry in out.split(b"\0"):
        if not entry:
            continue
        meta, _, name = entry.partition(b"\t")
        blobs[os.fsdecode(name)] = meta.split()[2].decode()
    return blobs


def _current_blobs(workspace: Workspace, paths: list[str]) -> dict[str, str]:
    """path -> blob id of the user's file now (as git would store it); absent: missing."""
    source = workspace.source_root
    blobs: dict[str, str] = {}
    regular: list[str] = []
    for path in paths:
        target = source / path
        if target.is_symlink():
            blobs[path] = _blob_id(os.fsencode(os.readlink(target)))
        elif target.is_file():
            regular.append(path)
        elif os.path.lexists(target):
            blobs[path] = "not a file"
    if regular:
        if workspace.kind == "worktree":  # the repository's clean filters and eol rules apply
            out = git(["-C", str(source), "hash-object", "--", *regular])
        else:
            out = git(["hash-object", "--no-filters", "--", *(str(source / p) for p in regular)])
        blobs.update(zip(regular, out.decode().split(), strict=True))
    return blobs


def _blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def _inside(root: Path, target: Path) -> bool:
    try:
        return target.parent.resolve().is_relative_to(root.resolve())
    except OSError:
        return False


def _replace(source: Path, target: Path) -> None:
    """Put `source` (a file or symlink) at `target` in one rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_dir() and not target.is_symlink():
        raise ApplyRefused(f"not applied: {target} is a directory now.")
    fd, temp = tempfile.mkstemp(prefix=".offload-", dir=target.parent)
    os.close(fd)
    try:
        if source.is_symlink():
            os.unlink(temp)
            os.symlink(os.readlink(source), temp)
        else:
            shutil.copy2(source, temp)
        os.replace(temp, target)
    except BaseException:
        if os.path.lexists(temp):
            os.unlink(temp)
        raise
