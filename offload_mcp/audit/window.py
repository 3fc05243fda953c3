"""The Claude budget window for `status` and routing, cheap enough to ask about often.

The first look reads every transcript modified in the last HISTORY_DAYS days; later looks read
only what was appended since (Claude Code appends to its transcripts), so a refresh costs one
`stat` per file plus the new lines. The index is kept in the data dir, so a new server process
(Claude Code starts one per session) starts from it instead of from scratch.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from pathlib import Path
from typing import Any

import orjson

from offload_mcp.audit.blocks import Point, Windows, points, windows_of
from offload_mcp.audit.dedupe import dedupe
from offload_mcp.audit.pricing import PriceTable
from offload_mcp.audit.reader import Entry, ReadStats, default_roots, find_files
from offload_mcp.audit.scan import FileReader, read_lines

log = logging.getLogger(__name__)

HISTORY_DAYS = 60
#: how old a verdict the dispatcher may route on before it refreshes it in the background
TTL_S = 60.0
#: a status call newer than this reuses the last look instead of refreshing
FRESH_S = 5.0
#: fewer past blocks or weeks than this and a percentile says nothing: never hot
MIN_PAST_BLOCKS = 5
MIN_PAST_WEEKS = 2
STORE_NAME = "claude-window.json"
#: while a long read goes on, its progress is saved this often
SAVE_EVERY_S = 2.0
#: how far the saved index may lag behind the one in memory
STORE_LAG_S = 30.0
_STORE_VERSION = 1
_CHECK_BYTES = 64
#: an entry as stored: what the window needs, without the tool names
_ROW = attrgetter(
    "timestamp", "message_id", "request_id", "sidechain", "model", "input", "cache_5m",
    "cache_1h", "cache_read", "output", "fast",
)  # fmt: skip


def _check(handle: Any, offset: int) -> str:
    """A digest of the bytes just before `offset`: they change if the file was rewritten."""
    start = max(offset - _CHECK_BYTES, 0)
    handle.seek(start)
    return hashlib.blake2b(handle.read(offset - start), digest_size=8).hexdigest()


@dataclass
class _File:
    """What one transcript gave so far, and how far it was read."""

    ino: int
    size: int
    mtime_ns: int
    offset: int
    check: str
    session: str
    project: str
    named: bool
    entries: list[Entry] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "entries"}
        data["entries"] = [_ROW(e) for e in self.entries]
        return data

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> _File:
        rows = row.pop("entries")
        item = cls(**row)
        item.entries = [
            Entry(ts, item.session, item.project, model, mid, rid, side, i, c5, c1, cr, out, fast)
            for ts, mid, rid, side, model, i, c5, c1, cr, out, fast in rows
        ]
        return item


class TranscriptIndex:
    """Usage entries of recent transcripts, kept current by reading only what was appended."""

    def __init__(self, roots: Sequence[Path] | None = None, store: Path | None = None) -> None:
        self.roots = roots
        self.store = store
        self.files: dict[str, _File] = {}
        #: goes up whenever a refresh finds a transcript changed, added or gone
        self.generation = 0
        self._saved_at = -math.inf
        self._loaded = False

    def refresh(self, now: float) -> list[Entry]:
        """Every entry of every recent file, in file order, after reading what changed."""
        self._load()
        horizon = now - HISTORY_DAYS * 86400
        seen: dict[str, _File] = {}
        changed = False
        saved = time.monotonic()
        for path in find_files(self.roots if self.roots is not None else default_roots()):
            if changed and time.monotonic() - saved > SAVE_EVERY_S:
                # a long first read keeps its progress even if this process ends before it does
                self.files = {**self.files, **seen}
                self._save()
                saved = time.monotonic()
            try:
                info = path.stat()
            except OSError:
                continue
            if info.st_mtime < horizon:
                continue
            key = str(path)
            known = self.files.get(key)
            if known and (known.ino, known.size, known.mtime_ns) == (
                info.st_ino,
                info.st_size,
                info.st_mtime_ns,
            ):
                seen[key] = known
                continue
            item = self._read(path, info, known)
            if item is not None:
                seen[key] = item
            changed = True
        changed = changed or seen.keys() != self.files.keys()
        self.files = seen
        if changed:
            self.generation += 1
            # a live transcript changes at every turn: the copy on disk (for the next process)
            # may lag by STORE_LAG_S, and that process reads the few lines it lacks
            if time.monotonic() - self._saved_at > STORE_LAG_S:
                self._save()
        return [entry for item in seen.values() for entry in item.entries]

    def _read(self, path: Path, info: os.stat_result, known: _File | None) -> _File | None:
        """Read the file from where it was left, or from the start if it is not the same file."""
        reader = FileReader(path, ReadStats(), None)
        try:
            with path.open("rb") as handle:
                if (
                    known is not None
                    and known.ino == info.st_ino
                    and known.offset <= info.st_size
                    and _check(handle, known.offset) == known.check
                ):
                    reader.project, reader.named = known.project, known.named
                    reader.offset = known.offset
                    entries = known.entries
                else:
                    entries = []
                handle.seek(reader.offset)
                entries = entries + list(read_lines(handle, reader, final=False))
                check = _check(handle, reader.offset)
        except OSError:
            return None
        return _File(
            info.st_ino,
            info.st_size,
            info.st_mtime_ns,
            reader.offset,
            check,
            reader.session,
            reader.project,
            reader.named,
            entries,
        )

    def _load(self) -> None:
        if self._loaded or self.store is None:
            return
        self._loaded = True
        try:
            data = orjson.loads(self.store.read_bytes())
            if data.get("version") == _STORE_VERSION:
                self.files = {key: _File.from_row(row) for key, row in data["files"].items()}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            log.warning("ignoring an unreadable Claude window index (%s); rebuilding it", exc)
            self.files = {}

    def _save(self) -> None:
        if self.store is None:
            return
        files = {key: item.row() for key, item in self.files.items()}
        payload = orjson.dumps({"version": _STORE_VERSION, "files": files})
        partial = self.store.with_name(f".{self.store.name}.{os.getpid()}")
        try:
            self.store.parent.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(payload)
            os.replace(partial, self.store)
            self._saved_at = time.monotonic()
        except OSError as exc:
            log.warning("cannot save the Claude window index: %s", exc)


@dataclass(frozen=True)
class ClaudeWindow:
    """One look at the window: the active 5-hour block and the last 7 days vs the past."""

    computed: float
    windows: Windows

    @property
    def block_percentile(self) -> float | None:
        active = self.windows.active_dict()
        if active is None or active["past_blocks"] < MIN_PAST_BLOCKS:
            return None
        value: float | None = active["projected_percentile"]
        return value

    @property
    def week_percentile(self) -> float | None:
        week = self.windows.week
        if (week.get("past_weeks") or 0) < MIN_PAST_WEEKS:
            return None
        return week.get("percentile")

    def hot(self, threshold: float) -> bool:
        """The block heads for, or the week is at, `threshold` percentile of the user's past."""
        if threshold <= 0:
            return False
        return any(
            pct is not None and pct >= threshold
            for pct in (self.block_percentile, self.week_percentile)
        )

    def line(self, threshold: float = 0.0) -> str:
        """One line for `status`; empty when there is no usage in the history at all."""
        windows = self.windows
        if not windows.blocks:
            return ""
        active = windows.active_dict()
        if active is None:
            block = "no active 5h block"
        else:
            block = (
                f"5h block {_clock(active['start'])}-{_clock(active['end'])} "
                f"${active['usd']:.2f} ({_tokens(active['tokens'])} tok)"
            )
            if active["usd_per_hour"] is not None:
                block += f", ${active['usd_per_hour']:.2f}/h"
                block += f" -> ${active['projected_usd']:.2f} at end"
            pct = self.block_percentile
            if pct is not None:
                block += f" (p{pct:.0f} of {active['past_blocks']} past blocks)"
        week = windows.week
        text = f"Claude window (API-equivalent): {block}; 7 days ${week['usd']:.2f}"
        if self.week_percentile is not None:
            text += f" (p{self.week_percentile:.0f} of {week['past_weeks']:.0f} weeks)"
        if self.hot(threshold):
            text += f"; HOT (>= p{threshold:.0f}): offload leans to cheaper providers"
        return text


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().strftime("%H:%M")


def _tokens(count: float) -> str:
    if count >= 1e6:
        return f"{count / 1e6:.1f}M"
    return f"{count / 1e3:.0f}k" if count >= 1e3 else f"{count:.0f}"


def priced(entries: list[Entry], prices: PriceTable) -> list[Point]:
    """One point per request (deduplicated across files), in time order."""
    return points(dedupe(entries), prices)


def look(ordered: list[Point], now: float) -> ClaudeWindow:
    """The window at `now` from the requests of the last HISTORY_DAYS days."""
    low = bisect_left(ordered, (now - HISTORY_DAYS * 86400,))
    high = bisect_right(ordered, (now, math.inf, math.inf))
    return ClaudeWindow(now, windows_of(ordered[low:high], now))


class WindowWatch:
    """The latest look at the window: refreshed in a background thread, never on the caller's.

    `latest()` is for the dispatch path (never waits); `wait_fresh()` is for `status`, run in
    a worker thread, and waits a bounded time for a refresh.
    """

    def __init__(
        self,
        store_dir: Path | None,
        roots: Sequence[Path] | None = None,
        clock: Callable[[], float] = time.time,
        ttl_s: float = TTL_S,
    ) -> None:
        self.index = TranscriptIndex(roots, store_dir / STORE_NAME if store_dir else None)
        self.clock = clock
        self.ttl_s = ttl_s
        self.problem: str | None = None
        self._state: ClaudeWindow | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._prices: PriceTable | None = None
        #: the priced requests, kept while no transcript changes (the index's generation)
        self._points: tuple[int, list[Point]] = (-1, [])

    def refresh(self) -> ClaudeWindow:
        """Read what changed and look again (blocking; one refresh at a time)."""
        with self._lock:
            now = self.clock()
            if self._prices is None:
                self._prices = PriceTable.load()
            entries = self.index.refresh(now)
            if self._points[0] != self.index.generation:
                self._points = (self.index.generation, priced(entries, self._prices))
            state = look(self._points[1], now)
            self._state, self.problem = state, None
            return state

    def _refresh_quietly(self) -> None:
        try:
            self.refresh()
        except Exception as exc:  # a bad transcript tree must never break dispatch or status
            log.warning("Claude window refresh failed: %s", exc)
            self.problem = f"Claude window unavailable: {exc}"

    def _start(self) -> threading.Thread:
        thread = self._thread
        if thread is None or not thread.is_alive():
            thread = threading.Thread(
                target=self._refresh_quietly, name="claude-window", daemon=True
            )
            self._thread = thread
            thread.start()
        return thread

    def latest(self) -> ClaudeWindow | None:
        """The last look, at once; a look older than the TTL starts a refresh for next time."""
        state = self._state
        if state is None or self.clock() - state.computed > self.ttl_s:
            self._start()
        return state

    def hot(self, threshold: float) -> bool:
        if threshold <= 0:
            return False
        state = self.latest()
        return state is not None and state.hot(threshold)

    def wait_fresh(self, timeout_s: float) -> ClaudeWindow | None:
        """A look at most FRESH_S old, waiting up to `timeout_s` for it; else the last one."""
        state = self._state
        if state is not None and self.clock() - state.computed <= FRESH_S:
            return state
        self._start().join(timeout_s)
        return self._state

    def status_line(self, threshold: float, timeout_s: float) -> str:
        """The `status` line: the window now, or why there is none yet (empty: no usage)."""
        state = self.wait_fresh(timeout_s)
        if state is None:
            if self.problem:
                return self.problem
            return "Claude window: first read of the transcripts under way; ask again shortly."
        return state.line(threshold)
