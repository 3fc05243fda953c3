# ruff: noqa: E501
"""A fourth held-out privacy corpus, written apart from the detectors.

Why: recall measured on the corpus the detectors were tuned on flatters them;
this one was written from the issue text alone, with values in real formats
(checksums, Luhn, mod-97, valid SSNs, validated phone numbers) placed in the
containers developers actually paste, plus clean packets full of hard negatives.
Every value is random; none is a real credential or a real person.
"""

from __future__ import annotations

import base64
import json
import random
import re
import string
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import phonenumbers


@dataclass(frozen=True)
class Packet:
    """One text with the spans of the sensitive values planted in it."""

    name: str
    text: str
    planted: tuple[tuple[int, int, str, str], ...]


Gen = Callable[[random.Random], str]

UP = string.ascii_uppercase
LO = string.ascii_lowercase
DIG = string.digits
ALNUM = UP + LO + DIG
B62 = DIG + UP + LO
B64 = UP + LO + DIG + "+/"
B64URL = UP + LO + DIG + "-_"
HEX = "0123456789abcdef"


def _s(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _b62(n: int, width: int) -> str:
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = B62[r] + out
    return out.rjust(width, "0")


# ---------------------------------------------------------------- secrets


def aws_akid(rng: random.Random) -> str:
    return rng.choice(["AKIA", "ASIA"]) + _s(rng, UP + "234567", 16)


def aws_secret(rng: random.Random) -> str:
    return _s(rng, UP + LO + DIG + "+/", 40)


def gh_classic(rng: random.Random) -> str:
    body = _s(rng, ALNUM, 30)
    return rng.choice(["ghp_", "gho_", "ghu_", "ghs_"]) + body + _b62(zlib.crc32(body.encode()), 6)


def gh_fine(rng: random.Random) -> str:
    return "github_pat_" + _s(rng, ALNUM, 22) + "_" + _s(rng, ALNUM, 59)


def gitlab(rng: random.Random) -> str:
    return "glpat-" + _s(rng, ALNUM + "-_", 20)


def slack_token(rng: random.Random) -> str:
    p = rng.choice(["xoxb", "xoxp"])
    return f"{p}-{_s(rng, DIG, 12)}-{_s(rng, DIG, 13)}-{_s(rng, ALNUM, 24)}"


def slack_hook(rng: random.Random) -> str:
    return f"https://hooks.slack.com/services/T{_s(rng, UP + DIG, 8)}/B{_s(rng, UP + DIG, 10)}/{_s(rng, ALNUM, 24)}"


def stripe_key(rng: random.Random) -> str:
    return rng.choice(["sk_live_", "rk_live_"]) + _s(rng, ALNUM, rng.choice([24, 99]))


def stripe_whsec(rng: random.Random) -> str:
    return "whsec_" + _s(rng, ALNUM, 32)


def openai_key(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return "sk-proj-" + _s(rng, ALNUM + "-_", 124) + "T3BlbkFJ" + _s(rng, ALNUM + "-_", 20)
    return "sk-" + _s(rng, ALNUM, 20) + "T3BlbkFJ" + _s(rng, ALNUM, 20)


def anthropic_key(rng: random.Random) -> str:
    return "sk-ant-api03-" + _s(rng, ALNUM + "-_", 93) + "AA"


def google_key(rng: random.Random) -> str:
    return "AIza" + _s(rng, ALNUM + "-_", 35)


def twilio_sk(rng: random.Random) -> str:
    return "SK" + _s(rng, HEX, 32)


def hex32(rng: random.Random) -> str:
    return _s(rng, HEX, 32)


def sendgrid(rng: random.Random) -> str:
    return "SG." + _s(rng, ALNUM + "-_", 22) + "." + _s(rng, ALNUM + "-_", 43)


def npm_tok(rng: random.Random) -> str:
    return "npm_" + _s(rng, ALNUM, 36)


def pypi_tok(rng: random.Random) -> str:
    return "pypi-AgEIcHlwaS5vcmc" + _s(rng, B64URL, 140)


def hf_tok(rng: random.Random) -> str:
    return "hf_" + _s(rng, UP + LO, 34)


def discord_tok(rng: random.Random) -> str:
    ident = str(rng.randint(10**17, 10**18 - 1)).encode()
    return (
        base64.b64encode(ident).decode().rstrip("=")
        + "."
        + _s(rng, B64URL, 6)
        + "."
        + _s(rng, B64URL, 38)
    )


def telegram_tok(rng: random.Random) -> str:
    return f"{rng.randint(10**8, 10**10 - 1)}:AA{_s(rng, B64URL, 33)}"


def _b64u(obj: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def jwt(rng: random.Random) -> str:
    head = _b64u({"alg": rng.choice(["HS256", "RS256"]), "typ": "JWT"})
    body = _b64u(
        {
            "sub": str(rng.randint(1000, 99999)),
            "email": f"{_s(rng, LO, 6)}@corp.io",
            "iat": rng.randint(1_600_000_000, 1_800_000_000),
        }
    )
    return f"{head}.{body}.{_s(rng, B64URL, 43)}"


def _pem_body(rng: random.Random, lines: int) -> str:
    return "\n".join(_s(rng, B64, 64) for _ in range(lines)) + "\n" + _s(rng, B64, 28) + "=="


def pem_key(rng: random.Random) -> str:
    label = rng.choice(
        ["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY"]
    )
    head = f"-----BEGIN {label}-----\n"
    if label == "RSA PRIVATE KEY" and rng.random() < 0.5:
        head += f"Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,{_s(rng, HEX.upper(), 32)}\n\n"
    return head + _pem_body(rng, rng.randint(5, 12)) + f"\n-----END {label}-----"


def openssh_key(rng: random.Random) -> str:
    return (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA"
        + _s(rng, B64, 40)
        + "\n"
        + _pem_body(rng, 4)
        + "\n-----END OPENSSH PRIVATE KEY-----"
    )


def pgp_key(rng: random.Random) -> str:
    return (
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQdGBG"
        + _s(rng, B64, 58)
        + "\n"
        + _pem_body(rng, 6)
        + "\n="
        + _s(rng, B64, 4)
        + "\n-----END PGP PRIVATE KEY BLOCK-----"
    )


_WORDS = [
    "river",
    "Falcon",
    "copper",
    "Maple",
    "orbit",
    "Tango",
    "velvet",
    "Quartz",
    "harbor",
    "Pixel",
    "lunar",
    "Cobalt",
]


def password(rng: random.Random) -> str:
    parts = [
        rng.choice(_WORDS),
        str(rng.randint(10, 9999)),
        rng.choice("!#%&*@^$?"),
        rng.choice(_WORDS),
    ]
    rng.shuffle(parts)
    return "".join(parts) + _s(rng, ALNUM, rng.randint(0, 4))


def url_password(rng: random.Random) -> str:
    parts = [rng.choice(_WORDS), str(rng.randint(10, 9999)), rng.choice("_-.~"), rng.choice(_WORDS)]
    rng.shuffle(parts)
    return "".join(parts)


def random_secret(rng: random.Random) -> str:
    return _s(rng, ALNUM, rng.randint(24, 44))


def azure_key(rng: random.Random) -> str:
    return _s(rng, B64, 86) + "=="


def basic_auth(rng: random.Random) -> str:
    return base64.b64encode(f"{_s(rng, LO, 6)}:{password(rng)}".encode()).decode()


def gcp_private(rng: random.Random) -> str:
    return (
        "-----BEGIN PRIVATE KEY-----\\n"
        + "\\n".join(_s(rng, B64, 64) for _ in range(8))
        + "\\n-----END PRIVATE KEY-----\\n"
    )


def sentry_dsn_key(rng: random.Random) -> str:
    return _s(rng, HEX, 32)


# ---------------------------------------------------------------- people

FIRST = [
    "Maria",
    "Oluwaseun",
    "Priya",
    "Dmitri",
    "Aisha",
    "Kenji",
    "Sofia",
    "Mateo",
    "Ingrid",
    "Tomasz",
    "Chloe",
    "Rahul",
    "Fatima",
    "Liam",
    "Mei",
    "Jorge",
    "Astrid",
    "Kwame",
    "Elena",
    "Yusuf",
    "Hannah",
    "Diego",
    "Nadia",
    "Connor",
]
LAST = [
    "Okafor",
    "Lindqvist",
    "Ramirez",
    "Nakamura",
    "Kowalski",
    "Haddad",
    "Fitzgerald",
    "Patel",
    "Moreau",
    "Schreiber",
    "Delacroix",
    "Abernathy",
    "Castellano",
    "Wojcik",
    "Van der Berg",
    "Oyelaran",
    "Brennan",
    "Takahashi",
    "Mendoza",
    "Hargreaves",
    "Petrov",
    "Nguyen",
    "Adeyemi",
    "Thornbury",
]
STREETS = [
    "Maple",
    "Oak Ridge",
    "Willow Creek",
    "Harbor View",
    "Lincoln",
    "Chestnut",
    "Juniper",
    "Kingsley",
    "Sycamore",
    "Brookfield",
]
SUFFIX = [
    "Street",
    "St",
    "Avenue",
    "Ave",
    "Road",
    "Rd",
    "Lane",
    "Drive",
    "Dr",
    "Boulevard",
    "Court",
    "Way",
]
CITIES = [
    ("Springfield", "IL", "627"),
    ("Austin", "TX", "787"),
    ("Portland", "OR", "972"),
    ("Columbus", "OH", "432"),
    ("Raleigh", "NC", "276"),
    ("Tucson", "AZ", "857"),
    ("Madison", "WI", "537"),
]
MONTHS = [
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


def first(rng: random.Random) -> str:
    return rng.choice(FIRST)


def full_name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def name_lf(rng: random.Random) -> str:
    return f"{rng.choice(LAST).upper()}, {rng.choice(FIRST).upper()}"


def hl7_name(rng: random.Random) -> str:
    return f"{rng.choice(LAST).upper().replace(' ', '')}^{rng.choice(FIRST).upper()}"


def email(rng: random.Random) -> str:
    user = rng.choice(
        [
            f"{rng.choice(FIRST).lower()}.{rng.choice(LAST).lower().replace(' ', '')}",
            f"{rng.choice(FIRST).lower()}{rng.randint(1, 99)}",
            f"{rng.choice(FIRST)[0].lower()}{rng.choice(LAST).lower().replace(' ', '')}",
        ]
    )
    dom = rng.choice(
        [
            "gmail.com",
            "outlook.com",
            "yahoo.co.uk",
            "proton.me",
            "fastmail.fm",
            "web.de",
            "acme-logistics.com",
            "uni-heidelberg.de",
            "hotmail.fr",
        ]
    )
    return f"{user}@{dom}"


def ssn(rng: random.Random) -> str:
    while True:
        a = rng.randint(1, 899)
        if a != 666:
            break
    return f"{a:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def _luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    digits = prefix + _s(rng, DIG, length - len(prefix) - 1)
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return digits + str((10 - total % 10) % 10)


def luhn_ok(num: str) -> bool:
    ds = [int(c) for c in num if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(ds)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def card(rng: random.Random) -> str:
    kind = rng.choice(["visa", "mc", "amex", "disc"])
    if kind == "amex":
        n = _luhn_complete(rng.choice(["34", "37"]), 15, rng)
        groups = [n[:4], n[4:10], n[10:]]
    else:
        prefix = {"visa": "4", "mc": str(rng.randint(51, 55)), "disc": "6011"}[kind]
        n = _luhn_complete(prefix, 16, rng)
        groups = [n[i : i + 4] for i in range(0, 16, 4)]
    sep = rng.choice(["", " ", "-"])
    return sep.join(groups)


def _iban(country: str, bban: str) -> str:
    rearr = bban + country + "00"
    num = "".join(str(int(c, 36)) for c in rearr)
    check = 98 - int(num) % 97
    return f"{country}{check:02d}{bban}"


def iban_ok(v: str) -> bool:
    v = v.replace(" ", "")
    num = "".join(str(int(c, 36)) for c in v[4:] + v[:4])
    return int(num) % 97 == 1


def iban(rng: random.Random) -> str:
    c = rng.choice(["DE", "GB", "AT", "CH", "BE_"])
    if c == "DE":
        v = _iban("DE", _s(rng, DIG, 18))
    elif c == "GB":
        v = _iban("GB", rng.choice(["NWBK", "BARC", "LOYD", "MIDL"]) + _s(rng, DIG, 14))
    elif c == "AT":
        v = _iban("AT", _s(rng, DIG, 16))
    elif c == "CH":
        v = _iban("CH", _s(rng, DIG, 17))
    else:
        acct = rng.randint(10**9, 10**10 - 1)
        chk = acct % 97 or 97
        v = _iban("BE", f"{acct:010d}{chk:02d}")
    if rng.random() < 0.5:
        v = " ".join(v[i : i + 4] for i in range(0, len(v), 4))
    return v


_PHONE_REGIONS = [
    "US",
    "US",
    "US",
    "GB",
    "DE",
    "FR",
    "IN",
    "AU",
    "BR",
    "CA",
    "NL",
    "ES",
    "MX",
    "JP",
]


def phone(rng: random.Random) -> str:
    region = rng.choice(_PHONE_REGIONS)
    ex = phonenumbers.example_number_for_type(
        region,
        rng.choice([phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]),
    )
    assert ex is not None
    nat = str(ex.national_number)
    for _ in range(200):
        if region in ("US", "CA"):
            cand = (
                str(rng.randint(2, 9)) + _s(rng, DIG, 2) + str(rng.randint(2, 9)) + _s(rng, DIG, 6)
            )
            if cand[3:6] == "555":
                continue
        else:
            keep = max(2, len(nat) - 6)
            cand = nat[:keep] + _s(rng, DIG, len(nat) - keep)
        num = phonenumbers.parse(cand, region)
        if phonenumbers.is_valid_number(num):
            break
    fmt = rng.choice(
        [
            phonenumbers.PhoneNumberFormat.E164,
            phonenumbers.PhoneNumberFormat.INTERNATIONAL,
            phonenumbers.PhoneNumberFormat.NATIONAL,
        ]
    )
    if region not in ("US", "CA") and fmt == phonenumbers.PhoneNumberFormat.NATIONAL:
        fmt = phonenumbers.PhoneNumberFormat.INTERNATIONAL
    out = phonenumbers.format_number(num, fmt)
    if region == "US" and fmt == phonenumbers.PhoneNumberFormat.NATIONAL and rng.random() < 0.5:
        d = str(num.national_number)
        out = rng.choice([f"{d[:3]}-{d[3:6]}-{d[6:]}", f"{d[:3]}.{d[3:6]}.{d[6:]}"])
    return out


def phone_ok(v: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(v, "US"))
    except phonenumbers.NumberParseException:
        return False


def ipv4(rng: random.Random) -> str:
    return f"{rng.choice([23, 34, 45, 52, 64, 78, 81, 93, 104, 142, 151, 176, 185, 212])}.{rng.randint(1, 254)}.{rng.randint(1, 254)}.{rng.randint(1, 254)}"


def ipv6(rng: random.Random) -> str:
    pre = rng.choice(["2a01:4f8", "2600:1f18", "2a02:6b8", "2406:da00", "2804:14c"])
    return pre + ":" + ":".join(f"{rng.randint(1, 0xFFFF):x}" for _ in range(6))


def address(rng: random.Random) -> str:
    city, st, z = rng.choice(CITIES)
    unit = rng.choice(
        ["", f", Apt {rng.randint(1, 40)}{rng.choice('ABC')}", f" Unit {rng.randint(100, 999)}"]
    )
    return f"{rng.randint(12, 9899)} {rng.choice(STREETS)} {rng.choice(SUFFIX)}{unit}, {city}, {st} {z}{rng.randint(10, 99)}"


def date_any(rng: random.Random) -> str:
    y, m, d = rng.randint(1938, 2006), rng.randint(1, 12), rng.randint(1, 28)
    return rng.choice(
        [
            f"{m:02d}/{d:02d}/{y}",
            f"{y}-{m:02d}-{d:02d}",
            f"{d} {MONTHS[m - 1]} {y}",
            f"{MONTHS[m - 1]} {d}, {y}",
            f"{d:02d}.{m:02d}.{y}",
        ]
    )


def date_hl7(rng: random.Random) -> str:
    return f"{rng.randint(1938, 2006)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"


def date_iso(rng: random.Random) -> str:
    return f"{rng.randint(1938, 2006)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def mrn(rng: random.Random) -> str:
    return rng.choice(
        [
            _s(rng, DIG, 8),
            "MRN" + _s(rng, DIG, 7),
            _s(rng, UP, 1) + _s(rng, DIG, 7),
            _s(rng, DIG, 3) + "-" + _s(rng, DIG, 2) + "-" + _s(rng, DIG, 3),
        ]
    )


# name -> (category, kind, generator)
GENS: dict[str, tuple[str, str, Gen]] = {
    "akid": ("secret", "aws_access_key_id", aws_akid),
    "awssk": ("secret", "aws_secret_key", aws_secret),
    "ghp": ("secret", "github_token", gh_classic),
    "ghfine": ("secret", "github_fine_grained", gh_fine),
    "glpat": ("secret", "gitlab_token", gitlab),
    "xox": ("secret", "slack_token", slack_token),
    "slackhook": ("secret", "slack_webhook", slack_hook),
    "stripe": ("secret", "stripe_key", stripe_key),
    "whsec": ("secret", "stripe_webhook_secret", stripe_whsec),
    "openai": ("secret", "openai_key", openai_key),
    "anthropic": ("secret", "anthropic_key", anthropic_key),
    "gkey": ("secret", "google_api_key", google_key),
    "twsk": ("secret", "twilio_key", twilio_sk),
    "hex32": ("secret", "keyword_hex_token", hex32),
    "sg": ("secret", "sendgrid_key", sendgrid),
    "npm": ("secret", "npm_token", npm_tok),
    "pypi": ("secret", "pypi_token", pypi_tok),
    "hf": ("secret", "huggingface_token", hf_tok),
    "discord": ("secret", "discord_token", discord_tok),
    "telegram": ("secret", "telegram_token", telegram_tok),
    "jwt": ("secret", "jwt", jwt),
    "pem": ("secret", "private_key", pem_key),
    "openssh": ("secret", "openssh_key", openssh_key),
    "pgp": ("secret", "pgp_key", pgp_key),
    "pw": ("secret", "password", password),
    "upw": ("secret", "password", url_password),
    "rsec": ("secret", "keyword_secret", random_secret),
    "azkey": ("secret", "azure_storage_key", azure_key),
    "basic": ("secret", "basic_auth", basic_auth),
    "gcppk": ("secret", "gcp_private_key", gcp_private),
    "email": ("pii", "email", email),
    "phone": ("pii", "phone", phone),
    "ssn": ("pii", "ssn", ssn),
    "card": ("pii", "card", card),
    "iban": ("pii", "iban", iban),
    "ip4": ("pii", "ipv4", ipv4),
    "ip6": ("pii", "ipv6", ipv6),
    "addr": ("pii", "address", address),
    "dob": ("pii", "dob", date_any),
    "dobiso": ("pii", "dob", date_iso),
    "pname": ("phi", "patient_name", full_name),
    "pnamelf": ("phi", "patient_name", name_lf),
    "pnamehl7": ("phi", "patient_name", hl7_name),
    "cdob": ("phi", "dob", date_any),
    "cdobiso": ("phi", "dob", date_iso),
    "cdobhl7": ("phi", "dob", date_hl7),
    "mrn": ("phi", "mrn", mrn),
    # not planted: filler people and values that sit beside planted ones
    "_first": ("", "", first),
    "_name": ("", "", full_name),
    "_uuid": ("", "", lambda r: str(uuid.UUID(int=r.getrandbits(128), version=4))),
    "_sha1": ("", "", lambda r: _s(r, HEX, 40)),
    "_sha256": ("", "", lambda r: _s(r, HEX, 64)),
    "_n": ("", "", lambda r: str(r.randint(2, 9999))),
}

_MARK = re.compile(r"«(\w+?)(?:#(\d))?»")


def render(name: str, template: str, rng: random.Random) -> Packet:
    """Fill «gen» markers (``«gen#k»`` reuses one value) and record planted spans."""
    out: list[str] = []
    planted: list[tuple[int, int, str, str]] = []
    memo: dict[tuple[str, str], str] = {}
    pos = 0
    length = 0
    for m in _MARK.finditer(template):
        lit = template[pos : m.start()]
        out.append(lit)
        length += len(lit)
        gname, k = m.group(1), m.group(2)
        cat, kind, fn = GENS[gname]
        key = (gname, k or "")
        if k and key in memo:
            val = memo[key]
        else:
            val = fn(rng)
            if k:
                memo[key] = val
        if cat:
            planted.append((length, length + len(val), cat, kind))
        out.append(val)
        length += len(val)
        pos = m.end()
    out.append(template[pos:])
    return Packet(name, "".join(out), tuple(planted))


# ---------------------------------------------------------------- dirty containers

DIRTY: dict[str, list[str]] = {
    "github_issue_log": [
        "### Bug: deploy fails after upgrading boto3\n\n**Steps**\n1. run `make deploy`\n\n**Logs**\n```\n2024-05-02 10:11:02 DEBUG botocore.credentials Found credentials in environment variables.\n2024-05-02 10:11:02 DEBUG using access key «akid» secret «awssk»\nbotocore.exceptions.ClientError: An error occurred (AccessDenied)\n```\n\nAny idea? cc @devops",
        "**Describe the bug**\nWebhook never fires. My config:\n\n```js\nconst stripe = require('stripe')('«stripe»');\nconst endpointSecret = \"«whsec»\";\n```\n\n**Expected behavior** event received.\n",
        'Repro output (sorry for the noise):\n\n```\n$ curl -H \'Authorization: token «ghp»\' https://api.github.com/user\n{"message": "Bad credentials"}\n```\nversion: 2.3.1',
    ],
    "stackoverflow": [
        "Title: psycopg2 OperationalError: password authentication failed\n\nI'm connecting like this:\n\n    engine = create_engine('postgresql+psycopg2://app_user:«upw»@db.internal.mycorp.net:5432/orders')\n\nbut it says auth failed. What am I doing wrong? Thanks in advance!",
        'Q: Why does my OpenAI call return 401?\n\n```python\nimport openai\nclient = openai.OpenAI(api_key="«openai»")\nprint(client.models.list())\n```\nEDIT: regenerated the key, same thing.',
        "How do I send mail with SendGrid from Flask? here's my code\n\n    sg = SendGridAPIClient('«sg»')\n    msg = Mail(from_email='noreply@shop.test', to_emails='«email»')\n\ngetting 403 forbidden",
    ],
    "code_review": [
        '> +    HF_TOKEN = "«hf»"\n\n**reviewer**: please don\'t hardcode this, move it to the secrets manager.\n\n> +    model = AutoModel.from_pretrained(name, token=HF_TOKEN)\n',
        "nit on line 42: `api_key: '«gkey»'` — is this the prod Maps key? We should restrict it by referrer.",
        "```diff\n-DATABASE_PASSWORD=\n+DATABASE_PASSWORD=«pw»\n```\n@«_first» this leaks the password into the repo, can you revert?",
    ],
    "dockerfile": [
        'FROM python:3.12-slim\nARG PIP_INDEX_TOKEN=«pypi»\nENV DJANGO_SECRET_KEY=«rsec»\nENV DJANGO_SETTINGS_MODULE=app.settings.prod\nRUN pip install -r requirements.txt\nCMD ["gunicorn", "app.wsgi"]\n',
        'FROM node:20-alpine\nWORKDIR /app\nENV NPM_TOKEN=«npm»\nRUN echo "//registry.npmjs.org/:_authToken=${NPM_TOKEN}" > .npmrc && npm ci\nENV SENTRY_DSN=https://«hex32»@o123456.ingest.sentry.io/4504\n',
    ],
    "makefile": [
        "DEPLOY_HOST ?= «ip4»\nAPI_TOKEN := «glpat»\n\ndeploy:\n\tcurl --header \"PRIVATE-TOKEN: $(API_TOKEN)\" https://gitlab.com/api/v4/projects\n\tssh deploy@$(DEPLOY_HOST) 'systemctl restart app'\n",
        "export SLACK_BOT_TOKEN = «xox»\n\nnotify:\n\t@python scripts/notify.py --channel ops\n",
    ],
    "package_json": [
        '{\n  "name": "billing-ui",\n  "scripts": {\n    "deploy": "STRIPE_SECRET_KEY=«stripe» node scripts/deploy.js",\n    "test": "jest"\n  }\n}\n',
        '{\n  "scripts": {\n    "release": "NPM_TOKEN=«npm» npm publish --access public"\n  },\n  "author": "«_name» <«email»>"\n}\n',
    ],
    "npmrc_yarnrc": [
        "registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken=«npm»\nalways-auth=true\n",
        'npmRegistryServer: "https://npm.pkg.github.com"\nnpmScopes:\n  acme:\n    npmAuthToken: "«ghp»"\n    npmAlwaysAuth: true\n',
    ],
    "gradle_properties": [
        "org.gradle.jvmargs=-Xmx2g\nsigning.keyId=24875D73\nsigning.password=«pw»\nossrhUsername=acme-release\nossrhPassword=«pw»\n",
        "systemProp.http.proxyHost=proxy.corp\nartifactory_user=ci\nartifactory_password=«rsec»\n",
    ],
    "maven_settings": [
        "<settings>\n  <servers>\n    <server>\n      <id>nexus-releases</id>\n      <username>deployer</username>\n      <password>«upw»</password>\n    </server>\n  </servers>\n</settings>\n",
        "<server>\n  <id>github</id>\n  <username>ci-bot</username>\n  <password>«ghfine»</password>\n</server>\n",
    ],
    "cargo_config": [
        '[registries.my-registry]\nindex = "sparse+https://cargo.acme.dev/index/"\ntoken = "«rsec»"\n',
        '[registry]\ntoken = "«rsec»"\n[net]\ngit-fetch-with-cli = true\n',
    ],
    "go_env": [
        "$ go env | grep -i proxy\nGOPROXY=https://ci:«upw»@goproxy.acme.io,direct\nGONOSUMDB=*.acme.io\nGOPRIVATE=github.com/acme/*\n",
        'export GITHUB_TOKEN=«ghp»\ngit config --global url."https://${GITHUB_TOKEN}@github.com/".insteadOf "https://github.com/"\ngo mod download\n',
    ],
    "powershell": [
        '$env:AZURE_STORAGE_CONNECTION_STRING = "DefaultEndpointsProtocol=https;AccountName=acmeprod;AccountKey=«azkey»;EndpointSuffix=core.windows.net"\naz storage blob list --container-name logs\n',
        '$env:ANTHROPIC_API_KEY = "«anthropic»"\n$headers = @{ "x-api-key" = $env:ANTHROPIC_API_KEY }\nInvoke-RestMethod -Uri https://api.anthropic.com/v1/messages -Headers $headers\n',
        "PS C:\\repo> $Password = ConvertTo-SecureString '«pw»' -AsPlainText -Force\nPS C:\\repo> New-LocalUser -Name svc_backup -Password $Password\n",
    ],
    "windows_bat": [
        "@echo off\nset OPENAI_API_KEY=«openai»\nset DB_PASSWORD=«pw»\npython run_batch.py %*\n",
        "REM build script\nSET TWILIO_AUTH_TOKEN=«hex32»\nSET TWILIO_API_KEY=«twsk»\ncall mvn package\n",
    ],
    "ansible_vars": [
        '---\nmysql_root_password: «pw»\napp_db_user: shop\napp_db_password: "«pw»"\nnginx_server_name: shop.acme.io\n',
        "all:\n  vars:\n    ansible_user: deploy\n    ansible_become_pass: '«pw»'\n  hosts:\n    web1:\n      ansible_host: «ip4»\n",
    ],
    "chef_puppet": [
        "default['app']['db']['password'] = '«pw»'\ndefault['app']['smtp']['api_key'] = '«sg»'\n",
        "class profile::db {\n  postgresql::server::db { 'inventory':\n    user     => 'inventory',\n    password => postgresql::postgresql_password('inventory', '«pw»'),\n  }\n}\n",
    ],
    "nomad_consul": [
        'job "api" {\n  group "web" {\n    task "server" {\n      env {\n        REDIS_URL = "redis://:«upw»@redis.service.consul:6379/0"\n        SECRET_KEY = "«rsec»"\n      }\n    }\n  }\n}\n',
        'acl {\n  enabled = true\n  tokens {\n    initial_management = "«_uuid»"\n    agent = "«_uuid»"\n  }\n}\nencrypt = "«rsec»"\n',
    ],
    "nginx_apache": [
        'server {\n  listen 443 ssl;\n  location /api/ {\n    proxy_pass http://backend;\n    proxy_set_header Authorization "Bearer «jwt»";\n    proxy_set_header X-Api-Key «rsec»;\n  }\n}\n',
        '<VirtualHost *:443>\n  ServerName portal.acme.io\n  RequestHeader set X-API-Key "«rsec»"\n  ProxyPass / http://10.0.3.4:8080/\n</VirtualHost>\n',
    ],
    "alertmanager": [
        "global:\n  slack_api_url: '«slackhook»'\n  smtp_smarthost: 'smtp.sendgrid.net:587'\n  smtp_auth_username: apikey\n  smtp_auth_password: '«sg»'\nroute:\n  receiver: ops\n",
        "receivers:\n- name: pager\n  pagerduty_configs:\n  - routing_key: «hex32»\n- name: tg\n  telegram_configs:\n  - bot_token: «telegram»\n    chat_id: -100123456\n",
    ],
    "grafana_provisioning": [
        "apiVersion: 1\ndatasources:\n  - name: Postgres\n    type: postgres\n    url: db.acme.io:5432\n    user: grafana\n    secureJsonData:\n      password: «pw»\n",
        "[security]\nadmin_user = admin\nadmin_password = «pw»\nsecret_key = «rsec»\n[smtp]\nenabled = true\n",
    ],
    "airflow_conn": [
        "$ airflow connections add 'warehouse' --conn-uri 'postgres://etl:«upw»@warehouse.acme.io:5432/analytics'\nSuccessfully added `conn_id`=warehouse\n",
        "AIRFLOW_CONN_S3_LOGS='aws://«akid»:«awssk»@/?region_name=us-east-1'\nAIRFLOW__CORE__FERNET_KEY=«rsec»\n",
    ],
    "dbt_snowflake": [
        "jaffle_shop:\n  target: dev\n  outputs:\n    dev:\n      type: snowflake\n      account: xy12345.eu-west-1\n      user: DBT_USER\n      password: «pw»\n      role: TRANSFORMER\n",
        'bq:\n  outputs:\n    prod:\n      type: bigquery\n      method: service-account-json\n      keyfile_json:\n        type: service_account\n        project_id: acme-analytics\n        private_key: "«gcppk»"\n        client_email: dbt@acme-analytics.iam.gserviceaccount.com\n',
    ],
    "gcp_sa_json": [
        '{\n  "type": "service_account",\n  "project_id": "acme-prod-3321",\n  "private_key_id": "«_sha1»",\n  "private_key": "«gcppk»",\n  "client_email": "ci-runner@acme-prod-3321.iam.gserviceaccount.com"\n}\n',
    ],
    "jupyter_output": [
        'In [3]: os.environ["HUGGINGFACEHUB_API_TOKEN"] = "«hf»"\n\nIn [4]: df.head()\nOut[4]:\n   id        name                   email\n0   1  «_name»  «email»\n1   2  «_name»  «email»\n',
        '{\n "cells": [{"cell_type": "code", "source": ["client = Client(api_key=\\"«anthropic»\\")\\n"], "outputs": []}]\n}\n',
    ],
    "r_matlab": [
        'Sys.setenv(OPENAI_API_KEY = "«openai»")\ncon <- dbConnect(RPostgres::Postgres(), host = "db.acme.io", user = "analyst", password = "«pw»")\n',
        "% MATLAB\nconn = database('clinic','analyst','«pw»');\nopts = weboptions('HeaderFields',{'Authorization' ['Bearer ' '«ghp»']});\n",
    ],
    "sql_dump": [
        "INSERT INTO `users` (`id`, `full_name`, `email`, `phone`, `ssn`) VALUES\n(101, '«_name»', '«email»', '«phone»', '«ssn»'),\n(102, '«_name»', '«email»', '«phone»', '«ssn»');\n",
        "COPY public.customers (id, name, email, card_number, billing_address) FROM stdin;\n7\t«_name»\t«email»\t«card»\t«addr»\n\\.\n",
    ],
    "crm_csv": [
        'Contact ID,First Name,Last Name,Email,Mobile,Mailing Street,Birthdate\n003A1,«_first»,Smith,«email»,«phone»,"«addr»",«dobiso»\n003A2,«_first»,Jones,«email»,«phone»,"«addr»",«dobiso»\n',
        "lead_id;email;phone;ip_address\n5512;«email»;«phone»;«ip4»\n5513;«email»;«phone»;«ip6»\n",
    ],
    "invoice_pdf_text": [
        "INVOICE #2024-0193\nBill to: «_name»\n«addr»\nPhone: «phone»\n\nPayment: bank transfer to IBAN «iban»\nCard on file: «card»\nTotal due: $1,240.00\n",
        "Rechnung Nr. 88312\nKunde: «_name»\nE-Mail: «email»\nBankverbindung IBAN: «iban»\nBitte überweisen Sie den Betrag innerhalb von 14 Tagen.\n",
    ],
    "bank_statement": [
        "ACCOUNT STATEMENT  Period 01/04/2024 - 30/04/2024\nAccount holder: «_name»\nIBAN: «iban»\n\n03/04  SEPA transfer to «_name» «iban»      -250.00\n12/04  CARD PURCHASE «card»                 -42.90\n",
    ],
    "kyc_form": [
        "KYC verification\nFull legal name: «_name»\nDate of birth: «dob»\nSSN: «ssn»\nResidential address: «addr»\nEmail: «email»\nPhone: «phone»\n",
        "customer_onboarding = {\n  'name': '«_name»', 'dob': '«dobiso»', 'tax_id': '«ssn»', 'iban': '«iban»'\n}\n",
    ],
    "visa_application": [
        "VISA APPLICATION FORM\nSurname / Given names: «_name»\nDate of Birth: «dob»\nHome address: «addr»\nTelephone: «phone»\nE-mail: «email»\n",
    ],
    "school_record": [
        "Student: «_name»   Grade 7\nDOB: «dob»\nGuardian contact: «phone» / «email»\nHome: «addr»\n",
    ],
    "tenant_application": [
        "Rental application\nApplicant: «_name»\nSSN: «ssn»\nBorn: «dob»\nCurrent address: «addr»\nMonthly income: $5,400\nReference phone: «phone»\n",
    ],
    "server_log_ip": [
        '«ip4» - - [12/Mar/2024:10:02:11 +0000] "POST /login HTTP/1.1" 401 23 "-" "Mozilla/5.0"\n«ip6» - - [12/Mar/2024:10:02:13 +0000] "GET /api/me HTTP/1.1" 200 512\n',
        'level=warn msg="rate limited" client_ip=«ip4» user=«email» path=/v1/orders\n',
    ],
    "chat_text": [
        "hey can you help? my slack token is «xox» and it stopped working after I reinstalled the app",
        "here's the discord bot token, don't share: «discord»\nand the telegram one «telegram»",
        "my password for the staging db is «pw» if you need it for testing",
    ],
    "http_headers": [
        "> GET /v2/invoices HTTP/2\n> Host: api.acme.io\n> Authorization: Bearer «jwt»\n> User-Agent: curl/8.4.0\n",
        "POST /graphql HTTP/1.1\nHost: internal.acme.io\nAuthorization: Basic «basic»\nX-API-Key: «rsec»\n",
    ],
    "ssh_keys": [
        "cat ~/.ssh/id_ed25519\n«openssh»\n",
        "tls:\n  key: |\n«pem»\n",
        "Here's my exported key for the signing job:\n«pgp»\n",
    ],
    "k8s_secret_tf": [
        'apiVersion: v1\nkind: Secret\nmetadata:\n  name: api\nstringData:\n  STRIPE_KEY: "«stripe»"\n  DB_PASSWORD: "«pw»"\n',
        'resource "aws_db_instance" "main" {\n  engine   = "postgres"\n  username = "admin"\n  password = "«pw»"\n}\nprovider "github" {\n  token = "«ghfine»"\n}\n',
    ],
    "python_settings": [
        'SECRET_KEY = "«rsec»"\nEMAIL_HOST_PASSWORD = "«pw»"\nAWS_ACCESS_KEY_ID = "«akid»"\nAWS_SECRET_ACCESS_KEY = "«awssk»"\n',
        "client = WebClient(token='«xox»')\nhook = '«slackhook»'\n",
    ],
    "spring_properties": [
        "spring.datasource.url=jdbc:postgresql://db.acme.io:5432/shop\nspring.datasource.username=shop\nspring.datasource.password=«pw»\nspring.mail.password=«sg»\n",
        "jdbc:sqlserver://sql.acme.io:1433;databaseName=crm;user=crm_app;password=«pw»;encrypt=true\n",
    ],
    "appsettings_json": [
        '{\n  "ConnectionStrings": {\n    "Default": "Server=tcp:acme.database.windows.net,1433;Database=orders;User ID=orders_app;Password=«pw»;Encrypt=True;"\n  },\n  "Stripe": { "SecretKey": "«stripe»" }\n}\n',
    ],
    "php_wp_config": [
        "<?php\ndefine( 'DB_NAME', 'wordpress' );\ndefine( 'DB_USER', 'wp' );\ndefine( 'DB_PASSWORD', '«pw»' );\ndefine( 'AUTH_KEY', '«rsec»' );\n",
        "APP_KEY=base64:«azkey»\nDB_PASSWORD=«pw»\nMAIL_PASSWORD=«pw»\n",
    ],
    "cli_history": [
        "$ mysql -h db.acme.io -u root -p'«pw»' shop\n$ redis-cli -h cache.acme.io -a «upw» ping\nPONG\n",
        "curl -u admin:«upw» https://jenkins.acme.io/api/json\ngit remote set-url origin https://oauth2:«glpat»@gitlab.com/acme/app.git\n",
        "$ docker login -u ci -p «upw» registry.acme.io\nWARNING! Using --password via the CLI is insecure.\nLogin Succeeded\n",
    ],
    "netrc_pgpass": [
        "machine api.heroku.com\n  login ops@acme.io\n  password «hex32»\n",
        "db.acme.io:5432:orders:orders_app:«pw»\n",
    ],
    "kubeconfig": [
        "apiVersion: v1\nkind: Config\nusers:\n- name: ci\n  user:\n    token: «jwt»\nclusters:\n- cluster:\n    server: https://«ip4»:6443\n",
    ],
    "docker_compose": [
        "services:\n  db:\n    image: postgres:16\n    environment:\n      POSTGRES_PASSWORD: «pw»\n  api:\n    environment:\n      - OPENAI_API_KEY=«openai»\n      - HF_TOKEN=«hf»\n",
    ],
    "email_signature_thread": [
        "Thanks,\n«_name»\nSenior Accountant | Acme Logistics\nM: «phone»\n«email»\n\n-----Original Message-----\nFrom: «_name» <«email»>\n",
        "Hi team, please reimburse to my account IBAN «iban» (BIC DEUTDEFFXXX). My mobile is «phone» if anything is unclear.\n",
    ],
    "whatsapp_export": [
        "12/03/2024, 19:02 - «_name»: my new number is «phone»\n12/03/2024, 19:03 - «_name»: send the deposit to «iban»\n",
    ],
    "hr_export": [
        "employee_id\tname\tssn\tdate_of_birth\thome_address\n1042\t«_name»\t«ssn»\t«dobiso»\t«addr»\n",
        "Employee: «_name», SSN «ssn», born «dob», direct deposit IBAN «iban»\n",
    ],
    "intl_pii_prose": [
        "Hallo, meine Adresse ist jetzt «_name», Tel. «phone», E-Mail «email». Geburtsdatum: «dob».\n",
        "Please ship to «_name», «addr». If nobody answers ring «phone».\n",
        "I was born on «dob» and my social is «ssn» — the form keeps rejecting it\n",
    ],
    "url_query_secrets": [
        "GET https://api.acme.io/v1/export?access_token=«rsec»&format=csv 200 OK\nGET https://maps.googleapis.com/maps/api/geocode/json?address=Berlin&key=«gkey»\n",
        "git clone https://x-access-token:«ghp»@github.com/acme/infra.git\nCloning into 'infra'...\n",
        "unsubscribe link: https://mail.acme.io/u?email=«email»&sig=ok\n",
    ],
    "json_escaped_logs": [
        '{"level":"error","msg":"request failed","req":"{\\"headers\\":{\\"Authorization\\":\\"Bearer «openai»\\"}}","ts":1709812345}\n',
        '{"event":"signup","payload":"{\\"email\\":\\"«email»\\",\\"phone\\":\\"«phone»\\"}"}\n',
    ],
    "tfvars_env_export": [
        'db_password      = "«pw»"\nslack_webhook_url = "«slackhook»"\ndatadog_api_key  = "«hex32»"\n',
        "export STRIPE_WEBHOOK_SECRET='«whsec»'\nexport HUGGING_FACE_HUB_TOKEN=\"«hf»\"\nexport TF_VAR_db_password=«upw»\n",
    ],
    "git_trailers_pii": [
        "commit «_sha1»\nAuthor: «_name» <«email»>\n\n    fix: handle empty cart\n\n    Signed-off-by: «_name» <«email»>\n",
    ],
    "ipv6_firewall": [
        "ufw allow from «ip6» to any port 22\niptables -A INPUT -s «ip4»/32 -j DROP  # attacker from last night\n",
    ],
    "yaml_multiline_key": [
        "ssh:\n  deploy_key: |\n    «openssh»\n  known_hosts: github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n",
    ],
    # ---- clinical
    "radiology_report": [
        "RADIOLOGY REPORT\nPatient: «pnamelf»   MRN: «mrn»   DOB: «cdob»\nExam: CT abdomen/pelvis with contrast\nImpression: 3.2 cm enhancing renal mass, concerning for renal cell carcinoma.\n",
    ],
    "pharmacy_rx": [
        "Rx for «pname», DOB «cdob»\nOxycodone 5 mg tab, 1 PO q6h PRN pain, #20, no refills\nPrescriber: Dr. K. Alvarez, DEA on file\n",
    ],
    "referral_letter": [
        "Dear Dr. Shah,\n\nI am referring «pname» (DOB «cdob», MRN «mrn») for evaluation of suspected multiple sclerosis following two episodes of optic neuritis.\n\nKind regards,\nDr. Meyer\n",
    ],
    "ehr_api_json": [
        '{"patient": {"id": "«mrn»", "firstName": "«_first»", "fullName": "«pname»", "dateOfBirth": "«cdobiso»"}, "diagnoses": ["F20.9 schizophrenia"], "medications": ["clozapine 200 mg"]}\n',
    ],
    # ---- clinical (original)
    "discharge_instructions": [
        "DISCHARGE INSTRUCTIONS\nPatient: «pname»   MRN: «mrn»   DOB: «cdob»\nDiagnosis: community-acquired pneumonia\nTake amoxicillin 875 mg twice daily for 7 days. Follow up with Dr. Hale in 1 week.\n",
        "«pname» was discharged home today after treatment for CHF exacerbation. Continue furosemide 40 mg PO daily. Medical record number «mrn».\n",
    ],
    "lab_portal": [
        "MyChart - Test Results\nPatient Name: «pnamelf»\nDate of Birth: «cdob»\nMRN: «mrn»\n\nHemoglobin A1c   8.2 %   (H)   ref 4.0-5.6\nLDL cholesterol  162 mg/dL (H)\n",
        "Result for «pname» (DOB «cdob»): HIV-1/2 Ag/Ab screen REACTIVE; confirmatory testing ordered.\n",
    ],
    "telehealth_chat": [
        "[10:02] Dr. Ruiz: Hi «pname#1», how is the rash since starting methotrexate?\n[10:03] «pname#1»: still itchy, and I've had nausea most mornings\n[10:04] Dr. Ruiz: Let's lower the dose to 10 mg weekly.\n",
        "Nurse: Can you confirm your date of birth?\nPatient: it's «cdob»\nNurse: thanks «pname», I see your prescription for sertraline is ready.\n",
    ],
    "dental_chart": [
        "DENTAL CHART\nPatient: «pname»  Chart #: «mrn»\nDOB: «cdob»\nTooth #19: MOD composite, recurrent caries\nTooth #30: extraction recommended, periapical abscess\n",
    ],
    "mental_health_intake": [
        "Behavioral Health Intake\nClient: «pname»\nDOB: «cdob»\nPresenting problem: panic attacks, passive suicidal ideation, no plan. PHQ-9 score 17.\nCurrent meds: escitalopram 10 mg\n",
        "Intake note - «pname» (MRN «mrn») reports increased alcohol use since divorce; GAD-7 = 15. Referred to CBT.\n",
    ],
    "vaccination_record": [
        "IMMUNIZATION RECORD\nName: «pname»\nDate of birth: «cdob»\nCOVID-19 (Pfizer) lot FK5127  2021-04-12\nHepatitis B dose 2   2019-08-30\n",
    ],
    "eob_claim": [
        "EXPLANATION OF BENEFITS\nMember: «pname»    Member ID: «mrn»\nPatient DOB: «cdob»\nService: 99214 office visit, dx F32.1 major depressive disorder\nBilled $240.00  Allowed $132.50  You owe $25.00\n",
        "CLAIM 837P\nNM1*IL*1*«pnamehl7»****MI*«mrn»~\nDMG*D8*«cdobhl7»*F~\nHI*ABK:E119~\n",
    ],
    "clinical_trial_crf": [
        "CASE REPORT FORM - Study ACME-301\nSubject initials: XX   Subject name: «pname»\nDate of birth: «cdob»\nAdverse event: grade 3 neutropenia, related to study drug\nHospital record no.: «mrn»\n",
    ],
    "hl7_messages": [
        "MSH|^~\\&|LAB|GENHOSP|EHR|GENHOSP|20240311083000||ORU^R01|MSG00931|P|2.5.1\rPID|1||«mrn»^^^GENHOSP^MR||«pnamehl7»||«cdobhl7»|F|||«addr»\rOBX|1|NM|2345-7^Glucose^LN||212|mg/dL|70-99|H|||F\r",
        "MSH|^~\\&|CPOE|MERCY|RAD|MERCY|20240502101500||ORM^O01|88812|P|2.3\nPID|1||«mrn»^^^MERCY^MR||«pnamehl7»^J||«cdobhl7»|M\nORC|NW|555123\nOBR|1|555123||71046^CHEST XRAY 2 VIEWS|||||||||Suspected pneumonia\n",
    ],
    "fhir_resources": [
        '{\n  "resourceType": "Bundle",\n  "entry": [\n    {"resource": {"resourceType": "Patient", "identifier": [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": "«mrn»"}], "name": [{"text": "«pname»"}], "birthDate": "«cdobiso»"}},\n    {"resource": {"resourceType": "Condition", "code": {"text": "Type 2 diabetes mellitus"}, "subject": {"display": "«pname»"}}}\n  ]\n}\n',
        '{"resourceType": "AllergyIntolerance", "code": {"text": "Penicillin"}, "reaction": [{"manifestation": [{"text": "anaphylaxis"}]}], "patient": {"reference": "Patient/«_n»", "display": "«pname»"}}\n',
        '{"resourceType": "Immunization", "vaccineCode": {"text": "Influenza, seasonal"}, "patient": {"display": "«pname»"}, "occurrenceDateTime": "2023-10-04"}\n',
    ],
    "bed_board": [
        "Unit,Bed,Patient,MRN,Age,Dx,Attending\n4W,12A,«pnamelf»,«mrn»,67,NSTEMI,Dr. Cho\n4W,14B,«pnamelf»,«mrn»,81,Hip fracture,Dr. Lee\n",
    ],
    "clinical_note": [
        "SUBJECTIVE: «pname» is a 54 y/o male with hx of HTN and T2DM presenting with chest pain x2 days.\nOBJECTIVE: BP 162/94, troponin 0.04.\nPLAN: admit to telemetry, serial troponins.\n",
        "Progress note 03/14: Pt «pname», DOB «cdob», seen for follow-up of hepatitis C; viral load undetectable after 12 weeks sofosbuvir/velpatasvir.\n",
    ],
    "python_traceback_phi": [
        "Traceback (most recent call last):\n  File \"ehr/import.py\", line 88, in load\n    validate(record)\nValueError: invalid ICD-10 code 'Z99.x' for patient {'name': '«pname»', 'mrn': '«mrn»', 'dob': '«cdobiso»', 'dx': 'C50.911'}\n",
    ],
    "encoded_views": [
        "GET /callback?email=«email»&next=%2Fhome HTTP/1.1\nHost: app.acme.io\n",
        '{"log": "{\\"user\\": \\"admin\\", \\"password\\": \\"«pw»\\", \\"token\\": \\"«ghp»\\"}"}\n',
    ],
}


# ---------------------------------------------------------------- clean containers

CLEAN: dict[str, list[str]] = {
    "readme_env_placeholders": [
        "## Configuration\n\nCopy `.env.example` to `.env` and fill in:\n\n```\nOPENAI_API_KEY=<your-openai-key>\nSTRIPE_SECRET_KEY=sk_test_...\nDATABASE_URL=postgres://user:password@localhost:5432/app\n```\n",
        "Set `GITHUB_TOKEN` in your shell (`export GITHUB_TOKEN=...`) or pass `--token $GITHUB_TOKEN`. Never commit real tokens.\n",
    ],
    "env_references": [
        'import os\n\nAPI_KEY = os.environ["OPENAI_API_KEY"]\nDB_PASSWORD = os.getenv("DB_PASSWORD", "")\nSECRET = settings.SECRET_KEY\n',
        "password: ${DB_PASSWORD}\napi_key: ${{ secrets.API_KEY }}\ntoken: {{ .Values.token }}\nclient_secret: $(CLIENT_SECRET)\n",
        'export AWS_SECRET_ACCESS_KEY="$(vault kv get -field=secret aws/ci)"\nexport NPM_TOKEN="${NPM_TOKEN:?missing}"\n',
    ],
    "redacted_logs": [
        "2024-05-02 INFO auth ok user=admin password=**** token=[REDACTED]\n2024-05-02 INFO api_key=<redacted> secret=********\n",
        'config dump: {"db_password": "<hidden>", "api_key": "REDACTED", "aws_secret_access_key": "xxxxxxxxxxxxxxxx"}\n',
    ],
    "aws_docs_examples": [
        "aws configure\nAWS Access Key ID [None]: AKIAIOSFODNN7EXAMPLE\nAWS Secret Access Key [None]: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\nDefault region name [None]: us-west-2\n",
    ],
    "stripe_test_cards": [
        "Use test card 4242 4242 4242 4242 with any future expiry and CVC. For declines use 4000 0000 0000 0002. Amex test: 378282246310005.\n",
        "```js\nconst stripe = Stripe('pk_test_TYooMQauvdEDq54NiTphI7jx');\n// secret: sk_test_4eC39HqLyjWDarjtT1zdp7dc\n```\n",
    ],
    "public_keys_certs": [
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI«_sha1» deploy@ci\n",
        "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ\nRTESMBAGA1UEChMJQmFsdGltb3JlMRMwEQYDVQQLEwpDeWJlclRydXN0MSIwIAYD\n-----END CERTIFICATE-----\n-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE«_sha1»\n-----END PUBLIC KEY-----\n",
    ],
    "git_log_shas": [
        "commit «_sha1»\nMerge: «_sha1»\nAuthor: CI Bot <ci@example.com>\nDate:   Tue Mar 12 10:02:11 2024 +0000\n\n    chore: bump deps\n",
        "$ git rebase -i «_sha1»\npick 3f2a9c1 fix parser\npick a81be0d add tests\nSuccessfully rebased and updated refs/heads/main.\n",
    ],
    "lockfiles": [
        '"node_modules/lodash": {\n  "version": "4.17.21",\n  "resolved": "https://registry.npmjs.org/lodash/-/lodash-4.17.21.tgz",\n  "integrity": "sha512-v2kDEe57lecTulaDIuNTPy3Ry4gLGJ6Z1O3vE1krgXZNrsQ+LFTGHVxVjcXPs17LhbZVGedAJv8XZ1tvj5FvSg=="\n}\n',
        '[[package]]\nname = "requests"\nversion = "2.31.0"\nfiles = [\n    {file = "requests-2.31.0.tar.gz", hash = "sha256:«_sha256»"},\n]\n',
        'name = "serde"\nversion = "1.0.197"\nsource = "registry+https://github.com/rust-lang/crates.io-index"\nchecksum = "«_sha256»"\n',
    ],
    "docker_digests": [
        "FROM python:3.12-slim@sha256:«_sha256»\nARG APP_VERSION=1.4.2\nENV PYTHONUNBUFFERED=1\n",
        "$ docker pull nginx:1.25\nDigest: sha256:«_sha256»\nStatus: Downloaded newer image for nginx:1.25\n",
    ],
    "uuids_ids": [
        "request_id=«_uuid» trace_id=«_sha1» span=«_n» status=200 latency_ms=«_n»\n",
        "INSERT INTO jobs (id, tenant_id, state) VALUES ('«_uuid»', '«_uuid»', 'queued');\n",
    ],
    "private_ips_example_domains": [
        "upstream backend {\n  server 10.0.1.15:8080;\n  server 192.168.1.20:8080;\n  server 172.16.4.2:8080;\n}\nserver { server_name example.com www.example.org; listen 127.0.0.1:80; }\n",
        "Contact support@example.com or admin@test.example.org. The demo host is 203.0.113.42 and 2001:db8::1; loopback ::1.\n",
    ],
    "fictional_phones": [
        "For help call (555) 010-4477 or +1 202-555-0143. UK drama number: 020 7946 0958.\n",
    ],
    "data_uri_minified": [
        '<img src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==" alt="dot">\n',
        "!function(e,t){\"object\"==typeof exports?module.exports=t():e.lib=t()}(this,function(){var n=function(e){return e.replace(/[A-Za-z0-9_]{32}/g,'')};return{a:n,k:'abcdefghijklmnopqrstuvwxyz0123456789'}});\n",
    ],
    "math_logs": [
        "epoch 12/50 step 4400 loss=0.41823 val_loss=0.50211 lr=3.0e-4 grad_norm=1.2931 tokens/s=48213\nepoch 13/50 step 4800 loss=0.40119 val_loss=0.49877 lr=2.9e-4 grad_norm=1.1014 tokens/s=48501\n",
        "benchmark: n=1048576 mean=4.2139871 std=0.0038812 p50=4.2131 p95=4.2201 p99=4.2291 checksum=3735928559\n",
        "matrix([[ 0.24331, -1.9981 ,  3.14159],\n        [ 2.71828,  1.41421, -0.57721]])\nprimes: 2 3 5 7 11 13 17 19 23 29 31 37 41 43 47 53 59 61 67 71\n",
    ],
    "medical_software_source": [
        'def parse_pid(segment: str) -> Patient:\n    """Split an HL7 PID segment into a Patient; field 5 is the name, 7 the birth date."""\n    fields = segment.split("|")\n    family, given = fields[5].split("^")[:2]\n    return Patient(family=family, given=given, birth_date=parse_ts(fields[7]))\n',
        "class Observation(BaseModel):\n    code: str  # LOINC, e.g. 2345-7 glucose\n    value: float\n    unit: str = 'mg/dL'\n    patient_id: str\n\nICD10_DIABETES = {'E11.9', 'E11.65', 'E10.9'}\n",
    ],
    "medical_docs": [
        "## Discharge summary generator\n\nThe generator takes an encounter and renders sections: Diagnosis, Medications, Follow-up. The patient's name and MRN are pulled from the Patient resource; never log them.\n",
        "Clinical decision support rule: if HbA1c > 9% and no metformin on the active med list, suggest metformin 500 mg BID unless eGFR < 30.\n",
    ],
    "fixture_fake_data": [
        "# fixtures/patients.yaml - synthetic data\n- name: Jane Doe\n  mrn: TEST-0001\n  dob: 1900-01-01\n- name: John Doe\n  mrn: TEST-0002\n  dob: 1970-01-01\n",
        'const users = [\n  { name: "Alice Example", email: "alice@example.com", phone: "555-0100" },\n  { name: "Bob Example", email: "bob@example.net", phone: "555-0101" },\n];\n',
    ],
    "ci_yaml": [
        "jobs:\n  test:\n    runs-on: ubuntu-latest\n    env:\n      DATABASE_URL: postgres://postgres:postgres@localhost:5432/test\n      OPENAI_API_KEY: ${{ secrets.OPENAI_API_KEY }}\n    steps:\n      - uses: actions/checkout@«_sha1»\n",
    ],
    "python_traceback": [
        'Traceback (most recent call last):\n  File "/app/server.py", line 142, in handle\n    resp = session.get(url, timeout=5)\n  File "/usr/lib/python3.12/site-packages/requests/sessions.py", line 602, in get\nrequests.exceptions.ConnectTimeout: HTTPSConnectionPool(host=\'api.internal\', port=443)\n',
    ],
    "go_test_output": [
        "=== RUN   TestParseToken\n--- PASS: TestParseToken (0.00s)\n=== RUN   TestHash\n    hash_test.go:31: got 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n--- PASS: TestHash (0.01s)\nok  \tgithub.com/acme/auth\t0.412s\n",
    ],
    "sql_schema": [
        "CREATE TABLE patients (\n  id UUID PRIMARY KEY,\n  mrn VARCHAR(20) UNIQUE NOT NULL,\n  given_name TEXT,\n  family_name TEXT,\n  birth_date DATE,\n  ssn_hash BYTEA\n);\nCREATE INDEX idx_patients_mrn ON patients(mrn);\n",
    ],
    "password_policy_code": [
        "def validate_password(pw: str) -> bool:\n    if len(pw) < 12:\n        raise ValueError('password must be at least 12 characters')\n    return any(c.isdigit() for c in pw)\n\nPASSWORD_MIN_LENGTH = 12\nTOKEN_TTL_SECONDS = 3600\n",
        "## Security\nRotate the `client_secret` every 90 days. The `token` field is a short-lived JWT issued by `/oauth/token`.\n",
    ],
    "dockerfile_clean": [
        'FROM golang:1.22 AS build\nARG VERSION=dev\nENV CGO_ENABLED=0 GOOS=linux\nRUN go build -ldflags "-X main.version=${VERSION}" -o /out/app ./cmd/app\n',
    ],
    "makefile_clean": [
        "VERSION := $(shell git describe --tags)\nLDFLAGS := -s -w -X main.version=$(VERSION)\n\nbuild:\n\tgo build -ldflags '$(LDFLAGS)' ./...\n\ntest:\n\tgo test -race ./...\n",
    ],
    "package_json_clean": [
        '{\n  "name": "@acme/ui",\n  "version": "3.2.0",\n  "scripts": {"build": "vite build", "lint": "eslint ."},\n  "dependencies": {"react": "^18.2.0"}\n}\n',
    ],
    "npmrc_clean": [
        "registry=https://registry.npmjs.org/\n//npm.pkg.github.com/:_authToken=${GITHUB_TOKEN}\n@acme:registry=https://npm.pkg.github.com\n",
    ],
    "k8s_manifest_clean": [
        "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      - name: api\n        image: ghcr.io/acme/api@sha256:«_sha256»\n        envFrom:\n        - secretRef:\n            name: api-secrets\n",
    ],
    "terraform_clean": [
        'variable "db_password" {\n  type      = string\n  sensitive = true\n}\nresource "aws_db_instance" "main" {\n  password = var.db_password\n}\n',
    ],
    "powershell_clean": [
        '$env:PATH = "C:\\tools\\bin;$env:PATH"\n$cred = Get-Credential\nInvoke-RestMethod -Uri $Uri -Headers @{ Authorization = "Bearer $($env:API_TOKEN)" }\n',
    ],
    "bat_clean": [
        "@echo off\nset BUILD_DIR=%~dp0build\nset CONFIG=Release\nif not defined API_KEY echo API_KEY is not set & exit /b 1\n",
    ],
    "nginx_clean": [
        "server {\n  listen 80;\n  server_name _;\n  location / { proxy_pass http://127.0.0.1:3000; proxy_set_header Host $host; proxy_set_header X-Real-IP $remote_addr; }\n}\n",
    ],
    "prometheus_clean": [
        "groups:\n- name: api\n  rules:\n  - alert: HighLatency\n    expr: histogram_quantile(0.95, rate(http_request_duration_seconds_bucket[5m])) > 0.5\n    for: 10m\n    labels:\n      severity: page\n",
    ],
    "hl7_spec_doc": [
        "PID-5 (Patient Name) is an XPN: family^given^middle^suffix^prefix. PID-7 is the date/time of birth as YYYYMMDD. PID-3 holds identifiers such as the MRN with assigning authority in component 4.\n",
    ],
    "fhir_profile": [
        '{"resourceType": "StructureDefinition", "url": "http://hl7.org/fhir/StructureDefinition/Patient", "name": "Patient", "kind": "resource", "differential": {"element": [{"path": "Patient.birthDate", "min": 0, "max": "1"}]}}\n',
    ],
    "changelog": [
        "## 2.4.0 - 2024-03-12\n- Fix token refresh race (#1182)\n- Drop support for Python 3.8\n- Add `--password-stdin` flag so passwords never land in shell history\n",
    ],
    "stackoverflow_clean": [
        "Q: regex for validating email?\nI tried `^[\\w.+-]+@[\\w-]+\\.[\\w.]+$` but it accepts `a@b..c`. Is there a better pattern?\n",
        "How do I read a secret from AWS Secrets Manager in Lambda? I have `client.get_secret_value(SecretId='prod/db')` but get AccessDenied.\n",
    ],
    "code_review_clean": [
        "> +    timeout = 30\n\nnit: make this configurable. Also `retry_backoff=0.5` looks low. LGTM otherwise.\n",
    ],
    "dbt_profiles_clean": [
        "jaffle_shop:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n      host: localhost\n      user: \"{{ env_var('DBT_USER') }}\"\n      password: \"{{ env_var('DBT_PASSWORD') }}\"\n      port: 5432\n",
    ],
    "airflow_clean": [
        "AIRFLOW__CORE__EXECUTOR=LocalExecutor\nAIRFLOW__DATABASE__SQL_ALCHEMY_CONN=postgresql+psycopg2://airflow:airflow@postgres/airflow\n",
    ],
    "jupyter_clean": [
        "In [7]: np.linalg.eigvals(A)\nOut[7]: array([ 3.41421356,  2.        ,  0.58578644])\n\nIn [8]: df.describe()\nOut[8]:\n        age    bmi\ncount  500.0  500.0\nmean    47.3   27.9\n",
    ],
    "r_script_clean": [
        "library(survival)\nfit <- coxph(Surv(time, status) ~ age + sex + ph.ecog, data = lung)\nsummary(fit)\n# hazard ratio for sex: 0.575 (95% CI 0.41-0.80)\n",
    ],
    "csv_metrics": [
        "date,region,requests,errors,p95_ms\n2024-03-01,us-east-1,1829341,212,183.4\n2024-03-02,eu-west-1,1593110,198,176.9\n2024-03-03,ap-south-1,882103,77,201.2\n",
    ],
    "version_numbers": [
        "Installed: numpy-1.26.4 scipy-1.12.0 torch-2.2.1+cu121 (build 20240221.1532) on kernel 6.5.0-1014-aws\nGPU driver 535.161.07, CUDA 12.2.140\n",
    ],
    "base64_config": [
        "apiVersion: v1\nkind: ConfigMap\ndata:\n  logo.svg.b64: PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciIHZpZXdCb3g9IjAgMCAxMCAxMCI+PC9zdmc+\n",
    ],
    "jwt_docs": [
        'A JWT has three parts: header.payload.signature. The header is base64url JSON like {"alg":"HS256","typ":"JWT"}. Validate `exp` and `aud` on every request.\n',
    ],
    "phone_format_code": [
        "PHONE_RE = re.compile(r'^\\+?[1-9]\\d{1,14}$')  # E.164\nassert normalize('+1 (555) 010-0000') == '+15550100000'\n",
    ],
    "keyword_non_secrets": [
        'token_type = "bearer"\npassword_field = "password"\nsecret_name = "prod/db/credentials"\napi_key_header = "X-API-Key"\nTOKEN_URL = "https://auth.acme.io/oauth/token"\n',
        "auth:\n  password_min_length: 14\n  token_expiry: 15m\n  secret_store: vault\n  api_key_prefix: acme_\n  client_secret_env: OIDC_CLIENT_SECRET\n",
        'if (password !== confirmPassword) { setError("Passwords do not match"); }\nconst secret = await getSecret("stripe/webhook");\n',
    ],
    "placeholder_values": [
        "DB_PASSWORD=changeme\nAPI_KEY=your_api_key_here\nSECRET_KEY=REPLACE_ME\nSTRIPE_KEY=sk_live_XXXXXXXXXXXXXXXXXXXXXXXX\nGITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
        '<add key="ApiKey" value="{{API_KEY}}" />\n<add key="Password" value="%DB_PASSWORD%" />\n<password>${env.NEXUS_PASSWORD}</password>\n',
    ],
    "numeric_ids": [
        "order_id=«_n»«_n»«_n» tweet_id=1765432109876543210 ts=1709812345678 invoice=INV-2024-000183 isbn=978-0-13-468599-1\n",
        "snmpwalk -v2c -c public localhost 1.3.6.1.4.1.2021.10.1.3.1\nversion 10.0.19045.4046 build 22631.3296\n",
    ],
    "pytest_output": [
        "============================= test session starts ==============================\nplatform linux -- Python 3.12.2, pytest-8.1.1\ncollected 214 items\n\ntests/test_auth.py ........F.....                                        [  7%]\nFAILED tests/test_auth.py::test_token_refresh - AssertionError: assert 401 == 200\n",
    ],
    "doctor_directory_docs": [
        "Our cardiology team: Dr. Amelia Ortiz (electrophysiology) and Dr. Samuel Reed (heart failure). Clinic hours Mon-Fri 8-5.\n",
    ],
    "hl7_sample_fake": [
        "Example message from the spec:\nMSH|^~\\&|SENDER|FAC|RECV|FAC|20240101000000||ADT^A01|1|T|2.5\nPID|1||TEST123^^^FAC^MR||DOE^JOHN||19000101|M\n",
    ],
    "documented_examples": [
        "jwt.io sample: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c\n",
        "Sandbox cards: 4111 1111 1111 1111, 5555 5555 5555 4444, 5105 1051 0510 5100. Example IBANs: DE89 3704 0044 0532 0130 00 and GB82 WEST 1234 5698 7654 32.\n",
        "The SSN 078-05-1120 is the famous Woolworth wallet number; 123-45-6789 is the usual placeholder.\n",
    ],
    "aws_arns_ids": [
        "arn:aws:iam::123456789012:role/ci-deploy\narn:aws:s3:::acme-logs/2024/03/\nAccount: 123456789012  Region: eu-central-1  vpc-0a1b2c3d4e5f67890 subnet-0123456789abcdef0\n",
    ],
    "credential_code_paths": [
        'password = getpass.getpass("DB password: ")\ntoken = request.headers["Authorization"].removeprefix("Bearer ")\napi_key = keyring.get_password("acme", "api")\nsecret = base64.b64decode(os.environ["SECRET_B64"])\n',
        'func loadToken() (string, error) {\n\ttoken := os.Getenv("GITHUB_TOKEN")\n\tif token == "" {\n\t\treturn "", errors.New("GITHUB_TOKEN not set")\n\t}\n\treturn token, nil\n}\n',
    ],
    "address_like_code": [
        "Bug #48213: 1 Infinite Loop crashes when zip is 94103-1234; see ext. 4021 or 1-800-FLOWERS\nCSS: color: #1e90ff; background: #fafafa;\n",
        "# geo fixtures\nPOINT(-122.4194 37.7749)\nbbox = [-74.2591, 40.4774, -73.7004, 40.9176]\n",
    ],
    "form_field_docs": [
        "The intake form asks for: Patient name, DOB (MM/DD/YYYY), MRN, allergies, current medications. Validation: DOB must not be in the future; MRN is 8 digits.\n",
    ],
    "test_fixture_blobs": [
        'FIXTURE = {"id": "«_uuid»", "payload": "«_sha256»", "etag": "W/\\"«_sha1»\\"", "nonce": 42}\n',
    ],
    "url_params_clean": [
        "GET /search?q=password+reset&page=2&token_type=bearer HTTP/1.1\nGET /api/v1/users?email=%7Bemail%7D&limit=50\n",
    ],
    "shell_session_clean": [
        "$ kubectl get secrets\nNAME                  TYPE                                  DATA   AGE\ndefault-token-x7k2p   kubernetes.io/service-account-token   3      41d\napi-secrets           Opaque                                5      12d\n",
        "$ openssl rand -hex 4\n9f1c2ab0\n$ ls -la ~/.ssh\n-rw-------  1 dev dev  411 Mar  1 id_ed25519\n-rw-r--r--  1 dev dev   97 Mar  1 id_ed25519.pub\n",
    ],
    "issue_template_clean": [
        "### Environment\n- OS: Ubuntu 22.04\n- Version: 3.4.1\n- Node: 20.11.1\n\n### Logs\n```\nError: connect ECONNREFUSED 127.0.0.1:5432\n    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16)\n```\n",
    ],
    "medical_analytics_clean": [
        "SELECT icd10_code, COUNT(*) AS n, AVG(los_days) FROM encounters WHERE admit_date >= '2023-01-01' GROUP BY icd10_code ORDER BY n DESC LIMIT 20;\n-- E11.9 | 18231 | 3.2\n-- I10   | 17002 | 2.8\n",
    ],
    "med_dosing_table": [
        "| Drug | Dose | Frequency |\n|------|------|-----------|\n| Metformin | 500 mg | BID |\n| Lisinopril | 10 mg | daily |\n| Atorvastatin | 40 mg | nightly |\n",
    ],
}


def _phrasings(table: dict[str, list[str]]) -> list[tuple[str, str]]:
    return [(f"{c}/{i}", t) for c, ts in table.items() for i, t in enumerate(ts)]


def build(seed: int = 0) -> tuple[list[Packet], list[Packet]]:
    """Render every phrasing of every container a few times with seeded values."""
    rng = random.Random(seed)
    dirty = [render(f"{n}#{k}", t, rng) for k in range(3) for n, t in _phrasings(DIRTY)]
    clean = [render(f"{n}#{k}", t, rng) for k in range(2) for n, t in _phrasings(CLEAN)]
    return dirty, clean


def validate(p: Packet) -> list[str]:
    """Structural checks on planted values, so generator bugs are not scored as misses."""
    errs = []
    for s, e, _cat, kind in p.planted:
        v = p.text[s:e]
        if kind == "card" and not luhn_ok(v):
            errs.append(f"{p.name}: bad luhn {v}")
        if kind == "iban" and not iban_ok(v):
            errs.append(f"{p.name}: bad iban {v}")
        if kind == "phone" and not phone_ok(v):
            errs.append(f"{p.name}: bad phone {v}")
        if kind == "ssn" and (
            v.startswith(("000", "666", "9")) or v[4:6] == "00" or v[7:] == "0000"
        ):
            errs.append(f"{p.name}: bad ssn {v}")
        if kind == "github_token" and v[-6:] != _b62(zlib.crc32(v[4:-6].encode()), 6):
            errs.append(f"{p.name}: bad gh crc {v}")
        if not v or v != v.strip():
            errs.append(f"{p.name}: blank edge {v!r}")
    return errs
