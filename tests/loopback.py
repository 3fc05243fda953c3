"""What every loopback fake provider shares: a stdlib HTTP server on 127.0.0.1 in a thread.

A fake subclasses `LoopbackFake` and says how to `answer` one recorded request; queueing,
recording, delays (`hang`), start/stop and the HTTP plumbing live here once. Stdlib only, so the
real clients (httpx, ollama, google-genai, the CLIs) are what the tests exercise.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


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
    #: send only this many body bytes (after the full Content-Length) and drop the connection
    cut_after: int | None = None


class LoopbackFake:
    """Context manager (or `start()`/`stop()`) serving on a port the OS picks."""

    #: appended to `http://127.0.0.1:PORT` to make `url`
    url_suffix = ""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.url = ""
        self._queue: deque[Answer] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def answer(self, request: Recorded) -> Answer:
        """How the fake answers one request (already recorded)."""
        raise NotImplementedError

    def frame(self, request: Recorded, answer: Answer) -> tuple[bytes, str]:
        """The body bytes and content type on the wire (SSE fakes override this)."""
        return answer.text.encode(), answer.content_type

    def push(self, answer: Answer) -> None:
        with self._lock:
            self._queue.append(answer)

    def next_queued(self, default: Callable[[], Answer]) -> Answer:
        """The next queued answer, or `default()` when the tests queued none."""
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        return default()

    def start(self) -> Self:
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}{self.url_suffix}"
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

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: LoopbackFake

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
        request = Recorded(self.command, self.path, headers, body, raw)
        with fake._lock:
            fake.requests.append(request)
        answer = fake.answer(request)
        if answer.delay_s and fake._stopping.wait(answer.delay_s):
            self.close_connection = True
            return
        payload, content_type = fake.frame(request, answer)
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if answer.cut_after is not None:
                self.wfile.write(payload[: answer.cut_after])
                self.close_connection = True
                return
            self.wfile.write(payload)
        except OSError:
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass
