"""A loopback fake of the OpenAI Responses API as the Codex CLI (0.169.0) speaks it.

Wire: reference/backends.md §1.8. Codex POSTs `{base}/responses` with `stream: true` and reads
SSE frames `event: <type>\\ndata: <json>\\n\\n`: `response.created`, one
`response.output_item.done` per item, `response.completed` with the usage. A `function_call`
item makes Codex run the tool and POST again with the history plus a `function_call_output`.

Tests queue one answer per request: `message`, `exec_command` (a tool call; the answer after it
serves the follow-up), `fail` (401, 429 quota, 429 rate limit with `retry-after`), `hang` (no
byte at all), `drop` (a stream cut mid-way, the connection closed). An empty queue answers a 400
naming the problem, so a test that did not expect a request sees it fail. Every request is
recorded with the bearer token redacted; `expect_key` makes a wrong key a 401 without the fake
keeping the key. Stdlib only: the real CLI is what gets tested.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tests.loopback import Answer, LoopbackFake, Recorded

__all__ = [
    "CodexAtFake",
    "FakeResponses",
    "Recorded",
    "add_file",
    "error_body",
    "sse",
    "wired_codex",
]

RESPONSES_PATH = "/v1/responses"
REDACTED = "Bearer [redacted]"


def error_body(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    """The OpenAI error shape."""
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def sse(events: list[tuple[str, dict[str, Any]]]) -> str:
    """SSE frames as the Responses API sends them (the event type also inside the data)."""
    return "".join(
        f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n" for kind, data in events
    )


def usage(
    input_tokens: int = 120, cached: int = 100, output_tokens: int = 7, reasoning: int = 3
) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input_tokens + output_tokens,
    }


class FakeResponses(LoopbackFake):
    """Serves `POST /v1/responses`; `url` ends in `/v1` (the provider's `base_url`)."""

    url_suffix = "/v1"

    def __init__(self, expect_key: str | None = None) -> None:
        super().__init__()
        self.expect_key = expect_key
        self._ids = itertools.count(1)

    # -- queueing answers -------------------------------------------------------------------

    def message(
        self, text: str, *, reasoning: str | None = None, tokens: dict[str, Any] | None = None
    ) -> None:
        """One turn that ends with an assistant message (after a reasoning item if given)."""
        items = []
        if reasoning is not None:
            items.append(self.reasoning_item(reasoning))
        items.append(self.message_item(text))
        self.push(Answer(200, self.stream(items, tokens), "text/event-stream"))

    def exec_command(self, cmd: str, *, call_id: str | None = None) -> str:
        """One turn that asks Codex to run `cmd` (its `exec_command` tool); returns the call id.

        Codex answers with a second request ending in the `function_call_output`; queue what
        the fake says to that next.
        """
        call_id = call_id or f"call_{next(self._ids)}"
        item = {
            "type": "function_call",
            "id": f"fc_{next(self._ids)}",
            "call_id": call_id,
            "name": "exec_command",
            "arguments": json.dumps({"cmd": cmd}),
        }
        self.push(Answer(200, self.stream([item], None), "text/event-stream"))
        return call_id

    def apply_patch(self, patch: str) -> str:
        """One turn that edits files the way 0.169.0 lets a model do it; returns the call id.

        With a model the binary has no metadata for, Codex offers no `apply_patch` tool (a
        `custom_tool_call` for it is answered "unsupported"); it intercepts `apply_patch` run
        through `exec_command` instead: a `file_change` item in workspace-write, a refusal
        ("patch rejected: writing is blocked by read-only sandbox") and no item in read-only.
        `patch` is the `*** Begin Patch` ... `*** End Patch` text (see `add_file`).
        """
        return self.exec_command(f"apply_patch <<'PATCH'\n{patch}\nPATCH\n")

    def fail(
        self,
        status: int,
        body: dict[str, Any],
        *,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """`times` identical error answers (Codex retries some statuses)."""
        for _ in range(times):
            self.push(Answer(status, json.dumps(body), "application/json", dict(headers or {})))

    def unauthorized(self, times: int = 1) -> None:
        body = error_body(
            "Missing bearer or basic authentication in header", "invalid_request_error"
        )
        self.fail(401, body, times=times)

    def quota(self) -> None:
        message = "You exceeded your current quota, please check your plan and billing details."
        self.fail(429, error_body(message, "insufficient_quota", "insufficient_quota"))

    def rate_limited(self, retry_after_s: int = 1, times: int = 1) -> None:
        message = "Rate limit reached for requests per min. Please try again in 1s."
        body = error_body(message, "requests", "rate_limit_exceeded")
        self.fail(429, body, headers={"retry-after": str(retry_after_s)}, times=times)

    def usage_limit(self, resets_at: int, plan_type: str = "plus") -> None:
        """The ChatGPT-plan 429: Codex prints "You've hit your usage limit... try again at
        <local time>" (minute precision) and does not retry."""
        body = {
            "error": {
                "type": "usage_limit_reached",
                "message": "The usage limit has been reached",
                "plan_type": plan_type,
                "resets_at": resets_at,
            }
        }
        self.fail(429, body)

    def hang(self, seconds: float) -> None:
        """No byte (not even headers) for `seconds`, then a message; stop() ends it early."""
        body = self.stream([self.message_item("late")], None)
        self.push(Answer(200, body, "text/event-stream", delay_s=seconds))

    def drop(self, times: int = 1) -> None:
        """A stream that starts (`response.created`, half a frame), then the connection closes."""
        full = self.stream([self.message_item("never finished")], None)
        cut = full.index("event: response.output_item.done") + 20
        for _ in range(times):
            self.push(Answer(200, full, "text/event-stream", cut_after=cut))

    # -- building streams -------------------------------------------------------------------

    def stream(self, items: list[dict[str, Any]], tokens: dict[str, Any] | None) -> str:
        response_id = f"resp_{next(self._ids)}"
        events: list[tuple[str, dict[str, Any]]] = [
            ("response.created", {"response": {"id": response_id}})
        ]
        events += [("response.output_item.done", {"item": item}) for item in items]
        done = {"id": response_id, "usage": tokens or usage()}
        events.append(("response.completed", {"response": done}))
        return sse(events)

    def message_item(self, text: str) -> dict[str, Any]:
        return {
            "type": "message",
            "role": "assistant",
            "id": f"msg_{next(self._ids)}",
            "content": [{"type": "output_text", "text": text}],
        }

    def reasoning_item(self, text: str) -> dict[str, Any]:
        return {
            "type": "reasoning",
            "id": f"rs_{next(self._ids)}",
            "summary": [{"type": "summary_text", "text": text}],
            "content": None,
            "encrypted_content": None,
        }

    # -- serving ----------------------------------------------------------------------------

    def answer(self, request: Recorded) -> Answer:
        given = request.headers.get("authorization")
        self._redact(request)
        if request.method != "POST" or request.path.split("?", 1)[0] != RESPONSES_PATH:
            message = f"Unknown request URL: {request.method} {request.path}"
            return Answer(404, json.dumps(error_body(message, "invalid_request_error")))
        if self.expect_key is not None and given != f"Bearer {self.expect_key}":
            message = "Incorrect API key provided."
            body = error_body(message, "invalid_request_error", "invalid_api_key")
            return Answer(401, json.dumps(body))
        return self.next_queued(self._nothing_queued)

    def _redact(self, request: Recorded) -> None:
        if "authorization" not in request.headers:
            return
        headers = {**request.headers, "authorization": REDACTED}
        with self._lock:
            for i, seen in enumerate(self.requests):
                if seen is request:
                    self.requests[i] = replace(request, headers=headers)

    @staticmethod
    def _nothing_queued() -> Answer:
        body = error_body("fake_responses: no answer queued for this request", "invalid_request")
        return Answer(400, json.dumps(body))

    # -- reading back -----------------------------------------------------------------------

    def bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies of the POSTs to /responses, in order."""
        return [
            r.body
            for r in self.requests
            if r.path.startswith(RESPONSES_PATH) and isinstance(r.body, dict)
        ]

    def tool_output(self, call_id: str) -> str | None:
        """What Codex sent back for a tool call (`function_call_output.output`), if it did."""
        for body in self.bodies():
            for item in body.get("input") or []:
                if item.get("type") == "function_call_output" and item.get("call_id") == call_id:
                    output = item.get("output")
                    return output if isinstance(output, str) else json.dumps(output)
        return None


def add_file(path: str, text: str) -> str:
    """An apply_patch that creates `path` with `text` (lines prefixed with `+`)."""
    lines = "".join(f"+{line}\n" for line in text.splitlines())
    return f"*** Begin Patch\n*** Add File: {path}\n{lines}*** End Patch"


def provider_overrides(
    base_url: str,
    *,
    retries: int = 0,
    stream_idle_timeout_ms: int = 60_000,
    env_key: str | None = "FAKE_KEY",
) -> dict[str, Any]:
    """`-c` overrides (CodexBackend's `extra_body.config`) that point Codex at the fake only.

    A custom provider never tries the WebSocket transport (reference §1.7), and low retry
    counts keep the failure tests fast (defaults: 4 request retries, 5 stream retries).
    """
    overrides: dict[str, Any] = {
        "model_provider": "fake",
        "model_providers.fake.name": "Fake",
        "model_providers.fake.base_url": base_url,
        "model_providers.fake.wire_api": "responses",
        "model_providers.fake.request_max_retries": retries,
        "model_providers.fake.stream_max_retries": retries,
        "model_providers.fake.stream_idle_timeout_ms": stream_idle_timeout_ms,
    }
    if env_key is not None:
        overrides["model_providers.fake.env_key"] = env_key
    return overrides


#: the key the wired Codex sends (through `env_key`) and the fake expects
CODEX_KEY = "sk-fake-codex-1234567890"
#: a model id the binary has no metadata for: Codex then offers the classic tools
#: (`exec_command`...); without `-m` 0.169.0 picks a model that gets a JavaScript "code mode"
CODEX_MODEL = "fake-model"


@dataclass
class CodexAtFake:
    """The real Codex CLI wired to a `FakeResponses`, with a throwaway CODEX_HOME and HOME.

    `provider_fields()` is the `[providers.codex]` table (command, model, env, extra_body) for
    CodexBackend, the dispatcher or delegate_to_codex, in any sandbox; `provider()` the same as
    a ProviderConfig; `argv()` a direct `codex exec` command line (e.g. for a bench).
    """

    fake: FakeResponses
    binary: Path
    #: CODEX_HOME: sessions (for `exec resume`), logs; config.toml here is ignored by default
    codex_home: Path
    #: HOME for the child, so nothing reaches the user's real ~/.codex or profile
    user_home: Path
    key: str = CODEX_KEY
    model: str = CODEX_MODEL

    def env(self) -> dict[str, str]:
        return {
            "CODEX_HOME": str(self.codex_home),
            "HOME": str(self.user_home),
            "FAKE_KEY": self.key,
        }

    def overrides(self, retries: int = 0) -> dict[str, Any]:
        return provider_overrides(self.fake.url, retries=retries)

    def provider_fields(
        self, *, retries: int = 0, idle_timeout_s: float = 20.0, **extra_body: Any
    ) -> dict[str, Any]:
        return {
            "command": str(self.binary),
            "model": self.model,
            "env": self.env(),
            "extra_body": {
                "config": self.overrides(retries),
                "idle_timeout_s": idle_timeout_s,
                **extra_body,
            },
        }

    def provider(self, **fields: Any) -> Any:
        """The codex preset with `provider_fields(**fields)`: a `ProviderConfig`."""
        from offload_mcp.config import ProviderConfig, build_settings

        base = build_settings({}).providers["codex"].model_dump()
        return ProviderConfig.model_validate({**base, **self.provider_fields(**fields)})

    def argv(
        self, workdir: Path, *, sandbox: str = "read-only", ephemeral: bool = True
    ) -> list[str]:
        """`codex exec` reading its prompt from stdin; run it with `env()` added."""
        from offload_mcp.backends.codex import toml_value

        argv = [str(self.binary), "exec", "--json", "--skip-git-repo-check"]
        argv += ["--ephemeral"] if ephemeral else []
        argv += ["-s", sandbox, "-C", str(workdir), "--ignore-user-config", "-c", "mcp_servers={}"]
        for dotted, value in self.overrides().items():
            argv += ["-c", f"{dotted}={toml_value(value)}"]
        return [*argv, "-m", self.model, "-"]


@contextmanager
def wired_codex(root: Path, binary: Path, *, key: str = CODEX_KEY) -> Iterator[CodexAtFake]:
    """A running fake (that accepts only `key`) and the Codex set-up pointing at it."""
    codex_home, user_home = root / "codex-home", root / "codex-user-home"
    codex_home.mkdir(parents=True, exist_ok=True)
    user_home.mkdir(parents=True, exist_ok=True)
    with FakeResponses(expect_key=key) as fake:
        yield CodexAtFake(fake, binary, codex_home, user_home, key)
