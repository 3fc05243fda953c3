# ruff: noqa: E501, SIM905
"""Random values in real formats (never real credentials): one function per kind."""

from __future__ import annotations

import base64
import json
import random
import string

ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"
URLSAFE = ALNUM + "-_"
HEX = "0123456789abcdef"
FIRST = "Maria James Aisha Wei Olga Carlos Fatima Liam Priya Tomasz Chen Amara Diego Hannah Kofi Yuki Lars Noor Mateo Ingrid".split()
LAST = "Gonzalez Okafor Lindqvist Nakamura Petrov Haddad Kowalski Fitzgerald Mensah Rossi Dubois Novak Brennan Castillo Iyer Schmidt Abara Moreau Sato Jensen".split()
STREETS = "Maple Oak Cedar Willow Lakeview Hillcrest Sunset Riverside Franklin Jefferson Highland Meadow".split()
SUFFIX = "Street St Avenue Ave Road Rd Boulevard Blvd Lane Drive Dr Court Way Place Terrace".split()
CITIES = [
    ("Springfield", "IL"),
    ("Austin", "TX"),
    ("Portland", "OR"),
    ("Columbus", "OH"),
    ("Raleigh", "NC"),
]


def pick(r: random.Random, alphabet: str, n: int) -> str:
    return "".join(r.choice(alphabet) for _ in range(n))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def password(r: random.Random) -> str:
    return pick(r, ALNUM + "!@#$%^*-_=+", r.randint(12, 20))


SECRETS = {
    "aws_access_key_id": lambda r: (
        r.choice(["AKIA", "ASIA"]) + pick(r, string.ascii_uppercase + "234567", 16)
    ),
    "aws_secret": lambda r: pick(r, B64, 40),
    "github_classic": lambda r: r.choice(["ghp_", "gho_", "ghs_", "ghu_"]) + pick(r, ALNUM, 36),
    "github_fine_grained": lambda r: "github_pat_" + pick(r, ALNUM, 22) + "_" + pick(r, ALNUM, 59),
    "gitlab": lambda r: "glpat-" + pick(r, URLSAFE, 20),
    "slack_token": lambda r: (
        f"xox{r.choice('bpa')}-{r.randint(10**10, 10**11)}-{r.randint(10**12, 10**13)}-{pick(r, ALNUM, 24)}"
    ),
    "slack_webhook": lambda r: (
        f"https://hooks.slack.com/services/T{pick(r, string.ascii_uppercase + string.digits, 10)}/B{pick(r, string.ascii_uppercase + string.digits, 10)}/{pick(r, ALNUM, 24)}"
    ),
    "stripe": lambda r: r.choice(["sk_live_", "rk_live_"]) + pick(r, ALNUM, r.choice([24, 99])),
    "stripe_webhook": lambda r: "whsec_" + pick(r, ALNUM, 32),
    "openai": lambda r: r.choice(["sk-proj-", "sk-", "sk-svcacct-"]) + pick(r, URLSAFE, 48),
    "anthropic": lambda r: "sk-ant-api03-" + pick(r, URLSAFE, 93) + "AA",
    "google_api_key": lambda r: "AIza" + pick(r, URLSAFE, 35),
    "azure": lambda r: (
        f"DefaultEndpointsProtocol=https;AccountName=st{pick(r, 'abcdefghijklmnopqrstuvwxyz', 8)};AccountKey={pick(r, B64, 86)}==;EndpointSuffix=core.windows.net"
    ),
    "twilio": lambda r: "SK" + pick(r, HEX, 32),
    "sendgrid": lambda r: "SG." + pick(r, URLSAFE, 22) + "." + pick(r, URLSAFE, 43),
    "npm": lambda r: "npm_" + pick(r, ALNUM, 36),
    "pypi": lambda r: "pypi-AgEIcHlwaS5vcmc" + pick(r, URLSAFE, 70),
    "huggingface": lambda r: "hf_" + pick(r, ALNUM, 34),
    "discord": lambda r: (
        b64url(str(r.randint(10**17, 10**18)).encode())
        + "."
        + pick(r, URLSAFE, 6)
        + "."
        + pick(r, URLSAFE, 38)
    ),
    "telegram": lambda r: f"{r.randint(10**8, 10**10)}:AA{pick(r, URLSAFE, 33)}",
    "jwt": lambda r: ".".join(
        [
            b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()),
            b64url(
                json.dumps(
                    {"sub": pick(r, HEX, 12), "iat": r.randint(1_600_000_000, 1_800_000_000)}
                ).encode()
            ),
            b64url(r.randbytes(32)),
        ]
    ),
    "bearer": lambda r: pick(r, URLSAFE, 40),
    "password": password,
}


def pem(r: random.Random, label: str, encrypted: bool = False) -> str:
    lines = [pick(r, B64, 64) for _ in range(r.randint(4, 12))]
    head = (
        "Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC," + pick(r, "0123456789ABCDEF", 32) + "\n\n"
        if encrypted
        else ""
    )
    return f"-----BEGIN {label}-----\n{head}" + "\n".join(lines) + f"\n-----END {label}-----"


def email(r: random.Random) -> str:
    first, last = r.choice(FIRST).lower(), r.choice(LAST).lower()
    local = r.choice(
        [f"{first}.{last}", f"{first[0]}{last}", f"{first}{r.randint(1, 99)}", f"{last}.{first}"]
    )
    return f"{local}@{r.choice(['gmail.com', 'outlook.com', 'proton.me', 'acme-corp.io', 'uni-hamburg.de', 'yahoo.co.uk'])}"


def us_phone(r: random.Random) -> str:
    area, exchange, line = 311, 555, r.randint(0, 9999)
    while area % 100 == 11 or exchange % 100 == 11 or exchange == 555 or area == 555:
        area, exchange = r.randint(201, 989), r.randint(201, 989)
    fmt = r.choice(
        [
            "({a}) {e}-{l:04d}",
            "{a}-{e}-{l:04d}",
            "{a}.{e}.{l:04d}",
            "+1 {a} {e} {l:04d}",
            "+1-{a}-{e}-{l:04d}",
        ]
    )
    return fmt.format(a=area, e=exchange, l=line)


def intl_phone(r: random.Random) -> str:
    return r.choice(
        [
            f"+44 7{r.randint(100, 999)} {r.randint(100000, 999999)}",
            f"+49 30 {r.randint(1000000, 9999999)}",
            f"+33 6 {r.randint(10, 99)} {r.randint(10, 99)} {r.randint(10, 99)} {r.randint(10, 99)}",
            f"+61 4{r.randint(10, 99)} {r.randint(100, 999)} {r.randint(100, 999)}",
            f"+91 98{r.randint(100, 999)} {r.randint(10000, 99999)}",
        ]
    )


def ssn(r: random.Random) -> str:
    area = r.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}-{r.randint(1, 99):02d}-{r.randint(1, 9999):04d}"


def luhn_complete(digits: str) -> str:
    total = 0
    for index, char in enumerate(reversed(digits + "0")):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return digits + str((10 - total % 10) % 10)


def card(r: random.Random) -> str:
    prefix, length = r.choice(
        [("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15), ("6011", 16)]
    )
    digits = luhn_complete(prefix + pick(r, string.digits, length - len(prefix) - 1))
    if length == 15:
        return r.choice([digits, f"{digits[:4]} {digits[4:10]} {digits[10:]}"])
    sep = r.choice(["", " ", "-"])
    return sep.join(digits[i : i + 4] for i in range(0, 16, 4))


def iban(r: random.Random) -> str:
    country, bban = r.choice(
        [
            ("DE", pick(r, string.digits, 18)),
            ("FR", pick(r, string.digits, 23)),
            ("NL", "ABNA" + pick(r, string.digits, 10)),
            ("GB", "NWBK" + pick(r, string.digits, 14)),
            ("ES", pick(r, string.digits, 20)),
        ]
    )
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    check = 98 - int(numeric) % 97
    value = f"{country}{check:02d}{bban}"
    return r.choice([value, " ".join(value[i : i + 4] for i in range(0, len(value), 4))])


def public_ip(r: random.Random) -> str:
    if r.random() < 0.2:
        return f"2a0{r.randint(0, 9)}:{pick(r, HEX, 4)}:{pick(r, HEX, 4)}::{pick(r, HEX, 3)}"
    while True:
        a = r.choice([23, 31, 45, 52, 62, 81, 93, 104, 142, 151, 176, 185, 212])
        return f"{a}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"


def address(r: random.Random) -> str:
    city, state = r.choice(CITIES)
    street = f"{r.randint(1, 9999)} {r.choice(STREETS)} {r.choice(SUFFIX)}"
    return r.choice([street, f"{street}, {city}, {state} {r.randint(10000, 99999)}"])


def date(r: random.Random) -> str:
    y, m, d = r.randint(1935, 2008), r.randint(1, 12), r.randint(1, 28)
    months = "January February March April May June July August September October November December".split()
    return r.choice([f"{y}-{m:02d}-{d:02d}", f"{m:02d}/{d:02d}/{y}", f"{months[m - 1]} {d}, {y}"])


def name(r: random.Random) -> str:
    return f"{r.choice(FIRST)} {r.choice(LAST)}"


def mrn(r: random.Random) -> str:
    return r.choice(
        [pick(r, string.digits, 8), "MRN" + pick(r, string.digits, 7), pick(r, string.digits, 10)]
    )
