"""Health data: identifiers tied to clinical content (notes, HL7 v2, FHIR, claims).

A name is not health data; a name next to a diagnosis is. So names and dates are flagged only
inside a clinical context, while record numbers announce themselves (`MRN:`). HL7 PID and
FHIR Patient fields are flagged by position, since their layout says what they hold.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from offload_mcp.privacy.checks import is_placeholder
from offload_mcp.privacy.engine import Detector, compiled, finditer, spans
from offload_mcp.privacy.findings import Finding
from offload_mcp.privacy.pii import DOB
from offload_mcp.privacy.tables import words

_CLINICAL = (
    r"(?i)\b(?:patient|pt\.|diagnos\w*|discharg\w*|admi(?:tted|ssion)|chief complaint|hpi|"
    r"history of present illness|assessment|prognosis|icd-?10|cpt|medication|prescri\w*|"
    r"allerg\w*|vitals|blood pressure|symptoms?|treatment|physician|clinic|hospital|"
    r"surgery|lab results|hba1c|diabetes|hypertension|cancer|oncology|hiv|depression|"
    r"pregnan\w*|claim|insured|member id|mrn|medical record|encounter|mg (?:po|iv|daily|bid)|"
    r"dx|rx|copay|npi|ehr|emr)\b"
)
_WORD = r"[A-Z][a-zA-Z'?-]*[a-z?]"  # `?`: any non-ASCII letter (José)
_NAME = (
    rf"{_WORD}(?: (?:[A-Z]\.|{_WORD})){{1,3}}|{_WORD}, {_WORD}(?: [A-Z]\.?)?"
    r"|[A-Z]{2,}, [A-Z]{2,}(?: [A-Z]\.?)?|[A-Z]{2,} [A-Z]{2,}\b"
)
_LABELLED = (
    r"\b(?i:patient(?: full)?(?: name)?|pt(?:\.|\b)(?: name)?|name|member(?: name)?|"
    r"subscriber(?: name)?|insured(?: name)?|beneficiary|resident|client|guarantor|"
    r"next of kin|emergency contact)\s*[:\-]\s*(?:(?:Mr|Mrs|Ms|Miss|Mx)\.? )?(" + _NAME + ")"
)
_NARRATIVE = (
    rf"\b(?:(?:Mr|Mrs|Ms|Miss|Mx)\.? ({_WORD}(?: {_WORD})?)"
    rf"|({_WORD} {_WORD}),? (?:is |was )?an? \d{{1,3}}[- ]?(?:year|yo\b|y/o|y\.o\.)"
    rf"|(?i:patient|pt\.?|member|subscriber|insured|beneficiary),? ({_WORD} {_WORD}))"
)
_MRN = (
    r"(?i)\b(?:mrn|mr ?#|medical record(?: number| no\.?| #)?|patient id|chart (?:no\.?|number|#)|"
    r"account (?:no\.?|number|#)|acct ?#?|member id|subscriber id|policy (?:no\.?|number|#)|"
    r"claim (?:no\.?|number|#|id)|health plan id|hicn|mbi)[\"']?\s*[:#=>]?\s*[\"']?#?\s*"
    r"([A-Z0-9][A-Z0-9-]{4,19})\b"
)
_DOB = re.compile(DOB[4:], re.I)
# Where a `_DOB` label may start; `?` in the data stands for the non-ASCII letters Python's
# case folding matches to `i` and `s` (dotless i, long s).
_DOB_START = (
    r"(?i)dob|d\.o\.b|date[ _]of[ _]b[i?]rth|b[i?]rth|born|geburt[s?]datum"
    r"|fecha de nac[i?]m[i?]ento"
)
_NOT_NAMES = words("The This That Patient Name Date Unknown None Doe Test Sample")
# A name right before its record number or birth date (`labs back on Jamal Weber, MRN: ...`,
# `bed 12, Arjun Ostrowski (MRN 69188616)`): the identifier says whose record it is.
_TAGGED = (
    rf"({_WORD}(?: (?:[A-Z]\.|{_WORD})){{1,2}}|{_WORD}, {_WORD}),? ?[(\[-]? ?"
    r"(?:(?i:mrn|mr ?#|medical record(?: number| no\.?)?|chart ?#)[\s:#=]*[A-Za-z]{0,3}\d{4}"
    r"|(dob|DOB|D\.O\.B\.?|born(?: on)?)[\s:=]*\d)"
)
_TAGGED_SKIP = words("Patient Pt Re Bed Room Labs Update On For Dr Mr Mrs Ms Name")


def _tagged(text: str, data: bytes, clinical: bool) -> Iterator[Finding]:
    """Names followed by an MRN anywhere, or by a birth date in clinical text."""
    for match in spans(compiled(_TAGGED), data):
        if match[2][0] >= 0 and not clinical:
            continue
        start, end = match[1]
        parts = text[start:end].split(" ")
        while len(parts) > 1 and parts[0].rstrip(",.") in _TAGGED_SKIP:
            start += len(parts.pop(0)) + 1
        if len(parts) > 1 and parts[0] not in _NOT_NAMES and not is_placeholder(text[start:end]):
            yield Finding("patient_name", "phi", start, end, 0.75)


# A person's object in JSON or YAML: `"patient": {"name": ...}`, `subscriber:\n  name: ...`.
_PERSON_KEY = (
    r"(?i)[\"']?\b(patient|member|subscriber|beneficiary|insured|guarantor|policy_?holder)"
    r"[\"']?[ \t]*:[ \t]*(\{|\r?\n)"
)
_PERSON_NAME = re.compile(
    r"[\"']?(?:name|full_?name|first_?name|last_?name|given_?name|family_?name|surname|"
    r"display_?name)[\"']?[ \t]*:[ \t]*[\"']?([^\W\d_][^\"'\n,{}\[\]]*?)[\"']?[ \t]*"
    r"(?:,|\r?$|\})",
    re.M | re.I,
)


def _people(text: str, data: bytes, clinical: bool) -> Iterator[Finding]:
    """Names inside a patient's object; a member's or subscriber's only in clinical text."""
    for match in spans(compiled(_PERSON_KEY), data):
        key = text[match[1][0] : match[1][1]].lower()
        if key != "patient" and not clinical:
            continue
        start = match[2][1]
        end = _closing(text, match[2][0]) if text[match[2][0]] == "{" else _block(text, match)
        for name in _PERSON_NAME.finditer(text, start, end):
            value = name.group(1).strip()
            if value[:1].isupper() and value.split()[0] not in _NOT_NAMES:
                first = name.start(1)
                if not is_placeholder(value):
                    yield Finding("patient_name", "phi", first, first + len(value), 0.8)


def _block(text: str, key: list[tuple[int, int]]) -> int:
    """Where a YAML mapping under `key:` ends: the first line indented no deeper than it."""
    line_start = text.rfind("\n", 0, key[0][0]) + 1
    lead = text[line_start : key[0][0]]
    indent = len(lead) - len(lead.lstrip(" \t")) if lead.strip() else len(lead)
    position = key[2][1]
    while position < len(text):
        end = text.find("\n", position)
        end = len(text) if end < 0 else end
        line = text[position:end]
        if line.strip() and len(line) - len(line.lstrip(" \t")) <= indent:
            return position
        position = end + 1
    return len(text)


def _closing(text: str, opening: int) -> int:
    """Where the JSON bracket at `opening` closes (strings skipped), or the text's end."""
    depth = 0
    for token in _JSON_TOKEN.finditer(text, opening):
        char = token.group()[0]
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
            if depth == 0:
                return token.end()
    return len(text)


_JSON_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|[\[\]{}]')


def clinical_text(data: bytes) -> bool:
    """Two different clinical terms: the text is about someone's health."""
    terms: set[bytes] = set()
    for match in spans(compiled(_CLINICAL), data):
        terms.add(data[match[0][0] : match[0][1]].lower())
        if len(terms) >= 2:
            return True
    return False


def _names(text: str, data: bytes) -> Iterator[Finding]:
    found: set[str] = set()
    for match in spans(compiled(_LABELLED), data):
        start, end = match[1]
        name = text[start:end].rstrip(",. ")
        if name.split()[0] not in _NOT_NAMES and not is_placeholder(name):
            found.add(name)
            yield Finding("patient_name", "phi", start, start + len(name), 0.8)
    for match in spans(compiled(_NARRATIVE), data):
        start, end = next(match[g] for g in (1, 2, 3) if match[g][0] >= 0)
        name = text[start:end]
        if name.split()[0] not in _NOT_NAMES:
            found.add(name)
            yield Finding("patient_name", "phi", start, end, 0.7)
    # The same name elsewhere in the record is the same patient.
    for name in found:
        position = text.find(name)
        while position >= 0:
            yield Finding("patient_name", "phi", position, position + len(name), 0.7)
            position = text.find(name, position + len(name))


def _clinical(text: str, data: bytes) -> Iterator[Finding]:
    """Names and dates of birth inside notes, summaries and claims; record numbers anywhere."""
    for found in spans(compiled(_MRN), data):
        start, end = found[1]
        if sum(c.isdigit() for c in text[start:end]) >= 4:
            yield Finding("medical_record_number", "phi", start, end, 0.85)
    clinical = clinical_text(data)
    yield from _tagged(text, data, clinical)
    yield from _people(text, data, clinical)
    if not clinical:
        return
    yield from _names(text, data)
    for match in finditer(_DOB, _DOB_START, text, data):
        yield Finding("date_of_birth", "phi", match.start(1), match.end(1), 0.85)


# segment -> {field number: kind}; HL7 v2.x field positions for people and their identifiers.
_HL7_FIELDS: dict[str, dict[int, str]] = {
    "PID": {
        2: "mrn",
        3: "mrn",
        4: "mrn",
        5: "patient_name",
        6: "patient_name",
        7: "date_of_birth",
        9: "patient_name",
        11: "address",
        13: "phone",
        14: "phone",
        18: "account_number",
        19: "ssn",
        20: "drivers_license",
    },
    "NK1": {2: "patient_name", 4: "address", 5: "phone", 6: "phone"},
    "GT1": {2: "mrn", 3: "patient_name", 5: "address", 6: "phone", 8: "date_of_birth", 12: "ssn"},
    "IN1": {16: "patient_name", 18: "date_of_birth", 19: "address", 36: "policy_number", 49: "mrn"},
    "MRG": {1: "mrn", 7: "patient_name"},
}
# HL7 ends segments with `\r`, which `^` in multiline mode does not see.
_SEGMENT = re.compile(r"(?:^|[\r\n])[ \t]*(PID|NK1|GT1|IN1|MRG)\|[^\r\n]*")
_SEGMENT_START = r"(?:^|[\r\n])[ \t]*(?:PID|NK1|GT1|IN1|MRG)\|"


def _hl7(text: str, data: bytes) -> Iterator[Finding]:
    """HL7 v2 segments that name, date and locate the patient, flagged by field position."""
    for segment in finditer(_SEGMENT, _SEGMENT_START, text, data):
        wanted = _HL7_FIELDS[segment.group(1)]
        position = segment.start(1)
        for number, field in enumerate(
            segment.group()[segment.start(1) - segment.start() :].split("|")
        ):
            kind = wanted.get(number)
            value = field.strip("^~ ")
            if kind and value and not set(value) <= set("^~&\\"):
                start = position + field.index(value[0])
                yield Finding(kind, "phi", start, start + len(value), 0.9)
            position += len(field) + 1


_FHIR = re.compile(
    r"\"(?:family|birthDate|postalCode|deceasedDateTime)\"\s*:\s*\"([^\"]+)\""
    r"|\"(?:given|line|prefix)\"\s*:\s*\[([^\]]*)\]"
    r"|\"name\"\s*:\s*\[\s*\{[^\]]*?\"text\"\s*:\s*\"([^\"]+)\""
    r"|\"(?:subject|patient|beneficiary|subscriber|policyHolder)\"\s*:\s*\{[^}]*?"
    r"\"display\"\s*:\s*\"([^\"]+)\""
)
_FHIR_KINDS = {
    "birthDate": "date_of_birth",
    "deceasedDateTime": "date_of_birth",
    "line": "address",
    "postalCode": "address",
}
_FHIR_LIST = re.compile(r"\"([^\"]+)\"")
_FHIR_ARRAYS = re.compile(r"\"(?:identifier|telecom)\"\s*:\s*\[")
_FHIR_VALUE = re.compile(r"\"value\"\s*:\s*\"([^\"]+)\"")


def _fhir(text: str, data: bytes) -> Iterator[Finding]:
    """FHIR resources: names, birth dates, identifiers, contacts and addresses of people."""
    for match in _FHIR.finditer(text):
        key = match.group()[1 : match.group().index('"', 1)]
        kind = _FHIR_KINDS.get(key, "patient_name")
        if match.group(2) is not None:
            for item in _FHIR_LIST.finditer(match.group(2)):
                start = match.start(2) + item.start(1)
                yield Finding(kind, "phi", start, start + len(item.group(1)), 0.85)
            continue
        group = next(g for g in (1, 3, 4) if match.group(g) is not None)
        yield Finding(kind, "phi", match.start(group), match.end(group), 0.85)
    for array in _FHIR_ARRAYS.finditer(text):
        end = _closing(text, array.end() - 1)
        for value in _FHIR_VALUE.finditer(text, array.end(), end):
            yield Finding("identifier", "phi", value.start(1), value.end(1), 0.85)


# Tables of patients that `pii`'s table detector (triggered by phone, dob, ...) may not see.
# An identifying column, or a clinical one beside a plain `name`; `test` and `result` only as
# columns (as words they are in most code).
_TABLE = (
    r"(?im)mrn|patient|medical_record|icd|diagnos|encounter|first_?name|last_?name|surname"
    r"|(?:^|[,;\t|])[ \t]*\"?(?:test|result)s?\"?[ \t]*(?:[,;\t|]|$)"
)


def _tables(text: str, data: bytes) -> Iterator[Finding]:
    """Clinical tables without a personal column `pii` triggers on; the rest it reads itself."""
    from offload_mcp.privacy import pii, tabular

    for detector in pii.DETECTORS:
        if detector.run is tabular.tabular_findings and spans_any(detector.trigger, data):
            return
    yield from tabular.tabular_findings(text, data)


def spans_any(pattern: str, data: bytes) -> bool:
    """Whether an RE2 `pattern` matches anywhere in `data`."""
    return next(spans(compiled(pattern), data), None) is not None


DETECTORS: list[Detector] = [
    Detector(_CLINICAL, _clinical),
    Detector(_TABLE, _tables),
    Detector(r"(?:^|[\r\n])[ \t]*(?:PID|NK1|GT1|IN1|MRG)\|", _hl7),
    Detector(r"\"resourceType\"\s*:", _fhir),
]
