"""What the Claude window line costs a `status` call, against ccusage's `blocks --active`.

The corpus is the real spotter transcripts copied N times (as bench/audit.py makes it). Timed:
the first look with no saved index (a full read, in the background for a server), a look
after one transcript grew by a line (what a status call during work costs), the same with
nothing changed, and a new process starting from the saved index. The reference, in the same
run on the same files: `ccusage claude blocks --active --offline --json`, which a status line
built on ccusage runs each time. Figures only, never an assertion.

    uv run python bench/claude_window.py [--quick]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.audit import CCUSAGE, grow, size_mb, sources

#: the fixtures' own time, so their blocks count as recent history
NOW = 1770939000.0  # 2026-02-12T23:30Z

NEW_PROCESS = """
import sys, time
from pathlib import Path
started = time.perf_counter()
from offload_mcp.audit.window import WindowWatch
watch = WindowWatch(Path(sys.argv[1]), [Path(sys.argv[2])], clock=lambda: float(sys.argv[3]))
watch.status_line(0, 60)
print(time.perf_counter() - started)
"""


def timed(watch: object, clock: list[float]) -> float:
    from offload_mcp.audit.window import FRESH_S, WindowWatch

    assert isinstance(watch, WindowWatch)
    clock[0] += FRESH_S + 1  # past the reuse window: a status call reads what changed
    started = time.perf_counter()
    watch.status_line(0, 600)
    return time.perf_counter() - started


def ccusage_active(root: Path) -> float | None:
    if not CCUSAGE.exists() or shutil.which("node") is None:
        return None
    env = {"PATH": os.environ["PATH"], "HOME": str(root), "CLAUDE_CONFIG_DIR": str(root)}
    command = [str(CCUSAGE), "claude", "blocks", "--active", "--offline", "--json"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, env=env, check=False)
    return time.perf_counter() - started if done.returncode == 0 else None


def main() -> None:
    from offload_mcp.audit.window import WindowWatch

    quick = "--quick" in sys.argv
    steps = [1, 2] if quick else [4, 16, 64]
    files = sources()
    print(f"{'MB':>7} {'first s':>8} {'appended s':>11} {'same s':>8} {'new proc s':>11} "
          f"{'ccusage s':>10}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="window-bench-") as tmp:
        root = Path(tmp)
        made = 0
        for copies in steps:
            grow(root, files, made, copies)
            made = copies
            projects = root / "projects"
            store = root / f"data-{copies}"
            clock = [NOW]
            watch = WindowWatch(store, [projects], clock=lambda clock=clock: clock[0])
            first = timed(watch, clock)
            target = next(projects.rglob("*.jsonl"))
            with target.open("ab") as handle:
                handle.write(target.read_bytes().splitlines(keepends=True)[-1])
            appended = timed(watch, clock)
            same = timed(watch, clock)
            fresh = subprocess.run(
                [sys.executable, "-c", NEW_PROCESS, str(store), str(projects), str(NOW)],
                capture_output=True,
                text=True,
                check=True,
            )
            theirs = ccusage_active(root)
            their_s = f"{theirs:.3f}" if theirs is not None else "n/a"
            print(
                f"{size_mb(root):7.1f} {first:8.3f} {appended:11.3f} {same:8.3f} "
                f"{float(fresh.stdout):11.3f} {their_s:>10}"
            )
    print("appended/same: a status call in a running server; new proc: imports included")


if __name__ == "__main__":
    main()
