"""Shared fixtures: an isolated home, an in-memory keyring, and no network but loopback."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import keyring
import pytest
from keyring.backend import KeyringBackend
from mcp.client import Client

from offload_mcp.config import Paths
from offload_mcp.server import build_server
from tests.fake_openai import FakeOpenAI
from tests.fake_responses import CodexAtFake, wired_codex


class MemoryKeyring(KeyringBackend):
    """A dict-backed keyring; keyring ships no test backend (jaraco/keyring#631)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if (service, username) not in self.store:
            from keyring.errors import PasswordDeleteError

            raise PasswordDeleteError(username)
        del self.store[(service, username)]


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own OFFLOAD_MCP_HOME and no provider keys from the real env."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("OFFLOAD_MCP_HOME", str(home))
    # status reads the Claude window from Claude Code's transcripts: never the real ones
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude-config"))
    for var in (
        "OPENROUTER_API_KEY",
        "GROQ_API_KEY",
        "CEREBRAS_API_KEY",
        "GEMINI_API_KEY",
        "MISTRAL_API_KEY",
        "NVIDIA_API_KEY",
        "CLOUDFLARE_API_TOKEN",
        "HF_TOKEN",
        "LITELLM_API_KEY",
        "OFFLOAD_MCP_TOKEN",
    ):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def paths(home: Path) -> Paths:
    return Paths(config_dir=home, data_dir=home)


@pytest.fixture(autouse=True)
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never reach the internet: any non-loopback connect fails loudly."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]
            try:
                loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
            except ValueError:
                loopback = False
            if not loopback:
                raise OSError(f"test tried to reach {host}: only loopback is allowed")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def first() -> Iterator[FakeOpenAI]:
    """A loopback OpenAI-compatible provider, the first of a two-provider chain."""
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def second() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="session")
def codex_cli() -> Path:
    """The pinned Codex CLI (skips without it, fails under OFFLOAD_MCP_REQUIRE_CLIENTS=1)."""
    from tests.clients import codex_binary

    return codex_binary()


@pytest.fixture
def codex_at_fake(
    codex_cli: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[CodexAtFake]:
    """The real Codex CLI pointed at a loopback Responses API fake (tests/fake_responses.py)."""
    monkeypatch.delenv("CODEX_API_KEY", raising=False)
    with wired_codex(tmp_path / "codex", codex_cli) as setup:
        yield setup


@pytest.fixture
async def connect(paths: Paths, tmp_path: Path) -> AsyncIterator[Callable[[], Awaitable[Client]]]:
    """Connect in-memory MCP clients to fresh servers (after the test wrote its config)."""
    clients: list[Client] = []

    async def make() -> Client:
        client = Client(build_server(paths=paths, cwd=tmp_path))
        await client.__aenter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.__aexit__(None, None, None)
