"""The Gemini API through `google-genai` (imported on first use), optionally grounded.

With `grounding = true` the request carries the `google_search` tool and the answer comes
back with its grounding metadata turned into numbered sources, the searches made and the cited
passages (`Grounding`, carried beside the text through dispatch and the cache).

The SDK talks through its own HTTP stack (httpx2); we hand it a plain `httpx.AsyncClient` so
there is one stack, and so tests can point it at a loopback fake by base URL. Free-tier quota
errors say which window ran out: a per-minute 429 cools the provider for its `RetryInfo`
delay, a per-day one until the day resets (midnight Pacific).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from offload_mcp import errors
from offload_mcp.backends.base import Health
from offload_mcp.config import ProviderConfig
from offload_mcp.packets import Completion, CompletionRequest, Grounding, Source, Usage
from offload_mcp.ratelimits import parse_duration_s, wait_in_message
from offload_mcp.windows import window_reset

if TYPE_CHECKING:
    import httpx
    from google import genai
    from google.genai import types

INSTALL_HINT = 'Install the Gemini SDK: pip install "google-genai>=3.4".'
KEY_HINT = "Fix: offload-mcp keys set gemini (or set GEMINI_API_KEY); keys: aistudio.google.com."
_VERSION = re.compile(r"v\d+(?:alpha|beta)?\d*")
MAX_QUOTED_CHARS = 300


def split_base_url(url: str) -> tuple[str, str]:
    """`https://host/v1beta` -> (`https://host`, `v1beta`); no version segment means v1beta."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    head, _, last = path.rpartition("/")
    if _VERSION.fullmatch(last):
        return urlunsplit(parts._replace(path=head)), last
    return url.rstrip("/"), "v1beta"


class GeminiBackend:
    def __init__(self, provider: ProviderConfig, key: str | None) -> None:
        self.provider = provider
        self._key = key
        self._client: genai.Client | None = None
        self._http: httpx.AsyncClient | None = None

    def _genai(self) -> genai.Client:
        if self._client is None:
            try:
                import httpx
                from google import genai
                from google.genai import types
            except ImportError:
                raise errors.ProviderDown(
                    self.provider.name, "the google-genai package is missing.", hint=INSTALL_HINT
                ) from None
            base_url, version = split_base_url(self.provider.base_url)
            self._http = httpx.AsyncClient(timeout=httpx.Timeout(120.0, connect=10.0))
            self._client = genai.Client(
                api_key=self._key or "",
                http_options=types.HttpOptions(
                    base_url=base_url,
                    api_version=version,
                    headers=dict(self.provider.headers) or None,
                    httpx_async_client=self._http,
                ),
            )
        return self._client

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        self._http = None
        self._client = None

    def config(self, request: CompletionRequest) -> types.GenerateContentConfig:
        """The request's generation config (also what tests check)."""
        from google.genai import types

        p = self.provider
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        fields: dict[str, Any] = {
            "max_output_tokens": request.max_output_tokens,
            "system_instruction": system or None,
            "http_options": types.HttpOptions(timeout=int(request.timeout_s * 1000)),
        }
        if p.temperature is not None:
            fields["temperature"] = p.temperature
        if p.grounding:
            # Gemini 2.5 cannot combine search with a response schema: the packet's output
            # rules ask for the JSON in the prompt instead, and dispatch checks it.
            fields["tools"] = [types.Tool(google_search=types.GoogleSearch())]
        elif request.json_schema is not None:
            fields["response_mime_type"] = "application/json"
            fields["response_json_schema"] = request.json_schema
            fields.setdefault("temperature", 0)
        fields.update(p.extra_body)
        return types.GenerateContentConfig(**fields)

    @staticmethod
    def contents(request: CompletionRequest) -> list[types.Content]:
        from google.genai import types

        return [
            types.Content(
                role="model" if m.role == "assistant" else "user",
                parts=[types.Part(text=m.content)],
            )
            for m in request.messages
            if m.role != "system"
        ]

    async def complete(self, request: CompletionRequest) -> Completion:
        import anyio
        import httpx
        from google.genai import errors as genai_errors
        from pydantic import ValidationError

        name = self.provider.name
        client = self._genai()
        try:
            with anyio.fail_after(request.timeout_s):
                response = await client.aio.models.generate_content(
                    model=self.provider.model,
                    contents=self.contents(request),
                    config=self.config(request),
                )
        except (TimeoutError, httpx.TimeoutException):
            raise errors.ProviderTimeout(
                name, f"no answer within {request.timeout_s:g} s."
            ) from None
        except genai_errors.APIError as exc:
            raise self.error_for(exc.code, exc.details, exc.message or "") from None
        except httpx.TransportError as exc:
            raise errors.ProviderDown(
                name,
                f"cannot connect to {self.provider.base_url} ({type(exc).__name__}).",
                hint="Check the network and the provider's status page.",
            ) from None
        except (ValueError, TypeError, KeyError, AttributeError, ValidationError):
            raise errors.BadResponse(
                name, "answered with a body that is not Gemini's JSON."
            ) from None
        return self._completion(
            response, grounded=self.provider.grounding and not request.json_schema
        )

    def _completion(self, response: types.GenerateContentResponse, *, grounded: bool) -> Completion:
        name = self.provider.name
        candidate = response.candidates[0] if response.candidates else None
        parts = candidate.content.parts if candidate and candidate.content else None
        text = "".join(part.text for part in parts or () if part.text and not part.thought)
        if not text.strip():
            feedback = response.prompt_feedback
            reason = (
                candidate.finish_reason
                if candidate
                else (feedback.block_reason if feedback else None)
            )
            raise errors.BadResponse(name, f"returned an empty answer (finish reason {reason}).")
        grounding = _grounding(candidate) if grounded and candidate else None
        return Completion(
            text=text,
            usage=_usage(response.usage_metadata),
            model=response.model_version or self.provider.model,
            grounding=grounding,
        )

    def error_for(self, status: int, body: Any, message: str) -> errors.ProviderError:
        """A typed error from an API error body (`{"error": {code, message, status, details}}`)."""
        p = self.provider
        error = body.get("error", body) if isinstance(body, dict) else {}
        error = error if isinstance(error, dict) else {}
        details = [d for d in error.get("details") or () if isinstance(d, dict)]
        said = f"HTTP {status} {error.get('status') or ''}".rstrip() + f": {self._scrub(message)}"
        reasons = {str(d.get("reason")) for d in details if d.get("reason")}
        if status == 401 or "API_KEY_INVALID" in reasons:
            return errors.AuthFailed(p.name, f"the key was refused ({said}).", hint=KEY_HINT)
        if status == 403:
            return errors.NotAllowed(
                p.name, f"refused the request ({said}).", hint="Check the key's project and API."
            )
        if status == 404:
            return errors.ModelNotFound(
                p.name, f"model {p.model!r} not found ({said}).", hint="Check the model name."
            )
        if status == 429:
            return self._rate_limited(said, message, details)
        if status >= 500:
            return errors.ProviderDown(p.name, f"server error ({said}).", hint="Try again later.")
        return errors.ProviderError(p.name, f"rejected the request ({said}).")

    def _rate_limited(
        self, said: str, message: str, details: list[dict[str, Any]]
    ) -> errors.RateLimited:
        quota_ids = [
            str(v.get("quotaId", ""))
            for d in details
            for v in d.get("violations") or ()
            if isinstance(v, dict)
        ]
        if any("PerDay" in q or "Daily" in q for q in quota_ids):
            now = datetime.now(UTC)
            reset = window_reset("day", now, self.provider.reset_tz)
            until = (reset - now).total_seconds() if reset else 86_400.0
            return errors.RateLimited(
                self.provider.name,
                f"daily free-tier quota used up ({said}).",
                retry_after_s=until,
                hint=f"It resets at midnight {self.provider.reset_tz}.",
            )
        wait: float | None = None
        for detail in details:
            delay = detail.get("retryDelay")
            if isinstance(delay, str):
                wait = parse_duration_s(delay)
        if wait is None:
            wait = wait_in_message(message)
        window = "per-minute " if quota_ids else ""
        when = f" Retry after {wait:.0f} s." if wait is not None else ""
        return errors.RateLimited(
            self.provider.name, f"{window}rate limit hit ({said}).{when}", retry_after_s=wait
        )

    def _scrub(self, message: str) -> str:
        text = " ".join(message.split())
        if self._key:
            text = text.replace(self._key, "[key]")
        return text[:MAX_QUOTED_CHARS] + ("…" if len(text) > MAX_QUOTED_CHARS else "")

    async def health(self) -> Health:
        from google.genai import errors as genai_errors

        try:
            client = self._genai()
            pager = await client.aio.models.list(config={"page_size": 1})
            listed = len(pager.page)
        except genai_errors.APIError as exc:
            if exc.code in (400, 401, 403):
                return Health(False, f"key refused (HTTP {exc.code})")
            return Health(False, f"HTTP {exc.code}")
        except errors.ProviderError as exc:
            return Health(False, exc.message)
        except Exception as exc:  # any transport failure: report, never raise from status
            return Health(False, f"unreachable ({type(exc).__name__})")
        search = ", Google Search grounding" if self.provider.grounding else ""
        return Health(True, f"key accepted ({listed} model listed){search}")


def _grounding(candidate: types.Candidate) -> Grounding | None:
    """Sources numbered in the order the answer first cites them, then the uncited ones."""
    meta = candidate.grounding_metadata
    if meta is None:
        return None
    chunks = [c.web for c in meta.grounding_chunks or ()]
    order: list[int] = []  # chunk indices, first cited first
    cited: list[tuple[int, str, list[int]]] = []
    for support in meta.grounding_supports or ():
        segment = support.segment
        if segment is None or not segment.text:
            continue
        indices = [i for i in support.grounding_chunk_indices or () if 0 <= i < len(chunks)]
        indices = [i for i in indices if chunks[i] is not None and chunks[i].uri]  # type: ignore[union-attr]
        if indices:
            cited.append((segment.end_index or 0, segment.text, indices))
    cited.sort(key=lambda c: c[0])
    for _, _, indices in cited:
        order.extend(i for i in indices if i not in order)
    order.extend(i for i, web in enumerate(chunks) if web and web.uri and i not in order)
    sources: list[Source] = []
    number_of: dict[int, int] = {}
    by_url: dict[str, int] = {}
    for index in order:
        web = chunks[index]
        assert web is not None and web.uri
        if web.uri not in by_url:
            sources.append(Source(web.title or urlsplit(web.uri).hostname or web.uri, web.uri))
            by_url[web.uri] = len(sources)
        number_of[index] = by_url[web.uri]
    cites = tuple(
        (text, tuple(dict.fromkeys(number_of[i] for i in indices))) for _, text, indices in cited
    )
    queries = tuple(q for q in meta.web_search_queries or () if q)
    if not sources and not queries:
        return None
    return Grounding(tuple(sources), queries, cites)


def _usage(meta: types.GenerateContentResponseUsageMetadata | None) -> Usage:
    """Prompt (plus tool-use prompt) in, candidates plus thoughts out: as Google bills them."""
    if meta is None:
        return Usage()
    return Usage(
        input_tokens=(meta.prompt_token_count or 0) + (meta.tool_use_prompt_token_count or 0),
        cached_input_tokens=meta.cached_content_token_count or 0,
        output_tokens=(meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0),
    )
