"""Secrets handed over without an assignment: a field named by its sibling, `.netrc` lines,
a command's output, a code span answering a chat question, a sentence, a call's argument.

Each shape has its own trigger, so a packet pays for one only when it holds it; the key and
value checks are `assignments`'s.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from offload_mcp.privacy.assignments import KEYWORDS, looks_secret, names_outright, names_secret
from offload_mcp.privacy.engine import Detector, compiled, finditer, spans
from offload_mcp.privacy.findings import Finding

# A name and its value as two fields: XML `key="..." value="..."`, a Postman variable
# `{"key": "token", "value": "..."}`, a Kubernetes env entry `- name: X` / `value: ...`.
_ATTRIBUTE = re.compile(
    r"""(?i)["']?(?:key|name)["']?[ \t]*[=:][ \t]*["']?([\w.\-]{2,60})["']?"""
    r"""(?:[ \t]*,[ \t]*|[ \t]*\n[ \t]*|[ \t]+)["']?value["']?[ \t]*[=:][ \t]*"""
    r"""(?:"([^"\n]{1,400})"|'([^'\n]{1,400})'|([^\s"',}]{1,400}))"""
)
# Where an `_ATTRIBUTE` may start (`?` in the data may be the Kelvin sign, which `(?i)k` matches).
_ATTRIBUTE_START = (
    r"(?i)[\"']?(?:[k?]ey|name)[\"']?[ \t]*[=:][ \t]*[\"']?[\w.\-?]{2,}[\"']?"
    r"(?:[ \t]*,[ \t]*|[ \t]*\n[ \t]*|[ \t]+)[\"']?value[\"']?[ \t]*[=:]"
)


def _name_value_fields(text: str, data: bytes) -> Iterator[Finding]:
    for match in finditer(_ATTRIBUTE, _ATTRIBUTE_START, text, data):
        group = next(g for g in (2, 3, 4) if match.group(g) is not None)
        value = match.group(group)
        if names_secret(match.group(1)) and looks_secret(value, False, literal=group != 4):
            yield Finding("secret_assignment", "secret", match.start(group), match.end(group), 0.8)


def _netrc_passwords(text: str, data: bytes) -> Iterator[Finding]:
    for found in spans(compiled(_NETRC_PASSWORD), data):
        start, end = found[1]
        if looks_secret(text[start:end], False):
            yield Finding("secret_assignment", "secret", start, end, 0.8)


# `.netrc` and `.git-credentials`-style files: `machine host login user password secret`.
_NETRC = r"(?m)^[ \t]*(?:machine|default)[ \t]+\S"
_NETRC_PASSWORD = r"(?m)(?:^|[ \t])password[ \t]+(\S+)"


# A terminal: a command that reads a secret (`$ kubectl get secret db -o jsonpath=
# '{.data.password}' | base64 -d`, `% vault kv get -field=token ...`), then its output line.
# Only `$` and `%` prompts: `#` and `>` start comments and quotes as often.
_COMMAND_THEN_OUTPUT = (
    r"(?m)^[ \t]*[$%][ \t]+([^\n]*(?i:pass|pwd|secret|token|key|cred)[^\n]*)\n"
    r"[ \t]*([^\s$%#>]\S{5,})[ \t]*$"
)
_RESOURCE_WORDS = frozenset({"secret", "secrets", "secretsmanager", "get-secret-value"})


def _printed_by_command(text: str, data: bytes) -> Iterator[Finding]:
    for found in spans(compiled(_COMMAND_THEN_OUTPUT), data):
        command, (start, end) = text[found[1][0] : found[1][1]], found[2]
        keys = [k.group() for k in _KEY_WORD.finditer(command)]
        named = any(names_secret(k.strip(".-_")) for k in keys if k.lower() not in _RESOURCE_WORDS)
        if named and looks_secret(text[start:end], False, literal=True):
            yield Finding("secret_assignment", "secret", start, end, 0.7)


# Chat: "anyone have the api secret?" ... "Sure, use `LnaqLm...`": a key named in passing,
# then a code span within a few lines that holds nothing but a random-looking value. Code
# spans that long are rare, so they are found first and the words before them read after.
_CODE_SPAN = r"`([^`\s\"']{10,})`"  # quotes: a Go struct tag (`env:"TOKEN"`), not a value
_KEY_WORD = re.compile(r"(?i)[a-z0-9_.\-]*(?:" + KEYWORDS + r")[a-z0-9_.\-]*")
_DIGEST = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # a commit or a checksum, when named so
_DIGEST_WORDS = re.compile(r"(?i)commit|sha|hash|digest|checksum|revision|landed|merged|fixed")
_MENTION_LINES = 4  # the value's line and the three before it


def _quoted_after_mention(text: str, data: bytes) -> Iterator[Finding]:
    for found in spans(compiled(_CODE_SPAN), data):
        start, end = found[1]
        value = text[start:end]
        if _ARGUMENT.match(value) or not looks_secret(value, True, literal=True):
            continue
        head = start - 1  # the opening backtick
        line = head
        for _ in range(_MENTION_LINES):
            line = text.rfind("\n", 0, line) if line > 0 else -1
        # Words inside an earlier code span (`API_TOKEN`) name a variable, not this value.
        first = max(line + 1, text.rfind("`", 0, head) + 1, head - 480)
        if _DIGEST.fullmatch(value) and _DIGEST_WORDS.search(text, first, start):
            continue  # "the token fix landed in commit `9fceb02...`"
        if any(
            names_outright(key.group())  # `api secret`, `smtp password`; not `json_compatible_key`
            for key in _KEY_WORD.finditer(text, first, start - 1)
            if key.group().lower() not in _WEAK
        ):
            yield Finding("secret_assignment", "secret", start, end, 0.7)


# Code, not a value: `x=True`, `~a.b.C`, `token.ISEOF(t.type)`.
_ARGUMENT = re.compile(r"-*[A-Za-z_][\w.-]*=|~?[A-Za-z_]\w*(?:\.\w+)+$|[\w.]+\(.*\)$")
_WEAK = frozenset({"pass", "pw", "key", "auth"})  # verbs and vague words in prose


# Prose: "my password for the staging db is Tango8945Pixel!yOlT", "the app secret for staging:
# gDwUX.V1AYfCa5b6".
_SAID = (
    r"(?i)((?:pass|pwd|secret|token|key|auth|cred)[\w.-]*|api key)\b"
    r"(?:[^.\n`]*?\b(?:is|was)|[ \t]+[^.\n`:\"'=]+:)"  # "... you asked for:"
    r"[ \t]+(?:still[ \t]+|now[ \t]+)?([^\s`\"'\[({][^\s`]{7,})"  # counted runs grow the DFA
)


# Chat: "use jwt_secret 0ElSOFy6...", "try AWS_SECRET_ACCESS_KEY YlAYtlNf...": the key's name,
# then its value, after a verb that hands it over.
_USE = (
    r"(?i)\b(?:use|try|here'?s|here is)[ \t]+(?:the[ \t]+)?"
    r"([\w.-]*(?:pass|pwd|secret|token|key|auth|cred)[\w.-]*)[ \t]*[:=]?[ \t]+([^\s`\"']{12,})"
)


def _handed_over(text: str, data: bytes) -> Iterator[Finding]:
    for found in spans(compiled(_USE), data):
        (key_start, key_end), (start, end) = found[1], found[2]
        while end > start and text[end - 1] in ".,;:!?)":
            end -= 1
        if names_secret(text[key_start:key_end]) and looks_secret(text[start:end], True):
            yield Finding("secret_assignment", "secret", start, end, 0.7)


def _said_in_prose(text: str, data: bytes) -> Iterator[Finding]:
    for found in spans(compiled(_SAID), data):
        (key_start, key_end), (start, end) = found[1], found[2]
        while end > start and text[end - 1] in ".,;:!?)\"'":
            end -= 1
        while key_start > 0 and (text[key_start - 1].isalnum() or text[key_start - 1] in "_.-"):
            key_start -= 1  # the whole name: `aws_secret_access_key`, `X-Auth-Token`
        key = text[key_start:key_end]
        if (key.lower() == "api key" or names_secret(key)) and looks_secret(text[start:end], True):
            yield Finding("secret_assignment", "secret", start, end, 0.7)


# A password passed by position: `database('clinic', 'analyst', 'secret')` (MATLAB), PHP's
# `mysqli_connect('db', 'app', 'secret')`, `new PDO($dsn, 'app', 'secret')`, Puppet's
# `postgresql_password('app', 'secret')`: call name -> index among its quoted arguments.
_POSITIONAL = {
    "database": 2,
    "mysql_connect": 2,
    "mysqli_connect": 2,
    "PDO": 1,
    "postgresql_password": 1,
    "ldap_bind": 1,
    "ftp_login": 1,
    "oci_connect": 1,
}
_CALL = r"\b(" + "|".join(_POSITIONAL) + r")[ \t]*\(([^()\n]*)\)"
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"")


def _positional_passwords(text: str, data: bytes) -> Iterator[Finding]:
    for found in spans(compiled(_CALL), data):
        name = text[found[1][0] : found[1][1]]
        args_start, args_end = found[2]
        quoted = list(_QUOTED.finditer(text, args_start, args_end))
        index = _POSITIONAL[name]
        if name == "PDO" and len(quoted) >= 3:
            index = 2  # `new PDO('mysql:...', 'app', 'secret')`: the DSN quoted too
        if len(quoted) > index:
            arg = quoted[index]
            group = 1 if arg.group(1) is not None else 2
            if looks_secret(arg.group(group), False, literal=True):
                yield Finding("secret_assignment", "secret", arg.start(group), arg.end(group), 0.7)


DETECTORS: list[Detector] = [
    Detector(_ATTRIBUTE_START, _name_value_fields),
    Detector(_NETRC, _netrc_passwords),
    Detector(_COMMAND_THEN_OUTPUT, _printed_by_command),
    Detector(_CODE_SPAN, _quoted_after_mention),
    Detector(_SAID, _said_in_prose),
    Detector(_USE, _handed_over),
    Detector(_CALL, _positional_passwords),
]
