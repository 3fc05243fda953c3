"""Personal fields known by their column or key name: CSV headers, SQL inserts, `key: value`.

A bare `4158675309` or `1984-03-12` is only personal data because of the column it sits in;
the pattern rules cannot see that, so this reads the header and flags the column. A name
column is health data only in a table of patients (record numbers, diagnoses, lab results).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

from offload_mcp.privacy.checks import is_placeholder
from offload_mcp.privacy.engine import SPACE, compiled, finditer, spans
from offload_mcp.privacy.findings import Category, Finding
from offload_mcp.privacy.tables import words

# column name -> (kind, what its value must look like)
_COLUMNS: dict[str, tuple[str, re.Pattern[str]]] = {}
_DIGITS = re.compile(r"\+?[\d ().-]{7,20}")
_DATE = re.compile(
    r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\d{8}|\w+ \d{1,2},? \d{4}"
    r"|\d{1,2} \w+ \d{4}"
)
_ANY = re.compile(r"[^\s].{3,}")
_SECRET_COLUMN = ("secret_assignment", re.compile(r"\S{10,}"))
# A person's name as a cell holds it: `Jamal Weber`, `Holloway, Jamal`, `O'Neil`, `José`.
_PERSON = re.compile(
    r"[^\W\d_][^\W\d_'.-]*(?:['.-][^\W\d_]+)*\.?(?:,? [^\W\d_]+(?:['.-][^\W\d_]+)*\.?){0,4}"
)
for names, kind, shape in (
    ("phone phone_number phonenumber mobile cell telephone tel contact_phone", "phone", _DIGITS),
    (
        "ssn social_security social_security_number ssn_number",
        "ssn",
        re.compile(r"\d{3}-?\d{2}-?\d{4}"),
    ),
    ("dob date_of_birth birth_date birthdate birthday patient_dob", "date_of_birth", _DATE),
    ("card card_number cc_number credit_card creditcard pan", "payment_card", _DIGITS),
    ("address street street_address address1 address_line1 home_address", "street_address", _ANY),
    (
        "mrn medical_record_number medical_record mrn_number patient_id patientid patient_number "
        "chart_number",
        "mrn",
        re.compile(r"\w[\w-]{3,}"),
    ),
    (
        "patient_name patient pt_name patient_full_name patient_first patient_last "
        "patient_first_name patient_last_name patient_given_name patient_family_name "
        "first_name last_name firstname lastname fname lname middle_name full_name fullname "
        "given_name family_name surname name member_name subscriber_name insured_name "
        "beneficiary_name guarantor_name",
        "patient_name",
        _PERSON,
    ),
):
    for name in names.split():
        _COLUMNS[name] = (kind, shape)

# Words in column names that make a table clinical: a name in it is a patient's.
_CLINICAL_WORDS = words(
    "mrn icd icd9 icd10 diagnosis diagnoses dx medication medications meds drug rx prescription "
    "encounter admission admit discharge procedure cpt allergy allergies condition loinc snomed "
    "hba1c a1c vitals ward npi"
)
_LAB_WORDS = words("test result results units lab labs specimen flag")
_NOT_NAMES = words("test sample unknown none null n/a na anonymous redacted")
_HEADER = (
    r"(?m)^[ \t]*\|?[ \t]*\"?[A-Za-z_][\w ]*\"?(?:[ \t]*[,;\t|][ \t]*\"?[A-Za-z_][\w ]*\"?)+"
    r"[ \t]*\|?[ \t]*\r?$"
)
_RULE = re.compile(r"[ \t]*\|?[ \t:|+-]*-{3}[ \t:|+-]*\r?$", re.M)
_INSERT = re.compile(r"(?is)insert\s+into\s+[\w.\"`\[\]]+\s*\(([^)]*)\)\s*values\s*")
# Where an `_INSERT` may start (`?`: the dotless i and long s Python's case folding allows).
_INSERT_START = rf"(?i)[i?]n[s?]ert{SPACE}+[i?]nto"
_ROW = re.compile(r"\(((?:'(?:[^']|'')*'|[^()'])*)\)")
_CELL = re.compile(r"\s*('(?:[^']|'')*'|[^,]*)\s*(?:,|$)")
_FIELD = (
    r"(?i)\b(phone(?:_?number)?|mobile|cell|ssn|social_security(?:_number)?|card_number|"
    r"cc_number|mrn|medical_record_number)[\"']?\s*[:=]\s*[\"']?([+(\d][\d ().-]{6,20}\d)"
)


def _normal(name: str) -> str:
    """`Member DOB` -> `dob`: lower snake case, without the whose-prefix a column may carry."""
    name = re.sub(r"[^a-z0-9]+", "_", name.strip().strip("\"'`[]").lower()).strip("_")
    bare = _OWNER.sub("", name)
    return bare if bare in _COLUMNS and name not in _COLUMNS else name


_OWNER = re.compile(r"^(?:patient|member|subscriber|insured|customer|client|employee|user|pt)_")


def _finding(kind: str, start: int, end: int, clinical: bool = False) -> Finding:
    phi = kind in ("mrn", "patient_name") or (clinical and kind == "date_of_birth")
    category: Category = "phi" if phi else "secret" if kind == "secret_assignment" else "pii"
    return Finding(kind, category, start, end, 0.75)


def _cell_ok(value: str, shape: re.Pattern[str], kind: str = "") -> bool:
    if not value or is_placeholder(value) or not shape.fullmatch(value):
        return False
    if shape is _PERSON:
        return value[0].isupper() and value.split()[0].strip(",.").lower() not in _NOT_NAMES
    if kind == "ssn":
        from offload_mcp.privacy.pii import valid_ssn

        return valid_ssn(value)
    if kind == "secret_assignment":
        from offload_mcp.privacy.assignments import looks_secret

        return looks_secret(value, True, literal=True)
    if shape is not _DIGITS:
        return True
    return _phone_or_card(value, kind)


def _phone_or_card(value: str, kind: str) -> bool:
    """A valid phone or a card number; in a phone column, a national notation too."""
    from offload_mcp.privacy.checks import luhn
    from offload_mcp.privacy.pii import national_phone, valid_phone
    from offload_mcp.privacy.tables import TEST_CARDS

    digits = re.sub(r"\D", "", value)
    card = len(digits) >= 13 and luhn(digits) and digits not in TEST_CARDS
    return valid_phone(value) or card or (kind == "phone" and national_phone(value))


@functools.cache
def _cell_pattern(sep: str) -> re.Pattern[str]:
    """A cell up to `sep`: quoted (`"Holloway, Jamal"`, `""` escapes a quote) or bare."""
    blank = "[ ]*" if sep == "\t" else "[ \t]*"
    s = re.escape(sep)
    return re.compile(rf'{blank}(?:"((?:[^"]|"")*)"{blank}(?:{s}|$)|([^{s}]*)(?:{s}|$))')


def cells(line: str, sep: str) -> list[tuple[int, int]]:
    """Each cell's value span in `line` (quotes and surrounding blanks left out)."""
    pattern = _cell_pattern(sep)
    found: list[tuple[int, int]] = []
    position = 0
    while True:
        match = pattern.match(line, position)
        if match is None:  # never: a bare cell matches anything up to `sep`
            return found
        group = 1 if match.group(1) is not None else 2
        start, end = match.span(group)
        while start < end and line[start] in " \t":
            start += 1
        while end > start and line[end - 1] in " \t":
            end -= 1
        found.append((start, end))
        if match.end() == match.end(group) or line[match.end() - 1] != sep:
            return found
        position = match.end()


def _clinical_table(columns: list[str], text: str, data: bytes) -> bool:
    """A table of patients: record numbers, clinical columns or clinical text around it."""
    words = {word for column in columns for word in column.split("_")}
    if words & _CLINICAL_WORDS or any(_COLUMNS.get(c, ("",))[0] == "mrn" for c in columns):
        return True
    if len(words & _LAB_WORDS) >= 2:
        return True
    from offload_mcp.privacy.clinical import clinical_text

    return clinical_text(data)


def _wanted(
    columns: list[str], text: str, data: bytes
) -> tuple[dict[int, tuple[str, re.Pattern[str]]], bool]:
    """The personal columns by index, and whether the table is clinical (names count then)."""
    wanted = {i: _COLUMNS[c] for i, c in enumerate(columns) if c in _COLUMNS}
    wanted.update({i: _SECRET_COLUMN for i, c in enumerate(columns) if _secret_column(c)})
    if not wanted:
        return wanted, False
    clinical = _clinical_table(columns, text, data)
    if not clinical:
        wanted = {i: w for i, w in wanted.items() if w[0] != "patient_name"}
    return wanted, clinical


def _secret_column(name: str) -> bool:
    """A column whose name names a secret (`api_token`, `password`): its cells are secrets."""
    from offload_mcp.privacy.assignments import names_secret

    return name not in _COLUMNS and names_secret(name)


def _fixture(columns: list[str], values: list[str]) -> bool:
    """A row about a stand-in (`Test`, `John Doe`, born 1900-01-01): every value is made up."""
    from offload_mcp.privacy.fixtures import stand_in

    return any(
        stand_in(kind, values[index])
        for index, kind in _person_columns(tuple(columns))
        if index < len(values)
    )


@functools.lru_cache(maxsize=256)
def _person_columns(columns: tuple[str, ...]) -> tuple[tuple[int, str], ...]:
    """The name and birth-date columns, by index, that tell a fixture's row."""
    kinds = ((i, _COLUMNS.get(c, ("",))[0]) for i, c in enumerate(columns))
    return tuple((i, k) for i, k in kinds if k in ("patient_name", "date_of_birth"))


def _unpiped(line: str, start: int) -> tuple[str, int]:
    """A markdown row without its outer pipes, and where what is left starts."""
    stripped = line.rstrip(" \t\r")
    if stripped.lstrip(" \t").startswith("|"):
        start += line.index("|") + 1
        stripped = stripped[line.index("|") + 1 :]
        if stripped.endswith("|"):
            stripped = stripped[:-1]
        return stripped, start
    return line, start


_NAME_PART = re.compile(r"[^\W\d_][^\W\d_'.-]*(?: [^\W\d_][^\W\d_'.-]*)*")


def _joined_names(
    row: str,
    found: list[tuple[int, int]],
    columns: list[str],
    wanted: dict[int, tuple[str, re.Pattern[str]]],
) -> list[tuple[int, int]]:
    """Cells with an unquoted `LAST, FIRST` name (`4W,12A,SCHREIBER, ASTRID,133-34-582`) put
    back together: one cell too many, split after the name column's surname."""
    if len(found) != len(columns) + 1:
        return found
    for index, (kind, _) in wanted.items():
        if kind != "patient_name" or index + 1 >= len(found):
            continue
        (start, end), (second, stop) = found[index], found[index + 1]
        last, first = row[start:end], row[second:stop]
        if (
            row[end : end + 2] == ", "
            and _NAME_PART.fullmatch(last)
            and _NAME_PART.fullmatch(first)
        ):
            return [*found[:index], (start, stop), *found[index + 2 :]]
    return found


def _csv(text: str, data: bytes) -> Iterator[Finding]:
    for header in spans(compiled(_HEADER), data):
        header_end = header[0][1]
        line, _ = _unpiped(text[header[0][0] : header_end], 0)
        line = line.strip()
        sep = max(",;\t|", key=line.count)
        columns = [_normal(c) for c in line.split(sep)]
        wanted, clinical = _wanted(columns, text, data)
        if not wanted:
            continue
        position = header_end + 1
        rule = _RULE.match(text, position)
        if rule is not None and "|" in text[header[0][0] : header_end]:
            position = rule.end() + 1
        while position < len(text):
            end = text.find("\n", position)
            end = len(text) if end < 0 else end
            row, offset = _unpiped(text[position:end].rstrip("\r"), position)
            found = _joined_names(row, cells(row, sep), columns, wanted)
            if len(found) != len(columns):
                break
            values = [row[start:stop] for start, stop in found]
            if not _fixture(columns, values):
                for index, (start, stop) in enumerate(found):
                    if index in wanted and _cell_ok(values[index], *wanted[index][1::-1]):
                        yield _finding(wanted[index][0], offset + start, offset + stop, clinical)
            position = end + 1


_RECORD = re.compile(r"^-\[ RECORD \d+ \][-+]*\r?$", re.M)
_PAIR = re.compile(r"[ \t]*([A-Za-z_][\w ]*?)[ \t]*\|[ \t]?(.*?)[ \t]*\r?$", re.M)


def _expanded(text: str, data: bytes) -> Iterator[Finding]:
    """psql's expanded display (`\\x`): one `column | value` line per field, a record a block."""
    for record in _RECORD.finditer(text):
        pairs: list[re.Match[str]] = []
        position = record.end() + 1
        while (pair := _PAIR.match(text, position)) is not None:
            pairs.append(pair)
            position = pair.end() + 1
        columns = [_normal(pair.group(1)) for pair in pairs]
        wanted, clinical = _wanted(columns, text, data)
        if _fixture(columns, [pair.group(2) for pair in pairs]):
            continue
        for index, pair in enumerate(pairs):
            if index in wanted and _cell_ok(pair.group(2), wanted[index][1], wanted[index][0]):
                yield _finding(wanted[index][0], pair.start(2), pair.end(2), clinical)


def _sql(text: str, data: bytes) -> Iterator[Finding]:
    for insert in finditer(_INSERT, _INSERT_START, text, data):
        columns = [_normal(c) for c in insert.group(1).split(",")]
        wanted, clinical = _wanted(columns, text, data)
        position = insert.end()
        while wanted and (row := _ROW.match(text, position)) is not None:
            cells = [(m.group(1), m.start(1)) for m in _CELL.finditer(row.group(1)) if m.group()]
            if _fixture(columns, [cell.strip().strip("'") for cell, _ in cells]):
                cells = []
            for index, (cell, offset) in enumerate(cells):
                value = cell.strip().strip("'")
                if index in wanted and _cell_ok(value, wanted[index][1], wanted[index][0]):
                    start = row.start(1) + offset + cell.index(value)
                    yield _finding(wanted[index][0], start, start + len(value), clinical)
            position = row.end()
            while position < len(text) and text[position] in ", \n\t\r":
                position += 1


def _fields(text: str, data: bytes) -> Iterator[Finding]:
    for match in spans(compiled(_FIELD), data):
        name = _normal(text[match[1][0] : match[1][1]])
        kind, shape = _COLUMNS.get(name, ("phone", _DIGITS))
        start, end = match[2]
        if _cell_ok(text[start:end], shape, kind):
            yield _finding(kind, start, end)


def tabular_findings(text: str, data: bytes) -> Iterator[Finding]:
    """Values in personal columns of CSV/TSV tables, SQL inserts and key-value fields."""
    yield from _csv(text, data)
    if "-[ RECORD " in text:
        yield from _expanded(text, data)
    if "insert" in text or "INSERT" in text:
        yield from _sql(text, data)
    yield from _fields(text, data)
