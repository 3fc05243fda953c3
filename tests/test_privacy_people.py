"""People in health records by layout: names tied to a birth date or record number, letters'
salutations, notes' subjects, DICOM headers and EHR audit logs.

Each positive has a negative of the same shape without a real person or without clinical text.
"""

from __future__ import annotations

import pytest

from offload_mcp.privacy import people, scan
from offload_mcp.privacy.findings import Finding


def _covering(text: str, value: str) -> list[Finding]:
    start = text.index(value)
    end = start + len(value)
    return [f for f in scan(text) if f.start <= start and f.end >= end]


def _people(text: str) -> list[str]:
    """What `people.py` alone reports."""
    data = text.encode("ascii", "replace")
    return [text[f.start : f.end] for d in people.DETECTORS for f in d.run(text, data)]


@pytest.mark.parametrize(
    ("text", "name"),
    [
        (
            "Op note — Ravi Lindqvist, DOB 02/06/1980. Underwent L total hip arthroplasty.",
            "Ravi Lindqvist",
        ),
        (
            "MEDICATION LIST — Nadia Okafor — DOB 08/19/1951\n1. Lisinopril 20 mg daily",
            "Nadia Okafor",
        ),
        (
            "We are writing regarding Dmitri Petrenko (DOB September 6, 1953). The MRI request",
            "Dmitri Petrenko",
        ),
        (
            "Rx# 6612093   FILLED 03/08/24\nRavi Petrenko\nDOB 05/01/1995\nOXYCODONE 5MG TAB",
            "Ravi Petrenko",
        ),
        (
            "break-the-glass on MRN MR8595950 (Lars McAllister, DOB 04/20/1965) reason=emergency",
            "Lars McAllister",
        ),
        (
            "Specimen labeled with patient name Priya Gonzalez and DOB 10/10/1965; biopsies x12.",
            "Priya Gonzalez",
        ),
        ("Surgery follow-up: HORVAT, EMMA | MRN 4471902", "HORVAT, EMMA"),
        ("Chart review: Olga M. Andersen (MRN: 5520193), metformin 500 mg", "Olga M. Andersen"),
    ],
)
def test_name_tied_to_birth_date_or_record_number_is_phi(text: str, name: str) -> None:
    assert any(f.category == "phi" for f in _covering(text, name))


def test_tied_name_outside_health_text_is_pii() -> None:
    text = "Signup export: Marta Kowalski, DOB 1990-04-12, plan=pro\n"
    assert [(f.kind, f.category) for f in _covering(text, "Marta Kowalski")] == [
        ("person_name", "pii")
    ]


@pytest.mark.parametrize(
    "text",
    [
        "Patient Name, DOB 01/02/1990, MRN 1234567 are required fields.",
        "Full Name — Date of Birth 01/02/1990",
        "John Doe, DOB 03/04/1975, MRN 1234567 (test fixture)",
        "Test Patient\nDOB 03/04/1975\nmetformin 500 mg",
        "Lab Results MRN: 1234567 for the oncology clinic",
        "Discharge Instructions, MRN 9981234, hospital",
    ],
)
def test_field_names_and_stand_ins_are_not_tied_names(text: str) -> None:
    assert _people(text) == []


@pytest.mark.parametrize(
    ("text", "name"),
    [
        (
            "Dear Declan Kowalczyk, your HIV viral load results are ready in the patient portal.",
            "Declan Kowalczyk",
        ),
        (
            "Hi Aisha Gonzalez, this is a reminder of your oncology infusion appointment.",
            "Aisha Gonzalez",
        ),
        (
            "Hello Mrs. Mei-Ling Albuquerque,\nYour biopsy results are available.",
            "Mei-Ling Albuquerque",
        ),
    ],
)
def test_salutation_in_a_clinical_message(text: str, name: str) -> None:
    assert any(f.category == "phi" for f in _covering(text, name))


@pytest.mark.parametrize(
    "text",
    [
        "Hi Aisha Gonzalez, your order #4411 has shipped and arrives Tuesday.",
        "Dear Hiring Manager, I am applying for the role.",
        "Hi Team Lead, please review the hospital wiki migration.",
        "Dear Dr. Amelia Hart, the MRI slots are open.",
    ],
)
def test_salutation_without_a_patient(text: str) -> None:
    assert _people(text) == []


@pytest.mark.parametrize(
    ("text", "name"),
    [
        (
            "S: Bronwyn Subramanian reports worsening knee pain, 7/10, worse on stairs.",
            "Bronwyn Subramanian",
        ),
        ("CC: Ingrid Johansson complains of dizziness for 3 days.", "Ingrid Johansson"),
        (
            "Seen today in clinic. Tomasz Fairweather denies chest pain. Metformin continued.",
            "Tomasz Fairweather",
        ),
        (
            "Diagnosis pending. Bogdan Castellanos presents with fever and cough.",
            "Bogdan Castellanos",
        ),
    ],
)
def test_subject_of_a_clinical_sentence(text: str, name: str) -> None:
    assert any(f.category == "phi" for f in _covering(text, name))


@pytest.mark.parametrize(
    "text",
    [
        "Build Server reports failures on main.",
        "The dashboard shows latency. Grafana Cloud reports high pain points in onboarding.",
        "S: Bronwyn Subramanian reports the deploy finished.",
    ],
)
def test_subject_without_clinical_content(text: str) -> None:
    assert _people(text) == []


DCMDUMP = (
    "(0008,0060) CS [MR]\n"
    "(0010,0010) PN [Oyelaran^Dmitri^F]\n"
    "(0010,0020) LO [MR4903225]\n"
    "(0010,0030) DA [19651112]\n"
    "(0010,0040) CS [F]\n"
)
PYDICOM = "(0010, 0010) Patient's Name                      PN: 'Herrera^Aisha'\n"
KEYWORDS = "PatientName: OYELARAN^LUCINDA\nPatientID: MR9952228\nPatientBirthDate = 19651112\n"


@pytest.mark.parametrize(
    ("text", "value", "kind"),
    [
        (DCMDUMP, "Oyelaran^Dmitri^F", "patient_name"),
        (DCMDUMP, "MR4903225", "medical_record_number"),
        (DCMDUMP, "19651112", "date_of_birth"),
        (PYDICOM, "Herrera^Aisha", "patient_name"),
        (KEYWORDS, "OYELARAN^LUCINDA", "patient_name"),
        (KEYWORDS, "MR9952228", "medical_record_number"),
        (KEYWORDS, "19651112", "date_of_birth"),
    ],
)
def test_dicom_headers(text: str, value: str, kind: str) -> None:
    assert any(f.kind == kind and f.category == "phi" for f in _covering(text, value))


@pytest.mark.parametrize(
    "text",
    [
        "class Study:\n    PatientName: str\n    PatientID: int\n    PatientBirthDate: date\n",
        'ds.PatientName = "Anonymous^Patient"\nds.PatientID = "123456"\n',
        "(0010,0010) PN [ANONYMOUS]\n(0010,0020) LO [ID]\n(0010,0030) DA [19000101]\n",
        "PatientName = models.CharField(max_length=64)\n",
    ],
)
def test_dicom_shapes_without_a_patient(text: str) -> None:
    assert _people(text) == []


AUDIT = (
    "2024-03-02T10:14:02Z user=nurse.kim action=VIEW_CHART patient_mrn=870-73426 "
    'patient="Pruitt, Svetlana" section=psych_notes\n'
)


@pytest.mark.parametrize(
    ("value", "kind"),
    [("870-73426", "medical_record_number"), ("Pruitt, Svetlana", "patient_name")],
)
def test_ehr_audit_log(value: str, kind: str) -> None:
    assert any(f.kind == kind and f.category == "phi" for f in _covering(AUDIT, value))


@pytest.mark.parametrize(
    "text",
    [
        "patient=patient, mrn=None\n",
        'log.info("open", patient_name="{name}", mrn="${MRN}")\n',
        "patient_mrn=XXXX-1234 patient=42\n",
        "mrn=12 dob=unknown\n",
    ],
)
def test_log_keys_without_values(text: str) -> None:
    assert _people(text) == []
