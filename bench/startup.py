"""Cold start of `offload-mcp serve` (stdio) to the `initialize` response, vs a bare MCPServer.

Both run with this venv's interpreter, interleaved, so machine load hits them alike. The bare
server is one trivial tool in a temp file: the floor set by Python and the MCP SDK themselves.
Goal: offload-mcp's median at most 1.3x the bare server's. Prints figures; never asserts.

    uv run python bench/startup.py [--quick] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import selectors
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

GOAL_RATIO = 1.3
TIMEOUT_S = 60.0

BARE_SERVER = """\
from mcp.server import MCPServer

server = MCPServer("bare")


@server.tool()
def echo(text: str) -> str:
    return text


server.run()
"""

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",  # what Claude Code sends
        "capabilities": {},
        "clientInfo": {"name": "bench", "version": "0"},
    },
}


def time_to_initialize(command: list[str], env: dict[str, str], cwd: Path) -> float:
    """Seconds from spawning `command` to a complete `initialize` response line on its stdout."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=cwd,
    )
    try:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps(INITIALIZE).encode() + b"\n")
        process.stdin.flush()
        line = _readline(process.stdout, started + TIMEOUT_S)
        elapsed = time.perf_counter() - started
        answer = json.loads(line)
        if "result" not in answer:
            raise RuntimeError(f"{command[0]} answered initialize with {answer}")
        return elapsed
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def _readline(stream: object, deadline: float) -> bytes:
    fd = stream.fileno()  # type: ignore[attr-defined]
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while b"\n" not in buffer:
            left = deadline - time.perf_counter()
            if left <= 0 or not selector.select(timeout=left):
                raise TimeoutError(f"no initialize response within {TIMEOUT_S:g} s")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError(f"server exited before answering: {buffer!r}")
            buffer += chunk
    return buffer.split(b"\n", 1)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 runs each instead of 15")
    parser.add_argument("--runs", type=int, default=None)
    args = parser.parse_args()
    runs = args.runs or (5 if args.quick else 15)

    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory(prefix="offload-bench-") as tmp:
        root = Path(tmp)
        bare = root / "bare_server.py"
        bare.write_text(BARE_SERVER)
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(root),
            "OFFLOAD_MCP_HOME": str(root / "home"),
            "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
        }
        variants = {
            "offload-mcp serve": [str(bin_dir / "offload-mcp"), "serve"],
            "bare MCPServer, 1 tool": [sys.executable, str(bare)],
        }
        times: dict[str, list[float]] = {name: [] for name in variants}
        for command in variants.values():  # warm-up: page cache, .pyc files
            time_to_initialize(command, env, root)
        for _ in range(runs):
            for name, command in variants.items():
                times[name].append(time_to_initialize(command, env, root))

    print(
        f"startup: process spawn -> initialize response, stdio; {runs} interleaved runs each "
        f"after 1 warm-up; Python {platform.python_version()}, mcp {metadata.version('mcp')}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
    )
    print(f"{'variant':<26}{'median ms':>11}{'min ms':>9}{'max ms':>9}")
    for name, values in times.items():
        print(
            f"{name:<26}{statistics.median(values) * 1000:>11.0f}"
            f"{min(values) * 1000:>9.0f}{max(values) * 1000:>9.0f}"
        )
    ours, bare_times = times["offload-mcp serve"], times["bare MCPServer, 1 tool"]
    ratio = statistics.median(ours) / statistics.median(bare_times)
    ratio_min = min(ours) / min(bare_times)
    verdict = "meets" if ratio <= GOAL_RATIO else "MISSES (reported, not a failure)"
    print(f"ratio offload/bare: median {ratio:.2f}, min {ratio_min:.2f}; goal <= {GOAL_RATIO}")
    print(f"startup goal: {verdict}")


if __name__ == "__main__":
    main()
