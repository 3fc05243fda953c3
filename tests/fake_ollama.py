"""A loopback fake of Ollama's REST API (/api/chat, /api/tags, /api/version, /api/ps).

Faithful to the wire as documented in reference/backends.md §4: non-streamed chat answers with
durations in ns, `{"error": ...}` bodies, 404 "model not found, try pulling it first" for a
model that is not pulled. Tests queue answers (`reply`, `fail`, `raw`, `hang`); every request is
recorded. Stdlib only, so the real `ollama` client and httpx are what gets tested.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

VERSION = "0.13.5"


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    body: Any


@dataclass(frozen=True)
class Answer:
    status: int
    text: str
    delay_s: float = 0.0


class FakeOllama:
    def __init__(self, models: tuple[str, ...] = ("qwen2.5:3b",)) -> None:
        self.models = list(models)
        self.requests: list[Recorded] = []
        self.url = ""
        self._queue: deque[Answer] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def reply(self, content: str = "ok", *, model: str | None = None, done: str = "stop") -> None:
        """Queue one 200 chat answer, as Ollama sends it with `stream: false`."""
        body = {
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
        self._push(Answer(200, json.dumps(body)))

    def fail(self, status: int, message: str) -> None:
        self._push(Answer(status, json.dumps({"error": message})))

    def raw(self, status: int, text: str) -> None:
        self._push(Answer(status, text))

    def hang(self, seconds: float) -> None:
        self._push(Answer(200, "{}", delay_s=seconds))

    def _push(self, answer: Answer) -> None:
        with self._lock:
            self._queue.append(answer)

    def _chat(self, body: Any) -> Answer:
        model = body.get("model") if isinstance(body, dict) else None
        if model not in self.models and f"{model}:latest" not in self.models:
            error = f'model "{model}" not found, try pulling it first'
            return Answer(404, json.dumps({"error": error}))
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        self.reply()
        with self._lock:
            return self._queue.popleft()

    def handle(self, method: str, path: str, body: Any) -> Answer:
        self.requests.append(Recorded(method, path, body))
        if method == "POST" and path == "/api/chat":
            return self._chat(body)
        if path == "/api/version":
            return Answer(200, json.dumps({"version": VERSION}))
        if path == "/api/tags":
            listed = [
                {"name": m, "model": m, "size": 1_900_000_000, "digest": "0" * 64, "details": {}}
                for m in self.models
            ]
            return Answer(200, json.dumps({"models": listed}))
        if path == "/api/ps":
            return Answer(200, json.dumps({"models": []}))
        if path == "/":
            return Answer(200, "Ollama is running")
        return Answer(404, "404 page not found")

    def start(self) -> FakeOllama:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeOllama:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeOllama

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up mid-answer (timeout tests) is expected


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        fake = self.server.fake
        answer = fake.handle(method, self.path, body)
        if answer.delay_s:
            fake._stopping.wait(answer.delay_s)
            time.sleep(0)
        data = answer.text.encode()
        self.send_response(answer.status)
        kind = "application/json" if answer.text.startswith(("{", "[")) else "text/plain"
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass
