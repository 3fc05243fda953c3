"""Old delegation outputs pruned: patches, verify logs and long replies under `delegate/`.

Every delegation leaves a few files there (`<stamp>-<hex>.patch`, `.verify.log`,
`.verify-retry.log`, `.answer.json`, named by `run`); results point at them, so they must
outlive the call, but not forever. A file goes when it is older than `max_age_s`, or when
more than `max_files` of them remain (oldest first). Only files named the way `run` names
them are considered, never sub-folders (`workspaces/`, `pool/`) or anything a person put
there. One pass is a directory listing and a stat per file; it runs at most once per
`INTERVAL_S` per process (`due`), on a background thread after a delegation.
"""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

MAX_AGE_S = 7 * 24 * 3600
MAX_FILES = 500
#: a process prunes at most this often
INTERVAL_S = 3600.0

#: `20260101-120000-a1b2c3.patch` and its siblings, as `run` names them
_OURS = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}\.(?:patch|verify\.log|verify-retry\.log|answer\.json)")
_last = 0.0
_guard = threading.Lock()


def due(now: float | None = None) -> bool:
    """True once per `INTERVAL_S` per process (the first call included); claims the slot."""
    global _last
    now = time.monotonic() if now is None else now
    with _guard:
        if _last and now - _last < INTERVAL_S:
            return False
        _last = now
        return True


def prune(folder: Path, *, max_age_s: float = MAX_AGE_S, max_files: int = MAX_FILES) -> list[str]:
    """Delete the outputs in `folder` past the age or count bound; the names deleted."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    found: list[tuple[float, os.DirEntry[str]]] = []
    for entry in entries:
        if _OURS.fullmatch(entry.name):
            try:
                if entry.is_file(follow_symlinks=False):
                    found.append((entry.stat(follow_symlinks=False).st_mtime, entry))
            except OSError:
                continue
    found.sort(key=lambda item: item[0], reverse=True)  # newest first
    cutoff = time.time() - max_age_s
    deleted = []
    for rank, (mtime, entry) in enumerate(found):
        if mtime < cutoff or rank >= max_files:
            try:
                os.unlink(entry.path)
            except OSError:
                continue
            deleted.append(entry.name)
    return deleted
