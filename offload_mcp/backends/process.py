"""The one way a CLI backend runs a child: own process group, bounded output, never an orphan.

`run_process(...)` is an async context manager: iterate `proc.lines()` to get stdout lines as
they arrive, then read `proc.result`. Whatever ends the block (EOF, a hard or idle timeout,
an output cap, an exception or anyio cancellation), the exit kills the child's whole process
group (SIGTERM, then SIGKILL after a grace), so grandchildren the CLI spawned go too.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import anyio
import anyio.abc

DEFAULT_MAX_LINE_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_STDOUT_BYTES = 64 * 1024 * 1024
DEFAULT_STDERR_TAIL_BYTES = 8 * 1024
DEFAULT_KILL_GRACE_S = 2.0
_CHUNK = 64 * 1024


class ProcessTimedOut(Exception):
    """The child ran past its hard deadline, or printed no line for the idle timeout."""

    def __init__(self, kind: Literal["hard", "idle"], after_s: float) -> None:
        what = "ran longer than" if kind == "hard" else "printed nothing for"
        super().__init__(f"{what} {after_s:g} s")
        self.kind = kind
        self.after_s = after_s


class OutputTooLarge(Exception):
    """The child wrote more to stdout than the cap allows."""


@dataclass
class ProcessResult:
    returncode: int | None
    stderr_tail: str
    #: lines longer than the cap were cut; this counts them
    truncated_lines: int = 0


@dataclass
class RunningProcess:
    """A started child: `lines()` yields its stdout; `result` is set once the block exits."""

    process: anyio.abc.Process
    timeout_s: float
    idle_timeout_s: float | None
    max_line_bytes: int
    max_stdout_bytes: int
    started: float = field(default_factory=time.monotonic)
    result: ProcessResult | None = None
    truncated_lines: int = 0
    last_line: float | None = None
    _stderr: deque[bytes] = field(default_factory=deque)
    _stderr_bytes: int = 0

    @property
    def pid(self) -> int:
        return self.process.pid

    async def lines(self) -> AsyncIterator[str]:
        """Stdout lines (without the newline) as they arrive, until EOF.

        Raises `ProcessTimedOut` when the hard deadline passes or no complete line arrives
        within the idle timeout, and `OutputTooLarge` past the stdout cap.
        """
        stream = self.process.stdout
        assert stream is not None
        buffer = bytearray()
        skipping = False  # inside an over-long line: drop bytes until its newline
        total = 0
        while True:
            chunk = await self._receive(stream)
            if chunk is None:
                if buffer and not skipping:
                    yield buffer.decode("utf-8", "replace")
                return
            total += len(chunk)
            if total > self.max_stdout_bytes:
                raise OutputTooLarge(f"more than {self.max_stdout_bytes} bytes on stdout")
            buffer += chunk
            while True:
                newline = buffer.find(b"\n")
                if newline < 0:
                    break
                line = bytes(buffer[:newline])
                del buffer[: newline + 1]
                if skipping:
                    skipping = False
                    continue
                if len(line) > self.max_line_bytes:
                    self.truncated_lines += 1
                    line = line[: self.max_line_bytes]
                self._line_seen()
                yield line.rstrip(b"\r").decode("utf-8", "replace")
            if len(buffer) > self.max_line_bytes:
                if not skipping:
                    self.truncated_lines += 1
                    self._line_seen()
                    yield buffer[: self.max_line_bytes].decode("utf-8", "replace")
                skipping = True
                buffer.clear()

    def _line_seen(self) -> None:
        self.last_line = time.monotonic()

    async def _receive(self, stream: anyio.abc.ByteReceiveStream) -> bytes | None:
        now = time.monotonic()
        hard_left = self.started + self.timeout_s - now
        idle_left = math.inf
        if self.idle_timeout_s is not None:
            last = self.started if self.last_line is None else self.last_line
            idle_left = last + self.idle_timeout_s - now
        wait = min(hard_left, idle_left)
        if wait <= 0:
            raise self._timed_out(hard_left <= idle_left)
        with anyio.move_on_after(wait) as scope:
            try:
                return await stream.receive(_CHUNK)
            except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                return None
        assert scope.cancelled_caught
        raise self._timed_out(hard_left <= idle_left)

    def _timed_out(self, hard: bool) -> ProcessTimedOut:
        if hard or self.idle_timeout_s is None:
            return ProcessTimedOut("hard", self.timeout_s)
        return ProcessTimedOut("idle", self.idle_timeout_s)

    async def _drain_stderr(self, tail_bytes: int) -> None:
        stream = self.process.stderr
        assert stream is not None
        with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
            async for chunk in stream:
                self._stderr.append(chunk)
                self._stderr_bytes += len(chunk)
                while self._stderr_bytes - len(self._stderr[0]) >= tail_bytes:
                    self._stderr_bytes -= len(self._stderr.popleft())

    def stderr_tail(self, tail_bytes: int) -> str:
        data = b"".join(self._stderr)[-tail_bytes:]
        return data.decode("utf-8", "replace")


@contextlib.asynccontextmanager
async def run_process(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    stdin_data: bytes | None = None,
    timeout_s: float,
    idle_timeout_s: float | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    max_stdout_bytes: int = DEFAULT_MAX_STDOUT_BYTES,
    stderr_tail_bytes: int = DEFAULT_STDERR_TAIL_BYTES,
    kill_grace_s: float = DEFAULT_KILL_GRACE_S,
) -> AsyncIterator[RunningProcess]:
    """Start `argv` in a new session; stdin gets `stdin_data` then EOF (or is /dev/null).

    Raises `OSError` (e.g. `FileNotFoundError`) if the program cannot be started.
    """
    process = await anyio.open_process(
        list(argv),
        stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
        start_new_session=True,
    )
    running = RunningProcess(process, timeout_s, idle_timeout_s, max_line_bytes, max_stdout_bytes)
    failure: Exception | None = None
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(running._drain_stderr, stderr_tail_bytes)
            tasks.start_soon(_clear_group_after_exit, process, kill_grace_s)
            if stdin_data is not None:
                tasks.start_soon(_feed_stdin, process, stdin_data)
            try:
                yield running
            except Exception as exc:
                # Raised below, outside the task group, so callers see it unwrapped.
                failure = exc
                with anyio.CancelScope(shield=True):
                    await kill_group(process, kill_grace_s)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await kill_group(process, kill_grace_s)
                raise
            else:
                with anyio.CancelScope(shield=True):
                    await _wait_then_kill(process, kill_grace_s)
            finally:
                # A grandchild that left the group could hold stderr open: stop reading anyway.
                tasks.cancel_scope.cancel()
        if failure is not None:
            raise failure
    finally:
        with anyio.CancelScope(shield=True):
            await kill_group(process, kill_grace_s)
            await process.aclose()
        running.result = ProcessResult(
            returncode=process.returncode,
            stderr_tail=running.stderr_tail(stderr_tail_bytes),
            truncated_lines=running.truncated_lines,
        )


async def _feed_stdin(process: anyio.abc.Process, data: bytes) -> None:
    stream = process.stdin
    assert stream is not None
    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        await stream.send(data)
    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        await stream.aclose()


async def _clear_group_after_exit(process: anyio.abc.Process, grace_s: float) -> None:
    """Once the leader exits, its leftovers get `grace_s`, then the group is killed.

    A background grandchild holding the inherited stdout open would otherwise keep `lines()`
    waiting for an EOF that never comes.
    """
    await process.wait()
    await anyio.sleep(grace_s)
    await kill_group(process, grace_s)


async def _wait_then_kill(process: anyio.abc.Process, grace_s: float) -> None:
    """After stdout ended, give the child a moment to exit by itself; then clear its group."""
    if process.returncode is None:
        with anyio.move_on_after(grace_s):
            await process.wait()
    await kill_group(process, grace_s)


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) pids in process group `pgid`; on non-Linux, [pgid] if any member."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return []
    proc = Path("/proc")
    if not proc.is_dir():
        return [pgid]
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...; comm may contain spaces and parentheses
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def _group_alive(pgid: int) -> bool:
    return bool(group_members(pgid))


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


async def kill_group(process: anyio.abc.Process, grace_s: float = DEFAULT_KILL_GRACE_S) -> None:
    """SIGTERM the child's process group, wait up to `grace_s`, then SIGKILL what is left.

    The group id is the child's pid (it leads a new session). Zombies do not count: an init
    that does not reap them must not cost every call the whole grace.
    """
    pgid = process.pid
    if process.returncode is not None and not _group_alive(pgid):
        return
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if process.returncode is None:
            with anyio.move_on_after(0.02):
                await process.wait()
        else:
            await anyio.sleep(0.02)
        if process.returncode is not None and not _group_alive(pgid):
            return
    _signal_group(pgid, signal.SIGKILL)
    if process.returncode is None:
        with anyio.move_on_after(grace_s):
            await process.wait()
