"""Health records read by their layout: HL7 v2 segments, FHIR resources, C-CDA, X12 claims.

A record's structure says which field holds the patient's name, birth date or identifier, so
these are flagged by position, wherever the record appears (no clinical words needed).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator

from offload_mcp.privacy.clinical import closing
from offload_mcp.privacy.engine import Detector, compiled, finditer, spans
from offload_mcp.privacy.findings import Finding
from offload_mcp.privacy.fixtures import fake_id, people

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


_MSH = r"(?:^|[\r\n])[ \t]*MSH\|"


def _hl7(text: str, data: bytes) -> Iterator[Finding]:
    """HL7 v2 segments that name, date and locate the patient, flagged by field position.

    A message is one record: if any of its people is a stand-in, none of its values count.
    """
    starts = [m[0][0] for m in spans(compiled(_MSH), data)] if "MSH|" in text else []
    found: list[Finding] = []
    message = -1
    for segment in finditer(_SEGMENT, _SEGMENT_START, text, data):
        current = bisect.bisect_right(starts, segment.start())
        if current != message:
            yield from people(text, found)
            message, found = current, []
        wanted = _HL7_FIELDS[segment.group(1)]
        position = segment.start(1)
        for number, field in enumerate(
            segment.group()[segment.start(1) - segment.start() :].split("|")
        ):
            kind = wanted.get(number)
            value = field.strip("^~ ")
            if kind and value and not set(value) <= set("^~&\\"):
                start = position + field.index(value[0])
                found.append(Finding(kind, "phi", start, start + len(value), 0.9))
            position += len(field) + 1
    yield from people(text, found)


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
    """FHIR resources: names, birth dates, identifiers, contacts and addresses of people.

    Each resource is one record: a stand-in patient's resource yields nothing.
    """
    found: list[Finding] = []
    for match in _FHIR.finditer(text):
        key = match.group()[1 : match.group().index('"', 1)]
        kind = _FHIR_KINDS.get(key, "patient_name")
        if match.group(2) is not None:
            for item in _FHIR_LIST.finditer(match.group(2)):
                start = match.start(2) + item.start(1)
                found.append(Finding(kind, "phi", start, start + len(item.group(1)), 0.85))
            continue
        group = next(g for g in (1, 3, 4) if match.group(g) is not None)
        found.append(Finding(kind, "phi", match.start(group), match.end(group), 0.85))
    for array in _FHIR_ARRAYS.finditer(text):
        end = closing(text, array.end() - 1)
        for value in _FHIR_VALUE.finditer(text, array.end(), end):
            found.append(Finding("identifier", "phi", value.start(1), value.end(1), 0.85))
    # A resource's fields follow its `resourceType` (FHIR JSON puts it first), so each finding
    # belongs to the nearest one before it: a Bundle's entries are separate records.
    owners = [m.start() for m in _RESOURCE_TYPE.finditer(text)]
    records: dict[int, list[Finding]] = {}
    for finding in found:
        records.setdefault(bisect.bisect_right(owners, finding.start), []).append(finding)
    for record in records.values():
        yield from people(text, record)


_RESOURCE_TYPE = re.compile(r'"resourceType"\s*:')


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
        yield from people(text, _cda_fields(text, role.end(), stop))


def _cda_fields(text: str, begin: int, stop: int) -> Iterator[Finding]:
    for field in _CDA_FIELD.finditer(text, begin, stop):
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
        if stripped and not fake_id(stripped):
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
    """Subscriber and patient segments of X12 health claims, read by element position.

    A person is one record: their `NM1` and the `N3`/`DMG` after it, up to the next `NM1`.
    """
    found: list[Finding] = []
    for segment in finditer(_X12, _X12_START, text, data):
        sep = segment.group(2) or segment.group(3)
        wanted = {3: "patient_name", 4: "patient_name", 5: "patient_name", 9: "mrn"}
        if segment.group(3):
            wanted = {2: "date_of_birth"}
        else:
            yield from people(text, found)
            found = []
            elements = segment.group(1).split(sep)
            if elements[2:3] == ["2"]:  # a company (entity type 2)
                wanted = {9: "mrn"}
            wanted = _id_after_qualifier(elements, wanted)
        found.extend(_elements(segment.group(1), segment.start(1), sep, wanted))
        if segment.group(4):
            found.extend(_elements(segment.group(4), segment.start(4), sep, {1: "address"}))
    yield from people(text, found)


# NM1-08 qualifies the id in NM1-09 (`MI` member id, `II` unique health id, `34` SSN, ...).
_ID_QUALIFIERS = frozenset(("MI", "II", "34", "24", "ZZ", "XX", "SY", "PI", "FI", "EI"))


def _id_after_qualifier(elements: list[str], wanted: dict[int, str]) -> dict[int, str]:
    """The id right after its qualifier, where the name's components were packed into one
    element (`NM1*IL*1*KOWALSKI^RAHUL****MI*71936340`) and the positions shifted."""
    if elements[8:9] and elements[8].strip() in _ID_QUALIFIERS:
        return wanted
    for number in range(4, len(elements) - 1):
        if elements[number].strip() in _ID_QUALIFIERS and elements[number + 1].strip():
            return {k: v for k, v in wanted.items() if v != "mrn"} | {number + 1: "mrn"}
    return wanted


def _elements(segment: str, offset: int, sep: str, wanted: dict[int, str]) -> Iterator[Finding]:
    position = offset
    for number, element in enumerate(segment.split(sep)):
        value = element.strip()
        if number in wanted and value:
            start = position + element.index(value[0])
            yield Finding(wanted[number], "phi", start, start + len(value), 0.85)
        position += len(element) + 1


DETECTORS: list[Detector] = [
    Detector(r"(?:^|[\r\n])[ \t]*(?:PID|NK1|GT1|IN1|MRG)\|", _hl7),
    Detector(r"\"resourceType\"\s*:", _fhir),
    Detector(_CDA_START, _cda),
    Detector(_X12_START, _x12),
]
