"""One-time costs of the scan, paid before the first packet waits on them.

The first scan in a process compiles the rule book (~50 ms), imports `phonenumbers` at the
first international number (~200 ms), compiles the lazily built patterns and grows each RE2
DFA from nothing. A server pays all that once, off its event loop (`gate.scan_messages`),
instead of inside whichever packet happens to hit each path first.
"""

from __future__ import annotations

import threading

_done = threading.Event()

# Invented values (no real person or credential, yet not the stand-ins the detectors skip)
# that reach every detector's slow path once: assignments, headers, URLs, phones, tables, SQL,
# clinical records, JSON and URL escapes. What the scan finds in them is thrown away.
_SAMPLE = "\n".join(
    (
        'API_KEY="<API_KEY>"  password: ${DB_PASSWORD}  token = os.environ["TOKEN"]',
        "Authorization: Bearer [REDACTED]  X-API-Key: ****",
        "postgres://app:changeme@db.example.com:5432/app  https://user@example.org/path",
        "call +44 20 7946 0000 or (555) 555-0100, 001 555 0100, mail jane.doe@example.com",
        "host 192.0.2.10 and 2001:db8::1, card 4111 1111 1111 1111, IBAN GB82WEST12345698765432",
        "ssn 000-00-0000, 1600 Example Avenue, DOB: 1970-01-01",
        "name,email,phone,dob\nAda Quill,ada@example.com,555-0100,1971-02-03",
        "INSERT INTO people (name, phone) VALUES ('Ada Quill', '555-0100');",
        'phone: "555-0100"  ssn=536-22-8812',
        "Patient: Ada Quill  MRN: Q1234567  Diagnosis: none",
        "PID|1||Q1234567^^^MRN||QUILL^ADA||19710203|F",
        '{"resourceType": "Patient", "name": [{"family": "Quill"}], "birthDate": "1971-02-03"}',
        '{"note": "line one\\nsecret: \\"<SECRET>\\"\\u0041"}  q=a%20b%40example.com',
        "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----",
        '<add key="ApiKey" value="${API_KEY}" />  AKIAIOSFODNN7EXAMPLE',
        '{"key": "token", "value": "<TOKEN>"}  - name: DB_PASSWORD\n  value: "${X}"',
        "machine example.com login me password <PASSWORD>\n*:*:*:me:<PASSWORD>",
        "$ kubectl get secret x -o jsonpath='{.data.password}' | base64 -d\n<PASSWORD>",
        "the api secret? use `<SECRET_VALUE_HERE>`  Home address: 1 Example Road",
        "Callback number: 020 7946 0000  mobile 8123 0000  Date of birth (verified): 1 Jan 1970",
        "| mrn | first_name | dob |\n|---|---|---|\n| Q1234567 | Ada | 1971-02-03 |",
        '<patientRole><id extension="Q1234567"/><patient><name><given>Ada</given></name>'
        "</patient></patientRole>  NM1*IL*1*QUILL*ADA****MI*Q1234567~DMG*D8*19710203~",
        "Pt Ada Quill, 67F, MRN Q1234567, presents with pain; Ada has been on aspirin 81 mg.",
    )
)


def warm() -> None:
    """Compile the rule book and load what the checks import lazily (idempotent)."""
    if _done.is_set():
        return
    from offload_mcp.privacy.detectors import scan
    from offload_mcp.privacy.pii import valid_phone

    scan(_SAMPLE)
    valid_phone("+44 20 7946 0000")  # `phonenumbers` and its parsing patterns
    _load_regions()
    _done.set()


def _load_regions() -> None:
    """Each region's numbering plan loads at its first number (~1 ms each)."""
    import phonenumbers

    from offload_mcp.privacy.pii import NATIONAL_REGIONS

    for region in NATIONAL_REGIONS.split():
        phonenumbers.is_valid_number(phonenumbers.parse("020 7946 0000", region))


def warmed() -> bool:
    """Whether `warm()` has run in this process."""
    return _done.is_set()
