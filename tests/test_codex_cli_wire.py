"""The real Codex CLI against the Responses API fake, through the `codex_at_fake` fixture:
edits the way 0.169.0 makes them, the plan-limit reset, an unreachable provider, resume.

The fixture (conftest.py, tests/fake_responses.py `CodexAtFake`) is the one other tests reuse to
run the real CLI in any sandbox; these tests also pin what it promises (nothing in ~/.codex).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from offload_mcp import errors, quota
from offload_mcp.backends.codex import CodexBackend
from offload_mcp.backends.codex_events import CodexRun
from offload_mcp.backends.process import run_process
from offload_mcp.packets import CompletionRequest, Message
from tests.fake_responses import CodexAtFake, add_file

pytestmark = pytest.mark.anyio


def request(text: str = "Do it.", timeout_s: float = 20) -> CompletionRequest:
    return CompletionRequest(
        messages=(Message("user", text),), max_output_tokens=100, timeout_s=timeout_s
    )


def workdir(codex: CodexAtFake) -> Path:
    path = codex.user_home.parent / "work"
    path.mkdir(exist_ok=True)
    return path


async def run_in(codex: CodexAtFake, sandbox: str) -> tuple[CodexRun, int, str]:
    backend = CodexBackend(codex.provider(), None)
    work = workdir(codex)
    argv = backend.command(str(codex.binary), str(work), None, sandbox=sandbox)
    return await backend._run(argv, request())


async def test_apply_patch_in_workspace_write_is_a_relative_file_change(codex_at_fake):
    codex = codex_at_fake
    call = codex.fake.apply_patch(add_file("notes/hello.txt", "hello\nworld"))
    codex.fake.message("Added it.")
    run, code, _ = await run_in(codex, "workspace-write")
    assert code == 0 and run.completed and run.final_message == "Added it."
    assert (workdir(codex) / "notes" / "hello.txt").read_text() == "hello\nworld\n"
    # 0.169.0 reports the absolute path; the run keeps it relative to the workdir
    assert {p: c.kind for p, c in run.file_changes.items()} == {"notes/hello.txt": "add"}
    assert run.commands == {}, "an intercepted apply_patch is not a command"
    assert "Success. Updated the following files:\nA notes/hello.txt" in (
        codex.fake.tool_output(call) or ""
    )
    # the throwaway homes took everything: no ~/.codex was made in the child's HOME
    assert not (codex.user_home / ".codex").exists()
    assert (codex.codex_home / "sessions").is_dir() or any(codex.codex_home.iterdir())


async def test_apply_patch_in_read_only_is_refused_without_an_item(codex_at_fake):
    codex = codex_at_fake
    call = codex.fake.apply_patch(add_file("hello.txt", "hello"))
    codex.fake.message("Could not write.")
    run, code, _ = await run_in(codex, "read-only")
    assert code == 0 and run.completed, "a refused edit does not fail the turn"
    assert not (workdir(codex) / "hello.txt").exists()
    assert run.file_changes == {} and run.commands == {}
    assert "patch rejected: writing is blocked by read-only sandbox" in (
        codex.fake.tool_output(call) or ""
    )


async def test_plan_usage_limit_becomes_a_cool_down_until_the_reset(codex_at_fake):
    codex = codex_at_fake
    resets_at = int(time.time()) + 5400
    codex.fake.usage_limit(resets_at)
    with pytest.raises(errors.RateLimited) as caught:
        await CodexBackend(codex.provider(), None).complete(request())
    error = caught.value
    assert "usage limit" in str(error) and "try again at" in str(error)
    # Codex prints the reset in local time to the minute: within a minute of the real one
    assert error.retry_after_s is not None
    assert abs(time.time() + error.retry_after_s - resets_at) <= 61
    now = time.time()
    cooldown = quota.cooldown_for(error, now)
    assert cooldown is not None and abs(cooldown[0] - resets_at) <= 61
    assert len(codex.fake.requests) == 1, "not retried"


async def test_unreachable_provider_is_down_not_a_timeout(codex_at_fake):
    codex = codex_at_fake
    codex.fake.stop()  # nothing listens on its port now
    # under 5 s, the pause before Codex's second notice; over its start-up silence under load
    backend = CodexBackend(codex.provider(idle_timeout_s=4), None)
    started = time.monotonic()
    with pytest.raises(errors.ProviderDown) as caught:
        await backend.complete(request(timeout_s=60))
    # 0.169.0 retries "waiting for network" forever, whatever the retry settings
    assert "cannot reach the model" in str(caught.value)
    assert "waiting for network" in str(caught.value)
    assert time.monotonic() - started < 12


async def test_resume_sends_the_whole_thread_again(codex_at_fake):
    codex = codex_at_fake
    codex.fake.message("First answer.")
    codex.fake.message("Second answer.")
    backend = CodexBackend(codex.provider(), None)
    work = workdir(codex)
    first, code, _ = await backend._run(
        backend.command(str(codex.binary), str(work), None, ephemeral=False), request("One.")
    )
    assert code == 0 and first.thread_id
    argv = backend.resume_command(str(codex.binary), first.thread_id, None, sandbox="read-only")
    second, code, _ = await _resume(backend, argv, work)
    assert code == 0 and second.final_message == "Second answer."
    assert second.thread_id == first.thread_id
    assert second.usage is not None and second.usage.input_tokens == 240  # thread-cumulative
    one, two = codex.fake.requests
    assert two.headers["thread-id"] == one.headers["thread-id"] == first.thread_id
    assert (
        two.body["prompt_cache_key"] == first.thread_id and "previous_response_id" not in two.body
    )
    turn = json.loads(two.headers["x-codex-turn-metadata"])
    assert turn["history_initialization"] == "cold_resume"
    said = [
        (item.get("role"), item["content"][0].get("text"))
        for item in two.body["input"]
        if item.get("type") == "message" and item.get("role") in ("user", "assistant")
    ]
    assert said[-3:] == [("user", "One."), ("assistant", "First answer."), ("user", "Two.")]


async def _resume(
    backend: CodexBackend, argv: list[str], work: Path
) -> tuple[CodexRun, int | None, str]:
    """`exec resume` refuses `-C`, so it runs with the workdir as its cwd (as delegate does)."""
    run = CodexRun(root=str(work))
    async with run_process(
        argv, env=backend.child_env(), cwd=str(work), stdin_data=b"Two.", timeout_s=20
    ) as proc:
        async for line in proc.lines():
            run.feed(line)
    assert proc.result is not None
    return run, proc.result.returncode, proc.result.stderr_tail
