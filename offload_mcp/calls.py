"""One request to one provider: reserve its quota, call the backend, settle however it ends."""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import anyio

from offload_mcp import quota
from offload_mcp.backends import Backend
from offload_mcp.config import ProviderConfig
from offload_mcp.errors import OffloadError, ProviderError, ProviderTimeout
from offload_mcp.gate import redact_all
from offload_mcp.ledger import Cached, CacheEntry, Refusal
from offload_mcp.packets import Completion, CompletionRequest, Message, Usage

if TYPE_CHECKING:
    from offload_mcp.dispatch import Dispatcher
    from offload_mcp.privacy import Screened

#: seconds on top of a request's own timeout before dispatch gives up on a backend itself
TIMEOUT_GRACE_S = 5.0


class Refused(Exception):
    """The ledger refused a reservation: capped or cooling down."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.reason)
        self.refusal = refusal


@dataclass
class Call:
    """One request to one provider: reserve its quota, call, and settle however it ends."""

    dispatcher: Dispatcher
    provider: ProviderConfig
    tool: str
    digest: str
    retry: int
    failovers: int
    screened: Screened
    reservation: int = 0
    latency_ms: float = 0.0

    async def run(
        self, backend: Backend, request: CompletionRequest, cache_key: str | None = None
    ) -> Completion | Cached:
        d, provider = self.dispatcher, self.provider
        started = time.monotonic()
        est_input, est_output, est_usd = quota.estimate(
            provider, request.messages, request.max_output_tokens
        )
        reserved = await d.ledger_call(
            d.ledger.reserve,
            provider=provider.name,
            tool=self.tool,
            model=provider.model,
            windows=quota.cap_windows(provider, d.clock()),
            est_input=est_input,
            est_output=est_output,
            est_usd=est_usd,
            ttl_s=request.timeout_s + 2 * TIMEOUT_GRACE_S,
            packet_hash=self.digest,
            retries=self.retry,
            failovers=self.failovers,
            cache_key=cache_key,
        )
        if isinstance(reserved, Refusal):
            raise Refused(reserved)
        if isinstance(reserved, Cached):
            self.latency_ms = (time.monotonic() - started) * 1000
            return reserved
        self.reservation = reserved
        started = time.monotonic()
        outcome = "cancelled"
        try:
            with anyio.fail_after(request.timeout_s + TIMEOUT_GRACE_S):
                completion = await backend.complete(request)
            outcome = "ok"
        except TimeoutError:
            outcome = ProviderTimeout.kind
            error: ProviderError = ProviderTimeout(
                provider.name, f"no answer within {request.timeout_s:g} s."
            )
            await self._cool_down(error)
            raise error from None
        except ProviderError as exc:
            outcome = exc.kind
            await self._cool_down(exc)
            raise
        finally:
            self.latency_ms = (time.monotonic() - started) * 1000
            if outcome != "ok":
                with anyio.CancelScope(shield=True):
                    await self._settle(outcome, None, 0.0)
        if completion.exhausted_for_s:
            until = d.clock() + completion.exhausted_for_s
            await d.ledger_call(d.ledger.set_cooldown, provider.name, until, "window used up")
        return completion

    async def settle(
        self, completion: Completion, cost: float, outcome: str, cache: CacheEntry | None = None
    ) -> None:
        await self._settle(outcome, completion, cost, cache)

    async def _settle(
        self,
        outcome: str,
        completion: Completion | None,
        cost: float,
        cache: CacheEntry | None = None,
    ) -> None:
        usage = completion.usage if completion else Usage()
        # A failed write is logged; the reservation then expires by itself, and the answer
        # must not be lost over bookkeeping.
        with contextlib.suppress(OffloadError):
            await self.dispatcher.ledger_call(
                self.dispatcher.ledger.settle,
                self.reservation,
                outcome=outcome,
                model=completion.model if completion else self.provider.model,
                input_tokens=usage.input_tokens,
                cached_tokens=usage.cached_input_tokens,
                output_tokens=usage.output_tokens,
                usd=cost,
                latency_ms=self.latency_ms,
                privacy=self.screened.summary(),
                cache=cache,
                content=self._content(completion),
            )

    def _content(self, completion: Completion | None) -> str | None:
        """The opt-in content log: packet and answer with every sensitive value redacted."""
        if not self.dispatcher.settings.ledger.log_content:
            return None
        packet = "\n".join(self.screened.texts)
        answer = completion.text if completion else ""
        return json.dumps({"packet": redact_all(packet), "answer": redact_all(answer)})

    async def _cool_down(self, error: ProviderError) -> None:
        cooldown = quota.cooldown_for(error, self.dispatcher.clock())
        if cooldown is not None:
            with anyio.CancelScope(shield=True):
                await self.dispatcher.ledger_call(
                    self.dispatcher.ledger.set_cooldown, self.provider.name, *cooldown
                )


def cache_key_for(digest: str, provider: ProviderConfig, privacy: str) -> str:
    parts = (digest, provider.name, provider.model, privacy)
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def request_cost(provider: ProviderConfig, completion: Completion) -> float:
    if completion.reported_cost_usd is not None:
        return completion.reported_cost_usd
    usage = completion.usage
    return provider.prices.cost(usage.input_tokens, usage.cached_input_tokens, usage.output_tokens)


def retry_request(request: CompletionRequest, answer: str, why: str) -> CompletionRequest:
    correction = (
        f"That answer was rejected: {why}. Reply again, following the output instructions exactly."
    )
    return replace(
        request,
        messages=(*request.messages, Message("assistant", answer), Message("user", correction)),
    )
