# ruff: noqa: E501
"""Independent held-out privacy corpus (heldout6): planted values in real formats, plus hard clean packets.

Written from the privacy issue's wording only, to estimate how the detector does on data it was not tuned on.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import random
import string
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

import phonenumbers

ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"
B64URL = ALNUM + "-_"
HEX = "0123456789abcdef"
UPPER32 = string.ascii_uppercase + "234567"


@dataclass(frozen=True)
class Packet:
    """One scanned text with the spans of every value planted in it."""

    name: str
    text: str
    planted: tuple[tuple[int, int, str, str], ...]


@dataclass(frozen=True)
class Item:
    """A planted value with the label and literal text around it in its container."""

    label: str
    value: str
    category: str
    kind: str
    pre: str = ""
    post: str = ""


class _Builder:
    """Text assembled from chunks so planted spans survive escaping chunk by chunk."""

    def __init__(self) -> None:
        self.parts: list[tuple[str, tuple[str, str] | None]] = []

    def t(self, s: str) -> None:
        self.parts.append((s, None))

    def v(self, item: Item) -> None:
        self.t(item.pre)
        self.parts.append((item.value, (item.category, item.kind)))
        self.t(item.post)

    def render(
        self, enc: Callable[[str], str] | None = None
    ) -> tuple[str, tuple[tuple[int, int, str, str], ...]]:
        out: list[str] = []
        planted = []
        pos = 0
        for text, tag in self.parts:
            s = enc(text) if enc else text
            if tag:
                planted.append((pos, pos + len(s), tag[0], tag[1]))
            out.append(s)
            pos += len(s)
        return "".join(out), tuple(planted)


def _r(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


# ---------------------------------------------------------------- secrets


def _b62(n: int, width: int) -> str:
    digits = string.digits + string.ascii_uppercase + string.ascii_lowercase
    out = ""
    while n:
        n, rem = divmod(n, 62)
        out = digits[rem] + out
    return out.rjust(width, "0")


def _gh(rng: random.Random, prefix: str) -> str:
    body = _r(rng, ALNUM, 30)
    return prefix + body + _b62(binascii.crc32(body.encode()), 6)


def _password(rng: random.Random) -> str:
    while True:
        pw = _r(rng, ALNUM + "!@#%^*-_+=.", rng.randint(12, 22))
        if (
            sum(c.isdigit() for c in pw) >= 2
            and any(c.isupper() for c in pw)
            and any(c.islower() for c in pw)
        ):
            return pw


def _url_password(rng: random.Random) -> str:
    """A password as it appears in URL user-info, where @, # and friends would have to be percent-encoded."""
    return "".join(c for c in _password(rng) if c not in "@#/?:%") or "Pw9x"


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _jwt(rng: random.Random) -> str:
    head = _b64u(
        json.dumps({"alg": rng.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"}).encode()
    )
    body = {
        "sub": str(rng.randint(10**5, 10**9)),
        "iat": rng.randint(1_700_000_000, 1_760_000_000),
        "scope": rng.choice(["read write", "admin", "api"]),
    }
    body["exp"] = body["iat"] + 3600  # type: ignore[operator]
    return f"{head}.{_b64u(json.dumps(body).encode())}.{_r(rng, B64URL, 43)}"


def _pem_body(rng: random.Random, lines: int, first: str = "") -> str:
    raw = first + _r(rng, B64, 64 * lines - len(first))
    rows = [raw[i : i + 64] for i in range(0, len(raw), 64)]
    rows.append(_r(rng, B64, rng.randint(8, 40)) + "=")
    return "\n".join(rows)


def _pem(rng: random.Random) -> tuple[str, str]:
    kind = rng.choice(["rsa", "pkcs8", "ec", "enc_pkcs8", "enc_rsa", "openssh", "pgp"])
    if kind == "rsa":
        return (
            "pem_private_key",
            f"-----BEGIN RSA PRIVATE KEY-----\n{_pem_body(rng, 24, 'MIIEpAIBAAKCAQEA')}\n-----END RSA PRIVATE KEY-----",
        )
    if kind == "pkcs8":
        return (
            "pem_private_key",
            f"-----BEGIN PRIVATE KEY-----\n{_pem_body(rng, 25, 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC')}\n-----END PRIVATE KEY-----",
        )
    if kind == "ec":
        return (
            "pem_private_key",
            f"-----BEGIN EC PRIVATE KEY-----\n{_pem_body(rng, 2, 'MHcCAQEEI')}\n-----END EC PRIVATE KEY-----",
        )
    if kind == "enc_pkcs8":
        return (
            "pem_private_key",
            f"-----BEGIN ENCRYPTED PRIVATE KEY-----\n{_pem_body(rng, 26, 'MIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQww')}\n-----END ENCRYPTED PRIVATE KEY-----",
        )
    if kind == "enc_rsa":
        iv = _r(rng, "0123456789ABCDEF", 32)
        return (
            "pem_private_key",
            f"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,{iv}\n\n{_pem_body(rng, 24)}\n-----END RSA PRIVATE KEY-----",
        )
    if kind == "openssh":
        return (
            "openssh_private_key",
            f"-----BEGIN OPENSSH PRIVATE KEY-----\n{_pem_body(rng, 6, 'b3BlbnNzaC1rZXktdjEAAAAA')}\n-----END OPENSSH PRIVATE KEY-----",
        )
    return (
        "pgp_private_key",
        f"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n{_pem_body(rng, 20, 'lQWGBG')}\n={_r(rng, B64, 4)}\n-----END PGP PRIVATE KEY BLOCK-----",
    )


def _host(rng: random.Random) -> str:
    return rng.choice(
        [
            "db-prod-3.internal.corp-net.io",
            "pg.orders.svc.cluster.local",
            "mysql-replica.eu-west-1.rds.amazonaws.com",
            "10.20.4.17",
            "redis-cache-01.acmecorp.net",
            "mongo0.shard.kestrel-data.com",
        ]
    )


def _secret_items(rng: random.Random) -> dict[str, Callable[[], Item]]:
    s = "secret"
    return {
        "aws_access_key_id": lambda: Item(
            rng.choice(["aws_access_key_id", "AWS_ACCESS_KEY_ID", "accessKeyId"]),
            rng.choice(["AKIA", "ASIA"]) + _r(rng, UPPER32, 16),
            s,
            "aws_access_key_id",
        ),
        "aws_secret_access_key": lambda: Item(
            rng.choice(["aws_secret_access_key", "AWS_SECRET_ACCESS_KEY", "secretAccessKey"]),
            _r(rng, ALNUM + "/+", 40),
            s,
            "aws_secret_access_key",
        ),
        "github_classic": lambda: Item(
            rng.choice(["GITHUB_TOKEN", "gh_token", "token"]), _gh(rng, "ghp_"), s, "github_token"
        ),
        "github_fine_grained": lambda: Item(
            rng.choice(["GH_PAT", "github_pat", "auth"]),
            "github_pat_11"
            + _r(rng, string.ascii_uppercase + string.digits, 20)
            + "_"
            + _r(rng, ALNUM, 59),
            s,
            "github_token",
        ),
        "github_oauth": lambda: Item(
            rng.choice(["oauth_token", "access_token", "GH_OAUTH"]),
            _gh(rng, rng.choice(["gho_", "ghu_", "ghs_", "ghr_"])),
            s,
            "github_token",
        ),
        "gitlab": lambda: Item(
            rng.choice(["GITLAB_TOKEN", "private_token", "CI_JOB_TOKEN_OVERRIDE"]),
            "glpat-" + _r(rng, ALNUM + "-_", 20),
            s,
            "gitlab_token",
        ),
        "slack_token": lambda: Item(
            rng.choice(["SLACK_BOT_TOKEN", "slack_token", "botToken"]),
            rng.choice(["xoxb-", "xoxp-", "xoxa-2-"])
            + str(rng.randint(10**10, 10**12))
            + "-"
            + str(rng.randint(10**11, 10**13))
            + "-"
            + _r(rng, ALNUM, 24),
            s,
            "slack_token",
        ),
        "slack_webhook": lambda: Item(
            rng.choice(["SLACK_WEBHOOK_URL", "webhook", "alert_url"]),
            f"https://hooks.slack.com/services/T{_r(rng, string.ascii_uppercase + string.digits, 8)}/B{_r(rng, string.ascii_uppercase + string.digits, 10)}/{_r(rng, ALNUM, 24)}",
            s,
            "slack_webhook",
        ),
        "stripe_secret": lambda: Item(
            rng.choice(["STRIPE_SECRET_KEY", "stripe.api_key", "stripeKey"]),
            "sk_live_" + _r(rng, ALNUM, rng.choice([24, 99])),
            s,
            "stripe_key",
        ),
        "stripe_restricted": lambda: Item(
            rng.choice(["STRIPE_RESTRICTED_KEY", "rk", "stripe_rk"]),
            "rk_live_" + _r(rng, ALNUM, rng.choice([24, 99])),
            s,
            "stripe_key",
        ),
        "stripe_webhook": lambda: Item(
            rng.choice(["STRIPE_WEBHOOK_SECRET", "endpoint_secret", "whsec"]),
            "whsec_" + _r(rng, ALNUM, 32),
            s,
            "stripe_webhook_secret",
        ),
        "openai": lambda: Item(
            rng.choice(["OPENAI_API_KEY", "openai.api_key", "apiKey"]),
            rng.choice(["sk-proj-", "sk-svcacct-", "sk-"])
            + _r(rng, B64URL, rng.choice([20, 74]))
            + "T3BlbkFJ"
            + _r(rng, B64URL, rng.choice([20, 74])),
            s,
            "openai_key",
        ),
        "anthropic": lambda: Item(
            rng.choice(["ANTHROPIC_API_KEY", "anthropic_key", "x-api-key"]),
            "sk-ant-" + rng.choice(["api03-", "admin01-"]) + _r(rng, B64URL, 93) + "AA",
            s,
            "anthropic_key",
        ),
        "google_api": lambda: Item(
            rng.choice(["GOOGLE_API_KEY", "mapsKey", "gemini_api_key"]),
            "AIza" + _r(rng, B64URL, 35),
            s,
            "google_api_key",
        ),
        "twilio": lambda: Item(
            rng.choice(["TWILIO_API_KEY", "twilio_sid_key"]),
            "SK" + _r(rng, HEX, 32),
            s,
            "twilio_key",
        ),
        "twilio_auth": lambda: Item(
            rng.choice(["TWILIO_AUTH_TOKEN", "twilio_auth_token", "authToken"]),
            _r(rng, HEX, 32),
            s,
            "twilio_key",
        ),
        "sendgrid": lambda: Item(
            rng.choice(["SENDGRID_API_KEY", "sendgrid_key", "mailKey"]),
            "SG." + _r(rng, B64URL, 22) + "." + _r(rng, B64URL, 43),
            s,
            "sendgrid_key",
        ),
        "npm": lambda: Item(
            rng.choice(["NPM_TOKEN", "//registry.npmjs.org/:_authToken", "npmAuth"]),
            "npm_" + _r(rng, ALNUM, 36),
            s,
            "npm_token",
        ),
        "pypi": lambda: Item(
            rng.choice(["PYPI_TOKEN", "password", "TWINE_PASSWORD"]),
            "pypi-AgEIcHlwaS5vcmc" + _r(rng, B64URL, rng.randint(120, 170)),
            s,
            "pypi_token",
        ),
        "huggingface": lambda: Item(
            rng.choice(["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "hf_token"]),
            "hf_" + _r(rng, string.ascii_letters, 34),
            s,
            "huggingface_token",
        ),
        "discord": lambda: Item(
            rng.choice(["DISCORD_TOKEN", "bot_token", "discordToken"]),
            _b64u(str(rng.randint(10**17, 10**19 - 1)).encode())
            + "."
            + _r(rng, B64URL, 6)
            + "."
            + _r(rng, B64URL, rng.choice([27, 38])),
            s,
            "discord_token",
        ),
        "telegram": lambda: Item(
            rng.choice(["TELEGRAM_BOT_TOKEN", "tg_token", "BOT_TOKEN"]),
            f"{rng.randint(10**8, 10**10 - 1)}:AA{_r(rng, B64URL, 33)}",
            s,
            "telegram_token",
        ),
        "jwt": lambda: Item(
            rng.choice(["id_token", "session_jwt", "accessToken"]), "eyJ" + _jwt(rng)[3:], s, "jwt"
        ),
        "db_url_password": lambda: _dburl(rng),
        "url_userinfo": lambda: Item(
            rng.choice(["REPO_URL", "upstream", "feed_url"]),
            _password(rng),
            s,
            "url_password",
            pre=f"https://{rng.choice(['deploy', 'ci-bot', 'svc_sync', 'admin'])}:",
            post=f"@{rng.choice(['git.acmecorp.io/platform/infra.git', 'artifacts.kestrel.dev/simple/', 'rabbit.prod.corp-net.io:15672/api'])}",
        ),
        "auth_bearer": lambda: Item(
            "Authorization",
            _r(rng, B64URL, rng.randint(32, 64)),
            s,
            "authorization_header",
            pre="Bearer ",
        ),
        "auth_basic": lambda: Item(
            "Authorization",
            base64.b64encode(
                f"{rng.choice(['svc', 'admin', 'jenkins'])}:{_password(rng)}".encode()
            ).decode(),
            s,
            "authorization_header",
            pre="Basic ",
        ),
        "x_api_key": lambda: Item(
            rng.choice(["X-API-Key", "X-Auth-Token", "Private-Token"]),
            _r(rng, ALNUM, rng.randint(32, 48)),
            s,
            "api_key_header",
        ),
        "kw_password": lambda: Item(
            rng.choice(
                ["password", "db_password", "DB_PASS", "adminPassword", "smtp_password", "passwd"]
            ),
            _password(rng),
            s,
            "secret_assignment",
        ),
        "kw_secret": lambda: Item(
            rng.choice(
                ["client_secret", "SECRET_KEY", "app_secret", "jwt_secret", "signing_secret"]
            ),
            _r(rng, ALNUM + "-_", rng.randint(24, 48)),
            s,
            "secret_assignment",
        ),
        "kw_token": lambda: Item(
            rng.choice(["api_token", "auth_token", "ACCESS_TOKEN", "refresh_token", "apikey"]),
            _r(rng, ALNUM, rng.randint(28, 44)),
            s,
            "secret_assignment",
        ),
        "azure_storage": lambda: Item(
            "AZURE_STORAGE_CONNECTION_STRING",
            base64.b64encode(rng.randbytes(64)).decode(),
            s,
            "azure_storage_key",
            pre=f"DefaultEndpointsProtocol=https;AccountName={rng.choice(['acmeprodlogs', 'kestrelblob01', 'mediastore'])};AccountKey=",
            post=";EndpointSuffix=core.windows.net",
        ),
    }


def _dburl(rng: random.Random) -> Item:
    scheme, port = rng.choice(
        [
            ("postgresql", 5432),
            ("postgres", 5432),
            ("mysql", 3306),
            ("mongodb+srv", 0),
            ("redis", 6379),
            ("amqp", 5672),
        ]
    )
    user = rng.choice(["app", "orders_rw", "admin", "svc_reporting"])
    host = _host(rng) + (f":{port}" if port else "")
    return Item(
        rng.choice(["DATABASE_URL", "SQLALCHEMY_DATABASE_URI", "dsn", "REDIS_URL", "broker_url"]),
        _url_password(rng),
        "secret",
        "database_url_password",
        pre=f"{scheme}://{user}:",
        post=f"@{host}/{rng.choice(['orders', 'app', 'prod', '0'])}",
    )


# ---------------------------------------------------------------- PII

FIRST = [
    "Maria",
    "James",
    "Aisha",
    "Chen",
    "Olga",
    "Rahul",
    "Fatima",
    "Lucas",
    "Sofia",
    "Kwame",
    "Hannah",
    "Diego",
    "Yuki",
    "Priya",
    "Tomasz",
    "Grace",
    "Mohammed",
    "Elena",
    "Samuel",
    "Ingrid",
    "Nadia",
    "Oliver",
    "Leilani",
    "Viktor",
]
LAST = [
    "Gonzalez",
    "Okafor",
    "Nguyen",
    "Schmidt",
    "Patel",
    "Kowalski",
    "Haddad",
    "Johansson",
    "Rossi",
    "Tanaka",
    "Mbeki",
    "O'Brien",
    "Fischer",
    "Alvarez",
    "Lindqvist",
    "Hernandez",
    "Kim",
    "Novak",
    "Dubois",
    "Washington",
    "Brennan",
    "Iyer",
    "Morales",
    "Castellano",
]
STREETS = [
    "Maple",
    "Oakridge",
    "Cedar Hollow",
    "Willow Creek",
    "Lakeshore",
    "Harbor View",
    "Pine",
    "Juniper",
    "Magnolia",
    "Chestnut",
    "Briarwood",
    "Sycamore",
]
SUFFIX = [
    "Street",
    "St",
    "Avenue",
    "Ave",
    "Road",
    "Rd",
    "Drive",
    "Dr",
    "Lane",
    "Ln",
    "Boulevard",
    "Blvd",
    "Court",
    "Way",
]
CITIES = [
    "Springfield, IL 62704",
    "Austin, TX 78745",
    "Portland, OR 97214",
    "Columbus, OH 43215",
    "Raleigh, NC 27603",
    "Tucson, AZ 85719",
    "Madison, WI 53703",
    "Boise, ID 83702",
]
TEST_CARDS = {
    "4242424242424242",
    "4111111111111111",
    "5555555555554444",
    "378282246310005",
    "6011111111111117",
    "4000000000000002",
    "5105105105105100",
}
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


def _luhn_ok(num: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(num)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(rng: random.Random) -> str:
    while True:
        prefix, length = rng.choice(
            [
                ("4", 16),
                ("51", 16),
                ("53", 16),
                ("55", 16),
                ("2221", 16),
                ("34", 15),
                ("37", 15),
                ("6011", 16),
                ("65", 16),
            ]
        )
        body = prefix + _r(rng, string.digits, length - len(prefix) - 1)
        for d in string.digits:
            if _luhn_ok(body + d):
                num = body + d
                break
        if num not in TEST_CARDS and len(set(num)) > 4:
            break
    sep = rng.choice(["", " ", "-", " "])
    if not sep:
        return num
    groups = (
        [num[:4], num[4:10], num[10:]]
        if length == 15
        else [num[i : i + 4] for i in range(0, 16, 4)]
    )
    return sep.join(groups)


def _iban(rng: random.Random) -> str:
    cc, bban = rng.choice(
        [
            ("DE", lambda: _r(rng, string.digits, 18)),
            (
                "GB",
                lambda: (
                    rng.choice(["NWBK", "BARC", "LOYD", "HBUK", "MIDL"])
                    + _r(rng, string.digits, 14)
                ),
            ),
            (
                "NL",
                lambda: rng.choice(["ABNA", "INGB", "RABO", "TRIO"]) + _r(rng, string.digits, 10),
            ),
            ("CH", lambda: _r(rng, string.digits, 17)),
            ("AT", lambda: _r(rng, string.digits, 16)),
            ("IE", lambda: rng.choice(["AIBK", "BOFI"]) + _r(rng, string.digits, 14)),
        ]
    )
    b = bban()
    num = int("".join(str(int(c, 36)) for c in b + cc + "00"))
    iban = f"{cc}{98 - num % 97:02d}{b}"
    if rng.random() < 0.5:
        return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    return iban


def _ssn(rng: random.Random) -> str:
    while True:
        area = rng.randint(1, 899)
        if area != 666:
            break
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def _phone_us(rng: random.Random) -> str:
    while True:
        area = rng.choice(
            [
                "212",
                "415",
                "617",
                "312",
                "303",
                "206",
                "512",
                "713",
                "404",
                "305",
                "702",
                "612",
                "503",
                "216",
                "919",
                "646",
                "818",
            ]
        )
        ex = str(rng.randint(201, 999))
        line = f"{rng.randint(0, 9999):04d}"
        if ex == "555" or ex[1:] == "11":
            continue
        n = phonenumbers.parse(f"+1{area}{ex}{line}")
        if phonenumbers.is_valid_number(n):
            break
    return rng.choice(
        [
            f"({area}) {ex}-{line}",
            f"{area}-{ex}-{line}",
            f"+1 {area} {ex} {line}",
            f"{area}.{ex}.{line}",
            f"+1{area}{ex}{line}",
            f"+1-{area}-{ex}-{line}",
        ]
    )


def _phone_intl(rng: random.Random) -> str:
    while True:
        region = rng.choice(
            ["GB", "DE", "FR", "IN", "AU", "BR", "JP", "NL", "ES", "IT", "MX", "SE"]
        )
        kind = rng.choice(
            [phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]
        )
        ex = phonenumbers.example_number_for_type(region, kind)
        if ex is None:
            continue
        nat = str(ex.national_number)
        keep = max(2, len(nat) - 6)
        cand = nat[:keep] + _r(rng, string.digits, len(nat) - keep)
        n = phonenumbers.parse(f"+{ex.country_code}{cand}")
        text = phonenumbers.format_number(
            n,
            rng.choice(
                [phonenumbers.PhoneNumberFormat.INTERNATIONAL, phonenumbers.PhoneNumberFormat.E164]
            ),
        )
        fictional = ("7946 0", "1632 960", "113 496", "117 496", "7700 900", "5550", "7010")
        if (
            phonenumbers.is_valid_number(n)
            and cand != nat
            and not any(f in text or f.replace(" ", "") in text.replace(" ", "") for f in fictional)
        ):
            return text


def _ipv4(rng: random.Random) -> str:
    while True:
        ip = ipaddress.IPv4Address(rng.randint(0x03000000, 0xDFFFFFFF))
        if (
            ip.is_global
            and not str(ip).startswith(("100.", "198.18.", "198.19."))
            and not str(ip).endswith((".0", ".255"))
        ):
            return str(ip)


def _ipv6(rng: random.Random) -> str:
    head = rng.choice(["2a01", "2a02", "2a03", "2600", "2607", "2604", "2a00", "2406", "2c0f"])
    groups = [head] + [f"{rng.randint(0, 0xFFFF):x}" for _ in range(7)]
    ip = ipaddress.IPv6Address(":".join(groups))
    return str(ip) if rng.random() < 0.5 else ip.exploded


def _addr(rng: random.Random) -> str:
    base = f"{rng.randint(12, 9899)} {rng.choice(['', '', '', '', '', '', 'N ', 'W ', 'E ', 'S '])}{rng.choice(STREETS)} {rng.choice(SUFFIX)}"
    return base + rng.choice(["", "", ", Apt 4B", " Unit 12"])


def _date(rng: random.Random, style: int | None = None) -> str:
    y, m, d = rng.randint(1936, 2006), rng.randint(1, 12), rng.randint(1, 28)
    style = rng.randint(0, 4) if style is None else style
    return [
        f"{m:02d}/{d:02d}/{y}",
        f"{y}-{m:02d}-{d:02d}",
        f"{MONTHS[m - 1]} {d}, {y}",
        f"{d:02d}.{m:02d}.{y}",
        f"{d} {MONTHS[m - 1][:3]} {y}",
    ][style]


def _name(rng: random.Random) -> tuple[str, str]:
    return rng.choice(FIRST), rng.choice(LAST)


def _pii_items(rng: random.Random) -> dict[str, Callable[[], Item]]:
    p = "pii"

    def email() -> Item:
        f, last = _name(rng)
        local = (
            rng.choice(
                [f"{f}.{last}", f"{f[0]}{last}", f"{f}{rng.randint(1, 99)}", f"{last}.{f[0]}"]
            )
            .lower()
            .replace("'", "")
        )
        dom = rng.choice(
            [
                "gmail.com",
                "outlook.com",
                "yahoo.co.uk",
                "protonmail.com",
                "acmecorp.io",
                "kestrel-health.org",
                "icloud.com",
                "web.de",
            ]
        )
        return Item(
            rng.choice(["email", "contact_email", "reply_to", "owner", "user_email"]),
            f"{local}@{dom}",
            p,
            "email",
        )

    return {
        "email": email,
        "phone_us": lambda: Item(
            rng.choice(["phone", "mobile", "contact_phone", "tel"]), _phone_us(rng), p, "phone"
        ),
        "phone_intl": lambda: Item(
            rng.choice(["phone", "mobile", "telefon", "whatsapp"]), _phone_intl(rng), p, "phone"
        ),
        "ssn": lambda: Item(
            rng.choice(["ssn", "SSN", "social_security_number", "tax_id"]), _ssn(rng), p, "ssn"
        ),
        "card": lambda: Item(
            rng.choice(["card_number", "cc", "pan", "credit_card"]), _card(rng), p, "credit_card"
        ),
        "iban": lambda: Item(
            rng.choice(["iban", "IBAN", "payout_account", "bank_account"]), _iban(rng), p, "iban"
        ),
        "ipv4": lambda: Item(
            rng.choice(["client_ip", "remote_addr", "src", "X-Forwarded-For"]),
            _ipv4(rng),
            p,
            "ip_address",
        ),
        "ipv6": lambda: Item(
            rng.choice(["client_ip", "remote_addr", "peer"]), _ipv6(rng), p, "ip_address"
        ),
        "address": lambda: Item(
            rng.choice(["address", "shipping_address", "home_address", "street"]),
            _addr(rng),
            p,
            "street_address",
            post=", " + rng.choice(CITIES),
        ),
        "dob": lambda: Item(
            rng.choice(["dob", "date_of_birth", "birthdate", "DOB", "birth_date"]),
            _date(rng),
            p,
            "date_of_birth",
        ),
    }


# ---------------------------------------------------------------- containers for key/value items


def _kv(b: _Builder, items: list[Item], fmt: str, indent: str = "") -> None:
    for it in items:
        left, right = fmt.split("{v}")
        b.t(indent + left.replace("{k}", it.label))
        b.v(it)
        b.t(right.replace("{k}", it.label) + "\n")


def _ident(label: str) -> str:
    out = "".join(c if c.isalnum() else "_" for c in label)
    return out if not out[0].isdigit() else "_" + out


def c_python(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t(
        '"""Settings for the ingestion worker."""\n\nimport os\nfrom pathlib import Path\n\nBASE_DIR = Path(__file__).resolve().parent\nDEBUG = False\nRETRY_LIMIT = 5\n\n'
    )
    for it in items:
        b.t(f'{_ident(it.label).upper()} = "')
        b.v(it)
        b.t('"\n')
    b.t("\n\ndef get_timeout() -> float:\n    return float(os.environ.get('TIMEOUT', '30'))\n")


def c_python_dict(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t(
        "import requests\n\n\ndef sync_accounts(session: requests.Session) -> None:\n    headers = {\n        'Accept': 'application/json',\n"
    )
    _kv(b, items, "'{k}': '{v}',", "        ")
    b.t(
        "    }\n    resp = session.get('https://api.partner.example/v2/accounts', headers=headers, timeout=10)\n    resp.raise_for_status()\n"
    )


def c_js(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t(
        "'use strict';\nconst express = require('express');\nconst app = express();\n\nconst config = {\n  port: process.env.PORT || 3000,\n"
    )
    _kv(b, items, '"{k}": "{v}",', "  ")
    b.t("};\n\napp.listen(config.port, () => console.log(`listening on ${config.port}`));\n")


def c_ts(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t(
        "import { Client } from './client';\n\nexport interface Settings {\n  region: string;\n}\n\n"
    )
    for it in items:
        b.t(f"export const {_ident(it.label)}: string = '")
        b.v(it)
        b.t("';\n")
    b.t("\nexport const client = new Client({ region: 'us-east-1' });\n")


def c_go(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t('package config\n\nimport "time"\n\nconst (\n\tDefaultTimeout = 30 * time.Second\n')
    for it in items:
        b.t(f'\t{_ident(it.label).title().replace("_", "")} = "')
        b.v(it)
        b.t('"\n')
    b.t(")\n\nfunc Load() (*Config, error) {\n\treturn &Config{Timeout: DefaultTimeout}, nil\n}\n")


def c_java(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t(
        "package com.acme.billing;\n\nimport java.time.Duration;\n\npublic final class GatewayConfig {\n    private static final Duration TIMEOUT = Duration.ofSeconds(20);\n"
    )
    for it in items:
        b.t(f'    private static final String {_ident(it.label).upper()} = "')
        b.v(it)
        b.t('";\n')
    b.t("\n    private GatewayConfig() {}\n}\n")


def c_rust(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t("use std::time::Duration;\n\npub const TIMEOUT: Duration = Duration::from_secs(15);\n")
    for it in items:
        b.t(f'pub const {_ident(it.label).upper()}: &str = "')
        b.v(it)
        b.t('";\n')
    b.t('\nfn main() {\n    println!("starting");\n}\n')


def c_ruby(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t(
        "# frozen_string_literal: true\n\nRails.application.configure do\n  config.cache_classes = true\n"
    )
    _kv(b, items, "config.x.{k} = '{v}'", "  ")
    b.t("end\n")


def c_php(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t("<?php\n\nreturn [\n    'debug' => false,\n")
    _kv(b, items, "'{k}' => '{v}',", "    ")
    b.t("];\n")


def c_csharp(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t("namespace Acme.Payments;\n\npublic static class Secrets\n{\n")
    for it in items:
        b.t(f'    public const string {_ident(it.label).title().replace("_", "")} = "')
        b.v(it)
        b.t('";\n')
    b.t("}\n")


def c_kotlin(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t("package io.acme.mobile\n\nobject BuildKeys {\n")
    for it in items:
        b.t(f'    const val {_ident(it.label).upper()} = "')
        b.v(it)
        b.t('"\n')
    b.t("}\n")


def c_shell(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t("#!/usr/bin/env bash\nset -euo pipefail\n\n")
    for it in items:
        b.t(f"export {_ident(it.label).upper()}='")
        b.v(it)
        b.t("'\n")
    b.t('\n./bin/migrate --env production\necho "done"\n')


def c_powershell(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t("$ErrorActionPreference = 'Stop'\n")
    for it in items:
        b.t(f'$env:{_ident(it.label).upper()} = "')
        b.v(it)
        b.t('"\n')
    b.t("Invoke-Build -Task Deploy\n")


def c_dotenv(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t("# local overrides, do not commit\nNODE_ENV=production\nPORT=8080\nLOG_LEVEL=info\n")
    for it in items:
        b.t(f"{_ident(it.label).upper()}=")
        b.v(it)
        b.t("\n")
    b.t("FEATURE_FLAGS=search,export\n")


def c_yaml(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t("service:\n  name: billing-api\n  replicas: 3\n  credentials:\n")
    _kv(b, items, "{k}: {v}", "    ")
    b.t("  logging:\n    level: info\n")


def c_json(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t('{\n  "name": "ingest",\n  "version": 3,\n  "settings": {\n')
    for i, it in enumerate(items):
        b.t(f'    "{it.label}": "')
        b.v(it)
        b.t('"' + ("," if i < len(items) - 1 else "") + "\n")
    b.t("  }\n}\n")


def c_toml(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t('[server]\nhost = "0.0.0.0"\nport = 8443\n\n[auth]\n')
    _kv(b, items, '{k} = "{v}"')
    b.t("\n[cache]\nttl = 600\n")


def c_ini(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t("[default]\nregion = eu-central-1\noutput = json\n\n[profile deploy]\n")
    _kv(b, items, "{k} = {v}")
    b.t("\n")


def c_properties(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t("spring.application.name=orders\nserver.port=8081\n")
    for it in items:
        b.t(f"app.{it.label.replace('_', '.').lower()}=")
        b.v(it)
        b.t("\n")
    b.t("management.endpoints.web.exposure.include=health\n")


def c_xml(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t('<?xml version="1.0" encoding="UTF-8"?>\n<configuration>\n  <appSettings>\n')
    for it in items:
        b.t(f'    <add key="{it.label}" value="')
        b.v(it)
        b.t('" />\n')
    b.t("  </appSettings>\n</configuration>\n")


def c_terraform(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t(
        'provider "aws" {\n  region = "us-west-2"\n}\n\nresource "aws_ssm_parameter" "app" {\n  name = "/app/config"\n  type = "SecureString"\n'
    )
    for it in items:
        b.t(f'  {_ident(it.label).lower()} = "')
        b.v(it)
        b.t('"\n')
    b.t("}\n")


def c_k8s(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: app-secrets\n  namespace: prod\ntype: Opaque\nstringData:\n"
    )
    for it in items:
        b.t(f'  {_ident(it.label).upper()}: "')
        b.v(it)
        b.t('"\n')


def c_compose(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t(
        'services:\n  api:\n    image: ghcr.io/acme/api:2.4.1\n    ports:\n      - "8080:8080"\n    environment:\n'
    )
    for it in items:
        b.t(f"      - {_ident(it.label).upper()}=")
        b.v(it)
        b.t("\n")


def c_gha(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t(
        "name: release\non:\n  push:\n    tags: ['v*']\njobs:\n  publish:\n    runs-on: ubuntu-latest\n    env:\n"
    )
    _kv(b, items, "{k}: {v}", "      ")
    b.t("    steps:\n      - uses: actions/checkout@v4\n      - run: make publish\n")


def c_dockerfile(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t("FROM python:3.11-slim\nWORKDIR /app\nCOPY . .\n")
    for it in items:
        b.t(f"ENV {_ident(it.label).upper()}=")
        b.v(it)
        b.t("\n")
    b.t('RUN pip install -r requirements.txt\nCMD ["python", "-m", "app"]\n')


def c_diff(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t(
        "diff --git a/config/settings.py b/config/settings.py\nindex 3f2a1c9..8b7e0d4 100644\n--- a/config/settings.py\n+++ b/config/settings.py\n@@ -12,6 +12,8 @@ TIMEOUT = 30\n RETRIES = 3\n"
    )
    for it in items:
        b.t(f"+{_ident(it.label).upper()} = '")
        b.v(it)
        b.t("'\n")
    b.t(" \n def load():\n")


def c_log(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t(
        "2026-03-04T11:22:07.413Z INFO  [worker-3] job=reconcile started\n2026-03-04T11:22:07.902Z DEBUG [worker-3] request context "
    )
    for it in items:
        b.t(f"{it.label}=")
        b.v(it)
        b.t(" ")
    b.t("\n2026-03-04T11:22:08.117Z WARN  [worker-3] retrying in 2s (attempt 2/5)\n")


def c_traceback(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t(
        'Traceback (most recent call last):\n  File "app/clients/partner.py", line 88, in fetch\n    resp = self._session.post(url, json=payload)\n  File "app/clients/partner.py", line 41, in _post\n    raise PartnerError(f"bad response for {payload!r}")\napp.errors.PartnerError: bad response for {'
    )
    for i, it in enumerate(items):
        b.t(("" if i == 0 else ", ") + f"'{it.label}': '")
        b.v(it)
        b.t("'")
    b.t("}\n")


def c_java_trace(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t('Exception in thread "main" java.lang.IllegalStateException: could not authenticate with ')
    for it in items:
        b.t(f"{it.label}=")
        b.v(it)
        b.t(" ")
    b.t("\n\tat com.acme.auth.Login.run(Login.java:57)\n\tat com.acme.Main.main(Main.java:12)\n")


def c_chat(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t("[10:42] dana: staging is down again, can someone check?\n[10:43] li: looking. ")
    for it in items:
        b.t(
            rng.choice(
                [
                    f"here's the {it.label} you asked for: ",
                    f"fwiw the {it.label} is ",
                    f"use {it.label} ",
                ]
            )
        )
        b.v(it)
        b.t(rng.choice([" ", " - rotate it after. ", ". "]))
    b.t("\n[10:45] dana: thanks, on it\n")


def c_email(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t(
        "Subject: Re: onboarding for the new vendor account\n\nHi team,\n\nAs discussed on the call, here are the details:\n\n"
    )
    _kv(b, items, "  {k}: {v}")
    b.t("\nLet me know if anything is missing.\n\nBest,\nOps\n")


def c_markdown(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t(
        "## Bug: import job fails on large batches\n\n**Steps to reproduce**\n\n1. Run `make import`\n2. Observe the failure\n\n**Environment**\n\n"
    )
    _kv(b, items, "- `{k}`: `{v}`")
    b.t("\n**Expected** the job finishes.\n")


def c_csv(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t("id,created_at,status," + ",".join(_ident(it.label) for it in items) + ",notes\n")
    b.t(f"{rng.randint(1000, 9999)},2025-11-02T08:14:55Z,active,")
    for it in items:
        b.t('"')
        b.v(it)
        b.t('",')
    b.t("imported\n")


def c_sql(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t(
        "-- seed data\nINSERT INTO customers (id, status, "
        + ", ".join(_ident(it.label) for it in items)
        + ")\nVALUES ("
        + str(rng.randint(1, 9999))
        + ", 'active', "
    )
    for i, it in enumerate(items):
        b.t("'" if i == 0 else ", '")
        b.v(it)
        b.t("'")
    b.t(");\n")


def c_curl(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t("$ curl -sS -X POST https://api.vendor-cloud.io/v1/jobs \\\n")
    for it in items:
        b.t(f"    -H '{it.label}: ")
        b.v(it)
        b.t("' \\\n")
    b.t('    -d \'{"job": "rebuild"}\'\n')


def c_http(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t("POST /v2/charges HTTP/1.1\nHost: api.payments-gw.net\nContent-Type: application/json\n")
    for it in items:
        b.t(f"{it.label}: ")
        b.v(it)
        b.t("\n")
    b.t('\n{"amount": 1299, "currency": "usd"}\n')


def c_notebook(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t(
        '{\n "cells": [\n  {\n   "cell_type": "code",\n   "source": [\n    "import pandas as pd\\n",\n'
    )
    for it in items:
        b.t(f'    "{_ident(it.label)} = \\"')
        b.v(it)
        b.t('\\"\\n",\n')
    b.t('    "df = pd.read_csv(\\"data.csv\\")"\n   ]\n  }\n ],\n "nbformat": 4\n}\n')


def c_makefile(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t(".PHONY: deploy\n")
    for it in items:
        b.t(f"{_ident(it.label).upper()} ?= ")
        b.v(it)
        b.t("\n")
    b.t("\ndeploy:\n\t./scripts/deploy.sh\n")


def c_helm(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t("image:\n  repository: registry.acme.io/web\n  tag: 1.9.0\nsecrets:\n")
    _kv(b, items, '{k}: "{v}"', "  ")


def c_commit(b: _Builder, rng: random.Random, items: list[Item]) -> None:
    b.t(
        "commit 9c1e4b7d2a0f6e3b8c5d1a9f7e2b4c6d8a0e1f3b\nAuthor: build bot <bot@ci.local>\n\n    temp: hardcode creds to unblock release\n\n"
    )
    _kv(b, items, "    {k} -> {v}")


CONTAINERS_KV: dict[str, Callable[[_Builder, random.Random, list[Item]], None]] = {
    "python": c_python,
    "python_dict": c_python_dict,
    "javascript": c_js,
    "typescript": c_ts,
    "go": c_go,
    "java": c_java,
    "rust": c_rust,
    "ruby": c_ruby,
    "php": c_php,
    "csharp": c_csharp,
    "kotlin": c_kotlin,
    "shell": c_shell,
    "powershell": c_powershell,
    "dotenv": c_dotenv,
    "yaml": c_yaml,
    "json": c_json,
    "toml": c_toml,
    "ini": c_ini,
    "properties": c_properties,
    "xml": c_xml,
    "terraform": c_terraform,
    "k8s_secret": c_k8s,
    "compose": c_compose,
    "github_actions": c_gha,
    "dockerfile": c_dockerfile,
    "diff": c_diff,
    "log": c_log,
    "traceback": c_traceback,
    "java_trace": c_java_trace,
    "chat": c_chat,
    "email_thread": c_email,
    "markdown_issue": c_markdown,
    "csv": c_csv,
    "sql": c_sql,
    "curl": c_curl,
    "http_request": c_http,
    "notebook": c_notebook,
    "makefile": c_makefile,
    "helm_values": c_helm,
    "commit_msg": c_commit,
}
HEADER_OK = {
    "python_dict",
    "javascript",
    "yaml",
    "json",
    "log",
    "curl",
    "http_request",
    "chat",
    "traceback",
    "markdown_issue",
}


def _json_escaped(b: _Builder) -> tuple[str, tuple[tuple[int, int, str, str], ...]]:
    inner, planted = b.render(lambda s: json.dumps(s)[1:-1])
    head = '{"event":"paste","ts":1764000000,"body":"'
    return head + inner + '"}\n', tuple(
        (s + len(head), e + len(head), c, k) for s, e, c, k in planted
    )


def _url_encoded(b: _Builder) -> tuple[str, tuple[tuple[int, int, str, str], ...]]:
    inner, planted = b.render(lambda s: urllib.parse.quote(s, safe=""))
    head = '203.0.113.9 - - [04/Mar/2026:11:22:07 +0000] "GET /debug/echo?payload='
    return head + inner + '&v=2 HTTP/1.1" 400 512\n', tuple(
        (s + len(head), e + len(head), c, k) for s, e, c, k in planted
    )


# ---------------------------------------------------------------- multi-line and clinical containers


def _pem_item(rng: random.Random) -> Item:
    kind, val = _pem(rng)
    return Item("private_key", val, "secret", kind)


def m_pem_file(b: _Builder, rng: random.Random, it: Item) -> None:
    b.t(
        rng.choice(
            ["", "# deploy key for the build host\n", "Here's the key file from the old box:\n\n"]
        )
    )
    b.v(it)
    b.t("\n")


def m_pem_yaml(b: _Builder, rng: random.Random, it: Item) -> None:
    b.t("tls:\n  enabled: true\n  key: |\n    ")
    b.v(Item(it.label, it.value.replace("\n", "\n    "), it.category, it.kind))
    b.t("\n  verify: true\n")


def m_pem_python(b: _Builder, rng: random.Random, it: Item) -> None:
    b.t('SIGNING_KEY = """')
    b.v(it)
    b.t('\n"""\n')


def m_pem_tf(b: _Builder, rng: random.Random, it: Item) -> None:
    b.t('resource "tls_locally_signed_cert" "x" {\n  private_key_pem = <<EOT\n')
    b.v(it)
    b.t("\nEOT\n}\n")


def m_gcp_sa(b: _Builder, rng: random.Random, it: Item) -> None:
    proj = rng.choice(["acme-prod-2231", "kestrel-analytics", "billing-etl-77"])
    body = _pem_body(rng, 25, "MIIEvgIBADANBgkqhkiG9w0BAQEFAASC")
    key = f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----"
    b.t(
        f'{{\n  "type": "service_account",\n  "project_id": "{proj}",\n  "private_key_id": "{_r(rng, HEX, 40)}",\n  "private_key": "'
    )
    b.v(Item("private_key", json.dumps(key)[1:-1], "secret", "gcp_service_account"))
    b.t(
        f'\\n",\n  "client_email": "deployer@{proj}.iam.gserviceaccount.com",\n  "client_id": "{rng.randint(10**20, 10**21)}",\n  "token_uri": "https://oauth2.googleapis.com/token"\n}}\n'
    )


def _mrn(rng: random.Random) -> str:
    return rng.choice(
        [
            f"{rng.randint(10**6, 10**8 - 1):08d}",
            f"{rng.randint(10**6, 10**7 - 1)}",
            f"MR{rng.randint(10**6, 10**7 - 1)}",
            f"{rng.randint(100, 999)}-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
        ]
    )


CONDITIONS = [
    "type 2 diabetes mellitus",
    "community-acquired pneumonia",
    "atrial fibrillation",
    "major depressive disorder",
    "congestive heart failure",
    "COPD exacerbation",
    "acute pancreatitis",
    "sepsis secondary to UTI",
]
MEDS = [
    "metformin 500 mg BID",
    "apixaban 5 mg BID",
    "sertraline 50 mg daily",
    "furosemide 40 mg daily",
    "ceftriaxone 1 g IV q24h",
    "lisinopril 10 mg daily",
]


def _clin(rng: random.Random) -> dict[str, Item]:
    f, last = _name(rng)
    return {
        "name": Item("patient", f"{f} {last}", "phi", "patient_name"),
        "mrn": Item("MRN", _mrn(rng), "phi", "medical_record_number"),
        "dob": Item("DOB", _date(rng), "phi", "date_of_birth"),
        "_f": Item("", f, "", ""),
        "_l": Item("", last, "", ""),
    }


def p_note(b: _Builder, rng: random.Random, c: dict[str, Item]) -> None:
    b.t("PROGRESS NOTE\n\nPatient: ")
    b.v(c["name"])
    b.t(rng.choice(["    MRN: ", "  |  Medical Record #: ", "\nMRN "]))
    b.v(c["mrn"])
    b.t(rng.choice(["    DOB: ", "\nDate of Birth: "]))
    b.v(c["dob"])
    b.t(
        f"\n\nS: Pt reports worsening dyspnea over 3 days. Hx of {rng.choice(CONDITIONS)}.\nO: T 38.1, HR 104, BP 138/86, SpO2 91% RA.\nA/P: Start {rng.choice(MEDS)}. Recheck BMP in AM.\n"
    )


def p_discharge(b: _Builder, rng: random.Random, c: dict[str, Item]) -> None:
    b.t(
        "DISCHARGE SUMMARY\nAdmission date: 2026-02-11    Discharge date: 2026-02-15\n\nThe patient, "
    )
    b.v(c["name"])
    b.t(" (MRN ")
    b.v(c["mrn"])
    b.t(", born ")
    b.v(c["dob"])
    b.t(
        f"), was admitted with {rng.choice(CONDITIONS)} and treated with {rng.choice(MEDS)}. Discharged home in stable condition with follow-up in cardiology clinic in 2 weeks.\n"
    )


def p_hl7(b: _Builder, rng: random.Random, c: dict[str, Item]) -> None:
    f, last = c["_f"].value, c["_l"].value
    y, m, d = rng.randint(1936, 2006), rng.randint(1, 12), rng.randint(1, 28)
    b.t(
        "MSH|^~\\&|EPIC|MAINHOSP|LABSYS|LAB|20260304112207||ADT^A01|MSG00017|P|2.5.1\rEVN|A01|20260304112207\rPID|1||"
    )
    b.v(c["mrn"])
    b.t("^^^MAINHOSP^MR||")
    b.v(Item("", f"{last.upper()}^{f.upper()}", "phi", "patient_name"))
    b.t("^Q||")
    b.v(Item("", f"{y}{m:02d}{d:02d}", "phi", "date_of_birth"))
    b.t(
        f"|{rng.choice('MF')}|||{rng.randint(10, 999)} Elm St^^Dayton^OH^45402||\rPV1|1|I|4W^412^A|||||||MED\rDG1|1||E11.9^Type 2 diabetes mellitus without complications^I10\r"
    )


def p_fhir(b: _Builder, rng: random.Random, c: dict[str, Item]) -> None:
    b.t(
        '{\n  "resourceType": "Patient",\n  "id": "'
        + _r(rng, HEX, 8)
        + '",\n  "identifier": [{"type": {"coding": [{"code": "MR"}]}, "value": "'
    )
    b.v(c["mrn"])
    b.t('"}],\n  "name": [{"family": "')
    b.v(Item("", c["_l"].value, "phi", "patient_name"))
    b.t('", "given": ["' + c["_f"].value + '"]}],\n  "gender": "female",\n  "birthDate": "')
    y, m, d = rng.randint(1936, 2006), rng.randint(1, 12), rng.randint(1, 28)
    b.v(Item("", f"{y}-{m:02d}-{d:02d}", "phi", "date_of_birth"))
    b.t('"\n}\n')


def p_claim(b: _Builder, rng: random.Random, c: dict[str, Item]) -> None:
    b.t(
        "CLAIM 837P SUMMARY\nPayer: BlueRiver Health Plan    Claim #: "
        + str(rng.randint(10**9, 10**10))
        + "\nPatient Name: "
    )
    f, last = c["_f"].value, c["_l"].value
    b.v(Item("", f"{last.upper()}, {f.upper()}", "phi", "patient_name"))
    b.t("\nPatient DOB: ")
    b.v(c["dob"])
    b.t("    Member MRN: ")
    b.v(c["mrn"])
    b.t("\nDx: J18.9  CPT: 99223, 71046  Charges: $2,814.00\n")


def p_clin_csv(b: _Builder, rng: random.Random, c: dict[str, Item]) -> None:
    b.t("mrn,patient_name,dob,admit_dx,los_days\n")
    b.v(c["mrn"])
    b.t(",")
    b.v(c["name"])
    b.t(',"')
    b.v(c["dob"])
    b.t(f'",{rng.choice(CONDITIONS)},{rng.randint(1, 14)}\n')


def p_clin_sql(b: _Builder, rng: random.Random, c: dict[str, Item]) -> None:
    b.t("INSERT INTO encounters (mrn, patient_name, birth_date, diagnosis) VALUES ('")
    b.v(c["mrn"])
    b.t("', '")
    b.v(Item("", c["name"].value.replace("'", "''"), "phi", "patient_name"))
    b.t("', '")
    b.v(c["dob"])
    b.t(f"', '{rng.choice(CONDITIONS)}');\n")


def p_clin_chat(b: _Builder, rng: random.Random, c: dict[str, Item]) -> None:
    b.t("[07:12] rn_kelly: bed 12 is ")
    b.v(c["name"])
    b.t(", MRN ")
    b.v(c["mrn"])
    b.t(
        f" — came in overnight with {rng.choice(CONDITIONS)}, needs a repeat lactate\n[07:13] dr_osei: ok, adding to rounds list\n"
    )


def p_clin_log(b: _Builder, rng: random.Random, c: dict[str, Item]) -> None:
    b.t("2026-03-04 09:01:44,112 ERROR fhir_sync: validation failed for patient_name='")
    b.v(c["name"])
    b.t("' mrn=")
    b.v(c["mrn"])
    b.t(" dob=")
    b.v(c["dob"])
    b.t(f" reason='Condition.code {rng.choice(['E11.9', 'I48.91', 'J44.1'])} missing onset'\n")


CLINICAL: dict[str, Callable[[_Builder, random.Random, dict[str, Item]], None]] = {
    "clinical_note": p_note,
    "discharge_summary": p_discharge,
    "hl7_adt": p_hl7,
    "fhir_patient": p_fhir,
    "claim": p_claim,
    "clinical_csv": p_clin_csv,
    "clinical_sql": p_clin_sql,
    "clinical_chat": p_clin_chat,
    "clinical_log": p_clin_log,
}


def _dirty(rng: random.Random, per_kind: int) -> list[Packet]:
    out: list[Packet] = []
    secrets, pii = _secret_items(rng), _pii_items(rng)
    kv_names = list(CONTAINERS_KV)
    for n, (kind, gen) in enumerate([*secrets.items(), *pii.items()]):
        for i in range(per_kind):
            items = [gen()]
            if rng.random() < 0.3:
                other = rng.choice(
                    list(pii.values()) if rng.random() < 0.5 else list(secrets.values())
                )()
                items.append(other)
            header = any(
                it.label
                in ("Authorization", "X-API-Key", "X-Auth-Token", "Private-Token", "x-api-key")
                for it in items
            )
            names = [c for c in kv_names if c in HEADER_OK] if header else kv_names
            cname = names[(n + i * 7) % len(names)]
            b = _Builder()
            CONTAINERS_KV[cname](b, rng, items)
            wrap = rng.random()
            if wrap < 0.1:
                text, planted = _json_escaped(b)
                cname += "+json_escaped"
            elif wrap < 0.17:
                text, planted = _url_encoded(b)
                cname += "+url_encoded"
            else:
                text, planted = b.render()
            out.append(Packet(f"{kind}/{cname}/{i}", text, planted))
    multi = [m_pem_file, m_pem_yaml, m_pem_python, m_pem_tf]
    for i in range(per_kind * 2):
        b = _Builder()
        fn = multi[i % len(multi)]
        fn(b, rng, _pem_item(rng))
        if i % 5 == 4:
            text, planted = _json_escaped(b)
        else:
            text, planted = b.render()
        out.append(Packet(f"pem/{fn.__name__}/{i}", text, planted))
    for i in range(per_kind):
        b = _Builder()
        m_gcp_sa(b, rng, _pem_item(rng))
        text, planted = b.render()
        out.append(Packet(f"gcp_sa/json/{i}", text, planted))
    cnames = list(CLINICAL)
    for i in range(per_kind * 4):
        b = _Builder()
        cname = cnames[i % len(cnames)]
        CLINICAL[cname](b, rng, _clin(rng))
        if i % 9 == 8:
            text, planted = _json_escaped(b)
            cname += "+json_escaped"
        else:
            text, planted = b.render()
        out.append(Packet(f"phi/{cname}/{i}", text, planted))
    return out


# ---------------------------------------------------------------- clean packets


def _sha(rng: random.Random, n: int = 40) -> str:
    return _r(rng, HEX, n)


def _uuid(rng: random.Random) -> str:
    h = _sha(rng, 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def _reserved_ip(rng: random.Random) -> str:
    return rng.choice(
        [
            f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            f"172.{rng.randint(16, 31)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            "127.0.0.1",
            f"192.0.2.{rng.randint(1, 254)}",
            f"198.51.100.{rng.randint(1, 254)}",
            f"203.0.113.{rng.randint(1, 254)}",
            "0.0.0.0",
            f"169.254.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            f"100.{rng.randint(64, 127)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
        ]
    )


def _ph(rng: random.Random) -> str:
    return rng.choice(
        [
            "${DB_PASSWORD}",
            "<API_KEY>",
            "****",
            "[REDACTED]",
            "${{ secrets.NPM_TOKEN }}",
            "{{ .Values.apiKey }}",
            "your-api-key-here",
            "changeme",
            "xxxxxxxxxxxxxxxx",
            "<your-token>",
            "%(password)s",
            "$SECRET_KEY",
            "REPLACE_ME",
            "********",
            "<redacted>",
        ]
    )


def n_readme(rng: random.Random) -> str:
    return f"""# acme-sdk

Install with `pip install acme-sdk`, then export your key:

```bash
export ACME_API_KEY={_ph(rng)}
```

```python
import os
from acme import Client

client = Client(api_key=os.environ["ACME_API_KEY"], base_url="https://api.example.com")
```

Questions? Write to support@example.com or open an issue. Call +1 (555) 01{rng.randint(10, 99)} for the demo line.
"""


def n_aws_docs(rng: random.Random) -> str:
    return f"""## Configuring credentials

The examples below use the documented sample values; replace them with your own.

```ini
[default]
aws_access_key_id = AKIAIOSFODNN7EXAMPLE
aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
region = us-east-1
```

Role ARN: `arn:aws:iam::123456789012:role/{rng.choice(["deploy", "ReadOnly", "ci"])}`
Request id: {_uuid(rng)}
"""


def n_stripe_docs(rng: random.Random) -> str:
    return f"""### Testing payments

Use test card `4242 4242 4242 4242` with any future expiry and any CVC, or `4000 0000 0000 0002` to force a decline.
Amex test number: 378282246310005. Mastercard: 5555555555554444.

```js
const stripe = require('stripe')(process.env.STRIPE_SECRET_KEY);
const intent = await stripe.paymentIntents.create({{ amount: {rng.randint(100, 9999)}, currency: 'usd' }});
```
The documented sample key `sk_test_4eC39HqLyjWDarjtT1zdp7dc` only works in test mode.
"""


def n_lockfile_npm(rng: random.Random) -> str:
    pkgs = ["lodash", "react", "chalk", "debug", "ms", "semver", "yargs", "zod"]
    parts = []
    for p in rng.sample(pkgs, 4):
        integ = base64.b64encode(rng.randbytes(64)).decode()
        parts.append(
            f'    "node_modules/{p}": {{\n      "version": "{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}",\n      "resolved": "https://registry.npmjs.org/{p}/-/{p}-1.0.0.tgz",\n      "integrity": "sha512-{integ}"\n    }}'
        )
    return (
        '{\n  "name": "web",\n  "lockfileVersion": 3,\n  "packages": {\n'
        + ",\n".join(parts)
        + "\n  }\n}\n"
    )


def n_yarn_lock(rng: random.Random) -> str:
    return "".join(
        f'"{p}@^1.0.0":\n  version "1.{rng.randint(0, 9)}.{rng.randint(0, 9)}"\n  resolved "https://registry.yarnpkg.com/{p}/-/{p}-1.2.0.tgz#{_sha(rng)}"\n  integrity sha1-{base64.b64encode(rng.randbytes(20)).decode()}\n\n'
        for p in ["ansi-regex", "ms", "once", "wrappy"]
    )


def n_go_sum(rng: random.Random) -> str:
    mods = [
        "github.com/spf13/cobra v1.8.0",
        "golang.org/x/sys v0.17.0",
        "github.com/google/uuid v1.6.0",
        "go.uber.org/zap v1.27.0",
    ]
    return "".join(
        f"{m} h1:{base64.b64encode(rng.randbytes(32)).decode()}\n{m}/go.mod h1:{base64.b64encode(rng.randbytes(32)).decode()}\n"
        for m in mods
    )


def n_cargo_lock(rng: random.Random) -> str:
    return "version = 3\n\n" + "".join(
        f'[[package]]\nname = "{p}"\nversion = "0.{rng.randint(1, 30)}.{rng.randint(0, 9)}"\nsource = "registry+https://github.com/rust-lang/crates.io-index"\nchecksum = "{_sha(rng, 64)}"\n\n'
        for p in ["serde", "tokio", "anyhow", "regex"]
    )


def n_requirements(rng: random.Random) -> str:
    return "".join(
        f"{p}==1.{rng.randint(0, 30)}.{rng.randint(0, 9)} \\\n    --hash=sha256:{_sha(rng, 64)} \\\n    --hash=sha256:{_sha(rng, 64)}\n"
        for p in ["requests", "urllib3", "idna", "certifi"]
    )


def n_docker(rng: random.Random) -> str:
    return f"""$ docker pull ghcr.io/acme/api:2.4.1
2.4.1: Pulling from acme/api
{_sha(rng, 12)}: Pull complete
{_sha(rng, 12)}: Pull complete
Digest: sha256:{_sha(rng, 64)}
Status: Downloaded newer image for ghcr.io/acme/api:2.4.1
$ docker inspect --format '{{{{.Id}}}}' api
sha256:{_sha(rng, 64)}
"""


def n_git_log(rng: random.Random) -> str:
    return "".join(
        f"commit {_sha(rng)}\nAuthor: dev{i} <dev{i}@example.org>\nDate:   Tue Mar {i + 3} 10:1{i}:00 2026 +0000\n\n    fix: handle empty batches (#{rng.randint(100, 9999)})\n\n"
        for i in range(3)
    )


def n_ci_log(rng: random.Random) -> str:
    return f"""Run actions/checkout@v4
  with:
    repository: acme/web
    token: ***
    ssh-strict: true
Syncing repository: acme/web
/usr/bin/git -c protocol.version=2 fetch --no-tags --prune --depth=1 origin +{_sha(rng)}:refs/remotes/origin/main
Run npm ci
added 812 packages, and audited 813 packages in 14s
found 0 vulnerabilities
Run npm test
Tests: 214 passed, 214 total
Time: {rng.uniform(5, 40):.3f} s
NPM_TOKEN: ***
Cache saved with key: node-cache-Linux-x64-npm-{_sha(rng, 64)}
"""


def n_env_template(rng: random.Random) -> str:
    return f"""# Copy to .env and fill in
DATABASE_URL=postgres://user:password@localhost:5432/app
REDIS_URL=redis://localhost:6379/0
SECRET_KEY={_ph(rng)}
STRIPE_SECRET_KEY=sk_test_xxxxxxxxxxxxxxxxxxxxxxxx
OPENAI_API_KEY=
GITHUB_TOKEN=<your-github-token>
SMTP_PASSWORD=${{SMTP_PASSWORD}}
"""


def n_k8s_ref(rng: random.Random) -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  template:
    spec:
      containers:
        - name: api
          image: registry.acme.io/api@sha256:{_sha(rng, 64)}
          env:
            - name: DB_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: db-credentials
                  key: password
            - name: POD_IP
              valueFrom:
                fieldRef:
                  fieldPath: status.podIP
"""


def n_python_code(rng: random.Random) -> str:
    return f'''"""Token handling helpers."""

import hashlib
import os
import secrets


def new_token() -> str:
    return secrets.token_urlsafe(32)


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


API_KEY = os.environ["SERVICE_API_KEY"]
PASSWORD = os.getenv("DB_PASSWORD", "")
SESSION_ID = "{_uuid(rng)}"
MAX_RETRIES = {rng.randint(2, 9)}
password_field = "password"
token_type = "bearer"
'''


def n_ts_code(rng: random.Random) -> str:
    return f"""export async function login(user: string, password: string): Promise<Session> {{
  const res = await fetch(`${{BASE_URL}}/auth/login`, {{
    method: 'POST',
    headers: {{ 'Content-Type': 'application/json', Authorization: `Bearer ${{token}}` }},
    body: JSON.stringify({{ user, password }}),
  }});
  if (!res.ok) throw new Error(`login failed: ${{res.status}}`);
  return (await res.json()) as Session;
}}

const REQUEST_ID = '{_uuid(rng)}';
const apiKey = process.env.API_KEY ?? '';
"""


def n_public_keys(rng: random.Random) -> str:
    return f"""# authorized_keys for the build host
ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{_r(rng, B64, 43)} ci@build
ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQ{_r(rng, B64, 360)}= deploy@bastion

-----BEGIN PUBLIC KEY-----
{_pem_body(rng, 5, "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A")}
-----END PUBLIC KEY-----
"""


def n_cert(rng: random.Random) -> str:
    return f"""Server certificate chain (public):

-----BEGIN CERTIFICATE-----
{_pem_body(rng, 18, "MIIDdzCCAl+gAwIBAgIE")}
-----END CERTIFICATE-----
SHA256 Fingerprint={":".join(_sha(rng, 2).upper() for _ in range(32))}
"""


def n_pgp_public(rng: random.Random) -> str:
    return f"""Release signing key (public):

-----BEGIN PGP PUBLIC KEY BLOCK-----

{_pem_body(rng, 12, "mQINBG")}
={_r(rng, B64, 4)}
-----END PGP PUBLIC KEY BLOCK-----
Fingerprint: {" ".join(_sha(rng, 4).upper() for _ in range(10))}
"""


def n_data_uri(rng: random.Random) -> str:
    return f""".icon-check {{
  background-image: url("data:image/png;base64,{base64.b64encode(rng.randbytes(300)).decode()}");
  width: 16px;
}}
.font {{ src: url(data:font/woff2;base64,{base64.b64encode(rng.randbytes(200)).decode()}) format("woff2"); }}
"""


def n_minified(rng: random.Random) -> str:
    names = [_r(rng, string.ascii_letters, 1) for _ in range(20)]
    body = ";".join(
        f"var {a}=function({b},{c}){{return {b}.{rng.choice(['map', 'filter', 'reduce'])}(function(x){{return x*{rng.randint(2, 99)}+{c}}})}}"
        for a, b, c in zip(names, names[1:], names[2:], strict=False)
    )
    return f'!function(e){{"use strict";{body};e.version="{rng.randint(1, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}";e.h="{_sha(rng, 32)}"}}(window);\n//# sourceMappingURL=app.{_sha(rng, 8)}.js.map\n'


def n_numeric(rng: random.Random) -> str:
    rows = "\n".join(
        f"{i:>4d}  {rng.uniform(-1, 1): .6f}  {rng.uniform(0, 1e4):12.4f}  {rng.randint(10**9, 10**10)}  {rng.uniform(0, 1):.3e}"
        for i in range(12)
    )
    return f"epoch  loss        metric         timestamp_ms  p_value\n{rows}\nmean=0.{rng.randint(10**8, 10**9)} std=0.{rng.randint(10**8, 10**9)}\n"


def n_scipy(rng: random.Random) -> str:
    arr = ", ".join(f"{rng.uniform(0, 1000):.8f}" for _ in range(16))
    return f""">>> np.random.seed({rng.randint(0, 9999)})
>>> x = np.random.rand(4, 4) * 1000
>>> x.ravel()
array([{arr}])
>>> int(x.sum() * 1e9)
{rng.randint(10**15, 10**16)}
>>> hash(tuple(x.ravel()))
{rng.randint(-(10**18), 10**18)}
"""


def n_uuids(rng: random.Random) -> str:
    return (
        "\n".join(
            f"{_uuid(rng)},{rng.choice(['queued', 'done', 'failed'])},{rng.randint(1, 9999)},{rng.randint(1_700_000_000_000, 1_760_000_000_000)}"
            for _ in range(10)
        )
        + "\n"
    )


def n_network(rng: random.Random) -> str:
    return f"""# /etc/hosts
127.0.0.1   localhost
::1         localhost ip6-localhost
{_reserved_ip(rng)}  db.internal
{_reserved_ip(rng)}  cache.internal
fe80::1%lo0 localhost
2001:db8:{rng.randint(0, 0xFFFF):x}::{rng.randint(1, 0xFFFF):x} docs-example
upstream backend {{ server {_reserved_ip(rng)}:8080; server {_reserved_ip(rng)}:8080; }}
listen [::]:443 ssl;
"""


def n_nginx_log(rng: random.Random) -> str:
    return "".join(
        f'{_reserved_ip(rng)} - - [04/Mar/2026:11:{i:02d}:07 +0000] "GET /api/v1/items/{_uuid(rng)} HTTP/1.1" 200 {rng.randint(100, 9999)} "-" "Mozilla/5.0"\n'
        for i in range(6)
    )


def n_versions(rng: random.Random) -> str:
    return f"""Microsoft Windows [Version 10.0.{rng.randint(17000, 22631)}.{rng.randint(100, 4000)}]
Python 3.11.{rng.randint(0, 9)} (main, Jan 10 2026, 12:00:00) [GCC 12.2.0]
node v20.{rng.randint(0, 18)}.{rng.randint(0, 9)}
assembly version 4.2.{rng.randint(0, 99)}.{rng.randint(0, 999)}
OID 1.3.6.1.4.1.{rng.randint(1000, 60000)}.1.2
build 2026.03.{rng.randint(10, 28)}.{rng.randint(1, 9)}
"""


def n_fhir_docs(rng: random.Random) -> str:
    return f"""## Patient resource mapping

| FHIR element | Type | Source column |
| --- | --- | --- |
| Patient.identifier (type MR) | Identifier | `mrn` |
| Patient.name.family | string | `last_name` |
| Patient.name.given | string | `first_name` |
| Patient.birthDate | date | `dob` |

Identifier system OID: `urn:oid:2.16.840.1.113883.{rng.randint(1, 19)}.{rng.randint(1, 999)}`.

```json
{{
  "resourceType": "Patient",
  "identifier": [{{"system": "http://hospital.example.org/mrn", "value": "<mrn>"}}],
  "name": [{{"family": "<family>", "given": ["<given>"]}}],
  "birthDate": "<YYYY-MM-DD>"
}}
```
"""


def n_hl7_docs(rng: random.Random) -> str:
    return f"""PID segment fields we parse:

PID-3  Patient Identifier List (CX)   e.g. <id>^^^<assigning authority>^MR
PID-5  Patient Name (XPN)             <family>^<given>^<middle>
PID-7  Date/Time of Birth (TS)        YYYYMMDD
PID-8  Administrative Sex (IS)        M | F | U

Template used by the fixture builder:
MSH|^~\\&|{{sending_app}}|{{sending_fac}}|LAB|LAB|{{ts}}||ADT^A01|{{control_id}}|P|2.5.1
PID|1||{{mrn}}^^^{{facility}}^MR||{{family}}^{{given}}||{{dob}}|{{sex}}
OBX|1|NM|2345-7^Glucose^LN||{rng.randint(70, 200)}|mg/dL|70-99|H|||F
"""


def n_medical_code(rng: random.Random) -> str:
    return f'''from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class PatientRecord:
    """Row from the encounters table; mrn is the hospital identifier."""

    mrn: str
    family_name: str
    given_name: str
    birth_date: date


def age_at(record: PatientRecord, when: date) -> int:
    years = when.year - record.birth_date.year
    return years - ((when.month, when.day) < (record.birth_date.month, record.birth_date.day))


LOINC_GLUCOSE = "2345-7"
ICD10_T2DM = "E11.9"
SNOMED_AFIB = "{rng.choice(["49436004", "44054006", "38341003"])}"
DEFAULT_FACILITY_OID = "2.16.840.1.113883.3.{rng.randint(100, 9999)}"
'''


def n_sql_ddl(rng: random.Random) -> str:
    return f"""CREATE TABLE patients (
    id            BIGSERIAL PRIMARY KEY,
    mrn           VARCHAR(16) NOT NULL UNIQUE,
    family_name   TEXT NOT NULL,
    given_name    TEXT NOT NULL,
    date_of_birth DATE NOT NULL,
    ssn_hash      CHAR(64),
    email         TEXT,
    phone         TEXT,
    created_at    TIMESTAMPTZ DEFAULT now()
);
CREATE INDEX idx_patients_mrn ON patients (mrn);
-- migration {rng.randint(1, 999):04d}_{_sha(rng, 8)}
"""


def n_test_fixture(rng: random.Random) -> str:
    return f'''import pytest


@pytest.fixture
def user() -> dict[str, str]:
    return {{
        "email": "jane.doe@example.com",
        "phone": "+1-202-555-01{rng.randint(10, 99)}",
        "card": "4111 1111 1111 1111",
        "ip": "{_reserved_ip(rng)}",
        "password": "{_ph(rng)}",
        "id": "{_uuid(rng)}",
    }}


def test_masks_email(user: dict[str, str]) -> None:
    assert mask(user["email"]) == "j***@example.com"
'''


def n_api_docs(rng: random.Random) -> str:
    return f"""## Authentication

All requests need a bearer token:

    Authorization: Bearer <ACCESS_TOKEN>
    X-API-Key: {{your-api-key}}

Example:

```http
GET /v1/users/{_uuid(rng)} HTTP/1.1
Host: api.example.com
Authorization: Bearer $TOKEN
```

Response `200 OK`:

```json
{{"id": "{_uuid(rng)}", "email": "user@example.com", "created": "2026-01-0{rng.randint(1, 9)}T00:00:00Z"}}
```
"""


def n_terraform_vars(rng: random.Random) -> str:
    return f"""variable "db_password" {{
  type      = string
  sensitive = true
}}

resource "aws_db_instance" "main" {{
  engine            = "postgres"
  instance_class    = "db.t3.micro"
  password          = var.db_password
  kms_key_id        = "arn:aws:kms:us-east-1:123456789012:key/{_uuid(rng)}"
  allocated_storage = {rng.randint(20, 500)}
}}
"""


def n_compose_ref(rng: random.Random) -> str:
    return """services:
  db:
    image: postgres:16
    environment:
      POSTGRES_PASSWORD_FILE: /run/secrets/db_password
      POSTGRES_USER: ${POSTGRES_USER:-app}
  api:
    environment:
      - API_TOKEN=${API_TOKEN}
      - SECRET_KEY=${SECRET_KEY:?must be set}
secrets:
  db_password:
    file: ./secrets/db_password.txt
"""


def n_gha_secrets(rng: random.Random) -> str:
    return """jobs:
  deploy:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/setup-node@v4
        with:
          registry-url: https://registry.npmjs.org
      - run: npm publish
        env:
          NODE_AUTH_TOKEN: ${{ secrets.NPM_TOKEN }}
      - run: aws s3 sync dist s3://assets
        env:
          AWS_ACCESS_KEY_ID: ${{ secrets.AWS_ACCESS_KEY_ID }}
          AWS_SECRET_ACCESS_KEY: ${{ secrets.AWS_SECRET_ACCESS_KEY }}
"""


def n_redacted_log(rng: random.Random) -> str:
    return f"""2026-03-04T10:00:01Z INFO  auth: login ok user_id={rng.randint(1, 99999)} token=[REDACTED]
2026-03-04T10:00:02Z DEBUG http: headers={{'Authorization': '****', 'X-Request-Id': '{_uuid(rng)}'}}
2026-03-04T10:00:03Z INFO  db: connected to postgres://app:****@{_reserved_ip(rng)}:5432/app
2026-03-04T10:00:04Z INFO  trace_id={_sha(rng, 32)} span_id={_sha(rng, 16)} duration_ms={rng.randint(1, 900)}
"""


def n_java_code(rng: random.Random) -> str:
    return f"""public final class PasswordPolicy {{
    public static final int MIN_LENGTH = {rng.randint(8, 16)};
    private static final String PASSWORD_PATTERN = "^(?=.*[0-9])(?=.*[a-z]).{{8,}}$";

    public boolean isValid(String password) {{
        return password != null && password.matches(PASSWORD_PATTERN);
    }}

    public String token() {{
        return System.getenv("SERVICE_TOKEN");
    }}
}}
"""


def n_go_code(rng: random.Random) -> str:
    return f"""func NewClient(cfg Config) (*Client, error) {{
	token := os.Getenv("GITHUB_TOKEN")
	if token == "" {{
		return nil, errors.New("GITHUB_TOKEN is not set")
	}}
	req.Header.Set("Authorization", "token "+token)
	req.Header.Set("X-Request-ID", "{_uuid(rng)}")
	return &Client{{token: token, timeout: {rng.randint(5, 60)} * time.Second}}, nil
}}
"""


def n_rust_code(rng: random.Random) -> str:
    return f"""pub fn checksum(data: &[u8]) -> [u8; 32] {{
    let mut hasher = Sha256::new();
    hasher.update(data);
    hasher.finalize().into()
}}

#[test]
fn known_vector() {{
    assert_eq!(hex::encode(checksum(b"abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    let seed = 0x{_sha(rng, 16)}u64;
    let _ = seed;
}}
"""


def n_changelog(rng: random.Random) -> str:
    return f"""# Changelog

## [2.{rng.randint(0, 20)}.0] - 2026-02-1{rng.randint(0, 9)}
### Fixed
- Token refresh no longer logs the `Authorization` header ({_sha(rng, 7)}).
- `password` fields are masked as `********` in audit output (#{rng.randint(100, 999)}).
### Changed
- Bumped `cryptography` to 44.0.{rng.randint(0, 9)}; see https://github.com/acme/web/compare/{_sha(rng, 7)}...{_sha(rng, 7)}
"""


def n_sql_query(rng: random.Random) -> str:
    return f"""EXPLAIN ANALYZE
SELECT o.id, o.total_cents, c.email
FROM orders o JOIN customers c ON c.id = o.customer_id
WHERE o.created_at > now() - interval '{rng.randint(1, 30)} days' AND c.email LIKE '%@example.com'
ORDER BY o.total_cents DESC LIMIT 50;
-- Planning Time: {rng.uniform(0, 2):.3f} ms
-- Execution Time: {rng.uniform(0, 200):.3f} ms
"""


def n_csv_metrics(rng: random.Random) -> str:
    rows = "\n".join(
        f"2026-03-{d:02d},{rng.choice(['us-east-1', 'eu-west-1'])},{rng.randint(10**6, 10**8)},{rng.uniform(0, 100):.2f},{_sha(rng, 12)}"
        for d in range(1, 11)
    )
    return "date,region,requests,p95_ms,build\n" + rows + "\n"


def n_python_traceback(rng: random.Random) -> str:
    return f"""Traceback (most recent call last):
  File "/usr/lib/python3.11/site-packages/urllib3/connectionpool.py", line 715, in urlopen
    httplib_response = self._make_request(
  File "/usr/lib/python3.11/http/client.py", line 1286, in request
    self._send_request(method, url, body, headers, encode_chunked)
ConnectionRefusedError: [Errno 111] Connection refused
urllib3.exceptions.MaxRetryError: HTTPConnectionPool(host='{_reserved_ip(rng)}', port=8000): Max retries exceeded with url: /v1/jobs/{_uuid(rng)}
"""


def n_jwt_docs(rng: random.Random) -> str:
    return f"""A JWT has three base64url parts: header, payload and signature. The well-known example from the spec pages:

    eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c

Decode the header with `base64 -d` and check `alg` before verifying. Our `kid` values are UUIDs like {_uuid(rng)}.
"""


def n_phone_docs(rng: random.Random) -> str:
    return f"""Phone input accepts E.164. Examples used in our docs (all fictional):

- US: (555) 01{rng.randint(10, 99)}, 202-555-01{rng.randint(10, 99)}
- UK: +44 20 7946 0{rng.randint(100, 999)}, 01632 960{rng.randint(100, 999)}
- AU: +61 2 5550 {rng.randint(1000, 9999)}

Order numbers look like ORD-{rng.randint(10**7, 10**8)} and invoices like INV-2026-{rng.randint(1000, 9999)}.
"""


def n_pyproject(rng: random.Random) -> str:
    return f"""[project]
name = "acme-tools"
version = "0.{rng.randint(1, 40)}.{rng.randint(0, 9)}"
authors = [{{ name = "Acme Maintainers", email = "maintainers@example.org" }}]
dependencies = ["httpx>=0.27", "pydantic>=2.6"]

[tool.ruff]
line-length = 100

[tool.pytest.ini_options]
addopts = "-q"
"""


def n_html(rng: random.Random) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <link rel="stylesheet" href="/static/app.{_sha(rng, 8)}.css" integrity="sha384-{base64.b64encode(rng.randbytes(48)).decode()}" crossorigin="anonymous">
  <meta name="csrf-token" content="{{{{ csrf_token() }}}}">
</head>
<body>
  <form method="post"><input type="password" name="password" placeholder="Password" autocomplete="current-password"></form>
</body>
</html>
"""


def n_hex_dump(rng: random.Random) -> str:
    return "".join(
        f"{i * 16:08x}  " + " ".join(_sha(rng, 2) for _ in range(16)) + "\n" for i in range(10)
    )


def n_oauth_docs(rng: random.Random) -> str:
    return f"""1. Redirect the user to
   `https://auth.example.com/authorize?client_id=YOUR_CLIENT_ID&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&state={_sha(rng, 16)}`
2. Exchange the code:

```bash
curl -X POST https://auth.example.com/token \\
  -d client_id=$CLIENT_ID \\
  -d client_secret=$CLIENT_SECRET \\
  -d code=$CODE
```
"""


def n_chat_dev(rng: random.Random) -> str:
    return f"""[09:14] sam: CI is red on main, looks like the snapshot test
[09:15] ana: yeah, commit {_sha(rng, 7)} changed the serializer; rerun with `pytest -k snapshot --update`
[09:16] sam: the token in the fixture is just `{_ph(rng)}`, right?
[09:16] ana: yep, real ones come from vault. p95 went from {rng.randint(10, 99)}ms to {rng.randint(10, 99)}ms btw
"""


NEGATIVES: dict[str, Callable[[random.Random], str]] = {
    fn.__name__[2:]: fn
    for fn in [
        n_readme,
        n_aws_docs,
        n_stripe_docs,
        n_lockfile_npm,
        n_yarn_lock,
        n_go_sum,
        n_cargo_lock,
        n_requirements,
        n_docker,
        n_git_log,
        n_ci_log,
        n_env_template,
        n_k8s_ref,
        n_python_code,
        n_ts_code,
        n_public_keys,
        n_cert,
        n_pgp_public,
        n_data_uri,
        n_minified,
        n_numeric,
        n_scipy,
        n_uuids,
        n_network,
        n_nginx_log,
        n_versions,
        n_fhir_docs,
        n_hl7_docs,
        n_medical_code,
        n_sql_ddl,
        n_test_fixture,
        n_api_docs,
        n_terraform_vars,
        n_compose_ref,
        n_gha_secrets,
        n_redacted_log,
        n_java_code,
        n_go_code,
        n_rust_code,
        n_changelog,
        n_sql_query,
        n_csv_metrics,
        n_python_traceback,
        n_jwt_docs,
        n_phone_docs,
        n_pyproject,
        n_html,
        n_hex_dump,
        n_oauth_docs,
        n_chat_dev,
    ]
}


def _clean(rng: random.Random, per: int) -> list[Packet]:
    out = []
    for name, fn in NEGATIVES.items():
        for i in range(per):
            text = fn(rng)
            if i == per - 1 and name in ("ci_log", "api_docs", "python_code", "env_template"):
                text = '{"event":"paste","body":' + json.dumps(text) + "}\n"
            out.append(Packet(f"{name}/{i}", text, ()))
    return out


def build(seed: int = 0) -> tuple[list[Packet], list[Packet]]:
    """Dirty and clean packets for one seed; the same seed always gives the same corpus."""
    rng = random.Random(seed)
    return _dirty(rng, 8), _clean(rng, 8)
