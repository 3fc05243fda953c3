"""One `codex exec` (or `exec resume`) in the workspace, streamed, with progress and the ledger.

Each run is one ledger row: reserved before it starts (a cool-down or cap refuses it up
front), settled with that run's own tokens (Codex reports thread-cumulative usage, so a resume
settles its difference from the run before). Plan-limit, quota and rate-limit failures set
the provider's cool-down with Codex's reset time when it printed one, exactly as dispatch
does for any provider.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import anyio

from offload_mcp import errors, quota
from offload_mcp.backends.codex import CodexBackend
from offload_mcp.backends.codex_events import CodexRun, CodexUsage, Progress, failure_error
from offload_mcp.delegate.progress import Throttle
from offload_mcp.dispatch import Dispatcher
from offload_mcp.ledger import Refusal
from offload_mcp.packets import Message

#: failures that say Codex cannot work at all right now: the call ends in an error with the fix
FATAL = (
    errors.AuthFailed,
    errors.RateLimited,
    errors.NotAllowed,
    errors.ModelNotFound,
    errors.ProviderDown,
)
_LEDGER_GRACE_S = 30.0


@dataclass
class Attempt:
    run: CodexRun
    #: this run's own tokens (not the thread's)
    usage: CodexUsage
    seconds: float
    error: errors.ProviderError | None = None


@dataclass
class Runner:
    """What every run of one delegation shares."""

    dispatcher: Dispatcher
    backend: CodexBackend
    cwd: str
    timeout_s: float
    throttle: Throttle
    digest: str
    privacy: str

    async def run(
        self, argv: list[str], prompt: str, *, retry: int = 0, before: CodexUsage | None = None
    ) -> Attempt:
        return await run_codex(self, argv, prompt, retry=retry, before=before)


async def run_codex(
    runner: Runner,
    argv: list[str],
    prompt: str,
    *,
    retry: int,
    before: CodexUsage | None,
) -> Attempt:
    """Run Codex once; its failure is returned in `Attempt.error`, never raised (the ledger
    refusing the run is raised: nothing started)."""
    dispatcher, backend = runner.dispatcher, runner.backend
    provider = backend.provider
    ledger = dispatcher.ledger
    timeout_s = runner.timeout_s
    est_input, _, _ = quota.estimate(provider, (Message("user", prompt),), 0)
    reserved = await dispatcher.ledger_call(
        ledger.reserve,
        provider=provider.name,
        tool="delegate",
        model=provider.model,
        windows=quota.cap_windows(provider, dispatcher.clock()),
        est_input=est_input,
        est_output=0,
        est_usd=0.0,
        ttl_s=timeout_s + _LEDGER_GRACE_S,
        packet_hash=runner.digest,
        retries=retry,
    )
    if isinstance(reserved, Refusal):
        raise errors.OffloadError(
            quota.describe(reserved, dispatcher.clock()),
            hint="Wait for the reset, or do this task yourself.",
        )
    assert isinstance(reserved, int)  # no cache key, so never a cache hit
    run = CodexRun(root=runner.cwd)
    started = time.monotonic()
    error: errors.ProviderError | None = None
    outcome = "cancelled"
    try:
        try:
            code, stderr_tail = await _stream(runner, argv, prompt, run)
            if not run.completed or code != 0:
                hint = backend.auth_hint()
                error = failure_error(provider.name, run, code, stderr_tail, hint)
        except errors.ProviderError as exc:
            error = exc
        outcome = error.kind if error is not None else "ok"
    finally:
        usage = run.usage.minus(before) if run.usage and before else run.usage or CodexUsage()
        seconds = time.monotonic() - started
        with anyio.CancelScope(shield=True):
            await _settle(runner, reserved, outcome, usage, seconds)
            if error is not None:
                cooldown = quota.cooldown_for(error, dispatcher.clock())
                if cooldown is not None:
                    await dispatcher.ledger_call(ledger.set_cooldown, provider.name, *cooldown)
    return Attempt(run, usage, seconds, error)


async def _stream(runner: Runner, argv: list[str], prompt: str, run: CodexRun) -> tuple[int, str]:
    throttle = runner.throttle

    def note(progress: Progress) -> None:
        verb = "runs" if progress.kind == "command" else "changed"
        throttle.note(f"codex {verb}: {progress.detail[:120]}")

    return await runner.backend.stream(argv, runner.cwd, prompt, run, runner.timeout_s, note)


async def _settle(
    runner: Runner, reservation: int, outcome: str, usage: CodexUsage, seconds: float
) -> None:
    dispatcher = runner.dispatcher
    # A failed write is logged by ledger_call; the reservation then expires by itself.
    with contextlib.suppress(errors.OffloadError):
        await dispatcher.ledger_call(
            dispatcher.ledger.settle,
            reservation,
            outcome=outcome,
            model=runner.backend.provider.model,
            input_tokens=usage.input_tokens,
            cached_tokens=usage.cached_input_tokens,
            output_tokens=usage.output_tokens,
            latency_ms=seconds * 1000,
            privacy=runner.privacy,
        )
