"""The one interface every backend implements, and what it reports about its health."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from offload_mcp.config import ProviderConfig
from offload_mcp.packets import Completion, CompletionRequest


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str


class Backend(Protocol):
    """Talks to one provider. Receives resolved settings and key; never reads env or keyring."""

    provider: ProviderConfig

    async def complete(self, request: CompletionRequest) -> Completion:
        """Run one request; raise a `ProviderError` subclass on any failure."""
        ...

    async def health(self) -> Health:
        """A cheap reachability check for `status`."""
        ...

    async def aclose(self) -> None: ...
