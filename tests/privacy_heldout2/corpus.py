# ruff: noqa: E501
"""A second held-out privacy corpus, written apart from the detector, to estimate its real score.

Dirty packets carry planted secrets, PII and PHI in their real formats (checksums, prefixes,
validated phone numbers) inside the containers developers actually paste; clean packets are
developer text full of look-alikes that must not be flagged.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import re
import string
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

import phonenumbers


@dataclass(frozen=True)
class Packet:
    """One text with the planted values it holds: (start, end, category, kind)."""

    name: str
    text: str
    planted: tuple[tuple[int, int, str, str], ...]


R = random.Random
ALNUM = string.ascii_letters + string.digits
B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
B64 = ALNUM + "+/"
B64URL = ALNUM + "-_"
HEX = "0123456789abcdef"


def _s(rng: R, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _b62(n: int, width: int) -> str:
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = B62[r] + out
    return out.rjust(width, "0")


def _crc_token(rng: R, prefix: str) -> str:
    """GitHub / npm style: 30 random base62 characters then the CRC32 of them in base62."""
    body = _s(rng, ALNUM, 30)
    return prefix + body + _b62(binascii.crc32(body.encode()), 6)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


# ---------------------------------------------------------------- fillers (never planted)

FIRST = [
    "Maria",
    "James",
    "Aisha",
    "Wei",
    "Olga",
    "Rahul",
    "Sofia",
    "Liam",
    "Fatima",
    "Noah",
    "Chiara",
    "Kenji",
    "Emma",
    "Mateo",
    "Priya",
    "Lukas",
    "Amara",
    "Diego",
    "Hannah",
    "Yusuf",
    "Ingrid",
    "Tomasz",
    "Camille",
    "Oluwaseun",
    "Mei",
    "Carlos",
    "Anna",
    "Dmitri",
    "Leila",
    "Ethan",
]
LAST = [
    "Gonzalez",
    "Okafor",
    "Nguyen",
    "Schmidt",
    "Patel",
    "Kowalski",
    "Rossi",
    "Tanaka",
    "Johansson",
    "Haddad",
    "Murphy",
    "Fernandes",
    "Novak",
    "Dubois",
    "Mensah",
    "Kim",
    "Oyelaran",
    "Lindqvist",
    "Moreau",
    "Brennan",
    "Castillo",
    "Yamamoto",
    "Ibrahim",
    "Walsh",
    "Horvat",
    "Petrov",
    "Silva",
    "Andersen",
    "Whitfield",
    "Delacroix",
]
STREETS = [
    "Maple Avenue",
    "Oak Street",
    "Cedar Lane",
    "Elm Drive",
    "Washington Boulevard",
    "Lakeview Road",
    "Pine Court",
    "Sunset Boulevard",
    "Highland Avenue",
    "Church Street",
    "Mill Road",
    "Riverside Drive",
    "Chestnut St",
    "Willow Way",
    "Park Place",
    "Bayview Ave",
]
CITIES = [
    ("Springfield", "IL", "62704"),
    ("Portland", "OR", "97205"),
    ("Austin", "TX", "78704"),
    ("Columbus", "OH", "43215"),
    ("Raleigh", "NC", "27601"),
    ("Denver", "CO", "80203"),
    ("Madison", "WI", "53703"),
    ("Tucson", "AZ", "85701"),
    ("Albany", "NY", "12207"),
]
DOMAINS = [
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "hotmail.co.uk",
    "gmx.de",
    "protonmail.com",
    "icloud.com",
    "acme-logistics.io",
    "brightwave.co",
    "fastmail.fm",
    "northwind-health.org",
    "orbitlabs.dev",
    "web.de",
]
US_AREAS = [
    "212",
    "213",
    "214",
    "215",
    "216",
    "301",
    "302",
    "303",
    "305",
    "312",
    "313",
    "314",
    "404",
    "407",
    "412",
    "415",
    "503",
    "512",
    "602",
    "612",
    "617",
    "619",
    "646",
    "702",
    "713",
    "718",
    "720",
    "773",
    "801",
    "808",
    "813",
    "832",
    "858",
    "904",
    "917",
    "919",
    "949",
    "971",
]
CONDITIONS = [
    "type 2 diabetes mellitus",
    "hypertension",
    "major depressive disorder",
    "HIV infection",
    "chronic kidney disease stage 3",
    "asthma exacerbation",
    "community-acquired pneumonia",
    "atrial fibrillation",
    "hypothyroidism",
    "opioid use disorder",
    "breast carcinoma",
    "COPD",
    "migraine without aura",
    "hepatitis C",
]
DRUGS = [
    "metformin 500 mg PO BID",
    "lisinopril 10 mg daily",
    "sertraline 50 mg daily",
    "atorvastatin 40 mg nightly",
    "levothyroxine 75 mcg daily",
    "apixaban 5 mg BID",
    "albuterol HFA 2 puffs q4h PRN",
    "buprenorphine/naloxone 8/2 mg SL daily",
]


def _first(rng: R) -> str:
    return rng.choice(FIRST)


def _last(rng: R) -> str:
    return rng.choice(LAST)


def _name(rng: R) -> str:
    return f"{_first(rng)} {_last(rng)}"


def _user(rng: R) -> str:
    return rng.choice(["deploy", "app", "svc_api", "admin", "etl", "reporting", "root", "billing"])


def _host(rng: R) -> str:
    return rng.choice(
        [
            "db.internal",
            "10.0.3.17",
            "pg-prod-1.cluster-cx8k.eu-west-1.rds.amazonaws.com",
            "mysql.svc.cluster.local",
            "cache-01",
            "192.168.10.40",
            "mongo-0.mongo",
        ]
    )


def _date(rng: R) -> str:
    return f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def _sha(rng: R) -> str:
    return _s(rng, HEX, 40)


def _uuid(rng: R) -> str:
    h = _s(rng, HEX, 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


# ---------------------------------------------------------------- secrets


def aws_akid(rng: R) -> str:
    return rng.choice(["AKIA", "AKIA", "ASIA"]) + _s(rng, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)


def aws_secret(rng: R) -> str:
    return _s(rng, B64, 40)


def gh_classic(rng: R) -> str:
    return _crc_token(rng, rng.choice(["ghp_", "ghp_", "gho_", "ghu_", "ghs_"]))


def gh_fine(rng: R) -> str:
    return (
        "github_pat_11"
        + _s(rng, string.ascii_uppercase + string.digits, 20)
        + "_"
        + _s(rng, ALNUM, 59)
    )


def gitlab(rng: R) -> str:
    return "glpat-" + _s(rng, B64URL, 20)


def slack_token(rng: R) -> str:
    p = rng.choice(["xoxb", "xoxb", "xoxp"])
    a, b = str(rng.randint(10**10, 10**12)), str(rng.randint(10**10, 10**12))
    tail = _s(rng, HEX, 32) if p == "xoxp" else _s(rng, ALNUM, 24)
    return f"{p}-{a}-{b}-{tail}"


def slack_webhook(rng: R) -> str:
    up = string.ascii_uppercase + string.digits
    return f"https://hooks.slack.com/services/T{_s(rng, up, 8)}/B{_s(rng, up, 10)}/{_s(rng, ALNUM, 24)}"


def stripe_key(rng: R) -> str:
    return rng.choice(["sk_live_", "rk_live_", "sk_live_51"]) + _s(
        rng, ALNUM, rng.choice([24, 34, 99])
    )


def stripe_whsec(rng: R) -> str:
    return "whsec_" + _s(rng, ALNUM, 32)


def openai_key(rng: R) -> str:
    if rng.random() < 0.5:
        return "sk-proj-" + _s(rng, B64URL, 74) + "T3BlbkFJ" + _s(rng, B64URL, 74)
    if rng.random() < 0.5:
        return "sk-" + _s(rng, ALNUM, 20) + "T3BlbkFJ" + _s(rng, ALNUM, 20)
    return "sk-svcacct-" + _s(rng, B64URL, 74) + "T3BlbkFJ" + _s(rng, B64URL, 74)


def anthropic_key(rng: R) -> str:
    return "sk-ant-api03-" + _s(rng, B64URL, 93) + "AA"


def google_key(rng: R) -> str:
    return "AIza" + _s(rng, B64URL, 35)


def twilio_sk(rng: R) -> str:
    return "SK" + _s(rng, HEX, 32)


def hex32(rng: R) -> str:
    return _s(rng, HEX, 32)


def sendgrid(rng: R) -> str:
    return "SG." + _s(rng, B64URL, 22) + "." + _s(rng, B64URL, 43)


def npm_token(rng: R) -> str:
    return _crc_token(rng, "npm_")


def pypi_token(rng: R) -> str:
    return "pypi-AgEIcHlwaS5vcmcCJ" + _s(rng, B64URL, rng.randint(120, 180))


def hf_token(rng: R) -> str:
    return "hf_" + _s(rng, string.ascii_letters, 34)


def discord_token(rng: R) -> str:
    uid = str(rng.randint(10**17, 10**19 - 1)).encode()
    return _b64url(uid) + "." + _s(rng, B64URL, 6) + "." + _s(rng, B64URL, 38)


def discord_webhook(rng: R) -> str:
    return (
        f"https://discord.com/api/webhooks/{rng.randint(10**17, 10**19 - 1)}/{_s(rng, B64URL, 68)}"
    )


def telegram(rng: R) -> str:
    return f"{rng.randint(10**8, 10**10 - 1)}:AA{_s(rng, B64URL, 33)}"


def jwt(rng: R) -> str:
    head = {"alg": rng.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"}
    if rng.random() < 0.4:
        head["kid"] = _s(rng, HEX, 16)
    body = {
        "sub": _uuid(rng),
        "iss": rng.choice(["https://auth.orbitlabs.dev/", "acme-sso"]),
        "iat": 1760000000 + rng.randint(0, 10**7),
        "scope": "read write",
    }
    body["exp"] = body["iat"] + 3600
    sig = _s(rng, B64URL, 86 if head["alg"] == "ES256" else (342 if head["alg"] == "RS256" else 43))
    return f"{_b64url(json.dumps(head).encode())}.{_b64url(json.dumps(body).encode())}.{sig}"


def _pem_body(rng: R, head: bytes, n: int) -> list[str]:
    raw = base64.b64encode(head + rng.randbytes(n)).decode()
    return [raw[i : i + 64] for i in range(0, len(raw), 64)]


def pem_key(rng: R, sep: str = "\n") -> str:
    kind = rng.choice(["RSA", "EC", "OPENSSH", "PKCS8", "ENC", "RSAENC", "PGP", "DSA"])
    if kind == "OPENSSH":
        lines = _pem_body(rng, b"openssh-key-v1\x00\x00\x00\x00\x04none", 380)
        label = "OPENSSH PRIVATE KEY"
    elif kind == "EC":
        lines, label = _pem_body(rng, b"\x30\x77\x02\x01\x01\x04\x20", 112), "EC PRIVATE KEY"
    elif kind == "PKCS8":
        lines, label = _pem_body(rng, b"\x30\x82\x04\xbe\x02\x01\x00\x30\x0d", 1200), "PRIVATE KEY"
    elif kind == "ENC":
        lines, label = _pem_body(rng, b"\x30\x82\x05\x2c\x30\x56", 1300), "ENCRYPTED PRIVATE KEY"
    elif kind == "DSA":
        lines, label = _pem_body(rng, b"\x30\x82\x01\xbb\x02\x01\x00", 440), "DSA PRIVATE KEY"
    elif kind == "PGP":
        lines = ["", *_pem_body(rng, b"\x95\x07\x46\x04", 900), "=" + _s(rng, B64, 4)]
        label = "PGP PRIVATE KEY BLOCK"
    else:
        lines, label = (
            _pem_body(rng, b"\x30\x82\x04\xa4\x02\x01\x00\x02\x82\x01\x01\x00", 1180),
            "RSA PRIVATE KEY",
        )
        if kind == "RSAENC":
            lines = [
                "Proc-Type: 4,ENCRYPTED",
                f"DEK-Info: AES-256-CBC,{_s(rng, HEX.upper(), 32)}",
                "",
                *lines,
            ]
    return sep.join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"])


def password(rng: R) -> str:
    style = rng.random()
    if style < 0.5:
        return _s(rng, ALNUM, rng.randint(2, 4)) + "".join(
            rng.choice(ALNUM + "!%^*-_+=.~") for _ in range(rng.randint(10, 20))
        )
    if style < 0.7:
        return _s(rng, ALNUM, rng.choice([24, 32, 40]))
    if style < 0.85:
        words = ["Falcon", "river", "Copper", "lantern", "Mosaic", "tundra", "Velvet", "orbit"]
        return f"{rng.choice(words)}{rng.choice('!-_.')}{rng.choice(words)}{rng.randint(10, 9999)}{rng.choice('!#%*')}"
    return _s(rng, HEX, rng.choice([32, 48, 64]))


def url_password(rng: R) -> str:
    return _s(rng, ALNUM, rng.randint(3, 5)) + _s(rng, ALNUM + "-_.~", rng.randint(9, 20))


def opaque_token(rng: R) -> str:
    return rng.choice(
        [_s(rng, ALNUM, 40), _s(rng, HEX, 64), _s(rng, B64URL, 48), "at_" + _s(rng, ALNUM, 36)]
    )


def basic_auth(rng: R) -> str:
    return base64.b64encode(f"{_user(rng)}:{url_password(rng)}".encode()).decode()


def azure_key(rng: R) -> str:
    return base64.b64encode(rng.randbytes(64)).decode()


def gcp_private_key_json(rng: R) -> str:
    """The `private_key` of a service-account file, as it sits inside the JSON (escaped newlines)."""
    lines = _pem_body(rng, b"\x30\x82\x04\xbe\x02\x01\x00\x30\x0d", 1200)
    return "\\n".join(["-----BEGIN PRIVATE KEY-----", *lines, "-----END PRIVATE KEY-----"])


# ---------------------------------------------------------------- PII


def email(rng: R) -> str:
    f, last = _first(rng).lower(), _last(rng).lower()
    local = rng.choice(
        [f"{f}.{last}", f"{f[0]}{last}", f"{f}{rng.randint(1, 99)}", f"{last}.{f}", f"{f}_{last}"]
    )
    return f"{local}@{rng.choice(DOMAINS)}"


def _us_number(rng: R) -> phonenumbers.PhoneNumber:
    while True:
        ex = rng.randint(200, 999)
        if ex == 555:
            continue
        n = phonenumbers.parse(f"+1{rng.choice(US_AREAS)}{ex}{rng.randint(0, 9999):04d}")
        if phonenumbers.is_valid_number(n):
            return n


INTL = [
    "GB",
    "DE",
    "FR",
    "IN",
    "BR",
    "AU",
    "ES",
    "IT",
    "NL",
    "MX",
    "JP",
    "CA",
    "SE",
    "PL",
    "IE",
    "ZA",
    "SG",
    "CH",
]


def _intl_number(rng: R) -> phonenumbers.PhoneNumber:
    region = rng.choice(INTL)
    kind = rng.choice(
        [phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]
    )
    ex = phonenumbers.example_number_for_type(region, kind)
    e164 = phonenumbers.format_number(ex, phonenumbers.PhoneNumberFormat.E164)
    for _ in range(400):
        keep = max(len(e164) - 6, 5)
        cand = e164[:keep] + "".join(rng.choice(string.digits) for _ in range(len(e164) - keep))
        n = phonenumbers.parse(cand)
        if phonenumbers.is_valid_number(n) and cand != e164:
            return n
    raise RuntimeError(region)


def phone_us(rng: R) -> str:
    n = str(_us_number(rng).national_number)
    a, b, c = n[:3], n[3:6], n[6:]
    return rng.choice(
        [
            f"({a}) {b}-{c}",
            f"{a}-{b}-{c}",
            f"{a}.{b}.{c}",
            f"+1 {a} {b} {c}",
            f"+1{a}{b}{c}",
            f"1-{a}-{b}-{c}",
            f"+1 ({a}) {b}-{c}",
            f"{a} {b} {c}",
        ]
    )


def phone_intl(rng: R) -> str | tuple[str, str]:
    """International notation mostly; one in four in the country's own national notation."""
    n = _intl_number(rng)
    if rng.random() < 0.25:
        return phonenumbers.format_number(
            n, phonenumbers.PhoneNumberFormat.NATIONAL
        ), "phone_national"
    fmt = rng.choice(
        [phonenumbers.PhoneNumberFormat.INTERNATIONAL, phonenumbers.PhoneNumberFormat.E164]
    )
    return phonenumbers.format_number(n, fmt)


def phone_e164(rng: R) -> str:
    n = _us_number(rng) if rng.random() < 0.5 else _intl_number(rng)
    return phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)


def ssn(rng: R) -> str:
    while True:
        area = rng.randint(1, 899)
        if area != 666:
            break
    a, g, s = f"{area:03d}", f"{rng.randint(1, 99):02d}", f"{rng.randint(1, 9999):04d}"
    return rng.choice([f"{a}-{g}-{s}", f"{a}-{g}-{s}", f"{a} {g} {s}", f"{a}{g}{s}"])


def ssn_dashed(rng: R) -> str:
    v = ssn(rng).replace(" ", "")
    return v if "-" in v else f"{v[:3]}-{v[3:5]}-{v[5:]}"


def _luhn_complete(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d -= 9 if d > 9 else 0
        total += d
    return digits + str((10 - total % 10) % 10)


def card(rng: R) -> str:
    brand = rng.choice(["visa", "visa", "mc", "mc2", "amex", "disc"])
    prefix = {
        "visa": "4",
        "mc": str(rng.randint(51, 55)),
        "mc2": str(rng.randint(2221, 2720)),
        "amex": rng.choice(["34", "37"]),
        "disc": "6011",
    }[brand]
    length = 15 if brand == "amex" else 16
    num = _luhn_complete(
        prefix + "".join(rng.choice(string.digits) for _ in range(length - 1 - len(prefix)))
    )
    sep = rng.choice(["", " ", "-", " "])
    if brand == "amex":
        return sep.join([num[:4], num[4:10], num[10:]])
    return sep.join(num[i : i + 4] for i in range(0, 16, 4))


def _iban_check(cc: str, bban: str) -> str:
    rearr = bban + cc + "00"
    n = int("".join(str(int(c, 36)) for c in rearr))
    return f"{cc}{98 - n % 97:02d}{bban}"


def iban(rng: R) -> str:
    d = lambda k: "".join(rng.choice(string.digits) for _ in range(k))  # noqa: E731
    cc = rng.choice(["DE", "GB", "NL", "FR", "CH", "AT", "BE", "ES", "IE"])
    if cc == "DE":
        bban = d(18)
    elif cc == "GB":
        bban = rng.choice(["NWBK", "BARC", "LOYD", "HBUK", "MIDL"]) + d(14)
    elif cc == "IE":
        bban = rng.choice(["AIBK", "BOFI"]) + d(14)
    elif cc == "NL":
        bban = rng.choice(["ABNA", "INGB", "RABO", "TRIO"]) + d(10)
    elif cc == "FR":
        bank, branch, acct = d(5), d(5), d(11)
        key = 97 - (89 * int(bank) + 15 * int(branch) + 3 * int(acct)) % 97
        bban = f"{bank}{branch}{acct}{key:02d}"
    elif cc == "CH":
        bban = d(17)
    elif cc == "AT":
        bban = d(16)
    elif cc == "BE":
        first = d(10)
        chk = int(first) % 97 or 97
        bban = f"{first}{chk:02d}"
    else:  # ES: bank, branch, two control digits, account
        bank, branch, acct = d(4), d(4), d(10)
        w = [1, 2, 4, 8, 5, 10, 9, 7, 3, 6]
        c1 = 11 - sum(int(x) * y for x, y in zip("00" + bank + branch, w, strict=True)) % 11
        c2 = 11 - sum(int(x) * y for x, y in zip(acct, w, strict=True)) % 11
        c1, c2 = (
            (0 if c1 == 11 else 1 if c1 == 10 else c1),
            (0 if c2 == 11 else 1 if c2 == 10 else c2),
        )
        bban = f"{bank}{branch}{c1}{c2}{acct}"
    v = _iban_check(cc, bban)
    return " ".join(v[i : i + 4] for i in range(0, len(v), 4)) if rng.random() < 0.5 else v


def ipv4(rng: R) -> str:
    while True:
        a = rng.randint(1, 223)
        if a in (10, 127, 100, 169, 172, 192, 198, 203, 0):
            continue
        return f"{a}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def ipv6(rng: R) -> str:
    pre = rng.choice(["2a00:1450", "2600:1f18", "2607:f8b0", "2a02:26f0", "2001:4860", "2a01:4f8"])
    groups = [f"{rng.randint(0, 0xFFFF):x}" for _ in range(rng.choice([2, 6]))]
    return pre + (":" + ":".join(groups) if len(groups) == 6 else "::" + ":".join(groups))


def street(rng: R) -> str:
    s = f"{rng.randint(12, 9870)} {rng.choice(STREETS)}"
    return s + (f", Apt {rng.randint(1, 40)}{rng.choice('ABCD')}" if rng.random() < 0.25 else "")


def street_eu(rng: R) -> str:
    return rng.choice(
        [
            f"{rng.choice(['Hauptstraße', 'Lindenweg', 'Goethestraße', 'Bahnhofstr.'])} {rng.randint(1, 140)}",
            f"{rng.randint(1, 220)} {rng.choice(['High Street', 'Station Road', 'Victoria Road', 'Kings Avenue'])}",
            f"{rng.randint(1, 90)} rue {rng.choice(['de la Paix', 'Victor Hugo', 'des Lilas', 'Lafayette'])}",
        ]
    )


def _dob_parts(rng: R) -> tuple[int, int, int]:
    return rng.randint(1938, 2006), rng.randint(1, 12), rng.randint(1, 28)


def dob(rng: R) -> str:
    y, m, d = _dob_parts(rng)
    months = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ]
    return rng.choice(
        [
            f"{m:02d}/{d:02d}/{y}",
            f"{y}-{m:02d}-{d:02d}",
            f"{d:02d}.{m:02d}.{y}",
            f"{months[m - 1]} {d}, {y}",
            f"{d} {months[m - 1][:3]} {y}",
            f"{m}/{d}/{y}",
            f"{d:02d}/{m:02d}/{y}",
        ]
    )


def dob_iso(rng: R) -> str:
    y, m, d = _dob_parts(rng)
    return f"{y}-{m:02d}-{d:02d}"


def dob_hl7(rng: R) -> str:
    y, m, d = _dob_parts(rng)
    return f"{y}{m:02d}{d:02d}"


# ---------------------------------------------------------------- PHI


def mrn(rng: R) -> str:
    return rng.choice(
        [
            str(rng.randint(10**6, 10**8 - 1)),
            f"{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
            f"{rng.randint(10, 99)}-{rng.randint(10, 99)}-{rng.randint(10, 99)}",
            f"{rng.choice('AEHKM')}{rng.randint(10**6, 10**7 - 1)}",
            f"{rng.randint(10**8, 10**9 - 1)}",
        ]
    )


def mrn_digits(rng: R) -> str:
    return str(rng.randint(10**6, 10**9 - 1))


def pname(rng: R) -> str:
    return (
        _name(rng)
        if rng.random() < 0.8
        else f"{_first(rng)} {rng.choice('ABCDEJKLMR')}. {_last(rng)}"
    )


def pname_rev(rng: R) -> str:
    return (
        f"{_last(rng).upper()}, {_first(rng).upper()}"
        if rng.random() < 0.5
        else f"{_last(rng)}, {_first(rng)}"
    )


def hl7_name(rng: R) -> str:
    return f"{_last(rng).upper()}^{_first(rng).upper()}" + (
        f"^{rng.choice('ABJKLMR')}" if rng.random() < 0.5 else ""
    )


# kind -> (category or None for filler, planted kind, generator)
GEN: dict[str, tuple[str | None, str, Callable[[R], str | tuple[str, str]]]] = {
    "akid": ("secret", "aws_access_key_id", aws_akid),
    "awssec": ("secret", "aws_secret_key", aws_secret),
    "ghp": ("secret", "github_token", gh_classic),
    "ghpat": ("secret", "github_fine_grained", gh_fine),
    "glpat": ("secret", "gitlab_token", gitlab),
    "slack": ("secret", "slack_token", slack_token),
    "slackhook": ("secret", "slack_webhook", slack_webhook),
    "stripe": ("secret", "stripe_key", stripe_key),
    "whsec": ("secret", "stripe_webhook_secret", stripe_whsec),
    "openai": ("secret", "openai_key", openai_key),
    "anthropic": ("secret", "anthropic_key", anthropic_key),
    "gkey": ("secret", "google_api_key", google_key),
    "twiliosk": ("secret", "twilio_api_key", twilio_sk),
    "twiliotok": ("secret", "twilio_auth_token", hex32),
    "sendgrid": ("secret", "sendgrid_key", sendgrid),
    "npm": ("secret", "npm_token", npm_token),
    "pypi": ("secret", "pypi_token", pypi_token),
    "hf": ("secret", "huggingface_token", hf_token),
    "discord": ("secret", "discord_bot_token", discord_token),
    "discordhook": ("secret", "discord_webhook", discord_webhook),
    "telegram": ("secret", "telegram_bot_token", telegram),
    "jwt": ("secret", "jwt", jwt),
    "pem": ("secret", "private_key", pem_key),
    "gcppk": ("secret", "gcp_service_account_key", gcp_private_key_json),
    "azkey": ("secret", "azure_storage_key", azure_key),
    "pw": ("secret", "password", password),
    "urlpw": ("secret", "url_password", url_password),
    "tok": ("secret", "token", opaque_token),
    "basic": ("secret", "basic_auth", basic_auth),
    "email": ("pii", "email", email),
    "phone": ("pii", "phone_us", phone_us),
    "iphone": ("pii", "phone_intl", phone_intl),
    "e164": ("pii", "phone_e164", phone_e164),
    "ssn": ("pii", "ssn", ssn),
    "ssnd": ("pii", "ssn", ssn_dashed),
    "card": ("pii", "credit_card", card),
    "iban": ("pii", "iban", iban),
    "ip": ("pii", "ipv4", ipv4),
    "ip6": ("pii", "ipv6", ipv6),
    "street": ("pii", "street_address", street),
    "streeteu": ("pii", "street_address", street_eu),
    "dob": ("pii", "date_of_birth", dob),
    "dobiso": ("pii", "date_of_birth", dob_iso),
    "mrn": ("phi", "mrn", mrn),
    "mrnd": ("phi", "mrn", mrn_digits),
    "pname": ("phi", "patient_name", pname),
    "pnamerev": ("phi", "patient_name", pname_rev),
    "hl7name": ("phi", "patient_name", hl7_name),
    "pfirst": ("phi", "patient_name", _first),
    "plast": ("phi", "patient_name", _last),
    "pdob": ("phi", "date_of_birth", dob),
    "pdobiso": ("phi", "date_of_birth", dob_iso),
    "pdobhl7": ("phi", "date_of_birth", dob_hl7),
    # fillers
    "name": (None, "", _name),
    "first": (None, "", _first),
    "last": (None, "", _last),
    "user": (None, "", _user),
    "host": (None, "", _host),
    "date": (None, "", _date),
    "sha": (None, "", _sha),
    "uuid": (None, "", _uuid),
    "n": (None, "", lambda rng: str(rng.randint(2, 999))),
    "cond": (None, "", lambda rng: rng.choice(CONDITIONS)),
    "drug": (None, "", lambda rng: rng.choice(DRUGS)),
    "city": (None, "", lambda rng: rng.choice(CITIES)[0]),
    "st": (None, "", lambda rng: rng.choice(CITIES)[1]),
    "zip": (None, "", lambda rng: rng.choice(CITIES)[2]),
    "hexid": (None, "", lambda rng: _s(rng, HEX, 12)),
    "ts": (
        None,
        "",
        lambda rng: (
            f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z"
        ),
    ),
}

MARK = re.compile(r"@@(\w+)@@")
Piece = tuple[str, str | None, str]  # text, category, kind


def _fill(template: str, rng: R) -> list[Piece]:
    pieces: list[Piece] = []
    pos = 0
    for m in MARK.finditer(template):
        pieces.append((template[pos : m.start()], None, ""))
        cat, kind, fn = GEN[m.group(1)]
        value = fn(rng)
        if isinstance(value, tuple):
            value, kind = value
        pieces.append((value, cat, kind))
        pos = m.end()
    pieces.append((template[pos:], None, ""))
    return pieces


def _json_inner(s: str) -> str:
    return json.dumps(s)[1:-1]


def _render(name: str, pieces: list[Piece], enc: Callable[[str], str] | None = None) -> Packet:
    text, planted = "", []
    for chunk, cat, kind in pieces:
        out = enc(chunk) if enc else chunk
        if cat:
            planted.append((len(text), len(text) + len(out), cat, kind))
        text += out
    return Packet(name, text, tuple(planted))


# ---------------------------------------------------------------- dirty containers

DIRTY: dict[str, str] = {
    "k8s_secret": """apiVersion: v1
kind: Secret
metadata:
  name: payments-api-env
  namespace: prod
type: Opaque
stringData:
  DATABASE_URL: "postgresql://@@user@@:@@urlpw@@@@@host@@:5432/payments?sslmode=require"
  STRIPE_SECRET_KEY: @@stripe@@
  STRIPE_WEBHOOK_SECRET: "@@whsec@@"
  SENDGRID_API_KEY: '@@sendgrid@@'
""",
    "helm_values": """# values-prod.yaml  (helm upgrade --install api ./chart -f values-prod.yaml)
replicaCount: 3
image:
  repository: ghcr.io/orbitlabs/api
  tag: "1.14.2"
env:
  - name: OPENAI_API_KEY
    value: "@@openai@@"
  - name: ANTHROPIC_API_KEY
    value: @@anthropic@@
  - name: REDIS_PASSWORD
    value: "@@pw@@"
ingress:
  enabled: true
""",
    "docker_compose": """version: "3.9"
services:
  db:
    image: postgres:16
    environment:
      POSTGRES_USER: app
      POSTGRES_PASSWORD: @@pw@@
  worker:
    build: .
    environment:
      - AWS_ACCESS_KEY_ID=@@akid@@
      - AWS_SECRET_ACCESS_KEY=@@awssec@@
      - HF_TOKEN=@@hf@@
    depends_on: [db]
""",
    "gha_log": """2025-06-11T09:14:02.1180447Z ##[group]Run ./scripts/publish.sh
2025-06-11T09:14:02.1181021Z env:
2025-06-11T09:14:02.1181503Z   NPM_TOKEN: @@npm@@
2025-06-11T09:14:02.1182011Z   GH_TOKEN: @@ghp@@
2025-06-11T09:14:02.1182390Z ##[endgroup]
2025-06-11T09:14:04.5512230Z npm ERR! code E401
2025-06-11T09:14:04.5513001Z npm ERR! Unable to authenticate, need: Basic realm="GitHub Package Registry"
2025-06-11T09:14:04.5520012Z ##[error]Process completed with exit code 1.
""",
    "terraform_plan": """Terraform will perform the following actions:

  # aws_db_instance.main will be created
  + resource "aws_db_instance" "main" {
      + allocated_storage = 100
      + engine            = "postgres"
      + username          = "dbadmin"
      + password          = "@@pw@@"
    }

  # datadog_api_key.ci will be updated in-place
  ~ resource "github_actions_secret" "deploy" {
      ~ plaintext_value = "@@ghpat@@"
    }

Plan: 1 to add, 1 to change, 0 to destroy.
""",
    "tfvars": """region        = "eu-west-1"
access_key    = "@@akid@@"
secret_key    = "@@awssec@@"
gitlab_token  = "@@glpat@@"
db_password   = "@@pw@@"
""",
    "ansible_inventory": """[webservers]
web1.prod ansible_host=@@ip@@ ansible_user=deploy ansible_password=@@pw@@
web2.prod ansible_host=@@ip@@ ansible_user=deploy

[webservers:vars]
ansible_become_pass=@@pw@@
slack_webhook_url=@@slackhook@@
""",
    "ci_failure": """FAILED tests/integration/test_upload.py::test_s3_roundtrip - botocore.exceptions.ClientError
E   botocore.exceptions.ClientError: An error occurred (SignatureDoesNotMatch) when calling the PutObject operation
E   request headers: {'X-Amz-Date': '20250611T091402Z', 'Authorization': 'AWS4-HMAC-SHA256 Credential=@@akid@@/20250611/us-east-1/s3/aws4_request'}
captured env: AWS_SECRET_ACCESS_KEY=@@awssec@@
=========================== short test summary info ============================
1 failed, 212 passed in 48.31s
""",
    "sentry_event": """{
  "event_id": "@@hexid@@@@hexid@@",
  "level": "error",
  "exception": {"values": [{"type": "HTTPError", "value": "401 Client Error: Unauthorized for url: https://api.telegram.org/bot@@telegram@@/sendMessage"}]},
  "user": {"id": "48213", "email": "@@email@@", "ip_address": "@@ip@@"},
  "request": {"headers": {"Authorization": "Bearer @@tok@@", "User-Agent": "python-requests/2.32.3"}},
  "contexts": {"runtime": {"name": "CPython", "version": "3.11.9"}}
}
""",
    "datadog_log": """{"timestamp":"@@ts@@","service":"checkout","status":"error","message":"payment failed for customer @@email@@ card=@@card@@","network":{"client":{"ip":"@@ip@@"}},"usr":{"phone":"@@phone@@"}}
""",
    "curl_verbose": """$ curl -v https://api.orbitlabs.dev/v2/accounts/me
*   Trying 104.18.22.41:443...
* Connected to api.orbitlabs.dev (104.18.22.41) port 443
> GET /v2/accounts/me HTTP/2
> Host: api.orbitlabs.dev
> user-agent: curl/8.5.0
> accept: */*
> authorization: Bearer @@jwt@@
> x-api-key: @@tok@@
>
< HTTP/2 403
< content-type: application/json
{"error":"forbidden"}
""",
    "har_snippet": """      "request": {
        "method": "POST",
        "url": "https://api.sendgrid.com/v3/mail/send",
        "headers": [
          {"name": "Authorization", "value": "Bearer @@sendgrid@@"},
          {"name": "Content-Type", "value": "application/json"}
        ],
        "postData": {"mimeType": "application/json", "text": "{\\"to\\":\\"@@email@@\\"}"}
      },
""",
    "postman": """{
  "info": {"name": "Billing API", "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"},
  "auth": {"type": "bearer", "bearer": [{"key": "token", "value": "@@tok@@", "type": "string"}]},
  "variable": [
    {"key": "baseUrl", "value": "https://billing.orbitlabs.dev"},
    {"key": "stripeKey", "value": "@@stripe@@"},
    {"key": "twilioAuthToken", "value": "@@twiliotok@@"}
  ]
}
""",
    "jupyter": """{
 "cells": [
  {
   "cell_type": "code",
   "execution_count": 3,
   "metadata": {},
   "outputs": [],
   "source": [
    "import openai\\n",
    "client = openai.OpenAI(api_key=\\"@@openai@@\\")\\n",
    "hf_token = '@@hf@@'\\n"
   ]
  }
 ],
 "nbformat": 4
}
""",
    "npmrc": """registry=https://registry.npmjs.org/
//registry.npmjs.org/:_authToken=@@npm@@
@orbitlabs:registry=https://npm.pkg.github.com
//npm.pkg.github.com/:_authToken=@@ghp@@
""",
    "pypirc": """[distutils]
index-servers =
    pypi
    internal

[pypi]
username = __token__
password = @@pypi@@

[internal]
repository = https://pypi.corp.orbitlabs.dev/simple
username = ci-bot
password = @@pw@@
""",
    "netrc_gitcreds": """# ~/.netrc
machine api.heroku.com
  login ops@orbitlabs.dev
  password @@tok@@
machine github.com login x-access-token password @@ghp@@

# ~/.git-credentials
https://oauth2:@@glpat@@@gitlab.com
https://@@user@@:@@ghpat@@@github.com
""",
    "pgpass_mycnf": """# ~/.pgpass
@@host@@:5432:analytics:@@user@@:@@urlpw@@
*:*:*:replicator:@@urlpw@@

# ~/.my.cnf
[client]
user=reporting
password="@@pw@@"
host=mysql.svc.cluster.local
""",
    "ssh_config_key": """# I keep getting "Permission denied (publickey)" with this key, what's wrong?
Host bastion
  HostName @@ip@@
  User ec2-user
  IdentityFile ~/.ssh/bastion.pem

$ cat ~/.ssh/bastion.pem
@@pem@@
""",
    "gcp_sa_json": """{
  "type": "service_account",
  "project_id": "orbit-analytics-4821",
  "private_key_id": "@@sha@@",
  "private_key": "@@gcppk@@\\n",
  "client_email": "bq-loader@orbit-analytics-4821.iam.gserviceaccount.com",
  "client_id": "1048@@n@@7729130@@n@@",
  "token_uri": "https://oauth2.googleapis.com/token"
}
""",
    "azure_appsettings": """{
  "Logging": {"LogLevel": {"Default": "Information"}},
  "ConnectionStrings": {
    "Storage": "DefaultEndpointsProtocol=https;AccountName=orbitprodlogs;AccountKey=@@azkey@@;EndpointSuffix=core.windows.net",
    "Sql": "Server=tcp:orbit.database.windows.net,1433;Initial Catalog=core;User ID=svc;Password=@@pw@@;"
  },
  "GoogleMaps": {"ApiKey": "@@gkey@@"}
}
""",
    "dotenv": """# .env.production
NODE_ENV=production
DATABASE_URL=mysql://@@user@@:@@urlpw@@@@@host@@:3306/shop
SESSION_SECRET=@@pw@@
TWILIO_API_KEY=@@twiliosk@@
TWILIO_AUTH_TOKEN=@@twiliotok@@
DISCORD_BOT_TOKEN=@@discord@@
export TELEGRAM_TOKEN="@@telegram@@"
""",
    "python_settings": """# settings/prod.py
DEBUG = False
SECRET_KEY = "@@pw@@"
DATABASES = {"default": dj_database_url.parse("postgres://django:@@urlpw@@@@@host@@/site")}
EMAIL_HOST_PASSWORD = '@@pw@@'
SLACK_BOT_TOKEN = "@@slack@@"
sentry_sdk.init(dsn="https://@@hexid@@@o4505.ingest.sentry.io/45077")
""",
    "java_properties": """spring.datasource.url=jdbc:postgresql://db.internal:5432/orders
spring.datasource.username=orders
spring.datasource.password=@@pw@@
app.jwt.secret=@@pw@@
app.github.token=@@ghp@@
""",
    "xml_config": """<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <appSettings>
    <add key="SmtpPassword" value="@@pw@@" />
    <add key="OpenAIKey" value="@@openai@@" />
  </appSettings>
  <settings><server><id>nexus</id><username>deployer</username><password>@@pw@@</password></server></settings>
</configuration>
""",
    "ini_config": """[database]
host = db.internal
user = etl
passwd = @@pw@@

[api]
client_id = 7f1c9a2e-etl
client_secret = @@tok@@
""",
    "shell_history": """  501  export GITHUB_TOKEN=@@ghp@@
  502  gh auth status
  503  curl -H "Authorization: token @@ghp@@" https://api.github.com/user
  504  mysql -u root -p'@@pw@@' -h 127.0.0.1 shop
  505  docker login -u ci -p @@pw@@ registry.orbitlabs.dev
  506  huggingface-cli login --token @@hf@@
""",
    "traceback": """Traceback (most recent call last):
  File "/srv/app/jobs/sync.py", line 88, in run
    resp = client.post(url, json=payload, headers={"X-API-Key": "@@tok@@"})
  File "/srv/app/.venv/lib/python3.11/site-packages/httpx/_client.py", line 1145, in post
    return self.request(
httpx.HTTPStatusError: Client error '401 Unauthorized' for url 'https://@@user@@:@@urlpw@@@api.partner.io/v1/sync'
""",
    "slack_chat": """[10:42] @@first@@: can someone check why the deploy bot stopped posting?
[10:43] @@first@@: here's the token it uses @@slack@@
[10:43] @@first@@: and the webhook is @@slackhook@@
[10:45] @@first@@: rotated, will update vault. also the anthropic key in the notebook was @@anthropic@@ fyi
""",
    "discord_chat": """dev-help — Today at 3:12 PM
@@first@@: my bot won't connect lol
```
client.run("@@discord@@")
```
@@first@@: bro you just leaked your token, reset it
@@first@@: also the webhook: @@discordhook@@
""",
    "email_thread": """From: @@name@@ <@@email@@>
To: support@orbitlabs.dev
Subject: Re: refund for order #48213

Hi, I was charged twice. The card is @@card@@, exp 09/28.
You can reach me on @@phone@@ or at my work address @@email@@.
My billing address is @@street@@, @@city@@, @@st@@ @@zip@@.

Thanks,
@@first@@
""",
    "jira_ticket": """PROJ-4821: Customer can't log in after password reset
Reporter: @@name@@
Description:
Customer (@@email@@, phone @@iphone@@) says the reset link lands on a 500. Logs show client IP @@ip6@@.
Steps: 1. request reset 2. open link 3. 500
Customer SSN on file (for identity verification): @@ssnd@@
""",
    "support_ticket": """Ticket #@@n@@@@n@@ | Priority: High | Channel: phone
Caller: @@name@@
Callback number: @@iphone@@
Email: @@email@@
Date of birth (verified): @@dob@@
Notes: wants IBAN updated to @@iban@@ for the next payout.
""",
    "crm_csv": """id,full_name,email,phone,country,iban,signup_ip
1001,@@name@@,@@email@@,@@e164@@,DE,@@iban@@,@@ip@@
1002,@@name@@,@@email@@,"@@iphone@@",FR,@@iban@@,@@ip@@
1003,@@name@@,@@email@@,@@phone@@,US,,@@ip@@
""",
    "invoice": """INVOICE  INV-2025-0@@n@@
Bill to: @@name@@
        @@street@@
        @@city@@, @@st@@ @@zip@@
Payment by bank transfer to IBAN @@iban@@ (BIC COBADEFFXXX)
Paid with card ending — full number for our records: @@card@@
Questions? @@email@@ · @@phone@@
""",
    "hr_record": """EMPLOYEE RECORD (CONFIDENTIAL)
Name:            @@name@@
Employee ID:     E-@@n@@@@n@@
SSN:             @@ssn@@
Date of Birth:   @@dob@@
Home address:    @@streeteu@@
Personal email:  @@email@@
Mobile:          @@iphone@@
Direct deposit:  @@iban@@
""",
    "sql_dump": """-- Dumping data for table `customers`
INSERT INTO `customers` (`id`,`name`,`email`,`ssn`,`dob`,`card_number`) VALUES
(1,'@@name@@','@@email@@','@@ssnd@@','@@dobiso@@','@@card@@'),
(2,'@@name@@','@@email@@','@@ssnd@@','@@dobiso@@','@@card@@');
""",
    "pandas_print": """>>> df.head(3)
          name                     email          phone         ssn
0  @@name@@  @@email@@  @@phone@@  @@ssnd@@
1  @@name@@  @@email@@  @@phone@@  @@ssnd@@
2  @@name@@  @@email@@  @@phone@@  @@ssnd@@
""",
    "nginx_access": """@@ip@@ - - [11/Jun/2025:09:14:02 +0000] "GET /api/v1/users?email=@@email@@ HTTP/1.1" 200 512 "-" "Mozilla/5.0"
@@ip@@ - - [11/Jun/2025:09:14:03 +0000] "POST /login HTTP/1.1" 302 0 "-" "curl/8.5.0"
@@ip6@@ - - [11/Jun/2025:09:14:05 +0000] "GET /healthz HTTP/1.1" 200 2 "-" "kube-probe/1.29"
""",
    "teams_chat": """@@name@@ 9:02 AM
Hey, the new hire's details for payroll: SSN @@ssn@@, born @@dob@@, lives at @@street@@, @@city@@ @@st@@.
@@name@@ 9:05 AM
Thanks! Their phone is @@phone@@ right?
""",
    "intake_form": """PATIENT INTAKE FORM — Riverside Family Medicine
Patient name: @@pname@@
DOB: @@pdob@@          MRN: @@mrn@@
Address: @@street@@, @@city@@, @@st@@ @@zip@@
Phone: @@phone@@     Email: @@email@@
Reason for visit: follow-up of @@cond@@
Current medications: @@drug@@
""",
    "lab_report": """LABORATORY REPORT
Patient: @@pnamerev@@            MRN: @@mrn@@
DOB: @@pdob@@    Sex: F    Collected: @@date@@ 07:45
Test                Result    Units     Ref range
HbA1c               8.4 H     %         4.0-5.6
Glucose, fasting    182 H     mg/dL     70-99
Creatinine          1.1       mg/dL     0.6-1.2
Interpretation: consistent with poorly controlled @@cond@@.
""",
    "radiology_report": """RADIOLOGY REPORT
Exam: CT chest with contrast
Patient: @@pname@@ (MRN @@mrn@@), DOB @@pdob@@
Clinical history: cough x3 weeks, history of @@cond@@.
Findings: 9 mm spiculated nodule in the right upper lobe. No pleural effusion.
Impression: suspicious pulmonary nodule; recommend PET-CT.
""",
    "prescription": """Rx
Patient: @@pname@@     Date of birth: @@pdob@@
Medical Record Number: @@mrn@@
Sig: @@drug@@  Disp: #60  Refills: 2
Dx: @@cond@@
Prescriber: Dr. @@name@@, MD  NPI 1@@n@@@@n@@
""",
    "referral_letter": """Dear Dr. @@last@@,

I am referring @@pname@@ (DOB @@pdob@@, MRN @@mrn@@) for evaluation of @@cond@@.
@@pfirst@@ has been on @@drug@@ since March with limited response.
Please contact the patient at @@phone@@.

Kind regards,
Dr. @@name@@
""",
    "discharge_summary": """DISCHARGE SUMMARY
Name: @@pnamerev@@   MR#: @@mrn@@   Admit: @@date@@   Discharge: @@date@@
Diagnosis: @@cond@@
Hospital course: Mr. @@plast@@ was admitted with shortness of breath and treated with IV diuretics.
Discharge medications: @@drug@@
Follow-up with PCP in 1 week.
""",
    "eob": """EXPLANATION OF BENEFITS — THIS IS NOT A BILL
Member: @@pname@@      Member DOB: @@pdob@@
Patient account / MRN: @@mrn@@
Claim: 2025@@n@@@@n@@   Provider: Lakeside Cardiology
Service: 93306 Echocardiogram, complete   Billed $1,240.00   Allowed $612.18
Diagnosis code: I48.91 (@@cond@@)
""",
    "hl7_oru": """MSH|^~\\&|LIS|RIVERSIDE|EHR|RIVERSIDE|20250611083000||ORU^R01|MSG@@n@@@@n@@|P|2.5.1
PID|1||@@mrnd@@^^^RIVERSIDE^MR||@@hl7name@@||@@pdobhl7@@|F|||@@street@@^^@@city@@^@@st@@^@@zip@@||@@phone@@
OBR|1|4821^LIS|9912^LIS|4548-4^Hemoglobin A1c^LN|||20250611074500
OBX|1|NM|4548-4^Hemoglobin A1c^LN||8.4|%|4.0-5.6|H|||F
""",
    "hl7_adt": """MSH|^~\\&|ADT|STMARY|HIS|STMARY|20250611101500||ADT^A01|A@@n@@@@n@@|P|2.3
EVN|A01|20250611101500
PID|1|@@mrnd@@|@@mrnd@@^^^STMARY^MR||@@hl7name@@||@@pdobhl7@@|M|||@@street@@^^@@city@@^@@st@@^@@zip@@
PV1|1|I|4W^412^A|E|||1234^ATTENDING^JANE
DG1|1||J18.9^Pneumonia, unspecified^I10
""",
    "fhir_patient": """{
  "resourceType": "Patient",
  "id": "@@uuid@@",
  "identifier": [{"type": {"coding": [{"code": "MR"}]}, "value": "@@mrn@@"}],
  "name": [{"use": "official", "family": "@@plast@@", "given": ["@@pfirst@@"]}],
  "telecom": [{"system": "phone", "value": "@@phone@@"}, {"system": "email", "value": "@@email@@"}],
  "birthDate": "@@pdobiso@@",
  "address": [{"line": ["@@street@@"], "city": "@@city@@", "state": "@@st@@", "postalCode": "@@zip@@"}]
}
""",
    "fhir_bundle": """{"resourceType":"Bundle","type":"collection","entry":[
 {"resource":{"resourceType":"Patient","id":"p1","name":[{"text":"@@pname@@"}],"birthDate":"@@pdobiso@@","identifier":[{"system":"urn:oid:2.16.840.1.113883.19.5","value":"@@mrn@@"}]}},
 {"resource":{"resourceType":"Condition","subject":{"reference":"Patient/p1","display":"@@pname@@"},"code":{"text":"@@cond@@"}}},
 {"resource":{"resourceType":"Encounter","status":"finished","subject":{"display":"@@pname@@"},"period":{"start":"@@date@@"}}}
]}
""",
    "ccda_xml": """<recordTarget>
  <patientRole>
    <id extension="@@mrnd@@" root="2.16.840.1.113883.19.5.99999.2"/>
    <addr use="HP"><streetAddressLine>@@street@@</streetAddressLine><city>@@city@@</city></addr>
    <telecom value="tel:@@e164@@" use="HP"/>
    <patient>
      <name use="L"><given>@@pfirst@@</given><family>@@plast@@</family></name>
      <administrativeGenderCode code="F" codeSystem="2.16.840.1.113883.5.1"/>
      <birthTime value="@@pdobhl7@@"/>
    </patient>
  </patientRole>
</recordTarget>
""",
    "clinical_note_chat": """can you help me summarize this note for the handoff?

Pt @@pname@@, 67M, MRN @@mrn@@, DOB @@pdob@@, presents w/ worsening dyspnea. PMH: @@cond@@, HTN.
On @@drug@@. Exam: bibasilar crackles. Plan: diurese, BMP in AM, cards consult.
""",
    "sql_patients": """postgres=# SELECT mrn, first_name, last_name, dob, diagnosis FROM patients WHERE ward = '4W';
   mrn    | first_name | last_name |    dob     | diagnosis
----------+------------+-----------+------------+-----------
 @@mrnd@@ | @@pfirst@@ | @@plast@@ | @@pdobiso@@ | @@cond@@
 @@mrnd@@ | @@pfirst@@ | @@plast@@ | @@pdobiso@@ | @@cond@@
(2 rows)
""",
    "mixed_secrets_chat": """ok here's my config, why does the upload fail?

AWS_ACCESS_KEY_ID=@@akid@@
AWS_SECRET_ACCESS_KEY=@@awssec@@
GOOGLE_API_KEY=@@gkey@@
the jwt I get back is @@jwt@@
""",
    "go_source": """package main

const (
	stripeKey   = "@@stripe@@"
	githubToken = "@@ghpat@@"
)

var dsn = "postgres://svc:@@urlpw@@@10.0.4.12:5432/core?sslmode=disable"
""",
    "js_source": """const client = new Octokit({ auth: '@@ghp@@' });
const sg = require('@sendgrid/mail');
sg.setApiKey("@@sendgrid@@");
const redis = new Redis('redis://:@@urlpw@@@cache-01:6379/0');
fetch(url, { headers: { Authorization: `Basic @@basic@@` } });
""",
    "mongo_amqp": """MONGO_URI=mongodb+srv://@@user@@:@@urlpw@@@cluster0.x8k2p.mongodb.net/prod?retryWrites=true
AMQP_URL=amqp://@@user@@:@@urlpw@@@rabbitmq:5672/%2f
""",
    "crash_dump": """panic: runtime error: invalid memory address or nil pointer dereference
[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x8a3f21]

goroutine 1 [running]:
main.(*Client).Do(0xc0001a2000, {0xc000016090, 0x2a}, {"Authorization: Bearer @@tok@@"})
	/src/client.go:77 +0x1c5
environ: HOME=/home/app PGPASSWORD=@@pw@@ OPENAI_API_KEY=@@openai@@
""",
}

DIRTY.update(
    {
        "aws_credentials": """[default]
aws_access_key_id = @@akid@@
aws_secret_access_key = @@awssec@@

[prod-admin]
aws_access_key_id=@@akid@@
aws_secret_access_key=@@awssec@@
region=eu-central-1
""",
        "docker_config": """{
  "auths": {
    "registry.orbitlabs.dev": {"auth": "@@basic@@"},
    "ghcr.io": {"username": "ci-bot", "password": "@@ghp@@"}
  },
  "credsStore": ""
}
""",
        "gitlab_ci": """variables:
  DOCKER_DRIVER: overlay2
  SONAR_TOKEN: "@@tok@@"
  GITLAB_API_TOKEN: @@glpat@@
deploy:
  script:
    - curl --header "PRIVATE-TOKEN: @@glpat@@" "https://gitlab.com/api/v4/projects"
""",
        "kubectl_decoded": """$ kubectl get secret api-db -o jsonpath='{.data.password}' | base64 -d
@@pw@@
$ kubectl get secret api-db -o jsonpath='{.data.username}' | base64 -d
app
""",
        "login_request_dump": """POST /api/login HTTP/1.1
Host: app.orbitlabs.dev
Content-Type: application/json
Cookie: session=@@tok@@

{"username": "@@email@@", "password": "@@pw@@", "remember": true}
""",
        "whatsapp_export": """[03/12/2025, 10:14:02] @@name@@: hey can you send the rent to my new account
[03/12/2025, 10:14:40] @@name@@: IBAN @@iban@@
[03/12/2025, 10:15:03] @@name@@: done. btw my new number is @@iphone@@
[03/12/2025, 10:16:11] @@name@@: my address for the package: @@streeteu@@
""",
        "bank_csv": """Booking date;Value date;Counterparty;IBAN;Amount;Currency
@@date@@;@@date@@;@@name@@;@@iban@@;-1.250,00;EUR
@@date@@;@@date@@;@@name@@;@@iban@@;3.480,17;EUR
""",
        "stripe_event": """{
  "id": "evt_1P@@hexid@@",
  "type": "charge.failed",
  "data": {"object": {"billing_details": {
    "name": "@@name@@", "email": "@@email@@", "phone": "@@e164@@",
    "address": {"line1": "@@street@@", "city": "@@city@@", "postal_code": "@@zip@@"}}}}
}
""",
        "signup_log": """@@ts@@ INFO user.signup email=@@email@@ phone=@@phone@@ ip=@@ip@@ plan=pro
@@ts@@ INFO user.signup email=@@email@@ phone=@@iphone@@ ip=@@ip@@ plan=free
@@ts@@ WARN user.kyc ssn=@@ssnd@@ dob=@@dobiso@@ result=manual_review
""",
        "python_repr": """>>> print(user)
{'id': 48213, 'name': '@@name@@', 'email': '@@email@@', 'ssn': '@@ssnd@@', 'dob': '@@dobiso@@', 'card': '@@card@@'}
""",
        "patient_portal": """Subject: side effects question
Hi Dr. @@last@@, this is @@pname@@ (DOB @@pdob@@, MRN @@mrn@@). Since starting @@drug@@ I have had
nausea and dizziness every morning. Should I keep taking it? You can call me at @@phone@@.
""",
        "edi_837": """ISA*00*          *00*          *ZZ*SUBMITTER      *ZZ*PAYER          *250611*0914*^*00501*000000905*0*P*:~
NM1*IL*1*@@plast@@*@@pfirst@@****MI*W@@mrnd@@~
DMG*D8*@@pdobhl7@@*F~
CLM*26463774*100***11:B:1*Y*A*Y*I~
HI*ABK:E119~
""",
        "fhir_condition": """{
  "resourceType": "Condition",
  "clinicalStatus": {"coding": [{"code": "active"}]},
  "code": {"text": "@@cond@@"},
  "subject": {"reference": "Patient/@@uuid@@", "display": "@@pname@@"},
  "note": [{"text": "@@pname@@ reports symptoms worsening since @@date@@"}]
}
""",
        "nursing_note": """0700 shift handoff — Bed 12: @@pnamerev@@, MRN @@mrn@@, DOB @@pdob@@.
A&Ox3, on @@drug@@. Hx @@cond@@. Pain 4/10, PRN given 0530. Family at bedside.
""",
    }
)

# Containers whose whole text is pasted again inside another encoding.
ENCODED: dict[str, tuple[str, Callable[[str], str], str, str]] = {
    "json_escaped_chat": (
        "mixed_secrets_chat",
        _json_inner,
        '{"model":"gpt-4o","messages":[{"role":"user","content":"',
        '"}]}\n',
    ),
    "json_escaped_ticket": (
        "support_ticket",
        _json_inner,
        '{"ticket":{"body":"',
        '","status":"open"}}\n',
    ),
    "json_escaped_note": (
        "clinical_note_chat",
        _json_inner,
        '{"input":"',
        '","task":"summarize"}\n',
    ),
    "url_encoded_form": (
        "dotenv",
        lambda s: urllib.parse.quote(s, safe=""),
        "POST /api/paste HTTP/1.1\nContent-Type: application/x-www-form-urlencoded\n\ncontent=",
        "&lang=env\n",
    ),
    "url_encoded_query": (
        "email_thread",
        lambda s: urllib.parse.quote_plus(s),
        "GET /search?q=",
        " HTTP/1.1\nHost: internal-search\n",
    ),
}

INLINE_URL_QUERY = """GET /oauth/callback?code=4%2F0Ab&state=xyz&access_token=@@tok@@&email=@@email@@ HTTP/1.1
GET /api/v1/notify?phone=@@e164@@&apikey=@@gkey@@ HTTP/1.1
"""
DIRTY["inline_query_params"] = INLINE_URL_QUERY


# ---------------------------------------------------------------- clean look-alikes (never planted)


def _sha256(rng: R) -> str:
    return _s(rng, HEX, 64)


def _sri(rng: R) -> str:
    return "sha512-" + base64.b64encode(rng.randbytes(64)).decode()


def _ulid(rng: R) -> str:
    return "01J" + _s(rng, "0123456789ABCDEFGHJKMNPQRSTVWXYZ", 23)


def _snowflake(rng: R) -> str:
    return str(rng.randint(10**17, 10**19 - 1))


def _privip(rng: R) -> str:
    return rng.choice(
        [
            f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            f"172.{rng.randint(16, 31)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            "127.0.0.1",
            f"203.0.113.{rng.randint(1, 254)}",
            f"198.51.100.{rng.randint(1, 254)}",
            f"2001:db8::{rng.randint(1, 0xFFFF):x}",
            "::1",
            f"fe80::{rng.randint(1, 0xFFFF):x}",
        ]
    )


def _sshpub(rng: R) -> str:
    if rng.random() < 0.5:
        return "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + _s(rng, B64, 43) + " ci@build-runner"
    return "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ" + _s(rng, B64, 340) + "= deploy@bastion"


def _cert(rng: R) -> str:
    lines = _pem_body(rng, b"\x30\x82\x03\x5e\x30\x82\x02\x46\xa0\x03\x02\x01\x02", 820)
    label = rng.choice(["CERTIFICATE", "PUBLIC KEY", "CERTIFICATE REQUEST"])
    return "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"])


def _ver(rng: R) -> str:
    return f"{rng.randint(0, 9)}.{rng.randint(0, 40)}.{rng.randint(0, 30)}"


def _fakephone(rng: R) -> str:
    return rng.choice(
        [
            f"(555) 01{rng.randint(0, 99):02d}",
            f"555-01{rng.randint(0, 99):02d}",
            f"+1-202-555-01{rng.randint(0, 99):02d}",
            f"(800) 555-01{rng.randint(0, 99):02d}",
        ]
    )


def _testcard(rng: R) -> str:
    return rng.choice(
        [
            "4242 4242 4242 4242",
            "4000 0025 0000 3155",
            "5555 5555 5555 4444",
            "4111111111111111",
            "378282246310005",
            "6011111111111117",
            "4000000000000002",
            "5105105105105100",
        ]
    )


def _exemail(rng: R) -> str:
    return f"{rng.choice(['alice', 'bob', 'user', 'test', 'jdoe', 'noreply'])}@{rng.choice(['example.com', 'example.org', 'test.local', 'example.net'])}"


def _placeholder(rng: R) -> str:
    return rng.choice(
        [
            "${DB_PASSWORD}",
            "{{ .Values.db.password }}",
            "<YOUR_API_KEY>",
            "changeme",
            "********",
            "[REDACTED]",
            "os.environ['API_KEY']",
            "process.env.STRIPE_KEY",
            "$(cat /run/secrets/token)",
            "${{ secrets.NPM_TOKEN }}",
            "{{ vault_db_password }}",
            "xxxxxxxxxxxxxxxx",
            "<redacted>",
            "%(DB_PASS)s",
            "${env:API_TOKEN}",
            "!vault |",
            "your-token-here",
            "REPLACE_ME",
            "sk_live_XXXXXXXXXXXXXXXXXXXXXXXX",
            "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "None",
            "null",
        ]
    )


CLEAN_GEN: dict[str, Callable[[R], str]] = {
    "sha256": _sha256,
    "sri": _sri,
    "ulid": _ulid,
    "snow": _snowflake,
    "privip": _privip,
    "sshpub": _sshpub,
    "cert": _cert,
    "ver": _ver,
    "fakephone": _fakephone,
    "testcard": _testcard,
    "exemail": _exemail,
    "ph": _placeholder,
    "b64img": lambda rng: base64.b64encode(rng.randbytes(180)).decode(),
    "color": lambda rng: "#" + _s(rng, HEX, 6),
    "num": lambda rng: f"{rng.uniform(0, 10000):.4f}",
    "int": lambda rng: str(rng.randint(10**5, 10**10)),
    "port": lambda rng: str(rng.randint(1024, 65000)),
    "ms": lambda rng: str(rng.randint(1, 5000)),
}
for _k, _f in CLEAN_GEN.items():
    GEN[_k] = (None, "", _f)

CLEAN: dict[str, str] = {
    "git_log": """commit @@sha@@
Merge: @@hexid@@ @@hexid@@
Author: dependabot[bot] <49699333+dependabot[bot]@users.noreply.github.com>
Date:   Wed Jun 11 09:14:02 2025 +0000

    chore(deps): bump pydantic from 2.7.1 to @@ver@@ (#@@n@@)

commit @@sha@@
Author: Release Bot <@@exemail@@>
    release: v@@ver@@
""",
    "git_diff": """diff --git a/src/auth/token.py b/src/auth/token.py
index @@hexid@@..@@hexid@@ 100644
--- a/src/auth/token.py
+++ b/src/auth/token.py
@@ -12,7 +12,9 @@ def get_token(session: Session) -> str:
-    token = session.get("token")
+    token = session.get("access_token") or session.get("token")
+    if not token:
+        raise AuthError("missing token; set API_TOKEN in the environment")
     return token
""",
    "package_lock": """    "node_modules/lodash": {
      "version": "4.17.21",
      "resolved": "https://registry.npmjs.org/lodash/-/lodash-4.17.21.tgz",
      "integrity": "@@sri@@",
      "license": "MIT"
    },
    "node_modules/zod": {
      "version": "@@ver@@",
      "integrity": "@@sri@@"
    }
""",
    "go_sum": """github.com/google/uuid v1.6.0 h1:NIvaJDMOsjHA8n1jAhLSgzrAzy1Hgr+hNrb57e+94F0=
golang.org/x/crypto v0.@@n@@.0 h1:@@b64img@@=
golang.org/x/net v0.@@n@@.0/go.mod h1:@@sha256@@
""",
    "docker_build": """#5 [internal] load metadata for docker.io/library/python:3.11-slim
#5 DONE 0.8s
#6 [1/6] FROM docker.io/library/python:3.11-slim@sha256:@@sha256@@
#9 exporting to image
#9 writing image sha256:@@sha256@@ done
#9 naming to ghcr.io/orbitlabs/api:@@ver@@ done
""",
    "sha256sums": """@@sha256@@  orbit-cli_@@ver@@_linux_amd64.tar.gz
@@sha256@@  orbit-cli_@@ver@@_darwin_arm64.tar.gz
@@sha256@@  orbit-cli_@@ver@@_windows_amd64.zip
""",
    "aws_docs_example": """# Configure the CLI (values from the AWS docs)
$ aws configure
AWS Access Key ID [None]: AKIAIOSFODNN7EXAMPLE
AWS Secret Access Key [None]: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
Default region name [None]: us-west-2
Default output format [None]: json
""",
    "stripe_docs": """curl https://api.stripe.com/v1/charges \\
  -u sk_test_4eC39HqLyjWDarjtT1zdp7dc: \\
  -d amount=2000 -d currency=usd -d source=tok_visa
# Use test card @@testcard@@ with any future expiry and any CVC.
""",
    "jwt_docs": """The example token from jwt.io decodes to {"sub": "1234567890", "name": "John Doe", "iat": 1516239022}:
eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c
Never log real tokens; use `jwt.decode(token, key, algorithms=["HS256"])`.
""",
    "k8s_secret_refs": """apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      containers:
        - name: api
          image: ghcr.io/orbitlabs/api@sha256:@@sha256@@
          env:
            - name: DB_PASSWORD
              valueFrom:
                secretKeyRef: {name: api-secrets, key: db-password}
            - name: API_TOKEN
              value: "@@ph@@"
""",
    "helm_template": """env:
  - name: STRIPE_SECRET_KEY
    value: {{ .Values.stripe.secretKey | quote }}
  - name: PASSWORD
    value: "@@ph@@"
resources:
  limits: {cpu: 500m, memory: 512Mi}
""",
    "compose_env_refs": """services:
  db:
    image: postgres:16-alpine
    environment:
      POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?set it in .env}
      POSTGRES_USER: ${POSTGRES_USER:-app}
    ports: ["127.0.0.1:5432:5432"]
  api:
    environment:
      DATABASE_URL: postgres://app:${POSTGRES_PASSWORD}@db:5432/app
      SECRET_KEY: "@@ph@@"
""",
    "env_example": """# .env.example — copy to .env and fill in
OPENAI_API_KEY=
ANTHROPIC_API_KEY=your-anthropic-key
GITHUB_TOKEN=<github token with repo scope>
DATABASE_URL=postgres://user:password@localhost:5432/dev
PASSWORD=@@ph@@
SMTP_HOST=smtp.example.com
""",
    "gha_workflow": """name: release
on: {push: {tags: ["v*"]}}
jobs:
  publish:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@@@sha@@ # v4
      - run: npm publish
        env:
          NODE_AUTH_TOKEN: ${{ secrets.NPM_TOKEN }}
          GH_TOKEN: ${{ github.token }}
""",
    "gha_log_masked": """2025-06-11T09:14:02.1180447Z ##[group]Run npm publish
2025-06-11T09:14:02.1181503Z   NODE_AUTH_TOKEN: ***
2025-06-11T09:14:02.1182011Z   GH_TOKEN: ***
2025-06-11T09:14:04.5512230Z + orbit-cli@@@ver@@
2025-06-11T09:14:04.5520012Z Published in @@ms@@ ms
""",
    "python_auth_code": """def validate_password(password: str) -> list[str]:
    \"\"\"Why: NIST 800-63B wants length over composition rules.\"\"\"
    problems = []
    if len(password) < 12:
        problems.append("password too short")
    if password.lower() in COMMON_PASSWORDS:
        problems.append("password is too common")
    return problems


def get_token(client_id: str, client_secret: str) -> str:
    resp = httpx.post(TOKEN_URL, data={"grant_type": "client_credentials"}, auth=(client_id, client_secret))
    return resp.json()["access_token"]
""",
    "go_auth_code": """func (s *Server) authenticate(r *http.Request) (*User, error) {
	token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if token == "" {
		return nil, ErrNoToken
	}
	secret := os.Getenv("JWT_SECRET")
	claims, err := jwt.Parse(token, func(t *jwt.Token) (any, error) { return []byte(secret), nil })
	return userFromClaims(claims), err
}
""",
    "java_auth_code": """@Configuration
public class SecurityConfig {
    @Value("${app.jwt.secret}")
    private String jwtSecret;

    @Bean
    public PasswordEncoder passwordEncoder() {
        return new BCryptPasswordEncoder(12);
    }
}
""",
    "js_minified": """!function(e,t){"object"==typeof exports?module.exports=t():e.lib=t()}(this,function(){var e="@@color@@",t=function(n){return n.replace(/[A-Z]/g,function(r){return"-"+r.toLowerCase()})};return{k:"abcdefghijklmnopqrstuvwxyz0123456789",c:e,h:t,v:"@@ver@@",i:"@@hexid@@@@hexid@@"}});
""",
    "css": """:root { --brand: @@color@@; --accent: @@color@@; --radius: 6px; }
.btn-primary { background: var(--brand); border: 1px solid @@color@@; }
.logo { background-image: url("data:image/png;base64,@@b64img@@"); }
""",
    "openapi_doc": """components:
  securitySchemes:
    ApiKeyAuth:
      type: apiKey
      in: header
      name: X-API-Key
    bearerAuth:
      type: http
      scheme: bearer
      bearerFormat: JWT
paths:
  /users/{id}:
    get:
      parameters: [{name: id, in: path, schema: {type: string, format: uuid, example: "@@uuid@@"}}]
""",
    "test_fixtures": """@pytest.fixture
def user() -> User:
    return User(id="@@uuid@@", email="@@exemail@@", phone="@@fakephone@@", name="Test User")


def test_card_rejected(client):
    resp = client.post("/pay", json={"card": "@@testcard@@", "cvc": "123"})
    assert resp.status_code == 402
""",
    "known_hosts_pub": """# ~/.ssh/authorized_keys
@@sshpub@@
# known_hosts
github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl
""",
    "cert_paste": """Here's the CA bundle our proxy presents, is the chain right?
@@cert@@
""",
    "ids_log": """@@ts@@ INFO request_id=@@uuid@@ trace=@@hexid@@@@hexid@@ span=@@hexid@@ dur_ms=@@ms@@
@@ts@@ INFO job=@@ulid@@ discord_msg=@@snow@@ status=ok bytes=@@int@@
@@ts@@ WARN upstream=@@privip@@:@@port@@ retry=3 backoff_ms=@@ms@@
""",
    "metrics_log": """epoch  train_loss  val_loss  lr          grad_norm
1      @@num@@      @@num@@   0.000300    @@num@@
2      @@num@@      @@num@@   0.000290    @@num@@
3      @@num@@      @@num@@   0.000270    @@num@@
step=@@int@@ tokens=@@int@@ throughput=@@num@@ tok/s
""",
    "fhir_schema_doc": """The Patient resource (R4) carries demographics:
| element     | type            | notes                                   |
|-------------|-----------------|-----------------------------------------|
| identifier  | Identifier[]    | e.g. MRN, with type.coding.code = "MR"  |
| name        | HumanName[]     | family, given[], use                    |
| birthDate   | date            | YYYY-MM-DD                              |
| telecom     | ContactPoint[]  | phone / email                           |
""",
    "medical_code": """@dataclass
class Patient:
    \"\"\"Why: the EHR export gives names and MRNs as separate fields.\"\"\"
    mrn: str
    family: str
    given: list[str]
    birth_date: date | None = None

    def display_name(self) -> str:
        return f"{' '.join(self.given)} {self.family}"


def parse_pid(segment: str) -> Patient:
    fields = segment.split("|")
    family, given = fields[5].split("^")[:2]
    return Patient(mrn=fields[3].split("^")[0], family=family, given=[given])
""",
    "hl7_spec_doc": """PID-3 Patient Identifier List (CX) — e.g. the medical record number, component 5 = "MR".
PID-5 Patient Name (XPN) — family^given^middle.
PID-7 Date/Time of Birth (TS) — YYYYMMDD.
Segment order for ORU^R01: MSH, PID, [PV1], {OBR, {OBX}}.
""",
    "sql_schema": """CREATE TABLE patients (
    id          BIGSERIAL PRIMARY KEY,
    mrn         TEXT NOT NULL UNIQUE,
    first_name  TEXT NOT NULL,
    last_name   TEXT NOT NULL,
    dob         DATE,
    ssn_hash    BYTEA,
    created_at  TIMESTAMPTZ DEFAULT now()
);
CREATE INDEX ON patients (last_name, first_name);
""",
    "pytest_output": """============================= test session starts ==============================
platform linux -- Python 3.11.9, pytest-8.2.0, pluggy-1.5.0
collected @@n@@ items

tests/test_auth.py ........F.                                            [ 40%]
tests/test_tokens.py ...............                                     [100%]
FAILED tests/test_auth.py::test_rejects_expired_token - AssertionError: assert 200 == 401
========================= 1 failed, @@n@@ passed in @@num@@s =========================
""",
    "ruff_mypy": """src/orbit/auth.py:41:5: F841 Local variable `token` is assigned to but never used
src/orbit/auth.py:88:80: E501 Line too long (104 > 100)
src/orbit/db.py:12: error: Argument "password" to "connect" has incompatible type "str | None"; expected "str"  [arg-type]
Found 3 errors in 2 files (checked @@n@@ source files)
""",
    "terraform_vars": """variable "db_password" {
  type      = string
  sensitive = true
}

resource "aws_db_instance" "main" {
  password = var.db_password
  username = "dbadmin"
  tags     = { Name = "orders-${var.env}" }
}
# Plan output
      + password = (sensitive value)
""",
    "ansible_vault": """db_password: !vault |
          $ANSIBLE_VAULT;1.1;AES256
          @@sha256@@
          @@sha256@@
api_user: svc
api_token: "{{ vault_api_token }}"
""",
    "chat_about_keys": """@@first@@: where do I put the openai key?
@@first@@: don't paste it here — put it in `.env` as OPENAI_API_KEY and load it with python-dotenv
@@first@@: ok, and the token for the registry?
@@first@@: use `${{ secrets.REGISTRY_TOKEN }}` in the workflow, never commit it
""",
    "redacted_log": """@@ts@@ ERROR auth failed for user=[REDACTED] token=**** ip=@@privip@@
@@ts@@ DEBUG Authorization: Bearer <redacted>
@@ts@@ DEBUG password=******** (masked)
@@ts@@ INFO retrying in @@ms@@ms
""",
    "url_examples": """See https://docs.example.com/api/v@@n@@/auth for details.
Clone with https://github.com/orbitlabs/orbit-cli.git or git@github.com:orbitlabs/orbit-cli.git
Local: http://localhost:@@port@@/health and http://@@privip@@:@@port@@/metrics
Contact: @@exemail@@, phone @@fakephone@@
""",
    "cargo_lock": """[[package]]
name = "serde"
version = "@@ver@@"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "@@sha256@@"
""",
    "poetry_hashes": """requests==2.32.3 \\
    --hash=sha256:@@sha256@@ \\
    --hash=sha256:@@sha256@@
urllib3==@@ver@@ \\
    --hash=sha256:@@sha256@@
""",
    "k8s_describe": """Name:         api-7c9f8d6b5-@@hexid@@
Namespace:    prod
Node:         ip-10-0-3-17.eu-west-1.compute.internal/10.0.3.17
Start Time:   Wed, 11 Jun 2025 09:14:02 +0000
IP:           @@privip@@
Containers:
  api:
    Image ID:   ghcr.io/orbitlabs/api@sha256:@@sha256@@
    Environment:
      DB_PASSWORD:  <set to the key 'password' in secret 'api-db'>  Optional: false
""",
    "sentry_clean": """{"event_id":"@@hexid@@@@hexid@@","level":"warning","logger":"orbit.cache","message":"cache miss ratio @@num@@ above threshold","tags":{"release":"@@ver@@","env":"staging"},"user":{"id":"@@int@@"}}
""",
    "jupyter_clean": """{"cell_type":"code","execution_count":@@n@@,"outputs":[{"name":"stdout","output_type":"stream","text":["accuracy: @@num@@\\n","f1: @@num@@\\n"]}],"source":["import os\\n","key = os.environ[\\"OPENAI_API_KEY\\"]\\n","model.fit(X_train, y_train)\\n"]}
""",
    "placeholder_configs": """[database]
password = @@ph@@
[api]
token = @@ph@@
client_secret = @@ph@@
api_key: "@@ph@@"
SECRET_KEY=@@ph@@
""",
    "form_docs": """## Validation rules
- SSN must match `^\\d{3}-\\d{2}-\\d{4}$` and is never 000-xx-xxxx, 666-xx-xxxx or 9xx (e.g. 000-12-3456 fails).
- IBAN: we test with the spec examples DE89 3704 0044 0532 0130 00 and GB82 WEST 1234 5698 7654 32.
- Phone: use fictional numbers like @@fakephone@@ in screenshots.
- Card: Stripe's @@testcard@@ always succeeds in test mode.
""",
    "changelog": """## [@@ver@@] - @@date@@
### Fixed
- Token refresh no longer races when two requests expire at once (#@@n@@).
- `password_reset` e-mails are rate limited to 3 per hour.
## [@@ver@@] - @@date@@
### Changed
- Minimum Python is 3.11; dropped `pytz` in favour of `zoneinfo`.
""",
    "http_placeholder": """POST /v1/chat/completions HTTP/1.1
Host: api.openai.com
Authorization: Bearer $OPENAI_API_KEY
X-API-Key: {{apiKey}}
Content-Type: application/json

{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}
""",
    "clinical_guideline": """For adults with type 2 diabetes and an HbA1c above 7.0%, add a GLP-1 receptor agonist
when cardiovascular risk is high. Recheck HbA1c every 3 months until at target, then every 6 months.
Patients on metformin need an eGFR check at least yearly; stop it below 30 mL/min/1.73m2.
""",
    "ehr_test_fixture": """def make_patient(**overrides) -> Patient:
    \"\"\"Why: every test needs a valid patient; the values are the obvious fakes our QA uses.\"\"\"
    base = dict(mrn="TEST-0001", family="Doe", given=["Jane"], birth_date=date(1970, 1, 1),
                phone="555-0100", email="jane.doe@example.com")
    return Patient(**{**base, **overrides})
""",
    "df_numeric": """>>> df.describe()
              price        qty      latency_ms
count  @@int@@   @@int@@   @@int@@
mean     @@num@@   @@num@@     @@num@@
std      @@num@@   @@num@@     @@num@@
max      @@num@@   @@num@@     @@num@@
""",
    "math_log": """iter @@int@@: residual=@@num@@e-07 step=@@num@@ cond=@@int@@
matrix shape (@@n@@, @@n@@), det=@@num@@, rank=@@n@@
seed=@@int@@ timestamps=[@@int@@, @@int@@, @@int@@]
""",
}


CLEAN.update(
    {
        "aws_credentials_example": """# ~/.aws/credentials (docs example)
[default]
aws_access_key_id = AKIAIOSFODNN7EXAMPLE
aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
[sso]
sso_start_url = https://my-sso-portal.awsapps.com/start
sso_account_id = 111122223333
""",
        "docker_config_store": """{
  "auths": {"ghcr.io": {}, "https://index.docker.io/v1/": {}},
  "credsStore": "desktop",
  "currentContext": "default"
}
""",
        "nginx_conf": """upstream api { server @@privip@@:@@port@@ max_fails=3; keepalive 32; }
server {
    listen 443 ssl http2;
    server_name api.example.com;
    ssl_certificate     /etc/ssl/certs/api.pem;
    ssl_certificate_key /etc/ssl/private/api.key;
    location / { proxy_pass http://api; proxy_set_header Authorization $http_authorization; }
}
""",
        "systemd_unit": """[Unit]
Description=Orbit API
[Service]
EnvironmentFile=/etc/orbit/api.env
ExecStart=/opt/orbit/bin/api --port @@port@@ --token-file /run/secrets/api_token
Restart=on-failure
""",
        "pyproject": """[project]
name = "orbit-cli"
version = "@@ver@@"
dependencies = ["httpx>=0.27", "pydantic>=2.7", "keyring>=25"]
[tool.ruff]
line-length = 100
""",
        "har_redacted": """{"name": "Authorization", "value": "[REDACTED]"},
{"name": "Cookie", "value": "session=<redacted>"},
{"name": "x-request-id", "value": "@@uuid@@"},
{"name": "if-none-match", "value": "W/\\"@@hexid@@\\""}
""",
        "sql_migration": """-- 0042_add_api_tokens.sql
CREATE TABLE api_tokens (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    token_hash CHAR(64) NOT NULL,
    last4 CHAR(4) NOT NULL
);
INSERT INTO settings (key, value) VALUES ('smtp_password', :smtp_password);
""",
        "stripe_fixture": """{"id": "evt_test_webhook", "livemode": false, "data": {"object": {"billing_details": {
  "name": "Jenny Rosen", "email": "jenny.rosen@example.com", "phone": "@@fakephone@@",
  "address": {"line1": "510 Townsend St", "city": "San Francisco", "postal_code": "94103"}},
  "payment_method_details": {"card": {"last4": "4242", "brand": "visa"}}}}}
""",
    }
)


def build(seed: int = 0) -> tuple[list[Packet], list[Packet]]:
    """Dirty and clean packets; the same seed always gives the same corpus."""
    rng = random.Random(seed)
    dirty = [
        _render(f"{name}#{i}", _fill(tpl, rng)) for name, tpl in DIRTY.items() for i in range(6)
    ]
    for name, (inner, enc, head, tail) in ENCODED.items():
        for i in range(6):
            pkt = _render(f"{name}#{i}", _fill(DIRTY[inner], rng), enc)
            shifted = tuple((s + len(head), e + len(head), c, k) for s, e, c, k in pkt.planted)
            dirty.append(Packet(pkt.name, head + pkt.text + tail, shifted))
    clean = [
        _render(f"{name}#{i}", _fill(tpl, rng)) for name, tpl in CLEAN.items() for i in range(4)
    ]
    return dirty, clean
