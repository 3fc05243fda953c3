"""Backend registry: provider kind -> implementation, imported only when first used."""

from __future__ import annotations

import importlib

from offload_mcp.backends.base import Backend, Health
from offload_mcp.config import ProviderConfig

#: kind -> "module:Class"; strings keep start-up free of httpx and friends.
BACKENDS: dict[str, str] = {
    "openai_compat": "offload_mcp.backends.openai_compat:OpenAICompatBackend",
    "ollama": "offload_mcp.backends.ollama:OllamaBackend",
    "embedded": "offload_mcp.backends.embedded:EmbeddedBackend",
    "codex": "offload_mcp.backends.codex:CodexBackend",
    "gemini": "offload_mcp.backends.gemini:GeminiBackend",
    "gemini_cli": "offload_mcp.backends.gemini_cli:GeminiCliBackend",
}


def create_backend(provider: ProviderConfig, key: str | None) -> Backend:
    module_name, class_name = BACKENDS[provider.kind].split(":")
    backend_class = getattr(importlib.import_module(module_name), class_name)
    backend: Backend = backend_class(provider, key)
    return backend


__all__ = ["BACKENDS", "Backend", "Health", "create_backend"]
