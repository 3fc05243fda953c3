"""GeminiCliBackend driving the real, pinned Gemini CLI (tests/node) against the loopback fake.

The CLI can be pointed at a base URL (`GOOGLE_GEMINI_BASE_URL` plus `selectedType =
gemini-api-key` in a private `GEMINI_CLI_HOME`), so no replay script is needed: these tests run
the CLI's own request, retry and exit-code logic. Skipped without node or the install, failed
instead when OFFLOAD_MCP_REQUIRE_CLIENTS=1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from offload_mcp import errors
from offload_mcp.backends.gemini_cli import GeminiCliBackend, split_source_list
from offload_mcp.config import ProviderConfig, build_settings
from offload_mcp.packets import CompletionRequest, Message, Source
from tests.clients import NODE_DIR, unavailable
from tests.fake_gemini import FakeGemini

pytestmark = pytest.mark.anyio

GEMINI_BIN = NODE_DIR / "node_modules" / ".bin" / "gemini"
PINNED = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]["@google/gemini-cli"]


@pytest.fixture(scope="module")
def gemini_bin() -> Path:
    if shutil.which("node") is None or not GEMINI_BIN.exists():
        unavailable("the Gemini CLI is not installed; run 'npm ci --prefix tests/node'")
    done = subprocess.run(
        [str(GEMINI_BIN), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    if PINNED not in done.stdout:
        unavailable(f"gemini --version said {done.stdout.strip()!r}, expected {PINNED}")
    return GEMINI_BIN


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini() as server:
        yield server


@pytest.fixture
def cli_home(tmp_path: Path) -> Path:
    home = tmp_path / "gemini-home"
    (home / ".gemini").mkdir(parents=True)
    settings = {"security": {"auth": {"selectedType": "gemini-api-key"}}}
    (home / ".gemini" / "settings.json").write_text(json.dumps(settings))
    return home


def backend(gemini_bin: Path, url: str, home: Path, key: str | None = "fake-key", **fields: Any):
    base = build_settings({}).providers["gemini-cli"].model_dump()
    env = {"GEMINI_CLI_HOME": str(home)}
    config = ProviderConfig(
        **base | {"base_url": url, "command": str(gemini_bin), "env": env} | fields
    )
    return GeminiCliBackend(config, key)


def request(timeout_s: float = 60) -> CompletionRequest:
    messages = (Message("system", "Be brief."), Message("user", "When was Acme founded?"))
    return CompletionRequest(messages, max_output_tokens=200, timeout_s=timeout_s)


async def failure(cli: GeminiCliBackend, timeout_s: float = 60) -> errors.ProviderError:
    with pytest.raises(errors.ProviderError) as caught:
        await cli.complete(request(timeout_s))
    return caught.value


async def test_grounded_answer_with_source_list(
    gemini_bin: Path, fake: FakeGemini, cli_home: Path
) -> None:
    fake.reply(
        "Acme was founded in 1947 [2]. It is in Ohio [5].\n\nSources:\n"
        "[2] Acme history - https://acme.com/history\n[5] Ohio news: https://news.example/acme",
        usage={"promptTokenCount": 900, "candidatesTokenCount": 30},
    )
    done = await backend(gemini_bin, fake.url, cli_home).complete(request())
    assert done.text == "Acme was founded in 1947 [1]. It is in Ohio [2]."
    grounding = done.grounding
    assert grounding is not None
    assert grounding.sources == (
        Source("Acme history", "https://acme.com/history"),
        Source("Ohio news", "https://news.example/acme"),
    )
    assert (done.usage.input_tokens, done.usage.output_tokens) == (900, 30)
    assert done.model == "gemini-2.5-flash"
    call = fake.calls[0]
    assert call.path.startswith("/v1beta/models/gemini-2.5-flash:streamGenerateContent")
    assert call.headers["x-goog-api-key"] == "fake-key"
    prompt = json.dumps(call.body["contents"])
    assert "When was Acme founded?" in prompt and "Sources:" in prompt


async def test_per_day_quota_fails_at_once(
    gemini_bin: Path, fake: FakeGemini, cli_home: Path
) -> None:
    fake.quota("day")
    started = time.monotonic()
    error = await failure(backend(gemini_bin, fake.url, cli_home))
    assert isinstance(error, errors.RateLimited), error
    assert "daily quota" in str(error) and "exit 173" in str(error)
    assert error.retry_after_s is not None and error.retry_after_s > 60
    assert time.monotonic() - started < 20


async def test_per_minute_retry_loop_is_cut_short_without_orphans(
    gemini_bin: Path, fake: FakeGemini, cli_home: Path
) -> None:
    # every retry waits >= 1 s, so 40 answers outlast the timeout; the CLI's start-up alone
    # takes seconds on a busy machine, so the timeout leaves room for its first request
    for _ in range(40):
        fake.quota("minute", retry="1s")
    started = time.monotonic()
    error = await failure(backend(gemini_bin, fake.url, cli_home), timeout_s=15)
    assert time.monotonic() - started < 25
    assert isinstance(error, errors.RateLimited), error
    assert "still retrying" in str(error)
    time.sleep(0.3)
    assert _processes_with(str(cli_home)) == []


async def test_bad_request_is_a_typed_error(
    gemini_bin: Path, fake: FakeGemini, cli_home: Path
) -> None:
    fake.fail(400, "Request contains an invalid argument.")
    error = await failure(backend(gemini_bin, fake.url, cli_home))
    assert type(error) is errors.ProviderError
    assert "exit 144" in str(error)


async def test_no_auth_exits_41(gemini_bin: Path, fake: FakeGemini, tmp_path: Path) -> None:
    bare = tmp_path / "bare-home"
    bare.mkdir()
    error = await failure(backend(gemini_bin, fake.url, bare, key=None))
    assert isinstance(error, errors.AuthFailed), error
    assert "exit 41" in str(error) and "log in" in str(error)
    assert fake.calls == []


async def test_missing_cli_is_provider_down(tmp_path: Path) -> None:
    cli = backend(tmp_path / "gemini", "http://127.0.0.1:9", tmp_path)
    error = await failure(cli)
    assert isinstance(error, errors.ProviderDown)
    assert "npm install -g @google/gemini-cli" in str(error)
    assert not (await cli.health()).ok


async def test_health_reports_the_version(gemini_bin: Path, cli_home: Path) -> None:
    health = await backend(gemini_bin, "http://127.0.0.1:9", cli_home).health()
    assert health.ok and PINNED in health.detail


def test_source_list_parsing_keeps_only_listed_markers() -> None:
    text, sources = split_source_list("A [1] and B [3].\n\n**Sources:**\n[1] T - https://t.example")
    assert text == "A [1] and B ."
    assert sources == (Source("T", "https://t.example"),)
    assert split_source_list("No list here [1].") == ("No list here [1].", ())


def _processes_with(marker: str) -> list[int]:
    """Live processes whose environment mentions `marker` (the test's private CLI home)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found
