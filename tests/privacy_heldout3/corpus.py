# ruff: noqa: E501  (corpus texts are literal packets; wrapping them would hide their layout)
"""Third independent privacy corpus: many container types, few packets each.

Written from the issue text only, to estimate how the detector does on data it
was never tuned on. Values are random but carry their real formats (prefixes,
lengths, checksums); none is a real credential or person.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import random
import re
import string
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import phonenumbers

LOWER = string.ascii_lowercase
UPPER = string.ascii_uppercase
DIGITS = string.digits
ALNUM = string.ascii_letters + DIGITS
URLSAFE = ALNUM + "-_"
B64 = ALNUM + "+/"
HEX = "0123456789abcdef"


@dataclass(frozen=True)
class Packet:
    """A text with the spans of the values planted in it."""

    name: str
    text: str
    planted: tuple[tuple[int, int, str, str], ...]


@dataclass(frozen=True)
class V:
    """A planted value: the text as written, its category and kind."""

    value: str
    category: str
    kind: str


_SLOT = re.compile(r"⟦(\w+)⟧")


def fill(name: str, template: str, slots: dict[str, V | str]) -> Packet:
    """Substitute ⟦slot⟧ markers, recording where planted values land."""
    out: list[str] = []
    planted: list[tuple[int, int, str, str]] = []
    pos = last = 0
    for m in _SLOT.finditer(template):
        lit = template[last : m.start()]
        out.append(lit)
        pos += len(lit)
        v = slots[m.group(1)]
        if isinstance(v, V):
            planted.append((pos, pos + len(v.value), v.category, v.kind))
            out.append(v.value)
            pos += len(v.value)
        else:
            out.append(v)
            pos += len(v)
        last = m.end()
    out.append(template[last:])
    return Packet(name, "".join(out), tuple(planted))


def rs(r: random.Random, n: int, alphabet: str = ALNUM) -> str:
    """Random string that mixes character classes like a real token does."""
    while True:
        s = "".join(r.choice(alphabet) for _ in range(n))
        if alphabet != ALNUM and alphabet != URLSAFE and alphabet != B64:
            return s
        if (
            any(c.isdigit() for c in s)
            and any(c.isupper() for c in s)
            and any(c.islower() for c in s)
        ):
            return s


def _b62(n: int) -> str:
    out = ""
    while n:
        n, d = divmod(n, 62)
        out = (DIGITS + UPPER + LOWER)[d] + out
    return out.rjust(6, "0")


def luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_ok(num: str) -> bool:
    return luhn_digit(num[:-1]) == num[-1]


def iban_ok(iban: str) -> bool:
    s = iban.replace(" ", "")
    s = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in s)) % 97 == 1


FIRST = [
    "Maria",
    "Olusegun",
    "Priya",
    "Dmitri",
    "Aisha",
    "Tomasz",
    "Camille",
    "Haruto",
    "Ingrid",
    "Mateo",
    "Keisha",
    "Ravi",
    "Svetlana",
    "Bronwyn",
    "Joaquin",
    "Mei-Ling",
    "Declan",
    "Fatima",
    "Lars",
    "Yolanda",
    "Kwame",
    "Annika",
    "Rafael",
    "Siobhan",
    "Tariq",
    "Elena",
    "Grayson",
    "Nadia",
    "Bogdan",
    "Lucinda",
]
LAST = [
    "Gonzalez",
    "Adeyemi",
    "Raghunathan",
    "Volkov",
    "Rahman",
    "Kowalczyk",
    "Beaulieu",
    "Tanaka",
    "Lindqvist",
    "Herrera",
    "Washington",
    "Subramanian",
    "Petrenko",
    "Fairweather",
    "Castellanos",
    "Okafor",
    "Brennan",
    "Haddad",
    "Johansson",
    "Delgado",
    "Mensah",
    "Vogel",
    "Albuquerque",
    "McAllister",
    "Qureshi",
    "Marinescu",
    "Whitfield",
    "Nakashima",
    "Oyelaran",
    "Pruitt",
]
STREETS = [
    "Maple Avenue",
    "Oakridge Drive",
    "Willow Lane",
    "Cedar Street",
    "Harbor View Road",
    "Elm Court",
    "Sunset Boulevard",
    "Kingsley Place",
    "Birchwood Terrace",
    "Lakeshore Drive",
    "Pine Hollow Road",
    "Mill Street",
    "Juniper Way",
]
CITIES = (
    ("Springfield", "IL", "62704"),
    ("Tacoma", "WA", "98402"),
    ("Columbus", "OH", "43215"),
    ("Albany", "NY", "12207"),
    ("Boise", "ID", "83702"),
    ("Raleigh", "NC", "27601"),
    ("Mesa", "AZ", "85201"),
    ("Madison", "WI", "53703"),
)
MAIL_DOMAINS = (
    "gmail.com",
    "outlook.com",
    "yahoo.co.uk",
    "protonmail.com",
    "acme-logistics.io",
    "fastmail.fm",
)
US_NPA = (212, 312, 415, 617, 646, 702, 713, 786, 206, 303, 404, 503, 512, 602, 718, 917, 929, 973)
INTL = ("GB", "DE", "FR", "IN", "AU", "BR", "NL", "ES", "MX", "JP")
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


class Gen:
    """Value generators in real formats, all drawing from one seeded RNG."""

    def __init__(self, r: random.Random) -> None:
        self.r = r

    # ---------- secrets ----------
    def aws_id(self) -> V:
        return V(
            self.r.choice(("AKIA", "ASIA")) + rs(self.r, 16, UPPER + "234567"),
            "secret",
            "aws_access_key_id",
        )

    def aws_secret(self) -> V:
        return V(rs(self.r, 40, B64), "secret", "aws_secret_access_key")

    def github(self, prefix: str = "") -> V:
        p = prefix or self.r.choice(("ghp_", "ghp_", "gho_", "ghu_", "ghs_"))
        body = rs(self.r, 30)
        return V(p + body + _b62(zlib.crc32(body.encode())), "secret", "github_token")

    def github_fine(self) -> V:
        return V("github_pat_" + rs(self.r, 22) + "_" + rs(self.r, 59), "secret", "github_token")

    def gitlab(self) -> V:
        return V("glpat-" + rs(self.r, 20, URLSAFE), "secret", "gitlab_token")

    def slack_token(self) -> V:
        p = self.r.choice(("xoxb", "xoxp"))
        a, b = self.r.randint(10**10, 10**13), self.r.randint(10**10, 10**13)
        return V(f"{p}-{a}-{b}-{rs(self.r, 24)}", "secret", "slack_token")

    def slack_webhook(self) -> V:
        t = "T" + rs(self.r, 10, UPPER + DIGITS)
        b = "B" + rs(self.r, 10, UPPER + DIGITS)
        return V(
            f"https://hooks.slack.com/services/{t}/{b}/{rs(self.r, 24)}", "secret", "slack_webhook"
        )

    def stripe(self) -> V:
        p = self.r.choice(("sk_live_", "rk_live_"))
        return V(p + rs(self.r, self.r.choice((24, 99))), "secret", "stripe_key")

    def stripe_whsec(self) -> V:
        return V("whsec_" + rs(self.r, 32), "secret", "stripe_webhook_secret")

    def openai(self) -> V:
        if self.r.random() < 0.6:
            v = "sk-proj-" + rs(self.r, 74, URLSAFE) + "T3BlbkFJ" + rs(self.r, 74, URLSAFE)
        else:
            v = "sk-" + rs(self.r, 20) + "T3BlbkFJ" + rs(self.r, 20)
        return V(v, "secret", "openai_key")

    def anthropic(self) -> V:
        return V("sk-ant-api03-" + rs(self.r, 93, URLSAFE) + "AA", "secret", "anthropic_key")

    def google(self) -> V:
        return V("AIza" + rs(self.r, 35, URLSAFE), "secret", "google_api_key")

    def twilio(self) -> V:
        return V("SK" + rs(self.r, 32, HEX), "secret", "twilio_key")

    def sendgrid(self) -> V:
        return V(
            "SG." + rs(self.r, 22, URLSAFE) + "." + rs(self.r, 43, URLSAFE),
            "secret",
            "sendgrid_key",
        )

    def npm(self) -> V:
        body = rs(self.r, 30)
        return V("npm_" + body + _b62(zlib.crc32(body.encode())), "secret", "npm_token")

    def pypi(self) -> V:
        return V("pypi-AgEIcHlwaS5vcmc" + rs(self.r, 160, URLSAFE), "secret", "pypi_token")

    def hf(self) -> V:
        return V("hf_" + rs(self.r, 34, string.ascii_letters), "secret", "huggingface_token")

    def discord(self) -> V:
        uid = str(self.r.randint(10**17, 10**19 - 1))
        head = base64.b64encode(uid.encode()).decode().rstrip("=")
        return V(
            f"{head}.{rs(self.r, 6, URLSAFE)}.{rs(self.r, 38, URLSAFE)}", "secret", "discord_token"
        )

    def telegram(self) -> V:
        return V(
            f"{self.r.randint(10**8, 10**10 - 1)}:AA{rs(self.r, 33, URLSAFE)}",
            "secret",
            "telegram_token",
        )

    def jwt(self) -> V:
        def enc(d: dict[str, object]) -> str:
            return (
                base64.urlsafe_b64encode(json.dumps(d, separators=(",", ":")).encode())
                .decode()
                .rstrip("=")
            )

        head = enc({"alg": self.r.choice(("HS256", "RS256")), "typ": "JWT"})
        iat = self.r.randint(1_700_000_000, 1_780_000_000)
        body = enc(
            {
                "sub": str(self.r.randint(1000, 99999)),
                "role": "service_role",
                "iat": iat,
                "exp": iat + 3600,
            }
        )
        return V(f"{head}.{body}.{rs(self.r, 43, URLSAFE)}", "secret", "jwt")

    def password(self) -> V:
        r = self.r
        if r.random() < 0.5:
            words = ("harbor", "violet", "cobalt", "mango", "falcon", "tundra", "quartz", "ember")
            v = (
                r.choice(words).capitalize()
                + r.choice("!#%*-")
                + r.choice(words)
                + str(r.randint(10, 9999))
            )
        else:
            v = rs(r, r.randint(14, 22), ALNUM + "!#%^*-_")
        return V(v, "secret", "password")

    def url_password(self) -> V:
        return V(rs(self.r, self.r.randint(12, 24), ALNUM + "-_."), "secret", "password")

    def hex_secret(self, n: int = 64, kind: str = "generic_secret") -> V:
        return V(rs(self.r, n, HEX), "secret", kind)

    def b64_secret(self, n: int = 43, kind: str = "generic_secret") -> V:
        return V(rs(self.r, n, B64) + "=", "secret", kind)

    def token(self, n: int = 40, kind: str = "generic_secret") -> V:
        return V(rs(self.r, n, URLSAFE), "secret", kind)

    def azure_key(self) -> V:
        return V(rs(self.r, 86, B64) + "==", "secret", "azure_storage_key")

    def _pem_body(self, head: str, n: int) -> str:
        raw = head + rs(self.r, n * 64 - len(head) + self.r.randint(-40, -2), B64)
        return "\n".join(raw[i : i + 64] for i in range(0, len(raw), 64))

    def pem_key(self, escaped: bool = False) -> V:
        style = self.r.choice(("RSA", "PKCS8", "EC", "ENC"))
        if style == "RSA":
            v = f"-----BEGIN RSA PRIVATE KEY-----\n{self._pem_body('MIIEowIBAAKCAQEA', 25)}\n-----END RSA PRIVATE KEY-----"
        elif style == "PKCS8":
            body = self._pem_body("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQ", 26)
            v = f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----"
        elif style == "EC":
            v = f"-----BEGIN EC PRIVATE KEY-----\n{self._pem_body('MHcCAQEEI', 3)}\n-----END EC PRIVATE KEY-----"
        else:
            dek = rs(self.r, 32, "0123456789ABCDEF")
            body = self._pem_body("MIIEpAIBAAKCAQEA", 25)
            v = (
                "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
                f"DEK-Info: AES-256-CBC,{dek}\n\n{body}\n-----END RSA PRIVATE KEY-----"
            )
        if escaped:
            body = self._pem_body("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQ", 26)
            v = f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n".replace(
                "\n", "\\n"
            )
        return V(v, "secret", "private_key")

    def openssh_key(self) -> V:
        body = self._pem_body(
            "b3BlbnNzaC1rZXktdjEAAAAA"
            + self.r.choice(("BG5vbmUAAAAEbm9uZQ", "CmFlczI1Ni1jdHIAAAAGYmNyeXB0")),
            7,
        )
        return V(
            f"-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n-----END OPENSSH PRIVATE KEY-----",
            "secret",
            "private_key",
        )

    def pgp_key(self) -> V:
        body = self._pem_body("lQdGBGX" + rs(self.r, 4), 30)
        v = (
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n"
            f"{body}\n={rs(self.r, 4, B64)}\n-----END PGP PRIVATE KEY BLOCK-----"
        )
        return V(v, "secret", "private_key")

    # ---------- PII ----------
    def first(self) -> str:
        return self.r.choice(FIRST)

    def last(self) -> str:
        return self.r.choice(LAST)

    def email(self, first: str | None = None, last: str | None = None) -> V:
        f = (first or self.first()).lower().replace("-", "")
        ln = (last or self.last()).lower()
        local = self.r.choice(
            (f"{f}.{ln}", f"{f[0]}{ln}", f"{f}{self.r.randint(1, 99)}", f"{f}_{ln}")
        )
        return V(f"{local}@{self.r.choice(MAIL_DOMAINS)}", "pii", "email")

    def us_phone(self, style: int | None = None) -> V:
        r = self.r
        while True:
            npa, nxx, line = r.choice(US_NPA), r.randint(201, 999), r.randint(0, 9999)
            if nxx == 555 or nxx % 100 == 11:
                continue
            n = phonenumbers.parse(f"+1{npa}{nxx}{line:04d}")
            if phonenumbers.is_valid_number(n):
                break
        s = r.randrange(5) if style is None else style
        fmt = (
            f"({npa}) {nxx}-{line:04d}",
            f"{npa}-{nxx}-{line:04d}",
            f"{npa}.{nxx}.{line:04d}",
            f"+1 {npa} {nxx} {line:04d}",
            f"+1{npa}{nxx}{line:04d}",
        )[s]
        return V(fmt, "pii", "phone")

    def intl_phone(self) -> V:
        r = self.r
        while True:
            reg = r.choice(INTL)
            ex = phonenumbers.example_number_for_type(reg, phonenumbers.PhoneNumberType.MOBILE)
            nat = str(ex.national_number)
            keep = max(2, len(nat) - 6)
            cand = nat[:keep] + "".join(r.choice(DIGITS) for _ in range(len(nat) - keep))
            n = phonenumbers.parse(f"+{ex.country_code}{cand}")
            if phonenumbers.is_valid_number(n) and cand != nat:
                break
        f = r.choice(
            (phonenumbers.PhoneNumberFormat.INTERNATIONAL, phonenumbers.PhoneNumberFormat.E164)
        )
        return V(phonenumbers.format_number(n, f), "pii", "phone")

    def phone(self) -> V:
        return self.us_phone() if self.r.random() < 0.6 else self.intl_phone()

    def ssn(self, sep: str = "-") -> V:
        r = self.r
        while True:
            a, g, s = r.randint(1, 899), r.randint(1, 99), r.randint(1, 9999)
            if a != 666 and (a, g, s) not in ((78, 5, 1120), (219, 9, 9999)):
                return V(f"{a:03d}{sep}{g:02d}{sep}{s:04d}", "pii", "ssn")

    def card(self, sep: str | None = None) -> V:
        r = self.r
        brand = r.choice(("visa", "mc", "mc2", "amex", "disc"))
        prefix, n = {
            "visa": ("4", 16),
            "mc": (str(r.randint(51, 55)), 16),
            "mc2": (str(r.randint(2221, 2720)), 16),
            "amex": (r.choice(("34", "37")), 15),
            "disc": ("6011", 16),
        }[brand]
        body = prefix + "".join(r.choice(DIGITS) for _ in range(n - 1 - len(prefix)))
        num = body + luhn_digit(body)
        sep = r.choice((" ", "-", "")) if sep is None else sep
        groups = (4, 6, 5) if n == 15 else (4, 4, 4, 4)
        parts, i = [], 0
        for g in groups:
            parts.append(num[i : i + g])
            i += g
        return V(sep.join(parts), "pii", "credit_card")

    def iban(self, spaced: bool | None = None) -> V:
        r = self.r
        cc = r.choice(("DE", "GB", "NL", "CH", "AT", "IE", "FR"))

        def d(n: int) -> str:
            return "".join(r.choice(DIGITS) for _ in range(n))

        bban = {
            "DE": lambda: d(18),
            "GB": lambda: r.choice(("NWBK", "BARC", "LOYD", "MIDL")) + d(14),
            "NL": lambda: r.choice(("ABNA", "INGB", "RABO")) + d(10),
            "CH": lambda: d(17),
            "AT": lambda: d(16),
            "IE": lambda: r.choice(("AIBK", "BOFI")) + d(14),
            "FR": lambda: d(23),
        }[cc]()
        num = int("".join(str(int(c, 36)) for c in bban + cc + "00"))
        iban = f"{cc}{98 - num % 97:02d}{bban}"
        if spaced if spaced is not None else r.random() < 0.5:
            iban = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
        return V(iban, "pii", "iban")

    def ipv4(self) -> V:
        while True:
            ip = ipaddress.IPv4Address(self.r.randint(0x01000000, 0xDFFFFFFF))
            if ip.is_global and str(ip).split(".")[-1] not in ("0", "255"):
                return V(str(ip), "pii", "ip_address")

    def ipv6(self) -> V:
        while True:
            head = self.r.choice(("2a00", "2a02", "2600", "2607", "2001:4860", "2a01", "2c0f"))
            groups = head.split(":") + [
                f"{self.r.randint(1, 0xFFFF):x}" for _ in range(8 - len(head.split(":")))
            ]
            ip = ipaddress.IPv6Address(":".join(groups))
            if ip.is_global:
                return V(str(ip), "pii", "ip_address")

    def street(self, unit: bool = False) -> V:
        s = f"{self.r.randint(12, 9870)} {self.r.choice(STREETS)}"
        if unit:
            s += self.r.choice(
                (
                    f", Apt {self.r.randint(1, 40)}{self.r.choice('ABCD')}",
                    f" Unit {self.r.randint(2, 300)}",
                )
            )
        return V(s, "pii", "address")

    def city(self) -> str:
        c, st, z = self.r.choice(CITIES)
        return f"{c}, {st} {z}"

    def dob_parts(self) -> tuple[int, int, int]:
        return self.r.randint(1938, 2004), self.r.randint(1, 12), self.r.randint(1, 28)

    def dob(self, cat: str = "pii", style: int | None = None) -> V:
        y, m, d = self.dob_parts()
        s = self.r.randrange(4) if style is None else style
        txt = (
            f"{m:02d}/{d:02d}/{y}",
            f"{y}-{m:02d}-{d:02d}",
            f"{MONTHS[m - 1]} {d}, {y}",
            f"{y}{m:02d}{d:02d}",
        )[s]
        return V(txt, cat, "dob")

    # ---------- PHI ----------
    def mrn(self) -> V:
        r = self.r
        v = r.choice(
            (
                str(r.randint(10**6, 10**8 - 1)),
                f"MR{r.randint(10**5, 10**7)}",
                f"{r.randint(100, 999)}-{r.randint(10**4, 10**5 - 1)}",
            )
        )
        return V(v, "phi", "mrn")

    def patient(self, style: int = 0) -> tuple[str, str, V]:
        f, ln = self.first(), self.last()
        txt = (
            f"{f} {ln}",
            f"{ln}, {f}",
            f"{ln.upper()}^{f.upper()}",
            f"{ln}^{f}^{self.r.choice(UPPER)}",
        )[style]
        return f, ln, V(txt, "phi", "patient_name")

    def pname(self, style: int = 0) -> V:
        return self.patient(style)[2]


Slots = dict[str, V | str]
Container = Callable[[Gen], list[tuple[str, Slots]]]


# ====================== dirty containers ======================


def d_gitlab_ci(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            "stages: [deploy]\nvariables:\n  AWS_DEFAULT_REGION: eu-west-1\n  AWS_ACCESS_KEY_ID: ⟦a⟧\n"
            "  AWS_SECRET_ACCESS_KEY: ⟦b⟧\ndeploy:\n  script:\n    - aws s3 sync dist/ s3://static-site\n",
            {"a": g.aws_id(), "b": g.aws_secret()},
        ),
        (
            "Running with gitlab-runner 16.9.1 (782c6ecb)\n$ export GITLAB_TOKEN=⟦a⟧\n$ glab release create v2.3.0\n"
            "Created release v2.3.0\nJob succeeded\n",
            {"a": g.gitlab()},
        ),
        (
            "# Settings > CI/CD > Variables (copied for the migration ticket)\nKey\tValue\tProtected\n"
            "DEPLOY_TOKEN\t⟦a⟧\tyes\nSENTRY_AUTH\t⟦b⟧\tno\n",
            {"a": g.gitlab(), "b": g.hex_secret(64)},
        ),
    ]


def d_ci_logs(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            '#!/bin/bash -eo pipefail\necho "//registry.npmjs.org/:_authToken=⟦a⟧" > ~/.npmrc\nnpm publish --access public\n'
            "+ @acme/ui@4.2.1\nCircleCI received exit code 0\n",
            {"a": g.npm()},
        ),
        (
            "[Pipeline] sh\n+ curl -sf -H 'Authorization: Bearer ⟦a⟧' https://api.github.com/repos/acme/infra/dispatches\n"
            "[Pipeline] }\nFinished: SUCCESS\n",
            {"a": g.github()},
        ),
        (
            "Run pypa/gh-action-pypi-publish@release/v1\n  with:\n    user: __token__\n    password: ⟦a⟧\n"
            "Uploading distributions to https://upload.pypi.org/legacy/\n",
            {"a": g.pypi()},
        ),
    ]


def d_vercel_env(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            '# Created by Vercel CLI\nNEXT_PUBLIC_SITE_URL="https://shop.acme-logistics.io"\n'
            'DATABASE_URL="postgres://default:⟦p⟧@ep-cool-lab-123456.us-east-1.aws.neon.tech:5432/verceldb"\n'
            'NEXTAUTH_SECRET="⟦s⟧"\nSTRIPE_SECRET_KEY="⟦k⟧"\n',
            {"p": g.url_password(), "s": g.b64_secret(43), "k": g.stripe()},
        ),
        (
            "$ netlify env:list\n| Key                | Value                                  |\n"
            "| SENDGRID_API_KEY   | ⟦a⟧ |\n| CONTENTFUL_TOKEN   | ⟦b⟧ |\n",
            {"a": g.sendgrid(), "b": g.token(43)},
        ),
    ]


def d_firebase(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            'const firebaseConfig = {\n  apiKey: "⟦a⟧",\n  authDomain: "acme-prod.firebaseapp.com",\n'
            '  projectId: "acme-prod",\n  appId: "1:684021937455:web:3f1e2d9b8c7a6f5e"\n};\n',
            {"a": g.google()},
        ),
        (
            "admin.initializeApp({ credential: admin.credential.cert({\n  projectId: 'acme-prod',\n"
            "  clientEmail: 'firebase-adminsdk-x1y2z@acme-prod.iam.gserviceaccount.com',\n"
            '  privateKey: "⟦k⟧",\n}) });\n',
            {"k": g.pem_key(escaped=True)},
        ),
    ]


def d_supabase_prisma(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            "SUPABASE_URL=https://xyzcompanyabcd.supabase.co\nSUPABASE_SERVICE_ROLE_KEY=⟦j⟧\n"
            "DATABASE_URL=postgresql://postgres:⟦p⟧@db.xyzcompanyabcd.supabase.co:5432/postgres\n",
            {"j": g.jwt(), "p": g.url_password()},
        ),
        (
            'datasource db {\n  provider = "mysql"\n  url      = "mysql://app_rw:⟦p⟧@aws.connect.psdb.cloud/shop?sslaccept=strict"\n}\n',
            {"p": g.url_password()},
        ),
    ]


def d_rails(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            "$ bin/rails credentials:show\nsecret_key_base: ⟦a⟧\naws:\n  access_key_id: ⟦b⟧\n"
            "  secret_access_key: ⟦c⟧\n",
            {"a": g.hex_secret(128), "b": g.aws_id(), "c": g.aws_secret()},
        ),
        (
            "production:\n  adapter: postgresql\n  database: app_production\n  username: app\n  password: ⟦p⟧\n"
            "  host: db-primary.internal\n",
            {"p": g.password()},
        ),
    ]


def d_spring(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            "spring:\n  datasource:\n    url: jdbc:postgresql://orders-db:5432/orders\n    username: orders\n"
            "    password: ⟦p⟧\njwt:\n  signing-secret: ⟦s⟧\n",
            {"p": g.password(), "s": g.b64_secret(43)},
        ),
        (
            "spring.mail.host=smtp.sendgrid.net\nspring.mail.username=apikey\nspring.mail.password=⟦a⟧\n"
            "spring.rabbitmq.password=⟦b⟧\n",
            {"a": g.sendgrid(), "b": g.password()},
        ),
    ]


def d_django(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            '# settings/production.py\nSECRET_KEY = "⟦k⟧"\nDEBUG = False\nDATABASES = {\n    "default": {\n'
            '        "ENGINE": "django.db.backends.postgresql",\n        "NAME": "crm",\n'
            '        "PASSWORD": "⟦p⟧",\n    }\n}\n',
            {
                "k": V(rs(g.r, 50, ALNUM + "!@#%^*(-_=+)"), "secret", "generic_secret"),
                "p": g.password(),
            },
        ),
        (
            "EMAIL_HOST = 'smtp.mailgun.org'\nEMAIL_HOST_USER = 'postmaster@mg.acme-logistics.io'\n"
            "EMAIL_HOST_PASSWORD = '⟦p⟧'\n",
            {"p": g.hex_secret(32)},
        ),
    ]


def d_laravel(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            "APP_NAME=Portal\nAPP_ENV=production\nAPP_KEY=base64:⟦k⟧\nDB_CONNECTION=mysql\nDB_PASSWORD=⟦p⟧\n",
            {"k": V(rs(g.r, 43, B64) + "=", "secret", "generic_secret"), "p": g.password()},
        ),
        (
            "MAIL_MAILER=smtp\nMAIL_USERNAME=apikey\nMAIL_PASSWORD=⟦a⟧\nPUSHER_APP_SECRET=⟦b⟧\n",
            {"a": g.sendgrid(), "b": g.hex_secret(20)},
        ),
    ]


def d_wordpress(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            "define( 'DB_NAME', 'wp_blog' );\ndefine( 'DB_USER', 'wp_admin' );\ndefine( 'DB_PASSWORD', '⟦p⟧' );\n"
            "define( 'DB_HOST', 'localhost' );\n",
            {"p": g.password()},
        ),
        (
            "define('AUTH_KEY',         '⟦a⟧');\ndefine('SECURE_AUTH_KEY',  '⟦b⟧');\n",
            {
                "a": V(
                    rs(g.r, 64, ALNUM + "!@#$%^&*()-_[]{}<>~+=,.;:/?|"), "secret", "generic_secret"
                ),
                "b": V(
                    rs(g.r, 64, ALNUM + "!@#$%^&*()-_[]{}<>~+=,.;:/?|"), "secret", "generic_secret"
                ),
            },
        ),
    ]


def d_docker(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            "docker run -d --name pg -e POSTGRES_PASSWORD=⟦p⟧ -p 5432:5432 postgres:16\n",
            {"p": g.password()},
        ),
        (
            "services:\n  worker:\n    image: acme/worker:1.8\n    environment:\n      - OPENAI_API_KEY=⟦a⟧\n"
            "      - REDIS_URL=redis://:⟦b⟧@cache:6379/0\n",
            {"a": g.openai(), "b": g.url_password()},
        ),
        (
            "$ docker inspect api | jq '.[0].Config.Env'\n[\n  \"PATH=/usr/local/bin:/usr/bin\",\n"
            '  "ANTHROPIC_API_KEY=⟦a⟧",\n  "PORT=8080"\n]\n',
            {"a": g.anthropic()},
        ),
    ]


def d_systemd(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            '[Service]\nUser=bot\nEnvironment="SLACK_BOT_TOKEN=⟦a⟧"\nExecStart=/opt/bot/bin/run\nRestart=always\n',
            {"a": g.slack_token()},
        ),
        (
            "[Service]\nEnvironment=API_TOKEN=⟦a⟧ LOG_LEVEL=info\nExecStart=/usr/local/bin/exporter --port 9100\n",
            {"a": g.token(40)},
        ),
    ]


def d_crontab(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            "# m h dom mon dow command\n15 2 * * * PGPASSWORD='⟦p⟧' pg_dump -h db1 -U backup app | gzip > /backups/app.sql.gz\n",
            {"p": g.password()},
        ),
        (
            '*/10 * * * * /usr/bin/curl -fsS -X POST -d \'{"text":"disk ok"}\' ⟦w⟧ >/dev/null\n',
            {"w": g.slack_webhook()},
        ),
    ]


def d_ssh_keys(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            "can you check why this key is rejected? `cat ~/.ssh/id_ed25519`:\n\n⟦k⟧\n",
            {"k": g.openssh_key()},
        ),
        ("$ cat deploy_key.pem\n⟦k⟧\n$ chmod 600 deploy_key.pem\n", {"k": g.pem_key()}),
        ("gpg --export-secret-keys --armor ops@acme > ops.asc\n⟦k⟧\n", {"k": g.pgp_key()}),
    ]


def d_aws_credentials(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            "[default]\naws_access_key_id = ⟦a⟧\naws_secret_access_key = ⟦b⟧\n\n[staging]\nregion = us-east-2\n",
            {"a": g.aws_id(), "b": g.aws_secret()},
        ),
        (
            "export AWS_ACCESS_KEY_ID=⟦a⟧\nexport AWS_SECRET_ACCESS_KEY=⟦b⟧\naws sts get-caller-identity\n",
            {"a": g.aws_id(), "b": g.aws_secret()},
        ),
    ]


def d_gcp_sa(g: Gen) -> list[tuple[str, Slots]]:
    sa = (
        '{\n  "type": "service_account",\n  "project_id": "acme-analytics",\n  "private_key_id": "⟦i⟧",\n'
        '  "private_key": "⟦k⟧",\n  "client_email": "etl@acme-analytics.iam.gserviceaccount.com",\n'
        '  "token_uri": "https://oauth2.googleapis.com/token"\n}'
    )
    return [
        (
            "here's the sa json, bigquery still says 403:\n" + sa + "\n",
            {"i": rs(g.r, 40, HEX), "k": g.pem_key(escaped=True)},
        ),
        (
            "creds = json.loads('''" + sa + "''')\n",
            {"i": rs(g.r, 40, HEX), "k": g.pem_key(escaped=True)},
        ),
    ]


def d_azure(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            '{\n  "ConnectionStrings": {\n    "Blob": "DefaultEndpointsProtocol=https;AccountName=acmefiles;'
            'AccountKey=⟦k⟧;EndpointSuffix=core.windows.net"\n  }\n}\n',
            {"k": g.azure_key()},
        ),
        (
            'conn = "DefaultEndpointsProtocol=https;AccountName=logsarchive;AccountKey=⟦k⟧"\n'
            "client = BlobServiceClient.from_connection_string(conn)\n",
            {"k": g.azure_key()},
        ),
    ]


def d_terraform_pulumi(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            'region      = "eu-central-1"\ndb_password = "⟦p⟧"\ndatadog_api_key = "⟦k⟧"\n',
            {"p": g.password(), "k": g.hex_secret(32)},
        ),
        ("$ pulumi config set --secret dbPassword ⟦p⟧\n$ pulumi up\n", {"p": g.password()}),
        (
            'provider "github" {\n  owner = "acme"\n  token = "⟦t⟧"\n}\n',
            {"t": g.github_fine()},
        ),
    ]


def d_conn_strings(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            "REDIS_URL=rediss://default:⟦p⟧@redis-12345.c1.us-east-1.ec2.cloud.redislabs.com:12345\n",
            {"p": g.url_password()},
        ),
        (
            'MONGO_URI="mongodb+srv://analytics:⟦p⟧@cluster0.x1abc.mongodb.net/prod?retryWrites=true"\n'
            "AMQP_URL=amqp://orders:⟦q⟧@rabbit.internal:5672/%2F\n",
            {"p": g.url_password(), "q": g.url_password()},
        ),
        (
            '"Default": "Server=tcp:acme-sql.database.windows.net,1433;Database=crm;User ID=crmapp;Password=⟦p⟧;Encrypt=True;"\n',
            {"p": g.password()},
        ),
        ("sqlplus reporting/⟦p⟧@//ora-prod.internal:1521/ORCLPDB1\n", {"p": g.url_password()}),
    ]


def d_jdbc(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            "jdbc.url=jdbc:mysql://mysql-01:3306/billing?user=billing&password=⟦p⟧&useSSL=true\n",
            {"p": g.url_password()},
        ),
        (
            '<property name="url" value="jdbc:postgresql://pg.internal:5432/hr"/>\n'
            '<property name="password" value="⟦p⟧"/>\n',
            {"p": g.password()},
        ),
    ]


def d_chat_webhooks(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            "@channel new alerts hook is ⟦w⟧ — please swap it into the grafana contact point",
            {"w": g.slack_webhook()},
        ),
        (
            "[10:42] dana: bot token for the discord test server: ⟦t⟧\n[10:43] lee: thx",
            {"t": g.discord()},
        ),
        ("use this for the bot: `⟦t⟧` and chat id -100198273645", {"t": g.telegram()}),
    ]


def d_oauth(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            '{\n  "access_token": "ya29.⟦a⟧",\n  "expires_in": 3599,\n  "refresh_token": "1//0⟦b⟧",\n'
            '  "scope": "https://www.googleapis.com/auth/drive",\n  "token_type": "Bearer"\n}\n',
            {
                "a": V(rs(g.r, 150, URLSAFE), "secret", "oauth_token"),
                "b": V(rs(g.r, 100, URLSAFE), "secret", "oauth_token"),
            },
        ),
        (
            "< HTTP/2 200\naccess_token=⟦a⟧&scope=repo%2Cgist&token_type=bearer\n",
            {"a": g.github("gho_")},
        ),
    ]


def d_http_trace(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            "> GET /v1/invoices HTTP/1.1\n> Host: api.acme-logistics.io\n> Authorization: Bearer ⟦a⟧\n> Accept: */*\n"
            ">\n< HTTP/1.1 200 OK\n< Set-Cookie: sessionid=⟦c⟧; Path=/; HttpOnly; Secure\n",
            {"a": g.jwt(), "c": V(rs(g.r, 32, LOWER + DIGITS), "secret", "session_cookie")},
        ),
        (
            "POST /api/v2/events HTTP/1.1\nHost: ingest.acme.io\nX-API-Key: ⟦k⟧\nContent-Type: application/json\n",
            {"k": g.token(32)},
        ),
        (
            "curl https://api.anthropic.com/v1/messages -H \"x-api-key: ⟦k⟧\" -H 'anthropic-version: 2023-06-01'\n",
            {"k": g.anthropic()},
        ),
    ]


def d_tracebacks(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            'Traceback (most recent call last):\n  File "/app/sync.py", line 41, in push\n    resp = client.post(url, headers=h)\n'
            "    h = {'Authorization': 'token ⟦t⟧'}\n    url = 'https://api.github.com/repos/acme/x/issues'\n"
            "httpx.HTTPStatusError: 401 Unauthorized\n",
            {"t": g.github()},
        ),
        (
            "Error: Request failed with status code 403\n    at createError (node_modules/axios/lib/core/createError.js:16:15)\n"
            "  config: {\n    headers: { Authorization: 'Bearer ⟦t⟧' },\n    url: 'https://api.openai.com/v1/chat/completions'\n  }\n",
            {"t": g.openai()},
        ),
        (
            "E   AssertionError: assert 401 == 200\nconfig = Settings(hf_token='⟦t⟧', cache_dir='/tmp/hf')\n",
            {"t": g.hf()},
        ),
    ]


def d_sentry(g: Gen) -> list[tuple[str, Slots]]:
    f, ln = g.first(), g.last()
    return [
        (
            '{"event_id": "c0ffee00c0ffee00c0ffee00c0ffee00", "user": {"email": "⟦e⟧", "ip_address": "⟦i⟧"},\n'
            ' "request": {"headers": {"Authorization": "Bearer ⟦t⟧"}}}\n',
            {"e": g.email(f, ln), "i": g.ipv4(), "t": g.token(40)},
        ),
        ("Sentry user context: id=8812 email=⟦e⟧ ip=⟦i⟧\n", {"e": g.email(), "i": g.ipv6()}),
    ]


def d_support_email(g: Gen) -> list[tuple[str, Slots]]:
    f, ln = g.first(), g.last()
    return [
        (
            f"Hi support,\n\nI was charged twice for order 88213. The card is ⟦c⟧ and you can reach me on ⟦p⟧.\n"
            f"Ship the replacement to ⟦s⟧, {g.city()}.\n\nThanks,\n{f} {ln}\n⟦e⟧\n",
            {"c": g.card(), "p": g.us_phone(), "s": g.street(unit=True), "e": g.email(f, ln)},
        ),
        (
            "From: ⟦e⟧\nSubject: can't log in\n\nMy number changed, it's now ⟦p⟧. Please update.\n",
            {"e": g.email(), "p": g.intl_phone()},
        ),
    ]


def d_crm(g: Gen) -> list[tuple[str, Slots]]:
    f, ln = g.first(), g.last()
    return [
        (
            f"Contact: {f} {ln}\nEmail: ⟦e⟧\nMobile: ⟦p⟧\nDOB: ⟦d⟧\nNotes: renewal call booked, wants annual billing.\n",
            {"e": g.email(f, ln), "p": g.phone(), "d": g.dob()},
        ),
        (
            "lead,company,email,phone\n2291,Harbor Freight Co,⟦e⟧,⟦p⟧\n2292,Bluebird Dental,⟦e2⟧,⟦p2⟧\n",
            {"e": g.email(), "p": g.us_phone(1), "e2": g.email(), "p2": g.us_phone(0)},
        ),
    ]


def d_call_transcript(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            "AGENT: For verification, can I get your social?\nCALLER: yeah it's ⟦s⟧\nAGENT: and the date of birth?\n"
            "CALLER: ⟦d⟧\n",
            {"s": g.ssn(), "d": g.dob(style=2)},
        ),
        (
            "[00:03:12] Customer: the card number is ⟦c⟧, expiry 09/28\n[00:03:30] Agent: thank you, and best callback number?\n"
            "[00:03:34] Customer: ⟦p⟧\n",
            {"c": g.card(" "), "p": g.us_phone(1)},
        ),
    ]


def d_hr(g: Gen) -> list[tuple[str, Slots]]:
    f, ln = g.first(), g.last()
    return [
        (
            f"NEW HIRE ONBOARDING\nLegal name: {f} {ln}\nSSN: ⟦s⟧\nDate of birth: ⟦d⟧\nHome address: ⟦a⟧, {g.city()}\n"
            "Direct deposit IBAN: ⟦i⟧\nEmergency contact: ⟦p⟧\n",
            {"s": g.ssn(), "d": g.dob(), "a": g.street(), "i": g.iban(), "p": g.us_phone()},
        ),
        (
            "employee_id,ssn,dob,personal_email\n10442,⟦s⟧,⟦d⟧,⟦e⟧\n",
            {"s": g.ssn(), "d": g.dob(style=1), "e": g.email()},
        ),
    ]


def d_bank(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            "Please wire the deposit to:\nBeneficiary: Lindqvist Consulting AB\nIBAN: ⟦i⟧\nBIC: DEUTDEFF\nReference: INV-2024-118\n",
            {"i": g.iban(True)},
        ),
        ("Hey, can you send the 450 EUR to ⟦i⟧? Thanks!", {"i": g.iban(False)}),
    ]


def d_invoice(g: Gen) -> list[tuple[str, Slots]]:
    f, ln = g.first(), g.last()
    return [
        (
            f"INVOICE #10023\nBill to: {f} {ln}\n⟦a⟧\n{g.city()}\nPhone: ⟦p⟧\nEmail: ⟦e⟧\nTotal due: $1,240.00\n"
            "Pay by bank transfer: ⟦i⟧\n",
            {"a": g.street(), "p": g.us_phone(), "e": g.email(f, ln), "i": g.iban()},
        ),
        (
            "Rechnung an ⟦e⟧, Zahlung an IBAN ⟦i⟧, Tel. ⟦p⟧\n",
            {"e": g.email(), "i": g.iban(True), "p": g.intl_phone()},
        ),
    ]


def d_shipping(g: Gen) -> list[tuple[str, Slots]]:
    f, ln = g.first(), g.last()
    return [
        (
            f"SHIP TO:\n{f.upper()} {ln.upper()}\n⟦a⟧\n{g.city()}\nTEL ⟦p⟧\nTRACKING 1Z999AA10123456784\n",
            {"a": g.street(unit=True), "p": g.us_phone()},
        ),
        (
            "order_id,name,address,city,phone\n5531,"
            + f"{f} {ln}"
            + ",⟦a⟧,"
            + g.city().replace(",", "")
            + ",⟦p⟧\n",
            {"a": g.street(), "p": g.us_phone(2)},
        ),
    ]


def d_k8s(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: api-creds\ntype: Opaque\nstringData:\n"
            '  STRIPE_WEBHOOK_SECRET: ⟦a⟧\n  DB_PASSWORD: "⟦b⟧"\n',
            {"a": g.stripe_whsec(), "b": g.password()},
        ),
        (
            "helm upgrade --install api ./chart --set image.tag=2.4.1 --set secrets.twilioKey=⟦a⟧ "
            "--set secrets.twilioAuthToken=⟦b⟧\n",
            {"a": g.twilio(), "b": g.hex_secret(32)},
        ),
    ]


def d_diff(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            "diff --git a/config/local.py b/config/local.py\n@@ -3,3 +3,4 @@\n DEBUG = True\n"
            '-OPENAI_API_KEY = os.environ["OPENAI_API_KEY"]\n+OPENAI_API_KEY = "⟦k⟧"\n',
            {"k": g.openai()},
        ),
        (
            "--- a/.env\n+++ b/.env\n@@ -1,2 +1,3 @@\n NODE_ENV=development\n+GITHUB_TOKEN=⟦t⟧\n+HF_TOKEN=⟦h⟧\n",
            {"t": g.github_fine(), "h": g.hf()},
        ),
    ]


def d_pkg_rc(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            "[distutils]\nindex-servers = pypi\n\n[pypi]\nusername = __token__\npassword = ⟦t⟧\n",
            {"t": g.pypi()},
        ),
        (
            "@acme:registry=https://npm.pkg.github.com\n//npm.pkg.github.com/:_authToken=⟦t⟧\n",
            {"t": g.github()},
        ),
        (
            "pip install --index-url https://deploy:⟦p⟧@pypi.acme-logistics.io/simple/ acme-core\n",
            {"p": g.url_password()},
        ),
    ]


def d_notebook(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            'import os\nos.environ["OPENAI_API_KEY"] = "⟦k⟧"\nfrom openai import OpenAI\nclient = OpenAI()\n',
            {"k": g.openai()},
        ),
        ('from huggingface_hub import login\nlogin(token="⟦k⟧")\n', {"k": g.hf()}),
        ("client = anthropic.Anthropic(api_key='⟦k⟧')\n", {"k": g.anthropic()}),
    ]


def d_saas_code(g: Gen) -> list[tuple[str, Slots]]:
    return [
        ("sg = SendGridAPIClient('⟦k⟧')\nsg.send(message)\n", {"k": g.sendgrid()}),
        ("const client = twilio('AC' + sid, '⟦k⟧');\n", {"k": g.hex_secret(32, "twilio_key")}),
        ('bot = telebot.TeleBot("⟦k⟧")\n', {"k": g.telegram()}),
        (
            "stripe.api_key = \"⟦k⟧\"\nstripe.Charge.create(amount=2000, currency='usd')\n",
            {"k": g.stripe()},
        ),
    ]


def d_git_remote(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            "$ git remote -v\norigin\thttps://x-access-token:⟦t⟧@github.com/acme/infra.git (fetch)\n",
            {"t": g.github("ghs_")},
        ),
        ("git clone https://oauth2:⟦t⟧@gitlab.com/acme/platform.git\n", {"t": g.gitlab()}),
        ("proxy = http://svc-proxy:⟦p⟧@proxy.acme-logistics.io:3128\n", {"p": g.url_password()}),
    ]


def d_access_log(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            '⟦i⟧ - - [12/Mar/2024:10:22:01 +0000] "GET /reset?email=⟦e⟧ HTTP/1.1" 200 512\n'
            '⟦j⟧ - - [12/Mar/2024:10:22:04 +0000] "GET /healthz HTTP/1.1" 200 2\n',
            {"i": g.ipv4(), "e": g.email(), "j": g.ipv6()},
        ),
        ("sshd[2211]: Failed password for root from ⟦i⟧ port 52144 ssh2\n", {"i": g.ipv4()}),
    ]


def d_sql(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            "INSERT INTO customers (id, name, email, phone, card) VALUES\n  (101, 'Ines Vogel', '⟦e⟧', '⟦p⟧', '⟦c⟧');\n",
            {"e": g.email(), "p": g.us_phone(1), "c": g.card("")},
        ),
        (
            " id |     email      |    ssn\n----+----------------+-----------\n  7 | ⟦e⟧ | ⟦s⟧\n(1 row)\n",
            {"e": g.email(), "s": g.ssn()},
        ),
    ]


def d_generic_chat(g: Gen) -> list[tuple[str, Slots]]:
    return [
        ("the staging admin password is ⟦p⟧ btw, rotate it after the demo", {"p": g.password()}),
        ("token: ⟦t⟧ (expires friday)", {"t": g.token(48)}),
        ("ok here's my key ⟦k⟧ don't share", {"k": g.google()}),
    ]


# ---------- clinical ----------


def d_triage(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            "ED TRIAGE NOTE\nPatient: ⟦n⟧   MRN: ⟦m⟧   DOB: ⟦d⟧\nChief complaint: chest pain x2h, radiating to L arm.\n"
            "Vitals: BP 162/94, HR 108, SpO2 95% RA. ESI 2.\n",
            {"n": g.pname(0), "m": g.mrn(), "d": g.dob("phi", 0)},
        ),
        (
            "Triage 14:05 — ⟦n⟧ (MRN ⟦m⟧), 67 y.o., presents with fever and productive cough; hx COPD.\n",
            {"n": g.pname(0), "m": g.mrn()},
        ),
    ]


def d_soap(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            "S: ⟦n⟧ reports worsening knee pain, 7/10, worse on stairs.\nO: Effusion R knee, ROM 10-95.\n"
            "A: Osteoarthritis R knee (M17.11).\nP: Intra-articular steroid injection; PT referral.\n",
            {"n": g.pname(0)},
        ),
        (
            "Name: ⟦n⟧\nMRN: ⟦m⟧\nDate of Birth: ⟦d⟧\n\nSubjective: follow-up for T2DM, A1c 8.1.\n"
            "Plan: increase metformin to 1000 mg BID.\n",
            {"n": g.pname(1), "m": g.mrn(), "d": g.dob("phi", 2)},
        ),
    ]


def d_operative(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            "OPERATIVE REPORT\nPATIENT NAME: ⟦n⟧\nMEDICAL RECORD NUMBER: ⟦m⟧\nPREOPERATIVE DIAGNOSIS: Acute appendicitis.\n"
            "PROCEDURE: Laparoscopic appendectomy.\nEBL: minimal.\n",
            {"n": g.pname(0), "m": g.mrn()},
        ),
        (
            "Op note — ⟦n⟧, DOB ⟦d⟧. Underwent L total hip arthroplasty under spinal anesthesia without complication.\n",
            {"n": g.pname(0), "d": g.dob("phi", 0)},
        ),
    ]


def d_pathology(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            "SURGICAL PATHOLOGY REPORT\nPatient: ⟦n⟧    MRN: ⟦m⟧    Accession: S24-11873\n"
            "FINAL DIAGNOSIS: Invasive ductal carcinoma, grade 2, margins negative.\n",
            {"n": g.pname(1), "m": g.mrn()},
        ),
        (
            "Specimen received in formalin labeled with patient name ⟦n⟧ and DOB ⟦d⟧; prostate biopsies x12.\n",
            {"n": g.pname(0), "d": g.dob("phi", 0)},
        ),
    ]


def d_medlist(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            "MEDICATION LIST — ⟦n⟧ — DOB ⟦d⟧ — MRN ⟦m⟧\n1. Lisinopril 20 mg PO daily\n2. Atorvastatin 40 mg PO qHS\n"
            "3. Sertraline 50 mg PO daily\n",
            {"n": g.pname(0), "d": g.dob("phi", 0), "m": g.mrn()},
        ),
        ("patient,mrn,drug,dose\n⟦n⟧,⟦m⟧,warfarin,5 mg\n", {"n": g.pname(0), "m": g.mrn()}),
    ]


def d_appointment(g: Gen) -> list[tuple[str, Slots]]:
    f, ln, n = g.patient(0)
    return [
        (
            "Hi ⟦n⟧, this is a reminder of your oncology infusion appointment on Tue 3/12 at 9:30am. Reply C to confirm. ⟦p⟧\n",
            {"n": n, "p": g.us_phone(0)},
        ),
        (
            "To: ⟦e⟧\nDear ⟦n⟧, your HIV viral load results are ready in the patient portal. Please call ⟦p⟧ to book follow-up.\n",
            {"e": g.email(f, ln), "n": g.pname(0), "p": g.us_phone(1)},
        ),
    ]


def d_pharmacy(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            "Rx# 6612093   FILLED 03/08/24\n⟦n⟧\nDOB ⟦d⟧\nOXYCODONE-APAP 5-325MG TAB\nTAKE 1 TABLET BY MOUTH EVERY 6 HOURS AS NEEDED\n",
            {"n": g.pname(0), "d": g.dob("phi", 0)},
        ),
        (
            "Refill request: patient ⟦n⟧, MRN ⟦m⟧, levothyroxine 75 mcg, 90 day supply.\n",
            {"n": g.pname(0), "m": g.mrn()},
        ),
    ]


def d_preauth(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            "RE: Prior Authorization Request\nMember: ⟦n⟧\nMember DOB: ⟦d⟧\nMember ID: XKH839201774\n"
            "Diagnosis: G35 Multiple sclerosis\nRequested: ocrelizumab 600 mg IV q6mo\n",
            {"n": g.pname(0), "d": g.dob("phi", 0)},
        ),
        (
            "We are writing regarding ⟦n⟧ (DOB ⟦d⟧). The request for lumbar MRI has been denied as not medically necessary.\n",
            {"n": g.pname(0), "d": g.dob("phi", 2)},
        ),
    ]


def d_hl7(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            "MSH|^~\\&|EPIC|GENHOSP|LAB|GENHOSP|20240312101500||ADT^A01|MSG00001|P|2.5\r"
            "EVN|A01|20240312101500\rPID|1||⟦m⟧^^^GENHOSP^MR||⟦n⟧||⟦d⟧|F|||⟦a⟧^^Springfield^IL^62704||⟦p⟧|||||"
            "ACCT88112|⟦s⟧\rPV1|1|I|4W^412^1|||||1234^Chen^Amy\r",
            {
                "m": g.mrn(),
                "n": g.pname(3),
                "d": g.dob("phi", 3),
                "a": g.street(),
                "p": g.us_phone(0),
                "s": g.ssn(),
            },
        ),
        (
            "MSH|^~\\&|LIS|LAB|EHR|HOSP|20240312||ORU^R01|88123|P|2.3\nPID|||⟦m⟧||⟦n⟧||⟦d⟧|M\n"
            "OBR|1||5523|CBC^Complete blood count\nOBX|1|NM|HGB^Hemoglobin||9.2|g/dL|13.5-17.5|L\n",
            {"m": g.mrn(), "n": g.pname(2), "d": g.dob("phi", 3)},
        ),
        (
            "MSH|^~\\&|SCHED|CLINIC|EHR|CLINIC|20240312||SIU^S12|771|P|2.5\rSCH|5512||||||Follow-up|||30|min\r"
            "PID|1||⟦m⟧^^^CLINIC^MR||⟦n⟧||⟦d⟧|F\rAIS|1||CARDIO^Cardiology consult\r",
            {"m": g.mrn(), "n": g.pname(3), "d": g.dob("phi", 3)},
        ),
    ]


def d_fhir(g: Gen) -> list[tuple[str, Slots]]:
    f1, l1 = g.first(), g.last()
    return [
        (
            '{\n  "resourceType": "Patient",\n  "id": "pat-1",\n  "identifier": [{"type": {"text": "MRN"}, "value": "⟦m⟧"}],\n'
            '  "name": [{"family": "⟦l⟧", "given": ["⟦f⟧"]}],\n  "birthDate": "⟦d⟧",\n'
            '  "telecom": [{"system": "phone", "value": "⟦p⟧"}]\n}\n',
            {
                "m": g.mrn(),
                "l": V(l1, "phi", "patient_name"),
                "f": V(f1, "phi", "patient_name"),
                "d": g.dob("phi", 1),
                "p": g.us_phone(1),
            },
        ),
        (
            '{"resourceType": "MedicationRequest", "status": "active",\n "subject": {"reference": "Patient/881", "display": "⟦n⟧"},\n'
            ' "medicationCodeableConcept": {"text": "Tamoxifen 20 mg"}}\n',
            {"n": g.pname(0)},
        ),
        (
            '{"resourceType": "Observation", "code": {"text": "HbA1c"}, "valueQuantity": {"value": 9.4, "unit": "%"},\n'
            ' "subject": {"display": "⟦n⟧"}}\n',
            {"n": g.pname(0)},
        ),
    ]


def d_dicom(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            "(0008,0060) CS [MR]\n(0010,0010) PN [⟦n⟧]\n(0010,0020) LO [⟦m⟧]\n(0010,0030) DA [⟦d⟧]\n"
            "(0010,0040) CS [F]\n(0018,0015) CS [BRAIN]\n",
            {"n": g.pname(3), "m": g.mrn(), "d": g.dob("phi", 3)},
        ),
        (
            "PatientName: ⟦n⟧\nPatientID: ⟦m⟧\nStudyDescription: CT CHEST W CONTRAST\n",
            {"n": g.pname(2), "m": g.mrn()},
        ),
    ]


def d_ehr_audit(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            '2024-03-12T10:15:02Z user=nurse.kim action=VIEW_CHART patient_mrn=⟦m⟧ patient="⟦n⟧" section=psych_notes\n',
            {"m": g.mrn(), "n": g.pname(1)},
        ),
        (
            "AUDIT break-the-glass by dr.osei on MRN ⟦m⟧ (⟦n⟧, DOB ⟦d⟧) reason=emergency\n",
            {"m": g.mrn(), "n": g.pname(0), "d": g.dob("phi", 0)},
        ),
    ]


def d_discharge(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            "DISCHARGE SUMMARY\nPatient Name: ⟦n⟧\nMRN: ⟦m⟧\nAdmission Date: 03/02/2024\nDischarge Diagnosis: NSTEMI\n"
            "Follow up with cardiology in 2 weeks.\n",
            {"n": g.pname(0), "m": g.mrn()},
        ),
        (
            "Ms. ⟦n⟧ is a 54 year old woman admitted for DKA. She was treated with insulin drip and discharged on basal-bolus.\n",
            {"n": g.pname(0)},
        ),
    ]


def d_claims_csv(g: Gen) -> list[tuple[str, Slots]]:
    return [
        (
            "claim_id,patient_name,dob,mrn,icd10,cpt\nC-1001,⟦n⟧,⟦d⟧,⟦m⟧,F32.9,90834\n",
            {"n": g.pname(0), "d": g.dob("phi", 1), "m": g.mrn()},
        ),
        (
            "| Patient | DOB | Dx |\n|---|---|---|\n| ⟦n⟧ | ⟦d⟧ | Schizophrenia (F20.9) |\n",
            {"n": g.pname(0), "d": g.dob("phi", 0)},
        ),
    ]


def d_encoded(g: Gen) -> list[tuple[str, Slots]]:
    e = g.email()
    enc = V(e.value.replace("@", "%40"), "pii", "email")
    pw = g.password()
    return [
        ("GET /api/subscribe?email=⟦e⟧&list=weekly HTTP/1.1\n", {"e": enc}),
        (
            '{"level":"error","msg":"{\\"user\\":\\"svc\\",\\"password\\":\\"⟦p⟧\\"}","ts":1710238921}\n',
            {"p": pw},
        ),
        ("X-Forwarded-For: ⟦i⟧, 10.0.0.12\n", {"i": g.ipv4()}),
    ]


def d_prose_pii(g: Gen) -> list[tuple[str, Slots]]:
    f, ln = g.first(), g.last()
    y, m, d = g.dob_parts()
    return [
        (f"fix: handle empty cart\n\nSigned-off-by: {f} {ln} <⟦e⟧>\n", {"e": g.email(f, ln)}),
        (
            "Applicant details — D.O.B. ⟦d⟧, mobile ⟦p⟧, SSN ⟦s⟧\n",
            {"d": V(f"{d:02d}.{m:02d}.{y}", "pii", "dob"), "p": g.us_phone(2), "s": g.ssn("")},
        ),
        (
            "He was born on ⟦d⟧ and lives at ⟦a⟧ — call him on ⟦p⟧.\n",
            {
                "d": V(f"{d} {MONTHS[m - 1]} {y}", "pii", "dob"),
                "a": g.street(),
                "p": g.intl_phone(),
            },
        ),
        ('{"customer": {"card_number": "⟦c⟧", "exp": "04/27"}}\n', {"c": g.card("")}),
    ]


DIRTY: dict[str, Container] = {
    name[2:]: fn for name, fn in globals().items() if name.startswith("d_") and callable(fn)
}


# ====================== clean containers ======================


def _uuid(g: Gen) -> str:
    h = rs(g.r, 32, HEX)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def _b64(g: Gen, n: int) -> str:
    return rs(g.r, n, B64)


def c_aws_docs(g: Gen) -> list[str]:
    return [
        "## Configure\n\n```ini\n[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n```\nReplace these with your own keys.\n",
        "export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE  # from the AWS docs\n",
    ]


def c_test_cards(g: Gen) -> list[str]:
    return [
        "Use test card 4242 4242 4242 4242 with any future expiry and any CVC. For 3DS use 4000 0025 0000 3155.\n",
        "| Brand | Number |\n|---|---|\n| Visa | 4111111111111111 |\n| Mastercard | 5555555555554444 |\n| Amex | 378282246310005 |\n",
        "stripe.api_key = 'sk_test_4eC39HqLyjWDarjtT1zdp7dc'  # Stripe's public docs key\n",
    ]


def c_shell_refs(g: Gen) -> list[str]:
    return [
        'export API_KEY="${API_KEY:?missing}"\nexport DB_PASSWORD="$(vault kv get -field=password secret/db)"\n'
        'curl -H "Authorization: Bearer $TOKEN" https://api.example.com/v1/me\n',
        'TOKEN=$(gcloud auth print-access-token)\npsql "postgresql://app:${PGPASSWORD}@localhost:5432/app"\n',
    ]


def c_python_refs(g: Gen) -> list[str]:
    return [
        'API_KEY = os.environ["OPENAI_API_KEY"]\nDB_PASSWORD = os.getenv("DB_PASSWORD", "")\n'
        "SECRET_KEY = settings.SECRET_KEY\npassword = getpass.getpass()\n",
        "def connect(password: str | None = None) -> Conn:\n    password = password or keyring.get_password('db', user)\n"
        "    return Conn(host=host, password=password)\n",
    ]


def c_k8s_refs(g: Gen) -> list[str]:
    return [
        "env:\n  - name: DB_PASSWORD\n    valueFrom:\n      secretKeyRef:\n        name: db-creds\n        key: password\n",
        'apiVersion: v1\nkind: Secret\nmetadata:\n  name: api\nstringData:\n  token: "{{ .Values.apiToken }}"\n'
        '  password: "{{ required \\"set password\\" .Values.db.password }}"\n',
    ]


def c_terraform_refs(g: Gen) -> list[str]:
    return [
        'variable "db_password" {\n  type      = string\n  sensitive = true\n}\n\nresource "aws_db_instance" "main" {\n'
        "  password = var.db_password\n}\n",
        'data "aws_secretsmanager_secret_version" "api" {\n  secret_id = "prod/api-key"\n}\n'
        'locals { api_key = jsondecode(data.aws_secretsmanager_secret_version.api.secret_string)["key"] }\n',
    ]


def c_gha_refs(g: Gen) -> list[str]:
    return [
        "    - run: npm publish\n      env:\n        NODE_AUTH_TOKEN: ${{ secrets.NPM_TOKEN }}\n"
        "    - uses: aws-actions/configure-aws-credentials@v4\n      with:\n        role-to-assume: ${{ vars.DEPLOY_ROLE }}\n",
        "password: ${{ secrets.DOCKERHUB_TOKEN }}\nusername: ${{ github.actor }}\n",
    ]


def c_compose_refs(g: Gen) -> list[str]:
    return [
        "services:\n  db:\n    image: postgres:16\n    environment:\n      POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?err}\n"
        "    secrets:\n      - db_password\nsecrets:\n  db_password:\n    file: ./secrets/db_password.txt\n",
        "spring.datasource.password=${DB_PASSWORD}\nspring.security.oauth2.client.registration.github.client-secret=${GITHUB_CLIENT_SECRET}\n",
    ]


def c_redacted(g: Gen) -> list[str]:
    return [
        "2024-03-12 10:01:22 INFO connecting user=app password=**** host=db.internal\n"
        "2024-03-12 10:01:23 DEBUG headers={'Authorization': '[REDACTED]', 'X-API-Key': '<redacted>'}\n",
        "Set `ANTHROPIC_API_KEY=<your-api-key>` and `GITHUB_TOKEN=<YOUR_TOKEN>` before running.\n",
        'config = {"api_key": "YOUR_API_KEY_HERE", "secret": "changeme", "password": "xxxxxxxx"}\n',
    ]


def c_env_example(g: Gen) -> list[str]:
    return [
        "# .env.example — copy to .env\nOPENAI_API_KEY=\nSTRIPE_SECRET_KEY=sk_live_...\nDATABASE_URL=postgres://user:password@localhost:5432/app\n",
        "SECRET_KEY=replace-me\nREDIS_URL=redis://localhost:6379/0\nSMTP_PASSWORD=your-smtp-password\n",
    ]


def c_ssh_pub(g: Gen) -> list[str]:
    return [
        f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{_b64(g, 43)} ops@bastion\n"
        f"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQ{_b64(g, 500)} deploy@ci\n",
        f"github.com ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBB{_b64(g, 87)}=\n",
    ]


def c_certs(g: Gen) -> list[str]:
    body = "\n".join(_b64(g, 64) for _ in range(18))
    return [
        f"-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIE{body}\n-----END CERTIFICATE-----\n",
        f"-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA{body[:300]}\n-----END PUBLIC KEY-----\n",
        f"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBGX{body}\n=AbCd\n-----END PGP PUBLIC KEY BLOCK-----\n",
    ]


def c_lockfiles(g: Gen) -> list[str]:
    return [
        f'    "node_modules/lodash": {{\n      "version": "4.17.21",\n      "resolved": "https://registry.npmjs.org/lodash/-/lodash-4.17.21.tgz",\n'
        f'      "integrity": "sha512-{_b64(g, 86)}=="\n    }},\n',
        f'[[package]]\nname = "httpx"\nversion = "0.27.0"\nsource = {{ registry = "https://pypi.org/simple" }}\n'
        f'wheels = [{{ url = "https://files.pythonhosted.org/packages/httpx-0.27.0-py3-none-any.whl", '
        f'hash = "sha256:{rs(g.r, 64, HEX)}" }}]\n',
        f"requests==2.31.0 \\\n    --hash=sha256:{rs(g.r, 64, HEX)} \\\n    --hash=sha256:{rs(g.r, 64, HEX)}\n",
    ]


def c_docker_digests(g: Gen) -> list[str]:
    return [
        f"FROM python:3.11-slim@sha256:{rs(g.r, 64, HEX)}\nRUN pip install --no-cache-dir uv\n",
        f"Digest: sha256:{rs(g.r, 64, HEX)}\nStatus: Downloaded newer image for nginx:1.25\n",
    ]


def c_git(g: Gen) -> list[str]:
    return [
        "\n".join(
            f"{rs(g.r, 7, HEX)} {m}"
            for m in ("fix flaky test", "bump deps", "add retry", "docs: typo")
        )
        + "\n",
        f"commit {rs(g.r, 40, HEX)}\nMerge: {rs(g.r, 7, HEX)} {rs(g.r, 7, HEX)}\nDate:   Tue Mar 12 10:00:00 2024 +0000\n\n    Merge branch 'main'\n",
    ]


def c_checksums(g: Gen) -> list[str]:
    return [
        f"{rs(g.r, 64, HEX)}  app-linux-amd64.tar.gz\n{rs(g.r, 64, HEX)}  app-darwin-arm64.tar.gz\n",
        f"MD5 ({rs(g.r, 8, LOWER)}.iso) = {rs(g.r, 32, HEX)}\nsha1: {rs(g.r, 40, HEX)}\n",
        f'<script src="https://cdn.jsdelivr.net/npm/htmx.org@1.9.10" integrity="sha384-{_b64(g, 64)}" crossorigin="anonymous"></script>\n',
    ]


def c_ids(g: Gen) -> list[str]:
    return [
        f"request_id={_uuid(g)} trace_id={rs(g.r, 32, HEX)} span_id={rs(g.r, 16, HEX)} status=200\n",
        f"created job 01{rs(g.r, 24, '0123456789ABCDEFGHJKMNPQRSTVWXYZ')} for tenant {_uuid(g)}\n",
    ]


def c_reserved_ips(g: Gen) -> list[str]:
    return [
        "upstream backend {\n  server 10.0.3.12:8080;\n  server 192.168.1.20:8080;\n}\nallow 172.16.0.0/12;\ndeny 0.0.0.0/0;\n",
        "Example: `curl http://203.0.113.7/health` or `ping 198.51.100.23`; IPv6 docs use 2001:db8::1 and fe80::1%eth0, loopback ::1 and 127.0.0.1.\n",
    ]


def c_example_domains(g: Gen) -> list[str]:
    return [
        'curl -X POST https://api.example.com/users -d \'{"email": "jane.doe@example.com"}\'\n',
        "Contact alice@example.org or bob@test.invalid; webhooks go to https://hooks.example.net/in.\n",
    ]


def c_fictional_phones(g: Gen) -> list[str]:
    return [
        "Support line (demo): (555) 010-4477? No — use +1 202-555-0143 or 555-0199 in screenshots.\n",
        'faker fixture: {"name": "Test User", "phone": "+1-555-555-0100", "email": "test@example.com"}\n',
    ]


def c_data_uri(g: Gen) -> list[str]:
    return [
        f'<img alt="logo" src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA{_b64(g, 400)}=" />\n',
        f".icon {{ background: url(data:image/svg+xml;base64,PHN2ZyB4bWxucz0i{_b64(g, 200)}); }}\n",
    ]


def c_minified(g: Gen) -> list[str]:
    return [
        '!function(e,t){"object"==typeof exports&&"undefined"!=typeof module?module.exports=t():"function"==typeof define'
        "&&define.amd?define(t):(e=e||self).Foo=t()}(this,function(){var e=4294967295,t=1e3,n=6e4,r=36e5;function i(e)"
        '{return e&&e.__esModule?e:{default:e}}return{v:"3.1.4",k:e,s:t,m:n,h:r,i:i}});\n',
        "var a=[0x67452301,0xefcdab89,0x98badcfe,0x10325476],b=function(x){for(var i=0,h=0;i<x.length;i++)"
        "h=(h<<5)-h+x.charCodeAt(i)|0;return h};\n",
    ]


def c_python_src(g: Gen) -> list[str]:
    return [
        "def retry(fn, attempts: int = 3, backoff: float = 0.5):\n    for i in range(attempts):\n        try:\n"
        "            return fn()\n        except TimeoutError:\n            time.sleep(backoff * 2**i)\n    raise\n",
        "class TokenBucket:\n    def __init__(self, rate: float, capacity: int) -> None:\n        self.rate = rate\n"
        "        self.tokens = capacity\n\n    def take(self, n: int = 1) -> bool:\n        return self.tokens >= n\n",
    ]


def c_go_rust(g: Gen) -> list[str]:
    return [
        'func (s *Server) Login(ctx context.Context, req *LoginRequest) (*Token, error) {\n\tif req.Password == "" {\n'
        "\t\treturn nil, ErrEmptyPassword\n\t}\n\treturn s.auth.Issue(ctx, req.User)\n}\n",
        "pub fn verify(secret: &[u8], token: &str) -> Result<Claims, Error> {\n    let key = DecodingKey::from_secret(secret);\n"
        "    decode::<Claims>(token, &key, &Validation::default()).map(|d| d.claims)\n}\n",
    ]


def c_sql_schema(g: Gen) -> list[str]:
    return [
        "CREATE TABLE patients (\n  id BIGSERIAL PRIMARY KEY,\n  mrn VARCHAR(20) UNIQUE NOT NULL,\n  family_name TEXT,\n"
        "  given_name TEXT,\n  birth_date DATE,\n  ssn_encrypted BYTEA\n);\nCREATE INDEX ON patients (mrn);\n",
        "SELECT date_trunc('day', created_at) AS d, count(*) FROM orders WHERE status = 'paid' GROUP BY 1 ORDER BY 1;\n",
    ]


def c_hl7_code(g: Gen) -> list[str]:
    return [
        "def parse_pid(segment: str) -> dict:\n    f = segment.split('|')\n    return {\n        'mrn': f[3].split('^')[0],\n"
        "        'family': f[5].split('^')[0],\n        'given': f[5].split('^')[1],\n        'dob': f[7],\n    }\n",
        "PID-3 carries the patient identifier list (CX), PID-5 the patient name (XPN: family^given^middle), "
        "PID-7 the date/time of birth (YYYYMMDD). Segments end in \\r.\n",
    ]


def c_fhir_docs(g: Gen) -> list[str]:
    return [
        '{\n  "resourceType": "StructureDefinition",\n  "type": "Patient",\n  "differential": {"element": [\n'
        '    {"path": "Patient.name", "min": 1},\n    {"path": "Patient.birthDate", "mustSupport": true}\n  ]}\n}\n',
        "A MedicationRequest references its subject (Patient/{id}) and a medication[x]; "
        "Observation.valueQuantity holds value, unit and system (http://unitsofmeasure.org).\n",
    ]


def c_icd(g: Gen) -> list[str]:
    return [
        "code,description\nE11.9,Type 2 diabetes mellitus without complications\nI10,Essential (primary) hypertension\n"
        "J44.1,COPD with acute exacerbation\nF32.9,Major depressive disorder, single episode\n",
        "Dosing table: metformin 500 mg BID, titrate weekly by 500 mg to max 2000 mg/day; hold if eGFR < 30.\n",
    ]


def c_numeric_logs(g: Gen) -> list[str]:
    r = g.r
    lines = [
        f"2024-03-12T10:{r.randint(10, 59)}:{r.randint(10, 59)}.{r.randint(100, 999)}Z pid={r.randint(1000, 65000)} "
        f"latency_ms={r.randint(1, 900)} bytes={r.randint(1000, 9999999)} rows={r.randint(0, 50000)}"
        for _ in range(6)
    ]
    return [
        "\n".join(lines) + "\n",
        f"epoch={r.randint(1_700_000_000, 1_780_000_000)} seq={r.randint(10**9, 10**10)} offset={r.randint(10**11, 10**12)} "
        f"partition=3 lag=0\n",
        "Processed 1,234,567 records in 89.42s (13,806.9 rec/s); p50=4.2ms p95=18.9ms p99=41.0ms\n",
    ]


def c_pytest(g: Gen) -> list[str]:
    return [
        "============ test session starts ============\nplatform linux -- Python 3.11.8, pytest-8.1.1\n"
        "collected 412 items\n\ntests/test_api.py ........................ [ 12%]\n=== 410 passed, 2 skipped in 14.83s ===\n",
        "FAILED tests/test_auth.py::test_rejects_bad_password - AssertionError: expected 401, got 500\n",
    ]


def c_webpack(g: Gen) -> list[str]:
    return [
        f"asset main.{rs(g.r, 20, HEX)}.js 1.2 MiB [emitted] [immutable] (name: main)\n"
        f"asset vendor.{rs(g.r, 20, HEX)}.js 842 KiB [emitted]\nwebpack 5.90.3 compiled successfully in 8412 ms\n",
        f"dist/assets/index-{rs(g.r, 8, URLSAFE)}.js   143.36 kB │ gzip: 46.12 kB\n",
    ]


def c_semver(g: Gen) -> list[str]:
    return [
        "## [2.14.0] - 2024-03-12\n### Fixed\n- Retry on 429 (#1832)\n- Pin urllib3<2.3 (#1840)\n",
        "Requires: python>=3.9, numpy>=1.24.4, torch==2.2.1+cu121\n",
    ]


def c_dockerfile(g: Gen) -> list[str]:
    return [
        "FROM node:20-alpine AS build\nWORKDIR /app\nCOPY package*.json ./\nRUN npm ci\nCOPY . .\nRUN npm run build\n"
        'EXPOSE 3000\nCMD ["node", "dist/server.js"]\n',
        "ARG NPM_TOKEN\nRUN --mount=type=secret,id=npmrc,target=/root/.npmrc npm ci\n",
    ]


def c_openapi(g: Gen) -> list[str]:
    return [
        "components:\n  schemas:\n    Login:\n      properties:\n        email:\n          type: string\n          format: email\n"
        "          example: user@example.com\n        password:\n          type: string\n          format: password\n",
        "securitySchemes:\n  ApiKeyAuth:\n    type: apiKey\n    in: header\n    name: X-API-Key\n  bearerAuth:\n    type: http\n    scheme: bearer\n",
    ]


def c_prometheus(g: Gen) -> list[str]:
    return [
        '# TYPE http_requests_total counter\nhttp_requests_total{method="GET",code="200"} 1027345\n'
        'http_request_duration_seconds_bucket{le="0.25"} 99211\nprocess_resident_memory_bytes 3.3554432e+07\n',
        'node_filesystem_avail_bytes{device="/dev/nvme0n1p1",mountpoint="/"} 4.8203849728e+10\n',
    ]


def c_dmesg(g: Gen) -> list[str]:
    return [
        "[    0.000000] Linux version 6.5.0-26-generic\n[    1.204511] nvme nvme0: 8/0/0 default/read/poll queues\n"
        "[ 4021.883102] Out of memory: Killed process 28811 (python3) total-vm:16384212kB\n",
        "Mar 12 10:01:22 host kernel: [UFW BLOCK] IN=eth0 SRC=10.0.0.5 DST=10.0.0.9 LEN=60 PROTO=TCP SPT=51234 DPT=22\n",
    ]


def c_test_fixtures(g: Gen) -> list[str]:
    return [
        'def test_login(client):\n    r = client.post("/login", json={"email": "user@example.com", "password": "correct-horse"})\n'
        "    assert r.status_code == 200\n",
        'FAKE_TOKEN = "test-token"\nDUMMY_PASSWORD = "password123"  # fixture only\nmock_key = "sk-test-xxxxxxxxxxxxxxxx"\n',
    ]


def c_jwt_docs(g: Gen) -> list[str]:
    return [
        "A JWT has three parts: header.payload.signature. The header eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9 decodes to "
        '{"alg":"HS256","typ":"JWT"}.\n',
        "Authorization: Bearer <jwt>\n# or\nAuthorization: Basic base64(username:password)\n",
    ]


def c_csv_metrics(g: Gen) -> list[str]:
    r = g.r
    rows = "\n".join(
        f"{r.randint(100000, 999999)},{r.randint(1, 9999)}.{r.randint(10, 99)},{r.randint(0, 100)},{r.randint(10**8, 10**9)}"
        for _ in range(8)
    )
    return [
        "order_id,amount,qty,sku\n" + rows + "\n",
        "region,q1,q2,q3\nEMEA,1200340,1304552,1411876\nAPAC,998120,1011345,1200990\n",
    ]


def c_makefile(g: Gen) -> list[str]:
    return [
        "deploy:\n\t@test -n \"$(AWS_PROFILE)\" || (echo 'set AWS_PROFILE'; exit 1)\n\taws s3 sync dist s3://$(BUCKET)\n",
        '[tool.ruff]\nline-length = 120\n[tool.pytest.ini_options]\naddopts = "-q"\n',
    ]


def c_medical_code(g: Gen) -> list[str]:
    return [
        "def bmi(weight_kg: float, height_m: float) -> float:\n    return round(weight_kg / height_m**2, 1)\n\n"
        "def egfr_ckd_epi(scr: float, age: int, female: bool) -> float:\n    k = 0.7 if female else 0.9\n    return 142 * min(scr / k, 1) ** -0.241\n",
        "# Triage screen: map ESI level (1-5) to colour\nESI_COLOURS = {1: 'red', 2: 'orange', 3: 'yellow', 4: 'green', 5: 'blue'}\n",
    ]


def c_clinical_template(g: Gen) -> list[str]:
    return [
        "SOAP template\nS: {{chief_complaint}}\nO: BP {{bp}} HR {{hr}}\nA: {{assessment}}\nP: {{plan}}\nPatient: {{patient.name}} MRN: {{patient.mrn}}\n",
        "Discharge summary fields: patient name, MRN, admission date, diagnoses, medications, follow-up. "
        "Never paste real patient data into tickets.\n",
    ]


def c_nginx(g: Gen) -> list[str]:
    return [
        "server {\n  listen 443 ssl http2;\n  server_name app.example.com;\n  ssl_certificate /etc/ssl/certs/app.pem;\n"
        "  ssl_certificate_key /etc/ssl/private/app.key;\n  location / { proxy_pass http://127.0.0.1:8000; }\n}\n",
        '127.0.0.1 - - [12/Mar/2024:10:22:01 +0000] "GET /healthz HTTP/1.1" 200 2 "-" "kube-probe/1.29"\n',
    ]


def c_gitignore_etc(g: Gen) -> list[str]:
    return [
        ".env\n.env.*\n!.env.example\n*.pem\nid_rsa*\ncredentials.json\n__pycache__/\n",
        "# Rotating secrets\n1. Create a new key in the console.\n2. Update the `API_KEY` secret in the vault.\n3. Revoke the old key.\n",
    ]


def c_chat_dev(g: Gen) -> list[str]:
    return [
        "[09:12] sam: build is red again, the token env var isn't set on the new runner\n[09:13] ana: I'll add it to the org secrets\n",
        "can you review #2211? it moves the password hashing to argon2id (m=65536, t=3, p=4)\n",
    ]


def c_uuid_json(g: Gen) -> list[str]:
    return [
        json.dumps(
            {
                "id": _uuid(g),
                "etag": rs(g.r, 32, HEX),
                "version": 7,
                "updated": "2024-03-12T10:00:00Z",
            },
            indent=2,
        )
        + "\n",
        json.dumps(
            [
                {"sku": f"SKU-{g.r.randint(1000, 9999)}", "price_cents": g.r.randint(100, 99999)}
                for _ in range(4)
            ]
        )
        + "\n",
    ]


def c_keyword_nonsecrets(g: Gen) -> list[str]:
    return [
        'PASSWORD_MIN_LENGTH = 12\nTOKEN_TTL_SECONDS = 3600\nsecret_name = "prod/db-credentials"\ntoken_type = "bearer"\n',
        "PASSWORD_HASHERS = ['django.contrib.auth.hashers.Argon2PasswordHasher']\nAUTH_PASSWORD_VALIDATORS = []\n",
        'kubectl create secret generic db --from-literal=password="$DB_PASSWORD" --dry-run=client -o yaml\n',
        'body = "{\\"api_key\\": \\"<API_KEY>\\", \\"password\\": \\"${PASSWORD}\\"}"\n',
    ]


def c_numeric_ids(g: Gen) -> list[str]:
    r = g.r
    return [
        f"tweet_id={r.randint(10**18, 10**19 - 1)} ts_ms={r.randint(1_700_000_000_000, 1_780_000_000_000)} build=20240312.{r.randint(1, 99)}\n",
        "arn:aws:iam::123456789012:role/deploy\narn:aws:s3:::acme-artifacts/releases/*\n",
        "ISBN 978-0-13-468599-1, released 2024-03-12, 412 pages, DOI 10.1145/3591234\n",
        "redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback&state=af0ifjsldkj&scope=openid%20email\n",
    ]


CLEAN: dict[str, Callable[[Gen], list[str]]] = {
    name[2:]: fn for name, fn in globals().items() if name.startswith("c_") and callable(fn)
}


def build(seed: int = 0) -> tuple[list[Packet], list[Packet]]:
    """Return (dirty, clean) packets; every phrasing of every container once."""
    g = Gen(random.Random(seed))
    dirty = [
        fill(f"{name}/{i}", tpl, slots)
        for name, fn in DIRTY.items()
        for i, (tpl, slots) in enumerate(fn(g))
    ]
    clean = [
        Packet(f"{name}/{i}", text, ())
        for name, fn in CLEAN.items()
        for i, text in enumerate(fn(g))
    ]
    return dirty, clean
