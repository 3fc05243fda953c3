"""Recall per category (whole span covered) and false positives on clean developer packets."""

from __future__ import annotations

import functools
import sys
from collections import Counter

from offload_mcp.privacy import scan
from tests.privacy_corpus.generate import build

TARGETS = {"secret": 0.99, "pii": 0.97, "phi": 0.90}
MAX_FALSE_POSITIVE_RATE = 0.02


@functools.cache
def _results() -> tuple[dict[str, float], float, list[str]]:
    dirty, clean = build()
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
    recall = {c: hits[c] / total[c] for c in total}
    flagged = [p for p in clean if scan(p.text)]
    return recall, len(flagged) / len(clean), misses


def test_recall_per_category() -> None:
    recall, _, misses = _results()
    sys.stderr.write(f"recall { ({c: f'{r:.2%}' for c, r in recall.items()}) }\n")
    for category, target in TARGETS.items():
        assert recall[category] >= target, (category, recall[category], misses[:20])


def test_false_positive_rate_on_clean_packets() -> None:
    _, rate, _ = _results()
    sys.stderr.write(f"false-positive rate {rate:.2%}\n")
    assert rate <= MAX_FALSE_POSITIVE_RATE
