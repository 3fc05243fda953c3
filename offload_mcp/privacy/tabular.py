"""Personal fields known by their column or key name: CSV headers, SQL inserts, `key: value`.

A bare `4158675309` or `1984-03-12` is only personal data because of the column it sits in;
the pattern rules cannot see that, so this reads the header and flags the column.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from offload_mcp.privacy.checks import is_placeholder
from offload_mcp.privacy.engine import SPACE, compiled, finditer, spans
from offload_mcp.privacy.findings import Category, Finding

# column name -> (kind, what its value must look like)
_COLUMNS: dict[str, tuple[str, re.Pattern[str]]] = {}
_DIGITS = re.compile(r"\+?[\d ().-]{7,20}")
_DATE = re.compile(
    r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\d{8}|\w+ \d{1,2},? \d{4}"
)
_ANY = re.compile(r"[^\s].{3,}")
for names, kind, shape in (
    ("phone phone_number phonenumber mobile cell telephone tel contact_phone", "phone", _DIGITS),
    (
        "ssn social_security social_security_number ssn_number",
        "ssn",
        re.compile(r"\d{3}-?\d{2}-?\d{4}"),
    ),
    ("dob date_of_birth birth_date birthdate birthday", "date_of_birth", _DATE),
    ("card card_number cc_number credit_card creditcard pan", "payment_card", _DIGITS),
    ("address street street_address address1 address_line1 home_address", "street_address", _ANY),
    ("mrn medical_record_number patient_id patientid chart_number", "mrn", re.compile(r"\w{4,}")),
):
    for name in names.split():
        _COLUMNS[name] = (kind, shape)

_PHI_KINDS = frozenset({"mrn"})
_HEADER = r"(?m)^[ \t]*\"?[A-Za-z_][\w ]*\"?(?:[ \t]*[,;\t|][ \t]*\"?[A-Za-z_][\w ]*\"?)+[ \t]*\r?$"
_INSERT = re.compile(r"(?is)insert\s+into\s+[\w.\"`\[\]]+\s*\(([^)]*)\)\s*values\s*")
# Where an `_INSERT` may start (`?`: the dotless i and long s Python's case folding allows).
_INSERT_START = rf"(?i)[i?]n[s?]ert{SPACE}+[i?]nto"
_ROW = re.compile(r"\(((?:'(?:[^']|'')*'|[^()'])*)\)")
_CELL = re.compile(r"\s*('(?:[^']|'')*'|[^,]*)\s*(?:,|$)")
_FIELD = (
    r"(?i)\b(phone(?:_?number)?|mobile|cell|ssn|social_security(?:_number)?|card_number|"
    r"cc_number|mrn|medical_record_number)[\"']?\s*[:=]\s*[\"']?([+\d][\d ().-]{6,20}\d)"
)


def _normal(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().strip("\"'`[]").lower()).strip("_")


def _finding(kind: str, start: int, end: int) -> Finding:
    category: Category = "phi" if kind in _PHI_KINDS else "pii"
    return Finding(kind, category, start, end, 0.75)


def _cell_ok(value: str, shape: re.Pattern[str]) -> bool:
    if not value or is_placeholder(value) or not shape.fullmatch(value):
        return False
    return shape is not _DIGITS or _phone_or_card(value)


def _phone_or_card(value: str) -> bool:
    from offload_mcp.privacy.checks import luhn
    from offload_mcp.privacy.pii import valid_phone
    from offload_mcp.privacy.tables import TEST_CARDS

    digits = re.sub(r"\D", "", value)
    card = len(digits) >= 13 and luhn(digits) and digits not in TEST_CARDS
    return valid_phone(value) or card


def _csv(text: str, data: bytes) -> Iterator[Finding]:
    for header in spans(compiled(_HEADER), data):
        header_end = header[0][1]
        line = text[header[0][0] : header_end].strip()
        sep = max(",;\t|", key=line.count)
        columns = [_normal(c) for c in line.split(sep)]
        wanted = {i: _COLUMNS[c] for i, c in enumerate(columns) if c in _COLUMNS}
        if not wanted:
            continue
        position = header_end + 1
        while position < len(text):
            end = text.find("\n", position)
            end = len(text) if end < 0 else end
            cells = text[position:end].split(sep)
            if len(cells) != len(columns):
                break
            offset = position
            for index, cell in enumerate(cells):
                value = cell.strip().strip('"')
                if index in wanted and _cell_ok(value, wanted[index][1]):
                    start = text.index(value, offset)
                    yield _finding(wanted[index][0], start, start + len(value))
                offset += len(cell) + 1
            position = end + 1


def _sql(text: str, data: bytes) -> Iterator[Finding]:
    for insert in finditer(_INSERT, _INSERT_START, text, data):
        columns = [_normal(c) for c in insert.group(1).split(",")]
        wanted = {i: _COLUMNS[c] for i, c in enumerate(columns) if c in _COLUMNS}
        position = insert.end()
        while wanted and (row := _ROW.match(text, position)) is not None:
            cells = [(m.group(1), m.start(1)) for m in _CELL.finditer(row.group(1)) if m.group()]
            for index, (cell, offset) in enumerate(cells):
                value = cell.strip().strip("'")
                if index in wanted and _cell_ok(value, wanted[index][1]):
                    start = row.start(1) + offset + cell.index(value)
                    yield _finding(wanted[index][0], start, start + len(value))
            position = row.end()
            while position < len(text) and text[position] in ", \n\t\r":
                position += 1


def _fields(text: str, data: bytes) -> Iterator[Finding]:
    for match in spans(compiled(_FIELD), data):
        name = _normal(text[match[1][0] : match[1][1]])
        kind, shape = _COLUMNS.get(name, ("phone", _DIGITS))
        start, end = match[2]
        if _cell_ok(text[start:end], shape):
            yield _finding(kind, start, end)


def tabular_findings(text: str, data: bytes) -> Iterator[Finding]:
    """Values in personal columns of CSV/TSV tables, SQL inserts and key-value fields."""
    yield from _csv(text, data)
    if "insert" in text or "INSERT" in text:
        yield from _sql(text, data)
    yield from _fields(text, data)
