"""A loopback fake of an OpenAI-compatible chat-completions server, faithful to the wire.

Tests queue answers (`reply`, `fail`, `raw`, `hang`); each POST to /v1/chat/completions takes
the next one, or a default 200 "ok" when the queue is empty. Every request is recorded.
Stdlib only, so the real httpx client is what gets tested.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

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


@dataclass(frozen=True)
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes = b""


@dataclass(frozen=True)
class Answer:
    status: int
    text: str
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    """The documented OpenAI error shape for a status."""
    kind, code = _ERROR_TYPES.get(status, ("server_error" if status >= 500 else "error", None))
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return {"error": {"message": message or phrase, "type": kind, "param": None, "code": code}}


class FakeOpenAI:
    """Context manager (or `start()`/`stop()`) serving on 127.0.0.1 at a port the OS picks."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.url = ""
        self._queue: deque[Answer] = deque()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._models = Answer(
            200, json.dumps({"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
        )
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

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
        self._push(
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
        self._push(answer)

    def raw(self, status: int, text: str, content_type: str = "application/json") -> None:
        """Queue a body sent exactly as given (possibly malformed)."""
        self._push(Answer(status, text, content_type))

    def hang(self, seconds: float) -> None:
        """Queue an answer that arrives only after `seconds`: a 200 with content "late"."""
        self._push(
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

    def _push(self, answer: Answer) -> None:
        with self._lock:
            self._queue.append(answer)

    def _next(self, method: str, path: str) -> Answer:
        route = path.split("?", 1)[0].rstrip("/")
        if method == "GET" and route == MODELS_PATH:
            return self._models
        if method == "POST" and route == CHAT_PATH:
            with self._lock:
                if self._queue:
                    return self._queue.popleft()
            return Answer(200, json.dumps(self.completion("ok", "fake-model", None)))
        return Answer(404, json.dumps(error_body(404, f"Unknown request URL: {method} {path}")))

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> FakeOpenAI:
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        # a short poll interval keeps stop() (and so every test's teardown) fast
        self._thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # ends any hang early
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeOpenAI

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away (timeout tests) is expected, not a failure


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, the second waits ~40 ms for
    # an ACK, which made every fake call look slow.
    disable_nagle_algorithm = True
    wbufsize = 64 * 1024
    #: idle keep-alive connections give up after this, so no handler thread lingers for long
    timeout = 10

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        with fake._lock:
            fake.requests.append(Recorded(self.command, self.path, headers, body, raw))
        answer = fake._next(self.command, self.path)
        if answer.delay_s and fake._stopping.wait(answer.delay_s):
            self.close_connection = True
            return
        payload = answer.text.encode()
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


def closed_port_url() -> str:
    """A loopback URL where nothing listens, so connecting is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
