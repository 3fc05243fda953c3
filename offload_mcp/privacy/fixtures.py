"""Records that are fixtures, not people: stand-in names, sentinel birth dates, templates.

Tests, docs and the standards' own examples (`Test Patient`, `John Doe`, HL7's `EVERYMAN^ADAM`,
FHIR's `Chalmers, Peter`) fill records with made-up people; flagging them blocks useful
work. A record naming one of them is dropped whole, since its id and birth date are made up
with it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from offload_mcp.privacy.checks import is_placeholder
from offload_mcp.privacy.findings import Finding
from offload_mcp.privacy.tables import words

STAND_INS = words(
    "Doe Test Patient Sample Example Demo Dummy Fake Mustermann Everyman Everywoman Chalmers"
)
SENTINEL_DATES = words("19000101 19700101 00010101 11111111 99991231")
_ISO = re.compile(r"(\d{4})[-/.]?(\d{2})[-/.]?(\d{2})|(\d{1,2})/(\d{1,2})/(\d{4})")
_STAND_IN = re.compile(r"(?i)(?<![^\W\d_])(?:" + "|".join(STAND_INS) + r")(?![^\W\d_])")
_MASK = re.compile(r"(?i)x{2,}|[x#*?_.-]{2,}|n/a|unknown|tbd")


def placeholder(value: str) -> bool:
    """A template or mask rather than a value: `<given>`, `{{family}}`, `xxx`, `<mrn>^^^H^MR`."""
    # An HL7 value's first component is the value; the rest qualify it.
    first = _COMPONENT.search(value)
    if first is None:
        return True
    part = first.group().strip()
    return is_placeholder(part) or _MASK.fullmatch(part) is not None


_COMPONENT = re.compile(r"[^^~&]*[^^~&\s][^^~&]*")


def _date(value: str) -> str | None:
    """`YYYYMMDD` for an ISO, HL7 (`19610615[1230]`) or US (`06/15/1961`) date, else None."""
    match = _ISO.match(value.strip())
    if match is None:
        return None
    if match.group(1):
        return match.group(1) + match.group(2) + match.group(3)
    return match.group(6) + match.group(4).zfill(2) + match.group(5).zfill(2)


def _real_date(value: str, iso: str | None) -> bool:
    """A possible month and day, or some other notation with digits (not `YYYY-MM-DD`)."""
    if iso is not None:
        return 1 <= int(iso[4:6]) <= 12 and 1 <= int(iso[6:]) <= 31
    return any(c.isdigit() for c in value) and not placeholder(value)


def real_birth_date(value: str) -> bool:
    """A date in a known notation, possible and not a sentinel."""
    iso = _date(value)
    return iso is not None and _real_date(value, iso) and iso not in SENTINEL_DATES


def stand_in(kind: str, value: str) -> bool:
    """A stand-in's name (any of its parts) or a sentinel birth date."""
    if kind == "date_of_birth":
        return _date(value) in SENTINEL_DATES
    return kind == "patient_name" and _STAND_IN.search(value) is not None


def fixture(values: Iterable[tuple[str, str]]) -> bool:
    """Whether a record's `(kind, value)` pairs name a stand-in or a sentinel birth date."""
    return any(stand_in(kind, value) for kind, value in values)


def people(text: str, found: Iterable[Finding]) -> Iterator[Finding]:
    """One record's findings: none if it is a fixture's, else all but templates and non-dates."""
    kept: list[Finding] = []
    for finding in found:
        value = text[finding.start : finding.end]
        if finding.kind == "date_of_birth":
            iso = _date(value)
            if iso in SENTINEL_DATES:
                return
            if not _real_date(value, iso):
                continue
        elif stand_in(finding.kind, value):
            return
        elif placeholder(value):
            continue
        kept.append(finding)
    yield from kept


_FAKE_WORD = re.compile(r"(?i)test|demo|sample|example|fake|dummy|placeholder")


def fake_id(value: str) -> bool:
    """`TEST-0001`, `DEMO42`: a stand-in word and a counter, no real record number."""
    return bool(_FAKE_WORD.search(value)) and sum(c.isdigit() for c in value) <= 6
