"""Recall per category and false-positive rate of `scan` over a planted-value corpus.

A planted value counts as found only if one finding's span covers all of it (any category:
the gate acts on the finding's category, which the corpus tests check elsewhere); a clean
packet with any finding is a false positive.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from offload_mcp.privacy import scan

TARGETS = {"secret": 0.99, "pii": 0.97, "phi": 0.90}
MAX_FALSE_POSITIVE_RATE = 0.02


class Packet(Protocol):
    name: str
    text: str
    planted: tuple[tuple[int, int, str, str], ...]


@dataclass(frozen=True)
class Score:
    recall: dict[str, float]
    false_positive_rate: float
    misses: list[str]
    false_positives: list[str]


def score(dirty: Sequence[Packet], clean: Sequence[Packet]) -> Score:
    hits: Counter[str] = Counter()
    total: Counter[str] = Counter()
    misses: list[str] = []
    for packet in dirty:
        found = scan(packet.text)
        for start, end, category, kind in packet.planted:
            total[category] += 1
            if any(f.start <= start and f.end >= end for f in found):
                hits[category] += 1
            else:
                misses.append(f"{packet.name}/{kind}: {packet.text[start:end][:60]!r}")
    flagged = [
        f"{p.name}: {f.kind} {p.text[f.start : f.end][:60]!r}"
        for p in clean
        for f in scan(p.text)[:1]
    ]
    recall = {c: hits[c] / total[c] for c in total}
    return Score(recall, len(flagged) / len(clean), misses, flagged)
