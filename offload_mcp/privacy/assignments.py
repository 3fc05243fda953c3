"""Secrets assigned to a telling name: `.env`, YAML, JSON, code, INI, XML, Terraform, shell, chat.

Most leaked passwords have no format of their own; the name they are assigned to
(`DB_PASSWORD=`, `"client_secret":`, `<password>`) is the only tell. The key must name a
secret (not describe one, as `token_url` or `password_hash` do) and the value must look like
one: not a placeholder, reference, identifier, path or number.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from typing import Any

from offload_mcp.privacy.checks import PLACEHOLDER_RE2, classes, is_placeholder, shannon
from offload_mcp.privacy.engine import SPACE, Detector, compiled, spans, unanchored
from offload_mcp.privacy.findings import Finding
from offload_mcp.privacy.tables import DOCUMENTED_KEYS, words

KEYWORDS = r"pass|pwd|secret|token|key|auth|cred|bearer|salt|pw|encrypt"
_KEY = r"(?i)[a-z0-9_.\-]*(?:" + KEYWORDS + r")[a-z0-9_.\-]*"
# A declared type between name and value: `password: str =`, `KEY: &str =`, `key: string =`.
_TYPED = r":[ \t]*&?(?:'static[ \t]+)?[A-Za-z_][\w.<>\[\]]*[ \t]+=(?![=>])"
# After a key that names a secret: a separator, then a quoted or bare value.
_ASSIGN = re.compile(
    r"([\"'`]?\]?[ \t]*(?:" + _TYPED + r"|=>|:=|\?=|\+=|==|=|:|->|>)[ \t]*"
    r"|[ \t]+\|[ \t]+|\t+"  # a table's cell: `| TOKEN | value |`, `TOKEN<tab>value`
    r"|[\"'][ \t]*,[ \t]*(?=[\"'])"  # `define('DB_PASSWORD', '...')`, `setenv("TOKEN", "...")`
    r"|\s+(?:is|was|are|=):?\s+(?:set to\s+)?)"  # "the db password is:\n\n    s3cr3t"
    r"(\"(?:[^\"\\\n]|\\.)+\"|'[^'\n]+'|`[^`\n]+`"
    r"|(?:[^\s\"'`<>;,&(){}\[\]\\]|&(?![\w.\-\[\]]+=))+)"  # `&` inside; `&x=` see below
)
# A key (a whole run of key characters) and the start of what `_ASSIGN` accepts after it:
# most keys in code (`token_count`, `keys()`) have none, and skipping them in RE2 saves a
# Python iteration each. The separator's start holds no key, so no later key is skipped.
_KEY_ASSIGNED = (
    r"(" + _KEY[4:].join(("(?i:", ")")) + r")"
    rf"(?:[\"'`\]]|[ \t]*(?:[=:>]|->|[?+]=)|[ \t]+\|[ \t]|\t|{SPACE}+(?:is|was|are|=):?{SPACE})"
)
# Name segments that hold a secret on their own.
_STRONG = words(
    "password passwd pwd pass passphrase pw secret secrets token apikey apitoken credential "
    "credentials creds bearer privatekey secretkey accesskey authtoken accesstoken refreshtoken "
    "clientsecret salt"
)
# Names written as one word (`PGPASSWORD`, `dbpassword`, `adminsecret`) end with one of these.
_FUSED = ("password", "passwd", "secret", "apikey", "authtoken", "accesstoken")
# `key` and `auth` hold a secret only when qualified (`api_key`, not `primary_key`).
_QUALIFIERS = words(
    "api access secret private signing encryption master app account license client auth "
    "service subscription consumer session webhook admin shared storage crypto cipher hmac "
    "jwt tls ssl ssh aes root decryption deploy machine integration personal bot"
)
# Segments that describe a secret rather than hold it (`token_url`, `secret_name`, `max_tokens`).
_DESCRIPTIVE = words(
    "class type name names id ids url uri urls path paths file files dir env var vars field "
    "fields header headers param params prefix format length len size count limit max min "
    "timeout ttl expiry expires expiration expire endpoint provider method mode scope scopes "
    "policy hash hashed hint label version kind source store manager service handler factory "
    "enabled enable required encoding algorithm alg usage cache index regex pattern template "
    "ref reference location arn rotation generator validator style rule page next cursor "
    "continuation sync pagination public pub primary foreign sort partition idempotency "
    "dedupe lookup object s3 bucket tokens tokenizer tokenize tokenized keys keyboard keyword "
    "reset forgot confirm confirmation change changed policy strength input prompt placeholder "
    "length column table schema file_path show visible toggle icon error message label "
    "author authority authors authenticated authorize authorized authorization author_name "
    "default example test mock fake dummy sample pairs pair words word budget estimate used "
    "remaining stream streaming limit limits price cost span spans ranges key_id publishable"
)
_VAR_PREFIX = re.compile(r"(?i)^(?:tf_var_|npm_config_)")  # `TF_VAR_db_password` is `db_password`
_SPACE = re.compile(r"\s")  # str.isspace's characters, found in C
_SEGMENT = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
# Names as people write them: snake_case, camelCase, PascalCase, UPPER_CASE. Random case
# (`FDtwGJCGSXGyZy`, `fXjmiuJOOUII.EjCN`) is how generated passwords look, not names.
_PART = (
    r"(?:[a-z_][a-z0-9_]*(?:[A-Z][a-z0-9_]+)*|[A-Z][a-z0-9_]+(?:[A-Z][a-z0-9_]+)*|[A-Z_][A-Z0-9_]*)"
)
_WORD = _PART.replace("0-9", "")  # a name on its own holds no digits (`abc123` is no name)
_LITERAL_NAME = rf"{_PART}(?:\.{_PART})+|{_WORD}"
# Code that hands a secret on names it in any case: `settings.DB_PASSWORD`, `Keys.ControlJ`.
# A segment in a case people write (`win32api`, `MLKEM768X25519PrivateKey`); not `igN8mrrR9`.
_SEGMENT_NAME = r"(?:[a-z_][a-z0-9_]*|[A-Za-z_][A-Za-z_]*\d*(?:[A-Z][A-Za-z_]*\d*)*)"
_REFERENCE = rf"{_SEGMENT_NAME}(?:\.{_SEGMENT_NAME})+|{_WORD}|.*\(.*"  # or a call: `get(x)`
_NOT_SECRET = re.compile(
    r"(?i)v?\d+(?:[.:/-]\d+)*[a-z]{0,3}|https?://.*|[\w.+-]+@[\w-]+\.[a-z]{2,}|#[0-9a-f]{3,8}"
    r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"  # a UUID names, not hides
    r"|(?-i:(?:[a-z]+|[A-Z][a-z]*|[A-Z]+)(?:[-_](?:[a-z]+|[A-Z][a-z]*|[A-Z]+))*)"
)


@functools.lru_cache(maxsize=4096)
def names_secret(key: str, before: str = "") -> bool:
    """Whether a key (and the word before it, for "api key is ...") names a secret."""
    segments = [s.lower() for s in _SEGMENT.findall(_VAR_PREFIX.sub("", key))]
    if not segments or any(s in _DESCRIPTIVE for s in segments):
        return False
    if segments[-1] in _DESCRIPTIVE or (len(segments) > 1 and segments[0] in ("is", "has")):
        return False
    for index, segment in enumerate(segments):
        if segment in _STRONG or segment.endswith(_FUSED):
            return True
        if segment in ("key", "auth") and index > 0 and segments[index - 1] in _QUALIFIERS:
            return True
    # `STRIPE_KEY`, `SENTRY_AUTH`: a vendor's key; the caller then wants a random-looking value.
    if len(segments) > 1 and segments[-1] in ("key", "auth"):
        return True
    if segments == ["encrypt"]:  # Consul's and Nomad's gossip key: `encrypt = "..."`
        return True
    return segments[0] in ("key", "auth") and before.lower() in _QUALIFIERS


def _wordy(value: str) -> bool:
    """Mostly pronounceable words: English runs are ~40% vowels, random letters ~20%."""
    runs = _WORDS.findall(value)
    letters = "".join(runs).lower()
    if len(letters) <= 0.6 * len(value):
        return False
    vowels = sum(map(letters.count, "aeiouy"))
    return vowels >= 0.28 * len(letters) and not any(map(_VOWELS.isdisjoint, runs))


@functools.lru_cache(maxsize=4096)
def names_outright(key: str) -> bool:
    """The key names a secret outright (not just `<vendor>_key`)."""
    segments = [s.lower() for s in _SEGMENT.findall(key)]
    return any(
        s in _STRONG or (s in ("key", "auth") and i > 0 and segments[i - 1] in _QUALIFIERS)
        for i, s in enumerate(segments)
    )


# `_SPACE`, `is_placeholder`, `_NOT_SECRET` and a name's shape as one RE2 pass: for an ASCII
# value every one of them means the same in RE2, and one call costs what each of four did.
def _reject_ascii(name: str) -> str:
    return "|".join(
        (
            r"[\t\n\x0b\x0c\r\x1c-\x1f ]",
            f"(?:{PLACEHOLDER_RE2})",
            f"(?:(?i)^(?:{_NOT_SECRET.pattern[4:]})$)",
            f"(?:^(?:{name})$)",
        )
    )


def _not_secret(value: str, literal: bool) -> bool:
    name = _LITERAL_NAME if literal else _REFERENCE
    return bool(_NOT_SECRET.fullmatch(value) or re.fullmatch(name, value))


@functools.cache
def _rejected(literal: bool) -> Callable[[bytes], Any]:
    pattern = _reject_ascii(_LITERAL_NAME if literal else _REFERENCE)
    match, anchor = compiled(pattern)._regexp.Match, unanchored()
    return lambda data: match(anchor, data, 0, len(data))


def looks_secret(value: str, strict: bool, literal: bool = False) -> bool:
    """The value has the shape of a secret, not a placeholder, name, path or number.

    `literal`: the value was written in quotes (or as XML text), so a name-like shape counts
    as a name only in a case people write.
    """
    if len(value) < 6 or value in DOCUMENTED_KEYS or value.startswith(_PUBLIC_PREFIXES):
        return False
    if value.isascii():
        if _rejected(literal)(value.encode())[0][0] >= 0:
            return False
    elif _SPACE.search(value) or is_placeholder(value) or _not_secret(value, literal):
        return False
    # Paths (`/etc/ssl/key.pem`, `./secrets.json`) name a secret; base64 mixes all four classes.
    if value[0] in "/~." and classes(value) <= 3 and "+" not in value:
        return False
    if value.isdigit():
        return len(value) >= 8 and not strict and shannon(value) > 2.5
    digit = any(map(str.isdigit, value))
    # Names made of words (`Ec2KeyName`, `PKCS7PrivateKeyTypes`, `serverlessrepo:semanticVersion`);
    # a passphrase (`velvet-copper-ember90$`) carries other symbols.
    if _NAME_CHARS.fullmatch(value) and sum(map(str.isdigit, value)) <= 2 and _wordy(value):
        return False
    if strict:  # `looks_random(value, 10, 3.0)`, whose placeholder test is done above
        kinds = classes(value)
        return len(value) >= 10 and kinds >= 2 and shannon(value) >= 3.0 and (digit or kinds >= 3)
    # CamelCase and snake_case words (`SharedAccessKey`) are names, not random characters.
    if not digit and _wordy(value):
        return False
    return classes(value) >= 2 and shannon(value) >= 2.0


# Keys made to be shipped in web pages: Stripe's publishable keys.
_PUBLIC_PREFIXES = ("pk_live_", "pk_test_")
_TRAILING = ".,;:)]}"
# `token=abc&next=/home`, `Password=abc;Encrypt=True`: a query or connection string goes on.
_NEXT_PARAMETER = re.compile(r"[&;][\w.\-\[\] ]+=")
_WORDS = re.compile(r"[A-Z]?[a-z]{2,}")
_VOWELS = frozenset("aeiouyAEIOUY")


def _value_span(text: str, match: Any, in_query: bool) -> tuple[int, int]:
    """The span of the value inside its quotes, or of a bare value up to where it ends.

    `in_query`: the key follows `?`, `&` or `;`, so `&next=` starts the next parameter; on a
    line of its own (`password=d*q#PN&M21=A`) the value runs to the line's end.
    """
    start, end = match.span(2)
    if text[start] in "\"'`":
        return start + 1, end - 1
    sep = match.group(1)
    line_end = text.find("\n", end)
    line_end = len(text) if line_end < 0 else line_end
    # `.env` and INI values run to the end of the line even through `;`, `,` or `&`.
    rest = text[end:line_end].rstrip(" \t\r")
    if (
        "=" in sep
        and rest[:1] in (";", ",", "&")
        and rest not in (",", ";")  # `password=password,`: a keyword argument
        and " " not in rest
        and not rest.endswith(")")
        and not (in_query and _NEXT_PARAMETER.match(rest))
    ):
        end = len(text[:line_end].rstrip(" \t\r"))
    elif not sep.strip() or sep.strip().lower() in ("is", "was", "are"):
        while end > start and text[end - 1] in _TRAILING:
            end -= 1
    return start, end


def _word_before(text: str, start: int) -> str:
    head = text[max(0, start - 20) : start].rstrip()
    return re.split(r"\W", head)[-1] if head else ""


def _assignments(text: str, data: bytes) -> Iterator[Finding]:
    """Keyword-anchored assignments whose key names a secret and whose value looks like one."""
    # Keys first (one RE2 pass, no values consumed, so "auth token: x" keeps both keys);
    # the value is parsed only after a key that names a secret.
    for found in spans(compiled(_KEY_ASSIGNED), data):
        key_start, key_end = found[1]
        key = text[key_start:key_end].strip("-.")
        if key_start > 0 and text[key_start - 1] == "/":
            continue  # a closing XML tag
        if text[key_start - 2 : key_start] == "::":
            continue  # a type's name (`AWS::Route53::KeySigningKey`), not a variable
        bare = key.lower() in ("key", "auth")
        if not names_secret(key, _word_before(text, key_start) if bare else ""):
            continue
        match = _ASSIGN.match(text, key_end)
        if match is None:
            continue
        start, end = _value_span(text, match, text[key_start - 1 : key_start] in ("?", "&", ";"))
        value = text[start:end]
        if end < len(text) and text[end] in "([" and value[-1:] not in "\"'":
            continue
        sep = match.group(1).strip().strip("\"'] ")
        if sep == "==" and text[start - 1 : start] not in ("'", '"', "`"):
            continue  # `token == OUTPUT`: a comparison with a name, not a value
        if sep == ">" and (text[key_start - 1 : key_start] != "<" or text[end : end + 2] != "</"):
            continue  # only `<password>value</password>` (`:<password>@host` is a URL template)
        strict = sep in ("", ",") or sep.lower().rstrip(":") in ("is", "was", "are")
        strict = strict or key.lower() in ("key", "auth", "pw", "pass") or not names_outright(key)
        if value == key or value.endswith("." + key):
            continue  # `token=token`, `s3_auth=self.s3_auth`: a name passed on
        if sep == "," and _NAME_LIKE.fullmatch(value):
            continue  # `['gss_krb5_lucid_key', 'gss_krb5_rfc1964_keydata']`: a list of names
        literal = text[start - 1 : start] in ("'", '"', "`") or sep == ">"
        if looks_secret(value, strict, literal):
            yield Finding("secret_assignment", "secret", start, end, 0.8)


_NAME_CHARS = re.compile(r"[\w:.]+")
_NAME_LIKE = re.compile(r"[A-Za-z][a-z0-9]*(?:[-_.][A-Za-z0-9]+)+")


DETECTORS: list[Detector] = [Detector(r"(?i)" + KEYWORDS, _assignments)]
