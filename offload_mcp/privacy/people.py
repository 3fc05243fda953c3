"""People named in health records by their layout: a name tied to a birth date or record
number, a letter's salutation, a note's subject, DICOM headers and EHR audit logs.

`clinical.py` finds names by their labels (`Patient:`) and prose; these rules find the ones a
record holds without a label: `Op note — Ravi Lindqvist, DOB 02/06/1980`, a pharmacy label's
name line above `DOB ...`, `(0010,0010) PN [Oyelaran^Dmitri]`, `patient="Pruitt, Svetlana"`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from offload_mcp.privacy.checks import is_placeholder
from offload_mcp.privacy.clinical import WORD, clinical_text, record_number
from offload_mcp.privacy.engine import Detector, compiled, matches, spans
from offload_mcp.privacy.findings import Category, Finding
from offload_mcp.privacy.fixtures import STAND_INS, fake_id, stand_in
from offload_mcp.privacy.pii import DATE
from offload_mcp.privacy.tables import words

_INITIAL = r"[A-Z]\.?"
# `Ravi Lindqvist`, `Olga M. Andersen`, `Mei-Ling Albuquerque`, `Pruitt, Svetlana`, `HORVAT, EMMA`.
_NAME = (
    rf"{WORD}(?: (?:{_INITIAL}|{WORD})){{1,3}}|{WORD}, {WORD}(?: {_INITIAL})?"
    r"|[A-Z][A-Z'-]+, [A-Z][A-Z'-]+(?: [A-Z]\.?)?"
)
_BIRTH = r"(?:DOB|D\.O\.B\.?|(?i:dob|date of birth|birth ?date|born(?: on)?))"
_RECORD = r"(?i:mrn|mr ?#|medical record(?: number| no\.?| #)?|chart ?#)"
# The name, then its birth date or record number on the same line (after a comma, dash,
# bracket or `and`) or on the next line (a pharmacy label). Group 2 is the birth date.
_TIED = (
    rf"\b({_NAME})(?:[ \t]*[,(\[|;:?-]{{0,2}}[ \t]*|[ \t]+and[ \t]+|[ \t]*\r?\n[ \t]*)"
    rf"(?:{_BIRTH}[ \t]*[:#=]?[ \t]*({DATE})\b"
    rf"|{_RECORD}[ \t]*[:#=]?[ \t]*[A-Za-z]{{0,3}}-?\d(?:-?\d){{3,}})"
)
_TIED_TRIGGER = r"(?i)\b(?:dob|d\.o\.b|date of birth|birth ?date|born|mrn|mr ?#|chart ?#)"

# A census or bed-board row without a header: `4W,14B,SCHREIBER, ASTRID,133-34-582,81,...`,
# an unquoted `LAST, FIRST` cell and the record number right after it.
_ROW = (
    r"(?m)(?:^|,)[ \t]*([A-Z][A-Z'-]+(?: [A-Z][A-Z'-]+)?, [A-Z][A-Z'-]+(?: [A-Z]\.?)?)[ \t]*,"
    r"[ \t]*([A-Z]{0,3}\d(?:-?\d){4,13}),"
)


def _rows(text: str, data: bytes) -> Iterator[Finding]:
    """Patients in headerless census rows, when the text is about health."""
    found = list(spans(compiled(_ROW), data))
    if not found or not _health(data):
        return
    for match in found:
        name = _trimmed(text, *match[1])
        if name is not None and not fake_id(text[slice(*match[2])]):
            yield Finding("patient_name", "phi", *name, 0.7)
            yield Finding("medical_record_number", "phi", *match[2], 0.75)


# A letter to the patient: `Dear Declan Kowalczyk, your HIV viral load results are ready`.
_SALUTATION = (
    r"\b(?:Dear|Hi|Hello|Hey|[Tt]hanks|[Tt]hank you|Good (?:morning|afternoon|evening))[ \t]+"
    r"(?:(?:Mr|Mrs|Ms|Miss|Mx)\.?[ \t]+)?(" + _NAME + r")[ \t]*[,:!\r\n]"
)
_SALUTATION_TRIGGER = (
    r"\b(?:Dear|Hi|Hello|Hey|[Tt]hanks|[Tt]hank you|Good (?:morning|afternoon|evening))[ \t]+[A-Z]"
)

# A note's subject: `S: Bronwyn Subramanian reports worsening knee pain`. Group 1 is a SOAP
# section label, group 3 the verb and group 4 the rest of the clause, which must be clinical.
_VERB = r"(reports|presents|complains|denies|states|endorses|describes|c/o)"
_SUBJECT = (
    r"(?m)(?:^[ \t]*(?:((?i:s|cc|hpi|subjective|interval history)[ \t]*:)[ \t]*)?"
    r"|[.!?][ \t]+)(" + _NAME + r")[ \t]+" + _VERB + r"\b([^\n]{0,80})"
)
_SUBJECT_TRIGGER = r"\b(?:reports|presents|complains|denies|states|endorses|describes|c/o)\b"
_COMPLAINT = re.compile(
    r"(?i)\b(?:pain|ache|aches|aching|symptoms?|nausea|vomiting|fatigue|dizziness|headaches?|"
    r"fever|chills|cough|dyspnea|sob|shortness of breath|palpitations|insomnia|anxiety|"
    r"low mood|swelling|rash|bleeding|numbness|tingling|weakness|diarrh\w*|constipation|"
    r"suicidal|ideation|weight (?:loss|gain)|appetite|medications?|adherence|side effects?|"
    r"\d+/10)\b"
)

# DICOM: a dump's `(0010,0010) PN [Last^First]` (dcmdump; pydicom prints the attribute name
# and `PN: 'Last^First'`), or the keyword form `PatientName: LAST^FIRST`.
_DICOM_TAG = (
    r"\(0010, ?00(10|20|30)\)[ \t]+(?:[A-Za-z' ]{1,40}[ \t])?[A-Z]{2}:?[ \t]+"
    r"[\[\"']([^\]\"'\r\n]{1,64})[\]\"']"
)
_DICOM_KEYWORD = (
    r"\b(Patient(?:'?s)?[ _]?(?:Name|ID|Birth[ _]?Date))[ \t]*[:=][ \t]*[\"'\[]?"
    r"([^\"'\]\r\n,;]{1,64}?)[\"'\]]?[ \t]*(?:[,;\r\n]|$)"
)
_DICOM_TRIGGER = r"\(0010, ?00[123]0\)|Patient(?:'?s)?[ _]?(?:Name|ID|Birth[ _]?Date)[ \t]*[:=]"

# EHR audit logs: `patient_mrn=870-73426 patient="Pruitt, Svetlana"`.
_LOG = (
    r"\b(patient(?:_(?:mrn|name))?|mrn|medical_record_number)="
    r"(?:\"([^\"\r\n]{1,64})\"|'([^'\r\n]{1,64})'|([^\s,;&\"']{1,40}))"
)
_LOG_TRIGGER = r"\b(?:patient(?:_(?:mrn|name))?|mrn|medical_record_number)=[\"']?[A-Za-z0-9]"

# Health words beyond `clinical_text`'s pairs: one of them makes a message a patient's.
_HEALTH = (
    r"(?i)\b(?:oncology|chemo\w*|infusion|biops\w*|patholog\w*|radiolog\w*|mri|"
    r"ct (?:scan|chest|head|abdomen)|x-ray|viral load|lab results|test results|"
    r"prescri\w*|pharmacy|refill|rx ?#|diagnos\w*|surg\w*|arthroplasty|op note|operative|"
    r"specimen|vaccin\w*|psychiatr\w*|psychotherapy|therapy session|clinic|hospital|"
    r"physician|medication|mrn|dosage|tablets?|capsules?|\d+ ?(?:mg|mcg)|"
    r"prior authori[sz]ation|preauth\w*|icd-?10|ehr|emr|patient portal|"
    r"appointment with dr\.?|lab work|blood (?:work|test)|screening|prognosis|dialysis|"
    r"hiv(?:-1)?|hepatitis|hba1c|cancer|tumou?r|dental|caries|periodont\w*|abscess)\b"
)
# A name tied to a birth date is a patient's in any record about care, coverage or a chart.
_RECORD_WORDS = r"(?i)\b(?:patient|chart|claim|member id|cpt|dicom|nurse|tabs?|health)\b"

# Capitalised words that head a record or a sentence rather than name someone.
_NOT_NAME = words(
    "Patient Patients Pt Name Date Birth Record Records Number Medical Member Summary Report "
    "Note Notes List Label Sex Age Gender Address Phone Email Id Mrn Dob Re Subject To From "
    "Dear Hi Hello Hey Mr Mrs Ms Miss Mx Dr The This That These Those It He She They We You "
    "Your Our His Her Their Today Yesterday Medication Medications Discharge Admission "
    "Operative Op Pathology Pharmacy Prescription Lab Labs Results Result Referral Letter "
    "Chart Visit Encounter Claim Account Policy Unknown None Anonymous Anon Anonymized Redacted "
    "Study Series Image Subjective Objective Assessment Plan History Status Type Code Value "
    "Field Data Table Class String Optional Dict Int Str Bool Instructions Information "
    "Details Form Request Order Orders Department Unit Service Services Hospital Clinic Center "
    "Health Care Insurance Group Provider Physician Doctor Nurse Team Staff Customer Support "
    "Manager Colleague Colleagues Sir Madam Friends Everyone Valued Members User Users Admin"
)
_SKIP_LEAD = words(
    "Patient Pt Re Dear Hi Hello Hey Mr Mrs Ms Miss Mx Name Note Op Regarding For On Per "
    "Summary Report List Label To From Subject"
)
_PART = re.compile(r"[^\W\d_]+")


def _trimmed(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The name without heading words before it (`Patient`, `Re`), or None if not a name."""
    value = text[start:end]
    parts = value.split(" ")
    while len(parts) > 1 and parts[0].rstrip(",.:") in _SKIP_LEAD:
        start += len(parts.pop(0)) + 1
    value = text[start:end].rstrip(",. ")
    words_ = _PART.findall(value)
    if len([w for w in words_ if len(w) > 1]) < 2:
        return None
    if any(w.title() in _NOT_NAME or w.title() in STAND_INS for w in words_):
        return None
    if is_placeholder(value) or stand_in("patient_name", value):
        return None
    return start, start + len(value)


def _health(data: bytes) -> bool:
    """Whether the text is about someone's health (one clear term, or `clinical_text`)."""
    return matches(_HEALTH, data) or clinical_text(data)


def _person(health: bool, start: int, end: int, confidence: float) -> Finding:
    category: Category = "phi" if health else "pii"
    kind = "patient_name" if health else "person_name"
    return Finding(kind, category, start, end, confidence)


def _tied(text: str, data: bytes) -> Iterator[Finding]:
    """Names right before a birth date or record number: PHI in health text, else PII."""
    health: bool | None = None
    for match in spans(compiled(_TIED), data):
        name = _trimmed(text, *match[1])
        if name is None:
            continue
        if health is None:
            health = _health(data) or matches(_RECORD_WORDS, data)
        yield _person(health, *name, 0.75)
        if health and match[2][0] >= 0 and not stand_in("date_of_birth", text[slice(*match[2])]):
            yield Finding("date_of_birth", "phi", *match[2], 0.8)


def _salutations(text: str, data: bytes) -> Iterator[Finding]:
    """The addressee of a message about their health (`Hi Aisha Gonzalez, your infusion ...`)."""
    found = [name for m in spans(compiled(_SALUTATION), data) if (name := _trimmed(text, *m[1]))]
    if found and _health(data):
        for start, end in found:
            yield Finding("patient_name", "phi", start, end, 0.7)


def _subjects(text: str, data: bytes) -> Iterator[Finding]:
    """A name opening a clinical sentence (`S: Ingrid Johansson reports worsening knee pain`).

    After a SOAP label the symptom is context enough; elsewhere the text must be clinical too.
    """
    labelled: list[tuple[int, int]] = []
    loose: list[tuple[int, int]] = []
    for match in spans(compiled(_SUBJECT), data):
        name = _trimmed(text, *match[2])
        rest = text[slice(*match[4])]
        presents = text[slice(*match[3])] == "presents" and rest.startswith((" with", " w/"))
        if name is not None and (presents or _COMPLAINT.search(rest)):
            (labelled if match[1][0] >= 0 else loose).append(name)
    if loose and _health(data):
        labelled.extend(loose)
    for start, end in labelled:
        yield Finding("patient_name", "phi", start, end, 0.7)


def _dicom_name(value: str) -> bool:
    """A person's name (`Oyelaran^Dmitri^F`, `Ravi Lindqvist`), not a stand-in or a type."""
    parts = [p for p in re.split(r"[\^ ]+", value.strip()) if p]
    if not parts or not all(_PART.fullmatch(p.rstrip(".")) for p in parts):
        return False
    if "^" not in value and (len(parts) < 2 or not all(p[0].isupper() for p in parts)):
        return False
    return not any(p.title() in _NOT_NAME or p.title() in STAND_INS for p in parts)


def _birth_date(value: str) -> bool:
    return re.fullmatch(DATE, value.strip()) is not None and not stand_in("date_of_birth", value)


def _dicom_value(kind: str, text: str, start: int, end: int) -> Finding | None:
    value = text[start:end]
    end = start + len(value.rstrip())
    if kind == "name" and _dicom_name(value):
        return Finding("patient_name", "phi", start, end, 0.85)
    if kind == "id" and record_number(value):
        return Finding("medical_record_number", "phi", start, end, 0.85)
    if kind == "birth" and _birth_date(value):
        return Finding("date_of_birth", "phi", start, end, 0.85)
    return None


_TAG_KIND = {"10": "name", "20": "id", "30": "birth"}


def _dicom(text: str, data: bytes) -> Iterator[Finding]:
    """Patient name, ID and birth date in DICOM headers: PHI wherever they appear."""
    for match in spans(compiled(_DICOM_TAG), data):
        tag = text[slice(*match[1])]
        if (found := _dicom_value(_TAG_KIND[tag], text, *match[2])) is not None:
            yield found
    for match in spans(compiled(_DICOM_KEYWORD), data):
        key = text[slice(*match[1])].lower()
        kind = "name" if key.endswith("name") else "id" if key.endswith("id") else "birth"
        if (found := _dicom_value(kind, text, *match[2])) is not None:
            yield found


def _logs(text: str, data: bytes) -> Iterator[Finding]:
    """`patient_mrn=870-73426`, `patient="Pruitt, Svetlana"` in log lines."""
    for match in spans(compiled(_LOG), data):
        key = text[slice(*match[1])]
        start, end = next(match[g] for g in (2, 3, 4) if match[g][0] >= 0)
        value = text[start:end]
        if key in ("patient_name", "patient") and _log_name(value):
            yield Finding("patient_name", "phi", start, end, 0.8)
        elif key not in ("patient_name", "patient") and record_number(value):
            yield Finding("medical_record_number", "phi", start, end, 0.8)


def _log_name(value: str) -> bool:
    """`Pruitt, Svetlana`, `Svetlana Pruitt`, `PRUITT^SVETLANA`: a full name, not an id."""
    match = re.fullmatch(_NAME + r"|[A-Z][A-Za-z'-]+\^[A-Z][A-Za-z'-]+", value)
    return match is not None and _trimmed(value, 0, len(value)) == (0, len(value))


DETECTORS: list[Detector] = [
    Detector(_TIED_TRIGGER, _tied),
    Detector(_SALUTATION_TRIGGER, _salutations),
    Detector(r"[A-Z][A-Z'-]+, [A-Z][A-Z'-]+[ \t]*,[ \t]*[A-Z]{0,3}\d", _rows),
    Detector(_SUBJECT_TRIGGER, _subjects),
    Detector(_DICOM_TRIGGER, _dicom),
    Detector(_LOG_TRIGGER, _logs),
]
