"""`offload-mcp audit` against ccusage on the same generated corpus, in the same run.

The corpus is the real spotter transcripts (tests/fixtures) copied N times with fresh session,
message and request ids, laid out as a Claude config dir. For each size: our wall time and peak
memory (a fresh process each; worker processes included), ccusage 20.0.24's wall time
(`session --offline --json`), and whether the totals agree. Each side runs `--repeat` times,
interleaved, and the best time counts (the machine is shared: the best run is the one least
disturbed). Figures only, never an assertion. `--quick` stays under ~30 MB; the default grows
to ~500 MB (minutes; not for CI).

    uv run python bench/audit.py [--quick] [--repeat N]
"""

from __future__ import annotations

import json
import os
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


def ours(root: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", OURS, str(root / "projects")],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout)
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
    totals = json.loads(done.stdout)["totals"]
    keys = ("inputTokens", "outputTokens", "cacheCreationTokens", "cacheReadTokens")
    return {"s": elapsed, "tokens": [totals[k] for k in keys], "usd": totals["totalCost"]}


def best(runs: list[dict[str, object] | None]) -> dict[str, object] | None:
    done = [run for run in runs if run is not None]
    return min(done, key=lambda run: float(run["s"])) if done else None  # type: ignore[arg-type]


def main() -> None:
    quick = "--quick" in sys.argv
    repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 1
    steps = [1, 2, 4] if quick else [1, 4, 16, 32, 64]
    files = sources()
    print(f"corpus unit: {len(files)} files, {sum(len(d) for _, d in files) / 1e6:.1f} MB")
    print(f"{'MB':>7} {'ours s':>8} {'ccusage s':>10} {'ratio':>7} {'ours peak MB':>13}  totals")
    with tempfile.TemporaryDirectory(prefix="audit-bench-") as tmp:
        root = Path(tmp)
        made = 0
        for copies in steps:
            grow(root, files, made, copies)
            made = copies
            mine_runs: list[dict[str, object] | None] = []
            their_runs: list[dict[str, object] | None] = []
            for _ in range(repeat):
                mine_runs.append(ours(root))
                their_runs.append(ccusage(root))
            mine = best(mine_runs)
            assert mine is not None
            theirs = best(their_runs)
            their_s = f"{theirs['s']:.2f}" if theirs else "n/a"
            ratio = f"{float(mine['s']) / float(theirs['s']):.2f}" if theirs else "n/a"  # type: ignore[arg-type]
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
                f"{size_mb(root):7.1f} {float(mine['s']):8.2f} {their_s:>10} {ratio:>7} "  # type: ignore[arg-type]
                f"{float(mine['rss_mb']):13.1f}  {same}"  # type: ignore[arg-type]
            )
    print("ratio = our wall time / ccusage's (ours counts its imports, not interpreter start-up)")


if __name__ == "__main__":
    main()
