"""A loopback fake of Ollama's REST API (/api/chat, /api/tags, /api/version, /api/ps).

Faithful to the wire as documented in reference/backends.md §4: non-streamed chat answers with
durations in ns, `{"error": ...}` bodies, 404 "model not found, try pulling it first" for a
model that is not pulled. Tests queue answers (`reply`, `fail`, `raw`, `hang`); every request is
recorded. Stdlib only, so the real `ollama` client and httpx are what gets tested.
"""

from __future__ import annotations

import json
from typing import Any

from tests.loopback import Answer, LoopbackFake, Recorded

VERSION = "0.13.5"


def _answer(status: int, text: str, delay_s: float = 0.0) -> Answer:
    """Ollama sends JSON bodies as JSON and its plain messages as text."""
    kind = "application/json" if text.startswith(("{", "[")) else "text/plain"
    return Answer(status, text, f"{kind}; charset=utf-8", delay_s=delay_s)


class FakeOllama(LoopbackFake):
    def __init__(self, models: tuple[str, ...] = ("qwen2.5:3b",)) -> None:
        super().__init__()
        self.models = list(models)

    def reply(self, content: str = "ok", *, model: str | None = None, done: str = "stop") -> None:
        """Queue one 200 chat answer, as Ollama sends it with `stream: false`."""
        self.push(_answer(200, json.dumps(self._chat_body(content, model, done))))

    def _chat_body(self, content: str, model: str | None, done: str) -> dict[str, Any]:
        return {
            "model": model or (self.models[0] if self.models else "m"),
            "created_at": "2026-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": content},
            "done": True,
            "done_reason": done,
            "total_duration": 1_200_000_000,
            "load_duration": 100_000_000,
            "prompt_eval_count": 42,
            "prompt_eval_duration": 300_000_000,
            "eval_count": 7,
            "eval_duration": 800_000_000,
        }

    def fail(self, status: int, message: str) -> None:
        self.push(_answer(status, json.dumps({"error": message})))

    def raw(self, status: int, text: str) -> None:
        self.push(_answer(status, text))

    def hang(self, seconds: float) -> None:
        self.push(_answer(200, "{}", delay_s=seconds))

    def _chat(self, body: Any) -> Answer:
        model = body.get("model") if isinstance(body, dict) else None
        if model not in self.models and f"{model}:latest" not in self.models:
            error = f'model "{model}" not found, try pulling it first'
            return _answer(404, json.dumps({"error": error}))
        return self.next_queued(
            lambda: _answer(200, json.dumps(self._chat_body("ok", None, "stop")))
        )

    def answer(self, request: Recorded) -> Answer:
        method, path = request.method, request.path
        if method == "POST" and path == "/api/chat":
            return self._chat(request.body)
        if path == "/api/version":
            return _answer(200, json.dumps({"version": VERSION}))
        if path == "/api/tags":
            listed = [
                {"name": m, "model": m, "size": 1_900_000_000, "digest": "0" * 64, "details": {}}
                for m in self.models
            ]
            return _answer(200, json.dumps({"models": listed}))
        if path == "/api/ps":
            return _answer(200, json.dumps({"models": []}))
        if path == "/":
            return _answer(200, "Ollama is running")
        return _answer(404, "404 page not found")
