"""Local classification: the embedded model by default, a generative local model when chained first.

The embedded model does not generate text, so it cannot go through `Dispatcher.run`; this is its
own path that keeps the house rules: candidates from the `local_classify` chain, the local-only
filter, availability, one ledger row per batch (tokens counted, $0) and typed errors.

Method (measured in bench/local_classify.py): each label becomes a prototype, the normalised mean
of the embeddings of "name: description" and of its examples; an item takes the label of the
most similar prototype. When the best label beats the runner-up by less than `MARGIN`, or no
label is similar at all, the item is `unsure` instead of a guess. Tried and not kept, because
none gained on both the dev sets (237 items, six tasks) and the held-out sets (168 items, six
tasks): centring on the label mean (-1 / +4 points) or half the batch mean (+1 / +5, and an
item's label would depend on its batch), one prototype per description facet (-1 / +5), half
weight on examples (-4 / +5), kNN over examples, an instruction prefix, "This message is
about"; and confidences other than the raw margin (margin over spread, z-score, softmax, a
logistic fit), none of which kept 90% on a left-out task better than the margin does.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import anyio

from offload_mcp.config import ProviderConfig
from offload_mcp.contract import make_contract
from offload_mcp.errors import InvalidRequest, NoProviderLeft, OffloadError, ProviderError
from offload_mcp.ledger import CallRecord
from offload_mcp.packets import OutputContract, Packet, Result

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from offload_mcp.backends.embedded import Embedded
    from offload_mcp.dispatch import Dispatcher

TOOL = "local_classify"
UNSURE = "unsure"
#: best minus runner-up cosine below which an item is `unsure`: chosen on the dev sets so that
#: answered items are >= 90% right on tasks not seen (leave-one-task-out: 94% right, 46%
#: answered); 0.04 answered 75% but only 81% right, 0.08 answered 55% at 87%
MARGIN = 0.11
#: a best cosine under this means no label fits (off-topic text scores ~0.1, right answers >0.17)
MIN_SCORE = 0.12
#: multi-label: every label within this of the best one is also given
MULTI_GAP = 0.06
MAX_ITEMS = 20_000
#: items per worker-thread hop of the embedded model (a few seconds of work at most)
EMBED_CHUNK = 512
MAX_LABELS = 50
#: generative classifiers: items in flight at once (local servers mostly serve one at a time)
GENERATIVE_CONCURRENCY = 2

Progress = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class LabelSpec:
    name: str
    description: str = ""
    examples: tuple[str, ...] = ()

    def texts(self) -> list[str]:
        """What the prototype averages: "name: description", then each example."""
        head = f"{self.name}: {self.description}" if self.description else self.name
        return [head, *self.examples]


@dataclass(frozen=True)
class Verdict:
    """One item's answer. `score` is None when a generative model chose (it gives no score)."""

    label: str
    score: float | None = None
    #: the most similar label (equals `label` unless the item is `unsure`) and the next one
    best: str = ""
    runner_up: str = ""
    margin: float | None = None
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outcome:
    verdicts: list[Verdict]
    provider: str
    model: str
    latency_ms: float
    tokens: int
    #: non-zero only when `[local] allow_cloud` let a paid provider classify
    cost_usd: float = 0.0


def make_labels(
    labels: Sequence[str] | dict[str, str], examples: dict[str, list[str]] | None = None
) -> list[LabelSpec]:
    """Check and normalise the tool's label arguments; bad ones raise `InvalidRequest`."""
    pairs = list(labels.items()) if isinstance(labels, dict) else [(n, "") for n in labels]
    specs: dict[str, LabelSpec] = {}
    for raw_name, description in pairs:
        name = raw_name.strip()
        if not name:
            raise InvalidRequest("labels: a label name is empty.")
        if name.casefold() == UNSURE:
            raise InvalidRequest(f"labels: {UNSURE!r} is reserved for items no label fits.")
        specs[name] = LabelSpec(name, description.strip())
    if not 2 <= len(specs) <= MAX_LABELS:
        raise InvalidRequest(f"labels: give 2 to {MAX_LABELS} distinct labels.")
    for name, given in (examples or {}).items():
        if name not in specs:
            raise InvalidRequest(f"examples: {name!r} is not one of the labels.")
        cleaned = tuple(e.strip() for e in given if e.strip())
        specs[name] = replace(specs[name], examples=cleaned)
    return list(specs.values())


# -- the embedding method ------------------------------------------------------------------------


def prototypes(
    embed: Callable[[list[str]], Embedded], labels: Sequence[LabelSpec]
) -> tuple[npt.NDArray[np.float32], int]:
    """One unit vector per label: the mean of its description's and examples' embeddings."""
    import numpy as np

    texts = [text for label in labels for text in label.texts()]
    embedded = embed(texts)
    rows, start = [], 0
    for label in labels:
        count = len(label.texts())
        mean = embedded.vectors[start : start + count].mean(axis=0)
        rows.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
        start += count
    return np.stack(rows).astype(np.float32), embedded.tokens


def decide(
    similarity: npt.NDArray[np.float32],
    labels: Sequence[LabelSpec],
    *,
    margin: float = MARGIN,
    min_score: float = MIN_SCORE,
    multi: bool = False,
) -> list[Verdict]:
    """Best label per row of item-by-label cosine similarities; `unsure` under the margin."""
    names = [label.name for label in labels]
    verdicts = []
    for row in similarity.tolist():
        ranked = sorted(range(len(row)), key=lambda j: row[j], reverse=True)
        best, second = ranked[0], ranked[1]
        gap = row[best] - row[second]
        chosen: tuple[str, ...] = ()
        if multi:
            chosen = tuple(
                names[j] for j in ranked if row[best] - row[j] <= MULTI_GAP and row[j] >= min_score
            )
        doubtful = (gap < margin and not multi) or row[best] < min_score
        label = UNSURE if doubtful else names[best]
        verdicts.append(
            Verdict(
                label,
                score=round(row[best], 3),
                best=names[best],
                runner_up=names[second],
                margin=round(gap, 3),
                labels=chosen,
            )
        )
    return verdicts


def classify_embedded(
    embed: Callable[[list[str]], Embedded],
    items: Sequence[str],
    labels: Sequence[LabelSpec],
    *,
    margin: float = MARGIN,
    min_score: float = MIN_SCORE,
    multi: bool = False,
) -> tuple[list[Verdict], int]:
    """Blocking: the verdicts and the tokens read. Run it in a worker thread."""
    protos, label_tokens = prototypes(embed, labels)
    embedded = embed(list(items))
    similarity = embedded.vectors @ protos.T
    verdicts = decide(similarity, labels, margin=margin, min_score=min_score, multi=multi)
    return verdicts, label_tokens + embedded.tokens


# -- orchestration -------------------------------------------------------------------------------


def local_candidates(dispatcher: Dispatcher, tool: str, provider: str = "") -> list[ProviderConfig]:
    """The tool's chain, keeping only `local` trust unless `[local] allow_cloud` opts in."""
    chain = dispatcher.candidates(Packet(tool=tool, task=tool, provider=provider or None))
    if dispatcher.settings.local.allow_cloud:
        return chain
    local = [p for p in chain if p.trust == "local"]
    if provider and not local:
        raise InvalidRequest(
            f"provider: {provider} is not local ({chain[0].trust}); local tools keep data on "
            "this machine.",
            hint="To allow it, set `[local] allow_cloud = true` in config.toml.",
        )
    return local


async def classify(
    dispatcher: Dispatcher,
    items: Sequence[str],
    labels: Sequence[LabelSpec],
    *,
    multi: bool = False,
    provider: str = "",
    progress: Progress | None = None,
) -> Outcome:
    """Classify with the first usable provider of the chain; each failure says why and moves on."""
    reasons: list[str] = []
    for candidate in local_candidates(dispatcher, TOOL, provider):
        _, unavailable = await dispatcher.availability(candidate)
        if unavailable:
            reasons.append(unavailable)
            continue
        try:
            if candidate.kind == "embedded":
                return await _run_embedded(dispatcher, candidate, items, labels, multi, progress)
            return await _run_generative(dispatcher, candidate, items, labels, multi, progress)
        except ProviderError as exc:
            reasons.append(str(exc))
        except NoProviderLeft as exc:
            reasons.extend(exc.reasons)
    if not reasons:
        reasons.append("no local provider in the local_classify chain")
    raise NoProviderLeft(TOOL, reasons)


async def _run_embedded(
    dispatcher: Dispatcher,
    provider: ProviderConfig,
    items: Sequence[str],
    labels: Sequence[LabelSpec],
    multi: bool,
    progress: Progress | None,
) -> Outcome:
    """In chunks, so a long batch reports progress (Claude Code's idle timeout) and can be
    cancelled between chunks; one ledger row for the whole batch."""
    from offload_mcp.backends.embedded import shared_model

    model = shared_model(provider.keep_alive_s)
    started = time.monotonic()
    outcome = "error"
    verdicts: list[Verdict] = []
    tokens = 0
    try:
        protos, tokens = await anyio.to_thread.run_sync(prototypes, model.embed, labels)
        for start in range(0, len(items), EMBED_CHUNK):
            chunk = list(items[start : start + EMBED_CHUNK])
            embedded = await anyio.to_thread.run_sync(model.embed, chunk)
            verdicts += decide(embedded.vectors @ protos.T, labels, multi=multi)
            tokens += embedded.tokens
            if progress is not None and len(items) > EMBED_CHUNK:
                await progress(f"{len(verdicts)}/{len(items)} classified")
        outcome = "ok"
    except ProviderError as exc:
        outcome = exc.kind
        raise
    finally:
        latency_ms = (time.monotonic() - started) * 1000
        with anyio.CancelScope(shield=True):
            await dispatcher.ledger_call(
                dispatcher.ledger.record,
                CallRecord(
                    ts=dispatcher.clock(),
                    tool=TOOL,
                    provider=provider.name,
                    model=provider.model,
                    outcome=outcome,
                    input_tokens=tokens,
                    latency_ms=latency_ms,
                ),
            )
    return Outcome(verdicts, provider.name, provider.model, latency_ms, tokens)


def _generative_contract(labels: Sequence[LabelSpec], multi: bool) -> OutputContract:
    names = [label.name for label in labels]
    if not multi:
        return make_contract(labels=[*names, UNSURE])
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "labels": {"type": "array", "items": {"enum": names}, "minItems": 1},
        },
        "required": ["labels"],
    }
    return make_contract(schema=schema)


def _generative_task(labels: Sequence[LabelSpec], multi: bool) -> str:
    lines = ["Classify the input text. Labels:"]
    for label in labels:
        lines.append(f"- {label.name}" + (f": {label.description}" if label.description else ""))
        lines.extend(f'  example: "{example}"' for example in label.examples)
    if multi:
        lines.append("Give every label that applies.")
    else:
        lines.append(f"Answer {UNSURE!r} when no label clearly fits.")
    return "\n".join(lines)


async def _run_generative(
    dispatcher: Dispatcher,
    provider: ProviderConfig,
    items: Sequence[str],
    labels: Sequence[LabelSpec],
    multi: bool,
    progress: Progress | None,
) -> Outcome:
    """One dispatch packet per item, forced to this provider, so quota and ledger apply."""
    limits = dispatcher.settings.limits
    base = Packet(
        tool=TOOL,
        task=_generative_task(labels, multi),
        contract=_generative_contract(labels, multi),
        max_output_tokens=128,
        timeout_s=limits.timeout_s,
        provider=provider.name,
    )
    verdicts: list[Verdict | None] = [None] * len(items)
    usage, cost = [0], [0.0]
    started = time.monotonic()
    limiter = anyio.CapacityLimiter(GENERATIVE_CONCURRENCY)
    model = [provider.model]

    failed: list[ProviderError | NoProviderLeft] = []

    async def one(index: int, scope: anyio.CancelScope) -> None:
        try:
            async with limiter:
                result = await dispatcher.run(replace(base, text=items[index]))
        except (ProviderError, NoProviderLeft) as exc:
            failed.append(exc)  # the whole batch moves to the next provider
            scope.cancel()
            return
        usage[0] += result.usage.total
        cost[0] += result.cost_usd
        model[0] = result.model
        if multi:
            chosen = tuple(result.data["labels"])
            verdicts[index] = Verdict(chosen[0], labels=chosen)
        else:
            verdicts[index] = Verdict(result.text)
        done = sum(v is not None for v in verdicts)
        if progress is not None and done % 10 == 0:
            await progress(f"{done}/{len(items)} classified by {provider.name}")

    async with anyio.create_task_group() as group:
        for index in range(len(items)):
            group.start_soon(one, index, group.cancel_scope)
    if failed:
        raise failed[0]
    latency_ms = (time.monotonic() - started) * 1000
    final = [v for v in verdicts if v is not None]
    return Outcome(final, provider.name, model[0], latency_ms, usage[0], cost[0])


async def run_local(dispatcher: Dispatcher, packet: Packet, progress: Progress | None) -> Result:
    """A generative local packet: each local provider of the chain in turn, never a cloud one
    unless `[local] allow_cloud`; the embedded model is skipped (it cannot write)."""
    reasons: list[str] = []
    for candidate in local_candidates(dispatcher, packet.tool, packet.provider or ""):
        if candidate.kind == "embedded":
            continue
        try:
            return await dispatcher.run(replace(packet, provider=candidate.name), progress)
        except NoProviderLeft as exc:
            reasons.extend(exc.reasons)
    lines = "\n".join(f"- {reason}" for reason in reasons) or "- the chain has no local model"
    raise OffloadError(
        f"{packet.tool} needs a generative local model and none answered:\n{lines}",
        hint="Start Ollama (`ollama serve`, then `ollama pull qwen2.5:3b`), or run a local "
        f"OpenAI-compatible server (llama.cpp, LM Studio) and list it in chains.{packet.tool}.",
    )
