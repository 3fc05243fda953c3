"""Ask several model families the same read-only packet at once, each under one deadline.

Each family is asked through `Dispatcher.run` with one provider pinned at a time, so the
privacy gate, quota caps, cool-downs, cache, ledger and the contract's retry apply exactly as for
`offload`. A family whose provider is blocked, capped or failing moves on to its next provider;
a family with none left frees its place for the next family (when no `families` were named).
Nothing outlives the deadline: a family still working then is cancelled and reported missing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import anyio

from offload_mcp.config import ProviderConfig
from offload_mcp.crosscheck.families import TOOL, Family, choose, reviewer_families
from offload_mcp.crosscheck.verdict import CONTRACT, Verdict
from offload_mcp.dispatch import Dispatcher
from offload_mcp.errors import InvalidRequest, NoProviderLeft, OffloadError
from offload_mcp.inputs import read_inputs
from offload_mcp.packets import Packet, Result

log = logging.getLogger(__name__)

Progress = Callable[[str], Awaitable[None]]

#: families asked at once when none are named: an odd number breaks a tie, and a third
#: family keeps it a cross-check when one is slow
DEFAULT_FAMILIES = 3
#: how much of one family's failure reasons the result carries
REASON_CHARS = 240


#: bounds on the arguments (checked here, so the tool schema Claude reads stays short)
MAX_QUESTION_CHARS = 20_000
MAX_DIFF_CHARS = 1_000_000
MAX_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class Ask:
    """What the caller wants checked; `timeout_s` 0 means the configured packet timeout."""

    question: str
    diff: str = ""
    files: tuple[str, ...] = ()
    families: tuple[str, ...] = ()
    timeout_s: float = 0.0

    def check(self) -> None:
        if not self.question.strip():
            raise InvalidRequest("question: must not be blank.")
        if len(self.question) > MAX_QUESTION_CHARS:
            raise InvalidRequest(f"question: over {MAX_QUESTION_CHARS} characters.")
        if len(self.diff) > MAX_DIFF_CHARS:
            raise InvalidRequest(
                f"diff: over {MAX_DIFF_CHARS} characters; pass the changed files as `files`."
            )
        if not 0 <= self.timeout_s <= MAX_TIMEOUT_S:
            raise InvalidRequest(f"timeout_s: must be between 0 and {MAX_TIMEOUT_S:g}.")


@dataclass
class Answer:
    """One family's part: its verdict, or why it has none."""

    family: str
    provider: str = ""
    result: Result | None = None
    verdict: Verdict | None = None
    missing: str = ""


@dataclass
class Outcome:
    answers: list[Answer] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def answered(self) -> list[Answer]:
        return [a for a in self.answers if a.verdict is not None]


class NotEnoughFamilies(OffloadError):
    """Fewer than two families can be asked; the message says what each one lacks."""


async def cross_check(dispatcher: Dispatcher, ask: Ask, progress: Progress | None) -> Outcome:
    ask.check()
    settings = dispatcher.settings
    if ask.files:  # one clear error for a bad path, before any family is asked
        await anyio.to_thread.run_sync(read_inputs, ask.files, settings.limits, dispatcher.cwd)
    chosen = choose(reviewer_families(settings), ask.families, TOOL in settings.chains)
    ready, unready = await _ready(dispatcher, chosen)
    if len(ready) < 2:
        raise _not_enough(ready, unready)
    timeout = ask.timeout_s or settings.limits.timeout_s
    packet = Packet(
        tool=TOOL,
        task=ask.question.strip(),
        text=ask.diff,
        files=ask.files,
        contract=CONTRACT,
        max_output_tokens=settings.limits.max_output_tokens,
        timeout_s=timeout,
        template=TOOL,
    )
    outcome = Outcome()
    if ask.families:  # a family asked for by name is reported even when it cannot be asked
        outcome.answers += [Answer(name, missing=_trim(why)) for name, why in unready]
    started = time.monotonic()
    deadline = anyio.current_time() + timeout
    queue = iter(ready)
    workers = len(ready) if ask.families else min(DEFAULT_FAMILIES, len(ready))
    async with anyio.create_task_group() as group:
        for _ in range(workers):
            group.start_soon(_worker, dispatcher, packet, queue, deadline, outcome, progress)
    outcome.elapsed_s = time.monotonic() - started
    order = [family.name for family in chosen]
    outcome.answers.sort(key=lambda a: order.index(a.family))
    return outcome


async def _ready(
    dispatcher: Dispatcher, families: Sequence[Family]
) -> tuple[list[Family], list[tuple[str, str]]]:
    """Each family cut to its providers that have a key (or need none) and are enabled."""
    ready: list[Family] = []
    unready: list[tuple[str, str]] = []
    for family in families:
        usable: list[ProviderConfig] = []
        first_reason = ""
        for provider in family.providers:
            _, reason = await dispatcher.availability(provider)
            if reason is None:
                usable.append(provider)
            elif not first_reason:
                first_reason = reason
        if usable:
            ready.append(Family(family.name, tuple(usable)))
        else:
            unready.append((family.name, first_reason))
    return ready, unready


def _not_enough(ready: list[Family], unready: list[tuple[str, str]]) -> NotEnoughFamilies:
    lines = [f"- {f.name}: ready ({', '.join(p.name for p in f.providers)})" for f in ready]
    lines += [f"- {name}: {reason}" for name, reason in unready]
    listed = "\n".join(lines) or "- no provider of a known family is configured"
    return NotEnoughFamilies(
        f"cross_check needs two model families that can be asked; {len(ready)} can:\n{listed}",
        hint=(
            "Enable another family: store its key (`offload-mcp keys set NAME`), log in to "
            "`codex`, or start a local model (Ollama); a provider whose model id names no "
            'family needs `family = "NAME"` in config.toml.'
        ),
    )


async def _worker(
    dispatcher: Dispatcher,
    packet: Packet,
    queue: Iterator[Family],
    deadline: float,
    outcome: Outcome,
    progress: Progress | None,
) -> None:
    """Ask one family; if it has no answer and time is left, take the next family waiting."""
    for family in queue:
        answer = Answer(family.name)
        outcome.answers.append(answer)
        await _ask_family(dispatcher, packet, family, answer, deadline, progress)
        if progress is not None:
            await progress(_finished(answer))
        if answer.verdict is not None or anyio.current_time() >= deadline:
            return


async def _ask_family(
    dispatcher: Dispatcher,
    packet: Packet,
    family: Family,
    answer: Answer,
    deadline: float,
    progress: Progress | None,
) -> None:
    reasons: list[str] = []

    async def tell(message: str) -> None:
        if progress is not None:
            await progress(f"{family.name}: {message}")

    with anyio.move_on_after(deadline - anyio.current_time()) as scope:
        for provider in family.providers:
            answer.provider = provider.name
            try:
                result = await dispatcher.run(_pinned(packet, provider), tell)
            except NoProviderLeft as exc:
                reasons.extend(exc.reasons)
                continue
            except OffloadError as exc:
                reasons.append(str(exc))
                continue
            except Exception as exc:  # one family's surprise must not sink the others
                log.exception("cross_check: %s failed unexpectedly", provider.name)
                reasons.append(f"{provider.name}: internal error ({type(exc).__name__}).")
                continue
            answer.result = result
            answer.verdict = Verdict.from_data(result.data)
            return
    if scope.cancelled_caught:
        reasons.append(f"{answer.provider}: no answer within the {packet.timeout_s:g} s timeout.")
    answer.missing = _trim(" ".join(reasons) or "no provider answered.")


def _pinned(packet: Packet, provider: ProviderConfig) -> Packet:
    return replace(packet, provider=provider.name)


def _finished(answer: Answer) -> str:
    if answer.verdict is not None:
        return f"{answer.family}: {answer.verdict.verdict} ({answer.provider})"
    return f"{answer.family}: no answer ({_trim(answer.missing, 100)})"


def _trim(text: str, limit: int = REASON_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
