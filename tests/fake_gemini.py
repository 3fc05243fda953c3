"""A loopback fake of the Generative Language API (`/v1beta/models/...`), faithful to the wire.

Serves `:generateContent` (what `google-genai` calls) and `:streamGenerateContent?alt=sse` (what
the Gemini CLI calls for its main turn) from one queue of answers; `GET /v1beta/models` answers
the health check. Tests queue `reply` (optionally grounded), `quota` (per-minute or per-day 429
in the documented `google.rpc` shape), `fail`, `raw` and `hang`. Stdlib only, so the real
clients are what gets tested.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from typing import Any

from tests.loopback import Answer, LoopbackFake, Recorded

_STATUS = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
RPC = "type.googleapis.com/google.rpc."


@dataclass(frozen=True)
class Web:
    """One grounding chunk: a redirect URI and a title (usually the domain)."""

    uri: str
    title: str


def error_body(status: int, message: str, details: list[dict[str, Any]] | None = None) -> Any:
    error: dict[str, Any] = {"code": status, "message": message, "status": _STATUS.get(status)}
    if details:
        error["details"] = details
    return {"error": error}


def quota_body(per: str, retry: str | None = "47s") -> Any:
    """A free-tier 429 as the API sends it; `per` is "minute", "day" or "tokens"."""
    quota_id = {
        "minute": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
        "day": "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
        "tokens": "GenerateContentInputTokensPerModelPerMinute-FreeTier",
    }[per]
    metric = "generate_content_free_tier_requests"
    details: list[dict[str, Any]] = [
        {
            "@type": RPC + "QuotaFailure",
            "violations": [
                {
                    "quotaMetric": f"generativelanguage.googleapis.com/{metric}",
                    "quotaId": quota_id,
                    "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"},
                    "quotaValue": "10" if per == "minute" else "250",
                }
            ],
        },
        {
            "@type": RPC + "Help",
            "links": [
                {
                    "description": "Learn more",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                }
            ],
        },
    ]
    message = "You exceeded your current quota, please check your plan and billing details."
    if retry is not None:
        details.append({"@type": RPC + "RetryInfo", "retryDelay": retry})
        message += f" Please retry in {retry}."
    return error_body(429, message, details)


def response_body(
    text: str,
    *,
    model: str = "gemini-2.5-flash",
    sources: list[Web] | None = None,
    supports: list[tuple[str, list[int]]] | None = None,
    queries: list[str] | None = None,
    usage: dict[str, int] | None = None,
    finish: str = "STOP",
) -> dict[str, Any]:
    """A GenerateContentResponse; `supports` are (cited segment text, chunk indices)."""
    candidate: dict[str, Any] = {
        "content": {"role": "model", "parts": [{"text": text}] if text else []},
        "finishReason": finish,
        "index": 0,
    }
    if sources is not None:
        grounding: dict[str, Any] = {
            "webSearchQueries": list(queries or []),
            "searchEntryPoint": {"renderedContent": "<div>chips</div>"},
            "groundingChunks": [{"web": {"uri": s.uri, "title": s.title}} for s in sources],
            "groundingSupports": [],
        }
        raw = text.encode()
        for segment, indices in supports or []:
            start = raw.find(segment.encode())
            assert start >= 0, f"segment {segment!r} is not in the text"
            grounding["groundingSupports"].append(
                {
                    "segment": {
                        "startIndex": start,
                        "endIndex": start + len(segment.encode()),
                        "text": segment,
                    },
                    "groundingChunkIndices": indices,
                    "confidenceScores": [0.9] * len(indices),
                }
            )
        candidate["groundingMetadata"] = grounding
    counts = {"promptTokenCount": 12, "candidatesTokenCount": max(1, len(text.split()))}
    counts.update(usage or {})
    counts.setdefault(
        "totalTokenCount",
        sum(v for k, v in counts.items() if k != "cachedContentTokenCount"),
    )
    return {
        "candidates": [candidate],
        "usageMetadata": counts,
        "modelVersion": model,
        "responseId": "fake-response",
    }


class FakeGemini(LoopbackFake):
    """Serves the Generative Language API; `url` has no version path.

    For concurrent callers (batch research) answers can also be queued per `route`: a request
    whose prompt contains the route's text takes the next answer queued for it. `model_delay_s`
    makes every model call take that long, and `max_in_flight` records how many overlapped.
    """

    def __init__(self) -> None:
        super().__init__()
        self.routes: dict[str, deque[Answer]] = {}
        self.model_delay_s = 0.0
        self.in_flight = 0
        self.max_in_flight = 0

    def route(self, match: str, *answers: Answer) -> None:
        with self._lock:
            self.routes.setdefault(match, deque()).extend(answers)

    def _routed(self, request: Recorded) -> Answer | None:
        contents = (request.body or {}).get("contents") or []
        prompt = "".join(p.get("text", "") for c in contents for p in c.get("parts") or [])
        with self._lock:
            for match, queue in self.routes.items():
                if match in prompt and queue:
                    return queue.popleft()
        return None

    def _model_call(self, request: Recorded) -> Answer:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.model_delay_s:
                self._stopping.wait(self.model_delay_s)
            routed = self._routed(request)
            if routed is not None:
                return routed
            return self.next_queued(lambda: Answer(200, json.dumps(response_body("ok"))))
        finally:
            with self._lock:
                self.in_flight -= 1

    # -- queueing answers -------------------------------------------------------------------

    def reply(self, text: str = "ok", **fields: Any) -> None:
        """Queue one 200 answer; keyword arguments as for `response_body`."""
        self._queue_json(200, response_body(text, **fields))

    @staticmethod
    def answer_for(text: str = "ok", **fields: Any) -> Answer:
        """A 200 answer to queue on a route; keyword arguments as for `response_body`."""
        return Answer(200, json.dumps(response_body(text, **fields)))

    def quota(self, per: str = "minute", retry: str | None = "47s") -> None:
        self._queue_json(429, quota_body(per, retry))

    def fail(self, status: int, message: str = "error", details: list[Any] | None = None) -> None:
        self._queue_json(status, error_body(status, message, details))

    def raw(self, status: int, text: str, content_type: str = "application/json") -> None:
        self.push(Answer(status, text, content_type))

    def hang(self, seconds: float) -> None:
        self.push(Answer(200, json.dumps(response_body("late")), delay_s=seconds))

    def _queue_json(self, status: int, body: Any) -> None:
        self.push(Answer(status, json.dumps(body)))

    @property
    def calls(self) -> list[Recorded]:
        """The POSTs to a model (not health checks)."""
        return [r for r in self.requests if r.method == "POST"]

    def answer(self, request: Recorded) -> Answer:
        method, path = request.method, request.path
        route = path.split("?", 1)[0]
        if method == "GET" and route.rstrip("/").endswith("/models"):
            return Answer(200, json.dumps({"models": [{"name": "models/gemini-2.5-flash"}]}))
        if method == "POST" and ":" in route and "/models/" in route:
            return self._model_call(request)
        body = error_body(404, f"Unknown request URL: {method} {path}")
        return Answer(404, json.dumps(body))

    def frame(self, request: Recorded, answer: Answer) -> tuple[bytes, str]:
        payload = answer.text.encode()
        if "alt=sse" in request.path and answer.status == 200:
            # The CLI's main turn: the same response as one SSE frame (documented framing).
            return b"data: " + payload + b"\r\n\r\n", "text/event-stream"
        return payload, answer.content_type
