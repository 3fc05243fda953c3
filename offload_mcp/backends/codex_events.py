"""A lenient reader of `codex exec --json` JSONL, and what a failed run means for dispatch.

Shapes: reference/backends.md §1.3 and §1.6 (Codex 0.169.0). Fields vary between versions, so
unknown event and item types are ignored, missing fields default, and non-JSON lines (a
stray log line) are skipped. Usage is thread-cumulative: the last `turn.completed` wins.
`file_change` paths come absolute from the real CLI (0.169.0); given the run's `root`, they are
kept relative to it, so a progress line names the file, not the workspace directory.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from offload_mcp import errors

MAX_OUTPUT_TAIL = 2000
#: warning items that say nothing about a failure (any model the binary has no metadata
#: for, i.e. every local or custom one): never quoted as the reason a run failed
_HARMLESS_NOTICES = ("Model metadata for",)
MAX_QUOTED_CHARS = 300


@dataclass
class CodexUsage:
    """Thread-cumulative token counts; `output_tokens` already includes reasoning."""

    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_output_tokens: int = 0

    def minus(self, earlier: CodexUsage) -> CodexUsage:
        """Per-turn usage: this cumulative value less the one before the turn."""
        return CodexUsage(
            *(max(a - b, 0) for a, b in zip(_usage_tuple(self), _usage_tuple(earlier), strict=True))
        )


def _usage_tuple(usage: CodexUsage) -> tuple[int, ...]:
    return (
        usage.input_tokens,
        usage.cached_input_tokens,
        usage.cache_write_input_tokens,
        usage.output_tokens,
        usage.reasoning_output_tokens,
    )


@dataclass
class CommandRun:
    command: str
    status: str
    exit_code: int | None = None
    #: the end of the command's output, at most MAX_OUTPUT_TAIL characters
    output_tail: str = ""


@dataclass
class FileChange:
    path: str
    kind: str


@dataclass(frozen=True)
class Progress:
    """Something worth a progress notification: a command started or a file changed."""

    kind: str  # "command" | "file_change"
    detail: str


@dataclass
class CodexRun:
    """Everything learned from one run's stream; feed it lines in order."""

    #: the working root; absolute `file_change` paths under it are stored relative to it
    root: str | None = None
    thread_id: str | None = None
    final_message: str | None = None
    usage: CodexUsage | None = None
    completed: bool = False
    #: message of the last `turn.failed`
    failure: str | None = None
    #: non-terminal `error` events and `error` items (retry notices, config warnings)
    notices: list[str] = field(default_factory=list)
    #: when the unbroken run of "waiting for network" notices began (monotonic clock)
    offline_since: float | None = None
    commands: dict[str, CommandRun] = field(default_factory=dict)
    file_changes: dict[str, FileChange] = field(default_factory=dict)
    ignored_lines: int = 0

    def feed(self, line: str) -> Progress | None:
        """Take one stdout line; returns a `Progress` when a command starts or a file changes."""
        try:
            event = json.loads(line)
        except ValueError:
            self.ignored_lines += bool(line.strip())
            return None
        if not isinstance(event, dict):
            self.ignored_lines += 1
            return None
        kind = event.get("type")
        if kind == "error" and _NETWORK_WAIT.search(_message(event)):
            self.offline_since = self.offline_since or time.monotonic()
        else:
            self.offline_since = None
        if kind == "thread.started":
            self.thread_id = _str(event.get("thread_id")) or self.thread_id
        elif kind == "turn.completed":
            self.completed = True
            self.failure = None
            if isinstance(event.get("usage"), dict):
                self.usage = _parse_usage(event["usage"])
        elif kind == "turn.failed":
            self.completed = False
            self.failure = _message(event.get("error")) or "turn failed"
        elif kind == "error":
            self.notices.append(_message(event) or "error")
        elif kind in ("item.started", "item.updated", "item.completed"):
            item = event.get("item")
            if isinstance(item, dict):
                return self._item(item, done=kind == "item.completed")
        return None

    def _item(self, item: dict[str, Any], *, done: bool) -> Progress | None:
        item_type = item.get("type")
        item_id = _str(item.get("id")) or f"anon_{len(self.commands) + len(self.file_changes)}"
        if item_type == "agent_message" and done:
            self.final_message = _str(item.get("text"))
        elif item_type == "command_execution":
            known = item_id in self.commands
            output = _str(item.get("aggregated_output"))
            exit_code = item.get("exit_code")
            self.commands[item_id] = CommandRun(
                command=_str(item.get("command")),
                status=_str(item.get("status")) or ("completed" if done else "in_progress"),
                exit_code=exit_code if isinstance(exit_code, int) else None,
                output_tail=output[-MAX_OUTPUT_TAIL:],
            )
            if not known:
                return Progress("command", self.commands[item_id].command)
        elif item_type == "file_change":
            return self._file_change(item, done=done)
        elif item_type == "error":
            message = _message(item) or "error"
            if not message.startswith(_HARMLESS_NOTICES):
                self.notices.append(message)
        return None

    def _file_change(self, item: dict[str, Any], *, done: bool) -> Progress | None:
        status = _str(item.get("status"))
        changes = item.get("changes")
        if not isinstance(changes, list) or not (done or status == "completed"):
            return None
        if status == "failed":
            return None
        fresh = []
        for change in changes:
            if isinstance(change, dict) and _str(change.get("path")):
                path = self._relative(_str(change["path"]))
                if path not in self.file_changes:
                    fresh.append(path)
                self.file_changes[path] = FileChange(path, _str(change.get("kind")) or "update")
        return Progress("file_change", ", ".join(fresh)) if fresh else None

    def _relative(self, path: str) -> str:
        if self.root is None or not os.path.isabs(path):
            return path
        for root in (self.root, os.path.realpath(self.root)):
            inside = os.path.relpath(path, root)
            if inside != os.pardir and not inside.startswith(os.pardir + os.sep):
                return inside
        return path

    def offline_s(self) -> float:
        """How long Codex has been saying only "waiting for network" (0 when it is not).

        0.169.0 cannot reach the model then and retries with growing pauses (5 s, 10 s, 20 s,
        ...) for as long as it is left running; each notice would reset an idle timeout.
        """
        return 0.0 if self.offline_since is None else time.monotonic() - self.offline_since

    @property
    def failed_commands(self) -> list[CommandRun]:
        return [c for c in self.commands.values() if c.exit_code not in (0, None)]

    def reason(self, stderr_tail: str = "") -> str:
        """Why the run failed: last `turn.failed`, else last `error`, else the stderr tail."""
        if self.failure:
            return self.failure
        if self.notices:
            return self.notices[-1]
        lines = [line for line in stderr_tail.splitlines() if line.strip()]
        return lines[-1] if lines else "no error message"


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _message(holder: Any) -> str:
    if isinstance(holder, dict):
        return _str(holder.get("message"))
    return _str(holder)


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and value >= 0 else 0


def _parse_usage(raw: dict[str, Any]) -> CodexUsage:
    return CodexUsage(
        input_tokens=_int(raw.get("input_tokens")),
        cached_input_tokens=_int(raw.get("cached_input_tokens")),
        cache_write_input_tokens=_int(raw.get("cache_write_input_tokens")),
        output_tokens=_int(raw.get("output_tokens")),
        reasoning_output_tokens=_int(raw.get("reasoning_output_tokens")),
    )


# --- failures -> typed errors -------------------------------------------------------------

_AUTH = re.compile(
    r"401 Unauthorized|Missing bearer|invalid_api_key|Incorrect API key|not logged in"
    r"|Please (?:log|sign) in|refresh token|token (?:has )?expired|Missing environment variable",
    re.IGNORECASE,
)
_PLAN_LIMIT = re.compile(r"hit your usage limit|usage limit reached|out of credits", re.IGNORECASE)
_QUOTA = re.compile(r"Quota exceeded|insufficient_quota", re.IGNORECASE)
_RATE = re.compile(r"429 Too Many Requests|rate limit|rate_limit_exceeded", re.IGNORECASE)
_NETWORK_WAIT = re.compile(r"waiting for network", re.IGNORECASE)
_FORBIDDEN = re.compile(r"403 Forbidden", re.IGNORECASE)
_MODEL = re.compile(r"model_not_found|model .* does not exist|404 Not Found", re.IGNORECASE)
_DOWN = re.compile(
    r"waiting for network|error sending request|Connection (?:failed|refused)"
    r"|failed to lookup address|No running Ollama server|5\d\d (?:Internal|Bad|Service|Gateway)"
    # the connection dropped mid-stream (after Codex's own stream retries)
    r"|stream disconnected before completion",
    re.IGNORECASE,
)
_IN = re.compile(r"try again in\s+((?:\d+\s*(?:days?|hours?|minutes?|seconds?)[\s,]*(?:and\s+)?)+)")
_UNIT_S = {"day": 86400, "hour": 3600, "minute": 60, "second": 1}
_AT = re.compile(
    r"try again at\s+(?:(?P<month>[A-Z][a-z]{2,8})\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?,?\s+"
    r"(?P<year>\d{4})\s+)?(?P<hour>\d{1,2}):(?P<minute>\d{2})\s*(?P<ampm>[AP]M)?",
    re.IGNORECASE,
)


def plan_reset_s(message: str, now: datetime | None = None) -> float | None:
    """Seconds until a ChatGPT-plan limit resets, from "try again in 4 days 3 hours" or
    "try again at 3:51 PM" / "at Sep 29th, 2026 12:55 AM" (Codex prints local time)."""
    found = _IN.search(message)
    if found:
        total = 0
        for number, unit in re.findall(r"(\d+)\s*(day|hour|minute|second)", found.group(1)):
            total += int(number) * _UNIT_S[unit]
        return float(total) if total else None
    at = _AT.search(message)
    if not at:
        return None
    now = now or datetime.now().astimezone()
    hour, minute = int(at["hour"]), int(at["minute"])
    if at["ampm"]:
        hour = hour % 12 + (12 if at["ampm"].upper() == "PM" else 0)
    if hour > 23 or minute > 59:
        return None
    if at["year"]:
        try:
            month = datetime.strptime(at["month"][:3], "%b").month
            when = now.replace(
                year=int(at["year"]), month=month, day=int(at["day"]), hour=hour, minute=minute
            )
        except ValueError:
            return None
        when = when.replace(second=0, microsecond=0)
    else:
        when = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        # Codex prints the reset cut to the minute: within that minute it is due, not tomorrow
        if when + timedelta(minutes=1) <= now:
            when += timedelta(days=1)
        elif when <= now:
            when += timedelta(minutes=1)
    wait = (when - now).total_seconds()
    return wait if wait > 0 else None


def killed_error(provider: str, run: CodexRun, why: str) -> errors.ProviderError:
    """The error for a run we killed (`why`: a timeout or the network wait below).

    Killed while Codex waited for the network means the model was unreachable, not slow.
    """
    said = f" Last notice: {run.notices[-1][:200]}" if run.notices else ""
    if run.offline_since is not None:
        return errors.ProviderDown(provider, f"cannot reach the model: codex {why}; killed.{said}")
    return errors.ProviderTimeout(provider, f"codex {why}; killed.{said}")


#: how to fix a refused login with Codex's own provider (a custom one says its own)
AUTH_HINT = "Fix: run `codex login`, or set CODEX_API_KEY (offload-mcp keys set codex)."


def failure_error(
    provider: str,
    run: CodexRun,
    exit_code: int | None,
    stderr_tail: str = "",
    auth_hint: str = AUTH_HINT,
) -> errors.ProviderError:
    """The typed error for a run that did not complete (exit code, stream and stderr);
    `auth_hint` is the fix for a refused login (`CodexBackend.auth_hint`)."""
    reason = run.reason(stderr_tail)
    quoted = " ".join(reason.split())[:MAX_QUOTED_CHARS]
    said = f"codex exited {exit_code}: {quoted}" if exit_code is not None else quoted
    # Retry notices carry the underlying status, so look at every message, newest first.
    texts = [reason, *reversed(run.notices)]
    joined = "\n".join(texts)
    if _PLAN_LIMIT.search(joined):
        wait = next((w for w in map(plan_reset_s, texts) if w is not None), None)
        when = f" Resets in {wait / 3600:.1f} h." if wait is not None else ""
        return errors.RateLimited(
            provider, f"ChatGPT plan usage limit reached ({said}).{when}", retry_after_s=wait
        )
    if _QUOTA.search(joined):
        return errors.RateLimited(
            provider,
            f"API quota exceeded ({said}).",
            hint="Check the OpenAI plan and billing details.",
        )
    if _AUTH.search(joined):
        return errors.AuthFailed(
            provider,
            f"not authenticated ({said}).",
            hint=auth_hint,
        )
    if _RATE.search(joined):
        return errors.RateLimited(provider, f"rate limited ({said}).")
    if _FORBIDDEN.search(joined):
        return errors.NotAllowed(provider, f"refused the request ({said}).")
    if _MODEL.search(joined):
        return errors.ModelNotFound(provider, f"model not available ({said}).")
    if _DOWN.search(joined):
        return errors.ProviderDown(provider, f"cannot reach the model ({said}).")
    if exit_code == 2:
        return errors.ProviderError(
            provider,
            f"rejected its arguments ({said}).",
            hint="This codex version may not support a flag offload-mcp passes; check "
            "`codex --version`.",
        )
    return errors.ProviderError(provider, f"failed ({said}).")
