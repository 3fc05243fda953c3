"""The shared subprocess runner: lines as they arrive, caps, timeouts, and no orphan ever."""

from __future__ import annotations

import signal
import sys
import textwrap
import time
from pathlib import Path

import anyio
import pytest

from offload_mcp.backends.process import (
    OutputTooLarge,
    ProcessTimedOut,
    group_members,
    run_process,
)

pytestmark = pytest.mark.anyio


def script(tmp_path: Path, name: str, body: str) -> list[str]:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]


def assert_group_gone(pgid: int) -> None:
    deadline = time.monotonic() + 2
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert group_members(pgid) == [], f"process group {pgid} survived"


def read_pid(path: Path) -> int:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        time.sleep(0.01)
    raise AssertionError(f"{path} never written")


async def test_lines_exit_code_and_stderr_tail(tmp_path: Path) -> None:
    argv = script(
        tmp_path,
        "child",
        """
        import sys
        print("one", flush=True)
        sys.stdout.write("two\\r\\nthree")
        sys.stderr.write("x" * 10000 + "END")
        sys.exit(3)
        """,
    )
    async with run_process(argv, timeout_s=10, stderr_tail_bytes=100) as proc:
        lines = [line async for line in proc.lines()]
    assert lines == ["one", "two", "three"]
    assert proc.result is not None
    assert proc.result.returncode == 3
    assert proc.result.stderr_tail.endswith("END")
    assert len(proc.result.stderr_tail) == 100
    assert_group_gone(proc.pid)


async def test_stdin_data_then_eof(tmp_path: Path) -> None:
    argv = script(tmp_path, "cat", "import sys\nprint(sys.stdin.read().upper())\n")
    async with run_process(argv, stdin_data=b"hello " * 50_000, timeout_s=10) as proc:
        lines = [line async for line in proc.lines()]
    assert lines == ["HELLO " * 50_000]


async def test_stdin_closed_without_data(tmp_path: Path) -> None:
    argv = script(tmp_path, "eof", "import sys\nprint(repr(sys.stdin.read()))\n")
    async with run_process(argv, timeout_s=10) as proc:
        assert [line async for line in proc.lines()] == ["''"]


async def test_lines_arrive_before_exit(tmp_path: Path) -> None:
    argv = script(tmp_path, "slow", 'import time\nprint("early", flush=True)\ntime.sleep(30)\n')
    started = time.monotonic()
    async with run_process(argv, timeout_s=20, kill_grace_s=0.5) as proc:
        async for line in proc.lines():
            assert line == "early"
            break
    assert time.monotonic() - started < 5
    assert_group_gone(proc.pid)


async def test_long_line_truncated_and_stdout_cap(tmp_path: Path) -> None:
    argv = script(tmp_path, "long", 'print("a" * 5000)\nprint("ok")\n')
    async with run_process(argv, timeout_s=10, max_line_bytes=100) as proc:
        lines = [line async for line in proc.lines()]
    assert lines == ["a" * 100, "ok"]
    assert proc.result is not None and proc.result.truncated_lines == 1

    argv = script(
        tmp_path, "flood", 'import sys\nwhile True: sys.stdout.write("b" * 1000 + "\\n")\n'
    )
    with pytest.raises(OutputTooLarge):
        async with run_process(argv, timeout_s=10, max_stdout_bytes=200_000) as proc:
            async for _ in proc.lines():
                pass
    assert_group_gone(proc.pid)


async def test_idle_timeout_kills_the_group(tmp_path: Path) -> None:
    argv = script(
        tmp_path,
        "idle",
        """
        import time
        for _ in range(3):
            print("tick", flush=True)
            time.sleep(0.1)
        time.sleep(60)
        """,
    )
    seen = []
    with pytest.raises(ProcessTimedOut) as caught:
        async with run_process(argv, timeout_s=20, idle_timeout_s=0.5) as proc:
            async for line in proc.lines():
                seen.append(line)
    assert caught.value.kind == "idle"
    assert seen == ["tick"] * 3
    assert proc.result is not None and proc.result.returncode is not None
    assert_group_gone(proc.pid)


async def test_hard_timeout_despite_steady_output(tmp_path: Path) -> None:
    argv = script(
        tmp_path,
        "chatty",
        'import time\nwhile True:\n    print("x", flush=True)\n    time.sleep(0.05)\n',
    )
    started = time.monotonic()
    with pytest.raises(ProcessTimedOut) as caught:
        async with run_process(argv, timeout_s=0.6, idle_timeout_s=0.5) as proc:
            async for _ in proc.lines():
                pass
    assert caught.value.kind == "hard"
    assert time.monotonic() - started < 3
    assert_group_gone(proc.pid)


GRANDPARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", {child!r}])
open({pidfile!r}, "w").write(str(child.pid))
print("started", flush=True)
time.sleep(60)
"""

STUBBORN = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)\n"


async def test_timeout_kills_grandchild_that_ignores_sigterm(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    argv = script(tmp_path, "parent", GRANDPARENT.format(child=STUBBORN, pidfile=str(pidfile)))
    with pytest.raises(ProcessTimedOut):
        async with run_process(argv, timeout_s=10, idle_timeout_s=0.5, kill_grace_s=0.3) as proc:
            async for _ in proc.lines():
                pass
    read_pid(pidfile)
    assert_group_gone(proc.pid)


async def test_leader_ignoring_sigterm_is_killed(tmp_path: Path) -> None:
    argv = script(
        tmp_path,
        "stubborn",
        STUBBORN.replace("time.sleep(60)", 'print("up", flush=True)\ntime.sleep(60)'),
    )
    with pytest.raises(ProcessTimedOut):
        async with run_process(argv, timeout_s=10, idle_timeout_s=0.4, kill_grace_s=0.3) as proc:
            async for _ in proc.lines():
                pass
    assert proc.result is not None and proc.result.returncode == -signal.SIGKILL
    assert_group_gone(proc.pid)


async def test_normal_exit_leaves_no_background_grandchild(tmp_path: Path) -> None:
    pidfile = tmp_path / "daemon.pid"
    parent = f"""
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", {STUBBORN!r}])
open({str(pidfile)!r}, "w").write(str(child.pid))
print("bye", flush=True)
"""
    argv = script(tmp_path, "leaver", parent)
    async with run_process(argv, timeout_s=10, kill_grace_s=0.3) as proc:
        assert [line async for line in proc.lines()] == ["bye"]
    assert proc.result is not None and proc.result.returncode == 0
    read_pid(pidfile)
    assert_group_gone(proc.pid)


async def test_cancellation_kills_the_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    argv = script(tmp_path, "parent", GRANDPARENT.format(child=STUBBORN, pidfile=str(pidfile)))
    pgid: list[int] = []

    async def consume() -> None:
        async with run_process(argv, timeout_s=30, kill_grace_s=0.3) as proc:
            pgid.append(proc.pid)
            async for _ in proc.lines():
                pass

    with anyio.move_on_after(0.5) as scope:
        await consume()
    assert scope.cancelled_caught
    read_pid(pidfile)
    assert_group_gone(pgid[0])


async def test_missing_program_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        async with run_process([str(tmp_path / "nope")], timeout_s=1):
            pass
