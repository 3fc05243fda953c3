# ruff: noqa: E501
"""Build the privacy corpus deterministically: planted values in containers, and clean packets.

`build(seed)` returns dirty packets (text plus the spans and categories of what was planted)
and clean developer packets full of hard negatives. Run as a script to write JSON for a look:
`uv run python -m tests.privacy_corpus.generate out.json`.
"""

from __future__ import annotations

import json
import random
import string
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.privacy_corpus import values as v


@dataclass
class Packet:
    name: str
    text: str = ""
    planted: list[tuple[int, int, str, str]] = field(
        default_factory=list
    )  # start, end, category, kind

    def add(self, text: str) -> Packet:
        self.text += text
        return self

    def plant(self, value: str, category: str, kind: str) -> Packet:
        self.planted.append((len(self.text), len(self.text) + len(value), category, kind))
        self.text += value
        return self


def _secret(r: random.Random) -> tuple[str, str]:
    kind = r.choice(sorted(v.SECRETS))
    return kind, v.SECRETS[kind](r)


def _filler(r: random.Random) -> str:
    return r.choice(
        [
            "LOG_LEVEL=info\n",
            "PORT=8080\n",
            "DEBUG=false\n",
            "WORKERS=4\n",
            "REGION=eu-west-1\n",
            "FEATURE_X=true\n",
        ]
    )


def env_file(r: random.Random) -> Packet:
    p = Packet("env")
    for _ in range(r.randint(2, 5)):
        p.add(_filler(r))
        kind, value = _secret(r)
        key = r.choice(
            [
                "API_KEY",
                "SECRET_KEY",
                "AUTH_TOKEN",
                "DB_PASSWORD",
                "CLIENT_SECRET",
                "ACCESS_TOKEN",
                "PRIVATE_TOKEN",
            ]
        )
        p.add(f"{r.choice(['', 'export '])}{kind.upper()}_{key}=").plant(value, "secret", kind).add(
            "\n"
        )
    return p


def code_file(r: random.Random) -> Packet:
    p = Packet("python").add(
        "import os\nimport requests\n\nBASE_URL = 'https://api.service.io/v2'\n"
    )
    kind, value = _secret(r)
    quote = r.choice(["'", '"'])
    p.add(r.choice(["API_KEY", "TOKEN", "client_secret", "password", "SECRET"]) + " = " + quote)
    p.plant(value, "secret", kind).add(
        f"{quote}\n\n\ndef fetch(path):\n    headers = {{'User-Agent': 'svc/1.0'}}\n"
    )
    p.add("    return requests.get(BASE_URL + path, headers=headers, timeout=10).json()\n")
    if r.random() < 0.5:
        url_pw = (
            v.password(r).replace("@", "x").replace("/", "x").replace("#", "x").replace("%", "x")
        )
        p.add('engine = create_engine("').plant(
            f"postgresql://svc:{url_pw}@db-{r.randint(1, 9)}.internal:5432/app", "secret", "db_url"
        ).add('")\n')
    return p


def yaml_config(r: random.Random) -> Packet:
    p = Packet("yaml").add("service:\n  name: billing\n  replicas: 3\ncredentials:\n")
    for key in r.sample(
        ["password", "api_key", "token", "client_secret", "webhook_secret", "secret_key"], 3
    ):
        kind, value = _secret(r)
        q = r.choice(["", '"', "'"])
        p.add(f"  {key}: {q}").plant(value, "secret", kind).add(f"{q}\n")
    return p.add("logging:\n  level: INFO\n")


def json_config(r: random.Random) -> Packet:
    p = Packet("json").add('{\n  "name": "worker",\n  "timeout": 30,\n')
    kind, value = _secret(r)
    p.add(f'  "{r.choice(["apiKey", "api_key", "accessToken", "secret", "password"])}": "').plant(
        value, "secret", kind
    ).add('",\n  "retries": 3\n}\n')
    return p


def k8s_secret(r: random.Random) -> Packet:
    p = Packet("k8s").add(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: app-secrets\ntype: Opaque\nstringData:\n"
    )
    for key in ("DB_PASSWORD", "API_TOKEN"):
        kind, value = _secret(r)
        p.add(f"  {key}: ").plant(value, "secret", kind).add("\n")
    return p


def terraform(r: random.Random) -> Packet:
    pw = v.password(r)
    return (
        Packet("terraform")
        .add(
            'resource "aws_db_instance" "main" {\n  engine   = "postgres"\n  username = "admin"\n  password = "'
        )
        .plant(pw, "secret", "password")
        .add('"\n  instance_class = "db.t3.micro"\n}\n')
    )


def xml_config(r: random.Random) -> Packet:
    kind, value = _secret(r)
    pw = v.password(r).replace("<", "x").replace("&", "x")
    p = (
        Packet("xml")
        .add('<configuration>\n  <appSettings>\n    <add key="ApiKey" value="')
        .plant(value, "secret", kind)
        .add('" />\n  </appSettings>\n')
    )
    return (
        p.add("  <server>\n    <id>nexus</id>\n    <password>")
        .plant(pw, "secret", "password")
        .add("</password>\n  </server>\n</configuration>\n")
    )


def ini_file(r: random.Random) -> Packet:
    return (
        Packet("ini")
        .add("[database]\nhost = db.internal\nport = 5432\npassword = ")
        .plant(v.password(r), "secret", "password")
        .add("\n\n[cache]\nttl = 300\n")
    )


def curl_lines(r: random.Random) -> Packet:
    p = Packet("shell").add(
        "$ curl -s https://api.vendor.io/v1/items \\\n  -H 'Content-Type: application/json' \\\n"
    )
    kind, value = _secret(r)
    header = r.choice(["Authorization: Bearer ", "X-API-Key: ", "Authorization: token "])
    return p.add(f"  -H '{header}").plant(value, "secret", kind).add("'\n")


def git_diff(r: random.Random) -> Packet:
    kind, value = _secret(r)
    p = Packet("diff").add(
        "diff --git a/config/settings.py b/config/settings.py\nindex 3f2a1b9..8c7d6e5 100644\n--- a/config/settings.py\n+++ b/config/settings.py\n@@ -10,6 +10,7 @@\n DEBUG = False\n"
    )
    return p.add('+STRIPE_KEY = "').plant(value, "secret", kind).add("\"\n ALLOWED_HOSTS = ['*']\n")


def log_lines(r: random.Random) -> Packet:
    p = Packet("log")
    p.add(
        f"2025-03-0{r.randint(1, 9)}T10:2{r.randint(0, 9)}:11Z INFO request_id={uuid.UUID(int=r.getrandbits(128))} GET /v1/health 200 3ms\n"
    )
    p.add("2025-03-01T10:21:12Z DEBUG outbound call headers={'Authorization': 'Bearer ").plant(
        v.SECRETS["bearer"](r), "secret", "bearer"
    ).add("'}\n")
    p.add("2025-03-01T10:21:13Z WARN login failed for user ").plant(v.email(r), "pii", "email").add(
        " from "
    ).plant(v.public_ip(r), "pii", "ip").add("\n")
    return p


def traceback(r: random.Random) -> Packet:
    pw = "".join(r.choice(string.ascii_letters + string.digits) for _ in range(14))
    p = Packet("traceback").add(
        'Traceback (most recent call last):\n  File "/srv/app/db.py", line 42, in connect\n    conn = psycopg.connect(dsn)\npsycopg.OperationalError: connection failed: '
    )
    p.plant(f"postgresql://app:{pw}@10.0.3.4:5432/prod", "secret", "db_url").add(
        "\n  locals: user='"
    ).plant(v.email(r), "pii", "email").add("'\n")
    return p


def chat(r: random.Random) -> Packet:
    p = Packet("chat").add("[10:02] alice: can you check why deploy fails?\n[10:03] bob: ")
    if r.random() < 0.5:
        p.add("the staging password is ").plant(
            v.password(r).replace(".", "x"), "secret", "password"
        ).add(" , try again\n")
    else:
        kind, value = _secret(r)
        p.add("here is the token: ").plant(value, "secret", kind).add("\n")
    return (
        p.add("[10:04] alice: thanks! also ping me at ")
        .plant(v.email(r), "pii", "email")
        .add(" or ")
        .plant(v.us_phone(r), "pii", "phone")
        .add("\n")
    )


def service_account(r: random.Random) -> Packet:
    key = v.pem(r, "PRIVATE KEY") + "\n"
    escaped = json.dumps(key)[1:-1]
    p = Packet("gcp").add(
        '{\n  "type": "service_account",\n  "project_id": "acme-prod",\n  "private_key_id": "'
        + v.pick(r, v.HEX, 40)
        + '",\n  "private_key": "'
    )
    return p.plant(escaped, "secret", "gcp_private_key").add(
        '",\n  "client_email": "svc@acme-prod.iam.gserviceaccount.com"\n}\n'
    )


def key_file(r: random.Random) -> Packet:
    label = r.choice(
        [
            "RSA PRIVATE KEY",
            "OPENSSH PRIVATE KEY",
            "EC PRIVATE KEY",
            "PGP PRIVATE KEY BLOCK",
            "ENCRYPTED PRIVATE KEY",
        ]
    )
    return (
        Packet("pem")
        .add("# deploy key\n")
        .plant(
            v.pem(r, label, encrypted=r.random() < 0.3 and label == "RSA PRIVATE KEY"),
            "secret",
            "private_key",
        )
        .add("\n")
    )


def csv_customers(r: random.Random) -> Packet:
    p = Packet("csv").add("id,name,email,phone,dob,address\n")
    for i in range(r.randint(2, 5)):
        p.add(f"{i + 1},{v.name(r)},").plant(v.email(r), "pii", "email").add(",").plant(
            v.us_phone(r), "pii", "phone"
        ).add(",")
        p.plant(v.date(r).replace(",", ""), "pii", "dob").add(',"').plant(
            v.address(r).split(",")[0], "pii", "address"
        ).add('"\n')
    return p


def sql_insert(r: random.Random) -> Packet:
    p = Packet("sql").add("INSERT INTO customers (full_name, email, ssn, card_number) VALUES\n")
    for i in range(r.randint(1, 3)):
        p.add(f"  ('{v.name(r)}', '").plant(v.email(r), "pii", "email").add("', '").plant(
            v.ssn(r), "pii", "ssn"
        ).add("', '").plant(v.card(r), "pii", "card").add("')")
        p.add(",\n" if i < 2 else ";\n")
    return p


def user_json(r: random.Random) -> Packet:
    p = (
        Packet("user_json")
        .add('{"user": {"id": ' + str(r.randint(1000, 99999)) + ', "email": "')
        .plant(v.email(r), "pii", "email")
    )
    p.add('", "phone": "').plant(r.choice([v.us_phone, v.intl_phone])(r), "pii", "phone").add(
        '", "iban": "'
    ).plant(v.iban(r), "pii", "iban")
    return (
        p.add('", "lastLogin": "2025-02-11T08:00:00Z", "ip": "')
        .plant(v.public_ip(r), "pii", "ip")
        .add('"}}\n')
    )


def support_ticket(r: random.Random) -> Packet:
    p = (
        Packet("ticket")
        .add(f"Ticket #{r.randint(10000, 99999)}\nCustomer: {v.name(r)}\nShipping address: ")
        .plant(v.address(r), "pii", "address")
    )
    p.add("\nDate of birth: ").plant(v.date(r), "pii", "dob").add("\nCard on file: ").plant(
        v.card(r), "pii", "card"
    )
    return (
        p.add("\nCallback: ")
        .plant(v.intl_phone(r), "pii", "phone")
        .add("\nSSN for verification: ")
        .plant(v.ssn(r), "pii", "ssn")
        .add("\n")
    )


def clinical_note(r: random.Random) -> Packet:
    who = v.name(r)
    p = (
        Packet("note")
        .add("DISCHARGE SUMMARY\nPatient Name: ")
        .plant(who, "phi", "name")
        .add("\nMRN: ")
        .plant(v.mrn(r), "phi", "mrn")
    )
    p.add("\nDOB: ").plant(v.date(r), "phi", "dob").add(
        "\nAdmission Date: 2025-01-04\n\nHistory of present illness: "
    )
    p.add("Ms. ").plant(who.split()[1], "phi", "name").add(
        " is a 67-year-old with hypertension and type 2 diabetes admitted for chest pain.\n"
    )
    return p.add(
        "Medications: metformin 500 mg PO BID, lisinopril 10 mg daily.\nDiagnosis: NSTEMI (ICD-10 I21.4).\n"
    )


def hl7(r: random.Random) -> Packet:
    first, last = r.choice(v.FIRST).upper(), r.choice(v.LAST).upper()
    dob = f"{r.randint(1935, 2008)}{r.randint(1, 12):02d}{r.randint(1, 28):02d}"
    p = Packet("hl7").add(
        f"MSH|^~\\&|EPIC|GENHOSP|LAB|GENHOSP|20250301120000||ADT^A01|MSG{r.randint(1000, 9999)}|P|2.5\rEVN|A01|20250301120000\rPID|1||"
    )
    p.plant(v.pick(r, string.digits, 8), "phi", "mrn").add("^^^GENHOSP^MR||").plant(
        f"{last}^{first}", "phi", "name"
    ).add("^A||").plant(dob, "phi", "dob")
    return p.add(
        "|F|||123 MAIN ST^^BOSTON^MA^02118||(617)555-0134\rPV1|1|I|W^389^1\rDG1|1||E11.9^Type 2 diabetes^I10\r"
    )


def fhir(r: random.Random) -> Packet:
    first, last = r.choice(v.FIRST), r.choice(v.LAST)
    p = Packet("fhir").add(
        '{\n  "resourceType": "Patient",\n  "id": "pat-'
        + str(r.randint(100, 999))
        + '",\n  "identifier": [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": "'
    )
    p.plant(v.pick(r, string.digits, 8), "phi", "mrn").add('"}],\n  "name": [{"family": "').plant(
        last, "phi", "name"
    ).add('", "given": ["').plant(first, "phi", "name")
    return (
        p.add('"]}],\n  "gender": "female",\n  "birthDate": "')
        .plant(f"{r.randint(1935, 2008)}-0{r.randint(1, 9)}-1{r.randint(0, 9)}", "phi", "dob")
        .add('"\n}\n')
    )


def claim(r: random.Random) -> Packet:
    p = (
        Packet("claim")
        .add("CLAIM FORM CMS-1500\nInsured Name: ")
        .plant(v.name(r), "phi", "name")
        .add("\nMember ID: ")
        .plant("W" + v.pick(r, string.digits, 9), "phi", "mrn")
    )
    return (
        p.add("\nPatient DOB: ")
        .plant(v.date(r), "phi", "dob")
        .add("\nDiagnosis code: F32.1 (major depressive disorder)\nCPT: 90837\n")
    )


DIRTY: list[Callable[[random.Random], Packet]] = [
    env_file,
    code_file,
    yaml_config,
    json_config,
    k8s_secret,
    terraform,
    xml_config,
    ini_file,
    curl_lines,
    git_diff,
    log_lines,
    traceback,
    chat,
    service_account,
    key_file,
    csv_customers,
    sql_insert,
    user_json,
    support_ticket,
    clinical_note,
    hl7,
    fhir,
    claim,
]


def build(seed: int = 20251122, per_container: int = 40) -> tuple[list[Packet], list[Packet]]:
    """Dirty packets (with planted spans) and clean packets, the same for the same seed."""
    from tests.privacy_corpus.clean import CLEAN

    r = random.Random(seed)
    dirty = [make(r) for make in DIRTY for _ in range(per_container)]
    clean = [Packet(make.__name__, make(r)) for make in CLEAN for _ in range(per_container)]
    return dirty, clean


if __name__ == "__main__":
    dirty, clean = build()
    out = {"dirty": [p.__dict__ for p in dirty], "clean": [p.__dict__ for p in clean]}
    with open(sys.argv[1] if len(sys.argv) > 1 else "privacy_corpus.json", "w") as fh:
        json.dump(out, fh, indent=1)
