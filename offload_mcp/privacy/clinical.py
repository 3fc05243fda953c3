"""Health data in prose and tables: identifiers tied to clinical content (notes, chat, claims).

A name is not health data; a name next to a diagnosis is. So names and dates are flagged only
inside a clinical context, while record numbers announce themselves (`MRN:`). Structured
records (HL7, FHIR, CDA, X12) are read by their layout in `records.py`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from offload_mcp.privacy.checks import is_placeholder, word_bounded
from offload_mcp.privacy.engine import Detector, compiled, finditer, matches, spans
from offload_mcp.privacy.findings import Finding
from offload_mcp.privacy.fixtures import fake_id, placeholder, real_birth_date, stand_in
from offload_mcp.privacy.pii import DATE, DOB, MONTH
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
    r"atrial fibrillation|kidney disease|opioid use|depressive|dementia|seizures?|sepsis|"
    r"hx|y/o|t2dm|troponins?|chest pain|telemetry|n?stemi|methotrexate|nausea|rash|"
    r"clozapine|schizophrenia|neutropenia|adverse event|vaccin\w*|immuni[sz]ation|"
    r"anxiety|insomnia|fractures?|intake form|reason for visit|dental|caries|periodont\w*|"
    r"abscess|prn|q\d{1,2}h|s/p|pod ?\d|oxycodone|morphine|hydrocodone|ibuprofen|acetaminophen|"
    r"radiology|ct (?:abdomen|chest|head|scan)|mri|x-?ray|ultrasound|mammogra\w*|"
    r"impression|biopsy|pathology|post-?op\w*|pre-?op\w*|vital signs|triage)\b"
)
WORD = r"[A-Z][a-zA-Z'?-]*[a-z?]"  # `?`: any non-ASCII letter (José)
# Lower-case surname particles: `Elena Van der Berg`, `Marisol de la Cruz`.
PARTICLE = r"(?:van|von|der|den|de|del|della|la|le|da|di|du|dos|das|ter|ten|bin|al)"
_NAME = (
    rf"{WORD}(?: (?:{PARTICLE} ){{0,2}}(?:[A-Z]\.|{WORD})){{1,3}}|{WORD}, {WORD}(?: [A-Z]\.?)?"
    r"|[A-Z][A-Z'-]+, [A-Z][A-Z'-]+(?: [A-Z]\.?)?|[A-Z]{2,} [A-Z]{2,}\b"
)
_LABELLED = (
    r"\b(?i:patient(?: full)?(?: name)?|pt(?:\.|\b)(?: name)?|name|member(?: name)?|"
    r"subscriber(?: name)?|insured(?: name)?|beneficiary|resident|client|guarantor|"
    r"next of kin|emergency contact)\s*[:\-]\s*(?:(?:Mr|Mrs|Ms|Miss|Mx)\.? )?(" + _NAME + ")"
)
_NARRATIVE = (
    rf"\b(?:(?:Mr|Mrs|Ms|Miss|Mx)\.? ({WORD}(?: {WORD})?)"
    rf"|({WORD} {WORD}),? (?:is |was )?an? \d{{1,3}}[- ]?(?:year|yo\b|y/o|y\.o\.)"
    rf"|(?i:patient|pt\.?|member|subscriber|insured|beneficiary),? ({WORD} {WORD}))"
)
_MRN = (
    r"(?i)\b(?:mrn|mr ?#|medical record(?: number| no\.?| #)?|patient id|chart (?:no\.?|number|#)|"
    r"account (?:no\.?|number|#)|acct ?#?|member id|subscriber id|policy (?:no\.?|number|#)|"
    r"claim (?:no\.?|number|#|id)|health plan id|hicn|mbi|"
    r"(?:hospital|health|patient|case) record (?:no\.?|number|#))[\"']?\s*#?[:=>]?\s*[\"']?#?\s*"
    r"([A-Z0-9][A-Z0-9-]{4,19})\b"
)
_DOB = re.compile(DOB[4:], re.I)  # `pii`'s birth-date label and date, for clinical text
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
# A name right before its record number, birth date, age and sex or a clinical verb
# (`labs back on Jamal Weber, MRN: ...`, `Pt Olga M. Andersen, 67M`, `HORVAT, EMMA, MRN`,
# `this is Sofia Castillo (DOB June 2, 1990`, `Ethan J. Castillo reports ...`): the identifier
# says whose record it is. Group 2 (all but the record number) counts in clinical text only.
_TAGGED = (
    rf"({WORD}(?: (?:[A-Z]\.|{WORD})){{1,3}}|{WORD}, {WORD}(?: [A-Z]\.)?"
    r"|[A-Z][A-Z'-]+, [A-Z][A-Z'-]+),? ?[(\[-]? ?"
    r"(?:(?i:mrn|mr ?#|medical record(?: number| no\.?)?|chart ?#)[\s:#=]*[A-Za-z]{0,3}"
    r"\d(?:-?\d){3,}"
    r"|((?:dob|DOB|D\.O\.B\.?|born(?: on)?)[\s:=]*(?:\d|" + MONTH + r")"
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
    if parts[0] in _NOT_NAMES or stand_in("patient_name", " ".join(parts)):
        return True
    return any(part.strip(",.") in _FIELD_WORDS for part in parts)


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
    r"display_?name)[\"']?[ \t]*[:=][ \t]*[\"']?([^\W\d_][^\"'\n,{}()\[\]]*?)[\"']?[ \t]*"
    r"(?:,|\r?$|\}|\))",
    re.M | re.I,
)


def _people(text: str, data: bytes, clinical: bool) -> Iterator[Finding]:
    """Names inside a patient's object; a member's or subscriber's only in clinical text."""
    for match in spans(compiled(_PERSON_KEY), data):
        key = text[match[1][0] : match[1][1]].lower()
        if key != "patient" and not clinical:
            continue
        start = match[2][1]
        end = closing(text, match[2][0]) if text[match[2][0]] == "{" else _block(text, match)
        yield from _object_fields(text, start, end, key == "patient" or clinical)


# A person's record number and birth date by key (`"id"` only inside a patient's object).
_PERSON_FIELD = re.compile(
    r"[\"'](?:(id|mrn|medical_?record_?(?:number|no)?|patient_?id|chart_?(?:number|no))"
    r"|(dob|date_?of_?birth|birth_?date|birthday))[\"'][ \t]*:[ \t]*[\"']([^\"'\n]{4,40})[\"']",
    re.I,
)


def _object_fields(text: str, start: int, end: int, record: bool) -> Iterator[Finding]:
    """A person's name, and (when `record`: a patient's object) record number and birth date."""
    for name in _PERSON_NAME.finditer(text, start, end):
        value = name.group(1).strip()
        if value[:1].isupper() and value.split()[0] not in _NOT_NAMES:
            first = name.start(1)
            if not is_placeholder(value) and not stand_in("patient_name", value):
                yield Finding("patient_name", "phi", first, first + len(value), 0.8)
    if not record:
        return
    for field in _PERSON_FIELD.finditer(text, start, end):
        value = field.group(3)
        if field.group(2):
            if real_birth_date(value):
                yield Finding("date_of_birth", "phi", field.start(3), field.end(3), 0.8)
        elif record_number(value):
            yield Finding("medical_record_number", "phi", field.start(3), field.end(3), 0.8)


def record_number(value: str) -> bool:
    """Four digits or more in an id's shape, not a mask or a made-up `TEST-0001`."""
    value = value.strip()
    digits = sum(c.isdigit() for c in value) >= 4
    shaped = re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]{3,39}", value) is not None
    return digits and shaped and not fake_id(value) and not placeholder(value)


# A record number's key inside a dict, a JSON object or a call's keywords (`{'name': ...,
# 'mrn': ...}`, `Patient(name='...', mrn='...')`): the object is a patient's, whatever its key.
_RECORD_KEY = (
    r"(?:[\"'](?i:mrn|medical_?record_?(?:number|no)?|patient_?id)[\"'][ \t]*:"
    r"|[(, ](?i:mrn|medical_record_number|patient_id)=)[ \t]*[\"'][A-Za-z0-9]"
)


def _record_objects(text: str, data: bytes) -> Iterator[Finding]:
    """Names beside a record number in one object: `{'name': 'Aisha Oyelaran', 'mrn': ...}`."""
    done = -1
    for match in spans(compiled(_RECORD_KEY), data):
        key = match[0][0]
        if key < done:
            continue
        opening = max(text.rfind("{", 0, key), text.rfind("(", 0, key))
        if opening < 0 or (text[opening] == "{" and "}" in text[opening:key]):
            continue
        if text[opening] == "(":
            done = text.find(")", key)
            done = len(text) if done < 0 else done
        else:
            done = closing(text, opening)
        yield from _object_fields(text, opening + 1, done, True)


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


def closing(text: str, opening: int) -> int:
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


# A chat line's speaker (`[10:03] Nadia Wojcik: still itchy`): in a clinical conversation,
# a participant. The clinician's side (`Dr. Ruiz`, `Nurse Kim`) is not a name by `_NAME`'s
# shape or starts with a role.
_SPEAKER = (
    r"(?m)^[ \t]*\[?(?:\d{4}-\d{2}-\d{2}[ T])?\d{1,2}:\d{2}(?::\d{2})?(?: ?[AaPp][Mm])?\]?"
    rf"[ \t]+(?:-[ \t]+)?<?({WORD}(?: (?:[A-Z]\.|{WORD})){{1,3}})>?:[ \t]"
)
_ROLES = words(
    "Dr Doctor Nurse Rn Np Pa Pharmacist Agent Support Bot Assistant Admin System Clinician "
    "Therapist Provider Coordinator Care Team Front Desk Reception Scheduler"
)
# A birth date given as the answer to a question about it: `Can you confirm your date of
# birth?` / `Patient: it's 1986-08-14`. Group 1 is the date.
_ANSWER = (
    r"(?i)(?:date of birth|\bdob|d\.o\.b\.?|birth ?date|birthday)[^\n?]{0,40}\?[ \t]*\r?\n"
    r"(?:[ \t]*\r?\n)?[ \t]*(?:\[[^\]\n]{1,25}\][ \t]*)?[A-Za-z][\w .-]{0,25}:[ \t]*"
    r"(?:[a-z',]+[ \t]+){0,5}?(" + DATE + r")\b"
)


def _speakers(text: str, data: bytes) -> Iterator[Finding]:
    for match in spans(compiled(_SPEAKER), data):
        start, end = match[1]
        parts = text[start:end].split()
        if parts[0].rstrip(".") not in _ROLES and not _not_name(parts):
            yield Finding("patient_name", "phi", start, end, 0.65)


def _answers(text: str, data: bytes) -> Iterator[Finding]:
    for match in spans(compiled(_ANSWER), data):
        start, end = match[1]
        if not stand_in("date_of_birth", text[start:end]):
            yield Finding("date_of_birth", "phi", start, end, 0.8)


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
        while start > 0 and text[start - 1].isalnum():  # `MRN8332976`: the label is glued on
            start -= 1
        if sum(c.isdigit() for c in text[start:end]) >= 4 and not fake_id(text[start:end]):
            yield Finding("medical_record_number", "phi", start, end, 0.85)
    clinical = clinical_text(data)
    names = list(_tagged(text, data, clinical))
    yield from _people(text, data, clinical)
    yield from _record_objects(text, data)
    if not clinical:
        yield from names
        return
    names.extend(_names(text, data))
    names.extend(_speakers(text, data))
    yield from _answers(text, data)
    yield from names
    yield from _same_patient(text, names)
    for match in finditer(_DOB, _DOB_START, text, data):
        if stand_in("date_of_birth", match.group(1)):
            continue
        yield Finding("date_of_birth", "phi", match.start(1), match.end(1), 0.85)


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
        if detector.run is tabular.tabular_findings and matches(detector.trigger, data):
            return
    yield from tabular.tabular_findings(text, data)


DETECTORS: list[Detector] = [
    Detector(_CLINICAL, _clinical),
    Detector(_TABLE, _tables),
]
