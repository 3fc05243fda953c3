# ruff: noqa: E501, SIM905, UP031
# (template-heavy test data: long literal lines and %-templates read better than wrapped ones)
"""Held-out privacy corpus, written from the issue text alone (not from the detector).

Dirty packets plant fake but structurally valid secrets, PII and PHI inside realistic
containers; clean packets are ordinary developer text full of hard negatives. Everything is
generated from a seed so a run can be repeated exactly.
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

B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"
B64URL = ALNUM + "-_"
HEX = "0123456789abcdef"


@dataclass(frozen=True)
class Packet:
    """One scanned text and the (start, end, category, kind) values planted in it."""

    name: str
    text: str
    planted: tuple[tuple[int, int, str, str], ...]


@dataclass(frozen=True)
class V:
    """A planted value: its text exactly as it appears, category and kind."""

    text: str
    category: str
    kind: str


_SLOT = re.compile(r"@@(\w+)@@")


def fill(name: str, template: str, **slots: str | V) -> Packet:
    """Substitute @@slot@@ markers, recording the span of every planted value."""
    out: list[str] = []
    planted: list[tuple[int, int, str, str]] = []
    pos = 0
    last = 0
    for m in _SLOT.finditer(template):
        lit = template[last : m.start()]
        out.append(lit)
        pos += len(lit)
        val = slots[m.group(1)]
        text = val.text if isinstance(val, V) else val
        if isinstance(val, V):
            planted.append((pos, pos + len(text), val.category, val.kind))
        out.append(text)
        pos += len(text)
        last = m.end()
    out.append(template[last:])
    return Packet(name, "".join(out), tuple(planted))


def rs(rng: random.Random, n: int, alphabet: str = ALNUM) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def b64line(rng: random.Random, n: int) -> str:
    return rs(rng, n, B64)


# ---------------------------------------------------------------- checksums


def base62(n: int, width: int) -> str:
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = B62[r] + out
    return out.rjust(width, "0")


def crc_token(rng: random.Random, prefix: str, body_len: int = 30) -> str:
    """GitHub / npm style: random base62 body plus a base62 CRC32 of the body."""
    body = rs(rng, body_len, B62)
    return prefix + body + base62(binascii.crc32(body.encode()), 6)


def luhn_complete(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return digits + str((10 - total % 10) % 10)


def luhn_ok(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return total % 10 == 0


def iban_check(country: str, bban: str) -> str:
    moved = bban + country + "00"
    num = "".join(str(int(c, 36)) for c in moved)
    return f"{98 - int(num) % 97:02d}"


def iban_ok(iban: str) -> bool:
    s = iban.replace(" ", "")
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


# ---------------------------------------------------------------- names and places

FIRST = (
    "Olivia Liam Amara Mateo Priya Noah Sofia Ethan Fatima Lucas Hannah Diego Chloe Arjun "
    "Grace Omar Isabella Kenji Maya Tobias Leila Samuel Ingrid Rafael Nadia Caleb Yuki "
    "Beatriz Declan Anika Marcus Elena Kwame Rosa Henrik Zainab Felix Camila Dmitri Aisha "
    "Gabriel Siobhan Tariq Lucia Viktor Imani Connor Mei Andres Freya Jamal Teresa Nikhil"
).split()
LAST = (
    "Okafor Lindqvist Ramirez Chen Nakamura Fitzgerald Haddad Kowalski Mbeki Ferreira "
    "Johansson Patel Gallagher Novak Abernathy Delacroix Nguyen Brennan Castellanos Weber "
    "Adeyemi Rossi Kaur Sorensen Whitfield Moreau Takahashi Oyelaran Petrov Hughes "
    "Valdez Morrison Achterberg Salazar Greenberg Mwangi Caldwell Iyer Kuznetsova Barros "
    "Holloway Szabo Ostrowski Quintero Ashworth Lindgren Mancini Blackwood Oduya Varga"
).split()
STREETS = (
    "Maple Oak Cedar Willow Birch Lakeview Hillcrest Sycamore Chestnut Magnolia Ridgewood "
    "Juniper Brookside Fairview Kingsley Harbor Orchard Aspen Linden Meadowbrook Highland"
).split()
SUFFIX = "Street St Avenue Ave Road Rd Boulevard Blvd Lane Ln Drive Dr Court Ct Way Place".split()
CITIES = (
    ("Portland", "OR", "972"),
    ("Austin", "TX", "787"),
    ("Columbus", "OH", "432"),
    ("Raleigh", "NC", "276"),
    ("Madison", "WI", "537"),
    ("Tucson", "AZ", "857"),
    ("Albany", "NY", "122"),
    ("Boise", "ID", "837"),
    ("Denver", "CO", "802"),
    ("Richmond", "VA", "232"),
)
CORP_DOMAINS = (
    "gmail.com outlook.com yahoo.com protonmail.com icloud.com hotmail.co.uk gmx.de "
    "acmecorp.io northwind-health.org contoso-labs.com fabrikam.net initech.co "
    "globex-medical.com umbrella-systems.de blueriver.dev"
).split()


def name(rng: random.Random) -> tuple[str, str]:
    return rng.choice(FIRST), rng.choice(LAST)


def street(rng: random.Random) -> str:
    num = rng.randint(12, 9899)
    return f"{num} {rng.choice(STREETS)} {rng.choice(SUFFIX)}"


def city_line(rng: random.Random) -> str:
    city, st, z = rng.choice(CITIES)
    return f"{city}, {st} {z}{rng.randint(0, 99):02d}"


def email(rng: random.Random, first: str = "", last: str = "") -> str:
    if not first:
        first, last = name(rng)
    local = rng.choice(
        [
            f"{first}.{last}",
            f"{first[0]}{last}",
            f"{first}{rng.randint(1, 99)}",
            f"{last}.{first[0]}",
            f"{first}_{last}",
        ]
    ).lower()
    return f"{local}@{rng.choice(CORP_DOMAINS)}"


def dob(rng: random.Random) -> tuple[int, int, int]:
    return rng.randint(1934, 2004), rng.randint(1, 12), rng.randint(1, 28)


MONTHS = "January February March April May June July August September October November December"


def dob_text(rng: random.Random, style: int | None = None) -> str:
    y, m, d = dob(rng)
    style = rng.randrange(5) if style is None else style
    if style == 0:
        return f"{m:02d}/{d:02d}/{y}"
    if style == 1:
        return f"{y}-{m:02d}-{d:02d}"
    if style == 2:
        return f"{MONTHS.split()[m - 1]} {d}, {y}"
    if style == 3:
        return f"{d} {MONTHS.split()[m - 1][:3]} {y}"
    return f"{m}/{d}/{y}"


# ---------------------------------------------------------------- PII values


def ssn(rng: random.Random) -> str:
    while True:
        area = rng.randint(1, 899)
        if area != 666:
            break
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


TEST_CARDS = {
    "4242424242424242",
    "4111111111111111",
    "5555555555554444",
    "378282246310005",
    "6011111111111117",
    "4000056655665556",
    "5105105105105100",
}


def card(rng: random.Random) -> str:
    brand = rng.randrange(5)
    if brand == 0:
        digits, groups = "4" + rs(rng, 14, string.digits), (4, 4, 4, 4)
    elif brand == 1:
        digits, groups = str(rng.randint(51, 55)) + rs(rng, 13, string.digits), (4, 4, 4, 4)
    elif brand == 2:
        digits, groups = str(rng.randint(2221, 2720)) + rs(rng, 11, string.digits), (4, 4, 4, 4)
    elif brand == 3:
        digits, groups = rng.choice(["34", "37"]) + rs(rng, 12, string.digits), (4, 6, 5)
    else:
        digits, groups = "6011" + rs(rng, 11, string.digits), (4, 4, 4, 4)
    num = luhn_complete(digits)
    if num in TEST_CARDS:
        return card(rng)
    sep = rng.choice(["", " ", "-", " "])
    out, i = [], 0
    for g in groups:
        out.append(num[i : i + g])
        i += g
    return sep.join(out)


IBAN_SHAPES = {
    "DE": "n8n10",
    "GB": "a4n6n8",
    "FR": "n5n5c11n2",
    "NL": "a4n10",
    "ES": "n4n4n2n10",
    "IT": "a1n5n5c12",
    "CH": "n5c12",
    "BE": "n3n7n2",
    "AT": "n5n11",
    "PL": "n8n16",
}


def iban(rng: random.Random) -> str:
    country = rng.choice(sorted(IBAN_SHAPES))
    bban = ""
    for kind, n in re.findall(r"([anc])(\d+)", IBAN_SHAPES[country]):
        alpha = {
            "a": string.ascii_uppercase,
            "n": string.digits,
            "c": string.ascii_uppercase + string.digits,
        }[kind]
        bban += rs(rng, int(n), alpha)
    raw = country + iban_check(country, bban) + bban
    if rng.random() < 0.5:
        return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4))
    return raw


def public_ipv4(rng: random.Random) -> str:
    while True:
        a = rng.randint(1, 223)
        b, c, d = rng.randint(0, 255), rng.randint(0, 255), rng.randint(1, 254)
        if a in (10, 127, 0) or (a == 172 and 16 <= b <= 31) or (a == 192 and b == 168):
            continue
        if (a == 169 and b == 254) or (a == 100 and 64 <= b <= 127):
            continue
        if (a, b, c) in ((192, 0, 2), (198, 51, 100), (203, 0, 113), (192, 0, 0)):
            continue
        if a == 198 and b in (18, 19):
            continue
        return f"{a}.{b}.{c}.{d}"


def public_ipv6(rng: random.Random) -> str:
    head = rng.choice(["2a02", "2600", "2607", "2a01", "2a03", "2406", "2c0f", "2804", "2001:4860"])
    groups = head.split(":")
    while len(groups) < 8:
        groups.append(f"{rng.randint(0, 0xFFFF):x}")
    if rng.random() < 0.5:
        groups[3:6] = ["0", "0", "0"]
        full = ":".join(groups)
        return full.replace(":0:0:0:", "::", 1)
    return ":".join(groups)


def phone(rng: random.Random) -> tuple[str, str]:
    """A valid phone number and the notation used (for reporting)."""
    region = rng.choice(
        [
            "US",
            "US",
            "US",
            "CA",
            "GB",
            "DE",
            "FR",
            "IN",
            "AU",
            "BR",
            "JP",
            "ES",
            "IT",
            "NL",
            "MX",
            "SG",
            "ZA",
        ]
    )
    kind = rng.choice(
        [phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]
    )
    ex = phonenumbers.example_number_for_type(region, kind)
    nsn = phonenumbers.national_significant_number(ex)
    while True:
        cand = nsn[:3] + rs(rng, len(nsn) - 3, string.digits)
        if region in ("US", "CA"):
            cand = nsn[:3] + str(rng.randint(2, 9)) + rs(rng, 6, string.digits)
            if cand[3:6] == "555" or cand[4:6] == "11":
                continue
        num = phonenumbers.parse("+" + str(ex.country_code) + cand)
        if phonenumbers.is_valid_number(num) and cand != nsn:
            break
    if region in ("US", "CA"):
        a, e, s = cand[:3], cand[3:6], cand[6:]
        notes = [
            (f"({a}) {e}-{s}", "us_paren"),
            (f"{a}-{e}-{s}", "us_dash"),
            (f"{a}.{e}.{s}", "us_dot"),
            (f"+1 {a}-{e}-{s}", "us_intl"),
            (f"+1{a}{e}{s}", "e164"),
            (f"1-{a}-{e}-{s}", "us_1dash"),
            (f"+1 ({a}) {e}-{s}", "us_intl_paren"),
        ]
        return rng.choice(notes)
    fmt = rng.choice(["intl", "intl", "e164", "national"])
    if fmt == "intl":
        return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.INTERNATIONAL), "intl"
    if fmt == "e164":
        return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164), "e164"
    return phonenumbers.format_number(
        num, phonenumbers.PhoneNumberFormat.NATIONAL
    ), f"national_{region}"


# ---------------------------------------------------------------- secret values


def b64url_nopad(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def jwt(rng: random.Random) -> str:
    alg = rng.choice(["HS256", "RS256", "ES256"])
    header = {"alg": alg, "typ": "JWT"}
    if rng.random() < 0.5:
        header["kid"] = rs(rng, 16, HEX)
    payload = {
        "sub": rs(rng, 24, HEX),
        "iss": rng.choice(
            ["https://auth.acmecorp.io/", "api-gateway", "https://login.contoso-labs.com"]
        ),
        "iat": rng.randint(1_700_000_000, 1_760_000_000),
        "scope": rng.choice(["read write", "admin", "repo:read"]),
    }
    payload["exp"] = payload["iat"] + 3600  # type: ignore[operator]
    siglen = {"HS256": 32, "RS256": 256, "ES256": 64}[alg]
    sig = bytes(rng.randrange(256) for _ in range(siglen))
    h = b64url_nopad(json.dumps(header, separators=(",", ":")).encode())
    p = b64url_nopad(json.dumps(payload, separators=(",", ":")).encode())
    return f"{h}.{p}.{b64url_nopad(sig)}"


def discord_token(rng: random.Random) -> str:
    uid = str(rng.randint(10**17, 10**19 - 1))
    first = base64.b64encode(uid.encode()).decode().rstrip("=")
    return f"{first}.{rs(rng, 6, B64URL)}.{rs(rng, 38, B64URL)}"


def human_password(rng: random.Random) -> str:
    shape = rng.randrange(4)
    if shape == 0:
        return rs(rng, rng.randint(14, 28), ALNUM + "!#$%^&*-_+=")
    if shape == 1:
        return rs(rng, rng.choice([32, 40, 64]), HEX)
    if shape == 2:
        words = ["orbit", "falcon", "copper", "tundra", "velvet", "quartz", "ember", "harbor"]
        return "-".join(rng.sample(words, 3)) + str(rng.randint(10, 99)) + rng.choice("!@#$%")
    return (
        rs(rng, 4, string.ascii_uppercase)
        + rs(rng, 6, string.ascii_lowercase)
        + rs(rng, 3, string.digits)
        + rng.choice("!?*#")
    )


SecretGen = Callable[[random.Random], tuple[str, str]]

# kind -> (generator returning (value, keyword hint))
SECRETS: dict[str, SecretGen] = {
    "aws_access_key_id": lambda r: (
        r.choice(["AKIA", "ASIA"]) + rs(r, 16, string.ascii_uppercase + "234567"),
        "aws_access_key_id",
    ),
    "aws_secret_access_key": lambda r: (rs(r, 40, B64), "aws_secret_access_key"),
    "github_classic_token": lambda r: (crc_token(r, "ghp_"), "github_token"),
    "github_oauth_token": lambda r: (
        crc_token(r, r.choice(["gho_", "ghu_", "ghs_", "ghr_"])),
        "gh_token",
    ),
    "github_fine_grained_pat": lambda r: (
        "github_pat_11"
        + rs(r, 20, string.ascii_uppercase + string.digits)
        + "_"
        + rs(r, 59, ALNUM),
        "github_pat",
    ),
    "gitlab_token": lambda r: (
        r.choice(["glpat-", "glpat-", "gldt-", "glrt-"]) + rs(r, 20, B64URL),
        "gitlab_token",
    ),
    "slack_bot_token": lambda r: (
        f"xoxb-{rs(r, 12, string.digits)}-{rs(r, 13, string.digits)}-{rs(r, 24, ALNUM)}",
        "slack_bot_token",
    ),
    "slack_user_token": lambda r: (
        f"xoxp-{rs(r, 12, string.digits)}-{rs(r, 12, string.digits)}-{rs(r, 13, string.digits)}-{rs(r, 32, HEX)}",
        "slack_token",
    ),
    "slack_app_token": lambda r: (
        f"xapp-1-A{rs(r, 10, string.ascii_uppercase + string.digits)}-{rs(r, 13, string.digits)}-{rs(r, 64, HEX)}",
        "slack_app_token",
    ),
    "slack_webhook": lambda r: (
        f"https://hooks.slack.com/services/T{rs(r, 8, string.ascii_uppercase + string.digits)}/B{rs(r, 10, string.ascii_uppercase + string.digits)}/{rs(r, 24, ALNUM)}",
        "slack_webhook_url",
    ),
    "stripe_secret_key": lambda r: (
        "sk_live_" + r.choice(["", "51"]) + rs(r, r.choice([24, 97]), ALNUM),
        "stripe_secret_key",
    ),
    "stripe_restricted_key": lambda r: (
        "rk_live_" + rs(r, r.choice([24, 99]), ALNUM),
        "stripe_restricted_key",
    ),
    "stripe_webhook_secret": lambda r: ("whsec_" + rs(r, 32, ALNUM), "stripe_webhook_secret"),
    "openai_api_key": lambda r: (
        r.choice(
            [
                "sk-proj-" + rs(r, 156, B64URL),
                "sk-" + rs(r, 20, ALNUM) + "T3BlbkFJ" + rs(r, 20, ALNUM),
                "sk-svcacct-" + rs(r, 140, B64URL),
            ]
        ),
        "openai_api_key",
    ),
    "anthropic_api_key": lambda r: (
        "sk-ant-api03-" + rs(r, 93, B64URL) + "AA",
        "anthropic_api_key",
    ),
    "google_api_key": lambda r: ("AIza" + rs(r, 35, B64URL), "google_api_key"),
    "twilio_api_key": lambda r: ("SK" + rs(r, 32, HEX), "twilio_api_key"),
    "twilio_auth_token": lambda r: (rs(r, 32, HEX), "twilio_auth_token"),
    "sendgrid_api_key": lambda r: (
        "SG." + rs(r, 22, B64URL) + "." + rs(r, 43, B64URL),
        "sendgrid_api_key",
    ),
    "npm_token": lambda r: (crc_token(r, "npm_"), "npm_token"),
    "pypi_token": lambda r: (
        "pypi-AgEIcHlwaS5vcmc" + rs(r, r.randint(150, 190), B64URL),
        "pypi_token",
    ),
    "huggingface_token": lambda r: ("hf_" + rs(r, 34, string.ascii_letters), "hf_token"),
    "discord_bot_token": lambda r: (discord_token(r), "discord_bot_token"),
    "discord_webhook": lambda r: (
        f"https://discord.com/api/webhooks/{r.randint(10**17, 10**19 - 1)}/{rs(r, 68, B64URL)}",
        "discord_webhook",
    ),
    "telegram_bot_token": lambda r: (
        f"{r.randint(10**8, 10**10 - 1)}:AA{rs(r, 33, B64URL)}",
        "telegram_bot_token",
    ),
    "jwt": lambda r: (jwt(r), "access_token"),
    "keyword_password": lambda r: (
        human_password(r),
        r.choice(["password", "db_password", "passwd", "admin_password", "smtp_password", "pwd"]),
    ),
    "keyword_secret": lambda r: (
        rs(r, r.choice([32, 40, 48, 64]), r.choice([ALNUM, HEX, B64URL])),
        r.choice(
            [
                "client_secret",
                "secret_key",
                "api_secret",
                "app_secret",
                "signing_secret",
                "api_key",
                "auth_token",
                "access_token",
                "encryption_key",
            ]
        ),
    ),
}


def hint_case(hint: str, style: str) -> str:
    parts = hint.split("_")
    if style == "upper":
        return hint.upper()
    if style == "camel":
        return parts[0] + "".join(p.title() for p in parts[1:])
    if style == "dot":
        return ".".join(parts)
    if style == "kebab":
        return "-".join(parts)
    return hint


# ---------------------------------------------------------------- single-line secret contexts


def json_escape(s: str) -> str:
    return json.dumps(s)[1:-1]


def xml_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# style -> (key case, line template with @@v@@, value encoder)
LINE_STYLES: dict[str, tuple[str, str]] = {
    "env": ("upper", "{k}=@@v@@"),
    "env_quoted": ("upper", '{k}="@@v@@"'),
    "shell": ("upper", 'export {k}="@@v@@"'),
    "yaml": ("snake", '  {k}: "@@v@@"'),
    "yaml_plain": ("snake", "    {k}: @@v@@"),
    "json": ("snake", '  "{k}": "@@v@@",'),
    "python": ("upper", '{k} = "@@v@@"'),
    "python_dict": ("snake", '    "{k}": "@@v@@",'),
    "go": ("camel", '\t{k} := "@@v@@"'),
    "js": ("camel", "const {k} = '@@v@@';"),
    "ts": ("camel", "  {k}: '@@v@@',"),
    "java": ("upper", '    private static final String {k} = "@@v@@";'),
    "rust": ("upper", 'const {k}: &str = "@@v@@";'),
    "ruby": ("snake", "  config.{k} = '@@v@@'"),
    "php": ("upper", "define('{k}', '@@v@@');"),
    "properties": ("dot", "{k}=@@v@@"),
    "xml": ("camel", "    <{k}>@@v@@</{k}>"),
    "terraform": ("snake", '  {k} = "@@v@@"'),
    "ini": ("snake", "{k} = @@v@@"),
    "toml": ("snake", '{k} = "@@v@@"'),
}

FILE_WRAPS: dict[str, list[str]] = {
    "env": [
        "# staging\nNODE_ENV=production\nPORT=8080\nLOG_LEVEL=info\n@@line@@\nREDIS_HOST=cache.internal\n",
        "APP_NAME=billing-worker\nAPP_DEBUG=false\n\n# third-party\n@@line@@\nQUEUE_CONCURRENCY=4\n",
    ],
    "shell": [
        "#!/usr/bin/env bash\nset -euo pipefail\n\n@@line@@\nexport REGION=us-east-1\n\n"
        './scripts/deploy.sh --env prod --tag "$(git rev-parse --short HEAD)"\n',
        '# added to ~/.zshrc on the build box\nalias k=kubectl\n@@line@@\nexport PATH="$HOME/.local/bin:$PATH"\n',
    ],
    "yaml": [
        "service:\n  name: ingest\n  replicas: 3\ncredentials:\n@@line@@\n  timeout_s: 30\n",
        "version: '3.9'\nservices:\n  worker:\n    image: ghcr.io/acme/worker:2.4.1\n    environment:\n"
        "  @@line@@\n      LOG_LEVEL: debug\n",
    ],
    "json": [
        '{\n  "name": "notifier",\n  "region": "eu-west-1",\n@@line@@\n  "retries": 5\n}\n',
    ],
    "python": [
        'import os\n\nDEBUG = False\nALLOWED_HOSTS = ["api.internal"]\n@@line@@\nTIME_ZONE = "UTC"\n',
        "from dataclasses import dataclass\n\n# TODO move to vault before release\n@@line@@\n\n\n"
        "@dataclass\nclass Client:\n    base_url: str\n    timeout: float = 10.0\n",
    ],
    "python_dict": [
        'import requests\n\nCONFIG = {\n    "endpoint": "https://api.partner.net/v2",\n@@line@@\n}\n\n'
        'resp = requests.get(CONFIG["endpoint"], timeout=5)\nresp.raise_for_status()\n',
    ],
    "go": [
        'package main\n\nimport (\n\t"log"\n\t"net/http"\n)\n\nfunc main() {\n@@line@@\n'
        '\tclient := &http.Client{}\n\tlog.Printf("starting poller")\n\t_ = client\n}\n',
    ],
    "js": [
        "import axios from 'axios';\n\n@@line@@\nconst api = axios.create({ baseURL: 'https://api.vendor.io' });\n\nexport default api;\n",
    ],
    "ts": [
        "export const settings = {\n  region: 'us-west-2',\n@@line@@\n  retries: 3,\n} as const;\n",
    ],
    "java": [
        "package com.acme.billing;\n\nimport java.net.http.HttpClient;\n\npublic class Gateway {\n@@line@@\n"
        "    private final HttpClient http = HttpClient.newHttpClient();\n}\n",
    ],
    "rust": [
        "use reqwest::Client;\n\n@@line@@\n\n#[tokio::main]\nasync fn main() -> anyhow::Result<()> {\n"
        "    let c = Client::new();\n    Ok(())\n}\n",
    ],
    "ruby": [
        "Rails.application.configure do\n  config.cache_store = :redis_cache_store\n@@line@@\nend\n",
    ],
    "php": [
        "<?php\n// local overrides\ndefine('WP_DEBUG', false);\n@@line@@\n$table_prefix = 'wp_';\n",
    ],
    "properties": [
        "spring.application.name=orders\nserver.port=8081\n@@line@@\nlogging.level.root=INFO\n",
    ],
    "xml": [
        '<?xml version="1.0" encoding="UTF-8"?>\n<configuration>\n  <service>\n@@line@@\n'
        "    <timeout>30</timeout>\n  </service>\n</configuration>\n",
    ],
    "terraform": [
        'provider "acme" {\n  region = "us-east-1"\n@@line@@\n}\n\nresource "acme_bucket" "logs" {\n  name = "logs"\n}\n',
    ],
    "ini": [
        "[default]\nregion = us-east-2\noutput = json\n\n[service]\n@@line@@\nretries = 3\n",
    ],
    "toml": [
        '[package]\nname = "sync"\n\n[secrets]\n@@line@@\n',
    ],
}


def key_for(style: str, hint: str) -> str:
    case = LINE_STYLES[style][0]
    return hint_case(hint, case)


def encode_for(style: str, value: str) -> str:
    if style == "xml":
        return xml_escape(value)
    if style in (
        "json",
        "python_dict",
        "ts",
        "js",
        "go",
        "java",
        "rust",
        "python",
        "toml",
        "terraform",
    ):
        return json_escape(value)
    return value


def file_packet(rng: random.Random, tag: str, kind: str, value: str, hint: str) -> Packet:
    style = rng.choice(sorted(LINE_STYLES))
    line = LINE_STYLES[style][1].replace("{k}", key_for(style, hint))
    wrap_style = style.replace("_quoted", "").replace("_plain", "")
    body = rng.choice(FILE_WRAPS[wrap_style]).replace("@@line@@", line)
    if rng.random() < 0.25:
        body = as_diff(rng, body)
        style += "+diff"
    return fill(
        f"{tag}/{kind}/{style}", body, v=V(encode_for(style.split("+")[0], value), "secret", kind)
    )


def as_diff(rng: random.Random, body: str) -> str:
    """Render a file as a unified diff where the secret-bearing line is added."""
    lines = body.rstrip("\n").split("\n")
    out = []
    for ln in lines:
        out.append(("+" if "@@v@@" in ln else " ") + ln)
    path = rng.choice(
        ["config/app.conf", "deploy/values.yaml", "src/settings.py", ".env.production"]
    )
    head = (
        f"diff --git a/{path} b/{path}\nindex 3f2a91c..8b0d7e4 100644\n--- a/{path}\n+++ b/{path}\n"
    )
    return head + f"@@ -1,{len(lines) - 1} +1,{len(lines)} @@\n" + "\n".join(out) + "\n"


def chat_packet(rng: random.Random, tag: str, kind: str, value: str, hint: str) -> Packet:
    words = hint.replace("_", " ")
    tmpl = rng.choice(
        [
            "[10:42] dana: prod deploy is failing again, auth errors from the vendor\n"
            "[10:43] sam: yeah I rotated it this morning, new {w} is @@v@@\n[10:43] dana: thx, retrying\n",
            "hey can you try with this {w}: @@v@@\nit should have write scope now. lmk\n",
            "> Does anyone have the {w} for the sandbox?\n\nSure, use `@@v@@` until Friday, then we switch to vault.\n",
            "Subject: creds for the migration\n\nHi team,\n\nFor tonight's cutover the {w} is:\n\n    @@v@@\n\nPlease don't paste it in tickets.\n\nThanks,\nOps\n",
        ]
    )
    return fill(f"{tag}/{kind}/chat", tmpl.replace("{w}", words), v=V(value, "secret", kind))


def log_packet(rng: random.Random, tag: str, kind: str, value: str, hint: str) -> Packet:
    style = rng.randrange(4)
    ts = f"2025-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T0{rng.randint(0, 9)}:1{rng.randint(0, 9)}:22.{rng.randint(100, 999)}Z"
    if style == 0:  # secret inside an escaped JSON string inside a JSON log line
        inner = json.dumps({hint: value, "region": "us-east-1"})
        line = json.dumps({"ts": ts, "level": "debug", "msg": "outbound request", "body": inner})
        enc = json_escape(json_escape(value))
        tmpl = line.replace(enc, "@@v@@", 1)
        return fill(f"{tag}/{kind}/log_json_escaped", tmpl + "\n", v=V(enc, "secret", kind))
    if style == 1:  # URL-encoded query string in an access log
        q = urllib.parse.quote(value, safe="")
        tmpl = (
            f'10.0.3.17 - - [{ts}] "GET /v1/callback?state=ok&{hint}=@@v@@&page=2 HTTP/1.1" 200 512 '
            '"-" "python-requests/2.32.3"\n'
        )
        return fill(f"{tag}/{kind}/log_urlencoded", tmpl, v=V(q, "secret", kind))
    if style == 2:
        tmpl = (
            f"{ts} INFO  worker.sync starting batch=42\n{ts} DEBUG http.client config loaded "
            f"{hint}=@@v@@ retries=3\n{ts} INFO  worker.sync done in 812ms\n"
        )
        return fill(f"{tag}/{kind}/log_kv", tmpl, v=V(value, "secret", kind))
    tmpl = (
        'Traceback (most recent call last):\n  File "/srv/app/client.py", line 88, in connect\n'
        '    self._auth(token)\n  File "/srv/app/client.py", line 121, in _auth\n'
        "    raise AuthError(f\"rejected {token!r}\")\napp.errors.AuthError: rejected '@@v@@'\n"
    )
    return fill(f"{tag}/{kind}/traceback", tmpl, v=V(value, "secret", kind))


# ---------------------------------------------------------------- multi-line and structured secrets


def pem_body(rng: random.Random, start: str, nbytes: int, width: int = 64) -> list[str]:
    b = start + b64line(rng, nbytes * 4 // 3 - len(start))
    lines = [b[i : i + width] for i in range(0, len(b), width)]
    lines[-1] = lines[-1] + "=" * (-len(lines[-1]) % 4 if len(lines[-1]) % 4 else 0)
    return lines


def private_key_block(rng: random.Random) -> tuple[str, str]:
    kind = rng.choice(["rsa", "pkcs8", "ec", "openssh", "pgp", "encrypted_pkcs8", "encrypted_rsa"])
    if kind == "rsa":
        body = pem_body(rng, "MIIEpAIBAAKCAQEA", 1190)
        return "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(
            body
        ) + "\n-----END RSA PRIVATE KEY-----", "pem_private_key"
    if kind == "pkcs8":
        body = pem_body(rng, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", 1210)
        return "-----BEGIN PRIVATE KEY-----\n" + "\n".join(
            body
        ) + "\n-----END PRIVATE KEY-----", "pem_private_key"
    if kind == "ec":
        body = pem_body(rng, "MHcCAQEEI", 121)
        return "-----BEGIN EC PRIVATE KEY-----\n" + "\n".join(
            body
        ) + "\n-----END EC PRIVATE KEY-----", "pem_private_key"
    if kind == "openssh":
        body = pem_body(
            rng, "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW", 400, 70
        )
        return "-----BEGIN OPENSSH PRIVATE KEY-----\n" + "\n".join(
            body
        ) + "\n-----END OPENSSH PRIVATE KEY-----", "openssh_private_key"
    if kind == "pgp":
        body = pem_body(rng, "lQdGBGX", 900)
        return (
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n"
            + "\n".join(body)
            + "\n="
            + rs(rng, 4, B64)
            + "\n-----END PGP PRIVATE KEY BLOCK-----"
        ), "pgp_private_key"
    if kind == "encrypted_pkcs8":
        body = pem_body(rng, "MIIFHzBJBgkqhkiG9w0BBQ0wPDAbBgkqhkiG9w0BBQwwDgQI", 1250)
        return "-----BEGIN ENCRYPTED PRIVATE KEY-----\n" + "\n".join(
            body
        ) + "\n-----END ENCRYPTED PRIVATE KEY-----", "encrypted_private_key"
    body = pem_body(rng, "", 1190)
    return (
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,"
        + rs(rng, 32, "0123456789ABCDEF")
        + "\n\n"
        + "\n".join(body)
        + "\n-----END RSA PRIVATE KEY-----"
    ), "encrypted_private_key"


def key_block_packet(rng: random.Random, i: int) -> Packet:
    block, kind = private_key_block(rng)
    style = rng.randrange(6)
    if style == 0:
        return fill(f"key/{kind}/file", "@@v@@\n", v=V(block, "secret", kind))
    if style == 1:  # Kubernetes secret, block scalar indented
        ind = "\n".join("    " + ln if ln else "" for ln in block.split("\n")).lstrip()
        tmpl = (
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: ingress-tls\ntype: kubernetes.io/tls\n"
            "stringData:\n  tls.key: |\n    @@v@@\n"
        )
        return fill(f"key/{kind}/k8s", tmpl, v=V(ind, "secret", kind))
    if style == 2:
        tmpl = (
            'DEPLOY_KEY = """\n@@v@@\n"""\n\n\ndef ssh_client():\n    return paramiko.SSHClient()\n'
        )
        return fill(f"key/{kind}/python", tmpl, v=V(block, "secret", kind))
    if style == 3:
        tmpl = "ok here's the key for the bastion, don't lose it:\n```\n@@v@@\n```\n"
        return fill(f"key/{kind}/chat", tmpl, v=V(block, "secret", kind))
    if style == 4:
        tmpl = '{"id": "deploy-%d", "ssh_private_key": "@@v@@", "enabled": true}\n' % i
        return fill(
            f"key/{kind}/json_escaped", tmpl, v=V(json_escape(block + "\n"), "secret", kind)
        )
    lines = block.split("\n")
    tmpl = (
        "diff --git a/ops/id_deploy b/ops/id_deploy\nnew file mode 100600\nindex 0000000..e69de29\n"
        f"--- /dev/null\n+++ b/ops/id_deploy\n@@ -0,0 +1,{len(lines)} @@\n+@@v@@\n"
    )
    return fill(f"key/{kind}/diff", tmpl, v=V("\n+".join(lines), "secret", kind))


def gcp_packet(rng: random.Random, i: int) -> Packet:
    body = pem_body(rng, "MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQ", 1210)
    key = "-----BEGIN PRIVATE KEY-----\n" + "\n".join(body) + "\n-----END PRIVATE KEY-----\n"
    proj = rng.choice(["acme-data-prod", "billing-4821", "ml-pipeline-staging"])
    head = {
        "type": "service_account",
        "project_id": proj,
        "private_key_id": rs(rng, 40, HEX),
        "private_key": "@@PK@@",
        "client_email": f"etl-runner@{proj}.iam.gserviceaccount.com",
        "client_id": str(rng.randint(10**20, 10**21 - 1)),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    text = json.dumps(head, indent=2).replace("@@PK@@", "@@v@@")
    if rng.random() < 0.3:  # the JSON embedded in an env var as a string, escaped twice
        esc = json_escape(json_escape(key))
        text = (
            'GOOGLE_CREDENTIALS="' + json_escape(json.dumps(head)).replace("@@PK@@", "@@v@@") + '"'
        )
        return fill(
            "gcp/service_account/env_escaped",
            text + "\n",
            v=V(esc, "secret", "gcp_service_account"),
        )
    return fill(
        "gcp/service_account/json",
        text + "\n",
        v=V(json_escape(key), "secret", "gcp_service_account"),
    )


def azure_packet(rng: random.Random, i: int) -> Packet:
    acct = rng.choice(["acmeprodlogs", "stbillingeus2", "mlartifacts01"])
    key = b64line(rng, 86) + "=="
    conn = f"DefaultEndpointsProtocol=https;AccountName={acct};AccountKey=@@v@@;EndpointSuffix=core.windows.net"
    tmpl = (
        rng.choice(
            [
                '{\n  "ConnectionStrings": {\n    "Storage": "%s"\n  }\n}\n',
                'AZURE_STORAGE_CONNECTION_STRING="%s"\n',
                'var blob = new BlobServiceClient("%s");\n',
            ]
        )
        % conn
    )
    return fill("azure/storage_key", tmpl, v=V(key, "secret", "azure_storage_key"))


DB_SCHEMES = [
    ("postgresql", "5432", "orders"),
    ("postgres", "5432", "app"),
    ("mysql", "3306", "shop"),
    ("mongodb+srv", "", "analytics"),
    ("redis", "6379", "0"),
    ("amqp", "5672", "vhost"),
    ("mssql", "1433", "crm"),
]


def db_url_packet(rng: random.Random, i: int) -> Packet:
    scheme, port, db = rng.choice(DB_SCHEMES)
    pw = human_password(rng)
    enc = urllib.parse.quote(pw, safe="")
    host = rng.choice(
        [
            "db.prod.acmecorp.io",
            "pg-main.c9xk2.us-east-1.rds.amazonaws.com",
            "cluster0.ab1cd.mongodb.net",
        ]
    )
    user = "" if scheme == "redis" else rng.choice(["app", "svc_orders", "admin", "readonly"])
    hp = host + (f":{port}" if port else "")
    url = f"{scheme}://{user}:@@v@@@{hp}/{db}"
    tmpl = (
        rng.choice(
            [
                "DATABASE_URL=%s\n",
                'engine = create_engine("%s", pool_pre_ping=True)\n',
                "spring:\n  datasource:\n    url: %s\n",
                "2025-03-02 11:02:17 ERROR could not connect to %s: timeout after 30s\n",
                'const pool = new Pool({ connectionString: "%s" });\n',
                'db, err := sql.Open("pgx", "%s")\n',
            ]
        )
        % url
    )
    return fill(f"dburl/{scheme}", tmpl, v=V(enc, "secret", "db_url_password"))


def userinfo_packet(rng: random.Random, i: int) -> Packet:
    pw = human_password(rng)
    enc = urllib.parse.quote(pw, safe="")
    tmpl = rng.choice(
        [
            "git clone https://ci-bot:@@v@@@git.acmecorp.io/platform/infra.git\n",
            '[remote "origin"]\n\turl = https://deploy:@@v@@@gitlab.fabrikam.net/web/site.git\n',
            "pip install --index-url https://builder:@@v@@@pypi.internal.initech.co/simple/ acme-core\n",
            "curl -fsSL ftp://backup:@@v@@@files.contoso-labs.com/nightly/db.tar.gz -o db.tgz\n",
        ]
    )
    return fill("userinfo/password", tmpl, v=V(enc, "secret", "url_password"))


def header_packet(rng: random.Random, i: int) -> Packet:
    style = rng.randrange(6)
    opaque = rs(rng, rng.choice([32, 40, 48]), ALNUM)
    if style == 0:
        tmpl = "curl -s https://api.vendor.io/v3/items \\\n  -H 'Accept: application/json' \\\n  -H 'Authorization: Bearer @@v@@'\n"
        return fill("header/bearer_curl", tmpl, v=V(opaque, "secret", "authorization_header"))
    if style == 1:
        tmpl = (
            "GET /api/v1/reports HTTP/1.1\nHost: reports.acmecorp.io\nUser-Agent: okhttp/4.12.0\n"
            "Authorization: Bearer @@v@@\nAccept-Encoding: gzip\n\n"
        )
        return fill("header/bearer_http", tmpl, v=V(jwt(rng), "secret", "authorization_header"))
    if style == 2:
        cred = base64.b64encode(f"svc-report:{human_password(rng)}".encode()).decode()
        tmpl = "> GET /metrics HTTP/2\n> Host: grafana.fabrikam.net\n> Authorization: Basic @@v@@\n> Accept: */*\n"
        return fill("header/basic", tmpl, v=V(cred, "secret", "authorization_header"))
    if style == 3:
        tmpl = (
            'headers = {\n    "Content-Type": "application/json",\n    "X-API-Key": "@@v@@",\n}\n'
        )
        return fill(
            "header/x_api_key_python", tmpl, v=V(rs(rng, 32, HEX), "secret", "api_key_header")
        )
    if style == 4:
        tmpl = "location /upstream/ {\n    proxy_pass https://partner.example-api.net;\n    proxy_set_header X-API-Key @@v@@;\n}\n"
        return fill("header/x_api_key_nginx", tmpl, v=V(opaque, "secret", "api_key_header"))
    tmpl = (
        "fetch(url, {\n  headers: { 'X-Auth-Token': '@@v@@', 'Accept': 'application/json' },\n});\n"
    )
    return fill("header/x_auth_token_js", tmpl, v=V(opaque, "secret", "token_header"))


# ---------------------------------------------------------------- PII packets


def pii(text: str, kind: str) -> V:
    return V(text, "pii", kind)


def phone_v(rng: random.Random) -> tuple[V, str]:
    p, note = phone(rng)
    return pii(p, "phone"), note


def csv_packet(rng: random.Random, i: int) -> Packet:
    rows = ["customer_id,full_name,email,phone,street,city,signup_date"]
    slots: dict[str, str | V] = {}
    notes = set()
    for r in range(rng.randint(3, 6)):
        f, last = name(rng)
        ph, note = phone_v(rng)
        notes.add(note)
        slots[f"e{r}"] = pii(email(rng, f, last), "email")
        slots[f"p{r}"] = ph
        slots[f"a{r}"] = pii(street(rng), "street_address")
        city = city_line(rng).split(",")[0]
        q = '"' if "," in ph.text else ""
        rows.append(
            f'{rng.randint(10000, 99999)},{f} {last},@@e{r}@@,{q}@@p{r}@@{q},"@@a{r}@@",{city},2024-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}'
        )
    return fill(f"pii/csv/{'+'.join(sorted(notes))}", "\n".join(rows) + "\n", **slots)


def sql_packet(rng: random.Random, i: int) -> Packet:
    lines = [
        "INSERT INTO customers (id, first_name, last_name, email, phone, ssn, card_number) VALUES"
    ]
    slots: dict[str, str | V] = {}
    n = rng.randint(2, 4)
    for r in range(n):
        f, last = name(rng)
        slots[f"e{r}"] = pii(email(rng, f, last), "email")
        slots[f"p{r}"] = phone_v(rng)[0]
        slots[f"s{r}"] = pii(ssn(rng), "ssn")
        slots[f"c{r}"] = pii(card(rng), "credit_card")
        end = "," if r < n - 1 else ";"
        lines.append(
            f"  ({r + 1}, '{f}', '{last}', '@@e{r}@@', '@@p{r}@@', '@@s{r}@@', '@@c{r}@@'){end}"
        )
    return fill("pii/sql_insert", "\n".join(lines) + "\n", **slots)


def access_log_packet(rng: random.Random, i: int) -> Packet:
    lines, slots = [], {}
    for r in range(rng.randint(3, 6)):
        ip = public_ipv6(rng) if rng.random() < 0.35 else public_ipv4(rng)
        kind = "ipv6" if ":" in ip else "ipv4"
        slots[f"i{r}"] = pii(ip, kind)
        path = rng.choice(
            ["/api/v2/orders", "/login", "/static/app.js", "/healthz", "/api/v2/cart/items"]
        )
        code = rng.choice([200, 200, 304, 401, 502])
        lines.append(
            f'@@i{r}@@ - - [12/Mar/2025:14:0{r}:5{r} +0000] "GET {path} HTTP/1.1" {code} {rng.randint(200, 9000)} '
            f'"-" "Mozilla/5.0 (X11; Linux x86_64)"'
        )
    return fill("pii/access_log", "\n".join(lines) + "\n", **slots)


def app_log_packet(rng: random.Random, i: int) -> Packet:
    f, last = name(rng)
    em = email(rng, f, last)
    ip = public_ipv4(rng)
    style = rng.randrange(3)
    if style == 0:
        tmpl = (
            '{"ts":"2025-04-01T08:12:44Z","level":"warn","event":"login_failed","user":"@@e@@",'
            '"remote_addr":"@@ip@@","attempt":3}\n'
        )
        return fill("pii/log_json", tmpl, e=pii(em, "email"), ip=pii(ip, "ipv4"))
    if style == 1:
        tmpl = (
            "2025-04-01 08:12:44,118 ERROR [mailer] SMTPRecipientsRefused for <@@e@@>\n"
            'Traceback (most recent call last):\n  File "mailer/send.py", line 54, in deliver\n'
            "    smtp.sendmail(sender, [rcpt], msg)\nsmtplib.SMTPRecipientsRefused: {'@@e@@': (550, b'mailbox unavailable')}\n"
        )
        return fill("pii/traceback_email", tmpl, e=pii(em, "email"))
    enc = urllib.parse.quote(em, safe="")
    tmpl = '@@ip@@ - - [01/Apr/2025:08:12:44 +0000] "GET /unsubscribe?email=@@e@@&list=weekly HTTP/1.1" 302 0\n'
    return fill("pii/urlencoded_email", tmpl, e=pii(enc, "email"), ip=pii(ip, "ipv4"))


def email_msg_packet(rng: random.Random, i: int) -> Packet:
    f, last = name(rng)
    ph, note = phone_v(rng)
    tmpl = (
        f"From: @@from@@\nTo: support@acmecorp.io\nSubject: Re: invoice #{rng.randint(1000, 9999)}\n\n"
        "Hi, the charge went through twice. Please refund to my account:\n\nIBAN: @@iban@@\n\n"
        f"You can reach me at @@ph@@ during the day.\n\nBest,\n{f} {last}\n@@st@@\n{city_line(rng)}\n"
    )
    return fill(
        f"pii/email_message/{note}",
        tmpl,
        **{"from": pii(email(rng, f, last), "email")},
        iban=pii(iban(rng), "iban"),
        ph=ph,
        st=pii(street(rng), "street_address"),
    )


def chat_pii_packet(rng: random.Random, i: int) -> Packet:
    style = rng.randrange(5)
    if style == 0:
        tmpl = "customer called, wants the refund on the card ending differently, full number @@c@@ exp 09/27\n"
        return fill("pii/chat_card", tmpl, c=pii(card(rng), "credit_card"))
    if style == 1:
        tmpl = "For the background check I need your SSN: @@s@@ (that's what HR has on file)\n"
        return fill("pii/chat_ssn", tmpl, s=pii(ssn(rng), "ssn"))
    if style == 2:
        ph, note = phone_v(rng)
        tmpl = "[14:03] lee: the vendor contact is Marta, mobile @@p@@, she's expecting the call\n"
        return fill(f"pii/chat_phone/{note}", tmpl, p=ph)
    if style == 3:
        tmpl = f"Please wire the deposit to IBAN @@b@@ by Friday, reference ACME-{rng.randint(100, 999)}.\n"
        return fill("pii/chat_iban", tmpl, b=pii(iban(rng), "iban"))
    tmpl = "User reports 403s from @@ip@@ since the WAF rule change, can you whitelist it?\n"
    ip = public_ipv6(rng) if rng.random() < 0.5 else public_ipv4(rng)
    return fill("pii/chat_ip", tmpl, ip=pii(ip, "ipv6" if ":" in ip else "ipv4"))


def profile_packet(rng: random.Random, i: int) -> Packet:
    f, last = name(rng)
    ph, note = phone_v(rng)
    style = rng.randrange(2)
    if style == 0:
        tmpl = (
            '{\n  "id": "usr_%s",\n  "name": "%s %s",\n  "email": "@@e@@",\n  "phone": "@@p@@",\n'
            '  "date_of_birth": "@@d@@",\n  "address": {"line1": "@@a@@", "city": "Denver", "zip": "80203"},\n'
            '  "last_ip": "@@ip@@"\n}\n'
        ) % (rs(rng, 12, HEX), f, last)
        return fill(
            f"pii/profile_json/{note}",
            tmpl,
            e=pii(email(rng, f, last), "email"),
            p=ph,
            d=pii(dob_text(rng, 1), "date_of_birth"),
            a=pii(street(rng), "street_address"),
            ip=pii(public_ipv4(rng), "ipv4"),
        )
    tmpl = (
        f"EMPLOYEE ONBOARDING FORM\n\nLegal name: {f} {last}\nDate of birth: @@d@@\nSSN: @@s@@\n"
        f"Home address: @@a@@, {city_line(rng)}\nPersonal phone: @@p@@\nPersonal e-mail: @@e@@\n"
        "Direct deposit IBAN: @@b@@\n"
    )
    return fill(
        f"pii/onboarding/{note}",
        tmpl,
        d=pii(dob_text(rng), "date_of_birth"),
        s=pii(ssn(rng), "ssn"),
        a=pii(street(rng), "street_address"),
        p=ph,
        e=pii(email(rng, f, last), "email"),
        b=pii(iban(rng), "iban"),
    )


def payment_log_packet(rng: random.Random, i: int) -> Packet:
    c = card(rng)
    inner = json.dumps({"pan": c, "exp": "11/28", "amount": 4999})
    line = json.dumps({"level": "debug", "msg": "gateway request", "payload": inner})
    tmpl = "2025-02-11T10:00:01Z " + line.replace(c, "@@c@@") + "\n"
    return fill("pii/log_card_escaped", tmpl, c=pii(c, "credit_card"))


def dob_context_packet(rng: random.Random, i: int) -> Packet:
    f, last = name(rng)
    tmpl = rng.choice(
        [
            "Hi! I'm {f}, born on @@d@@, applying for the loyalty card.\n",
            "Member: {f} {l}\nDOB: @@d@@\nTier: gold\n",
            "| name | dob |\n|---|---|\n| {f} {l} | @@d@@ |\n",
            "customer verification: name={f} {l} birthdate=@@d@@ result=pass\n",
        ]
    ).format(f=f, l=last)
    return fill("pii/dob_context", tmpl, d=pii(dob_text(rng), "date_of_birth"))


# ---------------------------------------------------------------- PHI packets


def phi(text: str, kind: str) -> V:
    return V(text, "phi", kind)


def mrn(rng: random.Random) -> str:
    return rng.choice(
        [
            rs(rng, 8, string.digits),
            rs(rng, 7, string.digits),
            "00" + rs(rng, 7, string.digits),
            "H" + rs(rng, 8, string.digits),
            "MR" + rs(rng, 6, string.digits),
        ]
    )


CONDITIONS = [
    ("type 2 diabetes mellitus", "E11.9", "metformin 500 mg BID"),
    ("community-acquired pneumonia", "J18.9", "ceftriaxone 1 g IV daily"),
    ("acute exacerbation of COPD", "J44.1", "prednisone 40 mg daily"),
    ("atrial fibrillation with RVR", "I48.91", "apixaban 5 mg BID"),
    ("major depressive disorder", "F33.1", "sertraline 100 mg daily"),
    ("CHF exacerbation", "I50.23", "furosemide 40 mg IV BID"),
    ("cellulitis of the left lower extremity", "L03.116", "cefazolin 2 g IV q8h"),
]


def clinical_note_packet(rng: random.Random, i: int) -> Packet:
    f, last = name(rng)
    cond, icd, med = rng.choice(CONDITIONS)
    age = rng.randint(24, 91)
    sex = rng.choice(["male", "female"])
    title = "Mr." if sex == "male" else "Ms."
    tmpl = (
        "PROGRESS NOTE\n\nPatient: @@n@@\nMRN: @@m@@\nDOB: @@d@@\nDate of service: 2025-03-14\n\n"
        f"S: {title} @@ln@@ is a {age}-year-old {sex} with a history of {cond} ({icd}) presenting "
        "for follow-up. Reports improved symptoms, no chest pain.\n"
        f"O: BP 132/84, HR 78, SpO2 96% RA. A1c 7.4%.\n"
        f"A/P: {cond}, improving. Continue {med}. Return in 6 weeks.\n\n"
        "Electronically signed by: R. Alvarez, MD\n"
    )
    return fill(
        "phi/progress_note",
        tmpl,
        n=phi(f"{f} {last}", "patient_name"),
        m=phi(mrn(rng), "mrn"),
        d=phi(dob_text(rng), "date_of_birth"),
        ln=phi(last, "patient_name"),
    )


def discharge_packet(rng: random.Random, i: int) -> Packet:
    f, last = name(rng)
    cond, icd, med = rng.choice(CONDITIONS)
    tmpl = (
        "DISCHARGE SUMMARY\n\nName: @@ln@@, @@fn@@    Medical Record #: @@m@@\n"
        "Date of Birth: @@d@@    Admitted: 03/02/2025  Discharged: 03/07/2025\n\n"
        f"Principal diagnosis: {cond} ({icd}).\n\nHospital course: The patient was admitted from the ED and "
        f"treated with {med}. Cultures negative at 48 h. Ambulating independently at discharge.\n\n"
        "Discharge medications:\n  1. {med}\n  2. acetaminophen 650 mg q6h PRN\n\n"
        "Follow-up with PCP in 1 week.\n"
    ).replace("{med}", med)
    return fill(
        "phi/discharge_summary",
        tmpl,
        ln=phi(last, "patient_name"),
        fn=phi(f, "patient_name"),
        m=phi(mrn(rng), "mrn"),
        d=phi(dob_text(rng), "date_of_birth"),
    )


def hl7_packet(rng: random.Random, i: int) -> Packet:
    f, last = name(rng)
    y, m, d = dob(rng)
    mid = rng.choice(["", "^" + rng.choice(string.ascii_uppercase)])
    msg_type = rng.choice(["ADT^A01^ADT_A01", "ORU^R01^ORU_R01", "ADT^A08^ADT_A01"])
    tmpl = (
        f"MSH|^~\\&|EPIC|MERCYHOSP|LABSYS|MERCY|20250314093000||{msg_type}|MSG{rng.randint(10000, 99999)}|P|2.5.1\r"
        "EVN|A01|20250314093000\r"
        "PID|1||@@m@@^^^MERCY^MR||@@n@@^^^^L||@@d@@|{sex}|||@@a@@^^Portland^OR^97205^USA||@@p@@\r"
        "PV1|1|I|4W^412^B|E|||1234567^ALVAREZ^ROSA^^^^MD\r"
    ).replace("{sex}", rng.choice("MF"))
    if "ORU" in msg_type:
        tmpl += "OBR|1|ORD448|LAB991|4548-4^Hemoglobin A1c^LN\rOBX|1|NM|4548-4^Hemoglobin A1c^LN||8.1|%|4.0-5.6|H|||F\r"
    ph, _ = phone(rng)
    return fill(
        f"phi/hl7/{msg_type[:7]}",
        tmpl,
        m=phi(mrn(rng), "mrn"),
        n=phi(f"{last.upper()}^{f.upper()}{mid}", "patient_name"),
        d=phi(f"{y}{m:02d}{d:02d}", "date_of_birth"),
        a=pii(street(rng), "street_address"),
        p=pii(ph, "phone"),
    )


def fhir_patient(rng: random.Random, pid: str) -> tuple[str, dict[str, V]]:
    f, last = name(rng)
    slots = {
        "fam": phi(last, "patient_name"),
        "giv": phi(f, "patient_name"),
        "bd": phi(dob_text(rng, 1), "date_of_birth"),
        "mrn": phi(mrn(rng), "mrn"),
    }
    res = {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [
            {
                "type": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}
                    ]
                },
                "system": "urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.14",
                "value": "@@mrn@@",
            }
        ],
        "name": [{"use": "official", "family": "@@fam@@", "given": ["@@giv@@"]}],
        "gender": rng.choice(["male", "female"]),
        "birthDate": "@@bd@@",
    }
    return json.dumps(res, indent=2), slots


def fhir_observation(rng: random.Random, pid: str) -> tuple[str, dict[str, V]]:
    f, last = name(rng)
    res = {
        "resourceType": "Observation",
        "status": "final",
        "code": {
            "coding": [
                {
                    "system": "http://loinc.org",
                    "code": "2345-7",
                    "display": "Glucose [Mass/volume] in Serum or Plasma",
                }
            ]
        },
        "subject": {"reference": f"Patient/{pid}", "display": "@@obsname@@"},
        "effectiveDateTime": "2025-03-14T08:30:00Z",
        "valueQuantity": {"value": rng.randint(70, 260), "unit": "mg/dL"},
    }
    return json.dumps(res, indent=2), {"obsname": phi(f"{f} {last}", "patient_name")}


def fhir_packet(rng: random.Random, i: int) -> Packet:
    pid = rs(rng, 8, HEX) + "-" + rs(rng, 4, HEX)
    style = rng.randrange(3)
    if style == 0:
        text, slots = fhir_patient(rng, pid)
        return fill("phi/fhir_patient", text + "\n", **slots)
    if style == 1:
        text, slots = fhir_observation(rng, pid)
        return fill("phi/fhir_observation", text + "\n", **slots)
    pt, s1 = fhir_patient(rng, pid)
    ob, s2 = fhir_observation(rng, pid)
    ind = lambda t: "\n".join("      " + ln for ln in t.split("\n")).lstrip()  # noqa: E731
    text = (
        '{\n  "resourceType": "Bundle",\n  "type": "collection",\n  "entry": [\n    {\n      "resource": '
        + ind(pt)
        + '\n    },\n    {\n      "resource": '
        + ind(ob)
        + "\n    }\n  ]\n}\n"
    )
    return fill("phi/fhir_bundle", text, **s1, **s2)


def claim_packet(rng: random.Random, i: int) -> Packet:
    f, last = name(rng)
    cond, icd, _ = rng.choice(CONDITIONS)
    if rng.random() < 0.5:
        tmpl = (
            f"CLAIM #CLM-2025-{rng.randint(10000, 99999)}\nPayer: BlueRiver Health Plan\nPatient name: @@n@@\nPatient DOB: @@d@@\n"
            f"Member ID: W{rs(rng, 9, string.digits)}\nPatient account / MRN: @@m@@\nDiagnosis: {icd} {cond}\nCPT 99214  $185.00\n"
        )
        return fill(
            "phi/claim_text",
            tmpl,
            n=phi(f"{f} {last}", "patient_name"),
            d=phi(dob_text(rng), "date_of_birth"),
            m=phi(mrn(rng), "mrn"),
        )
    claim = {
        "claim_id": f"CLM{rng.randint(10**7, 10**8)}",
        "patient": {"name": "@@n@@", "dob": "@@d@@", "mrn": "@@m@@"},
        "diagnosis_codes": [icd],
        "description": cond,
        "billed_amount": 412.5,
    }
    return fill(
        "phi/claim_json",
        json.dumps(claim, indent=2) + "\n",
        n=phi(f"{f} {last}", "patient_name"),
        d=phi(dob_text(rng, 1), "date_of_birth"),
        m=phi(mrn(rng), "mrn"),
    )


def clinician_chat_packet(rng: random.Random, i: int) -> Packet:
    f, last = name(rng)
    cond, _, med = rng.choice(CONDITIONS)
    tmpl = rng.choice(
        [
            "[07:55] rn.kelly: bed 12, @@n@@ (MRN @@m@@) spiking to 39.2 overnight, {cond}, on {med}. can you see her first?\n",
            "Dr. Patel - labs back on @@n@@, MRN: @@m@@. K 5.9, repeating. Hx {cond}.\n",
        ]
    ).format(cond=cond, med=med)
    return fill(
        "phi/clinician_chat", tmpl, n=phi(f"{f} {last}", "patient_name"), m=phi(mrn(rng), "mrn")
    )


def lab_csv_packet(rng: random.Random, i: int) -> Packet:
    rows = ["mrn,patient_name,dob,test,result,units,flag"]
    slots: dict[str, str | V] = {}
    for r in range(rng.randint(3, 5)):
        f, last = name(rng)
        slots[f"m{r}"] = phi(mrn(rng), "mrn")
        slots[f"n{r}"] = phi(f"{last}, {f}", "patient_name")
        slots[f"d{r}"] = phi(dob_text(rng, 1), "date_of_birth")
        rows.append(f'@@m{r}@@,"@@n{r}@@",@@d{r}@@,HbA1c,{rng.randint(50, 110) / 10},%,H')
    return fill("phi/lab_csv", "\n".join(rows) + "\n", **slots)


def patients_sql_packet(rng: random.Random, i: int) -> Packet:
    f, last = name(rng)
    cond, icd, _ = rng.choice(CONDITIONS)
    tmpl = (
        "INSERT INTO encounters (mrn, patient_first, patient_last, birth_date, icd10, note) VALUES\n"
        f"  ('@@m@@', '@@fn@@', '@@ln@@', '@@d@@', '{icd}', 'seen for {cond}');\n"
    )
    return fill(
        "phi/sql_insert",
        tmpl,
        m=phi(mrn(rng), "mrn"),
        fn=phi(f, "patient_name"),
        ln=phi(last, "patient_name"),
        d=phi(dob_text(rng, 1), "date_of_birth"),
    )


# ---------------------------------------------------------------- clean packets (hard negatives)


def uuid4(rng: random.Random) -> str:
    h = rs(rng, 32, HEX)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{rng.choice('89ab')}{h[17:20]}-{h[20:]}"


def sha(rng: random.Random, n: int = 40) -> str:
    return rs(rng, n, HEX)


def clean_env_example(rng: random.Random) -> str:
    return (
        "# Copy to .env and fill in real values. Never commit the real file.\n"
        "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n"
        "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
        f"STRIPE_SECRET_KEY={rng.choice(['sk_live_xxxxxxxxxxxxxxxxxxxxxxxx', '<STRIPE_SECRET_KEY>', 'your-stripe-key-here'])}\n"
        f"OPENAI_API_KEY={rng.choice(['your-api-key-here', '<API_KEY>', 'sk-...', '${OPENAI_API_KEY}'])}\n"
        f"DATABASE_URL=postgres://app:{rng.choice(['${DB_PASSWORD}', '<password>', 'changeme', '****'])}@localhost:5432/app\n"
        f"SECRET_KEY={rng.choice(['changeme', 'REPLACE_ME', '[REDACTED]', 'xxxxxxxx'])}\n"
        "GITHUB_TOKEN=\nSENTRY_DSN=\nPORT=8080\n"
    )


def clean_python_env(rng: random.Random) -> str:
    return (
        "import os\nimport uuid\n\nfrom pydantic_settings import BaseSettings\n\n\n"
        "class Settings(BaseSettings):\n"
        '    api_key: str = os.environ["PAYMENTS_API_KEY"]\n'
        '    db_password: str = os.getenv("DB_PASSWORD", "")\n'
        "    token: str | None = None\n"
        f'    request_namespace: uuid.UUID = uuid.UUID("{uuid4(rng)}")\n'
        f"    timeout_s: float = {rng.randint(2, 60)}.0\n    port: int = {rng.choice([8000, 8080, 5432, 6379])}\n\n\n"
        "def headers(settings: Settings) -> dict[str, str]:\n"
        '    return {"Authorization": f"Bearer {settings.api_key}", "X-API-Key": settings.api_key}\n'
    )


def clean_k8s(rng: random.Random) -> str:
    return (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n  labels:\n    app: api\nspec:\n"
        f"  replicas: {rng.randint(1, 6)}\n  template:\n    spec:\n      containers:\n        - name: api\n"
        f"          image: ghcr.io/acme/api@sha256:{sha(rng, 64)}\n"
        "          env:\n            - name: DB_PASSWORD\n              valueFrom:\n                secretKeyRef:\n"
        "                  name: db-credentials\n                  key: password\n"
        '            - name: API_TOKEN\n              value: "${API_TOKEN}"\n'
        f"          ports:\n            - containerPort: {rng.choice([8080, 3000, 9090])}\n"
        "          resources:\n            limits:\n              memory: 512Mi\n              cpu: 500m\n"
    )


def clean_lockfile(rng: random.Random) -> str:
    out = ['{\n  "name": "web",\n  "lockfileVersion": 3,\n  "packages": {']
    for pkg in rng.sample(
        ["react", "lodash", "zod", "axios", "vite", "esbuild", "picocolors", "nanoid"], 4
    ):
        integ = base64.b64encode(bytes(rng.randrange(256) for _ in range(64))).decode()
        ver = f"{rng.randint(0, 18)}.{rng.randint(0, 20)}.{rng.randint(0, 30)}"
        out.append(
            f'    "node_modules/{pkg}": {{\n      "version": "{ver}",\n'
            f'      "resolved": "https://registry.npmjs.org/{pkg}/-/{pkg}-{ver}.tgz",\n'
            f'      "integrity": "sha512-{integ}"\n    }},'
        )
    return "\n".join(out).rstrip(",") + "\n  }\n}\n"


def clean_poetry_lock(rng: random.Random) -> str:
    out = []
    for pkg in rng.sample(["httpx", "anyio", "idna", "certifi", "sniffio", "h11"], 3):
        out.append(
            f'[[package]]\nname = "{pkg}"\nversion = "{rng.randint(0, 4)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}"\n'
            f'files = [\n    {{file = "{pkg}-py3-none-any.whl", hash = "sha256:{sha(rng, 64)}"}},\n]\n'
        )
    return "\n".join(out)


def clean_git_log(rng: random.Random) -> str:
    out = []
    for _ in range(rng.randint(3, 6)):
        f, last = name(rng)
        out.append(
            f"commit {sha(rng)}\nAuthor: {f} {last} <{f.lower()}@example.com>\n"
            f"Date:   Tue Mar {rng.randint(1, 28)} 1{rng.randint(0, 9)}:0{rng.randint(0, 9)}:11 2025 +0100\n\n"
            f"    {rng.choice(['fix flaky retry test', 'bump deps', 'refactor token refresh', 'add password reset flow', 'rotate keys via vault'])}\n"
        )
    return "\n".join(out)


def clean_dockerfile(rng: random.Random) -> str:
    return (
        f"FROM python:3.12-slim@sha256:{sha(rng, 64)} AS base\n"
        "ARG PIP_INDEX_URL\nENV PYTHONDONTWRITEBYTECODE=1 \\\n    APP_SECRET=${APP_SECRET}\n"
        "WORKDIR /app\nCOPY pyproject.toml uv.lock ./\nRUN --mount=type=secret,id=pypi_token \\\n"
        "    PIP_PASSWORD=$(cat /run/secrets/pypi_token) uv sync --frozen\n"
        f"EXPOSE {rng.choice([8000, 8080])}\nHEALTHCHECK CMD curl -f http://127.0.0.1:8000/healthz || exit 1\n"
        'CMD ["uvicorn", "app.main:app", "--host", "0.0.0.0"]\n'
    )


def clean_gha(rng: random.Random) -> str:
    return (
        "name: release\non:\n  push:\n    tags: ['v*']\njobs:\n  publish:\n    runs-on: ubuntu-24.04\n    steps:\n"
        f"      - uses: actions/checkout@{sha(rng)}  # v4.2.2\n"
        f"      - uses: pypa/gh-action-pypi-publish@{sha(rng)}\n        with:\n"
        "          password: ${{ secrets.PYPI_API_TOKEN }}\n"
        '      - run: gh release create "$GITHUB_REF_NAME"\n        env:\n          GH_TOKEN: ${{ secrets.GITHUB_TOKEN }}\n'
    )


def clean_stripe_tests(rng: random.Random) -> str:
    cards = rng.sample(
        [
            "4242424242424242",
            "4000056655665556",
            "5555555555554444",
            "378282246310005",
            "4000000000000002",
            "4242 4242 4242 4242",
        ],
        3,
    )
    return (
        'import pytest\n\n\n@pytest.mark.parametrize(\n    "card",\n    [\n'
        + "".join(f'        "{c}",\n' for c in cards)
        + "    ],\n)\ndef test_checkout_succeeds(client, card):\n"
        '    resp = client.post("/checkout", json={"card": card, "exp": "12/34", "cvc": "123",\n'
        '                                           "email": "buyer@example.com", "phone": "+1 202-555-0143"})\n'
        "    assert resp.status_code == 200\n"
        '    stripe.api_key = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"\n'
    )


def clean_readme(rng: random.Random) -> str:
    return (
        "## Authentication\n\nCreate a token in the dashboard and export it:\n\n```sh\n"
        'export ACME_API_KEY=<API_KEY>\ncurl -H "Authorization: Bearer $ACME_API_KEY" https://api.example.com/v1/me\n```\n\n'
        'Or pass it explicitly: `Client(api_key=os.environ["ACME_API_KEY"])`.\n\n'
        'Example response (token redacted):\n\n```json\n{"token": "****", "user": "jane@example.com", '
        f'"id": "{uuid4(rng)}"}}\n```\n\n'
        "For the AWS examples we use the documented placeholder pair `AKIAIOSFODNN7EXAMPLE` / "
        "`wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY`.\n"
        f"Support line for the demo: +1 (212) 555-01{rng.randint(10, 99)}.\n"
    )


def clean_app_log(rng: random.Random) -> str:
    out = []
    for _ in range(rng.randint(5, 9)):
        ip = rng.choice(
            ["10.0.%d.%d", "192.168.%d.%d", "172.20.%d.%d", "127.0.%d.%d", "100.64.%d.%d"]
        ) % (rng.randint(0, 255), rng.randint(1, 254))
        out.append(
            f"2025-0{rng.randint(1, 9)}-{rng.randint(10, 28)}T{rng.randint(10, 23)}:{rng.randint(10, 59)}:{rng.randint(10, 59)}.{rng.randint(100, 999)}Z "
            f"{rng.choice(['INFO', 'DEBUG', 'WARN'])} req_id={uuid4(rng)} trace={sha(rng, 32)} src={ip}:{rng.randint(1024, 65535)} "
            f"{rng.choice(['GET /healthz', 'POST /api/v1/jobs', 'GET /metrics'])} status={rng.choice([200, 201, 204, 429])} dur_ms={rng.randint(1, 900)}"
        )
    return "\n".join(out) + "\n"


def clean_traceback(rng: random.Random) -> str:
    return (
        "Traceback (most recent call last):\n"
        f'  File "/usr/lib/python3.12/site-packages/httpx/_transports/default.py", line {rng.randint(60, 300)}, in handle_request\n'
        "    resp = self._pool.handle_request(req)\n"
        "httpx.ConnectError: [Errno 111] Connection refused (host=localhost, port=5432)\n\n"
        "goroutine 1 [running]:\nmain.main()\n\t/src/cmd/server/main.go:42 +0x1d\n"
        f"panic: runtime error: invalid memory address or nil pointer dereference [signal SIGSEGV addr=0x0 pc=0x{rs(rng, 6, HEX)}]\n"
        f"\tat com.acme.orders.OrderService.place(OrderService.java:{rng.randint(10, 500)})\n"
    )


def clean_public_keys(rng: random.Random) -> str:
    ssh = "AAAAC3NzaC1lZDI1NTE5AAAAI" + rs(rng, 43, B64)
    rsa = "AAAAB3NzaC1yc2EAAAADAQABAAABgQ" + rs(rng, 500, B64)
    pub = "\n".join(pem_body(rng, "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA", 294))
    cert = "\n".join(pem_body(rng, "MIIDdzCCAl+gAwIBAgIE", 890))
    return (
        f"# authorized_keys\nssh-ed25519 {ssh} deploy@ci\nssh-rsa {rsa} ops@bastion\n\n"
        f"-----BEGIN PUBLIC KEY-----\n{pub}\n-----END PUBLIC KEY-----\n\n"
        f"-----BEGIN CERTIFICATE-----\n{cert}\n-----END CERTIFICATE-----\n"
    )


def clean_checksums(rng: random.Random) -> str:
    out = [
        f"{sha(rng, 64)}  dist/app-{rng.randint(1, 3)}.{rng.randint(0, 9)}.{i}-linux-amd64.tar.gz"
        for i in range(4)
    ]
    out.append(f"md5: {sha(rng, 32)}  sha1: {sha(rng)}")
    return "\n".join(out) + "\n"


def clean_html(rng: random.Random) -> str:
    png = "iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAYAAAAf8/9h" + rs(rng, 300, B64) + "=="
    return (
        "<style>\n  .btn { color: #%s; background: #%s; border-radius: 4px; }\n</style>\n"
        % (rs(rng, 6, HEX), rs(rng, 3, HEX))
        + f'<img alt="logo" src="data:image/png;base64,{png}">\n'
        + '<form method="post"><input type="password" name="password" placeholder="Password" autocomplete="current-password"></form>\n'
    )


def clean_minified(rng: random.Random) -> str:
    parts = []
    for _ in range(40):
        a, b = rs(rng, 1, string.ascii_letters), rs(rng, 2, string.ascii_letters)
        parts.append(
            rng.choice(
                [
                    f"function {a}({b}){{return {b}&&{b}.__esModule?{b}:{{default:{b}}}}}",
                    f'var {a}={b}.exports,{b}="{rs(rng, 12, ALNUM)}";',
                    f"{a}.prototype.{b}=function(e,t){{return e<<{rng.randint(1, 9)}^t>>>0}};",
                    f'const {a}=["{rs(rng, 8, HEX)}",{rng.randint(0, 99999)}];',
                ]
            )
        )
    return (
        '!function(){"use strict";' + "".join(parts) + "}();\n//# sourceMappingURL=app.min.js.map\n"
    )


def clean_terraform(rng: random.Random) -> str:
    return (
        'variable "db_password" {\n  type      = string\n  sensitive = true\n}\n\n'
        'resource "aws_db_instance" "main" {\n  engine         = "postgres"\n  engine_version = "16.3"\n'
        f'  instance_class = "db.t4g.{rng.choice(["micro", "small", "medium"])}"\n'
        '  username       = "app"\n  password       = var.db_password\n}\n\n'
        'data "aws_secretsmanager_secret_version" "api" {\n  secret_id = "prod/api/token"\n}\n'
        f'resource "aws_security_group_rule" "https" {{\n  cidr_blocks = ["10.{rng.randint(0, 255)}.0.0/16", "203.0.113.0/24"]\n  from_port = 443\n}}\n'
    )


def clean_chat(rng: random.Random) -> str:
    return rng.choice(
        [
            "[09:12] ana: the token for staging is in vault under secret/data/ci/staging, don't paste it here\n"
            f"[09:13] bo: ok. also bumped to v{rng.randint(1, 5)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}, see PR #{rng.randint(100, 9999)}\n"
            "[09:14] ana: password rotation runs nightly at 02:00 UTC\n",
            f"lgtm, but the retry budget should be 3 not 5. build {sha(rng)[:12]} passed on 2025-03-0{rng.randint(1, 9)}.\n"
            "API key goes in the env var, never in code. I put [REDACTED] in the ticket.\n",
            "Q: why does login fail with 'invalid password'?\nA: The fixture user is test@example.org; "
            "the test reads PASSWORD from ${TEST_PASSWORD}. Check your .env.\n",
        ]
    )


def clean_sql_schema(rng: random.Random) -> str:
    return (
        "CREATE TABLE users (\n  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),\n  email TEXT NOT NULL UNIQUE,\n"
        "  phone TEXT,\n  password_hash TEXT NOT NULL,\n  date_of_birth DATE,\n  ssn_last4 CHAR(4),\n"
        "  created_at TIMESTAMPTZ NOT NULL DEFAULT now()\n);\n"
        "INSERT INTO users (id, email, phone) VALUES\n"
        f"  ('{uuid4(rng)}', 'alice@example.com', '+1-202-555-01{rng.randint(10, 99)}'),\n"
        f"  ('{uuid4(rng)}', 'bob@example.org', '(212) 555-01{rng.randint(10, 99)}');\n"
    )


def clean_go(rng: random.Random) -> str:
    return (
        'package auth\n\nimport (\n\t"os"\n\t"time"\n)\n\n'
        "// Token is read from the environment so it never lands in the repo.\n"
        'func Token() string { return os.Getenv("SERVICE_TOKEN") }\n\n'
        f"const refreshEvery = {rng.randint(5, 60)} * time.Minute\n"
        f'const buildID = "{sha(rng)}"\n'
        'var defaultAddr = "127.0.0.1:%d"\n'
        % rng.choice([8080, 9000])
        + 'func Password(cfg Config) string { return cfg.Secrets["password"] }\n'
    )


def clean_java(rng: random.Random) -> str:
    return (
        "@Configuration\npublic class SecurityConfig {\n"
        '    @Value("${app.jwt.secret}")\n    private String jwtSecret;\n\n'
        '    @Value("${spring.datasource.password}")\n    private String dbPassword;\n\n'
        f"    private static final long SERIAL_VERSION = {rng.randint(10**15, 10**18)}L;\n"
        f'    private static final String COLOR = "#{rs(rng, 6, HEX)}";\n}}\n'
    )


def clean_rust(rng: random.Random) -> str:
    return (
        '[package]\nname = "ingest"\nversion = "0.%d.%d"\nedition = "2021"\n\n'
        % (rng.randint(1, 30), rng.randint(0, 9))
        + '[dependencies]\ntokio = { version = "1.40", features = ["full"] }\nserde = "1.0.210"\n\n'
        + f'[[package]]\nname = "serde"\nversion = "1.0.210"\nsource = "registry+https://github.com/rust-lang/crates.io-index"\n'
        f'checksum = "{sha(rng, 64)}"\n'
    )


def clean_ips(rng: random.Random) -> str:
    return (
        "# test networks (RFC 5737 / RFC 3849)\n"
        f"upstream a {{ server 192.0.2.{rng.randint(1, 254)}:8443; server 198.51.100.{rng.randint(1, 254)}:8443; }}\n"
        f"allow 203.0.113.{rng.randint(1, 254)};\nallow 2001:db8::{rng.randint(1, 999)};\nallow ::1;\nallow fe80::1%eth0;\n"
        "allow 10.0.0.0/8;\nallow 172.16.0.0/12;\nresolver 127.0.0.53 valid=30s;\nlisten 0.0.0.0:443 ssl;\n"
        f"# release {rng.randint(1, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 99)} built 2025-04-0{rng.randint(1, 9)} 14:22:03\n"
    )


def clean_numbers(rng: random.Random) -> str:
    rows = ["order_id,created_ms,amount_cents,items,region,snowflake"]
    for _ in range(8):
        rows.append(
            f"{rng.randint(10**5, 10**6)},{rng.randint(1_700_000_000_000, 1_760_000_000_000)},{rng.randint(100, 99999)},"
            f"{rng.randint(1, 9)},eu-{rng.choice(['west', 'central'])}-1,{rng.randint(10**17, 10**18)}"
        )
    return "\n".join(rows) + "\n"


def clean_test_fixtures(rng: random.Random) -> str:
    return (
        "FIXTURE_USERS = [\n"
        '    {"name": "Test User", "email": "test.user@example.com", "phone": "555-0100", "ssn": "XXX-XX-1234"},\n'
        '    {"name": "Jane Example", "email": "jane@example.net", "card": "**** **** **** 4242"},\n'
        "]\n"
        f'MOCK_TOKEN = "test-token"\nFAKE_JWT_SECRET = "not-a-secret"  # noqa\nSEED = {rng.randint(0, 10**6)}\n'
        'API_KEY = "dummy"\nPASSWORD = "password"  # test fixture only\n'
    )


def clean_jwt_doc(rng: random.Random) -> str:
    return (
        "A JWT has three base64url parts. The jwt.io example token is:\n\n"
        "    eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
        "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c\n\n"
        f"Decode the header with `base64 -d` and check `exp` against the clock (skew {rng.randint(1, 120)} s).\n"
    )


def clean_fhir_code(rng: random.Random) -> str:
    return (
        "def patient_name(resource: dict) -> str:\n"
        '    """Return "Given Family" from a FHIR Patient; empty when absent."""\n'
        '    names = resource.get("name") or [{}]\n'
        '    return " ".join(names[0].get("given", []) + [names[0].get("family", "")]).strip()\n\n\n'
        "def mrn(resource: dict) -> str | None:\n"
        '    for ident in resource.get("identifier", []):\n'
        '        if ident.get("type", {}).get("coding", [{}])[0].get("code") == "MR":\n'
        '            return ident["value"]\n    return None\n'
        f"# HL7 segment order: MSH, EVN, PID, PV1 (v2.{rng.randint(3, 8)})\n"
    )


def clean_changelog(rng: random.Random) -> str:
    out = ["# Changelog\n"]
    for _ in range(4):
        out.append(
            f"## {rng.randint(1, 4)}.{rng.randint(0, 20)}.{rng.randint(0, 15)} - 2025-0{rng.randint(1, 9)}-{rng.randint(10, 28)}\n"
            f"- {rng.choice(['Fixed token refresh race', 'Redact passwords in logs', 'Support IPv6 listeners', 'Faster startup'])} (#{rng.randint(100, 4000)})\n"
        )
    return "\n".join(out)


CLEAN: list[Callable[[random.Random], str]] = [
    clean_env_example, clean_python_env, clean_k8s, clean_lockfile, clean_poetry_lock, clean_git_log,
    clean_dockerfile, clean_gha, clean_stripe_tests, clean_readme, clean_app_log, clean_traceback,
    clean_public_keys, clean_checksums, clean_html, clean_minified, clean_terraform, clean_chat,
    clean_sql_schema, clean_go, clean_java, clean_rust, clean_ips, clean_numbers, clean_test_fixtures,
    clean_jwt_doc, clean_fhir_code, clean_changelog,
]  # fmt: skip


# ---------------------------------------------------------------- assembly

# kinds whose value is only sensitive next to a keyword: never planted bare
CONTEXTUAL = {"aws_secret_access_key", "twilio_auth_token", "keyword_password", "keyword_secret"}

Builder = Callable[[random.Random, int], Packet]

SECRET_BUILDERS: list[tuple[Builder, int]] = [
    (key_block_packet, 42),
    (gcp_packet, 15),
    (azure_packet, 15),
    (db_url_packet, 30),
    (userinfo_packet, 16),
    (header_packet, 30),
]
PII_BUILDERS: list[tuple[Builder, int]] = [
    (csv_packet, 15),
    (sql_packet, 10),
    (access_log_packet, 15),
    (app_log_packet, 24),
    (email_msg_packet, 20),
    (chat_pii_packet, 45),
    (profile_packet, 20),
    (payment_log_packet, 12),
    (dob_context_packet, 24),
]
PHI_BUILDERS: list[tuple[Builder, int]] = [
    (clinical_note_packet, 30),
    (discharge_packet, 25),
    (hl7_packet, 25),
    (fhir_packet, 36),
    (claim_packet, 20),
    (clinician_chat_packet, 20),
    (lab_csv_packet, 10),
    (patients_sql_packet, 12),
]


def token_packet(rng: random.Random, kind: str, i: int) -> Packet:
    value, hint = SECRETS[kind](rng)
    roll = rng.random()
    if roll < 0.55:
        return file_packet(rng, "tok", kind, value, hint)
    if roll < 0.75:
        return chat_packet(rng, "tok", kind, value, hint)
    if kind in CONTEXTUAL:
        for _ in range(20):
            p = log_packet(rng, "tok", kind, value, hint)
            if not p.name.endswith("traceback"):
                return p
    return log_packet(rng, "tok", kind, value, hint)


def build(seed: int = 0) -> tuple[list[Packet], list[Packet]]:
    """Return (dirty, clean) packets; the same seed always gives the same corpus."""
    rng = random.Random(seed)
    dirty: list[Packet] = []
    for kind in SECRETS:
        per = 24 if kind in ("keyword_password", "keyword_secret") else 12
        dirty += [token_packet(rng, kind, i) for i in range(per)]
    for builders in (SECRET_BUILDERS, PII_BUILDERS, PHI_BUILDERS):
        for fn, count in builders:
            dirty += [fn(rng, i) for i in range(count)]
    dirty = [Packet(f"{p.name}#{i}", p.text, p.planted) for i, p in enumerate(dirty)]
    clean = [
        Packet(f"clean/{fn.__name__.removeprefix('clean_')}#{i}", fn(rng), ())
        for i in range(7)
        for fn in CLEAN
    ]
    return dirty, clean
