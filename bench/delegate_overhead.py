"""Overhead of `delegate_to_codex` over running `codex exec` directly, against the same fake.

(a) direct: the replay fake `tests/fakes/codex` run as `codex exec --json -C REPO -` in the
repository itself (what a user would type), stdout read to the end; (b) the `delegate_to_codex`
tool through an in-process `mcp.Client(build_server(...))` whose codex provider is that fake:
argument checks, privacy gate, ledger row, a pooled git worktree brought to the user's state
(+ their uncommitted work), Codex, diff, patch file, the worktree given back, result text;
(c) the same with the pool off (`[delegate] pool_per_repo = 0`): a new `git worktree add`
per call, removed afterwards, as before the pool existed. All make Codex write the same
file; (b) and (c) have no `verify` (its command is the user's own cost, not ours). Rounds
alternate (a), (b), (c) in the same process; the health check is warmed first (it is cached
for 60 s). Reports medians and (b) - (a), (c) - (a). Goal: median overhead <= 50 ms. Prints
figures; never asserts.

    uv run python bench/delegate_overhead.py [--quick] [--rounds N] [--files 20,500,2000]

Without the pool the checkout grows with the repository (a file write per tracked file);
with it, a stat per tracked file; the rest is a fixed dozen git and Python steps. Temp files
go where TMPDIR points.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

import anyio

GOAL_MS = 50.0
REPO = Path(__file__).resolve().parent.parent
FAKE = REPO / "tests" / "fakes" / "codex"
STEPS = [{"write": "src/answer.py", "text": "ANSWER = 42\n"}, {"message": "Set ANSWER to 42."}]


def make_repo(root: Path, files: int) -> Path:
    repo = root / "project"
    (repo / "src").mkdir(parents=True)
    for n in range(files):
        (repo / "src" / f"module_{n}.py").write_text(f"def f{n}(x):\n    return x + {n}\n")
    (repo / "src" / "answer.py").write_text("ANSWER = 0\n")
    git = ["git", "-c", "user.email=b@example.invalid", "-c", "user.name=bench"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run([*git, "-C", str(repo), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(repo), "commit", "-q", "-m", "init"], check=True)
    (repo / "src" / "module_0.py").write_text("# uncommitted edit\n")  # carried over in (b)
    return repo


async def direct(repo: Path) -> float:
    """`codex exec` as a user runs it; the file it writes is put back afterwards."""
    from offload_mcp.backends.process import run_process

    argv = [str(FAKE), "exec", "--json", "--skip-git-repo-check", "-s", "workspace-write"]
    argv += ["-C", str(repo), "-"]
    started = time.perf_counter()
    async with run_process(argv, stdin_data=b"Set ANSWER to 42.", timeout_s=60) as proc:
        async for _ in proc.lines():
            pass
    elapsed = time.perf_counter() - started
    (repo / "src" / "answer.py").write_text("ANSWER = 0\n")
    return elapsed


async def measure(root: Path, rounds: int, files: int) -> dict[str, list[float]]:
    """Alternating rounds of (a), (b) and (c) on a fresh repository of `files` files."""
    from mcp import Client

    from offload_mcp.config import Paths
    from offload_mcp.server import build_server

    root.mkdir()
    repo = make_repo(root, files)
    codex_home = root / "codex-home"
    codex_home.mkdir()
    script = root / "script.json"
    script.write_text(json.dumps({"runs": [STEPS]}))
    os.environ.update(
        FAKE_CODEX_SCRIPT=str(script), FAKE_CODEX_LOGGED_IN="1", CODEX_HOME=str(codex_home)
    )
    os.environ.pop("FAKE_CODEX_LOG", None)
    config = (
        f'[limits]\nallowed_roots = ["{root}"]\n\n[providers.codex]\n'
        f'command = "{FAKE}"\nenv = {{ CODEX_HOME = "{codex_home}" }}\n'
    )
    arguments = {"task": "Set ANSWER in src/answer.py to 42.", "path": str(repo)}
    times: dict[str, list[float]] = {"direct": [], "pooled": [], "fresh": []}
    clients = {}
    async with AsyncExitStack() as stack:
        for mode, extra in (("pooled", ""), ("fresh", "\n[delegate]\npool_per_repo = 0\n")):
            home = root / f"home-{mode}"
            home.mkdir()
            paths = Paths(config_dir=home, data_dir=home)
            paths.config_file.write_text(config + extra)
            server = build_server(paths=paths, cwd=repo)
            clients[mode] = await stack.enter_async_context(Client(server))
        for warm in range(2):
            await direct(repo)
            for mode, client in clients.items():
                result = await client.call_tool("delegate_to_codex", arguments)
                text = result.content[0].text  # type: ignore[union-attr]
                if result.is_error or not text.startswith("outcome: unverified"):
                    sys.exit(f"delegate_to_codex ({mode}) failed in warm-up {warm}: {text}")
        for _ in range(rounds):
            times["direct"].append(await direct(repo))
            for mode, client in clients.items():
                started = time.perf_counter()
                result = await client.call_tool("delegate_to_codex", arguments)
                times[mode].append(time.perf_counter() - started)
                assert not result.is_error
                await anyio.sleep(0.05)  # the background cleanup of the workspace
    return times


def row(label: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return f"{label:34}{statistics.median(ms):10.1f}{min(ms):10.1f}{max(ms):10.1f}"


async def main(rounds: int, sizes: list[int]) -> None:
    print(f"delegate_overhead: {rounds} rounds per size; temp dir {tempfile.gettempdir()}")
    print(f"{'':34}{'median ms':>10}{'min ms':>10}{'max ms':>10}")
    with tempfile.TemporaryDirectory(prefix="offload-bench-") as tmp:
        for files in sizes:
            times = await measure(Path(tmp) / f"size-{files}", rounds, files)
            a, b, c = times["direct"], times["pooled"], times["fresh"]
            print(f"git repo of {files + 1} files, 1 uncommitted edit:")
            print(row("  (a) codex exec direct", a))
            print(row("  (b) delegate_to_codex (pool)", b))
            print(row("  (c) delegate_to_codex (no pool)", c))
            print(row("  (b) - (a) per round", [t - d for d, t in zip(a, b, strict=True)]))
            for label, tool in (("(b) pool", b), ("(c) no pool", c)):
                overhead = (statistics.median(tool) - statistics.median(a)) * 1000
                verdict = "within" if overhead <= GOAL_MS else "OVER"
                print(f"  overhead {label:12} {overhead:7.1f} ms median, {verdict} the goal")
    print(f"goal: <= {GOAL_MS:.0f} ms median overhead")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few rounds, small sizes (CI)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--files", default="20,500,2000", help="repository sizes, comma-separated")
    args = parser.parse_args()
    sizes = [20, 200] if args.quick else [int(n) for n in args.files.split(",")]
    anyio.run(main, 5 if args.quick else args.rounds, sizes)
