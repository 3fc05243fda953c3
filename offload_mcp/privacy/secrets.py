"""Credentials in their vendors' formats: prefixes, lengths and structure the formats carry.

Every rule here stops one leak: the named credential, pasted into a packet, reaching a
provider that logs prompts. Keyword-anchored assignments live in `assignments.py`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from offload_mcp.privacy import assignments, handovers, pivots
from offload_mcp.privacy.checks import classes, is_placeholder, looks_random, shannon, word_bounded
from offload_mcp.privacy.engine import Detector, Rule, compiled, spans
from offload_mcp.privacy.findings import Finding
from offload_mcp.privacy.tables import DOCUMENTED_KEYS


def _token(value: str) -> bool:
    """Not a documented example and random enough to be a real credential."""
    return value not in DOCUMENTED_KEYS and looks_random(value, min_len=12, min_bits=2.5)


def _aws_id(value: str) -> bool:
    return value not in DOCUMENTED_KEYS and not value.endswith("EXAMPLE") and shannon(value) > 2.5


def _openai(value: str) -> bool:
    # `sk-` also starts kebab-case words; real keys carry digits and a long random run.
    longest = max(map(len, value.split("-")))
    return _token(value) and any(c.isdigit() for c in value) and longest >= 8


def _url_password(value: str) -> bool:
    userinfo = value.split("://", 1)[1].rsplit("@", 1)[0]
    user, _, password = userinfo.partition(":")
    if not user and (len(password) < 6 or password.isdigit()):
        return False  # `redis://:secret@host`, but not `http://:8080@host`
    # `postgres:postgres@`, `guest:guest@`: an image's default login, not anyone's secret.
    return len(password) >= 3 and password != user and not is_placeholder(password)


def _cli_password(value: str) -> bool:
    if value.rstrip(":") in DOCUMENTED_KEYS:  # `curl -u sk_test_4eC39...:` in Stripe's docs
        return False
    return not is_placeholder(value) and any(c.isdigit() for c in value) and shannon(value) > 2.3


def _basic_credentials(value: str) -> bool:
    """Base64 of `user:password` (Docker's `config.json` `auth`), not any base64 string."""
    import base64
    import binascii

    try:
        decoded = base64.b64decode(value, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, colon, password = decoded.partition(":")
    return bool(colon and user and decoded.isprintable() and len(password) >= 4)


def _pgpass_password(value: str) -> bool:
    return len(value) >= 6 and not is_placeholder(value) and shannon(value) > 2.3


def _header_value(value: str) -> bool:
    if value.startswith(_AUTH_SCHEMES) or re.fullmatch(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+", value):
        return False  # `AWS4-HMAC-SHA256 Credential=...`, `base64.decodebytes`: no credential
    return _token(value) and any(c.isdigit() for c in value)


_AUTH_SCHEMES = ("AWS4-HMAC-SHA256", "HMAC-SHA256", "OAuth2")


def _rule(kind: str, pattern: str, check: object = _token, **kw: object) -> Rule:
    return Rule(kind, "secret", pattern, check, **kw)  # type: ignore[arg-type]


RULES: list[Rule] = [
    # Cloud: a leaked AWS key pair or Google key is billed and abused within minutes.
    _rule(
        "aws_access_key_id",
        r"(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA|ASCA)[A-Z0-9]{16}",
        _aws_id,
    ),
    _rule("google_api_key", r"AIza[0-9A-Za-z_-]{35}"),
    _rule("google_oauth_secret", r"GOCSPX-[A-Za-z0-9_-]{20,}"),
    _rule("google_oauth_token", r"ya29\.[A-Za-z0-9_-]{20,}"),
    _rule("google_refresh_token", r"1//0[A-Za-z0-9_-]{30,}", bound=False),
    _rule("azure_client_secret", r"[A-Za-z0-9_~.-]{3}[78]Q~[A-Za-z0-9_~.-]{31,34}"),
    _rule("azure_sas_signature", r"[?&;]sig=([A-Za-z0-9%+/=]{20,})", group=1, bound=False),
    _rule("digitalocean_token", r"do[opr]_v1_[a-f0-9]{64}"),
    # Source forges and registries: push access to code and packages (supply chain).
    _rule("github_token", r"gh[pousr]_[A-Za-z0-9]{30,255}"),
    _rule("github_fine_grained_token", r"github_pat_[A-Za-z0-9_]{40,255}"),
    _rule(
        "gitlab_token", r"gl(?:pat|dt|ptt|rt|soat|cbt|oas|ft|imt|agent|ffct|wt)-[A-Za-z0-9_.-]{20,}"
    ),
    _rule("gitlab_runner_token", r"GR1348941[A-Za-z0-9_-]{20,}"),
    _rule("npm_token", r"npm_[A-Za-z0-9]{36}"),
    _rule("pypi_token", r"pypi-[A-Za-z0-9_-]{50,}"),
    _rule("atlassian_token", r"ATATT3[A-Za-z0-9_=-]{100,}"),
    # Chat and messaging: bot and webhook tokens let anyone post as the team or read it.
    _rule("slack_token", r"xox[abposrce]-[A-Za-z0-9-]{10,}"),
    _rule("slack_app_token", r"xapp-\d-[A-Za-z0-9-]{10,}"),
    _rule(
        "slack_webhook",
        r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]{20,}",
    ),
    _rule(
        "discord_webhook",
        r"https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/\d+/[A-Za-z0-9_-]{20,}",
    ),
    # discord_bot_token: see `_discord_bot_tokens` below.
    _rule("telegram_bot_token", r"\d{8,10}:[A-Za-z0-9_-]{35}", bound=False),
    _rule("twilio_api_key", r"SK[0-9a-fA-F]{32}"),
    _rule("twilio_account_sid", r"AC[0-9a-f]{32}", confidence=0.6),
    _rule("sendgrid_key", r"SG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{30,50}"),
    _rule("mailgun_key", r"key-[0-9a-f]{32}"),
    _rule("mailchimp_key", r"[0-9a-f]{32}-us\d{1,2}"),
    # Payments: live keys move money; webhook secrets forge payment events.
    _rule("stripe_key", r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}"),
    _rule("stripe_webhook_secret", r"whsec_[A-Za-z0-9+/=]{20,}"),
    _rule("square_token", r"sq0(?:atp|csp)-[A-Za-z0-9_-]{22,60}"),
    _rule("shopify_token", r"shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}"),
    # AI providers: the very keys this project handles; a leak runs up someone's bill.
    _rule("anthropic_key", r"sk-ant-[A-Za-z0-9_-]{20,}"),
    _rule("openai_key", r"sk-[A-Za-z0-9][A-Za-z0-9_-]{19,}", _openai, confidence=0.85),
    _rule("huggingface_token", r"(?:hf|api_org)_[A-Za-z0-9]{30,40}"),
    _rule("groq_key", r"gsk_[A-Za-z0-9]{40,}"),
    _rule("xai_key", r"xai-[A-Za-z0-9]{40,}"),
    _rule("replicate_token", r"r8_[A-Za-z0-9]{30,}"),
    _rule("perplexity_key", r"pplx-[A-Za-z0-9]{40,}"),
    # Ops: secret stores and observability tokens open everything else.
    _rule("vault_token", r"hv[sbr]\.[A-Za-z0-9_-]{24,}"),
    _rule("doppler_token", r"dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,}"),
    _rule("databricks_token", r"dapi[a-f0-9]{32}"),
    _rule("postman_key", r"PMAK-[a-f0-9]{24}-[a-f0-9]{34}"),
    _rule("newrelic_key", r"NRAK-[A-Z0-9]{27}"),
    _rule("grafana_token", r"(?:glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}|glc_[A-Za-z0-9+/]{32,}=*)"),
    _rule("sentry_token", r"sntry[su]_[A-Za-z0-9+/=_]{40,}"),
    _rule("tailscale_key", r"tskey-[a-z]+-[A-Za-z0-9-]{20,}"),
    _rule("age_secret_key", r"AGE-SECRET-KEY-1[0-9A-Z]{58}"),
    # Bearer tokens: whoever holds one is the user until it expires.
    _rule("jwt", r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
    # Passwords in DSNs and URL user-info: see `_url_passwords` below.
    # Credential headers in curl lines, HTTP logs and client code.
    _rule(
        "auth_header",
        r"(?i)\b(?:proxy-)?authorization[\"'`]?\s*[:=,]\s*[\"'`]?(?:(?:bearer|basic|token|digest|bot|"
        r"apikey|api-key|sso-key|key|otoken|negotiate)\s+)?([A-Za-z0-9._~+/=:-]{12,})",
        _header_value,
        group=1,
    ),
    _rule(  # `Basic <base64 of user:password>` anywhere (a header quoted in prose)
        "auth_header",
        r"\bBasic[ \t]+([A-Za-z0-9+/]{12,}={0,2})",
        _basic_credentials,
        group=1,
    ),
    _rule(  # `Bearer <token>` anywhere (a header pasted in prose, a doc's example filled in)
        "auth_header", r"\bBearer[ \t]+([A-Za-z0-9._~+/=-]{20,})", _header_value, group=1
    ),
    _rule(
        "api_key_header",
        r"(?i)(?:x-api-key|x-auth-token|x-access-token|private-token|x-vault-token|x-goog-api-key|"
        r"ocp-apim-subscription-key|x-functions-key|x-apikey)[\"'`]?(?:\s*[:=,]\s*|[ \t]+)[\"'`]?"
        r"([A-Za-z0-9._~+/=-]{12,})",
        _header_value,
        group=1,
    ),
    _rule(
        "session_cookie",
        r"(?i)(?:set-)?cookie[\"']?\s*:\s*[\"']?[A-Za-z0-9_.-]*(?:sess|sid|auth|token)[A-Za-z0-9_.-]*"
        r"=([A-Za-z0-9%._~+/=-]{16,})",
        _token,
        group=1,
    ),
    _rule(
        "cli_password",
        r"(?:\s-u|--user|--password|--pass|-p)[\s=]['\"]?(?:[^\s:'\"]+:)?([^\s'\"]{6,})",
        _cli_password,
        group=1,
        confidence=0.7,
    ),
    # Docker's `~/.docker/config.json`: `"auth": "base64(user:password)"`.
    _rule(
        "basic_auth", r"\"auth\"\s*:\s*\"([A-Za-z0-9+/]{12,}={0,2})\"", _basic_credentials, group=1
    ),
    # `.pgpass`: `host:port:database:user:password`, one per line.
    _rule(
        "pgpass_password",
        r"(?m)^[^\s:#]+:(?:\d{1,5}|\*):[^\s:]+:[^\s:]+:(\S+)$",
        _pgpass_password,
        group=1,
        bound=False,
    ),
    _rule(  # Oracle's `user/password@host`: `sqlplus app/secret@//db:1521/SVC`, `jdbc:oracle:thin:`
        "url_password",
        r"(?:\b(?:sqlplus|sqlldr|expdp|impdp|rman|dgmgrl)(?:[ \t]+-\w+)*[ \t]+|jdbc:oracle:thin:)"
        r"[\w$#]+/([^\s@/\"']{4,})@",
        _cli_password,
        group=1,
        bound=False,
    ),
    _rule(  # `pulumi config set --secret dbPassword ...`, `heroku config:set`'s space form
        "cli_password",
        r"\bconfig[ :]set[ \t]+(?:--secret[ \t]+)?[\w.:-]*(?i:pass|secret|token|key)[\w.:-]*"
        r"[ \t]+[\"']?([^\s\"']{6,})",
        _cli_password,
        group=1,
    ),
    _rule(  # Sentry's DSN carries the project key as the URL's user
        "sentry_dsn",
        r"https?://([0-9a-f]{32})(?::[0-9a-f]{32})?@[\w.-]*sentry\.io\b",
        _token,
        group=1,
        bound=False,
    ),
    _rule(  # PowerShell: `ConvertTo-SecureString 'secret' -AsPlainText`
        "cli_password",
        r"(?i)ConvertTo-SecureString[ \t]+(?:-String[ \t]+)?[\"']([^\"'\n]{6,})[\"']"
        r"[ \t]+-AsPlainText",
        _cli_password,
        group=1,
        bound=False,
    ),
    _rule(  # `redis-cli -a secret`
        "cli_password",
        r"\bredis-cli\b[^\n]*?[ \t]-a[ \t]+[\"']?([^\s\"']{6,})",
        _cli_password,
        group=1,
        bound=False,
    ),
    _rule(  # MySQL's clients take the password glued to the flag: `mysql -u root -psecret`
        "cli_password",
        r"\b(?:mysql|mysqldump|mysqladmin|mariadb)\b[^\n]*?\s-p['\"]?([^\s'\"]{6,})",
        _cli_password,
        group=1,
        bound=False,  # glued to `-p`
        confidence=0.7,
    ),
]


def _url_passwords(text: str, data: bytes) -> Iterator[Finding]:
    """Passwords in DSNs and URL user-info: the commonest way a DB password leaks into a log."""
    for start, stop in pivots.url_passwords(data):
        if word_bounded(text, start, stop) and _url_password(text[start:stop]):
            yield Finding("url_password", "secret", start, stop, 0.9)


def _discord_bot_tokens(text: str, data: bytes) -> Iterator[Finding]:
    """Discord bot tokens: user id, timestamp and HMAC, dot-separated."""
    for start, stop in pivots.discord_tokens(data):
        if word_bounded(text, start, stop) and _token(text[start:stop]):
            yield Finding("discord_bot_token", "secret", start, stop, 0.9)


_PEM_BEGIN = re.compile(r"-----BEGIN ([A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?)-----")
# A truncated block still leaks key material: cover the base64 that follows.
_PEM_BODY = re.compile(r"(?:[A-Za-z0-9+/=:,\s-]|\\[nr])*")
_PUTTY = re.compile(r"PuTTY-User-Key-File-\d: .*?Private-MAC: [0-9a-fA-F]+", re.S)


def _private_keys(text: str, data: bytes) -> Iterator[Finding]:
    """PEM, OpenSSH and PGP private key blocks, encrypted or not, raw or JSON-escaped."""
    for begin in _PEM_BEGIN.finditer(text):
        end_marker = f"-----END {begin.group(1)}-----"
        end = text.find(end_marker, begin.end())
        if end >= 0 and sum(c.isalnum() for c in text[begin.end() : end]) < 40:
            continue  # the markers as constants or in docs (`_SK_START = b"-----BEGIN ..."`)
        if end >= 0:
            stop = end + len(end_marker)
            # A JSON-escaped key (service-account files) ends with an escaped newline too.
            if text.startswith("\\n", stop):
                stop += 2
        else:
            body = _PEM_BODY.match(text, begin.end())
            stop = body.end() if body else begin.end()
            if sum(c.isalnum() for c in text[begin.end() : stop]) < 40:
                continue  # a mention of the header, not key material
        yield Finding("private_key", "secret", begin.start(), stop, 0.99)
    for match in _PUTTY.finditer(text):
        yield Finding("private_key", "secret", match.start(), match.end(), 0.99)


_AZURE = (
    r"(?:(?:DefaultEndpointsProtocol|BlobEndpoint|QueueEndpoint|TableEndpoint|FileEndpoint|"
    r"AccountName|Endpoint|SharedAccessKeyName|EntityPath)=[^;\s\"'<>]*;)*"
    r"(?:AccountKey|SharedAccessKey|SharedAccessSignature)=[A-Za-z0-9+/=%&.:-]{16,}"
    r"(?:;[A-Za-z]+=[^;\s\"'<>]*)*;?"
)


def _azure(text: str, data: bytes) -> Iterator[Finding]:
    """Azure storage and Service Bus connection strings: the account key is full access."""
    for match in spans(compiled(_AZURE), data):
        yield Finding("azure_connection_string", "secret", *match[0], 0.95)


_AWS_ID = re.compile(r"(?:AKIA|ASIA)[A-Z0-9]{16}")
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")


def _aws_secret_near_id(text: str, data: bytes) -> Iterator[Finding]:
    """A 40-character secret key next to its access key id (CSV exports, credentials files)."""
    for key_id in _AWS_ID.finditer(text):
        window = text[key_id.end() : key_id.end() + 300]
        for match in _AWS_SECRET.finditer(window):
            value = match.group()
            if (
                value not in DOCUMENTED_KEYS
                and looks_random(value, 40, 4.0)
                and classes(value) >= 3
            ):
                start = key_id.end() + match.start()
                yield Finding("aws_secret_access_key", "secret", start, start + 40, 0.9)
                break


DETECTORS: list[Detector] = [
    Detector(r"PRIVATE KEY|PuTTY-User-Key-File", _private_keys),
    Detector(r"AccountKey=|SharedAccessKey=|SharedAccessSignature=", _azure),
    Detector(r"(?:AKIA|ASIA)[A-Z0-9]{16}", _aws_secret_near_id),
    Detector(r"://[^\s:/@]*:[^\s@/]+@", _url_passwords),
    Detector(r"\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27}", _discord_bot_tokens),
    *assignments.DETECTORS,
    *handovers.DETECTORS,
]
