"""`offload-mcp audit` against ccusage on the same generated corpus, in the same run.

The corpus is the real spotter transcripts (tests/fixtures) copied N times with fresh session,
message and request ids, laid out as a Claude config dir. For each size: wall time, CPU time
(user + system of the whole process tree) and our peak memory (a fresh process each, worker
processes included), beside ccusage 20.0.24's (`session --offline --json`), and whether the
totals agree. Each side runs `--repeat` times, interleaved, each after every file was read once
(page cache warm for both), and the best time counts: the machine is shared, and the best run
is the one least disturbed. Figures only, never an assertion. `--quick` stays under ~30 MB;
the default grows to ~500 MB (minutes; not for CI).

    uv run python bench/audit.py [--quick] [--repeat N]
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "claude-transcripts" / "spotter"
CCUSAGE = REPO / "tests" / "node" / "node_modules" / ".bin" / "ccusage"

OURS = """
import json, resource, sys, time
from datetime import UTC
from pathlib import Path
started = time.perf_counter()
from offload_mcp.audit.run import run_audit
t = run_audit([Path(sys.argv[1])], tz=UTC).report.total
peak = max(resource.getrusage(who).ru_maxrss for who in
           (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
print(json.dumps({"s": time.perf_counter() - started, "rss_mb": peak / 1024,
                  "tokens": [t.input, t.output, t.cache_write, t.cache_read], "usd": t.usd}))
"""


def sources() -> list[tuple[Path, bytes]]:
    return [(p.relative_to(FIXTURES), p.read_bytes()) for p in sorted(FIXTURES.rglob("*.jsonl"))]


def grow(root: Path, files: list[tuple[Path, bytes]], start: int, stop: int) -> None:
    """Add copies start..stop-1, each its own project dir with rewritten ids."""
    for copy in range(start, stop):
        project = root / "projects" / f"-bench-{copy}"
        tag = f"c{copy}x".encode()
        for rel, data in files:
            text = data.replace(b'"msg_', b'"msg_' + tag).replace(b'"req_', b'"req_' + tag)
            target = project / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(text)


def size_mb(root: Path) -> float:
    return sum(p.stat().st_size for p in root.rglob("*.jsonl")) / 1e6


def warm(root: Path) -> None:
    """Read every file once, so neither side pays for pages the other already brought in."""
    for path in root.rglob("*.jsonl"):
        path.read_bytes()


def _cpu() -> float:
    """CPU seconds of every finished child (and theirs: our worker processes, ccusage's threads)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ours(root: Path) -> dict[str, object]:
    cpu = _cpu()
    done = subprocess.run(
        [sys.executable, "-c", OURS, str(root / "projects")],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout)
    result["cpu"] = _cpu() - cpu
    return result


def ccusage(root: Path) -> dict[str, object] | None:
    if not CCUSAGE.exists() or shutil.which("node") is None:
        return None
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(root),
        "CLAUDE_CONFIG_DIR": str(root),
        "TZ": "UTC",
    }
    cpu = _cpu()
    started = time.perf_counter()
    done = subprocess.run(
        [str(CCUSAGE), "claude", "session", "--offline", "--json", "--mode", "calculate"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        return None
    used = _cpu() - cpu
    totals = json.loads(done.stdout)["totals"]
    keys = ("inputTokens", "outputTokens", "cacheCreationTokens", "cacheReadTokens")
    tokens = [totals[k] for k in keys]
    return {"s": elapsed, "cpu": used, "tokens": tokens, "usd": totals["totalCost"]}


def best(runs: list[dict[str, object] | None]) -> dict[str, object] | None:
    """The fastest run, with the least CPU time any run took (each is the least disturbed)."""
    done = [run for run in runs if run is not None]
    if not done:
        return None
    fastest = dict(min(done, key=lambda run: float(run["s"])))  # type: ignore[arg-type]
    fastest["cpu"] = min(float(run["cpu"]) for run in done)  # type: ignore[arg-type]
    return fastest


def main() -> None:
    quick = "--quick" in sys.argv
    repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 1
    steps = [1, 2, 4] if quick else [1, 4, 16, 32, 64]
    files = sources()
    print(f"corpus unit: {len(files)} files, {sum(len(d) for _, d in files) / 1e6:.1f} MB")
    print(
        f"{'MB':>7} {'ours s':>7} {'ccusage s':>9} {'ratio':>6} {'ours cpu':>8} "
        f"{'ccusage cpu':>11} {'ratio':>6} {'ours peak MB':>12}  totals"
    )
    with tempfile.TemporaryDirectory(prefix="audit-bench-") as tmp:
        root = Path(tmp)
        made = 0
        for copies in steps:
            grow(root, files, made, copies)
            made = copies
            mine_runs: list[dict[str, object] | None] = []
            their_runs: list[dict[str, object] | None] = []
            for _ in range(repeat):
                warm(root)
                mine_runs.append(ours(root))
                warm(root)
                their_runs.append(ccusage(root))
            mine = best(mine_runs)
            assert mine is not None
            theirs = best(their_runs)
            their_s = f"{theirs['s']:.2f}" if theirs else "n/a"
            their_cpu = f"{theirs['cpu']:.2f}" if theirs else "n/a"
            ratio = f"{float(mine['s']) / float(theirs['s']):.2f}" if theirs else "n/a"  # type: ignore[arg-type]
            cpu_ratio = f"{float(mine['cpu']) / float(theirs['cpu']):.2f}" if theirs else "n/a"  # type: ignore[arg-type]
            if theirs is None:
                same = "ccusage absent"
            elif (
                mine["tokens"] == theirs["tokens"]
                and abs(float(mine["usd"]) - float(theirs["usd"])) < 1e-6 * copies
            ):  # type: ignore[arg-type]
                same = "equal"
            else:
                same = f"DIFFER ours {mine['tokens']} ${mine['usd']}"
                same += f" vs {theirs['tokens']} ${theirs['usd']}"
            print(
                f"{size_mb(root):7.1f} {float(mine['s']):7.2f} {their_s:>9} {ratio:>6} "  # type: ignore[arg-type]
                f"{float(mine['cpu']):8.2f} {their_cpu:>11} {cpu_ratio:>6} "  # type: ignore[arg-type]
                f"{float(mine['rss_mb']):12.1f}  {same}"  # type: ignore[arg-type]
            )
    print("ratio = ours / ccusage's. Wall: ours counts its imports, not interpreter start-up;")
    print("cpu: user+system seconds of the whole process tree, the figure load disturbs least")


if __name__ == "__main__":
    main()
