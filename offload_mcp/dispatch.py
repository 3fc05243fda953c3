"""The one path every packet takes: inputs, candidates, gates, backend, validation, ledger.

No tool talks to a backend directly. A provider that is unavailable, refuses, fails or keeps
answering outside the contract is skipped and the next one in the tool's chain is tried; when
none is left, `NoProviderLeft` says, per provider, what happened and what to do.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import anyio

from offload_mcp import contract
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
)
from offload_mcp.inputs import read_inputs
from offload_mcp.keys import FoundKey, KeyStore
from offload_mcp.ledger import CallRecord, Ledger
from offload_mcp.packets import (
    Completion,
    CompletionRequest,
    InputFile,
    Message,
    Packet,
    Result,
)
from offload_mcp.templates import get_template

log = logging.getLogger(__name__)

Progress = Callable[[str], Awaitable[None]]
BackendFactory = Callable[[ProviderConfig, str | None], Backend]

#: seconds on top of a request's own timeout before dispatch gives up on a backend itself
TIMEOUT_GRACE_S = 5.0
HEALTH_TTL_S = 60.0


class KeyLookup(Protocol):
    def find(self, name: str, env_var: str | None = None) -> FoundKey | None: ...


@dataclass
class Dispatcher:
    settings: Settings
    keys: KeyLookup
    ledger: Ledger | None = None
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

    async def run(self, packet: Packet, progress: Progress | None = None) -> Result:
        files = await anyio.to_thread.run_sync(
            read_inputs, packet.files, self.settings.limits, self.cwd
        )
        messages = render_messages(packet, files)
        digest = packet_hash(packet, files)
        reasons: list[str] = []
        failovers = 0
        for provider in self.candidates(packet):
            key, unavailable = await self.availability(provider)
            if unavailable:
                reasons.append(unavailable)
                continue
            # Hook point: the privacy gate screens `messages` for this provider's trust level.
            # Hook point: the quota ledger reserves this packet's estimate against the caps.
            if progress is not None:
                await progress(f"sending to {provider.name}")
            try:
                return await self._attempt(provider, key, packet, messages, digest, failovers)
            except ProviderError as exc:
                log.info("provider %s failed: %s", provider.name, exc.kind)
                reasons.append(str(exc))
                failovers += 1
        raise NoProviderLeft(packet.tool, reasons)

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
        found = await anyio.to_thread.run_sync(self.keys.find, provider.key_name, provider.key_env)
        if found is None and provider.needs_key:
            return None, str(MissingKey(provider.name, provider.key_name, provider.key_env))
        return (found.value if found else None), None

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
        record = _Recorder(self, packet.tool, provider, digest, failovers)
        for retry in (0, 1):
            started = time.monotonic()
            completion = await record.call(backend, request, retry)
            latency_ms = (time.monotonic() - started) * 1000
            cost = _cost(provider, completion)
            try:
                checked = contract.check(packet.contract, completion.text)
            except ValueError as why:
                await record.done(completion, cost, latency_ms, retry, "invalid_output")
                if retry == 0:
                    request = _retry_request(request, completion.text, str(why))
                    continue
                raise InvalidOutput(
                    provider.name, f"the answer failed the output contract twice ({why})."
                ) from None
            await record.done(completion, cost, latency_ms, retry, "ok")
            return Result(
                text=checked.text,
                data=checked.data,
                provider=provider.name,
                model=completion.model,
                usage=completion.usage,
                cost_usd=record.total_cost,
                latency_ms=latency_ms,
                attempts=retry + 1,
                skipped=(),
            )
        raise AssertionError("unreachable")  # pragma: no cover

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

    async def record(self, call: CallRecord) -> None:
        if self.ledger is None:
            return
        try:
            await anyio.to_thread.run_sync(self.ledger.record, call)
        except (OffloadError, OSError) as exc:
            log.error("ledger write failed: %s", exc)
        except Exception as exc:  # sqlite3.Error and friends: never lose the answer over it
            log.error("ledger write failed: %s: %s", type(exc).__name__, exc)

    async def aclose(self) -> None:
        for _, backend in self._backends.values():
            await backend.aclose()
        self._backends.clear()
        if self.ledger is not None:
            self.ledger.close()


@dataclass
class _Recorder:
    """Calls the backend once and writes one ledger row per attempt, however it ends."""

    dispatcher: Dispatcher
    tool: str
    provider: ProviderConfig
    digest: str
    failovers: int
    total_cost: float = 0.0

    async def call(self, backend: Backend, request: CompletionRequest, retry: int) -> Completion:
        started = time.monotonic()
        outcome = "cancelled"
        try:
            with anyio.fail_after(request.timeout_s + TIMEOUT_GRACE_S):
                completion = await backend.complete(request)
            outcome = "ok"
            return completion
        except TimeoutError:
            outcome = ProviderTimeout.kind
            raise ProviderTimeout(
                self.provider.name, f"no answer within {request.timeout_s:g} s."
            ) from None
        except ProviderError as exc:
            outcome = exc.kind
            raise
        finally:
            if outcome != "ok":
                latency_ms = (time.monotonic() - started) * 1000
                with anyio.CancelScope(shield=True):
                    await self._write(outcome, None, 0.0, latency_ms, retry)

    async def done(
        self, completion: Completion, cost: float, latency_ms: float, retry: int, outcome: str
    ) -> None:
        self.total_cost += cost
        await self._write(outcome, completion, cost, latency_ms, retry)

    async def _write(
        self,
        outcome: str,
        completion: Completion | None,
        cost: float,
        latency_ms: float,
        retry: int,
    ) -> None:
        usage = completion.usage if completion else None
        await self.dispatcher.record(
            CallRecord(
                ts=time.time(),
                tool=self.tool,
                provider=self.provider.name,
                model=completion.model if completion else self.provider.model,
                outcome=outcome,
                input_tokens=usage.input_tokens if usage else 0,
                cached_tokens=usage.cached_input_tokens if usage else 0,
                output_tokens=usage.output_tokens if usage else 0,
                usd=cost,
                latency_ms=latency_ms,
                retries=retry,
                failovers=self.failovers,
                packet_hash=self.digest,
            )
        )


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
        messages=(
            *request.messages,
            Message("assistant", answer),
            Message("user", correction),
        ),
    )


def render_messages(packet: Packet, files: Sequence[InputFile]) -> tuple[Message, ...]:
    """The packet as chat messages: the shared system prompt, then the rendered template."""
    sections: list[str] = []
    if packet.text:
        sections.append(f"\n## Input\n{_fenced(packet.text)}")
    sections.extend(f"\n## File: {f.path}\n{_fenced(f.text)}" for f in files)
    user = get_template(packet.template).render(
        task=packet.task.strip(),
        inputs="".join(sections),
        output_rules=contract.output_rules(packet.contract),
    )
    system = get_template("system").render()
    return (Message("system", system.strip()), Message("user", user.strip()))


def _fenced(text: str) -> str:
    """Fence input so it cannot be mistaken for instructions; longer fence if text has one."""
    longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=2)
    fence = "`" * (longest + 1)
    return f"{fence}\n{text.rstrip()}\n{fence}"


def packet_hash(packet: Packet, files: Sequence[InputFile]) -> str:
    """A stable digest of what the packet asks and carries; content itself is never stored."""
    payload = {
        "task": " ".join(packet.task.split()),
        "text": packet.text,
        "files": [[f.path, hashlib.sha256(f.text.encode()).hexdigest()] for f in files],
        "contract": [packet.contract.kind, list(packet.contract.labels), packet.contract.schema],
        "template": packet.template,
    }
    encoded = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:32]
