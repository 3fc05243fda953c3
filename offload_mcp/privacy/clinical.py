"""Health data: identifiers tied to clinical content (notes, HL7 v2, FHIR, claims).

A name is not health data; a name next to a diagnosis is. So names and dates are flagged only
inside a clinical context, while record numbers announce themselves (`MRN:`). HL7 PID and
FHIR Patient fields are flagged by position, since their layout says what they hold.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from offload_mcp.privacy.checks import is_placeholder, word_bounded
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
    r"dx|rx|copay|npi|ehr|emr|pmh|htn|copd|chf|dyspnea|side effects?|clinicalstatus|"
    r"presents? (?:with|w/)|mg (?:sl|nightly|q\w+)|metformin|lisinopril|atorvastatin|"
    r"sertraline|albuterol|levothyroxine|buprenorphine|insulin|warfarin|apixaban|amlodipine|"
    r"omeprazole|gabapentin|prednisone|metoprolol|losartan|furosemide|amoxicillin|"
    r"fluoxetine|escitalopram|bupropion|asthma|pneumonia|hepatitis|hypothyroidism|migraine|"
    r"atrial fibrillation|kidney disease|opioid use|depressive|dementia|seizures?|sepsis)\b"
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
# `pii`'s birth-date label, also with a note after it (`Date of birth (verified): ...`).
_DOB = re.compile(
    DOB[4:].replace(r")[\"']?\s*[:=,]?", r")(?:\s*\([^()\n]{1,30}\))?[\"']?\s*[:=,]?", 1),
    re.I,
)
# Where a `_DOB` label may start; `?` in the data stands for the non-ASCII letters Python's
# case folding matches to `i` and `s` (dotless i, long s).
_DOB_START = (
    r"(?i)dob|d\.o\.b|date[ _]of[ _]b[i?]rth|b[i?]rth|born|geburt[s?]datum"
    r"|fecha de nac[i?]m[i?]ento"
)
_NOT_NAMES = words("The This That Patient Name Date Unknown None Doe Test Sample")
# Words of field and column names (`PID-3 Patient Identifier List`): never part of a name.
_FIELD_WORDS = words(
    "Identifier Identifiers List Number Record Records Code Codes Type Status Field Fields "
    "Value Values Segment Address Date Time Id Name Names Given Family Class Data Table"
)
# What a patient does in a note, not what a tool does in a README (`Sentry reports errors`,
# `Jenkins has been on 2.4`): the verb with its clinical object.
_COMPLAINT = (
    r"(?:pain|symptoms|nausea|fatigue|dizziness|headaches?|fever|cough|dyspnea|sob|"
    r"shortness of breath|chest pain|palpitations|insomnia|anxiety|low mood)"
)
_VERBS = (
    r"(?:(?:reports|denies|complains of) (?:any |new |ongoing |worsening |increased |some |"
    r"mild |severe |chest |abdominal |back )?" + _COMPLAINT + r"\b"
    r"|presents (?:with|w/)|was (?:admitted|discharged|readmitted) (?:for|with|from|home|on|"
    r"overnight|yesterday|today|last night|to (?:the )?(?i:hospital|ward|floor|unit|er|ed|"
    r"rehab|hospice|snf|[a-z]*icu|ccu|telemetry))\b"
    r"|has been (?:on|taking) [^.\n]{0,40}?\d+ ?(?:mg|mcg|g|mL|units?|puffs?)\b)"
)
_MONTH_WORD = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?"
# A name right before its record number, birth date, age and sex or a clinical verb
# (`labs back on Jamal Weber, MRN: ...`, `Pt Olga M. Andersen, 67M`, `HORVAT, EMMA, MRN`,
# `this is Sofia Castillo (DOB June 2, 1990`, `Ethan J. Castillo reports ...`): the identifier
# says whose record it is. Group 2 (all but the record number) counts in clinical text only.
_TAGGED = (
    rf"({_WORD}(?: (?:[A-Z]\.|{_WORD})){{1,3}}|{_WORD}, {_WORD}(?: [A-Z]\.)?"
    r"|[A-Z]{2,}, [A-Z]{2,}),? ?[(\[-]? ?"
    r"(?:(?i:mrn|mr ?#|medical record(?: number| no\.?)?|chart ?#)[\s:#=]*[A-Za-z]{0,3}"
    r"\d(?:-?\d){3,}"
    r"|((?:dob|DOB|D\.O\.B\.?|born(?: on)?)[\s:=]*(?:\d|" + _MONTH_WORD + r")"
    r"|\d{1,3} ?(?:(?:[MF]|yo|y/o|-?years?[- ]old|yrs?)\b|y\.o\.)"
    r"|" + _VERBS + "))"
)
# A first name alone as the subject of a clinical sentence (`Maria has been on sertraline`).
_SUBJECT = rf"(?m)(?:^[ \t]*|[.!?] +)([A-Z][a-z]{{2,}}) {_VERBS}"
_PRONOUNS = words(
    "She He They Patient Client Resident Member Mother Father Wife Husband Son Daughter Child "
    "Baby Infant Mom Dad Spouse Partner Caregiver Family This It Who Everyone Nobody Someone"
)
_TAGGED_SKIP = words(
    "Patient Pt Re Bed Room Labs Update On For Dr Mr Mrs Ms Name Hi Hello Dear Today Yesterday "
    "Per Note Also Then And But So Seen"
)


def _not_name(parts: list[str]) -> bool:
    """A stand-in (`Test Patient`) or a field name (`Patient Identifier List`)."""
    return parts[0] in _NOT_NAMES or any(part.strip(",.") in _FIELD_WORDS for part in parts)


def _tagged(text: str, data: bytes, clinical: bool) -> Iterator[Finding]:
    """Names followed by an MRN anywhere, or by a birth date or age in clinical text."""
    for match in spans(compiled(_TAGGED), data):
        if match[2][0] >= 0 and not clinical:
            continue
        start, end = match[1]
        parts = text[start:end].split(" ")
        while len(parts) > 1 and parts[0].rstrip(",.") in _TAGGED_SKIP:
            start += len(parts.pop(0)) + 1
        if len(parts) > 1 and not _not_name(parts) and not is_placeholder(text[start:end]):
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
    for match in spans(compiled(_LABELLED), data):
        start, end = match[1]
        name = text[start:end].rstrip(",. ")
        if not _not_name(name.split()) and not is_placeholder(name):
            yield Finding("patient_name", "phi", start, start + len(name), 0.8)
    for match in spans(compiled(_NARRATIVE), data):
        start, end = next(match[g] for g in (1, 2, 3) if match[g][0] >= 0)
        if not _not_name(text[start:end].split()):
            yield Finding("patient_name", "phi", start, end, 0.7)
    for match in spans(compiled(_SUBJECT), data):
        start, end = match[1]
        if text[start:end] not in _PRONOUNS and text[start:end] not in _TAGGED_SKIP:
            yield Finding("patient_name", "phi", start, end, 0.6)


def _same_patient(text: str, names: list[Finding]) -> Iterator[Finding]:
    """The whole name, its first name or surname elsewhere in the record: the same patient.

    `Maria Gonzalez ... Maria has been on sertraline ... Ms. Gonzalez`; `HORVAT, EMMA` also
    as `Emma`. A doctor sharing the surname (`Dr. Gonzalez`) is left alone.
    """
    wanted: set[str] = set()
    for finding in names:
        name = text[finding.start : finding.end]
        wanted.add(name)
        parts = [p.strip(",.") for p in name.replace(",", " ").split()]
        if len(parts) < 2:
            continue
        for part in parts:
            if len(part) >= 3 and part not in _TAGGED_SKIP and part not in _NOT_NAMES:
                wanted.update((part, part.title()))
    for value in wanted:
        position = text.find(value)
        while position >= 0:
            end = position + len(value)
            if word_bounded(text, position, end) and text[max(0, position - 4) : position] not in (
                "Dr. ",
                " Dr ",
            ):
                yield Finding("patient_name", "phi", position, end, 0.7)
            position = text.find(value, end)


def _clinical(text: str, data: bytes) -> Iterator[Finding]:
    """Names and dates of birth inside notes, summaries and claims; record numbers anywhere."""
    for found in spans(compiled(_MRN), data):
        start, end = found[1]
        if sum(c.isdigit() for c in text[start:end]) >= 4 and not _fake_id(text[start:end]):
            yield Finding("medical_record_number", "phi", start, end, 0.85)
    clinical = clinical_text(data)
    names = list(_tagged(text, data, clinical))
    yield from _people(text, data, clinical)
    if not clinical:
        yield from names
        return
    names.extend(_names(text, data))
    yield from names
    yield from _same_patient(text, names)
    for match in finditer(_DOB, _DOB_START, text, data):
        yield Finding("date_of_birth", "phi", match.start(1), match.end(1), 0.85)


_FAKE_WORD = re.compile(r"(?i)test|demo|sample|example|fake|dummy|placeholder")


def _fake_id(value: str) -> bool:
    """`TEST-0001`, `DEMO42`: a stand-in word and a counter, no real record number."""
    return bool(_FAKE_WORD.search(value)) and sum(c.isdigit() for c in value) <= 6


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


# C-CDA / CDA: the record target's `<patientRole>` holds the patient's ids, address, phone and,
# in `<patient>`, name and birth time. Other people's (`<providerOrganization>`) are cut off.
_CDA_START = r"<(?:[\w-]+:)?patient(?:Role)?\b"
_CDA_ROLE = re.compile(r"<((?:[\w-]+:)?patient(?:Role)?)\b[^>]*>")
_CDA_FIELD = re.compile(
    r"<(?:[\w-]+:)?(given|family|streetAddressLine|city|postalCode)\b[^>]*>([^<]+)<"
    r"|<(?:[\w-]+:)?(birthTime|id|telecom)\b([^>]*)>"
)
_CDA_ATTR = re.compile(r"\b(value|extension)=\"(?:tel:|mailto:|fax:)?([^\"]+)\"")
_CDA_KINDS = {
    "given": "patient_name",
    "family": "patient_name",
    "streetAddressLine": "address",
    "city": "address",
    "postalCode": "address",
    "birthTime": "date_of_birth",
    "id": "mrn",
    "telecom": "phone",
}
_CDA_OTHERS = re.compile(r"<(?:[\w-]+:)?(?:providerOrganization|guardian|birthplace)\b")


def _cda(text: str, data: bytes) -> Iterator[Finding]:
    """The patient's fields in a CDA document's `<patientRole>` (or a bare `<patient>`)."""
    end = 0
    for role in _CDA_ROLE.finditer(text):
        if role.start() < end:
            continue
        close = text.find("</" + role.group(1), role.end())
        end = len(text) if close < 0 else close
        other = _CDA_OTHERS.search(text, role.end(), end)
        stop = end if other is None else other.start()
        for field in _CDA_FIELD.finditer(text, role.end(), stop):
            if field.group(1):
                kind = _CDA_KINDS[field.group(1)]
                start, value = field.start(2), field.group(2)
            else:
                attr = _CDA_ATTR.search(field.group(4))
                wanted = "extension" if field.group(3) == "id" else "value"
                if attr is None or attr.group(1) != wanted:
                    continue
                kind = _CDA_KINDS[field.group(3)]
                start, value = field.start(4) + attr.start(2), attr.group(2)
            stripped = value.strip()
            if stripped and not is_placeholder(stripped) and not _fake_id(stripped):
                start += value.index(stripped[0])
                yield Finding(kind, "phi", start, start + len(stripped), 0.85)


# X12 837/270/271: `NM1*IL` (subscriber) and `NM1*QC` (patient) name the person and carry the
# member id; `DMG*D8*` is their birth date and `N3` after either their street.
_X12_START = r"(?:^|[~\r\n])[ \t]*(?:NM1[*|^:](?:IL|QC)|DMG[*|^:]D8)[*|^:]"
_X12 = re.compile(
    r"(?:^|[~\r\n])[ \t]*(NM1([*|^:])(?:IL|QC)\2[^~\r\n]*"
    r"|DMG([*|^:])D8\3[^~\r\n]*)(?:~\s*(N3[*|^:][^~\r\n]*))?"
)


def _x12(text: str, data: bytes) -> Iterator[Finding]:
    """Subscriber and patient segments of X12 health claims, read by element position."""
    for segment in finditer(_X12, _X12_START, text, data):
        sep = segment.group(2) or segment.group(3)
        wanted = {3: "patient_name", 4: "patient_name", 5: "patient_name", 9: "mrn"}
        if segment.group(3):
            wanted = {2: "date_of_birth"}
        elif segment.group(1).split(sep)[2:3] == ["2"]:  # a company (entity type 2), no person
            wanted = {9: "mrn"}
        yield from _elements(segment.group(1), segment.start(1), sep, wanted)
        if segment.group(4):
            yield from _elements(segment.group(4), segment.start(4), sep, {1: "address"})


def _elements(segment: str, offset: int, sep: str, wanted: dict[int, str]) -> Iterator[Finding]:
    position = offset
    for number, element in enumerate(segment.split(sep)):
        value = element.strip()
        if number in wanted and value and not is_placeholder(value):
            start = position + element.index(value[0])
            yield Finding(wanted[number], "phi", start, start + len(value), 0.85)
        position += len(element) + 1


def spans_any(pattern: str, data: bytes) -> bool:
    """Whether an RE2 `pattern` matches anywhere in `data`."""
    return next(spans(compiled(pattern), data), None) is not None


DETECTORS: list[Detector] = [
    Detector(_CLINICAL, _clinical),
    Detector(_TABLE, _tables),
    Detector(r"(?:^|[\r\n])[ \t]*(?:PID|NK1|GT1|IN1|MRG)\|", _hl7),
    Detector(r"\"resourceType\"\s*:", _fhir),
    Detector(_CDA_START, _cda),
    Detector(_X12_START, _x12),
]
