"""Reversible redaction: values become typed placeholders and come back in the answer.

The mapping lives in one `Redactor` for one packet, in memory only: it is never logged,
stored or cached, so the provider sees `[[SECRET_1]]` and Claude sees the original.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, TypeVar

from offload_mcp.privacy.findings import Finding

T = TypeVar("T")

_LABELS = {
    "email": "EMAIL",
    "phone": "PHONE",
    "ssn": "SSN",
    "payment_card": "CARD",
    "iban": "IBAN",
    "ip_address": "IP",
    "street_address": "ADDRESS",
    "address": "ADDRESS",
    "date_of_birth": "DOB",
    "patient_name": "NAME",
    "medical_record_number": "MRN",
    "mrn": "MRN",
}
_PLACEHOLDER = re.compile(r"\[\[[A-Z]+_\d+\]\]")
# Redact the most dangerous reading of a value that two rules disagree on.
_RANK = {"secret": 0, "phi": 1, "pii": 2}


def label(finding: Finding) -> str:
    """The placeholder type: every secret is a SECRET; personal data keeps its kind."""
    if finding.category == "secret":
        return "SECRET"
    return _LABELS.get(finding.kind, finding.kind.upper().replace("-", "_"))


class Redactor:
    """Placeholders for one packet: the same value always gets the same placeholder."""

    def __init__(self) -> None:
        self._by_value: dict[tuple[str, str], str] = {}
        self._by_placeholder: dict[str, str] = {}

    def placeholder(self, value: str, kind_label: str) -> str:
        """The placeholder for `value`, allocating the next number on first sight."""
        key = (kind_label, value)
        found = self._by_value.get(key)
        if found is None:
            found = f"[[{kind_label}_{len(self._by_placeholder) + 1}]]"
            self._by_value[key] = found
            self._by_placeholder[found] = value
        return found

    def redact(self, text: str, findings: Iterable[Finding]) -> str:
        """`text` with every finding's span replaced; overlapping spans become one."""
        spans = _union(findings)
        out: list[str] = []
        last = 0
        for start, end, kind_label in spans:
            out.append(text[last:start])
            out.append(self.placeholder(text[start:end], kind_label))
            last = end
        out.append(text[last:])
        return "".join(out)

    def restore(self, answer: T) -> T:
        """Put values back into a string or any JSON-like structure of strings."""
        return self._restore(answer)  # type: ignore[no-any-return]

    def _restore(self, value: Any) -> Any:
        if isinstance(value, str):
            if "[[" not in value:
                return value
            return _PLACEHOLDER.sub(lambda m: self._by_placeholder.get(m.group(), m.group()), value)
        if isinstance(value, list):
            return [self._restore(item) for item in value]
        if isinstance(value, tuple):
            return tuple(self._restore(item) for item in value)
        if isinstance(value, dict):
            return {self._restore(k): self._restore(v) for k, v in value.items()}
        return value

    def __len__(self) -> int:
        return len(self._by_placeholder)

    def __repr__(self) -> str:  # never show the values
        return f"Redactor({len(self)} placeholders)"


def _union(findings: Iterable[Finding]) -> list[tuple[int, int, str]]:
    """Overlapping spans merged; the merged span takes the most dangerous finding's label."""
    merged: list[tuple[int, int, Finding]] = []
    for finding in sorted(findings, key=lambda f: (f.start, -f.end)):
        if merged and finding.start < merged[-1][1]:
            start, end, best = merged[-1]
            if _RANK[finding.category] < _RANK[best.category]:
                best = finding
            merged[-1] = (start, max(end, finding.end), best)
        else:
            merged.append((finding.start, finding.end, finding))
    return [(start, end, label(best)) for start, end, best in merged]
