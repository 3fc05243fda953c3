"""Helpers for tests that drive real outside clients and real server processes.

- `claude_binary()`, `codex_binary()`: the pinned Claude Code / Codex CLI from `tests/node` (see
  package.json there). Absent node or install -> skip with the fix; with
  OFFLOAD_MCP_REQUIRE_CLIENTS=1 (CI) -> fail.
- `free_port()`: a loopback TCP port nobody listens on right now.
- `serve_http(...)`: `offload-mcp serve --transport http|sse` as a subprocess, waited for and
  always killed (its whole process group) on the way out.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

REPO = Path(__file__).resolve().parent.parent
NODE_DIR = REPO / "tests" / "node"
CLAUDE_BIN = NODE_DIR / "node_modules" / ".bin" / "claude"
CODEX_BIN = NODE_DIR / "node_modules" / ".bin" / "codex"
GEMINI_BIN = NODE_DIR / "node_modules" / ".bin" / "gemini"
REQUIRE_ENV = "OFFLOAD_MCP_REQUIRE_CLIENTS"
#: keyring backend for server subprocesses: never the developer's real keyring
NULL_KEYRING = "keyring.backends.null.Keyring"
#: environment variables a child process may inherit from the test run
PASS_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "SYSTEMROOT")


def clients_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "").strip().lower() in ("1", "true", "yes")


def unavailable(reason: str) -> NoReturn:
    """Skip with `reason`, or fail when the environment says the real clients are required."""
    if clients_required():
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1, so this fails instead of skipping)")
    pytest.skip(reason)


def pinned_version(package_name: str) -> str:
    package = json.loads((NODE_DIR / "package.json").read_text("utf-8"))
    return str(package["dependencies"][package_name])


def pinned_claude_version() -> str:
    return pinned_version("@anthropic-ai/claude-code")


def claude_binary() -> Path:
    """The pinned `claude` CLI, after checking that it runs and is the pinned version."""
    return _pinned_binary(CLAUDE_BIN, "Claude Code", pinned_claude_version())


def codex_binary() -> Path:
    """The pinned `codex` CLI, after checking that it runs and is the pinned version."""
    return _pinned_binary(CODEX_BIN, "The Codex CLI", pinned_version("@openai/codex"))


def gemini_binary() -> Path:
    """The pinned `gemini` CLI, after checking that it runs and is the pinned version."""
    return _pinned_binary(GEMINI_BIN, "The Gemini CLI", pinned_version("@google/gemini-cli"))


def _pinned_binary(binary: Path, label: str, pinned: str) -> Path:
    install = "npm install --prefix tests/node --no-audit --no-fund"
    if shutil.which("node") is None:
        unavailable(f"node is not on PATH; install Node.js and run '{install}'")
    if not binary.exists():
        unavailable(f"{label} is not installed in tests/node; run '{install}'")
    try:
        done = subprocess.run(
            [str(binary), "--version"],
            capture_output=True,
            text=True,
            timeout=60,
            env=child_env(Path(tempfile.gettempdir())),
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        unavailable(f"{binary} --version failed: {exc}")
    if done.returncode != 0 or pinned not in done.stdout:
        unavailable(
            f"{binary} --version said {done.stdout.strip() or done.stderr.strip()!r}, "
            f"expected {pinned}; run '{install}'"
        )
    return binary


def offload_mcp_command() -> Path:
    """The venv's `offload-mcp` console script (next to this interpreter, links not followed)."""
    script = Path(sys.executable).parent / "offload-mcp"
    if not script.exists():
        pytest.fail(f"{script} is missing: run 'uv sync' so the console script is installed")
    return script


def child_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A small, explicit environment: PATH and locale from here, HOME and `extra` given."""
    env = {name: os.environ[name] for name in PASS_ENV if name in os.environ}
    env["HOME"] = str(home)
    env.update(extra or {})
    return env


def server_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for an `offload-mcp serve` child: its own OFFLOAD_MCP_HOME, no keyring."""
    return child_env(
        home,
        {"OFFLOAD_MCP_HOME": str(home), "PYTHON_KEYRING_BACKEND": NULL_KEYRING, **(extra or {})},
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def stop_process(process: subprocess.Popen[Any], grace_s: float = 5.0) -> None:
    """Terminate the child's process group, then kill it; always reaps the child."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=grace_s)
    else:
        # The leader is gone; take down anything it left in its group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


def run_group(
    command: list[str], *, env: Mapping[str, str], cwd: Path, timeout_s: float
) -> subprocess.CompletedProcess[str]:
    """`subprocess.run` in a new session: on timeout the whole group (with any server the
    command started) is killed, and the timeout is raised."""
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env),
        cwd=cwd,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    finally:
        stop_process(process)  # also reaps what the command left in its process group
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    return subprocess.CompletedProcess(
        command,
        process.returncode,
        stdout.decode("utf-8", "replace"),
        stderr.decode("utf-8", "replace"),
    )


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    transport: str
    host: str
    port: int
    stderr_file: Path

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The endpoint a client registers: /mcp for streamable HTTP, /sse for SSE."""
        return f"{self.base}/mcp" if self.transport == "http" else f"{self.base}/sse"

    def stderr(self) -> str:
        return self.stderr_file.read_text("utf-8", errors="replace")


@contextlib.contextmanager
def serve_http(
    transport: str,
    home: Path,
    *,
    env: Mapping[str, str] | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    start_timeout_s: float = 30.0,
) -> Iterator[RunningServer]:
    """Run `offload-mcp serve --transport TRANSPORT` until the block ends; never leaves orphans."""
    assert transport in ("http", "sse"), transport
    home.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    stderr_file = home / f"serve-{transport}-{port}.stderr"
    command = [str(offload_mcp_command()), "serve", "--transport", transport]
    command += ["--host", host, "--port", str(port)]
    with stderr_file.open("wb") as stderr:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
            env=server_env(home, env),
            cwd=home,
            start_new_session=True,
        )
    server = RunningServer(process, transport, host, port, stderr_file)
    try:
        deadline = time.monotonic() + start_timeout_s
        while not port_open(port, host):
            if process.poll() is not None:
                raise RuntimeError(
                    f"offload-mcp serve exited with {process.returncode} before listening:\n"
                    f"{server.stderr()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"offload-mcp serve did not listen on {host}:{port} within "
                    f"{start_timeout_s:g} s:\n{server.stderr()}"
                )
            time.sleep(0.05)
        yield server
    finally:
        stop_process(process)
