"""The privacy gate: find secrets, personal and health data; allow, redact or block per provider.

    found = scan_packet(texts)                 # once per packet (the expensive part)
    for provider in chain:
        screened = found.screen(provider.trust, provider_overrides)   # cheap, per provider
        if screened.blocked: continue          # screened.reason names kinds, never values
        answer = screened.restore(call(screened.texts))

`screen(texts, trust)` does both in one call. Values never leave this package except in the
redacted texts' placeholders' mapping, held in memory by `restore`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from offload_mcp.privacy.findings import Category, Finding
from offload_mcp.privacy.policy import Action, actions, decide
from offload_mcp.privacy.redaction import Redactor
from offload_mcp.privacy.warmup import warm, warmed

T = TypeVar("T")

__all__ = [
    "Action",
    "Category",
    "Finding",
    "PacketScan",
    "Redactor",
    "Screened",
    "decide",
    "scan",
    "scan_packet",
    "screen",
    "warm",
    "warmed",
]


def scan(text: str) -> list[Finding]:
    """Every sensitive value in `text`, sorted, spans covering whole values (pure, no I/O)."""
    from offload_mcp.privacy.detectors import scan as _scan

    return _scan(text)


def _identity(value: T) -> T:
    return value


@dataclass(frozen=True)
class Screened:
    """One provider's view of a packet: the texts it may receive, or why it may not."""

    blocked: bool
    texts: tuple[str, ...]
    counts: dict[str, int]  # every finding, by kind
    redacted: dict[str, int] = field(default_factory=dict)  # redacted findings, by kind
    blocked_kinds: tuple[str, ...] = ()
    restore: Callable[[Any], Any] = _identity

    @property
    def reason(self) -> str:
        """Why this provider may not see the packet: kinds and counts, never values."""
        if not self.blocked:
            return ""
        kinds = ", ".join(f"{kind} x{self.counts[kind]}" for kind in self.blocked_kinds)
        return f"packet holds data this provider's privacy policy blocks ({kinds})"

    def summary(self) -> str:
        """Kinds and counts for the ledger and logs: `blocked:phi` or `redacted:email=2,...`."""
        if self.blocked:
            return "blocked:" + ",".join(self.blocked_kinds)
        if self.redacted:
            return "redacted:" + ",".join(f"{k}={n}" for k, n in sorted(self.redacted.items()))
        return "clean" if not self.counts else "allowed:" + ",".join(sorted(self.counts))


@dataclass(frozen=True)
class PacketScan:
    """A packet's texts and their findings; `screen` it per provider without rescanning."""

    texts: tuple[str, ...]
    findings: tuple[tuple[Finding, ...], ...]

    def counts(self) -> dict[str, int]:
        """Findings by kind over the whole packet."""
        return dict(Counter(f.kind for per_text in self.findings for f in per_text))

    def categories(self) -> set[Category]:
        """The categories present in the packet."""
        return {f.category for per_text in self.findings for f in per_text}

    def screen(self, trust: str, overrides: Mapping[str, str] | None = None) -> Screened:
        """Apply a trust level's policy: block, or redact what it says and allow the rest."""
        counts = self.counts()
        if not counts:
            return Screened(False, self.texts, counts)
        policy = actions(trust, overrides)
        blocked = sorted(
            {f.kind for per in self.findings for f in per if policy[f.category] == "block"}
        )
        if blocked:
            return Screened(True, (), counts, blocked_kinds=tuple(blocked))
        redactor = Redactor()
        texts: list[str] = []
        redacted: Counter[str] = Counter()
        for text, per_text in zip(self.texts, self.findings, strict=True):
            chosen = [f for f in per_text if policy[f.category] == "redact"]
            redacted.update(f.kind for f in chosen)
            texts.append(redactor.redact(text, chosen) if chosen else text)
        restore = redactor.restore if len(redactor) else _identity
        return Screened(False, tuple(texts), counts, dict(redacted), (), restore)


def scan_packet(texts: Sequence[str]) -> PacketScan:
    """Scan every text of a packet once (messages, file contents)."""
    return PacketScan(tuple(texts), tuple(tuple(scan(text)) for text in texts))


def screen(
    texts: Sequence[str], trust: str, overrides: Mapping[str, str] | None = None
) -> Screened:
    """Scan and screen in one call, for a single provider."""
    return scan_packet(texts).screen(trust, overrides)
