"""Read transcript files fast: bytes in chunks, parse only the lines that can carry usage.

Most of a transcript is tool output, file snapshots and progress lines that cannot add usage
(top-level `message.usage` exists on `assistant` lines only). Such a line is recognised from its
bytes and skipped without parsing; everything else goes through orjson and `entry_from_line`.
What that costs in accuracy: a skipped line is checked for the `{...}` shape (a garbled or
cut-off line counts as malformed) but not parsed, so a well-shaped line of a known type that
would fail to parse goes unnoticed; ccusage does not look at it either. Big audits read files
in two or more processes, in file order, so the result is the same as reading them in one.
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import fields
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

from offload_mcp.audit.fields import Unfit
from offload_mcp.audit.fields import decode as fields_of
from offload_mcp.audit.reader import (
    KNOWN_TYPES,
    Entry,
    ReadStats,
    entry_from_line,
    label,
    make_entry,
    session_and_dir,
)

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

#: bytes read at a time: memory stays flat however large a transcript grows
CHUNK = 1 << 22
#: below this many bytes, starting processes costs more than it saves
PARALLEL_BYTES = 48 << 20
#: line types that cannot carry usage (top-level `message.usage` is on assistant lines only)
_SKIP = frozenset(kind.encode() for kind in KNOWN_TYPES if kind != "assistant")
_TYPE_KEY = b'"type":"'
_CWD_KEY = b'"cwd":"'


def line_type(buf: bytes, start: int, end: int) -> bytes | None:
    """The top-level `type` of a compact JSON object line, read from its bytes, or None.

    Exact for valid JSON: the first `"type":"` is the top-level key when no `{` comes before
    it (a key deeper down sits in an object that opened after the line's own brace; inside a
    string a quote is escaped). A value with an escape, or a line where `message` comes first
    (assistant lines), gives None. `FileReader.lines` inlines the same test.
    """
    at = buf.find(_TYPE_KEY, start, end)
    if at == -1 or buf.find(b"{", start + 1, at) != -1:
        return None
    close = buf.find(b'"', at + 8, end)
    if close == -1:
        return None
    kind = buf[at + 8 : close]
    return None if b"\\" in kind else kind


class FileReader:
    """One file's lines -> entries; the project is the first `cwd` the file names."""

    def __init__(self, path: Path, stats: ReadStats, since: float | None) -> None:
        self.session, self.project = session_and_dir(path)
        self.named = False
        self.stats = stats
        self.since = since
        #: bytes of the file read so far (whole lines only, unless read to its end)
        self.offset = 0

    def parsed(self, raw: bytes, last: bool = False) -> Entry | None:
        """A line that may carry usage: its fields only, or the full parse if they do not fit."""
        try:
            line = fields_of(raw)
        except (Unfit, UnicodeDecodeError):
            return self.parsed_in_full(raw, last)
        kind = line.type
        if not isinstance(kind, str) or kind not in KNOWN_TYPES:
            self.stats.unknown_types[str(kind)] += 1
            return None
        cwd = line.cwd
        if not self.named and isinstance(cwd, str) and cwd:
            self.project, self.named = cwd, True
        message = line.message
        if kind != "assistant" or message is None or not isinstance(message.usage, dict):
            return None
        tools: tuple[str, ...] = ()
        content = message.content
        if type(content) is list:
            for block in content:
                if block.type == "tool_use":
                    command = block.input.command if block.input is not None else None
                    tools = (*tools, label(block.name, command))
        entry = make_entry(
            line.timestamp,
            line.requestId,
            line.isSidechain,
            message.id,
            message.model,
            message.usage,
            tools,
            (self.session, self.project),
            self.stats,
        )
        if entry is None or (self.since is not None and entry.timestamp < self.since):
            return None
        return entry

    def parsed_in_full(self, raw: bytes, last: bool = False) -> Entry | None:
        """The full parse: count what is wrong, name the project, make the entry."""
        stats = self.stats
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            if raw.strip():
                if last:
                    stats.truncated_files += 1
                else:
                    stats.malformed += 1
            return None
        if not isinstance(obj, dict):
            stats.malformed += 1
            return None
        kind = obj.get("type")
        if not isinstance(kind, str) or kind not in KNOWN_TYPES:
            stats.unknown_types[str(kind)] += 1
            return None
        cwd = obj.get("cwd")
        if not self.named and isinstance(cwd, str) and cwd:
            self.project, self.named = cwd, True
        if kind != "assistant":
            return None
        entry = entry_from_line(obj, self.session, self.project, self.stats)
        if entry is None or (self.since is not None and entry.timestamp < self.since):
            return None
        return entry

    def lines(self, buf: bytes, pos: int, end: int) -> Iterator[Entry]:
        """Entries from the complete lines in `buf[pos:end]` (`end` is just past a newline)."""
        find, skip, parsed = buf.find, _SKIP, self.parsed
        count = 0
        while pos < end:
            start = pos
            stop = find(b"\n", pos, end)
            pos = stop + 1
            count += 1
            if stop > start and buf[stop - 1] == 13:  # \r\n
                stop -= 1
            if stop > start and buf[start] == 123 and buf[stop - 1] == 125:  # {...}
                # line_type, inlined: this loop runs for every line of every transcript
                at = find(_TYPE_KEY, start, stop)
                if at != -1 and find(b"{", start + 1, at) == -1:
                    close = find(b'"', at + 8, stop)
                    # a kind that cannot carry usage: parse it only while the file has not
                    # named its project yet and this line might
                    if (
                        close != -1
                        and buf[at + 8 : close] in skip
                        and (self.named or find(_CWD_KEY, start, stop) == -1)
                    ):
                        continue
            elif not buf[start:stop].strip():
                continue  # a blank line
            entry = parsed(buf[start:stop])
            if entry is not None:
                yield entry
        self.stats.lines += count


def read_file(path: Path, stats: ReadStats, since: float | None = None) -> Iterator[Entry]:
    """Entries of one file, read in chunks of CHUNK bytes."""
    try:
        handle = path.open("rb")
    except OSError:
        stats.unreadable_files.append(str(path))
        return
    stats.files += 1
    with handle:
        yield from read_lines(handle, FileReader(path, stats, since), final=True)


def read_lines(handle: BinaryIO, reader: FileReader, *, final: bool) -> Iterator[Entry]:
    """Entries from the handle's position on; `reader.offset` ends past the last line read.

    `final` False leaves a last line without its newline unread: it may still be being
    written, and the next incremental read starts with it.
    """
    stats = reader.stats
    tail = bytearray()  # a line cut by a chunk boundary
    offset = handle.tell()
    while chunk := handle.read(CHUNK):
        stats.bytes += len(chunk)
        offset += len(chunk)
        first = chunk.find(b"\n")
        if first == -1:
            tail += chunk
            continue
        pos = 0
        if tail:
            tail += chunk[: first + 1]
            yield from reader.lines(bytes(tail), 0, len(tail))
            tail.clear()
            pos = first + 1
        end = chunk.rfind(b"\n") + 1
        yield from reader.lines(chunk, pos, end)
        tail += chunk[end:]
    reader.offset = offset - len(tail)
    if tail and final:
        reader.offset = offset
        stats.lines += 1
        entry = reader.parsed(bytes(tail), last=True)
        if entry is not None:
            yield entry


#: an entry as a plain tuple, in field order: pickled several times faster than the object
_AS_TUPLE = attrgetter(*(f.name for f in fields(Entry)))


def _read_batch(
    job: tuple[Sequence[Path], float | None, str | None],
) -> tuple[list[tuple[Any, ...]], ReadStats]:
    """A worker process's share: entries as tuples (the parent unpickles them all, serially)."""
    files, since, project = job
    gc.disable()  # a short-lived process making no cycles (see run._no_cycle_collection)
    stats = ReadStats()
    return [_AS_TUPLE(entry) for entry in _filtered(files, stats, since, project)], stats


def _filtered(
    files: Iterable[Path], stats: ReadStats, since: float | None, project: str | None
) -> Iterator[Entry]:
    """Entries of every file; with `project`, only those whose directory or cwd contains it."""
    needle = project.lower() if project else None
    for path in files:
        in_dir = needle is not None and needle in session_and_dir(path)[1].lower()
        for entry in read_file(path, stats, since):
            if needle is None or in_dir or needle in entry.project.lower():
                yield entry


def _batches(files: Sequence[Path], sizes: Sequence[int], count: int) -> list[list[Path]]:
    """Consecutive runs of files of about equal bytes (order kept: dedupe keeps the first)."""
    target = max(sum(sizes) / count, 1)
    batches: list[list[Path]] = [[]]
    filled = 0
    for path, size in zip(files, sizes, strict=True):
        if filled >= target and len(batches) < count:
            batches.append([])
            filled = 0
        batches[-1].append(path)
        filled += size
    return batches


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def workers_for(total_bytes: int) -> int:
    """Processes for an audit: one unless it is big, forking is safe and there are cores."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if total_bytes < PARALLEL_BYTES or not cores or cores < 2:
        return 1
    import multiprocessing

    # fork copies one thread only: never fork a process that runs others (the server)
    if threading.active_count() > 1 or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return min(cores, 4)


def read_all(
    files: Sequence[Path],
    stats: ReadStats,
    since: float | None = None,
    project: str | None = None,
    workers: int | None = None,
) -> list[Entry]:
    """Every entry of `files` in file order; `workers` None picks the process count by size."""
    sizes = [_size(path) for path in files]
    count = workers_for(sum(sizes)) if workers is None else workers
    if count <= 1 or len(files) < 2:
        return list(_filtered(files, stats, since, project))
    # this process reads the first share itself while workers read the others: no share of
    # entries crosses a pipe for nothing, and one process fewer starts
    first, *rest = _batches(files, sizes, count)
    if not rest:  # empty files, or one holding nearly everything
        return list(_filtered(first, stats, since, project))
    helpers = [_Worker((batch, since, project)) for batch in rest]
    try:
        entries = list(_filtered(first, stats, since, project))
        for worker, batch in zip(helpers, rest, strict=True):
            result = worker.result()
            if result is None:  # the worker died (killed, out of memory): read its share here
                entries.extend(_filtered(batch, stats, since, project))
                continue
            rows, part_stats = result
            entries.extend(Entry(*row) for row in rows)
            stats.merge(part_stats)
    finally:
        for worker in helpers:
            worker.close()
    return entries


Job = tuple[Sequence[Path], float | None, str | None]
Rows = tuple[list[tuple[Any, ...]], ReadStats]


def _work(send: Connection, job: Job) -> None:
    try:
        send.send(_read_batch(job))
    except BaseException as exc:  # the parent raises it; a worker never dies silently
        send.send(exc)
    finally:
        send.close()


class _Worker:
    """One forked process reading a share of the files; its result comes back over a pipe.

    (A bare process, not a multiprocessing.Pool: shutting a pool down costs ~0.1 s.)
    """

    def __init__(self, job: Job) -> None:
        import multiprocessing

        context = multiprocessing.get_context("fork")
        self.receive, send = context.Pipe(duplex=False)
        self.process = context.Process(target=_work, args=(send, job), daemon=True)
        self.process.start()
        send.close()

    def result(self) -> Rows | None:
        try:
            result: Rows | BaseException = self.receive.recv()
        except EOFError:
            return None
        if isinstance(result, BaseException):
            raise result
        return result

    def close(self) -> None:
        self.receive.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
