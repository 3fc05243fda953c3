"""The one path every packet takes: inputs, candidates, cache, quota, backend, validation, ledger.

No tool talks to a backend directly. A provider that is unavailable, capped, cooling down,
refusing, failing or answering outside the contract is skipped and the next one in the tool's
chain is tried. When none is left, the packet waits for the earliest reset if it may
(`wait_s`), else `NoProviderLeft` says, per provider, what happened and what to do.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import anyio

from offload_mcp import contract, quota
from offload_mcp.backends import Backend, Health, create_backend
from offload_mcp.config import Paths, ProviderConfig, Settings, missing_env_refs
from offload_mcp.errors import (
    InvalidOutput,
    InvalidRequest,
    MissingKey,
    NoProviderLeft,
    OffloadError,
    ProviderError,
    ProviderTimeout,
    RateLimited,
)
from offload_mcp.inputs import read_inputs
from offload_mcp.keys import FoundKey, KeyStore
from offload_mcp.ledger import Cached, CacheEntry, Ledger, Refusal, WouldBlock
from offload_mcp.packets import (
    Completion,
    CompletionRequest,
    Message,
    Packet,
    Result,
    Usage,
)
from offload_mcp.render import packet_hash, render_messages
from offload_mcp.windows import describe_wait

if TYPE_CHECKING:
    from offload_mcp.privacy import PacketScan, Screened

log = logging.getLogger(__name__)

Progress = Callable[[str], Awaitable[None]]
BackendFactory = Callable[[ProviderConfig, str | None], Backend]
T = TypeVar("T")

#: seconds on top of a request's own timeout before dispatch gives up on a backend itself
TIMEOUT_GRACE_S = 5.0
HEALTH_TTL_S = 60.0
#: packets shorter than this are scanned on the event loop (well under a millisecond)
INLINE_SCAN_CHARS = 16_384
#: how often a waiting packet tells Claude Code it is still alive (resets its idle timeout)
WAIT_PROGRESS_S = 15.0


class KeyLookup(Protocol):
    def find(self, name: str, env_var: str | None = None) -> FoundKey | None: ...

    def recent(self, name: str, env_var: str | None = None) -> tuple[bool, FoundKey | None]: ...


class _Refused(Exception):
    """The ledger refused a reservation: capped or cooling down."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.reason)
        self.refusal = refusal


@dataclass
class Dispatcher:
    settings: Settings
    keys: KeyLookup
    ledger: Ledger
    backend_factory: BackendFactory = create_backend
    cwd: Path | None = None
    _backends: dict[str, tuple[str | None, Backend]] = field(default_factory=dict)
    _health: dict[str, tuple[float, Health]] = field(default_factory=dict)

    @classmethod
    def for_paths(cls, settings: Settings, paths: Paths, cwd: Path | None = None) -> Dispatcher:
        """The production wiring: keys from the OS keyring/file/env, the ledger in the data dir."""
        return cls(
            settings=settings,
            keys=KeyStore(paths.config_dir),
            ledger=Ledger(paths.ledger_file),
            cwd=cwd,
        )

    @property
    def clock(self) -> Callable[[], float]:
        return self.ledger.clock

    async def run(self, packet: Packet, progress: Progress | None = None) -> Result:
        files = (
            await anyio.to_thread.run_sync(
                read_inputs, packet.files, self.settings.limits, self.cwd
            )
            if packet.files
            else []
        )
        messages = render_messages(packet, files)
        digest = packet_hash(packet, files)
        candidates = self.candidates(packet)
        found = await scan_messages(messages)
        deadline = self.clock() + packet.wait_s
        while True:
            reasons: list[str] = []
            refusals: list[Refusal] = []
            result = await self._try_chain(
                candidates, packet, _Sending(messages, found), digest, progress, reasons, refusals
            )
            if result is not None:
                return result
            resets = [r.retry_at for r in refusals if r.retry_at is not None]
            if not resets or min(resets) > deadline:
                hint = self._privacy_hint(found, candidates)
                raise NoProviderLeft(packet.tool, reasons, hint=hint)
            await self._wait_until(min(resets), progress)

    def _privacy_hint(self, found: PacketScan, candidates: Sequence[ProviderConfig]) -> str:
        """When the gate blocked a candidate: which configured providers could take the packet."""
        if not any(found.screen(p.trust, _overrides(p)).blocked for p in candidates):
            return ""
        allowed = [
            p.name
            for p in self.settings.providers.values()
            if p.enabled and not found.screen(p.trust, _overrides(p)).blocked
        ]
        names = ", ".join(allowed[:8]) or "none"
        return f"Providers whose trust level may see this packet: {names}."

    async def _try_chain(
        self,
        candidates: Sequence[ProviderConfig],
        packet: Packet,
        sending: _Sending,
        digest: str,
        progress: Progress | None,
        reasons: list[str],
        refusals: list[Refusal],
    ) -> Result | None:
        failovers = 0
        for provider in candidates:
            key, unavailable = await self.availability(provider)
            if unavailable:
                reasons.append(unavailable)
                continue
            screened = sending.found.screen(provider.trust, _overrides(provider))
            if screened.blocked:
                reasons.append(f"{provider.name} ({provider.trust}): {screened.reason}.")
                continue
            if progress is not None:
                redacted = sum(screened.redacted.values())
                note = f" ({redacted} values redacted)" if redacted else ""
                await progress(f"sending to {provider.name}{note}")
            messages = sending.for_provider(screened)
            try:
                return await self._attempt(
                    provider, key, packet, messages, screened, digest, failovers
                )
            except _Refused as refused:
                reasons.append(quota.describe(refused.refusal, self.clock()))
                refusals.append(refused.refusal)
            except ProviderError as exc:
                log.info("provider %s failed: %s", provider.name, exc.kind)
                reasons.append(str(exc))
                failovers += 1
                if isinstance(exc, RateLimited) and exc.retry_after_s is not None:
                    retry_at = self.clock() + exc.retry_after_s
                    refusals.append(Refusal(provider.name, exc.kind, retry_at))
        return None

    async def _wait_until(self, when: float, progress: Progress | None) -> None:
        while (left := when - self.clock()) > 0:
            if progress is not None:
                await progress(
                    f"every provider is capped or cooling; waiting {describe_wait(left)}"
                )
            await anyio.sleep(min(left, WAIT_PROGRESS_S))

    def candidates(self, packet: Packet) -> list[ProviderConfig]:
        if packet.provider is None:
            return self.settings.chain(packet.tool)
        provider = self.settings.providers.get(packet.provider)
        if provider is None:
            known = ", ".join(sorted(self.settings.providers))
            raise InvalidRequest(f"provider: unknown provider {packet.provider!r}; known: {known}.")
        return [provider]

    async def availability(self, provider: ProviderConfig) -> tuple[str | None, str | None]:
        """(key, None) when the provider can be called, else (None, why not and how to fix)."""
        if not provider.enabled:
            return None, f"{provider.name}: disabled in config."
        missing = missing_env_refs(provider.base_url)
        if missing:
            return None, f"{provider.name}: base_url needs {', '.join(missing)} set."
        found = await self.find_key(provider)
        if found is None and provider.needs_key:
            return None, str(MissingKey(provider.name, provider.key_name, provider.key_env))
        return (found.value if found else None), None

    async def find_key(self, provider: ProviderConfig) -> FoundKey | None:
        """The provider's key; off the event loop unless recently looked up (keyring is D-Bus)."""
        known, found = self.keys.recent(provider.key_name, provider.key_env)
        if known:
            return found
        return await anyio.to_thread.run_sync(self.keys.find, provider.key_name, provider.key_env)

    def backend(self, provider: ProviderConfig, key: str | None) -> Backend:
        fingerprint = hashlib.sha256(key.encode()).hexdigest() if key else None
        cached = self._backends.get(provider.name)
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
        backend = self.backend_factory(provider, key)
        self._backends[provider.name] = (fingerprint, backend)
        return backend

    async def _attempt(
        self,
        provider: ProviderConfig,
        key: str | None,
        packet: Packet,
        messages: tuple[Message, ...],
        screened: Screened,
        digest: str,
        failovers: int,
    ) -> Result:
        backend = self.backend(provider, key)
        request = CompletionRequest(
            messages=messages,
            max_output_tokens=packet.max_output_tokens,
            timeout_s=provider.timeout_s or packet.timeout_s,
            json_schema=contract.request_schema(packet.contract),
        )
        use_cache = packet.cache and self.settings.cache.enabled
        # The cache holds answers as the provider gave them (placeholders, not values), keyed
        # by what the provider saw, so a hit is restored with this packet's own mapping.
        cache_key_for_put = _cache_key(digest, provider, screened.summary())
        cache_key = cache_key_for_put if use_cache else None
        total_cost = 0.0
        retry = 0
        while True:
            call = _Call(self, provider, packet.tool, digest, retry, failovers, screened)
            completion = await call.run(backend, request, cache_key)
            if isinstance(completion, Cached):
                cache_key = None  # whatever happens next, the provider is asked
                try:
                    checked = _restored(packet, screened, completion.answer)
                except ValueError:
                    continue  # stored under an older contract rule: ask the provider again
                return Result(
                    text=checked.text,
                    data=checked.data,
                    provider=provider.name,
                    model=provider.model,
                    usage=Usage(),
                    cost_usd=0.0,
                    latency_ms=call.latency_ms,
                    attempts=0,
                    cached=True,
                )
            cost = _cost(provider, completion)
            total_cost += cost
            try:
                checked = _restored(packet, screened, completion.text)
            except ValueError as why:
                await call.settle(completion, cost, "invalid_output")
                if retry == 0:
                    request = _retry_request(request, completion.text, str(why))
                    retry = 1
                    continue
                raise InvalidOutput(
                    provider.name, f"the answer failed the output contract twice ({why})."
                ) from None
            ttl = self.settings.cache.ttl_s
            entry = CacheEntry(cache_key_for_put, completion.text, ttl) if use_cache else None
            await call.settle(completion, cost, "ok", entry)
            return Result(
                text=checked.text,
                data=checked.data,
                provider=provider.name,
                model=completion.model,
                usage=completion.usage,
                cost_usd=total_cost,
                latency_ms=call.latency_ms,
                attempts=retry + 1,
            )

    async def ledger_call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a ledger operation: on the loop if nothing must wait, else in a thread.

        A broken ledger becomes a clear error.
        """
        try:
            try:
                return self.ledger.without_waiting(fn, *args, **kwargs)
            except WouldBlock:
                return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))
        except sqlite3.Error as exc:
            log.error("ledger operation failed: %s", exc)
            raise OffloadError(
                f"the ledger at {self.ledger.path} is unusable ({exc}).",
                hint="Check the disk, or move OFFLOAD_MCP_HOME elsewhere.",
            ) from None

    async def health(self, provider: ProviderConfig, key: str | None) -> Health:
        """Reachability for `status`, cached so status stays cheap to call often."""
        cached = self._health.get(provider.name)
        if cached and time.monotonic() - cached[0] < HEALTH_TTL_S:
            return cached[1]
        try:
            with anyio.fail_after(8):
                health = await self.backend(provider, key).health()
        except TimeoutError:
            health = Health(False, "no answer to the health check within 8 s")
        self._health[provider.name] = (time.monotonic(), health)
        return health

    async def aclose(self) -> None:
        for _, backend in self._backends.values():
            await backend.aclose()
        self._backends.clear()
        self.ledger.close()


@dataclass
class _Call:
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
            raise _Refused(reserved)
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


def _overrides(provider: ProviderConfig) -> dict[str, str]:
    return {str(category): str(action) for category, action in provider.privacy.items()}


def _cache_key(digest: str, provider: ProviderConfig, privacy: str) -> str:
    parts = (digest, provider.name, provider.model, privacy)
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class _Sending:
    """The rendered messages and the one privacy scan of the user message they carry."""

    messages: tuple[Message, ...]
    found: PacketScan

    def for_provider(self, screened: Screened) -> tuple[Message, ...]:
        """The messages this provider may see: the user message as screened for its trust."""
        if screened.texts == self.found.texts:
            return self.messages
        system, _ = self.messages
        return (system, Message("user", screened.texts[0]))


async def scan_messages(messages: tuple[Message, ...]) -> PacketScan:
    """Scan the packet's user message (the system prompt is ours); big ones off the loop."""
    from offload_mcp.privacy import scan_packet  # RE2 and the rule book: first use only

    texts = [messages[1].content]
    if len(texts[0]) < INLINE_SCAN_CHARS:
        return scan_packet(texts)
    return await anyio.to_thread.run_sync(scan_packet, texts)


def redact_all(text: str) -> str:
    """Every finding replaced by its placeholder, whatever the trust (for stored content)."""
    from offload_mcp.privacy import screen

    return screen([text], "untrusted", _REDACT_EVERYTHING).texts[0] if text else text


_REDACT_EVERYTHING = {"secret": "redact", "pii": "redact", "phi": "redact"}


def _restored(packet: Packet, screened: Screened, answer: str) -> contract.Checked:
    """Check the answer as the provider gave it, then put the redacted values back.

    Restoring after parsing keeps a value with quotes or backslashes from breaking JSON.
    """
    checked = contract.check(packet.contract, answer)
    if screened.restore(answer) == answer:
        return checked
    data = screened.restore(checked.data)
    if packet.contract.kind == "json":
        return contract.Checked(json.dumps(data, ensure_ascii=False, separators=(",", ":")), data)
    return contract.Checked(screened.restore(checked.text), data)


def _cost(provider: ProviderConfig, completion: Completion) -> float:
    if completion.reported_cost_usd is not None:
        return completion.reported_cost_usd
    usage = completion.usage
    return provider.prices.cost(usage.input_tokens, usage.cached_input_tokens, usage.output_tokens)


def _retry_request(request: CompletionRequest, answer: str, why: str) -> CompletionRequest:
    correction = (
        f"That answer was rejected: {why}. Reply again, following the output instructions exactly."
    )
    return replace(
        request,
        messages=(*request.messages, Message("assistant", answer), Message("user", correction)),
    )
