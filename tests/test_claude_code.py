"""The pinned Claude Code CLI registers offload-mcp and health-checks it: stdio, HTTP, SSE, token.

`claude mcp add/list` work offline with no login (reference: claude-code.md section 4a). Each test
gets a throwaway HOME, so nothing touches the developer's own Claude Code configuration.
`claude mcp list` always exits 0; the verdict is the `✔ Connected` text on the server's line.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.clients import (
    NULL_KEYRING,
    child_env,
    claude_binary,
    offload_mcp_command,
    run_group,
    serve_http,
)

pytestmark = pytest.mark.slow

CONNECTED = "✔ Connected"
#: `claude mcp add` takes ~0.5 s, `list` ~2 s (it starts and checks every server)
CLAUDE_TIMEOUT_S = 90


@dataclass
class Claude:
    binary: Path
    home: Path
    project: Path

    def run(self, *args: str) -> str:
        env = child_env(self.home, {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"})
        done = run_group(
            [str(self.binary), *args], env=env, cwd=self.project, timeout_s=CLAUDE_TIMEOUT_S
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"claude {' '.join(args)} -> {done.returncode}:\n{output}"
        return output

    def health(self) -> dict[str, str]:
        """`claude mcp list` as {server name: its line}."""
        output = self.run("mcp", "list")
        lines = {}
        for line in output.splitlines():
            name, sep, _ = line.partition(": ")
            if sep and " - " in line:
                lines[name.strip()] = line
        return lines


@pytest.fixture
def claude(tmp_path: Path) -> Claude:
    binary = claude_binary()
    home = tmp_path / "claude-home"
    (home / ".claude").mkdir(parents=True)
    (home / ".claude" / "settings.json").write_text(
        json.dumps({"enableAllProjectMcpServers": True})
    )
    project = tmp_path / "project"
    project.mkdir()
    return Claude(binary, home, project)


def assert_connected(health: dict[str, str], name: str) -> None:
    assert name in health, f"{name} missing from `claude mcp list`: {health}"
    assert CONNECTED in health[name], health[name]


def test_stdio_server_connects(claude: Claude, home: Path) -> None:
    offload_home = home / "stdio"
    claude.run(
        "mcp",
        "add",
        "offload",
        "-e",
        f"OFFLOAD_MCP_HOME={offload_home}",
        "-e",
        f"PYTHON_KEYRING_BACKEND={NULL_KEYRING}",
        "--",
        str(offload_mcp_command()),
        "serve",
    )
    health = claude.health()
    assert_connected(health, "offload")
    # the server Claude Code started used the OFFLOAD_MCP_HOME it was given
    assert (offload_home / "logs" / "offload-mcp.log").exists()


@pytest.mark.parametrize("transport", ["http", "sse"])
def test_http_server_connects(claude: Claude, home: Path, transport: str) -> None:
    with serve_http(transport, home / transport) as server:
        claude.run("mcp", "add", "--transport", transport, f"offload-{transport}", server.url)
        health = claude.health()
    assert_connected(health, f"offload-{transport}")
    assert f"({transport.upper()})" in health[f"offload-{transport}"]


def test_token_server_connects_only_with_the_bearer_header(claude: Claude, home: Path) -> None:
    token = secrets.token_urlsafe(24)
    with serve_http("http", home / "token", env={"OFFLOAD_MCP_TOKEN": token}) as server:
        claude.run(
            "mcp",
            "add",
            "--transport",
            "http",
            "offload-auth",
            server.url,
            "--header",
            f"Authorization: Bearer {token}",
        )
        claude.run("mcp", "add", "--transport", "http", "offload-noauth", server.url)
        health = claude.health()
    assert_connected(health, "offload-auth")
    assert "offload-noauth" in health, health
    assert CONNECTED not in health["offload-noauth"]
    assert "Failed" in health["offload-noauth"] or "auth" in health["offload-noauth"].lower()
    assert token not in "\n".join(health.values())
