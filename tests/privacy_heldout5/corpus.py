# ruff: noqa: E501
"""A fifth corpus written apart from the detectors: random values in real formats inside
everyday containers, plus clean developer packets full of look-alikes that must pass."""

from __future__ import annotations

import base64
import binascii
import json
import random
import string
from collections.abc import Callable
from dataclasses import dataclass

import phonenumbers

ALNUM = string.ascii_letters + string.digits
B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
URLSAFE = ALNUM + "-_"
B64 = ALNUM + "+/"
HEX = "0123456789abcdef"


@dataclass(frozen=True)
class Packet:
    """One text with the values planted in it (start, end, category, kind)."""

    name: str
    text: str
    planted: tuple[tuple[int, int, str, str], ...]


@dataclass(frozen=True)
class Value:
    """A planted value with the label a developer would give it."""

    kind: str
    category: str
    label: str
    text: str


class _Doc:
    """Accumulates text and remembers where each planted value landed."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.spans: list[tuple[int, int, str, str]] = []

    def add(self, text: str) -> _Doc:
        self.parts.append(text)
        self.size += len(text)
        return self

    def put(self, value: Value, text: str | None = None) -> _Doc:
        body = value.text if text is None else text
        self.spans.append((self.size, self.size + len(body), value.category, value.kind))
        return self.add(body)

    def packet(self, name: str) -> Packet:
        return Packet(name, "".join(self.parts), tuple(self.spans))


def _rs(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _b62(n: int, width: int) -> str:
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = B62[r] + out
    return out.rjust(width, "0")


def _crc_token(rng: random.Random, prefix: str, body: int = 30) -> str:
    core = _rs(rng, ALNUM, body)
    return prefix + core + _b62(binascii.crc32(core.encode()), 6)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


# ---------- secrets ----------

FIRST = [
    "maria",
    "james",
    "aisha",
    "chen",
    "olga",
    "diego",
    "priya",
    "tom",
    "fatima",
    "lukas",
    "sofia",
    "kwame",
    "hannah",
    "ravi",
    "ines",
    "noah",
    "yuki",
    "elena",
    "omar",
    "grace",
]
LAST = [
    "gonzalez",
    "whitfield",
    "okafor",
    "lindqvist",
    "nakamura",
    "petrov",
    "hernandez",
    "mcallister",
    "dubois",
    "kowalski",
    "abernathy",
    "castellano",
    "osei",
    "brennan",
    "vasquez",
    "thornton",
    "haddad",
    "fischer",
    "moreau",
    "delgado",
]
WORDS = [
    "maple",
    "orbit",
    "cactus",
    "harbor",
    "falcon",
    "ember",
    "quartz",
    "willow",
    "cobalt",
    "tundra",
    "saffron",
    "glacier",
]


def _password(rng: random.Random, url_safe: bool = False) -> str:
    style = rng.randrange(3)
    if style == 0:
        extra = "-_.~" if url_safe else "!*+-_.^~"
        return _rs(rng, ALNUM + extra, rng.randint(14, 24)) + rng.choice(string.digits)
    if style == 1:
        w = rng.sample(WORDS, 3)
        sep = rng.choice("-_.")
        return (
            sep.join(x.capitalize() if i % 2 else x for i, x in enumerate(w))
            + sep
            + str(rng.randint(10, 9999))
        )
    return (
        _rs(rng, string.ascii_letters, 4).capitalize()
        + str(rng.randint(100, 99999))
        + _rs(rng, ALNUM, 10)
        + rng.choice("!*-_" if not url_safe else "-_")
    )


def _pem_body(rng: random.Random, lines: int, lead: str = "MII") -> str:
    first = lead + _rs(rng, B64, 64 - len(lead))
    rest = [_rs(rng, B64, 64) for _ in range(lines - 1)]
    tail = _rs(rng, B64, rng.randint(10, 60)) + rng.choice(["", "=", "=="])
    return "\n".join([first, *rest, tail])


def _private_block(rng: random.Random) -> tuple[str, str]:
    style = rng.randrange(6)
    if style == 0:
        return (
            "pem_rsa_private_key",
            f"-----BEGIN RSA PRIVATE KEY-----\n{_pem_body(rng, 20)}\n-----END RSA PRIVATE KEY-----",
        )
    if style == 1:
        return (
            "pem_private_key",
            f"-----BEGIN PRIVATE KEY-----\n{_pem_body(rng, 16)}\n-----END PRIVATE KEY-----",
        )
    if style == 2:
        iv = _rs(rng, "0123456789ABCDEF", 32)
        return (
            "pem_encrypted_rsa",
            f"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,{iv}\n\n{_pem_body(rng, 18, 'k')}\n-----END RSA PRIVATE KEY-----",
        )
    if style == 3:
        return (
            "pem_encrypted_pkcs8",
            f"-----BEGIN ENCRYPTED PRIVATE KEY-----\n{_pem_body(rng, 14)}\n-----END ENCRYPTED PRIVATE KEY-----",
        )
    if style == 4:
        body = _pem_body(rng, 6, "b3BlbnNzaC1rZXktdjEAAAAA")
        return (
            "openssh_private_key",
            f"-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n-----END OPENSSH PRIVATE KEY-----",
        )
    body = _pem_body(rng, 22, "lQ")
    crc = "=" + _rs(rng, B64, 4)
    return (
        "pgp_private_key",
        f"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n{body}\n{crc}\n-----END PGP PRIVATE KEY BLOCK-----",
    )


def _jwt(rng: random.Random) -> str:
    head = {"alg": rng.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"}
    body = {
        "sub": str(rng.randint(10**6, 10**9)),
        "name": f"{rng.choice(FIRST)} {rng.choice(LAST)}".title(),
        "iat": rng.randint(1_600_000_000, 1_800_000_000),
        "scope": rng.choice(["read", "admin", "read write"]),
    }
    sig = _b64url(bytes(rng.randrange(256) for _ in range(32 if head["alg"] == "HS256" else 64)))
    return f"{_b64url(json.dumps(head).encode())}.{_b64url(json.dumps(body).encode())}.{sig}"


def _discord(rng: random.Random) -> str:
    uid = str(rng.randint(10**17, 10**19 - 1)).encode()
    return f"{_b64url(uid)}.{_rs(rng, URLSAFE, 6)}.{_rs(rng, URLSAFE, 38)}"


SECRET_GEN: dict[str, tuple[str, Callable[[random.Random], str]]] = {
    "aws_access_key_id": (
        "aws_access_key_id",
        lambda r: rng_pick(r, ["AKIA", "ASIA"]) + _rs(r, string.ascii_uppercase + "234567", 16),
    ),
    "aws_secret_access_key": ("aws_secret_access_key", lambda r: _rs(r, B64, 40)),
    "github_classic": ("GITHUB_TOKEN", lambda r: _crc_token(r, "ghp_")),
    "github_oauth": ("gh_oauth_token", lambda r: _crc_token(r, "gho_")),
    "github_fine_grained": (
        "GH_PAT",
        lambda r: (
            "github_pat_11"
            + _rs(r, string.ascii_uppercase + string.digits, 20)
            + "_"
            + _rs(r, ALNUM, 59)
        ),
    ),
    "gitlab_pat": ("GITLAB_TOKEN", lambda r: "glpat-" + _rs(r, URLSAFE, 20)),
    "slack_bot": (
        "SLACK_BOT_TOKEN",
        lambda r: (
            f"xoxb-{r.randint(10**10, 10**12)}-{r.randint(10**11, 10**13)}-{_rs(r, ALNUM, 24)}"
        ),
    ),
    "slack_user": (
        "slack_user_token",
        lambda r: (
            f"xoxp-{r.randint(10**10, 10**12)}-{r.randint(10**10, 10**12)}-{r.randint(10**11, 10**13)}-{_rs(r, HEX, 32)}"
        ),
    ),
    "slack_webhook": (
        "SLACK_WEBHOOK_URL",
        lambda r: (
            f"https://hooks.slack.com/services/T{_rs(r, string.ascii_uppercase + string.digits, 10)}/B{_rs(r, string.ascii_uppercase + string.digits, 10)}/{_rs(r, ALNUM, 24)}"
        ),
    ),
    "stripe_secret": (
        "STRIPE_SECRET_KEY",
        lambda r: "sk_live_" + _rs(r, ALNUM, r.choice([24, 99])),
    ),
    "stripe_restricted": (
        "stripe_restricted_key",
        lambda r: "rk_live_" + _rs(r, ALNUM, r.choice([24, 99])),
    ),
    "stripe_webhook": ("STRIPE_WEBHOOK_SECRET", lambda r: "whsec_" + _rs(r, ALNUM, 32)),
    "openai": (
        "OPENAI_API_KEY",
        lambda r: (
            r.choice(["sk-proj-", "sk-svcacct-"])
            + _rs(r, URLSAFE, 74)
            + "T3BlbkFJ"
            + _rs(r, URLSAFE, 74)
            if r.random() < 0.7
            else "sk-" + _rs(r, ALNUM, 20) + "T3BlbkFJ" + _rs(r, ALNUM, 20)
        ),
    ),
    "anthropic": ("ANTHROPIC_API_KEY", lambda r: "sk-ant-api03-" + _rs(r, URLSAFE, 93) + "AA"),
    "google_api_key": ("GOOGLE_API_KEY", lambda r: "AIza" + _rs(r, URLSAFE, 35)),
    "twilio_api_key": ("TWILIO_API_KEY", lambda r: "SK" + _rs(r, HEX, 32)),
    "sendgrid": ("SENDGRID_API_KEY", lambda r: f"SG.{_rs(r, URLSAFE, 22)}.{_rs(r, URLSAFE, 43)}"),
    "npm": ("NPM_TOKEN", lambda r: _crc_token(r, "npm_")),
    "pypi": (
        "PYPI_API_TOKEN",
        lambda r: "pypi-AgEIcHlwaS5vcmc" + _rs(r, URLSAFE, r.randint(140, 190)),
    ),
    "huggingface": ("HF_TOKEN", lambda r: "hf_" + _rs(r, string.ascii_letters, 34)),
    "discord_bot": ("DISCORD_BOT_TOKEN", _discord),
    "telegram_bot": (
        "TELEGRAM_BOT_TOKEN",
        lambda r: f"{r.randint(10**8, 10**10 - 1)}:AA{_rs(r, URLSAFE, 33)}",
    ),
    "jwt": ("id_token", _jwt),
}


def rng_pick(rng: random.Random, items: list[str]) -> str:
    return rng.choice(items)


KEYWORDS = [
    "password",
    "db_password",
    "client_secret",
    "api_token",
    "secret_key",
    "auth_token",
    "passwd",
    "smtp_password",
    "access_token",
    "private_token",
    "app_secret",
    "redis_password",
    "signing_secret",
    "admin_pass",
    "encryption_key",
]


def _secret(rng: random.Random, kind: str | None = None) -> Value:
    kinds = [*SECRET_GEN, "keyword_password", "twilio_auth_token"]
    kind = kind or rng.choice(kinds)
    if kind == "keyword_password":
        return Value(kind, "secret", rng.choice(KEYWORDS), _password(rng))
    if kind == "twilio_auth_token":
        return Value(kind, "secret", "TWILIO_AUTH_TOKEN", _rs(rng, HEX, 32))
    label, gen = SECRET_GEN[kind]
    return Value(kind, "secret", label, gen(rng))


# ---------- PII ----------

DOMAINS = [
    "gmail.com",
    "outlook.com",
    "yahoo.co.uk",
    "proton.me",
    "fastmail.fm",
    "northwind-logistics.com",
    "brightlane.io",
    "mail.ru",
    "web.de",
    "hey.com",
    "kestrelhealth.org",
    "umich.edu",
]
STREETS = [
    "Maple Grove Ave",
    "Harborview Drive",
    "Old Mill Road",
    "Cedar Hollow Ln",
    "Westfield Blvd",
    "Kensington Park Road",
    "Birchwood Court",
    "Lakeshore Pkwy",
    "Elm Street",
    "Quarry Hill Rd",
    "Juniper Way",
    "Magnolia Terrace",
]
CITIES = [
    ("Springfield", "IL", "62704"),
    ("Ann Arbor", "MI", "48104"),
    ("Austin", "TX", "78745"),
    ("Portland", "OR", "97214"),
    ("Raleigh", "NC", "27603"),
    ("Tucson", "AZ", "85719"),
    ("Columbus", "OH", "43215"),
    ("Boise", "ID", "83702"),
]
US_AREAS = [
    "212",
    "415",
    "617",
    "312",
    "206",
    "512",
    "303",
    "404",
    "646",
    "718",
    "773",
    "919",
    "503",
    "702",
    "215",
    "614",
]


def _email(rng: random.Random) -> str:
    f, last = rng.choice(FIRST), rng.choice(LAST)
    local = rng.choice(
        [
            f"{f}.{last}",
            f"{f[0]}{last}",
            f"{f}_{last}{rng.randint(1, 99)}",
            f"{last}.{f}",
            f"{f}{rng.randint(70, 99)}",
        ]
    )
    return f"{local}@{rng.choice(DOMAINS)}"


def _us_phone(rng: random.Random) -> str:
    while True:
        area = rng.choice(US_AREAS)
        exch = str(rng.randint(201, 989))
        if exch[1:] == "11" or exch == "555":
            continue
        line = f"{rng.randint(0, 9999):04d}"
        num = phonenumbers.parse(f"+1{area}{exch}{line}")
        if phonenumbers.is_valid_number(num):
            break
    fmt = rng.randrange(5)
    return [
        f"({area}) {exch}-{line}",
        f"{area}-{exch}-{line}",
        f"+1 {area} {exch} {line}",
        f"{area}.{exch}.{line}",
        f"+1-{area}-{exch}-{line}",
    ][fmt]


INTL = ["GB", "DE", "FR", "IN", "AU", "BR", "JP", "NL", "ES", "IT", "MX", "SE", "ZA", "SG"]


def _intl_phone(rng: random.Random) -> str:
    region = rng.choice(INTL)
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    assert example is not None
    national = str(example.national_number)
    while True:
        keep = max(2, len(national) - 6)
        cand = national[:keep] + "".join(
            rng.choice(string.digits) for _ in range(len(national) - keep)
        )
        num = phonenumbers.parse(f"+{example.country_code}{cand}")
        if phonenumbers.is_valid_number(num) and cand != national:
            break
    style = rng.choice(
        [phonenumbers.PhoneNumberFormat.INTERNATIONAL, phonenumbers.PhoneNumberFormat.E164]
    )
    return phonenumbers.format_number(num, style)


def _ssn(rng: random.Random) -> str:
    while True:
        area = rng.randint(1, 899)
        if area != 666:
            break
    ssn = f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"
    return ssn if rng.random() < 0.85 else ssn.replace("-", " ")


def _luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    digits = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return digits + str((10 - total % 10) % 10)


def _card(rng: random.Random) -> str:
    brand = rng.randrange(4)
    if brand == 0:
        num = _luhn_complete("4" + str(rng.randint(10, 99)), 16, rng)
    elif brand == 1:
        num = _luhn_complete(str(rng.randint(51, 55)), 16, rng)
    elif brand == 2:
        num = _luhn_complete(rng.choice(["34", "37"]), 15, rng)
        return rng.choice([num, f"{num[:4]} {num[4:10]} {num[10:]}"])
    else:
        num = _luhn_complete("6011", 16, rng)
    sep = rng.choice(["", " ", "-"])
    return sep.join(num[i : i + 4] for i in range(0, 16, 4))


def _iban(rng: random.Random) -> str:
    country, bban = rng.choice(
        [
            ("DE", lambda: _rs(rng, string.digits, 18)),
            ("GB", lambda: _rs(rng, string.ascii_uppercase, 4) + _rs(rng, string.digits, 14)),
            ("FR", lambda: _rs(rng, string.digits, 23)),
            ("NL", lambda: _rs(rng, string.ascii_uppercase, 4) + _rs(rng, string.digits, 10)),
            ("ES", lambda: _rs(rng, string.digits, 20)),
            (
                "IT",
                lambda: (
                    rng.choice(string.ascii_uppercase)
                    + _rs(rng, string.digits, 10)
                    + _rs(rng, string.digits, 12)
                ),
            ),
        ]
    )
    b = bban()
    moved = b + country + "00"
    check = 98 - int("".join(str(int(c, 36)) for c in moved)) % 97
    iban = f"{country}{check:02d}{b}"
    if rng.random() < 0.5:
        iban = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    return iban


def _ipv4(rng: random.Random) -> str:
    while True:
        a = rng.randint(1, 223)
        b = rng.randint(0, 255)
        if (
            a in (10, 127, 0)
            or (a == 172 and 16 <= b <= 31)
            or (a == 192 and b == 168)
            or (a == 169 and b == 254)
            or (a == 100 and 64 <= b <= 127)
        ):
            continue
        c, d = rng.randint(0, 255), rng.randint(1, 254)
        if (a, b, c) in ((192, 0, 2), (198, 51, 100), (203, 0, 113), (192, 0, 0)) or (
            a == 198 and b in (18, 19)
        ):
            continue
        return f"{a}.{b}.{c}.{d}"


def _ipv6(rng: random.Random) -> str:
    head = rng.choice(
        ["2a03:2880", "2600:1f18", "2607:f8b0", "2a02:6b8", "2001:4860", "2400:cb00", "2a01:4f8"]
    )
    groups = [format(rng.randrange(1, 0x10000), "x") for _ in range(rng.choice([2, 6]))]
    return head + (":" + ":".join(groups) if len(groups) == 6 else "::" + ":".join(groups))


def _street(rng: random.Random) -> str:
    return f"{rng.randint(12, 9899)} {rng.choice(STREETS)}" + rng.choice(
        ["", "", f", Apt {rng.randint(1, 40)}{rng.choice('ABC')}"]
    )


def _address(rng: random.Random) -> str:
    city, st, z = rng.choice(CITIES)
    return f"{_street(rng)}, {city}, {st} {z}"


def _date(rng: random.Random) -> str:
    y, m, d = rng.randint(1938, 2006), rng.randint(1, 12), rng.randint(1, 28)
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
            f"{y}-{m:02d}-{d:02d}",
            f"{m:02d}/{d:02d}/{y}",
            f"{d} {months[m - 1]} {y}",
            f"{months[m - 1]} {d}, {y}",
            f"{d:02d}.{m:02d}.{y}",
        ]
    )


PII_GEN: dict[str, tuple[str, Callable[[random.Random], str]]] = {
    "email": ("email", _email),
    "phone_us": ("phone", _us_phone),
    "phone_intl": ("mobile", _intl_phone),
    "ssn": ("ssn", _ssn),
    "card": ("card_number", _card),
    "iban": ("iban", _iban),
    "ipv4": ("client_ip", _ipv4),
    "ipv6": ("remote_addr", _ipv6),
    "address": ("home_address", _address),
    "dob": ("date_of_birth", _date),
}


def _pii(rng: random.Random, kind: str | None = None) -> Value:
    kind = kind or rng.choice(list(PII_GEN))
    label, gen = PII_GEN[kind]
    return Value(kind, "pii", label, gen(rng))


def _name(rng: random.Random) -> tuple[str, str]:
    return rng.choice(FIRST).capitalize(), rng.choice(LAST).capitalize()


def _mrn(rng: random.Random) -> str:
    return rng.choice(
        [
            _rs(rng, string.digits, 8),
            "MRN" + _rs(rng, string.digits, 7),
            f"{rng.randint(100, 999)}-{rng.randint(100, 999)}-{rng.randint(10, 99)}",
            "E" + _rs(rng, string.digits, 9),
        ]
    )


# ---------- containers for labelled values ----------

KV = Callable[[random.Random, list[Value]], _Doc]


def _kv_lines(
    fmt: Callable[[str, str], tuple[str, str]],
    head: str = "",
    tail: str = "",
    filler: list[str] | None = None,
) -> KV:
    def render(rng: random.Random, values: list[Value]) -> _Doc:
        doc = _Doc().add(head)
        extra = list(filler or [])
        for v in values:
            if extra and rng.random() < 0.6:
                doc.add(extra.pop(0))
            pre, post = fmt(v.label, v.text)
            doc.add(pre).put(v).add(post)
        for line in extra:
            doc.add(line)
        return doc.add(tail)

    return render


def _up(label: str) -> str:
    return label.upper()


CONTAINERS: dict[str, KV] = {
    "dotenv": _kv_lines(
        lambda k, v: (f"{_up(k)}=", "\n"),
        "# local overrides, do not commit\nNODE_ENV=production\nPORT=8080\n",
        "",
        ["LOG_LEVEL=info\n", "FEATURE_FLAGS=search,export\n"],
    ),
    "dotenv_quoted": _kv_lines(
        lambda k, v: (f'export {_up(k)}="', '"\n'),
        "#!/usr/bin/env bash\nset -euo pipefail\n",
        'exec ./bin/server "$@"\n',
    ),
    "yaml_config": _kv_lines(
        lambda k, v: (f"  {k}: ", "\n"),
        "service:\n  name: billing-api\n  replicas: 3\n",
        "  timeout_s: 30\n",
        ["  region: eu-west-1\n"],
    ),
    "yaml_quoted": _kv_lines(
        lambda k, v: (f'    {k}: "', '"\n'), "production:\n  adapter: postgresql\n  settings:\n", ""
    ),
    "json_config": _kv_lines(
        lambda k, v: (f'  "{k}": "', '",\n'), '{\n  "debug": false,\n', '  "workers": 4\n}\n'
    ),
    "python_settings": _kv_lines(
        lambda k, v: (f'{_up(k)} = "', '"\n'),
        "import os\n\nDEBUG = os.environ.get('DEBUG') == '1'\nALLOWED_HOSTS = ['*']\n",
        "\nCACHE_TTL = 300\n",
    ),
    "python_dict": _kv_lines(
        lambda k, v: (f"    '{k}': '", "',\n"),
        "def make_client():\n    cfg = {\n",
        "    }\n    return Client(**cfg)\n",
    ),
    "js_object": _kv_lines(
        lambda k, v: (f"  {k}: '", "',\n"), "module.exports = {\n  env: 'production',\n", "};\n"
    ),
    "properties": _kv_lines(
        lambda k, v: (f"app.{k.replace('_', '.')}=", "\n"),
        "# application.properties\nserver.port=8443\nspring.jpa.hibernate.ddl-auto=validate\n",
        "",
    ),
    "xml_config": _kv_lines(
        lambda k, v: (f'    <add key="{k}" value="', '" />\n'),
        '<?xml version="1.0" encoding="utf-8"?>\n<configuration>\n  <appSettings>\n',
        "  </appSettings>\n</configuration>\n",
    ),
    "xml_elements": _kv_lines(
        lambda k, v: (f"  <{k}>", f"</{k}>\n"),
        "<settings>\n  <host>db.internal</host>\n",
        "</settings>\n",
    ),
    "terraform": _kv_lines(
        lambda k, v: (f'  {k} = "', '"\n'), 'provider "acme" {\n  region = "us-east-2"\n', "}\n"
    ),
    "k8s_secret": _kv_lines(
        lambda k, v: (f"  {_up(k)}: ", "\n"),
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: app-secrets\n  namespace: prod\ntype: Opaque\nstringData:\n",
        "",
    ),
    "k8s_env": _kv_lines(
        lambda k, v: (f'            - name: {_up(k)}\n              value: "', '"\n'),
        "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n        - name: api\n          image: registry.internal/api:1.14.2\n          env:\n",
        "",
    ),
    "ini": _kv_lines(
        lambda k, v: (f"{k} = ", "\n"), "[database]\nhost = 10.20.0.5\nport = 5432\n\n[auth]\n", ""
    ),
    "toml": _kv_lines(
        lambda k, v: (f'{k} = "', '"\n'),
        '[tool.deploy]\ntarget = "fly"\n\n[tool.deploy.secrets]\n',
        "",
    ),
    "docker_compose": _kv_lines(
        lambda k, v: (f"      - {_up(k)}=", "\n"),
        "services:\n  worker:\n    build: .\n    environment:\n",
        "    depends_on:\n      - redis\n",
    ),
    "github_actions": _kv_lines(
        lambda k, v: (f"      {_up(k)}: ", "\n"),
        "name: deploy\non: push\njobs:\n  ship:\n    runs-on: ubuntu-latest\n    env:\n",
        "    steps:\n      - uses: actions/checkout@v4\n",
    ),
    "shell_history": _kv_lines(
        lambda k, v: (f"  {rng_line()}export {_up(k)}=", "\n"), "", "  512  ./deploy.sh --prod\n"
    ),
    "chat_message": _kv_lines(
        lambda k, v: (f"[10:{42}] dev-ops: here's the {k.replace('_', ' ')} for staging: ", "\n"),
        "#infra-help\n[10:41] sam: anyone have the staging creds?\n",
        "[10:44] sam: thanks, got it working\n",
    ),
    "chat_colon": _kv_lines(
        lambda k, v: (f"> {k.replace('_', ' ')}: ", "\n"),
        "Hey! Setting you up on the vendor portal.\n",
        "Let me know if anything fails.\n",
    ),
    "log_line": _kv_lines(
        lambda k, v: (f"2026-11-04T09:{13}:07.512Z DEBUG config loaded {k}=", " source=env\n"),
        "2026-11-04T09:13:07.101Z INFO starting worker pid=4411\n",
        "2026-11-04T09:13:08.002Z INFO ready\n",
    ),
    "diff_added": _kv_lines(
        lambda k, v: (f"+{_up(k)}=", "\n"),
        "diff --git a/.env.production b/.env.production\nindex 3f2a1c9..8b7d0e4 100644\n--- a/.env.production\n+++ b/.env.production\n@@ -1,3 +1,6 @@\n APP_NAME=ledger\n",
        " LOG_FORMAT=json\n",
    ),
    "traceback_locals": _kv_lines(
        lambda k, v: (f"    {k} = '", "'\n"),
        'Traceback (most recent call last):\n  File "app/sync.py", line 88, in run\n    resp = session.post(url, json=payload)\nLocals:\n',
        "requests.exceptions.HTTPError: 401 Client Error: Unauthorized\n",
    ),
    "csv_rows": _kv_lines(
        lambda k, v: (f"{rng_id()},{k},", ",active\n"), "id,field,value,status\n", ""
    ),
    "sql_insert": _kv_lines(
        lambda k, v: (f"INSERT INTO settings (name, value) VALUES ('{k}', '", "');\n"),
        "BEGIN;\n",
        "COMMIT;\n",
    ),
    "markdown_table": _kv_lines(
        lambda k, v: (f"| {k} | `", "` |\n"),
        "## Staging credentials\n\n| name | value |\n| --- | --- |\n",
        "\nRotate after the demo.\n",
    ),
    "ruby_yaml_erb": _kv_lines(
        lambda k, v: (f"{k}: ", "\n"), "# config/credentials.yml (decrypted)\n", ""
    ),
    "go_const": _kv_lines(
        lambda k, v: (f'\t{k.title().replace("_", "")} = "', '"\n'),
        "package config\n\nconst (\n",
        ")\n",
    ),
    "java_source": _kv_lines(
        lambda k, v: (f'    private static final String {_up(k)} = "', '";\n'),
        "public final class Keys {\n",
        "}\n",
    ),
    "jupyter_cell": _kv_lines(
        lambda k, v: (f"{k} = '", "'\n"),
        '{"cell_type": "code", "source": "import pandas as pd"}\n# In [3]:\n',
        "client = connect()\n",
    ),
    "powershell": _kv_lines(
        lambda k, v: (f'$env:{_up(k)} = "', '"\n'), "# setup.ps1\n", "dotnet run --project Api\n"
    ),
    "hcl_vault": _kv_lines(
        lambda k, v: (f'  {k} = "', '"\n'),
        'resource "vault_generic_secret" "app" {\n  path = "secret/app"\n  data_json = jsonencode({\n',
        "  })\n}\n",
    ),
    "email_body": _kv_lines(
        lambda k, v: (f"{k.replace('_', ' ').capitalize()}: ", "\n"),
        "Subject: Your account details\n\nHi there,\n\nAs requested, here are the details we have on file.\n\n",
        "\nBest regards,\nSupport\n",
    ),
    "crm_export_json": _kv_lines(
        lambda k, v: (f'    "{k}": "', '",\n'),
        '{\n  "record": {\n    "id": "cus_82731",\n',
        '    "tier": "gold"\n  }\n}\n',
    ),
}

_COUNTER = [0]


def rng_line() -> str:
    _COUNTER[0] += 1
    return f"{500 + _COUNTER[0] % 400}  "


def rng_id() -> str:
    _COUNTER[0] += 1
    return str(1000 + _COUNTER[0])


# ---------- containers with their own shapes ----------


def _db_url(rng: random.Random) -> _Doc:
    pw = Value("db_url_password", "secret", "", _password(rng, url_safe=True))
    scheme, port = rng.choice(
        [("postgresql", 5432), ("mysql", 3306), ("mongodb+srv", 0), ("redis", 6379), ("amqp", 5672)]
    )
    user = rng.choice(["app", "svc_billing", "admin", "etl"])
    host = rng.choice(
        [
            "db.prod.internal",
            "cluster0.x7hf2.mongodb.net",
            "pg-primary.acme-corp.net",
            "mq.eu.acme-corp.net",
        ]
    )
    doc = _Doc().add(
        rng.choice(["DATABASE_URL=", "sqlalchemy.url = ", "  uri: ", 'conn = create_engine("'])
    )
    doc.add(f"{scheme}://{user}:").put(pw).add(
        f"@{host}" + (f":{port}" if port else "") + "/orders"
    )
    return doc.add("\n")


def _url_userinfo(rng: random.Random) -> _Doc:
    pw = Value("url_userinfo", "secret", "", _password(rng, url_safe=True))
    doc = _Doc().add(
        rng.choice(["$ git clone ", "pip install --index-url ", "curl -fsSL ", "proxy = "])
    )
    return (
        doc.add(f"https://{rng.choice(['deploy', 'ci-bot', 'jenkins'])}:")
        .put(pw)
        .add(
            f"@{rng.choice(['git.acme-corp.net/team/app.git', 'pypi.acme-corp.net/simple/', 'artifacts.acme-corp.net/repo/'])}\n"
        )
    )


def _http_headers(rng: random.Random) -> _Doc:
    style = rng.randrange(4)
    doc = _Doc().add(
        "> POST /v2/orders HTTP/1.1\n> Host: api.partner-payments.com\n> User-Agent: curl/8.4.0\n"
    )
    if style == 0:
        v = Value("bearer_header", "secret", "", _rs(rng, URLSAFE, rng.randint(32, 64)))
        doc.add("> Authorization: Bearer ").put(v)
    elif style == 1:
        creds = base64.b64encode(f"{rng.choice(FIRST)}:{_password(rng)}".encode()).decode()
        doc.add("> Authorization: Basic ").put(Value("basic_header", "secret", "", creds))
    elif style == 2:
        doc.add("> X-API-Key: ").put(
            Value("x_api_key", "secret", "", _rs(rng, ALNUM, rng.randint(32, 48)))
        )
    else:
        doc.add("> X-Auth-Token: ").put(Value("token_header", "secret", "", _rs(rng, HEX, 40)))
    return doc.add("\n> Content-Type: application/json\n>\n< HTTP/1.1 201 Created\n")


def _curl(rng: random.Random) -> _Doc:
    v = _secret(
        rng, rng.choice(["openai", "anthropic", "stripe_secret", "sendgrid", "github_classic"])
    )
    doc = _Doc().add(
        "curl https://api.example-vendor.io/v1/messages \\\n  -H 'Content-Type: application/json' \\\n"
    )
    hdr = rng.choice(["Authorization: Bearer ", "x-api-key: ", "Authorization: token "])
    return doc.add(f"  -H '{hdr}").put(v).add('\' \\\n  -d \'{"model": "m-1"}\'\n')


def _pem_file(rng: random.Random) -> _Doc:
    kind, block = _private_block(rng)
    doc = _Doc().add(
        rng.choice(
            [
                "$ cat ~/.ssh/deploy_key\n",
                "# key.pem\n",
                "Here's the key for the bastion:\n\n```\n",
                "",
            ]
        )
    )
    doc.put(Value(kind, "secret", "", block))
    return doc.add("\n" + rng.choice(["", "```\n", "$ chmod 600 key.pem\n"]))


def _pem_in_yaml(rng: random.Random) -> _Doc:
    kind, block = _private_block(rng)
    indented = "\n".join("    " + ln if ln else "" for ln in block.split("\n"))
    doc = _Doc().add("tls:\n  cert_file: /etc/ssl/app.crt\n  private_key: |\n")
    doc.add("    ").put(Value(kind, "secret", "", indented[4:]))
    return doc.add("\n")


def _gcp_sa(rng: random.Random) -> _Doc:
    proj = f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-{rng.randint(100000, 999999)}"
    body = _pem_body(rng, 25).replace("\n", "\\n")
    key = f"-----BEGIN PRIVATE KEY-----\\n{body}\\n-----END PRIVATE KEY-----\\n"
    doc = _Doc().add('{\n  "type": "service_account",\n')
    doc.add(
        f'  "project_id": "{proj}",\n  "private_key_id": "{_rs(rng, HEX, 40)}",\n  "private_key": "'
    )
    doc.put(Value("gcp_service_account_key", "secret", "", key))
    doc.add(
        f'",\n  "client_email": "deployer@{proj}.iam.gserviceaccount.com",\n  "client_id": "{rng.randint(10**20, 10**21)}",\n'
    )
    return doc.add(
        '  "auth_uri": "https://accounts.google.com/o/oauth2/auth",\n  "token_uri": "https://oauth2.googleapis.com/token"\n}\n'
    )


def _azure(rng: random.Random) -> _Doc:
    acct = f"{rng.choice(WORDS)}store{rng.randint(1, 99)}"
    key = _rs(rng, B64, 86) + "=="
    doc = _Doc().add(
        rng.choice(
            ['"AzureWebJobsStorage": "', "AZURE_STORAGE_CONNECTION_STRING=", "  connectionString: "]
        )
    )
    doc.add(f"DefaultEndpointsProtocol=https;AccountName={acct};AccountKey=")
    doc.put(Value("azure_storage_key", "secret", "", key))
    return doc.add(";EndpointSuffix=core.windows.net\n")


def _aws_credentials(rng: random.Random) -> _Doc:
    kid, sec = _secret(rng, "aws_access_key_id"), _secret(rng, "aws_secret_access_key")
    doc = _Doc().add("[default]\nregion = us-west-2\naws_access_key_id = ").put(kid)
    return (
        doc.add("\naws_secret_access_key = ")
        .put(sec)
        .add("\n\n[profile readonly]\nrole_arn = arn:aws:iam::123456789012:role/ReadOnly\n")
    )


def _twilio(rng: random.Random) -> _Doc:
    tok = _secret(rng, "twilio_auth_token")
    key = _secret(rng, "twilio_api_key")
    doc = (
        _Doc()
        .add(
            f"from twilio.rest import Client\n\naccount_sid = 'AC{_rs(rng, HEX, 32)}'\nauth_token = '"
        )
        .put(tok)
    )
    return doc.add("'\napi_key = '").put(key).add("'\nclient = Client(account_sid, auth_token)\n")


def _commit_msg(rng: random.Random) -> _Doc:
    v = _secret(rng)
    doc = _Doc().add(
        f"commit {_rs(rng, HEX, 40)}\nAuthor: CI Bot <ci@acme-corp.net>\n\n    temp: hardcode {v.label} until vault is back\n\n"
    )
    return doc.add(f'-    token = os.environ["{_up(v.label)}"]\n+    token = "').put(v).add('"\n')


def _pii_prose(rng: random.Random) -> _Doc:
    first, last = _name(rng)
    e, p = _pii(rng, "email"), _pii(rng, rng.choice(["phone_us", "phone_intl"]))
    doc = _Doc().add(
        f"Support ticket #{rng.randint(10000, 99999)}\nCustomer {first} {last} says the invoice export fails. Reach them at "
    )
    doc.put(e).add(" or call ").put(p).add(rng.choice([" after 3pm.\n", ".\n", " (mobile).\n"]))
    if rng.random() < 0.5:
        a = _pii(rng, "address")
        doc.add("Shipping to ").put(a).add(".\n")
    return doc


def _pii_signup_log(rng: random.Random) -> _Doc:
    e, ip = _pii(rng, "email"), _pii(rng, rng.choice(["ipv4", "ipv6"]))
    doc = (
        _Doc()
        .add(f'{{"ts":"2026-10-02T11:0{rng.randint(0, 9)}:31Z","event":"signup","email":"')
        .put(e)
    )
    return doc.add('","ip":"').put(ip).add(f'","ua":"Mozilla/5.0","req":"{_rs(rng, HEX, 16)}"}}\n')


def _nginx_log(rng: random.Random) -> _Doc:
    doc = _Doc()
    for _ in range(rng.randint(1, 3)):
        ip = _pii(rng, rng.choice(["ipv4", "ipv4", "ipv6"]))
        doc.put(ip).add(
            f' - - [04/Nov/2026:10:{rng.randint(10, 59)}:02 +0000] "GET /api/items?page={rng.randint(1, 9)} HTTP/1.1" 200 {rng.randint(200, 9000)} "-" "okhttp/4.12"\n'
        )
    return doc


def _payment_debug(rng: random.Random) -> _Doc:
    c = _pii(rng, "card")
    doc = _Doc().add("payment failed: ").add(rng.choice(["card=", "PAN ", "cc_number: "])).put(c)
    return doc.add(
        f" exp={rng.randint(1, 12):02d}/{rng.randint(27, 31)} amount=129.00 currency=USD reason=do_not_honor\n"
    )


def _sepa(rng: random.Random) -> _Doc:
    first, last = _name(rng)
    i = _pii(rng, "iban")
    doc = _Doc().add(f"Please wire the refund to {first} {last}, IBAN ").put(i)
    return doc.add(
        f", BIC {rng.choice(['DEUTDEFF', 'INGBNL2A', 'BNPAFRPP'])}. Reference INV-{rng.randint(1000, 9999)}.\n"
    )


def _hr_csv(rng: random.Random) -> _Doc:
    doc = _Doc().add("employee_id,full_name,ssn,dob,phone,email\n")
    for _ in range(rng.randint(1, 3)):
        f, last = _name(rng)
        s, d, p, e = _pii(rng, "ssn"), _pii(rng, "dob"), _pii(rng, "phone_us"), _pii(rng, "email")
        doc.add(f"E{rng.randint(1000, 9999)},{f} {last},").put(s).add(
            ',"' if "," in d.text else ","
        ).put(d).add('",' if "," in d.text else ",").put(p).add(",").put(e).add("\n")
    return doc


def _sql_customers(rng: random.Random) -> _Doc:
    f, last = _name(rng)
    e, p, a = _pii(rng, "email"), _pii(rng, "phone_us"), _pii(rng, "address")
    doc = (
        _Doc()
        .add(
            f"INSERT INTO customers (first_name, last_name, email, phone, address) VALUES ('{f}', '{last}', '"
        )
        .put(e)
    )
    return doc.add("', '").put(p).add("', '").put(a).add("');\n")


def _dob_form(rng: random.Random) -> _Doc:
    d = _pii(rng, "dob")
    f, last = _name(rng)
    lead = rng.choice(
        [
            f"{f} {last}, born ",
            "Date of birth: ",
            "DOB ",
            f"Applicant {f} {last} (born on ",
            "birthday: ",
        ]
    )
    doc = _Doc().add("KYC review\n").add(lead).put(d)
    return doc.add(")\n" if "(" in lead else "\n").add(
        f"Nationality: {rng.choice(['DE', 'US', 'FR'])}\n"
    )


def _ssn_chat(rng: random.Random) -> _Doc:
    s = _pii(rng, "ssn")
    return (
        _Doc()
        .add("hey, for the payroll form I need your social, can you send it here?\n")
        .add("sure, it's ")
        .put(s)
        .add(" — please delete after\n")
    )


def _address_letter(rng: random.Random) -> _Doc:
    f, last = _name(rng)
    street = Value("address", "pii", "", _street(rng))
    city, st, z = rng.choice(CITIES)
    return (
        _Doc()
        .add(f"{f} {last}\n")
        .put(street)
        .add(f"\n{city}, {st} {z}\n\nDear {f},\n\nYour replacement device ships today.\n")
    )


def _intl_contact(rng: random.Random) -> _Doc:
    p = _pii(rng, "phone_intl")
    e = _pii(rng, "email")
    return (
        _Doc()
        .add("vendor contacts (EMEA/APAC)\n- primary: ")
        .put(e)
        .add("\n- whatsapp: ")
        .put(p)
        .add("\n")
    )


# ---------- PHI ----------


def _clinic_note(rng: random.Random) -> _Doc:
    f, last = _name(rng)
    nm = Value("patient_name", "phi", "", f"{f} {last}")
    mrn = Value("mrn", "phi", "", _mrn(rng))
    dob = Value("dob_clinical", "phi", "", _date(rng))
    doc = (
        _Doc()
        .add("PROGRESS NOTE\nPatient: ")
        .put(nm)
        .add("    MRN: ")
        .put(mrn)
        .add("\nDOB: ")
        .put(dob)
    )
    cond = rng.choice(
        [
            "type 2 diabetes mellitus",
            "hypertension",
            "major depressive disorder",
            "COPD exacerbation",
            "atrial fibrillation",
        ]
    )
    return doc.add(
        f"\n\nS: Pt reports fatigue x2 weeks. Hx of {cond}.\nO: BP 148/92, HR 88, A1c 8.1%.\nA/P: Continue metformin 1000 mg BID; f/u 4 weeks.\n"
    )


def _discharge(rng: random.Random) -> _Doc:
    f, last = _name(rng)
    nm = Value("patient_name", "phi", "", f"{last.upper()}, {f.upper()}")
    mrn = Value("mrn", "phi", "", _mrn(rng))
    dob = Value("dob_clinical", "phi", "", _date(rng))
    doc = (
        _Doc()
        .add("DISCHARGE SUMMARY\n\nName: ")
        .put(nm)
        .add("\nMedical Record #: ")
        .put(mrn)
        .add("\nDate of Birth: ")
        .put(dob)
    )
    return doc.add(
        "\nAdmit: 2026-09-12   Discharge: 2026-09-16\nDiagnosis: Community-acquired pneumonia (J18.9)\nHospital course: treated with ceftriaxone and azithromycin; afebrile by day 3.\n"
    )


def _hl7(rng: random.Random) -> _Doc:
    f, last = _name(rng)
    nm = Value("patient_name", "phi", "", f"{last.upper()}^{f.upper()}^{rng.choice('ABCDEJKLM')}")
    mrn = Value("mrn", "phi", "", _rs(rng, string.digits, rng.choice([7, 8, 9])))
    dob = Value(
        "dob_clinical",
        "phi",
        "",
        f"{rng.randint(1940, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}",
    )
    doc = _Doc().add(
        f"MSH|^~\\&|EPIC|NORTHSIDE|LAB|NORTHSIDE|20261104093000||ADT^A01|MSG{rng.randint(10000, 99999)}|P|2.5.1\r"
    )
    doc.add("EVN|A01|20261104093000\rPID|1||").put(mrn).add("^^^NORTHSIDE^MR||").put(nm).add(
        "||"
    ).put(dob)
    doc.add(
        f"|{rng.choice('MF')}|||{rng.randint(10, 999)} {rng.choice(STREETS)}^^Austin^TX^78745||\r"
    )
    return doc.add("PV1|1|I|4W^412^B|||||||MED\rDG1|1||I10^Essential hypertension^I10|\r")


def _fhir(rng: random.Random) -> _Doc:
    f, last = _name(rng)
    fam = Value("patient_name", "phi", "", last)
    giv = Value("patient_name", "phi", "", f)
    mrn = Value("mrn", "phi", "", _rs(rng, string.digits, 8))
    dob = Value(
        "dob_clinical",
        "phi",
        "",
        f"{rng.randint(1940, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
    )
    doc = (
        _Doc()
        .add('{\n  "resourceType": "Patient",\n  "id": "pat-')
        .add(_rs(rng, HEX, 8))
        .add(
            '",\n  "identifier": [{"type": {"coding": [{"code": "MR"}]}, "system": "urn:oid:1.2.36.146.595.217.0.1", "value": "'
        )
    )
    doc.put(mrn).add('"}],\n  "name": [{"use": "official", "family": "').put(fam).add(
        '", "given": ["'
    ).put(giv)
    doc.add('"]}],\n  "gender": "female",\n  "birthDate": "').put(dob)
    return doc.add('"\n}\n')


def _claims_csv(rng: random.Random) -> _Doc:
    doc = _Doc().add("claim_id,member_name,member_dob,icd10,cpt,billed\n")
    for _ in range(rng.randint(1, 3)):
        f, last = _name(rng)
        nm = Value("patient_name", "phi", "", f"{f} {last}")
        dob = Value(
            "dob_clinical",
            "phi",
            "",
            f"{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/{rng.randint(1940, 2005)}",
        )
        doc.add(f"CLM{rng.randint(100000, 999999)},").put(nm).add(",").put(dob)
        doc.add(
            f",{rng.choice(['E11.9', 'I10', 'F32.1', 'M54.5'])},{rng.choice(['99213', '99214', '80053'])},{rng.randint(80, 900)}.00\n"
        )
    return doc


def _x12(rng: random.Random) -> _Doc:
    f, last = _name(rng)
    lastv = Value("patient_name", "phi", "", last.upper())
    firstv = Value("patient_name", "phi", "", f.upper())
    dob = Value(
        "dob_clinical",
        "phi",
        "",
        f"{rng.randint(1940, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}",
    )
    doc = (
        _Doc()
        .add("ST*837*0001*005010X222A1~\nBHT*0019*00*0123*20261104*1023*CH~\nNM1*IL*1*")
        .put(lastv)
        .add("*")
        .put(firstv)
    )
    doc.add(f"****MI*W{rng.randint(10**8, 10**9)}~\nDMG*D8*").put(dob).add(
        f"*{rng.choice('MF')}~\n"
    )
    return doc.add("CLM*A37YH556*500***11:B:1*Y*A*Y*I~\nHI*ABK:E119~\n")


def _sql_patients(rng: random.Random) -> _Doc:
    f, last = _name(rng)
    nm = Value("patient_name", "phi", "", f"{f} {last}")
    mrn = Value("mrn", "phi", "", _mrn(rng))
    doc = _Doc().add(
        "-- repro for bug 4411: duplicate encounter rows\nINSERT INTO encounters (mrn, patient_name, diagnosis, admitted) VALUES ('"
    )
    return (
        doc.put(mrn)
        .add("', '")
        .put(nm)
        .add(f"', '{rng.choice(['Acute appendicitis', 'Sepsis', 'NSTEMI'])}', '2026-08-03');\n")
    )


def _phi_chat(rng: random.Random) -> _Doc:
    f, last = _name(rng)
    nm = Value("patient_name", "phi", "", f"{f} {last}")
    mrn = Value("mrn", "phi", "", _mrn(rng))
    doc = (
        _Doc()
        .add("[nurse-station] can someone check the insulin order for ")
        .put(nm)
        .add(" (MRN ")
        .put(mrn)
    )
    return doc.add(")? glucose was 312 this morning and the sliding scale didn't fire\n")


def _phi_traceback(rng: random.Random) -> _Doc:
    f, last = _name(rng)
    nm = Value("patient_name", "phi", "", f"{f} {last}")
    mrn = Value("mrn", "phi", "", _mrn(rng))
    dob = Value(
        "dob_clinical",
        "phi",
        "",
        f"{rng.randint(1940, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
    )
    doc = (
        _Doc()
        .add(
            'Traceback (most recent call last):\n  File "ehr/export.py", line 212, in write_ccd\n    render(patient)\nValueError: missing allergy list for Patient(name=\''
        )
        .put(nm)
    )
    return (
        doc.add("', mrn='")
        .put(mrn)
        .add("', dob='")
        .put(dob)
        .add("', dx='C50.911 malignant neoplasm of breast')\n")
    )


def _referral(rng: random.Random) -> _Doc:
    f, last = _name(rng)
    nm = Value("patient_name", "phi", "", f"{f} {last}")
    dob = Value("dob_clinical", "phi", "", _date(rng))
    doc = _Doc().add("Dear Dr. Abrams,\n\nI am referring ").put(nm).add(" (DOB ").put(dob)
    return doc.add(
        ") for evaluation of a suspicious pigmented lesion on the left shoulder; biopsy showed atypia.\n\nSincerely,\nDr. K. Patel\n"
    )


def _lab_report(rng: random.Random) -> _Doc:
    f, last = _name(rng)
    nm = Value("patient_name", "phi", "", f"{last}, {f}")
    mrn = Value("mrn", "phi", "", _mrn(rng))
    doc = _Doc().add("LAB RESULTS\nPatient Name: ").put(nm).add("\nMRN: ").put(mrn)
    return doc.add(
        "\nCollected: 2026-10-30 07:45\n  HbA1c      9.2 %   (H)\n  LDL        162 mg/dL (H)\n  HIV-1/2 Ab Nonreactive\n"
    )


def _json_escaped(rng: random.Random) -> _Doc:
    v = _secret(
        rng,
        rng.choice(["keyword_password", "github_classic", "stripe_secret", "slack_bot", "openai"]),
    )
    e = _pii(rng, "email")
    doc = _Doc().add('{"path": "deploy/.env", "content": "APP=web\\nLOG_LEVEL=info\\n')
    doc.add(f'{_up(v.label)}=\\"').put(v).add('\\"\\nOWNER_EMAIL=').put(e)
    return doc.add('\\n", "encoding": "utf-8"}\n')


def _url_encoded(rng: random.Random) -> _Doc:
    e = _pii(rng, "email")
    enc_e = e.text.replace("@", "%40")
    pw = Value("url_encoded_password", "secret", "", _password(rng))
    enc_pw = "".join(c if c.isalnum() or c in "-_.~" else f"%{ord(c):02X}" for c in pw.text)
    doc = _Doc().add(
        '10.1.4.7 - - [04/Nov/2026:08:12:55 +0000] "POST /login?next=%2Fhome HTTP/1.1" 302\nform body: username='
    )
    doc.put(e, enc_e).add("&password=").put(pw, enc_pw)
    return doc.add("&remember=1\n")


def _query_key(rng: random.Random) -> _Doc:
    v = _secret(rng, rng.choice(["google_api_key", "keyword_password", "sendgrid", "huggingface"]))
    param = (
        "key" if v.kind == "google_api_key" else rng.choice(["api_key", "access_token", "token"])
    )
    doc = _Doc().add(
        f"WARNING:urllib3:Retrying GET https://maps.partner-geo.com/api/geocode/json?address=main+st&{param}="
    )
    return doc.put(v).add("&region=us (attempt 2/5)\n")


def _chat_sentence(rng: random.Random) -> _Doc:
    pw = Value("keyword_password", "secret", "", _password(rng))
    lead = rng.choice(
        [
            "the wifi password is ",
            "new root pw: ",
            "I reset it, password is now ",
            "use this passphrase -> ",
            "pwd for the vpn is ",
        ]
    )
    doc = _Doc().add("[09:58] ana: can't get into the staging box\n[09:59] ben: ").add(lead).put(pw)
    return doc.add(rng.choice(["\n", " (don't share)\n", ", change it after\n"]))


def _email_signature(rng: random.Random) -> _Doc:
    f, last = _name(rng)
    p, e = _pii(rng, rng.choice(["phone_us", "phone_intl"])), _pii(rng, "email")
    doc = (
        _Doc()
        .add(
            f"Thanks, will look into it today.\n\n--\n{f} {last}\nSenior Engineer, Brightlane\nM: "
        )
        .put(p)
    )
    return doc.add("\nE: ").put(e).add("\n")


def _firewall(rng: random.Random) -> _Doc:
    a, b = _pii(rng, "ipv4"), _pii(rng, "ipv6")
    doc = (
        _Doc()
        .add("# allow the customer's office\niptables -A INPUT -s ")
        .put(a)
        .add(" -p tcp --dport 22 -j ACCEPT\nip6tables -A INPUT -s ")
        .put(b)
    )
    return doc.add(" -p tcp --dport 22 -j ACCEPT\n")


def _profile_yaml(rng: random.Random) -> _Doc:
    d, a = _pii(rng, "dob"), _pii(rng, "address")
    f, last = _name(rng)
    doc = (
        _Doc()
        .add(f'user:\n  name: {f} {last}\n  birthdate: "')
        .put(d)
        .add('"\n  address: "')
        .put(a)
    )
    return doc.add('"\n  newsletter: true\n')


def _radiology(rng: random.Random) -> _Doc:
    f, last = _name(rng)
    nm = Value("patient_name", "phi", "", f"{f} {last}")
    mrn = Value("mrn", "phi", "", _mrn(rng))
    doc = _Doc().add("CT ABDOMEN/PELVIS W CONTRAST\nPt: ").put(nm).add(" | Acct/MRN ").put(mrn)
    return doc.add(
        "\nIMPRESSION: 2.3 cm hypodense lesion in the right hepatic lobe, likely hemangioma. Recommend MRI.\n"
    )


def _rx(rng: random.Random) -> _Doc:
    f, last = _name(rng)
    nm = Value("patient_name", "phi", "", f"{f} {last}")
    dob = Value("dob_clinical", "phi", "", _date(rng))
    doc = _Doc().add("Rx\nPatient name: ").put(nm).add("\nD.O.B.: ").put(dob)
    return doc.add(
        "\nSertraline 50 mg tab, 1 PO daily, #30, refills 2\nDx: F41.1 generalized anxiety disorder\n"
    )


def _appointment_sms(rng: random.Random) -> _Doc:
    f, last = _name(rng)
    nm = Value("patient_name", "phi", "", f"{f} {last}")
    p = _pii(rng, "phone_us")
    doc = _Doc().add("sms_queue: to=").put(p).add(' body="Hi ').put(nm)
    return doc.add(
        ', reminder: your chemotherapy infusion at Northside Oncology is Tue 9:30am. Reply C to confirm."\n'
    )


def _admission_json(rng: random.Random) -> _Doc:
    f, last = _name(rng)
    nm = Value("patient_name", "phi", "", f"{f} {last}")
    mrn = Value("mrn", "phi", "", _mrn(rng))
    dob = Value(
        "dob_clinical",
        "phi",
        "",
        f"{rng.randint(1940, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
    )
    doc = (
        _Doc()
        .add('{"event": "admission", "patient": {"full_name": "')
        .put(nm)
        .add('", "mrn": "')
        .put(mrn)
        .add('", "dob": "')
        .put(dob)
    )
    return doc.add('"}, "ward": "ICU-2", "reason": "diabetic ketoacidosis"}\n')


def _netrc(rng: random.Random) -> _Doc:
    pw = Value("keyword_password", "secret", "", _password(rng))
    doc = (
        _Doc().add("# ~/.netrc\nmachine git.acme-corp.net\n  login ci-runner\n  password ").put(pw)
    )
    return doc.add("\nmachine files.acme-corp.net login ro\n")


def _npmrc(rng: random.Random) -> _Doc:
    v = _secret(rng, "npm")
    return (
        _Doc()
        .add("registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken=")
        .put(v)
        .add("\nsave-exact=true\n")
    )


def _jdbc(rng: random.Random) -> _Doc:
    pw = Value("db_url_password", "secret", "", _password(rng, url_safe=True))
    if rng.random() < 0.5:
        doc = _Doc().add(
            "spring.datasource.url=jdbc:postgresql://pg.acme-corp.net:5432/app?user=app&password="
        )
        return doc.put(pw).add("&sslmode=require\n")
    doc = _Doc().add(
        '"ConnectionStrings": { "Default": "Server=tcp:sql-prod.acme-corp.net,1433;Database=Orders;User ID=app;Password='
    )
    return doc.put(pw).add(';Encrypt=True;" }\n')


def _python_kwargs(rng: random.Random) -> _Doc:
    pw = Value("keyword_password", "secret", "", _password(rng))
    doc = (
        _Doc()
        .add(
            "conn = psycopg2.connect(\n    host='db.acme-corp.net', user='report',\n    password='"
        )
        .put(pw)
    )
    return doc.add("', dbname='analytics')\n")


def _mysql_cli(rng: random.Random) -> _Doc:
    pw = Value("keyword_password", "secret", "", _password(rng, url_safe=True))
    doc = _Doc().add("$ mysqldump -h db1.acme-corp.net -u backup --password=").put(pw)
    return doc.add(
        " --single-transaction shop > shop.sql\nmysqldump: [Warning] Using a password on the command line interface can be insecure.\n"
    )


def _docker_auth(rng: random.Random) -> _Doc:
    auth = base64.b64encode(f"robot$ci:{_password(rng)}".encode()).decode()
    v = Value("docker_auth", "secret", "", auth)
    return (
        _Doc()
        .add('{\n  "auths": {\n    "registry.acme-corp.net": {\n      "auth": "')
        .put(v)
        .add('"\n    }\n  }\n}\n')
    )


def _kyc_prose(rng: random.Random) -> _Doc:
    f, last = _name(rng)
    d, c = _pii(rng, "dob"), _pii(rng, "card")
    doc = _Doc().add(f"Chargeback dispute: cardholder {f} {last} (date of birth ").put(d)
    return doc.add(") says card ").put(c).add(" was never used at this merchant.\n")


def _iban_csv(rng: random.Random) -> _Doc:
    doc = _Doc().add("payee;iban;amount;purpose\n")
    for _ in range(rng.randint(1, 3)):
        f, last = _name(rng)
        doc.add(f"{f} {last};").put(_pii(rng, "iban")).add(f";{rng.randint(10, 999)},00;Miete\n")
    return doc


def _handoff(rng: random.Random) -> _Doc:
    f, last = _name(rng)
    nm = Value("patient_name", "phi", "", f"{f} {last}")
    age = rng.randint(24, 91)
    doc = _Doc().add("Shift handoff 19:00\nBed 12: ").put(nm)
    return doc.add(
        f", {age}{rng.choice('MF')}, s/p lap chole POD1, pain controlled on oxycodone 5 mg q4h PRN, NPO after midnight.\n"
    )


def _hl7_oru(rng: random.Random) -> _Doc:
    f, last = _name(rng)
    nm = Value("patient_name", "phi", "", f"{last.upper()}^{f.upper()}")
    mrn = Value("mrn", "phi", "", _rs(rng, string.digits, 8))
    dob = Value(
        "dob_clinical",
        "phi",
        "",
        f"{rng.randint(1940, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}",
    )
    doc = (
        _Doc()
        .add("MSH|^~\\&|LIS|MERCY|EHR|MERCY|202611040815||ORU^R01|77123|P|2.3\nPID|||")
        .put(mrn)
        .add("||")
        .put(nm)
        .add("||")
        .put(dob)
    )
    return doc.add("|M\nOBX|1|NM|2345-7^GLUCOSE^LN||212|mg/dL|70-99|H|||F\n")


def _psych_note(rng: random.Random) -> _Doc:
    f, last = _name(rng)
    nm = Value("patient_name", "phi", "", f"{f} {last}")
    doc = _Doc().add("Behavioral health intake. ").put(nm)
    return doc.add(
        " is a 34-year-old presenting with panic attacks and insomnia; PHQ-9 score 17. Started escitalopram 10 mg.\n"
    )


def _pgpass(rng: random.Random) -> _Doc:
    pw = Value("keyword_password", "secret", "", _password(rng, url_safe=True))
    return _Doc().add("# ~/.pgpass\npg-primary.acme-corp.net:5432:orders:etl:").put(pw).add("\n")


def _telegram_url(rng: random.Random) -> _Doc:
    v = _secret(rng, "telegram_bot")
    doc = _Doc().add('requests.post(\n    "https://api.telegram.org/bot').put(v)
    return doc.add('/sendMessage",\n    json={"chat_id": CHAT_ID, "text": msg},\n)\n')


def _webhook_post(rng: random.Random) -> _Doc:
    v = _secret(rng, "slack_webhook")
    return (
        _Doc()
        .add("ALERT_HOOK = '")
        .put(v)
        .add(
            "'\n\ndef notify(msg):\n    requests.post(ALERT_HOOK, json={'text': msg}, timeout=5)\n"
        )
    )


def _bearer_jwt(rng: random.Random) -> _Doc:
    v = _secret(rng, "jwt")
    doc = _Doc().add(
        "DEBUG http.client: send: b'GET /api/me HTTP/1.1\\r\\nHost: api.acme-corp.net\\r\\nAuthorization: Bearer "
    )
    return doc.put(v).add("\\r\\n\\r\\n'\n")


def _ansible(rng: random.Random) -> _Doc:
    pw = Value("keyword_password", "secret", "", _password(rng))
    doc = _Doc().add("# group_vars/prod.yml\nansible_user: deploy\nmysql_root_password: ").put(pw)
    return doc.add("\nnginx_workers: 4\n")


def _cda(rng: random.Random) -> _Doc:
    f, last = _name(rng)
    giv, fam = Value("patient_name", "phi", "", f), Value("patient_name", "phi", "", last)
    dob = Value(
        "dob_clinical",
        "phi",
        "",
        f"{rng.randint(1940, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}",
    )
    doc = _Doc().add('<recordTarget><patientRole><id root="2.16.840.1.113883.19.5" extension="')
    doc.put(Value("mrn", "phi", "", _rs(rng, string.digits, 9))).add(
        '"/>\n  <patient><name><given>'
    ).put(giv).add("</given><family>").put(fam)
    return (
        doc.add('</family></name>\n  <birthTime value="')
        .put(dob)
        .add('"/></patient></patientRole></recordTarget>\n')
    )


def _dicom(rng: random.Random) -> _Doc:
    f, last = _name(rng)
    nm = Value("patient_name", "phi", "", f"{last.upper()}^{f.upper()}")
    pid = Value("mrn", "phi", "", _rs(rng, string.digits, 8))
    dob = Value(
        "dob_clinical",
        "phi",
        "",
        f"{rng.randint(1940, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}",
    )
    doc = (
        _Doc()
        .add(
            "$ dcmdump IMG0001.dcm\n(0008,0060) CS [MR]                                     #   2, 1 Modality\n(0010,0010) PN ["
        )
        .put(nm)
    )
    doc.add("]  # PatientName\n(0010,0020) LO [").put(pid).add(
        "]  # PatientID\n(0010,0030) DA ["
    ).put(dob)
    return doc.add(
        "]  # PatientBirthDate\n(0008,1030) LO [BRAIN W/WO CONTRAST]  # StudyDescription\n"
    )


def _triage(rng: random.Random) -> _Doc:
    f, last = _name(rng)
    nm = Value("patient_name", "phi", "", f"{f} {last}")
    dob = Value("dob_clinical", "phi", "", _date(rng))
    doc = _Doc().add("ED TRIAGE\nName: ").put(nm).add("\nDOB: ").put(dob)
    return doc.add(
        "\nChief complaint: chest pain radiating to left arm x 1 hr\nESI level: 2\nAllergies: penicillin\n"
    )


def _claim_json(rng: random.Random) -> _Doc:
    f, last = _name(rng)
    nm = Value("patient_name", "phi", "", f"{f} {last}")
    dob = Value(
        "dob_clinical",
        "phi",
        "",
        f"{rng.randint(1940, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
    )
    mid = Value("mrn", "phi", "", _mrn(rng))
    doc = (
        _Doc()
        .add('{"claim": {"id": "C-')
        .add(str(rng.randint(10**6, 10**7)))
        .add('", "patient": {"name": "')
        .put(nm)
    )
    doc.add('", "birth_date": "').put(dob).add('", "mrn": "').put(mid)
    return doc.add(
        '"}, "diagnosis_codes": ["F33.1", "Z79.899"], "procedure": "90837", "charge": 180.0}}\n'
    )


SPECIAL: dict[str, Callable[[random.Random], _Doc]] = {
    "db_url": _db_url,
    "url_userinfo": _url_userinfo,
    "http_headers": _http_headers,
    "curl_command": _curl,
    "pem_file": _pem_file,
    "pem_in_yaml": _pem_in_yaml,
    "gcp_service_account": _gcp_sa,
    "azure_connection": _azure,
    "aws_credentials_file": _aws_credentials,
    "twilio_python": _twilio,
    "commit_diff": _commit_msg,
    "support_ticket": _pii_prose,
    "signup_json_log": _pii_signup_log,
    "nginx_access_log": _nginx_log,
    "payment_debug": _payment_debug,
    "sepa_request": _sepa,
    "hr_csv": _hr_csv,
    "sql_customers": _sql_customers,
    "kyc_dob": _dob_form,
    "ssn_chat": _ssn_chat,
    "postal_letter": _address_letter,
    "intl_contacts": _intl_contact,
    "clinic_note": _clinic_note,
    "discharge_summary": _discharge,
    "hl7_adt": _hl7,
    "fhir_patient": _fhir,
    "claims_csv": _claims_csv,
    "x12_837": _x12,
    "sql_encounters": _sql_patients,
    "nurse_chat": _phi_chat,
    "ehr_traceback": _phi_traceback,
    "referral_letter": _referral,
    "lab_report": _lab_report,
    "json_escaped_file": _json_escaped,
    "url_encoded_form": _url_encoded,
    "query_string_key": _query_key,
    "chat_password_sentence": _chat_sentence,
    "email_signature": _email_signature,
    "firewall_rules": _firewall,
    "profile_yaml": _profile_yaml,
    "radiology_report": _radiology,
    "prescription": _rx,
    "appointment_sms": _appointment_sms,
    "admission_event_json": _admission_json,
    "netrc": _netrc,
    "npmrc": _npmrc,
    "jdbc_or_mssql": _jdbc,
    "python_kwargs": _python_kwargs,
    "mysql_cli": _mysql_cli,
    "docker_config_auth": _docker_auth,
    "chargeback_prose": _kyc_prose,
    "iban_csv": _iban_csv,
    "nursing_handoff": _handoff,
    "hl7_oru": _hl7_oru,
    "psych_intake": _psych_note,
    "pgpass": _pgpass,
    "telegram_url": _telegram_url,
    "slack_webhook_code": _webhook_post,
    "http_debug_jwt": _bearer_jwt,
    "ansible_vars": _ansible,
    "cda_xml": _cda,
    "dicom_dump": _dicom,
    "ed_triage": _triage,
    "claim_json": _claim_json,
}

SECRET_KV = [
    "dotenv",
    "dotenv_quoted",
    "yaml_config",
    "yaml_quoted",
    "json_config",
    "python_settings",
    "python_dict",
    "js_object",
    "properties",
    "xml_config",
    "xml_elements",
    "terraform",
    "k8s_secret",
    "k8s_env",
    "ini",
    "toml",
    "docker_compose",
    "github_actions",
    "shell_history",
    "chat_message",
    "chat_colon",
    "log_line",
    "diff_added",
    "traceback_locals",
    "csv_rows",
    "sql_insert",
    "markdown_table",
    "go_const",
    "java_source",
    "jupyter_cell",
    "powershell",
    "hcl_vault",
    "ruby_yaml_erb",
]
PII_KV = [
    "json_config",
    "yaml_config",
    "email_body",
    "crm_export_json",
    "csv_rows",
    "log_line",
    "xml_elements",
    "python_dict",
    "markdown_table",
    "sql_insert",
    "chat_colon",
]


def _dirty(rng: random.Random) -> list[Packet]:
    out: list[Packet] = []
    secret_kinds = [
        *SECRET_GEN,
        "keyword_password",
        "keyword_password",
        "keyword_password",
        "twilio_auth_token",
    ]
    for i, kind in enumerate(secret_kinds * 2):
        cname = rng.choice(SECRET_KV)
        vals = [_secret(rng, kind)]
        if rng.random() < 0.3:
            vals.append(_secret(rng))
        out.append(CONTAINERS[cname](rng, vals).packet(f"secret-{cname}-{i}"))
    for i, kind in enumerate(list(PII_GEN) * 2):
        cname = rng.choice(PII_KV)
        out.append(CONTAINERS[cname](rng, [_pii(rng, kind)]).packet(f"pii-{cname}-{i}"))
    for name, fn in SPECIAL.items():
        for j in range(3):
            out.append(fn(rng).packet(f"{name}-{j}"))
    return out


# ---------- clean packets ----------


def _uuid(rng: random.Random) -> str:
    h = _rs(rng, HEX, 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{rng.choice('89ab')}{h[17:20]}-{h[20:]}"


def _clean_templates(rng: random.Random) -> dict[str, str]:
    sha = _rs(rng, HEX, 40)
    sha256 = _rs(rng, HEX, 64)
    integ = base64.b64encode(bytes(rng.randrange(256) for _ in range(64))).decode()
    ver = f"{rng.randint(1, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 20)}"
    pub = base64.b64encode(
        b"\x00\x00\x00\x07ssh-rsa" + bytes(rng.randrange(256) for _ in range(270))
    ).decode()
    cert = _pem_body(rng, 14)
    svg = base64.b64encode(b"<svg xmlns='http://www.w3.org/2000/svg'></svg>").decode()
    png = base64.b64encode(
        b"\x89PNG\r\n\x1a\n" + bytes(rng.randrange(256) for _ in range(90))
    ).decode()
    return {
        "env_placeholders": "DATABASE_URL=${DATABASE_URL}\nSTRIPE_SECRET_KEY=<your-stripe-key>\nOPENAI_API_KEY=\nPASSWORD=changeme\nAPI_TOKEN=your_token_here\nJWT_SECRET=${JWT_SECRET:?must be set}\n",
        "python_environ": 'import os\n\nAPI_KEY = os.environ["OPENAI_API_KEY"]\npassword = os.getenv("DB_PASSWORD")\nsecret = settings.CLIENT_SECRET\ntoken = request.headers.get("Authorization", "")\nif not token.startswith("Bearer "):\n    raise PermissionError("missing token")\n',
        "k8s_secret_ref": "env:\n  - name: DB_PASSWORD\n    valueFrom:\n      secretKeyRef:\n        name: db-creds\n        key: password\n  - name: API_TOKEN\n    valueFrom:\n      secretKeyRef: {name: api, key: token}\n",
        "gha_secrets": "      - run: ./publish.sh\n        env:\n          NPM_TOKEN: ${{ secrets.NPM_TOKEN }}\n          PYPI_PASSWORD: ${{ secrets.PYPI_PASSWORD }}\n          GITHUB_TOKEN: ${{ github.token }}\n",
        "terraform_vars": 'variable "db_password" {\n  type      = string\n  sensitive = true\n}\n\nresource "aws_db_instance" "main" {\n  password = var.db_password\n  username = "app"\n}\n',
        "redacted_log": f"2026-11-04T10:00:01Z INFO login ok user_id={rng.randint(1000, 9999)} password=[REDACTED] token=**** api_key=<redacted>\n2026-11-04T10:00:02Z WARN retry attempt=2 request_id={_uuid(rng)}\n",
        "aws_docs_example": "# From the AWS docs, example values only\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
        "stripe_test_cards": "def test_charge_declined(client):\n    # Stripe test cards\n    ok = '4242 4242 4242 4242'\n    declined = '4000000000000002'\n    amex = '378282246310005'\n    assert client.charge(ok, cvc='123', exp='12/34').status == 'succeeded'\n",
        "package_lock": f'{{\n  "name": "web",\n  "lockfileVersion": 3,\n  "packages": {{\n    "node_modules/react": {{\n      "version": "18.{rng.randint(0, 3)}.0",\n      "resolved": "https://registry.npmjs.org/react/-/react-18.3.1.tgz",\n      "integrity": "sha512-{integ}"\n    }}\n  }}\n}}\n',
        "dockerfile_digest": f'FROM python:3.11-slim@sha256:{sha256}\nWORKDIR /app\nCOPY pyproject.toml uv.lock ./\nRUN pip install uv && uv sync --frozen\nENV PORT=8080\nCMD ["uv", "run", "serve"]\n',
        "git_log": f"commit {sha}\nMerge: {sha[:7]} {_rs(rng, HEX, 7)}\nAuthor: Dev <dev@example.com>\nDate:   Tue Nov 3 14:02:11 2026 +0000\n\n    fix: retry on 429 (closes #{rng.randint(100, 999)})\n\n    Change-Id: I{_rs(rng, HEX, 40)}\n",
        "uuids_in_logs": "".join(
            f"2026-11-04 12:00:{k:02d} job={_uuid(rng)} trace={_rs(rng, HEX, 32)} span={_rs(rng, HEX, 16)} status=ok\n"
            for k in range(4)
        ),
        "ssh_public_key": f"# authorized_keys\nssh-rsa {pub} deploy@build-01\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{_rs(rng, B64, 43)} laptop\n",
        "certificate": f"-----BEGIN CERTIFICATE-----\n{cert}\n-----END CERTIFICATE-----\n-----BEGIN PUBLIC KEY-----\n{_pem_body(rng, 5)}\n-----END PUBLIC KEY-----\n",
        "reserved_ips": "upstream backend {\n  server 10.0.3.12:8080;\n  server 192.168.1.40:8080 backup;\n  server 172.20.0.4:8080;\n}\n# docs: 192.0.2.10, 198.51.100.7, 203.0.113.99\nlisten [::1]:80;\nlisten [2001:db8::10]:443;\n# link-local fe80::1ff:fe23:4567:890a\n",
        "example_domains": "Contact us at support@example.com or sales@example.org.\nTest accounts: alice@example.net, bob@test.example\nnoreply@localhost\n",
        "fictional_phones": "# fixtures\nPHONES = ['555-0100', '(555) 555-0123', '+1 202-555-0147', '+44 20 7946 0958']\nFAX = '1-800-555-0199'\n",
        "data_uri": f'<img alt="logo" src="data:image/png;base64,{png}" />\n<link rel="icon" href="data:image/svg+xml;base64,{svg}">\n',
        "minified_js": '!function(e,t){"object"==typeof exports?module.exports=t():e.lib=t()}(this,function(){var n="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",r=function(e){for(var t=0,o=0;o<e.length;o++)t=(t<<5)-t+e.charCodeAt(o)|0;return t>>>0};return{hash:r,alpha:n,v:"'
        + ver
        + '"}});\n',
        "checksums_file": f"{sha256}  app-{ver}-linux-amd64.tar.gz\n{_rs(rng, HEX, 64)}  app-{ver}-darwin-arm64.tar.gz\nmd5: {_rs(rng, HEX, 32)}\n",
        "go_sum": f"github.com/google/uuid v1.6.0 h1:{base64.b64encode(bytes(rng.randrange(256) for _ in range(32))).decode()}\ngithub.com/google/uuid v1.6.0/go.mod h1:{base64.b64encode(bytes(rng.randrange(256) for _ in range(32))).decode()}\n",
        "cargo_lock": f'[[package]]\nname = "serde"\nversion = "1.0.{rng.randint(100, 220)}"\nsource = "registry+https://github.com/rust-lang/crates.io-index"\nchecksum = "{sha256}"\n',
        "python_traceback": f'Traceback (most recent call last):\n  File "/usr/lib/python3.11/asyncio/runners.py", line 118, in run\n    return self._loop.run_until_complete(task)\n  File "app/main.py", line {rng.randint(10, 400)}, in handler\n    raise KeyError(key)\nKeyError: \'user_{rng.randint(10, 99)}\'\n<object at 0x7f{_rs(rng, HEX, 10)}>\n',
        "sql_schema": "CREATE TABLE users (\n  id BIGSERIAL PRIMARY KEY,\n  email TEXT NOT NULL UNIQUE,\n  password_hash TEXT NOT NULL,\n  ssn_last4 CHAR(4),\n  date_of_birth DATE,\n  created_at TIMESTAMPTZ DEFAULT now()\n);\nCREATE INDEX users_email_idx ON users (email);\n",
        "version_numbers": f"Bumped deps:\n- urllib3 1.26.18 -> 2.2.{rng.randint(0, 3)}\n- OpenSSL 3.0.13.1\n- build 4.18.2.2047\n- chromium 120.0.6099.109\nWindows 10.0.19045.3693\n",
        "changelog_dates": f"## [{ver}] - 2026-10-14\n### Fixed\n- Timezone offset when parsing 1987-03-14 style dates (#{rng.randint(100, 999)})\n## [1.0.0] - 2024-01-02\n",
        "css": ".btn{color:#1a73e8;background:#fff;border:1px solid #dadce0}.card{box-shadow:0 1px 2px rgba(60,64,67,.3)}\n:root{--brand:#ff5a5f;--id:4242}\n",
        "unit_test_faker": "def test_user_form(faker):\n    email = faker.email()\n    phone = faker.phone_number()\n    user = User(email=email, phone=phone, password=faker.password())\n    assert user.is_valid()\n",
        "patient_model_code": 'class Patient(Base):\n    __tablename__ = "patients"\n    mrn = Column(String(16), index=True)\n    first_name = Column(String)\n    date_of_birth = Column(Date)\n\n    def display(self) -> str:\n        return f"{self.last_name}, {self.first_name} ({self.mrn})"\n',
        "hl7_spec_doc": "PID-3 holds the patient identifier list (CX); PID-5 is the patient name (XPN) and PID-7 the date/time of birth.\nExample template: PID|1||<MRN>^^^<FACILITY>^MR||<LAST>^<FIRST>||<YYYYMMDD>|<SEX>\n",
        "fhir_schema": '{\n  "resourceType": "StructureDefinition",\n  "name": "Patient",\n  "element": [{"path": "Patient.birthDate", "type": [{"code": "date"}]}, {"path": "Patient.name.family"}]\n}\n',
        "timestamps_numbers": f"order_id={rng.randint(10**11, 10**12)} ts_ms={rng.randint(1_700_000_000_000, 1_800_000_000_000)} amount_cents={rng.randint(100, 99999)} retries=3\nbatch 2026-11-04 offset {rng.randint(10**6, 10**7)}\n",
        "jwt_placeholder": 'Authorization: Bearer <token>\nX-API-Key: YOUR_API_KEY\nCookie: session=<session-id>\ncurl -H "Authorization: Bearer $TOKEN" https://api.github.com/user\n',
        "pem_placeholder": "# put your key here, e.g.\n# -----BEGIN PRIVATE KEY-----\n# ...\n# -----END PRIVATE KEY-----\nkey_path = ~/.ssh/id_ed25519\n",
        "db_url_placeholder": "DATABASE_URL=postgres://user:password@localhost:5432/dev\nREDIS_URL=redis://localhost:6379/0\nMONGO=mongodb://${MONGO_USER}:${MONGO_PASS}@mongo:27017\nAMQP=amqp://guest:guest@rabbitmq:5672/\n",
        "ini_references": "[smtp]\nhost = smtp.example.com\nuser = %(SMTP_USER)s\npassword = %(SMTP_PASSWORD)s\n\n[api]\ntoken = {{ vault_api_token }}\n",
        "xml_placeholders": '<connectionStrings>\n  <add name="Main" connectionString="Server=localhost;Database=dev;Integrated Security=true" />\n</connectionStrings>\n<appSettings><add key="ApiKey" value="$(API_KEY)" /></appSettings>\n',
        "chat_about_secrets": "alice: did you rotate the stripe key?\nbob: yes, the new one is in 1Password under 'billing/prod'. don't paste it here\nalice: 👍 i'll update the k8s secret from vault\n",
        "base64_blob_test": f'FIXTURE = b"{base64.b64encode(b"hello world, this is a harmless fixture payload for the parser test " * 2).decode()}"\n',
        "markdown_readme": f"# widget\n\n[![build](https://img.shields.io/badge/build-passing-green)](https://ci.example.com)\n\nInstall: `pip install widget=={ver}`\n\nSet `WIDGET_TOKEN` in your environment. See docs at https://docs.example.com/widget.\n",
        "diff_code": f'diff --git a/src/cache.py b/src/cache.py\nindex {_rs(rng, HEX, 7)}..{_rs(rng, HEX, 7)} 100644\n--- a/src/cache.py\n+++ b/src/cache.py\n@@ -10,7 +10,7 @@ class Cache:\n-        self.ttl = 60\n+        self.ttl = ttl or 300\n         self.key_prefix = f"v2:{{name}}"\n',
        "openapi_spec": "components:\n  securitySchemes:\n    ApiKeyAuth:\n      type: apiKey\n      in: header\n      name: X-API-Key\n    bearerAuth:\n      type: http\n      scheme: bearer\n      bearerFormat: JWT\n",
        "hash_columns_csv": "user_id,sha1,created\n"
        + "".join(
            f"{rng.randint(1, 999)},{_rs(rng, HEX, 40)},2026-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}\n"
            for _ in range(3)
        ),
        "asterisk_masks": "card: **** **** **** 4242\nssn: ***-**-1234\nphone: (***) ***-0192\niban: DE89 **** **** **** 3000 00\npassword: ********\n",
        "requirements_hashes": f"requests=={ver} \\\n    --hash=sha256:{_rs(rng, HEX, 64)} \\\n    --hash=sha256:{_rs(rng, HEX, 64)}\nidna==3.{rng.randint(1, 9)}\n",
        "bcrypt_hash": f"-- seed admin for local dev\nINSERT INTO users (email, password_hash) VALUES ('admin@example.com', '$2b$12${_rs(rng, ALNUM + './', 53)}');\n",
        "aws_arns": f"arn:aws:iam::{rng.randint(10**11, 10**12 - 1)}:role/deploy\narn:aws:s3:::logs-{rng.randint(100, 999)}/*\ninstance i-0{_rs(rng, HEX, 16)} vpc-{_rs(rng, HEX, 17)} sg-0{_rs(rng, HEX, 16)}\n",
        "pytest_output": f"============ test session starts ============\nplatform linux -- Python 3.11.{rng.randint(1, 9)}, pytest-8.3.{rng.randint(0, 5)}\ncollected {rng.randint(20, 400)} items\n\ntests/test_api.py ....F..                [ 35%]\nFAILED tests/test_api.py::test_token_refresh - AssertionError: assert 401 == 200\n",
        "sql_parameterized": 'cur.execute(\n    "SELECT id FROM users WHERE email = %s AND password_hash = crypt(%s, password_hash)",\n    (email, password),\n)\n',
        "email_regex_code": 'EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}")\nPHONE_RE = re.compile(r"\\(?\\d{3}\\)?[ -.]?\\d{3}[ -.]?\\d{4}")\nSSN_RE = r"\\d{3}-\\d{2}-\\d{4}"\n',
        "helm_values": 'image:\n  repository: ghcr.io/acme/api\n  tag: "'
        + ver
        + '"\nsecrets:\n  existingSecret: api-secrets\n  apiKey: ""\n  dbPassword: ""\nresources:\n  limits: {cpu: 500m, memory: 512Mi}\n',
        "sourcemap": '{"version":3,"sources":["src/index.ts"],"names":["render","props"],"mappings":"'
        + ";".join(
            _rs(rng, "ACDEGIKMOQSUWYagkmoqsuwy", rng.randint(4, 9))
            + ","
            + _rs(rng, "ACDEGIKMOQSUWYagkmoqsuwy", 6)
            for _ in range(12)
        )
        + '"}\n',
        "html_page": f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Dashboard</title>\n<script src="/static/app.{_rs(rng, HEX, 8)}.js" integrity="sha384-{base64.b64encode(bytes(rng.randrange(256) for _ in range(48))).decode()}" crossorigin="anonymous"></script></head>\n<body><div id="root"></div></body></html>\n',
        "api_response_ids": json.dumps(
            {
                "data": [
                    {
                        "id": rng.randint(10**8, 10**9),
                        "object": "invoice",
                        "number": f"INV-{rng.randint(1000, 9999)}",
                        "created": rng.randint(1_700_000_000, 1_800_000_000),
                        "etag": _rs(rng, HEX, 32),
                    }
                    for _ in range(3)
                ],
                "has_more": False,
            },
            indent=2,
        )
        + "\n",
        "kafka_log": f"[2026-11-04 10:{rng.randint(10, 59)}:00,311] INFO [Consumer clientId=orders-{rng.randint(1, 9)}, groupId=billing] Seeking to offset {rng.randint(10**6, 10**9)} for partition orders-{rng.randint(0, 11)}\n",
        "test_fixtures_tokens": "FAKE_TOKEN = 'ghp_' + 'x' * 36\nDUMMY_KEY = 'sk_test_dummy'\nPLACEHOLDER_JWT = 'eyJ...'\nassert redact('password=hunter2') == 'password=[REDACTED]'\n",
        "makefile": "PY ?= python3\nVERSION := $(shell git describe --tags)\n\nrelease:\n\t$(PY) -m build\n\ttwine upload -u __token__ -p $$PYPI_TOKEN dist/*\n",
        "profile_output": "".join(
            f"{rng.randint(1, 5000):>8} {rng.random():8.3f} {rng.random():8.3f} app/{rng.choice(WORDS)}.py:{rng.randint(1, 900)}({rng.choice(WORDS)})\n"
            for _ in range(5)
        ),
        "gradle_build": f"plugins {{ id 'org.springframework.boot' version '3.{rng.randint(0, 3)}.{rng.randint(0, 9)}' }}\ndependencies {{\n    implementation 'com.squareup.okhttp3:okhttp:4.12.0'\n}}\nsigning {{ useInMemoryPgpKeys(findProperty('signingKey'), findProperty('signingPassword')) }}\n",
        "documented_examples": "# values from vendor docs\nstripe.api_key = 'sk_test_4eC39HqLyjWDarjtT1zdp7dc'\ntoken = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c'\n",
        "test_numbers_doc": "Use these in sandbox mode:\n- Visa 4111 1111 1111 1111\n- Mastercard 5555555555554444\n- IBAN GB82 WEST 1234 5698 7654 32 and DE89 3704 0044 0532 0130 00\n- SSN placeholder 123-45-6789\n",
        "git_urls": f"See https://github.com/acme/api/commit/{_rs(rng, HEX, 40)} and https://github.com/acme/api/compare/{_rs(rng, HEX, 7)}...{_rs(rng, HEX, 7)}\n",
        "docker_ps": f"CONTAINER ID   IMAGE                          STATUS\n{_rs(rng, HEX, 12)}   postgres:16@sha256:{_rs(rng, HEX, 64)}   Up 3 hours\n{_rs(rng, HEX, 12)}   redis:7   Up 3 hours\n",
        "medical_prose_no_patient": "Patients with type 2 diabetes and an eGFR below 30 should not start metformin.\nThe HL7 PID segment carries demographics; FHIR Patient.birthDate is a date.\nSee ICD-10 E11.9 and CPT 99213 in the fee schedule.\n",
        "hl7_parser_code": "def parse_pid(segment: str) -> dict[str, str]:\n    fields = segment.split('|')\n    family, given = (fields[5].split('^') + ['', ''])[:2]\n    return {'mrn': fields[3].split('^')[0], 'family': family, 'given': given, 'dob': fields[7]}\n",
        "contributors": f"Contributors\n- @{rng.choice(FIRST)}dev (docs)\n- @{rng.choice(LAST)}-bot (CI)\nThanks to everyone who filed issues for {ver}!\n",
        "k8s_manifest": f"apiVersion: v1\nkind: Service\nmetadata:\n  name: api\n  uid: {_uuid(rng)}\nspec:\n  clusterIP: 10.96.{rng.randint(0, 255)}.{rng.randint(1, 254)}\n  ports:\n    - port: 443\n      targetPort: 8443\n",
    }


def _clean(rng: random.Random) -> list[Packet]:
    out: list[Packet] = []
    for j in range(4):
        for name, text in _clean_templates(rng).items():
            out.append(Packet(f"clean-{name}-{j}", text, ()))
    return out


def build(seed: int = 0) -> tuple[list[Packet], list[Packet]]:
    """Dirty packets (each with planted values) and clean developer packets for one seed."""
    rng = random.Random(seed)
    _COUNTER[0] = 0
    return _dirty(rng), _clean(rng)
