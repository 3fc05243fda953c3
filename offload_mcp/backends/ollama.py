"""Ollama through its native API and the official `ollama` client (imported on first use).

Native rather than `/v1` because it takes the JSON schema as `format`, a `keep_alive`, and its
errors let us say exactly what to do: `ollama pull MODEL` for a missing model, how to start the
server when nothing listens. The client's default timeout is none, so one is always passed.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from offload_mcp import errors
from offload_mcp.backends.base import Health
from offload_mcp.config import ProviderConfig
from offload_mcp.packets import Completion, CompletionRequest, Usage

if TYPE_CHECKING:
    import ollama

CONNECT_TIMEOUT_S = 5.0
START_HINT = (
    "Start Ollama: run `ollama serve` (or open the Ollama app); "
    "install it from https://ollama.com/download."
)


class OllamaBackend:
    def __init__(self, provider: ProviderConfig, key: str | None) -> None:
        self.provider = provider
        self._key = key
        self._client: ollama.AsyncClient | None = None

    def _ollama(self) -> ollama.AsyncClient:
        if self._client is None:
            import httpx
            import ollama

            headers = dict(self.provider.headers)
            if self._key:
                headers["Authorization"] = f"Bearer {self._key}"
            self._client = ollama.AsyncClient(
                host=self.provider.base_url,
                timeout=httpx.Timeout(self.provider.timeout_s or 300.0, connect=CONNECT_TIMEOUT_S),
                headers=headers,
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client._client.aclose()
            self._client = None

    def chat_arguments(self, request: CompletionRequest) -> dict[str, Any]:
        """The `AsyncClient.chat` keyword arguments for a request (also what tests check)."""
        extra = dict(self.provider.extra_body)
        options = {
            "temperature": 0,
            "num_predict": request.max_output_tokens,
            **extra.pop("options", {}),
        }
        arguments: dict[str, Any] = {
            "model": self.provider.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "stream": False,
            "options": options,
            **extra,
        }
        if request.json_schema is not None:
            arguments["format"] = request.json_schema
        if self.provider.keep_alive_s is not None:
            arguments["keep_alive"] = self.provider.keep_alive_s
        return arguments

    async def complete(self, request: CompletionRequest) -> Completion:
        import anyio
        import httpx
        import ollama
        from pydantic import ValidationError

        name = self.provider.name
        try:
            with anyio.fail_after(request.timeout_s):
                response = await self._ollama().chat(**self.chat_arguments(request))
        except (TimeoutError, httpx.TimeoutException):
            raise errors.ProviderTimeout(
                name, f"no answer within {request.timeout_s:g} s."
            ) from None
        except ConnectionError:
            raise errors.ProviderDown(
                name, f"nothing answers at {self.provider.base_url}.", hint=START_HINT
            ) from None
        except ollama.ResponseError as exc:
            raise self._error_for(exc.status_code, exc.error) from None
        except (json.JSONDecodeError, ValidationError, httpx.DecodingError):
            raise errors.BadResponse(
                name, "answered with a body that is not Ollama's JSON."
            ) from None
        except httpx.TransportError as exc:
            raise errors.ProviderDown(
                name, f"connection failed ({type(exc).__name__}).", hint=START_HINT
            ) from None
        content = response.message.content or ""
        if not content.strip():
            reason = response.done_reason or "unknown"
            raise errors.BadResponse(name, f"returned an empty answer (done_reason={reason}).")
        return Completion(
            text=content,
            usage=Usage(
                input_tokens=response.prompt_eval_count or 0,
                output_tokens=response.eval_count or 0,
            ),
            model=response.model or self.provider.model,
        )

    def _error_for(self, status: int, message: str) -> errors.ProviderError:
        p = self.provider
        said = f"HTTP {status}: {' '.join(str(message).split())[:300]}"
        if status == 404 or "not found" in str(message):
            return errors.ModelNotFound(
                p.name,
                f"model {p.model!r} is not pulled ({said}).",
                hint=f"Run: ollama pull {p.model}",
            )
        if status == 429:
            return errors.RateLimited(p.name, f"busy ({said}).")
        if status in (500, 502, 503):
            return errors.ProviderDown(p.name, f"server error ({said}).", hint="Try again later.")
        return errors.ProviderError(p.name, f"rejected the request ({said}).")

    async def health(self) -> Health:
        """Version and pulled models: reachable, and whether the configured model is there."""
        import httpx
        import ollama

        client = self._ollama()
        try:
            version = await client._client.get("/api/version", timeout=CONNECT_TIMEOUT_S)
            listed = await client.list()
        except (ConnectionError, httpx.TransportError):
            return Health(False, "not running: start it with `ollama serve`")
        except (ollama.ResponseError, ValueError) as exc:
            return Health(False, f"unexpected answer ({type(exc).__name__})")
        try:
            number = version.json().get("version", "?")
        except ValueError:
            number = "?"
        names = [str(m.model) for m in listed.models if m.model]
        model = self.provider.model
        if not _has_model(names, model):
            pulled = ", ".join(names[:6]) or "none"
            return Health(False, f"Ollama {number}; run `ollama pull {model}` (pulled: {pulled})")
        others = [n for n in names if not _same_model(n, model)][:6]
        also = f"; also {', '.join(others)}" if others else ""
        return Health(True, f"Ollama {number}; {model} ready{also}")


def _same_model(name: str, wanted: str) -> bool:
    """Ollama lists `llama3.2:latest` for a model pulled as `llama3.2`."""
    return name == wanted or (":" not in wanted and name == f"{wanted}:latest")


def _has_model(names: list[str], wanted: str) -> bool:
    return any(_same_model(name, wanted) for name in names)
