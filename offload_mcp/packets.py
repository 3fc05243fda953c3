"""The shared vocabulary of the dispatch path: packets in, completions and results out."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

OutputKind = Literal["text", "labels", "json"]


@dataclass(frozen=True)
class OutputContract:
    """What a valid answer looks like: free text, one of a label set, or JSON matching a schema."""

    kind: OutputKind = "text"
    labels: tuple[str, ...] = ()
    schema: dict[str, Any] | None = None


@dataclass(frozen=True)
class InputFile:
    """A file the packet names, already read (inside the allowed roots, under the size cap)."""

    path: str
    text: str


@dataclass(frozen=True)
class Packet:
    """One bounded, self-contained unit of work: everything the backend may see is in here."""

    tool: str
    task: str
    text: str = ""
    files: tuple[str, ...] = ()
    contract: OutputContract = field(default_factory=OutputContract)
    max_output_tokens: int = 2048
    timeout_s: float = 120.0
    provider: str | None = None
    template: str = "offload"
    #: answer an identical earlier packet from the cache
    cache: bool = True
    #: seconds to wait for a capped or cooling provider's reset before giving up
    wait_s: float = 0.0


@dataclass(frozen=True)
class Message:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class CompletionRequest:
    """What a backend receives: rendered messages and limits, never config or keys lookups."""

    messages: tuple[Message, ...]
    max_output_tokens: int
    timeout_s: float
    json_schema: dict[str, Any] | None = None


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class Source:
    """A web page a grounded answer rests on (Gemini's URIs are Google redirect links)."""

    title: str
    url: str


@dataclass(frozen=True)
class Grounding:
    """Where a grounded answer came from: numbered sources, the searches, and what each cites.

    `cites` pairs a cited passage of the answer with the 1-based numbers of its sources, so
    markers can be placed after the passage wherever it ends up (privacy restoration may move
    it). It travels beside the text (`Completion.grounding`, `Result.grounding`), never inside
    it: a model cannot forge sources by writing them, and restoring a redacted value cannot
    break it. The cache stores it as JSON (`to_json`) next to the answer.
    """

    sources: tuple[Source, ...] = ()
    queries: tuple[str, ...] = ()
    cites: tuple[tuple[str, tuple[int, ...]], ...] = ()

    def mapped(self, fn: Callable[[str], str]) -> Grounding:
        """The same grounding with `fn` applied to every string (privacy restoration)."""
        return Grounding(
            tuple(Source(fn(s.title), fn(s.url)) for s in self.sources),
            tuple(fn(q) for q in self.queries),
            tuple((fn(passage), numbers) for passage, numbers in self.cites),
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "sources": [[s.title, s.url] for s in self.sources],
                "queries": list(self.queries),
                "cites": [[passage, list(numbers)] for passage, numbers in self.cites],
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str | None) -> Grounding | None:
        """The grounding `to_json` wrote; None for None or anything unreadable."""
        if not text:
            return None
        try:
            data = json.loads(text)
            sources = tuple(Source(str(t), str(u)) for t, u in data["sources"])
            cites = tuple((str(p), tuple(int(n) for n in ns)) for p, ns in data["cites"])
            queries = tuple(str(q) for q in data["queries"])
        except (ValueError, KeyError, TypeError):
            return None
        return cls(sources, queries, cites)


@dataclass(frozen=True)
class Completion:
    """A backend's answer as it came back, before validation."""

    text: str
    usage: Usage
    model: str
    #: USD as reported by the provider itself (OpenRouter does), else None
    reported_cost_usd: float | None = None
    #: seconds until the provider accepts requests again, when its rate-limit headers say
    #: this answer used up a window (remaining = 0)
    exhausted_for_s: float | None = None
    #: sources and searches of a grounded answer (Gemini with Google Search)
    grounding: Grounding | None = None


@dataclass(frozen=True)
class Result:
    """What dispatch hands back to the tool: the checked answer and how it was obtained."""

    text: str
    data: Any
    provider: str
    model: str
    usage: Usage
    cost_usd: float
    latency_ms: float
    attempts: int
    cached: bool = False
    grounding: Grounding | None = None
