"""Health data in tables, JSON/YAML objects, FHIR identifiers and clinician chat.

Each case plants values in the format a real packet holds them; a value counts as found only
when one finding covers all of it. The negatives are the same containers without a patient.
"""

from __future__ import annotations

import pytest

from offload_mcp.privacy import scan
from offload_mcp.privacy.pii import national_phone
from offload_mcp.privacy.tabular import cells


def _covered(text: str, value: str, category: str | None = None) -> bool:
    start = text.index(value)
    end = start + len(value)
    return any(
        f.start <= start and f.end >= end and (category is None or f.category == category)
        for f in scan(text)
    )


def _kinds(text: str) -> set[str]:
    return {f.kind for f in scan(text)}


LAB_CSV = (
    "mrn,patient_name,dob,test,result,units,flag\n"
    '56578408,"Holloway, Jamal",1939-11-10,HbA1c,9.8,%,H\n'
    'MR430367,"Achterberg, Hannah",2003-06-26,HbA1c,7.1,%,H\n'
    'H87882065,"O\'Neil, José",1997-11-25,HbA1c,10.9,%,H\r\n'
)


@pytest.mark.parametrize(
    "value", ["56578408", "MR430367", "H87882065", "Holloway, Jamal", "O'Neil, José"]
)
def test_lab_csv_with_quoted_cells(value: str) -> None:
    assert _covered(LAB_CSV, value, "phi")


def test_lab_csv_dob_is_phi() -> None:
    assert _covered(LAB_CSV, "1939-11-10", "phi")
    assert _covered(LAB_CSV, "2003-06-26", "phi")


def test_quoted_cells_keep_offsets() -> None:
    line = 'a, "b, ""c""" ,\t,d'
    assert [line[s:e] for s, e in cells(line, ",")] == ["a", 'b, ""c""', "", "d"]
    tsv = "x\t y\t"
    assert [tsv[s:e] for s, e in cells(tsv, "\t")] == ["x", "y", ""]
    line = '"open, never closed'
    assert [line[s:e] for s, e in cells(line, ",")] == ['"open', "never closed"]


@pytest.mark.parametrize(
    "text",
    [
        "mrn\tpatient_first\tpatient_last\n4013569\tHenrik\tHughes\n",
        "chart_number;first_name;last_name\nH5191003;Henrik;Hughes\n",
        "first_name,last_name,icd10\nHenrik,Hughes,E11.9\n",
        "name,test,result\nHenrik Hughes,potassium,5.9\n",
        "| patient | dob | diagnosis |\n|---|---|---|\n| Henrik Hughes | 1997-11-25 | E11.9 |\n",
        "INSERT INTO encounters (mrn, patient_first, patient_last, birth_date, icd10) VALUES\n"
        "  ('003173123', 'Henrik', 'Hughes', '1991-06-26', 'J18.9');\n",
    ],
)
def test_clinical_tables_flag_patient_names(text: str) -> None:
    assert _covered(text, "Hughes", "phi")


def test_name_table_inside_clinical_text() -> None:
    text = (
        "Discharge list for the oncology ward, diagnosis codes attached.\n\n"
        "full_name,room\nHenrik Hughes,412\n"
    )
    assert _covered(text, "Henrik Hughes", "phi")


@pytest.mark.parametrize(
    "text",
    [
        "id,name,email\n1,Henrik Hughes,henrik@contoso-labs.com\n",
        "| name | dob |\n|---|---|\n| Henrik Hughes | 1997-11-25 |\n",
        "INSERT INTO users (id, first_name, last_name, phone) VALUES\n"
        "  (1, 'Henrik', 'Hughes', '415-867-5309');\n",
        "name,test,result\ntest_login,unit,pass\nTest User,e2e,fail\n",
        "mrn,name\nH5191003,Unknown\n",
    ],
)
def test_names_outside_patient_tables_are_not_phi(text: str) -> None:
    assert not any(f.kind == "patient_name" for f in scan(text))


def test_markdown_table_dob_is_personal_data() -> None:
    text = "| name | dob |\n|---|---|\n| Tariq Whitfield | 2 Aug 1948 |\n"
    assert _covered(text, "2 Aug 1948", "pii")


@pytest.mark.parametrize(
    "text, value",
    [
        ('{"mrn": "5691457", "status": "active"}', "5691457"),
        ("{'mrn': 'H51910033'}", "H51910033"),
        ("mrn: 'MR430367'\n", "MR430367"),
        ('<field name="MRN">H87882065</field>', "H87882065"),
    ],
)
def test_mrn_after_quotes(text: str, value: str) -> None:
    assert _covered(text, value, "phi")


CLAIM = """{
  "claim_id": "CLM87221364",
  "patient": {
    "name": "Dmitri Johansson",
    "dob": "1967-12-19",
    "mrn": "5691457"
  },
  "provider": {"name": "Mercy Clinic"},
  "diagnosis_codes": ["J44.1"]
}
"""


def test_json_patient_object() -> None:
    assert _covered(CLAIM, "Dmitri Johansson", "phi")
    assert _covered(CLAIM, "1967-12-19", "phi")
    assert not _covered(CLAIM, "Mercy Clinic")


def test_yaml_subscriber_block_in_claim() -> None:
    text = (
        "claim: CLM-2025-11873\ndiagnosis: E11.9\nsubscriber:\n  name: Rosa Gallagher\n"
        "  member_id: W123456789\nprovider:\n  name: Northside Clinic\n"
    )
    assert _covered(text, "Rosa Gallagher", "phi")


def test_member_objects_outside_health_data_are_clean() -> None:
    text = '{"team": "infra", "member": {"name": "Rosa Gallagher", "role": "owner"}}\n'
    assert "patient_name" not in _kinds(text)


FHIR = """{
  "resourceType": "Patient",
  "identifier": [
    {
      "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                           "code": "MR"}]},
      "system": "urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.14",
      "value": "H21389060"
    }
  ],
  "name": [{"family": "Mbeki", "given": ["Amara"]}],
  "gender": "female"
}
"""


def test_fhir_identifier_after_nested_coding() -> None:
    assert _covered(FHIR, "H21389060", "phi")
    assert not _covered(FHIR, "female")


@pytest.mark.parametrize(
    "text, name",
    [
        (
            "Dr. Patel - labs back on Jamal Weber, MRN: H87882065. K 5.9, repeating.\n",
            "Jamal Weber",
        ),
        (
            "[07:55] rn.kelly: bed 12, Arjun Ostrowski (MRN 69188616) spiking to 39.2\n",
            "Arjun Ostrowski",
        ),
        ("pt Weber, Jamal - MRN 4013569 needs a K recheck\n", "Weber, Jamal"),
        (
            "Seen for diabetes, on metformin per Rx: Mei Blackwood DOB 03/04/1950, A1c 7.2\n",
            "Mei Blackwood",
        ),
    ],
)
def test_clinician_chat_name_before_identifier(text: str, name: str) -> None:
    assert _covered(text, name, "phi")


@pytest.mark.parametrize(
    "text",
    [
        "## Lookup By MRN\n\nSearch By MRN returns one record.\n",
        "Customer verification: Jamal Weber DOB 1984-03-12, tier gold\n",
    ],
)
def test_names_near_identifier_words_without_a_patient(text: str) -> None:
    assert not any(f.category == "phi" and f.kind == "patient_name" for f in scan(text))


@pytest.mark.parametrize(
    "value",
    [
        "090-1156-5793",
        "(02) 1264 1108",
        "06 12 23 34 14",
        "074173 90263",
        "8120 4048",
        "010 160 2696",
        "612 35 56 85",
        "(11) 97922-0241",  # Brazil: 11 digits starting with 1, not NANP
    ],
)
def test_national_phones_in_phone_columns(value: str) -> None:
    csv = f"id,name,phone\n1,Henrik Hughes,{value}\n2,Rosa Gallagher,415-867-5309\n"
    sql = f"INSERT INTO users (id, email, phone) VALUES (1, 'h@contoso-labs.com', '{value}');\n"
    json = f'{{"name": "Henrik Hughes", "phone": "{value}"}}\n'
    for text in (csv, sql, json):
        assert _covered(text, value, "pii"), text


@pytest.mark.parametrize(
    "value", ["555-0100", "202-555-0143", "07700 900123", "000-000-0000", "2024-01-15", "N/A"]
)
def test_fictional_or_not_phones_in_phone_columns(value: str) -> None:
    assert not national_phone(value)
    assert not _covered(f"id,phone\n1,{value}\n", value)


PSQL = (
    "clinic=> SELECT mrn, first_name, last_name, dob, diagnosis FROM patients;\n"
    "    mrn    | first_name | last_name |    dob     |   diagnosis\n"
    "-----------+------------+-----------+------------+---------------\n"
    " 771204958 | Ingrid     | Halvorsen | 1958-03-19 | heart failure\n"
    " 802113377 | Tariq      | Mahmood   | 1990-12-01 | asthma\n"
    "(2 rows)\n"
)


@pytest.mark.parametrize("value", ["771204958", "Ingrid", "Halvorsen", "1958-03-19", "Mahmood"])
def test_psql_result_table(value: str) -> None:
    assert _covered(PSQL, value, "phi")


def test_psql_table_without_patients_is_clean() -> None:
    text = (
        " id | service | status\n"
        "----+---------+--------\n"
        "  1 | billing | ok\n"
        "  2 | search  | degraded\n"
    )
    assert scan(text) == []


CDA = """<ClinicalDocument xmlns="urn:hl7-org:v3">
  <recordTarget>
    <patientRole>
      <id extension="550128734" root="2.16.840.1.113883.19.5"/>
      <addr use="HP"><streetAddressLine>17 Quarry Road</streetAddressLine></addr>
      <telecom value="tel:+1-617-555-0143" use="HP"/>
      <patient>
        <name use="L"><given>Annika</given><family>Lindgren</family></name>
        <birthTime value="19770914"/>
      </patient>
      <providerOrganization>
        <id extension="99887766" root="2.16.840.1.113883.19.5"/>
        <name>Harbor Family Practice</name>
      </providerOrganization>
    </patientRole>
  </recordTarget>
</ClinicalDocument>
"""


@pytest.mark.parametrize(
    "value", ["550128734", "17 Quarry Road", "+1-617-555-0143", "Annika", "Lindgren", "19770914"]
)
def test_cda_record_target(value: str) -> None:
    assert _covered(CDA, value, "phi")


def test_cda_provider_organization_is_not_the_patient() -> None:
    assert not _covered(CDA, "99887766")
    assert not _covered(CDA, "Harbor Family Practice")


X12 = (
    "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *250301*0930*^*00501"
    "*000000417*0*P*:~GS*HC*SENDER*RECEIVER*20250301*0930*417*X*005010X222A1~\n"
    "NM1*PR*2*NORTHWIND HEALTH PLAN*****PI*60054~\n"
    "NM1*IL*1*Okoro*Chidi*N***MI*XQ4418820~\n"
    "N3*88 Canal Street~\n"
    "DMG*D8*19840517*M~\n"
    "NM1*QC*1*Okoro*Adanna~DMG*D8*20120103*F~\n"
)


@pytest.mark.parametrize(
    "value", ["Okoro", "Chidi", "XQ4418820", "88 Canal Street", "19840517", "Adanna", "20120103"]
)
def test_x12_claim_subscriber_and_patient(value: str) -> None:
    assert _covered(X12, value, "phi")


def test_x12_payer_is_not_a_patient() -> None:
    assert not _covered(X12, "NORTHWIND HEALTH PLAN", "phi")
    assert not _covered(X12, "60054", "phi")
    employer = "NM1*IL*2*CONTOSO LOGISTICS*****MI*GRP7733102~"
    assert not _covered(employer, "CONTOSO LOGISTICS", "phi")
    assert _covered(employer, "GRP7733102", "phi")


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Pt Ingrid T. Solberg, 71F, MRN 7583424, presents w/ dyspnea. PMH: COPD, HTN.", None),
        (
            "Hi Dr. Patel, this is Ravi Menon (DOB March 3, 1970). Since starting lisinopril "
            "10 mg daily I have had a cough. Are these side effects?",
            "Ravi Menon",
        ),
        (
            "0700 handoff. Bed 4: OKONKWO, ADAEZE, MRN 46-85-69, on insulin drip, asthma hx.",
            "OKONKWO, ADAEZE",
        ),
        (
            '{"note": "Tomas K. Varga reports symptoms worsening; asthma, on albuterol"}',
            "Tomas K. Varga",
        ),
        ("Discharge summary: Farid Haddad was admitted with pneumonia.", "Farid Haddad"),
        ("On metformin for diabetes. Olga Berg, 67 y.o. female, follow-up.", "Olga Berg"),
        ("Progress note, on metformin. Tariq Said, 54 year old male with CHF.", "Tariq Said"),
    ],
)
def test_names_in_clinical_text(text: str, name: str | None) -> None:
    assert _covered(text, name or "Ingrid T. Solberg", "phi")


def test_first_name_and_surname_follow_the_full_name() -> None:
    text = (
        "Referral for Farid Haddad (DOB 02/11/1966) for evaluation of atrial fibrillation.\n"
        "Farid has been on apixaban 5 mg BID. Mr. Haddad denies chest pain.\n"
        "Dr. Haddad (no relation) will follow up.\n"
    )
    starts = {text[f.start : f.end] for f in scan(text) if f.kind == "patient_name"}
    assert {"Farid Haddad", "Farid", "Haddad"} <= starts
    doctor = text.index("Dr. Haddad") + 4
    assert not any(f.start == doctor for f in scan(text))


def test_first_name_alone_as_the_subject_of_a_clinical_sentence() -> None:
    text = "Assessment: depression.\nMaria has been on sertraline 50 mg daily since March.\n"
    assert _covered(text, "Maria", "phi")
    text = "Assessment: depression.\nShe has been on sertraline 50 mg daily since March.\n"
    assert not _covered(text, "She")


@pytest.mark.parametrize(
    "value",
    ["14 Feb 1991", "4/7/1989", "July 14, 1963", "1950-06-25"],
)
def test_birth_dates_in_clinical_text_are_phi(value: str) -> None:
    text = (
        "Admission note. Chief complaint: chest pain. Hx hypertension.\n"
        "Date of birth (verified): 14 Feb 1991\nDOB: 4/7/1989\nborn July 14, 1963\n"
        "D.O.B. 1950-06-25\n"
    )
    assert _covered(text, value, "phi")


@pytest.mark.parametrize("value", ["46-85-69", "758-3424", "474-1757"])
def test_mrn_with_separators(value: str) -> None:
    assert _covered(f"Admitted overnight. MRN {value}, diagnosis pending.", value, "phi")


def test_hl7_specification_prose_names_no_one() -> None:
    text = (
        "PID-3 Patient Identifier List (CX) — e.g. the medical record number, with the\n"
        "assigning authority. PID-5 Patient Name (XPN). PID-7 Date/Time of Birth (TS).\n"
        "Discharge and admission events (ADT^A03) carry the same PID segment.\n"
    )
    assert not [f for f in scan(text) if f.kind == "patient_name"]


@pytest.mark.parametrize("value", ["TEST-0001", "DEMO-42", "SAMPLE0003"])
def test_placeholder_record_numbers(value: str) -> None:
    text = f'def make_patient():\n    return dict(mrn="{value}", diagnosis="none")\n'
    assert not _covered(text, value)


def test_tools_and_products_in_clinical_software_docs_are_not_patients() -> None:
    text = (
        "The patient service stores diagnosis codes (ICD-10) and medication lists.\n"
        "Sentry reports errors from the admission workflow; Google Analytics reports views.\n"
        "Coverage reports are uploaded by CI. Jenkins has been on version 2.4 since March.\n"
        "Grafana presents the encounter latency dashboards.\n"
        "Release Manager was admitted to the on-call rota.\n"
    )
    assert not [f for f in scan(text) if f.kind == "patient_name"]


def test_name_before_admission_to_a_unit() -> None:
    text = "Hx: hypertension, diabetes. Lena Marsh was admitted to the MICU with sepsis."
    assert _covered(text, "Lena Marsh", "phi")


MYSQL = (
    "mysql> SELECT mrn, first_name, last_name, dob FROM patients;\n"
    "+-----------+------------+-----------+------------+\n"
    "| mrn       | first_name | last_name | dob        |\n"
    "+-----------+------------+-----------+------------+\n"
    "| 640031587 | Nadia      | Ferreira  | 1966-04-30 |\n"
    "+-----------+------------+-----------+------------+\n"
    "1 row in set (0.00 sec)\n"
)
PSQL_EXPANDED = (
    "clinic=# SELECT * FROM patients LIMIT 1;\n"
    "-[ RECORD 1 ]-+--------------\n"
    "mrn           | 558810342\n"
    "first_name    | Oskar\n"
    "last_name     | Brandt\n"
    "dob           | 1971-09-16\n"
    "diagnosis     | gout\n"
)


@pytest.mark.parametrize(
    ("text", "values"),
    [
        (MYSQL, ["640031587", "Nadia", "Ferreira", "1966-04-30"]),
        (PSQL_EXPANDED, ["558810342", "Oskar", "Brandt", "1971-09-16"]),
    ],
)
def test_mysql_and_psql_expanded_results(text: str, values: list[str]) -> None:
    assert all(_covered(text, value, "phi") for value in values)


# Templates, fixtures and the standards' own examples: documentation, not people. A stand-in
# name or a sentinel birth date makes the whole record (resource, message, row) a fixture.
FIXTURES = {
    "fhir_template": '{"resourceType":"Patient","name":[{"family":"<family>","given":'
    '["<given>"]}],"birthDate":"YYYY-MM-DD"}',
    "fhir_mustache": '{"resourceType":"Patient","name":[{"family":"{{family}}","given":'
    '["${given}"]}],"birthDate":"xxx"}',
    "fhir_test_patient": '{"resourceType":"Patient","name":[{"family":"Test","given":'
    '["Patient"]}],"birthDate":"1900-01-01"}',
    "fhir_sentinel_dob": '{"resourceType":"Patient","identifier":[{"value":"448102"}],'
    '"name":[{"family":"Okafor","given":["Chidi"]}],"birthDate":"1900-01-01"}',
    "fhir_spec_example": '{"resourceType":"Patient","id":"example","name":[{"use":"official",'
    '"family":"Chalmers","given":["Peter","James"]}],"gender":"male","birthDate":"1974-12-25"}',
    "sql_insert": "INSERT INTO patients (mrn, first_name, last_name, dob) VALUES "
    "('MRN0001', 'Test', 'Patient', '1900-01-01');",
    "markdown_row": "| mrn | name | dob |\n|---|---|---|\n| 000000 | John Doe | 1970-01-01 |\n",
    "csv_row": "mrn,name,dob,diagnosis\n000000,Erika Mustermann,1970-01-01,E11.9\n",
    "hl7_everyman": "MSH|^~\\&|ADT1|GOOD HEALTH HOSPITAL|GHH LAB|GHH|198808181126||ADT^A01|"
    "MSG00001|P|2.8\rPID|1||PATID1234^^^GHH^MR||EVERYMAN^ADAM^A^III||19610615|M|||"
    "2222 HOME STREET^^GREENSBORO^NC^27401-1020||(555) 555-2004\r"
    "NK1|1|NUCLEAR^NELDA^W|SPO^SPOUSE\r",
    "hl7_everywoman": "PID|1||555-44-4444^^^MR||EVERYWOMAN^EVE^E^^^^L|JONES|19620320|F\r",
    "hl7_template": "PID|1||<mrn>^^^HOSP^MR||<family>^<given>||YYYYMMDD|F\r",
    "cda_doe": '<recordTarget><patientRole><id extension="998991" root="2.16.840.1"/>'
    "<patient><name><given>Jane</given><family>Doe</family></name>"
    '<birthTime value="19700101"/></patient></patientRole></recordTarget>',
    "x12_doe": "NM1*IL*1*DOE*JOHN****MI*W12345678~N3*12 ELM ST~DMG*D8*19700101*M~",
    "note_mustermann": "Patient: Max Mustermann, diagnosis hypertension, metformin 500 mg.",
}
# The same containers about someone real: a realistic name and birth date, found as PHI.
REAL = {
    "fhir": (
        '{"resourceType":"Patient","name":[{"family":"Okafor","given":["Chidi"]}],'
        '"birthDate":"1983-07-14"}',
        ["Okafor", "Chidi", "1983-07-14"],
    ),
    "sql": (
        "INSERT INTO patients (mrn, first_name, last_name, dob) VALUES "
        "('MRN448102', 'Lucia', 'Bertolini', '1958-02-27');",
        ["MRN448102", "Lucia", "Bertolini", "1958-02-27"],
    ),
    "markdown": (
        "| mrn | name | dob |\n|---|---|---|\n| 730114 | Tomasz Wilk | 1991-10-03 |\n",
        ["730114", "Tomasz Wilk", "1991-10-03"],
    ),
    "csv": (
        "mrn,name,dob,diagnosis\n882301,Aiyana Redcloud,1976-05-19,E11.9\n",
        ["882301", "Aiyana Redcloud", "1976-05-19"],
    ),
    "hl7": (
        "MSH|^~\\&|ADT1|MERCY|LAB|MERCY|202401021130||ADT^A01|MSG7|P|2.5\r"
        "PID|1||480021^^^MERCY^MR||HALVORSEN^INGRID^M||19490811|F\r",
        ["480021^^^MERCY^MR", "HALVORSEN^INGRID^M", "19490811"],
    ),
    "cda": (
        '<recordTarget><patientRole><id extension="771203" root="2.16.840.1"/>'
        "<patient><name><given>Rosalind</given><family>Achebe</family></name>"
        '<birthTime value="19620904"/></patient></patientRole></recordTarget>',
        ["771203", "Rosalind", "Achebe", "19620904"],
    ),
    "x12": (
        "NM1*IL*1*KOWALCZYK*MAREK****MI*W88213407~N3*41 BIRCH LN~DMG*D8*19800217*M~",
        ["KOWALCZYK", "MAREK", "W88213407", "41 BIRCH LN", "19800217"],
    ),
    "note": (
        "Patient: Marek Kowalczyk, diagnosis hypertension, metformin 500 mg.",
        ["Marek Kowalczyk"],
    ),
}


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_placeholders_fixtures_and_spec_examples_are_not_phi(name: str) -> None:
    text = FIXTURES[name]
    assert not [text[f.start : f.end] for f in scan(text) if f.category == "phi"]


@pytest.mark.parametrize("name", ["fhir_template", "sql_insert", "markdown_row", "cda_doe"])
def test_fixture_records_are_clean(name: str) -> None:
    assert scan(FIXTURES[name]) == []


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_records_beside_the_fixtures_are_found(name: str) -> None:
    text, values = REAL[name]
    assert all(_covered(text, value, "phi") for value in values)


def test_a_fixture_drops_only_its_own_record() -> None:
    bundle = (
        '{"resourceType":"Bundle","entry":[{"resource":' + FIXTURES["fhir_test_patient"] + "},"
        '{"resource":' + REAL["fhir"][0] + "}]}"
    )
    assert all(_covered(bundle, value, "phi") for value in REAL["fhir"][1])
    assert not _covered(bundle, "Test")
    rows = (
        "mrn,name,dob,diagnosis\n000000,John Doe,1970-01-01,E11.9\n882301,Ana Ruiz,1976-05-19,I10\n"
    )
    assert _covered(rows, "Ana Ruiz", "phi")
    assert not _covered(rows, "John Doe")
    messages = FIXTURES["hl7_everyman"] + REAL["hl7"][0]
    assert _covered(messages, "HALVORSEN^INGRID^M", "phi")
    assert not _covered(messages, "EVERYMAN^ADAM^A^III")
    claim = FIXTURES["x12_doe"] + REAL["x12"][0]
    assert _covered(claim, "KOWALCZYK", "phi")
    assert not _covered(claim, "DOE")


def test_impossible_dates_are_not_birth_dates() -> None:
    text = '{"resourceType":"Patient","name":[{"family":"Okafor"}],"birthDate":"1983-13-45"}'
    assert not _covered(text, "1983-13-45", "phi")
    assert _covered(text, "Okafor", "phi")


# Layouts without a `Patient:` label: who the record is about is in its shape.
UNLABELLED_PHI = {
    "chat speaker": (
        "[09:14] Dr. Okoro: how is the eczema since the methotrexate?\n"
        "[09:15] Ines Marwick: still itchy, and nausea most mornings\n",
        ["Ines Marwick"],
    ),
    "birth date as an answer": (
        "Agent: Before we refill your lisinopril prescription, what is your date of birth?\n"
        "Caller: sure, it's 14 March 1971\n",
        ["14 March 1971"],
    ),
    "thanked patient": (
        "Pharmacist: thanks Rolf Ekdahl, your prescription for warfarin is ready.\n",
        ["Rolf Ekdahl"],
    ),
    "python dict beside an mrn": (
        "KeyError: 'dx' while loading {'name': 'Aisha Oyelaran', 'mrn': 'K4417203', "
        "'birth_date': '1977-02-19'}\n",
        ["Aisha Oyelaran", "K4417203", "1977-02-19"],
    ),
    "patient object id and dateOfBirth": (
        '{"patient": {"id": "318-27-604", "fullName": "Bo Lindgren", '
        '"dateOfBirth": "1983-10-02"}, "diagnoses": ["J45.909 asthma"]}',
        ["318-27-604", "Bo Lindgren", "1983-10-02"],
    ),
    "dashed hospital record number": (
        "Adverse event: grade 2 neutropenia\nHospital record no.: 612-08-455\n",
        ["612-08-455"],
    ),
    "glued mrn label": ("Discharge summary, diagnosis CHF. MRN8332976 follow up.", ["MRN8332976"]),
    "x12 name packed with ^": (
        "ISA*00*~\nNM1*IL*1*NOWAK^TERESA****MI*55120934~\nDMG*D8*19580412*F~\n",
        ["NOWAK^TERESA", "55120934"],
    ),
    "bed board with unquoted LAST, FIRST": (
        "Unit,Bed,Patient,MRN,Age,Dx\n3E,07,OYELARAN, DMITRI,204-51-773,59,COPD exacerbation\n",
        ["OYELARAN, DMITRI", "204-51-773"],
    ),
    "note subject after a section label": (
        "SUBJECTIVE: Astrid Hargreaves is a 54 y/o male with hx of HTN, chest pain x2 days.\n"
        "PLAN: admit to telemetry, serial troponins.\n",
        ["Astrid Hargreaves"],
    ),
}


@pytest.mark.parametrize("name", sorted(UNLABELLED_PHI))
def test_unlabelled_phi_is_found(name: str) -> None:
    text, values = UNLABELLED_PHI[name]
    for value in values:
        assert _covered(text, value, "phi"), value


UNLABELLED_CLEAN = {
    "dev chat speakers": (
        "[10:02] Mara Jensen: the deploy is green\n[10:03] Tobias Reed: merging the rash fix\n"
    ),
    "birth date question in docs": (
        "Q: Which field holds the date of birth?\nA: see schema.py, it's `dob` (ISO 8601).\n"
    ),
    "thanks in a code review": "thanks Priya Raman, the retry loop looks right now.\n",
    "dict with a build id": "{'name': 'Release Train', 'build_id': '20240311', 'status': 'ok'}",
    "x12 payer": "NM1*PR*2*ACME HEALTH*****PI*12345~\n",
    "csv of cities": "city,country,population\nParis, France,2102650\n",
}


@pytest.mark.parametrize("name", sorted(UNLABELLED_CLEAN))
def test_unlabelled_lookalikes_are_not_phi(name: str) -> None:
    found = {f.kind for f in scan(UNLABELLED_CLEAN[name])}
    assert not found & {"patient_name", "medical_record_number", "date_of_birth", "mrn"}, found


@pytest.mark.parametrize(
    "text,value",
    [
        (
            "Intake form\nClient: Elena Van der Berg\nReason for visit: anxiety, insomnia\n",
            "Elena Van der Berg",
        ),
        (
            "Client: Marisol de la Cruz\nDx: major depressive disorder; medication review\n",
            "Marisol de la Cruz",
        ),
        (
            "Client: Fiona McAllister\nDx: hypertension; medication: amlodipine\n",
            "Fiona McAllister",
        ),
        (
            "4W,14B,SCHREIBER, ASTRID,133-34-582,81,Hip fracture,Dr. Lee\n"
            "4W,12A,CASTELLANO, TOMASZ,U5298298,67,NSTEMI,Dr. Cho\n",
            "SCHREIBER, ASTRID",
        ),
        (
            "4W,14B,SCHREIBER, ASTRID,133-34-582,81,Hip fracture,Dr. Lee\n"
            "4W,12A,CASTELLANO, TOMASZ,U5298298,67,NSTEMI,Dr. Cho\n",
            "U5298298",
        ),
    ],
)
def test_particles_and_headerless_census_rows(text: str, value: str) -> None:
    assert _covered(text, value, "phi")


def test_headerless_rows_outside_health_text_are_not_phi() -> None:
    text = "region,site,OWNER, TEAM,2024-03-11,ok\nEU,fra1,SMITH, PLATFORM,4412-771,green,\n"
    assert not {f.kind for f in scan(text)} & {"patient_name", "medical_record_number"}


@pytest.mark.parametrize(
    "text,values",
    [
        (
            "Result for Tariq Olsen (DOB 04/15/1985): HIV-1/2 Ag/Ab screen REACTIVE.\n",
            ["Tariq Olsen", "04/15/1985"],
        ),
        (
            "DENTAL CHART\nPatient: Ingrid Nyberg  Chart #: E3530042\nDOB: July 11, 1979\n"
            "Tooth #19: recurrent caries\n",
            ["Ingrid Nyberg", "July 11, 1979"],
        ),
        (
            "Vaccination record\nName: Jonas Whitfield\nDate of birth: 03/11/1988\n"
            "Vaccine: MMR dose 2\n",
            ["Jonas Whitfield", "03/11/1988"],
        ),
    ],
)
def test_names_and_birth_dates_in_health_records_are_phi(text: str, values: list[str]) -> None:
    for value in values:
        assert _covered(text, value, "phi"), value


def test_a_birth_date_in_a_signup_form_stays_pii() -> None:
    text = "Newsletter signup\nName: Jonas Whitfield\nDate of birth: 03/11/1988\n"
    assert {f.category for f in scan(text)} <= {"pii"}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Bed 12: Fatima Osei, 45M, s/p lap chole POD1, oxycodone 5 mg q4h PRN", "Fatima Osei"),
        ("Pt: Priya Fischer | Acct/MRN 455-784-89 | Exam: CT abdomen/pelvis", "Priya Fischer"),
        ("Patient(name='Noah Gonzalez', mrn='E445436887', dob='1941-05-20')", "Noah Gonzalez"),
        ("Patient Name: O'BRIEN, ELENA  Dx: COPD exacerbation, MRN 55120943", "O'BRIEN, ELENA"),
        ("id,member_name,member_dob,dx\nCLM6205,James Petrov,08/27/1958,M54.5\n", "08/27/1958"),
    ],
)
def test_fifth_corpus_layouts(text: str, value: str) -> None:
    assert _covered(text, value, "phi"), text


def test_a_user_object_is_no_patient() -> None:
    assert scan("User(name='Ada Lovelace', email='ada@example.com', role='admin')") == []
