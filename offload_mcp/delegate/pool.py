"""Finished worktrees kept per repository, so the next delegation rewrites only what differs.

A fresh `git worktree add` writes every tracked file (250 ms for 500 files, seconds for 10k);
a kept worktree is brought to the user's state by `workspace` with `reset --hard` + `clean`,
which write only the files that differ. This module owns the slots: who may use one, which
to reuse, which to drop.

Layout under `folder` (the data dir's `delegate/pool/`): one directory per repository,
`<name>-<hash of its path>/`, holding `repo` (the repository's path, needed to remove a
worktree from it) and per slot `<id>.lock` and `<id>/` (the worktree at `<id>/<repo name>`,
beside it the scratch files of one run).

Locks: a slot is busy while a process holds `flock` on its lock file, from `acquire` to
`release`. The kernel drops a flock when its holder exits however it exits, so a killed
server's slot is free at once; that is the stale-lock detection, with no pid to misread (pids
are reused). The holder's pid is still written into the file for people looking. A new lock
file is created with O_EXCL and locked before its slot directory exists; an evicted slot's
lock file is unlinked while held, and a taker checks that the file it locked is still the one
at that path, so a slot is never used by two holders, across threads or processes.

Bounds, applied by `release` (off the result's path): at most `per_repo` slots for the
repository and `total` in all, the least recently released idle ones evicted first (busy
slots are never touched, so concurrent delegations may briefly exceed the bound); an idle
slot unused for `idle_s` goes too. Eviction is `git worktree remove` (else delete + `git
worktree prune`). A slot found half made (its creator died before the checkout) is evicted
when met. Without `fcntl` (Windows) there is no pool: `usable` says so.

`describe` is the `status` line: slots counted from the lock files (no git, no lock taken, so
it never makes a delegation think a slot is busy); "in use" counts this process's leases.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from offload_mcp.delegate.gitcmd import GitError, git

#: an idle slot unused this long is evicted by the next release
IDLE_S = 7 * 24 * 3600
#: how long `acquire` waits for a slot this process is giving back, rather than make a new one
RETURN_WAIT_S = 5.0

_returning: dict[Path, threading.Event] = {}
#: lock files of the slots this process holds (for `describe`)
_held: set[Path] = set()
_guard = threading.Lock()


@dataclass(frozen=True)
class Pool:
    folder: Path
    per_repo: int = 2
    total: int = 8
    idle_s: float = IDLE_S


@dataclass
class Lease:
    """One slot, held (flock on `fd`) until `release` or `evict`."""

    pool: Pool
    #: the user's repository (top level)
    top: Path
    #: the slot directory: the worktree (`root`) and the run's scratch files
    slot: Path
    lock: Path
    fd: int
    #: the slot already holds a worktree (else `root` is still to be created)
    reused: bool

    @property
    def root(self) -> Path:
        return self.slot / (self.top.name or "repo")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # drops the flock
            self.fd = -1
            with _guard:
                _held.discard(self.lock)

    def __del__(self) -> None:
        # A lease nobody gives back (its delegation was cancelled while the workspace was
        # being made, and the result dropped) must not hold its slot until the process exits.
        self.close()


def at(data_dir: Path, per_repo: int, total: int) -> Pool:
    """The pool under the data dir (where delegations take slots and `status` counts them)."""
    return Pool(data_dir / "delegate" / "pool", per_repo, total)


def usable(pool: Pool | None) -> bool:
    if pool is None or pool.per_repo <= 0 or pool.total <= 0:
        return False
    try:
        import fcntl  # noqa: F401
    except ImportError:
        return False
    return True


def acquire(pool: Pool, top: Path) -> Lease:
    """An idle slot of `top`'s (the most recently released), else a new empty one; held."""
    home = pool.folder / _key(top)
    home.mkdir(parents=True, exist_ok=True)
    marker = home / "repo"
    if not marker.exists():
        temp = home / f".repo-{secrets.token_hex(4)}"
        temp.write_text(str(top), "utf-8")
        os.replace(temp, marker)
    for lock in sorted(home.glob("*.lock"), key=_mtime, reverse=True):
        fd = _try_lock(lock)
        with _guard:
            back = _returning.get(lock)
        if fd is None and back is not None and back.wait(RETURN_WAIT_S):
            fd = _try_lock(lock)  # being scrubbed by this process: ready in a moment
        if fd is None:
            continue  # busy
        lease = _held_lease(pool, top, lock, fd, reused=True)
        if (lease.root / ".git").is_file():
            return lease
        evict(lease)  # half made: its creator died before the checkout finished
    while True:
        lock = home / f"{secrets.token_hex(4)}.lock"
        fd = _try_lock(lock, create=True)
        if fd is not None:
            lease = _held_lease(pool, top, lock, fd, reused=False)
            lease.slot.mkdir()
            return lease


def _held_lease(pool: Pool, top: Path, lock: Path, fd: int, *, reused: bool) -> Lease:
    with _guard:
        _held.add(lock)
    return Lease(pool, top, lock.with_suffix(""), lock, fd, reused)


def describe(pool: Pool) -> str:
    """One line for `status`: slots kept and for how many repositories, this process's
    leases, the bounds."""
    if not usable(pool):
        return "worktree pool: off (every delegation makes a new worktree)"
    slots = [len(list(home.glob("*.lock"))) for home in _homes(pool)]
    with _guard:
        here = sum(1 for lock in _held if lock.parent.parent == pool.folder)
    repos = sum(1 for count in slots if count)
    return (
        f"worktree pool: {sum(slots)} kept for {repos} repo(s), {here} in use by this server; "
        f"at most {pool.per_repo} per repo, {pool.total} in all"
    )


@contextlib.contextmanager
def returning(lease: Lease) -> Iterator[None]:
    """Mark the slot as being given back by this process (scrubbed, then released), so that
    `acquire` here waits for it instead of checking out a whole new worktree."""
    event = threading.Event()
    with _guard:
        _returning[lease.lock] = event
    try:
        yield
    finally:
        with _guard:
            _returning.pop(lease.lock, None)
        event.set()


def release(lease: Lease) -> None:
    """Give a clean slot back, then hold the pool to its bounds (this slot may go too)."""
    try:
        with contextlib.suppress(OSError):
            os.utime(lease.lock)  # "released now": recency decides what is evicted first
        _enforce(lease)
    finally:
        lease.close()


def evict(lease: Lease) -> None:
    """Remove the slot's worktree (from the user's repository too) and the slot itself."""
    try:
        if (lease.root / ".git").exists():
            _remove_worktree(lease.top, lease.root)
        shutil.rmtree(lease.slot, ignore_errors=True)
        with contextlib.suppress(OSError):
            lease.lock.unlink()  # while held: a waiting taker sees a different file and skips
    finally:
        lease.close()


def _remove_worktree(top: Path, root: Path) -> None:
    try:
        git(["-C", str(top), "worktree", "remove", "--force", "--force", str(root)])
    except GitError:  # the repository moved or is gone, or the worktree is broken
        shutil.rmtree(root, ignore_errors=True)
        with contextlib.suppress(GitError):
            git(["-C", str(top), "worktree", "prune"])


def _enforce(mine: Lease) -> None:
    """Evict idle slots (oldest first) past the bounds or unused too long, then `mine` if the
    repository or the pool is still over."""
    pool = mine.pool
    slots = [(lock, _mtime(lock)) for home in _homes(pool) for lock in home.glob("*.lock")]
    home = mine.lock.parent
    over_repo = sum(1 for lock, _ in slots if lock.parent == home) - pool.per_repo
    over_total = len(slots) - pool.total
    cutoff = time.time() - pool.idle_s
    for lock, used in sorted(slots, key=lambda slot: slot[1]):
        if lock == mine.lock:
            continue
        same = lock.parent == home
        if not (used < cutoff or over_total > 0 or (same and over_repo > 0)):
            continue
        top = _repo(lock.parent)
        fd = _try_lock(lock)
        if fd is None:
            continue  # busy
        if top is None:
            top = Path(os.devnull)  # unknown repository: only the files can go
        evict(Lease(pool, top, lock.with_suffix(""), lock, fd, reused=True))
        over_total -= 1
        over_repo -= 1 if same else 0
    if over_repo > 0 or over_total > 0:
        evict(mine)


def _try_lock(lock: Path, *, create: bool = False) -> int | None:
    """The fd holding `lock`'s flock, or None: busy, gone, or (create) already there."""
    import fcntl

    flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
    try:
        fd = os.open(lock, flags, 0o600)
    except (FileNotFoundError, FileExistsError):
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held, there = os.fstat(fd), os.stat(lock)
        if (held.st_dev, held.st_ino) != (there.st_dev, there.st_ino):
            raise FileNotFoundError(lock)  # evicted between our open and our lock
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    except OSError:  # BlockingIOError: busy
        os.close(fd)
        return None
    return fd


def _homes(pool: Pool) -> list[Path]:
    try:
        return [entry for entry in pool.folder.iterdir() if entry.is_dir()]
    except OSError:
        return []


def _repo(home: Path) -> Path | None:
    try:
        return Path((home / "repo").read_text("utf-8"))
    except OSError:
        return None


def _key(top: Path) -> str:
    digest = hashlib.sha256(os.fsencode(top)).hexdigest()[:12]
    return f"{top.name or 'repo'}-{digest}"


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
