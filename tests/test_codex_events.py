"""`codex exec --json` parsing and failure classification, from the documented shapes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from offload_mcp import errors
from offload_mcp.backends.codex_events import (
    CodexRun,
    CodexUsage,
    Progress,
    failure_error,
    killed_error,
    plan_reset_s,
)

THREAD = "01a20059-7b1e-7c55-9d4e-000000000001"
USAGE = {
    "input_tokens": 240,
    "cached_input_tokens": 200,
    "cache_write_input_tokens": 0,
    "output_tokens": 14,
    "reasoning_output_tokens": 6,
}
TOOL_RUN = [
    {"type": "thread.started", "thread_id": THREAD},
    {
        "type": "item.completed",
        "item": {
            "id": "item_0",
            "type": "error",
            "message": "Model metadata for `gpt-5.1-codex` not found. Defaulting to fallback",
        },
    },
    {"type": "turn.started"},
    {
        "type": "item.started",
        "item": {
            "id": "item_2",
            "type": "command_execution",
            "command": "/bin/bash -lc 'echo hi'",
            "aggregated_output": "",
            "exit_code": None,
            "status": "in_progress",
        },
    },
    {
        "type": "item.completed",
        "item": {
            "id": "item_2",
            "type": "command_execution",
            "command": "/bin/bash -lc 'echo hi'",
            "aggregated_output": "hi\n",
            "exit_code": 0,
            "status": "completed",
        },
    },
    {"type": "item.completed", "item": {"id": "item_3", "type": "reasoning", "text": "hmm"}},
    {"type": "item.completed", "item": {"id": "item_4", "type": "agent_message", "text": "done"}},
    {"type": "turn.completed", "usage": USAGE},
]


def feed(events: list[Any]) -> tuple[CodexRun, list[Progress]]:
    run = CodexRun()
    progress = []
    for event in events:
        line = event if isinstance(event, str) else json.dumps(event)
        found = run.feed(line)
        if found:
            progress.append(found)
    return run, progress


def test_tool_run() -> None:
    run, progress = feed(TOOL_RUN)
    assert run.thread_id == THREAD
    assert run.completed and run.failure is None
    assert run.final_message == "done"
    assert run.usage == CodexUsage(240, 200, 0, 14, 6)
    [command] = run.commands.values()
    assert (command.command, command.exit_code, command.status) == (
        "/bin/bash -lc 'echo hi'",
        0,
        "completed",
    )
    assert command.output_tail == "hi\n"
    assert progress == [Progress("command", "/bin/bash -lc 'echo hi'")]
    # the missing-metadata warning (every custom model) is never quoted as a failure's reason
    assert run.notices == []


def test_file_changes_and_failed_commands() -> None:
    change = {"type": "file_change", "changes": [{"path": "src/a.py", "kind": "update"}]}
    run, progress = feed(
        [
            {"type": "item.started", "item": {"id": "item_1", **change, "status": "in_progress"}},
            {"type": "item.updated", "item": {"id": "item_1", **change, "status": "in_progress"}},
            {"type": "item.completed", "item": {"id": "item_1", **change, "status": "completed"}},
            {
                "type": "item.completed",
                "item": {
                    "id": "item_2",
                    "type": "file_change",
                    "status": "completed",
                    "changes": [
                        {"path": "src/b.py", "kind": "add", "diff": "+x"},
                        {"path": "src/a.py", "kind": "update"},
                    ],
                },
            },
            {
                "type": "item.completed",
                "item": {
                    "id": "item_3",
                    "type": "file_change",
                    "status": "failed",
                    "changes": [{"path": "src/c.py", "kind": "delete"}],
                },
            },
            {
                "type": "item.completed",
                "item": {
                    "id": "item_4",
                    "type": "command_execution",
                    "command": "pytest -q",
                    "aggregated_output": "x" * 5000 + "FAILED",
                    "exit_code": 1,
                    "status": "failed",
                },
            },
        ]
    )
    assert {p: c.kind for p, c in run.file_changes.items()} == {
        "src/a.py": "update",
        "src/b.py": "add",
    }
    assert progress == [
        Progress("file_change", "src/a.py"),
        Progress("file_change", "src/b.py"),
        Progress("command", "pytest -q"),
    ]
    [failed] = run.failed_commands
    assert failed.output_tail.endswith("FAILED") and len(failed.output_tail) == 2000


def test_usage_is_the_last_turn_completed() -> None:
    later = {**USAGE, "input_tokens": 360, "output_tokens": 20}
    run, _ = feed(
        [
            {"type": "turn.completed", "usage": USAGE},
            {"type": "turn.started"},
            {"type": "turn.completed", "usage": later},
        ]
    )
    assert run.usage == CodexUsage(360, 200, 0, 20, 6)
    assert run.usage.minus(CodexUsage(240, 200, 0, 14, 6)) == CodexUsage(120, 0, 0, 6, 0)


@pytest.mark.parametrize(
    "line",
    [
        "not json at all",
        "[1, 2]",
        '{"type": "item.plan.delta", "item_id": "x", "delta": "y"}',
        '{"type": "request_user_input", "id": "1", "questions": []}',
        '{"type": "something.new", "weird": true}',
        '{"type": "item.completed", "item": "not an object"}',
        '{"type": "item.completed", "item": {"type": "todo_list", "items": []}}',
        '{"type": "item.completed", "item": {"id": "i", "type": "mcp_tool_call"}}',
        '{"type": "thread.started"}',
        '{"type": "turn.completed", "usage": {"input_tokens": "many"}}',
        '{"no_type": 1}',
    ],
)
def test_unknown_and_odd_lines_are_ignored(line: str) -> None:
    run, progress = feed([line])
    assert progress == []
    assert run.final_message is None and run.failure is None and run.thread_id is None
    assert run.usage in (None, CodexUsage())


def test_three_field_usage_from_older_versions() -> None:
    run, _ = feed(
        [
            {
                "type": "turn.completed",
                "usage": {"input_tokens": 5, "cached_input_tokens": 1, "output_tokens": 2},
            }
        ]
    )
    assert run.usage == CodexUsage(5, 1, 0, 2, 0)


def failed(message: str, notices: tuple[str, ...] = ()) -> CodexRun:
    events: list[Any] = [{"type": "thread.started", "thread_id": THREAD}, {"type": "turn.started"}]
    events += [{"type": "error", "message": n} for n in notices]
    events.append({"type": "turn.failed", "error": {"message": message}})
    return feed(events)[0]


LOCAL_NOW = datetime(2026, 11, 22, 14, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("message", "notices", "error_type", "retry_after_s"),
    [
        (
            "unexpected status 401 Unauthorized: Missing bearer or basic authentication in header,"
            " url: http://127.0.0.1:9/v1/responses",
            ("Reconnecting... 2/5 (unexpected status 401 Unauthorized: nope)",),
            errors.AuthFailed,
            None,
        ),
        ("Missing environment variable: `FAKE_KEY`.", (), errors.AuthFailed, None),
        ("Quota exceeded. Check your plan and billing details.", (), errors.RateLimited, None),
        (
            "exceeded retry limit, last status: 429 Too Many Requests",
            ("Reconnecting... 5/5 (exceeded retry limit, last status: 429 Too Many Requests)",),
            errors.RateLimited,
            None,
        ),
        (
            "You've hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro) or try"
            " again in 4 days 3 hours 2 minutes.",
            (),
            errors.RateLimited,
            4 * 86400 + 3 * 3600 + 120,
        ),
        (
            "You've hit your usage limit. Try again at 3:51 PM.",
            (),
            errors.RateLimited,
            None,  # depends on local time: checked in test_plan_reset_s
        ),
        ("unexpected status 403 Forbidden: no", (), errors.NotAllowed, None),
        ("unexpected status 404 Not Found: model_not_found", (), errors.ModelNotFound, None),
        (
            "stream disconnected: failed to lookup address information: Name does not resolve",
            (),
            errors.ProviderDown,
            None,
        ),
        ("something else entirely", (), errors.ProviderError, None),
    ],
)
def test_failure_classification(
    message: str, notices: tuple[str, ...], error_type: type, retry_after_s: float | None
) -> None:
    error = failure_error("codex", failed(message, notices), 1)
    assert type(error) is error_type
    assert error.provider == "codex"
    assert "codex exited 1" in str(error)
    if retry_after_s is not None:
        assert isinstance(error, errors.RateLimited)
        assert error.retry_after_s == retry_after_s


def test_reason_falls_back_to_error_event_then_stderr() -> None:
    run, _ = feed([{"type": "error", "message": "Reconnecting... waiting for network"}])
    assert run.reason("x") == "Reconnecting... waiting for network"
    assert isinstance(failure_error("codex", run, None), errors.ProviderDown)
    empty = CodexRun()
    stderr = "Reading prompt from stdin...\nNo prompt provided via stdin.\n"
    assert empty.reason(stderr) == "No prompt provided via stdin."
    usage_error = failure_error("codex", empty, 2, "error: unexpected argument '--full-auto'")
    assert "rejected its arguments" in str(usage_error)


def test_turn_completed_clears_an_earlier_failure() -> None:
    run = failed("temporary")
    run.feed(json.dumps({"type": "turn.completed", "usage": USAGE}))
    assert run.completed and run.failure is None


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("try again in 4 days 20 hours 9 minutes.", 4 * 86400 + 20 * 3600 + 9 * 60),
        ("Please try again in 30 seconds", 30.0),
        ("Try again at 3:51 PM.", 3600 + 51 * 60),
        ("try again at 11:05 AM", 21 * 3600 + 5 * 60),  # already past today: tomorrow
        ("try again at 2:00 PM", 60.0),  # printed to the minute: due within this one
        ("try again at Nov 23rd, 2026 12:30 AM.", 10 * 3600 + 30 * 60),
        ("try again at Sep 29th, 2025 12:55 AM.", None),  # in the past
        ("try again later.", None),
        ("no time here", None),
    ],
)
def test_plan_reset_s(message: str, expected: float | None) -> None:
    assert plan_reset_s(message, now=LOCAL_NOW) == expected


# Observed from the real 0.169.0 against tests/fake_responses.py (curly apostrophe included).
REAL_PLAN_LIMIT = (
    "You\u2019ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit "
    "https://chatgpt.com/settings/usage to purchase more credits or try again at 2:09 AM."
)
REAL_DROP = (
    "stream disconnected before completion: Transport error: network error: error decoding "
    "response body"
)
NETWORK_WAIT = "Reconnecting... waiting for network (Connection failed: error sending request)"


def test_real_plan_limit_and_dropped_stream_messages() -> None:
    error = failure_error("codex", failed(REAL_PLAN_LIMIT, (REAL_PLAN_LIMIT,)), 1)
    assert isinstance(error, errors.RateLimited) and "usage limit" in str(error)
    assert plan_reset_s(REAL_PLAN_LIMIT, now=LOCAL_NOW) == 12 * 3600 + 9 * 60
    assert isinstance(
        failure_error("codex", failed(REAL_DROP, (REAL_DROP,)), 1), errors.ProviderDown
    )


def test_absolute_file_change_paths_are_kept_relative_to_the_root(tmp_path) -> None:
    root = tmp_path / "work"
    inside, outside = str(root / "src" / "a.py"), str(tmp_path / "elsewhere.py")
    run = CodexRun(root=str(root))
    progress = [
        run.feed(json.dumps(event))
        for event in (
            {
                "type": "item.completed",
                "item": {
                    "id": "item_1",
                    "type": "file_change",
                    "status": "completed",
                    "changes": [
                        {"path": inside, "kind": "add"},
                        {"path": outside, "kind": "update"},
                        {"path": "rel.txt", "kind": "delete"},
                    ],
                },
            },
        )
    ]
    assert progress == [Progress("file_change", f"src/a.py, {outside}, rel.txt")]
    assert set(run.file_changes) == {"src/a.py", outside, "rel.txt"}
    # without a root the paths stay as Codex wrote them
    bare, _ = feed(
        [
            {
                "type": "item.completed",
                "item": {
                    "id": "x",
                    "type": "file_change",
                    "status": "completed",
                    "changes": [{"path": inside, "kind": "add"}],
                },
            }
        ]
    )
    assert set(bare.file_changes) == {inside}


def test_network_wait_is_tracked_until_another_event() -> None:
    run, _ = feed([{"type": "turn.started"}, {"type": "error", "message": NETWORK_WAIT}])
    assert run.offline_since is not None and run.offline_s() >= 0
    first = run.offline_since
    run.feed(json.dumps({"type": "error", "message": NETWORK_WAIT}))
    assert run.offline_since == first, "the wait is measured from the first notice in a row"
    down = killed_error("codex", run, "printed nothing for 5 s")
    assert isinstance(down, errors.ProviderDown) and "cannot reach the model" in str(down)
    assert NETWORK_WAIT in str(down)
    run.feed(json.dumps({"type": "item.completed", "item": {"type": "reasoning", "text": "t"}}))
    assert run.offline_since is None and run.offline_s() == 0
    slow = killed_error("codex", run, "printed nothing for 5 s")
    assert type(slow) is errors.ProviderTimeout
    # other notices (retry counts) are not a network wait
    retrying, _ = feed([{"type": "error", "message": "Reconnecting... 1/5 (429)"}])
    assert retrying.offline_since is None
