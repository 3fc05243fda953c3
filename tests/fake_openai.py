"""A loopback fake of an OpenAI-compatible chat-completions server, faithful to the wire.

Tests queue answers (`reply`, `fail`, `raw`, `hang`); each POST to /v1/chat/completions takes
the next one, or a default 200 "ok" when the queue is empty. Every request is recorded.
Stdlib only, so the real httpx client is what gets tested.
"""

from __future__ import annotations

import itertools
import json
import socket
import time
from http import HTTPStatus
from typing import Any

from tests.loopback import Answer, LoopbackFake, Recorded

__all__ = ["Answer", "FakeOpenAI", "Recorded", "closed_port_url", "error_body"]

CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"

_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    402: ("insufficient_quota", "insufficient_quota"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    """The documented OpenAI error shape for a status."""
    kind, code = _ERROR_TYPES.get(status, ("server_error" if status >= 500 else "error", None))
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return {"error": {"message": message or phrase, "type": kind, "param": None, "code": code}}


class FakeOpenAI(LoopbackFake):
    """Serves `/v1/chat/completions` and `/v1/models`; `url` ends in `/v1`."""

    url_suffix = "/v1"

    def __init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(1)
        self._models = Answer(
            200, json.dumps({"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
        )

    # -- queueing answers -------------------------------------------------------------------

    def reply(
        self,
        content: str = "ok",
        *,
        model: str = "fake-model",
        usage: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        delay_s: float = 0,
    ) -> None:
        """Queue one 200 chat.completion; `usage` fields override the computed defaults."""
        self.push(
            Answer(
                200,
                json.dumps(self.completion(content, model, usage)),
                "application/json",
                dict(headers or {}),
                delay_s,
            )
        )

    def fail(
        self,
        status: int,
        body: object | str | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Queue one error: OpenAI error shape if `body` is None, JSON if an object, else raw."""
        if body is None:
            body = error_body(status)
        if isinstance(body, str):
            answer = Answer(status, body, "text/plain; charset=utf-8", dict(headers or {}))
        else:
            answer = Answer(status, json.dumps(body), "application/json", dict(headers or {}))
        self.push(answer)

    def raw(self, status: int, text: str, content_type: str = "application/json") -> None:
        """Queue a body sent exactly as given (possibly malformed)."""
        self.push(Answer(status, text, content_type))

    def hang(self, seconds: float) -> None:
        """Queue an answer that arrives only after `seconds`: a 200 with content "late"."""
        self.push(
            Answer(200, json.dumps(self.completion("late", "fake-model", None)), delay_s=seconds)
        )

    def models(self, status: int = 200, body: object | str | None = None) -> None:
        """Set what GET /v1/models answers from now on (it is not taken from the queue)."""
        if body is None:
            body = (
                {"object": "list", "data": [{"id": "fake-model", "object": "model"}]}
                if status == 200
                else error_body(status)
            )
        text = body if isinstance(body, str) else json.dumps(body)
        self._models = Answer(status, text)

    def completion(self, content: str, model: str, usage: dict[str, Any] | None) -> dict[str, Any]:
        """A chat.completion body in the documented shape."""
        counts: dict[str, Any] = {
            "prompt_tokens": 10,
            "completion_tokens": max(1, len(content.split())),
            "prompt_tokens_details": {"cached_tokens": 0},
        }
        counts.update(usage or {})
        counts.setdefault(
            "total_tokens", int(counts["prompt_tokens"]) + int(counts["completion_tokens"])
        )
        return {
            "id": f"chatcmpl-fake-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": counts,
        }

    def answer(self, request: Recorded) -> Answer:
        method, path = request.method, request.path
        route = path.split("?", 1)[0].rstrip("/")
        if method == "GET" and route == MODELS_PATH:
            return self._models
        if method == "POST" and route == CHAT_PATH:
            return self.next_queued(
                lambda: Answer(200, json.dumps(self.completion("ok", "fake-model", None)))
            )
        return Answer(404, json.dumps(error_body(404, f"Unknown request URL: {method} {path}")))


def closed_port_url() -> str:
    """A loopback URL where nothing listens, so connecting is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
