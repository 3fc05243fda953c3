"""Any OpenAI-compatible chat-completions endpoint: hosted (OpenRouter, Groq, ...) or local.

Every failure becomes a distinct `ProviderError` subclass so dispatch can fail over and the
user can see what to do. Provider messages are quoted (shortened, with the key scrubbed).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from offload_mcp import errors
from offload_mcp.backends.base import Health
from offload_mcp.config import ProviderConfig
from offload_mcp.packets import Completion, CompletionRequest, Usage
from offload_mcp.ratelimits import exhausted_for_s, retry_after_s, wait_in_message

if TYPE_CHECKING:
    import httpx

MAX_QUOTED_CHARS = 300


class OpenAICompatBackend:
    def __init__(self, provider: ProviderConfig, key: str | None) -> None:
        self.provider = provider
        self._key = key
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx

            headers = {"Accept": "application/json", **self.provider.headers}
            if self._key:
                headers["Authorization"] = f"Bearer {self._key}"
            self._client = httpx.AsyncClient(
                base_url=self.provider.base_url + "/",
                headers=headers,
                timeout=httpx.Timeout(120.0, connect=10.0),
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def build_body(self, request: CompletionRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.provider.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "max_tokens": request.max_output_tokens,
            "stream": False,
        }
        if request.json_schema is not None:
            body["temperature"] = 0
            response_format = _response_format(self.provider.structured_output, request.json_schema)
            if response_format is not None:
                body["response_format"] = response_format
        return {**body, **self.provider.extra_body}

    async def complete(self, request: CompletionRequest) -> Completion:
        import httpx

        name = self.provider.name
        timeout = request.timeout_s  # dispatch already folded in the provider's own timeout
        try:
            response = await self._http().post(
                "chat/completions",
                json=self.build_body(request),
                timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
            )
        except httpx.TimeoutException:
            raise errors.ProviderTimeout(name, f"no answer within {timeout:g} s.") from None
        except httpx.TransportError as exc:
            raise errors.ProviderDown(
                name,
                f"cannot connect to {self.provider.base_url} ({type(exc).__name__}).",
                hint=_down_hint(self.provider),
            ) from None
        if response.status_code != 200:
            raise self._http_error(response)
        return self._parse(response)

    def _parse(self, response: httpx.Response) -> Completion:
        name = self.provider.name
        try:
            data = response.json()
        except ValueError:
            raise errors.BadResponse(name, "answered 200 with a body that is not JSON.") from None
        if not isinstance(data, dict):
            raise errors.BadResponse(name, "answered 200 with JSON that is not an object.")
        if "error" in data and not data.get("choices"):
            # OpenRouter reports errors that happen after routing inside a 200 body.
            status = _error_status(data, 502)
            raise self._error_for(status, _error_message(data), _rate_headers(data, response))
        try:
            choice = data["choices"][0]
            content = choice["message"].get("content")
        except (KeyError, IndexError, TypeError, AttributeError):
            raise errors.BadResponse(name, "answered 200 without choices[0].message.") from None
        if not isinstance(content, str) or not content.strip():
            reason = choice.get("finish_reason") if isinstance(choice, dict) else None
            raise errors.BadResponse(name, f"returned an empty answer (finish_reason={reason}).")
        raw_usage: dict[str, Any] = data["usage"] if isinstance(data.get("usage"), dict) else {}
        cost = raw_usage.get("cost")
        return Completion(
            text=content,
            usage=_usage(raw_usage),
            model=str(data.get("model") or self.provider.model),
            reported_cost_usd=float(cost) if isinstance(cost, int | float) else None,
            exhausted_for_s=exhausted_for_s(response.headers),
        )

    def _http_error(self, response: httpx.Response) -> errors.ProviderError:
        try:
            data: Any = response.json()
        except ValueError:
            data = None
        message = _error_message(data) or response.reason_phrase or "no message"
        return self._error_for(response.status_code, message, _rate_headers(data, response))

    def _error_for(self, status: int, message: str, headers: Any) -> errors.ProviderError:
        p = self.provider
        quoted = self._scrub(message)
        said = f"HTTP {status}: {quoted}"
        if status == 401:
            env = f" (or set {p.key_env})" if p.key_env else ""
            return errors.AuthFailed(
                p.name,
                f"the key was refused ({said}).",
                hint=f"Fix: offload-mcp keys set {p.key_name}{env}.",
            )
        if status in (402, 403):
            return errors.NotAllowed(
                p.name,
                f"refused the request ({said}).",
                hint="Check the account's credit and which models the key may use.",
            )
        if status == 404:
            return errors.ModelNotFound(
                p.name,
                f"model {p.model!r} not found at {p.base_url} ({said}).",
                hint="Check the model name and base_url in config.toml.",
            )
        if status == 429:
            wait = retry_after_s(dict(headers)) if headers is not None else None
            if wait is None:
                wait = wait_in_message(message)
            when = f" Retry after {wait:.0f} s." if wait is not None else ""
            return errors.RateLimited(p.name, f"rate limited ({said}).{when}", retry_after_s=wait)
        if status >= 500:
            return errors.ProviderDown(p.name, f"server error ({said}).", hint="Try again later.")
        return errors.ProviderError(p.name, f"rejected the request ({said}).")

    def _scrub(self, message: str) -> str:
        text = " ".join(message.split())
        if self._key:
            text = text.replace(self._key, "[key]")
        if len(text) > MAX_QUOTED_CHARS:
            text = text[:MAX_QUOTED_CHARS] + "…"
        return text

    async def health(self) -> Health:
        import httpx

        try:
            response = await self._http().get("models", timeout=httpx.Timeout(5.0))
        except httpx.TransportError as exc:
            return Health(False, f"unreachable ({type(exc).__name__})")
        if response.status_code == 200:
            return Health(True, "reachable")
        if response.status_code == 401:
            return Health(False, "key refused (HTTP 401)")
        return Health(False, f"HTTP {response.status_code}")


def _response_format(dialect: str, schema: dict[str, Any]) -> dict[str, Any] | None:
    if dialect == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "result", "schema": schema}}
    if dialect == "json_object":
        return {"type": "json_object"}
    if dialect == "json_object_schema":
        return {"type": "json_object", "schema": schema}
    return None  # "prompt": the schema travels in the prompt only


def _usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    details = raw.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return Usage(
        input_tokens=_int(raw.get("prompt_tokens")),
        cached_input_tokens=_int(cached),
        output_tokens=_int(raw.get("completion_tokens")),
    )


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and value >= 0 else 0


def _error_message(data: Any) -> str:
    """The message from OpenAI-style, problem+json, Mistral and Gemini's list-shaped bodies."""
    if isinstance(data, list) and data:
        data = data[0]
    if not isinstance(data, dict):
        return ""
    error = data.get("error", data)
    if isinstance(error, dict):
        for field in ("message", "detail", "title"):
            if isinstance(error.get(field), str):
                return str(error[field])
        return json.dumps(error)[:MAX_QUOTED_CHARS]
    return str(error)


def _error_status(data: dict[str, Any], default: int) -> int:
    error = data.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, int) and 400 <= code < 600 else default


def _rate_headers(data: Any, response: httpx.Response) -> dict[str, str]:
    """The response's headers plus those OpenRouter nests in `error.metadata.headers`."""
    error = data.get("error") if isinstance(data, dict) else None
    metadata = error.get("metadata") if isinstance(error, dict) else None
    nested = metadata.get("headers") if isinstance(metadata, dict) else None
    merged = {str(k).lower(): str(v) for k, v in nested.items()} if isinstance(nested, dict) else {}
    merged.update(response.headers.items())
    return merged


def _down_hint(provider: ProviderConfig) -> str:
    if provider.trust == "local":
        return f"Start the local server at {provider.base_url}, or remove it from the chain."
    return "Check the network and the provider's status page."
