"""The real Codex CLI (pinned in tests/node) against the loopback Responses API fake.

Codex gets a throwaway CODEX_HOME and a custom model provider pointing at the fake (never the
user's ~/.codex, never the network); retries are kept at 0 so failures come back in well under
a second. The sandbox (the bundled bubblewrap) works in CI containers as it does on a desktop:
the edit tests run in `workspace-write` and a write under `read-only` is refused.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from offload_mcp import errors
from offload_mcp.backends import codex as codex_module
from offload_mcp.backends.codex import CodexBackend
from offload_mcp.config import Paths, ProviderConfig, build_settings
from offload_mcp.packets import CompletionRequest, Message
from tests.clients import codex_binary
from tests.delegate_helpers import (
    connect,
    delegate,
    eventually,
    ledger_rows,
    make_repo,
)
from tests.fake_responses import FakeResponses, provider_overrides

pytestmark = pytest.mark.anyio

KEY = "sk-fake-codex-1234567890"
MODEL = "fake-model"
VERIFY = 'cat answer.txt; test "$(cat answer.txt)" = 42'


@pytest.fixture(scope="module")
def codex_bin() -> Path:
    return codex_binary()


@pytest.fixture
def fake() -> Iterator[FakeResponses]:
    with FakeResponses(expect_key=KEY) as server:
        yield server


@pytest.fixture
def codex_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty CODEX_HOME: no login, no config, no sessions of the user's."""
    home = tmp_path / "codex-home"
    home.mkdir()
    monkeypatch.delenv("CODEX_API_KEY", raising=False)
    monkeypatch.delenv("FAKE_KEY", raising=False)
    return home


def provider_fields(
    codex_bin: Path,
    fake: FakeResponses,
    codex_home: Path,
    *,
    key: str | None = KEY,
    idle_timeout_s: float = 20.0,
    **overrides: Any,
) -> dict[str, Any]:
    """The codex provider's fields: pinned binary, isolated home, -c overrides to the fake."""
    env = {"CODEX_HOME": str(codex_home)}
    if key is not None:
        env["FAKE_KEY"] = key
    return {
        "command": str(codex_bin),
        "model": MODEL,
        "env": env,
        "extra_body": {
            "config": provider_overrides(fake.url, **overrides),
            "idle_timeout_s": idle_timeout_s,
        },
    }


def provider(codex_bin: Path, fake: FakeResponses, codex_home: Path, **extra: Any) -> CodexBackend:
    fields = build_settings({}).providers["codex"].model_dump()
    fields.update(provider_fields(codex_bin, fake, codex_home, **extra))
    return CodexBackend(ProviderConfig.model_validate(fields), None)


def request(text: str = "Say hello.", timeout_s: float = 20) -> CompletionRequest:
    return CompletionRequest(
        messages=(Message("system", "Be brief."), Message("user", text)),
        max_output_tokens=100,
        timeout_s=timeout_s,
    )


def last_user_text(body: dict[str, Any]) -> str:
    user = [i for i in body["input"] if i.get("type") == "message" and i.get("role") == "user"]
    return str(user[-1]["content"][0]["text"])


# --- CodexBackend ---------------------------------------------------------------------------


async def test_plain_answer_tokens_and_the_wire(codex_bin, fake, codex_home):
    fake.message("Hello.", reasoning="a greeting", tokens=None)
    backend = provider(codex_bin, fake, codex_home)
    started = time.monotonic()
    completion = await backend.complete(request())
    assert completion.text == "Hello."
    usage = completion.usage
    assert (usage.input_tokens, usage.cached_input_tokens, usage.output_tokens) == (120, 100, 7)
    assert time.monotonic() - started < 5
    (sent,) = fake.requests
    assert (sent.method, sent.path) == ("POST", "/v1/responses")
    assert sent.headers["authorization"] == "Bearer [redacted]"  # the key matched; not kept
    assert sent.headers["accept"] == "text/event-stream"
    assert sent.headers["originator"] == "codex_exec"
    assert "0.169.0" in sent.headers["user-agent"]
    body = sent.body
    assert body["model"] == MODEL and body["stream"] is True and "instructions" not in body
    assert last_user_text(body) == "Be brief.\n\nSay hello."
    assert "exec_command" in [tool.get("name") for tool in body["tools"]]
    # nothing went to the user's ~/.codex: the session state is in the throwaway home
    assert any(codex_home.iterdir())


async def test_commands_through_tool_calls_and_their_output(codex_bin, fake, codex_home):
    ok = fake.exec_command("echo hi")
    bad = fake.exec_command("echo oops; exit 3")
    fake.message("Ran both.")
    backend = provider(codex_bin, fake, codex_home)
    workdir = codex_home.parent / "work"
    workdir.mkdir()
    run, code, _ = await backend._run(
        backend.command(str(codex_bin), str(workdir), None), request()
    )
    assert code == 0 and run.completed and run.final_message == "Ran both."
    first, second = run.commands.values()
    assert "echo hi" in first.command and (first.exit_code, first.status) == (0, "completed")
    # `bash -lc` reads the login profile, which may print first
    assert first.output_tail.endswith("hi\n")
    assert "exit 3" in second.command and (second.exit_code, second.status) == (3, "failed")
    assert run.failed_commands == [second]
    # Codex sent each result back in the next request, after the history
    assert "Process exited with code 0" in (fake.tool_output(ok) or "")
    assert "Output:\n" in (fake.tool_output(ok) or "")
    assert (fake.tool_output(ok) or "").endswith("hi\n")
    assert "Process exited with code 3" in (fake.tool_output(bad) or "")
    assert len(fake.bodies()) == 3
    # thread-cumulative usage: three requests of 120/100/7
    assert run.usage is not None
    assert (run.usage.input_tokens, run.usage.output_tokens) == (360, 21)


async def test_read_only_sandbox_refuses_a_write(codex_bin, fake, codex_home):
    call = fake.exec_command("printf 42 > answer.txt")
    fake.message("Could not write.")
    backend = provider(codex_bin, fake, codex_home)
    workdir = codex_home.parent / "work"
    workdir.mkdir()
    run, code, _ = await backend._run(
        backend.command(str(codex_bin), str(workdir), None), request()
    )
    assert code == 0 and run.completed
    assert not (workdir / "answer.txt").exists()
    output = fake.tool_output(call) or ""
    assert "Process exited with code 1" in output and "Read-only file system" in output
    # 0.169.0 reports it as a failed command, or (seen when its only output is the sandbox's
    # refusal) emits no command_execution item at all
    assert all((c.status, c.exit_code) == ("failed", 1) for c in run.commands.values())


async def test_401_is_an_auth_error(codex_bin, fake, codex_home):
    fake.unauthorized()
    backend = provider(codex_bin, fake, codex_home)
    with pytest.raises(errors.AuthFailed) as caught:
        await backend.complete(request())
    assert "401 Unauthorized" in str(caught.value)
    assert KEY not in str(caught.value)
    assert len(fake.requests) == 1  # request_max_retries = 0


async def test_wrong_or_missing_key_is_an_auth_error(codex_bin, fake, codex_home):
    backend = provider(codex_bin, fake, codex_home, key="sk-wrong")
    with pytest.raises(errors.AuthFailed, match="Incorrect API key"):
        await backend.complete(request())
    assert len(fake.requests) == 1
    backend = provider(codex_bin, fake, codex_home, key=None)
    with pytest.raises(errors.AuthFailed, match="Missing environment variable: `FAKE_KEY`"):
        await backend.complete(request())
    assert len(fake.requests) == 1, "no request without the key"


async def test_429_rate_limit_is_retried_then_a_rate_limit_error(codex_bin, fake, codex_home):
    fake.rate_limited(retry_after_s=1, times=2)
    backend = provider(codex_bin, fake, codex_home, retries=1)
    with pytest.raises(errors.RateLimited) as caught:
        await backend.complete(request())
    assert "429 Too Many Requests" in str(caught.value)
    assert len(fake.requests) == 2  # one retry, after the retry-after


async def test_rate_limit_retry_succeeds(codex_bin, fake, codex_home):
    fake.rate_limited(retry_after_s=0)
    fake.message("Second time lucky.")
    backend = provider(codex_bin, fake, codex_home, retries=1)
    assert (await backend.complete(request())).text == "Second time lucky."
    assert len(fake.requests) == 2


async def test_dropped_connection_is_a_provider_down_error(codex_bin, fake, codex_home):
    fake.drop()
    backend = provider(codex_bin, fake, codex_home)
    with pytest.raises(errors.ProviderDown, match="stream disconnected before completion"):
        await backend.complete(request())
    assert len(fake.requests) == 1


async def test_hang_hits_our_idle_timeout_and_the_group_is_gone(
    codex_bin, fake, codex_home, monkeypatch
):
    groups: list[int] = []
    real = codex_module.run_process

    def recording(*args: Any, **kwargs: Any) -> AbstractAsyncContextManager[Any]:
        return _Recording(real(*args, **kwargs), groups)

    monkeypatch.setattr(codex_module, "run_process", recording)
    fake.hang(30)
    # 2 s: on a loaded 2-core machine Codex can be silent for over 1 s before its request
    backend = provider(codex_bin, fake, codex_home, idle_timeout_s=2.0)
    started = time.monotonic()
    with pytest.raises(errors.ProviderTimeout, match="printed nothing for 2 s; killed"):
        await backend.complete(request())
    assert time.monotonic() - started < 6
    (pgid,) = groups

    def group_gone() -> bool:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        return False

    assert await eventually(group_gone, timeout=3)
    assert len(fake.requests) == 1


class _Recording:
    """Wraps `run_process` to note the child's process group (its pid: a new session)."""

    def __init__(self, inner: AbstractAsyncContextManager[Any], groups: list[int]) -> None:
        self.inner = inner
        self.groups = groups

    async def __aenter__(self) -> Any:
        proc = await self.inner.__aenter__()
        self.groups.append(proc.pid)
        return proc

    async def __aexit__(self, *exc: Any) -> Any:
        return await self.inner.__aexit__(*exc)


async def test_no_delegation_loop_through_codex_mcp_servers(codex_bin, fake, codex_home):
    marker = codex_home / "loop-started"
    (codex_home / "config.toml").write_text(
        f'[mcp_servers.loop]\ncommand = "sh"\nargs = ["-c", "touch \'{marker}\'"]\n'
    )
    fake.message("No loop.")
    assert (await provider(codex_bin, fake, codex_home).complete(request())).text == "No loop."
    assert not marker.exists()
    # The control: with the user's config loaded, `-c mcp_servers={}` alone starts it anyway,
    # which is why the backend passes --ignore-user-config.
    fake.message("Loop.")
    backend = provider(codex_bin, fake, codex_home)
    backend.user_config = True
    assert (await backend.complete(request())).text == "Loop."
    assert await eventually(marker.exists, timeout=3)


# --- through the dispatcher (MCP `offload` tool, ledger) -----------------------------------


def write_offload_config(paths: Paths, fields: dict[str, Any]) -> None:
    body = "\n".join(f"{key} = {_toml(value)}" for key, value in fields.items())
    paths.config_file.write_text(f'[providers.codex]\n{body}\n\n[chains]\noffload = ["codex"]\n')


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


def ledger(paths: Paths) -> list[tuple[Any, ...]]:
    with sqlite3.connect(paths.ledger_file) as conn:
        return conn.execute(
            "SELECT provider, outcome, input_tokens, cached_tokens, output_tokens FROM calls"
        ).fetchall()


async def offload(paths: Paths, cwd: Path, calls: int = 1) -> list[tuple[bool, str]]:
    out = []
    async with connect(paths, cwd) as client:
        for n in range(calls):
            result = await client.call_tool("offload", {"task": f"Say hi ({n})."})
            out.append((result.is_error, result.content[0].text))  # type: ignore[union-attr]
        status = await client.call_tool("status", {})
        out.append((status.is_error, status.content[0].text))  # type: ignore[union-attr]
    return out


async def test_dispatch_answer_lands_in_the_ledger(codex_bin, fake, codex_home, paths, tmp_path):
    write_offload_config(paths, provider_fields(codex_bin, fake, codex_home))
    fake.message("hi from codex")
    (is_error, text), _ = await offload(paths, tmp_path)
    assert not is_error and text.startswith("hi from codex"), text
    assert ledger(paths) == [("codex", "ok", 120, 100, 7)]


async def test_dispatch_quota_429_cools_codex_down(codex_bin, fake, codex_home, paths, tmp_path):
    write_offload_config(paths, provider_fields(codex_bin, fake, codex_home))
    fake.quota()
    (is_error, text), (again, text2), (_, status) = await offload(paths, tmp_path, calls=2)
    assert is_error and "API quota exceeded" in text and "Quota exceeded" in text, text
    assert again and "cooling" in text2, text2
    assert len(fake.requests) == 1, "a cooling provider is skipped without a request"
    assert "cooling down" in status and "rate limited by the provider" in status


# --- delegate_to_codex end to end, workspace-write -----------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "project", {"answer.txt": "0\n", "keep.txt": "keep\n"})


@pytest.fixture
def delegate_config(paths: Paths, tmp_path: Path, codex_bin, fake, codex_home) -> None:
    fields = provider_fields(codex_bin, fake, codex_home)
    body = "\n".join(f"{key} = {_toml(value)}" for key, value in fields.items())
    paths.config_file.write_text(
        f'[limits]\nallowed_roots = ["{tmp_path}"]\n\n[providers.codex]\n{body}\n'
    )


async def test_delegate_edit_verified(paths, repo, fake, delegate_config):
    fake.exec_command("printf '42\\n' > answer.txt")
    fake.message("Wrote 42.")
    async with connect(paths, repo) as client:
        is_error, text = await delegate(client, task="Answer.", path=".", verify=VERIFY)
    assert not is_error, text
    assert text.startswith("outcome: verified"), text
    assert "Wrote 42." in text and "answer.txt | 2 +-" in text
    assert (repo / "answer.txt").read_text() == "0\n", "apply was not asked"
    assert "Answer." in last_user_text(fake.bodies()[0])
    assert ledger_rows(paths) == [("delegate", "codex", "ok", 0, 240, 200, 14)]


async def test_delegate_verify_fails_then_resume_fixes_it(paths, repo, fake, delegate_config):
    wrong = fake.exec_command("printf '41\\n' > answer.txt")
    fake.message("Wrote 41.")
    fake.exec_command("printf '42\\n' > answer.txt")
    fake.message("Fixed: 42.")
    async with connect(paths, repo) as client:
        is_error, text = await delegate(client, task="Answer.", path=".", verify=VERIFY, apply=True)
    assert not is_error, text
    assert text.startswith("outcome: verified (after 1 retry"), text
    assert "Fixed: 42." in text
    assert (repo / "answer.txt").read_text() == "42\n", "applied after verify passed"
    bodies = fake.bodies()
    assert len(bodies) == 4
    resumed = bodies[2]
    # the resumed thread carries the whole earlier history, then the verify failure
    history = resumed["input"]
    calls = [i for i in history if i.get("type") == "function_call_output"]
    assert [c["call_id"] for c in calls] == [wrong]
    assert any("Answer." in str(i) for i in history)
    assert any("Wrote 41." in str(i) for i in history)
    assert "41" in last_user_text(resumed) and "exit 1" in last_user_text(resumed)
    assert resumed["prompt_cache_key"] == bodies[0]["prompt_cache_key"]
    # one ledger row per run; the resume's tokens are its own, not the thread's
    assert ledger_rows(paths) == [
        ("delegate", "codex", "ok", 0, 240, 200, 14),
        ("delegate", "codex", "ok", 1, 240, 200, 14),
    ]
