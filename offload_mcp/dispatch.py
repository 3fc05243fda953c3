"""The one path every packet takes: inputs, privacy gate, cache, quota, backend, validation, ledger.

No tool talks to a backend directly. A provider that is unavailable, capped, cooling down,
refusing, failing or answering outside the contract is skipped and the next one in the tool's
chain is tried. When none is left, the packet waits for the earliest reset if it may
(`wait_s`), else `NoProviderLeft` says, per provider, what happened and what to do.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import anyio

from offload_mcp import contract, quota
from offload_mcp.backends import Backend, Health, create_backend
from offload_mcp.calls import Call, Refused, cache_key_for, request_cost, retry_request
from offload_mcp.config import Paths, ProviderConfig, Settings, missing_env_refs
from offload_mcp.errors import (
    InvalidOutput,
    InvalidRequest,
    MissingKey,
    NoProviderLeft,
    OffloadError,
    ProviderError,
    RateLimited,
)
from offload_mcp.gate import (
    Sending,
    overrides,
    restored,
    restored_grounding,
    scan_messages,
)
from offload_mcp.inputs import read_inputs
from offload_mcp.keys import FoundKey, KeyStore
from offload_mcp.ledger import Cached, CacheEntry, Ledger, Refusal, WouldBlock
from offload_mcp.packets import (
    CompletionRequest,
    Grounding,
    Message,
    Packet,
    Result,
    Usage,
)
from offload_mcp.render import packet_hash, render_messages
from offload_mcp.windows import describe_wait

if TYPE_CHECKING:
    from offload_mcp.audit.window import WindowWatch
    from offload_mcp.privacy import PacketScan, Screened

log = logging.getLogger(__name__)

Progress = Callable[[str], Awaitable[None]]
BackendFactory = Callable[[ProviderConfig, str | None], Backend]
T = TypeVar("T")

HEALTH_TTL_S = 60.0
#: how often a waiting packet tells Claude Code it is still alive (resets its idle timeout)
WAIT_PROGRESS_S = 15.0


class KeyLookup(Protocol):
    def find(self, name: str, env_var: str | None = None) -> FoundKey | None: ...

    def recent(self, name: str, env_var: str | None = None) -> tuple[bool, FoundKey | None]: ...


@dataclass
class Dispatcher:
    settings: Settings
    keys: KeyLookup
    ledger: Ledger
    backend_factory: BackendFactory = create_backend
    cwd: Path | None = None
    _backends: dict[str, tuple[str | None, Backend]] = field(default_factory=dict)
    _health: dict[str, tuple[float, Health]] = field(default_factory=dict)
    _window: WindowWatch | None = None

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
                candidates, packet, Sending(messages, found), digest, progress, reasons, refusals
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
        if not any(found.screen(p.trust, overrides(p)).blocked for p in candidates):
            return ""
        allowed = [
            p.name
            for p in self.settings.providers.values()
            if p.enabled and not found.screen(p.trust, overrides(p)).blocked
        ]
        names = ", ".join(allowed[:8]) or "none"
        return f"Providers whose trust level may see this packet: {names}."

    async def _try_chain(
        self,
        candidates: Sequence[ProviderConfig],
        packet: Packet,
        sending: Sending,
        digest: str,
        progress: Progress | None,
        reasons: list[str],
        refusals: list[Refusal],
    ) -> Result | None:
        failovers = 0
        for provider in candidates:
            found, unavailable = await self.availability(provider)
            if unavailable:
                reasons.append(unavailable)
                continue
            screened = sending.found.screen(provider.trust, overrides(provider))
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
                    provider,
                    found.value if found else None,
                    packet,
                    messages,
                    screened,
                    digest,
                    failovers,
                )
            except Refused as refused:
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
            return self.settings.chain(packet.tool, hot=self.window_hot())
        provider = self.settings.providers.get(packet.provider)
        if provider is None:
            known = ", ".join(sorted(self.settings.providers))
            raise InvalidRequest(f"provider: unknown provider {packet.provider!r}; known: {known}.")
        return [provider]

    def claude_window(self) -> WindowWatch:
        """The Claude budget window, read from Claude Code's transcripts (made on first use)."""
        if self._window is None:
            from offload_mcp.audit.window import WindowWatch

            self._window = WindowWatch(self.ledger.path.parent)
        return self._window

    def window_hot(self) -> bool:
        """Whether chains lean cheap; never waits (a stale look is refreshed in a thread)."""
        threshold = self.settings.limits.hot_window_percentile
        return threshold > 0 and self.claude_window().hot(threshold)

    async def availability(self, provider: ProviderConfig) -> tuple[FoundKey | None, str | None]:
        """The provider's key (if any) and, when it cannot be called, why not and the fix."""
        found = await self.find_key(provider)
        if not provider.enabled:
            return found, f"{provider.name}: disabled in config."
        missing = missing_env_refs(provider.base_url)
        if missing:
            return found, f"{provider.name}: base_url needs {', '.join(missing)} set."
        if found is None and provider.needs_key:
            return None, str(MissingKey(provider.name, provider.key_name, provider.key_env))
        return found, None

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
        cache_key_for_put = cache_key_for(digest, provider, screened.summary())
        cache_key = cache_key_for_put if use_cache else None
        total_cost = 0.0
        retry = 0
        while True:
            call = Call(self, provider, packet.tool, digest, retry, failovers, screened)
            completion = await call.run(backend, request, cache_key)
            if isinstance(completion, Cached):
                cache_key = None  # whatever happens next, the provider is asked
                try:
                    checked = restored(packet, screened, completion.answer)
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
                    grounding=restored_grounding(
                        screened, Grounding.from_json(completion.grounding)
                    ),
                )
            cost = request_cost(provider, completion)
            total_cost += cost
            try:
                checked = restored(packet, screened, completion.text)
            except ValueError as why:
                await call.settle(completion, cost, "invalid_output")
                if retry == 0:
                    request = retry_request(request, completion.text, str(why))
                    retry = 1
                    continue
                raise InvalidOutput(
                    provider.name, f"the answer failed the output contract twice ({why})."
                ) from None
            ttl = self.settings.cache.ttl_s
            grounding = completion.grounding
            entry = None
            if use_cache:
                stored = grounding.to_json() if grounding else None
                entry = CacheEntry(cache_key_for_put, completion.text, ttl, stored)
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
                grounding=restored_grounding(screened, grounding),
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
