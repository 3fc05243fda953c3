"""What a detector reports: a kind, a category and the character span of the whole value."""

from __future__ import annotations

from typing import Literal, NamedTuple

Category = Literal["secret", "pii", "phi"]
CATEGORIES: tuple[Category, ...] = ("secret", "pii", "phi")


class Finding(NamedTuple):
    """One sensitive value. `start:end` covers the whole value in the scanned text.

    A named tuple, not a frozen dataclass: a dense packet yields ~600 findings, and a frozen
    dataclass's `__init__` (one `object.__setattr__` per field) cost 0.4 ms of them.
    """

    kind: str
    category: Category
    start: int
    end: int
    confidence: float = 0.9

    def shifted(self, start: int, end: int) -> Finding:
        """The same finding moved to another span (a decoded view mapped back)."""
        return Finding(self.kind, self.category, start, end, self.confidence)


def merge(findings: list[Finding]) -> list[Finding]:
    """Sorted findings without duplicates or values nested in a same-category finding.

    Two rules often see one value (a keyword assignment holding a GitHub token): the most
    specific report wins when spans are equal, the widest one when a span holds another.
    """
    ordered = sorted(findings, key=lambda f: (f.start, -f.end, -f.confidence))
    kept: list[Finding] = []
    widest: dict[str, int] = {}
    for finding in ordered:
        if widest.get(finding.category, -1) >= finding.end:
            continue
        kept.append(finding)
        widest[finding.category] = finding.end
    return kept
