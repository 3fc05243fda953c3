"""Structural checks shared by the detectors: entropy, placeholders, checksums, boundaries."""

from __future__ import annotations

import functools
import math
import re
from array import array
from collections import Counter
from collections.abc import Callable
from typing import Any

_WORD = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_TOKEN = _WORD | frozenset("-+/=.")

# Values that stand for a secret without being one: references, templates, masks, docs.
# Flagging them blocks useful work (a README, a config template) for nothing.
_PLACEHOLDER = re.compile(
    r"""(?ix)
    ^(?:
        \$\{?(?-i:[A-Z_][A-Z0-9_]*|[a-z_]+(?:[A-Z][a-z]+)*\d*|[A-Z][a-z]+(?:[A-Z][a-z]+)*)(?:[.:-]\w+)*\}?
      | \$\{[^{}]*\} | \$\(.*\) | %[\w]+% | \{\{.*\}\} | \$\{\{.*\}\} | <[^<>]*>
      | \[[^\[\]]*\] | %\([\w.-]+\)[sdr] | \{[\w.]*\} | \*{3,}.* | .*\*{4,}.*
      | .*(?-i:123456789|abcdefgh|ABCDEFGH).* | (?-i:ABC|abc)123\d* | p[a@4][s5$]{2}w[o0]rd[!1]*
      | .*\{\w{0,20}\}.* | .*(?-i:%[sd])(?:[^0-9A-Za-z].*)?
      | x{4,} | .*(?:xxxx|XXXX).* | •+ | \.{3,} | .*(?:\.\.\.|…) | _+ | -+ | 0{6,}
      | (?:os\.environ|os\.getenv|getenv|process\.env|env\(|ENV\[|System\.getenv|var\.|local\.|
          data\.|module\.|secrets\.|vault:|ssm:|arn:aws:|!Ref|!Sub|\#\{|ref\+).*
      | .*(?:changeme|change[-_]me|your[-_]|my[-_]?secret|insert[-_]|replace[-_]?(?:me|with)|
           not[-_]a[-_]real).* | .*example(?:key)?
      | (?:none|null|nil|true|false|undefined|empty|string|str|bytes|int|secret|password|passwd|
          token|test|testing|foo|bar|baz|qux|admin|root|user|guest|default|required|optional|pass|pw|pwd|
          hunter2|letmein|abc123|123456|1234567|12345678|123456789|password1|password123)
    )$
    """
)
# A stand-in word inside a value counts where it starts a word (`fake_key`, `myFakeToken`) or
# in capitals (`wEXAMPLEtc7`, AWS's docs): in any case anywhere, one random 190-character
# token in a few hundred would hold one.
_WORDS = (
    "redacted",
    "example",
    "sample",
    "dummy",
    "placeholder",
    "fake",
    "mock",
    "todo",
    "fixme",
    "notreal",
)
_STAND_IN = re.compile(
    r"(?i:(?:^|[^a-z0-9])(?:" + "|".join(_WORDS) + r"))(?:$|(?-i:[^a-z]))"
    r"|(?-i:[a-z0-9](?:" + "|".join(w.title() for w in _WORDS) + r"))(?:$|(?-i:[^a-z]))"
    r"|(?-i:" + "|".join(w.upper() for w in _WORDS) + ")"
)
# Both rules as one RE2 search, which reads an ASCII value once where Python's backtracking
# tries each `.*word.*` alternative at every position (~35 us for a 150-character token).
PLACEHOLDER_RE2 = (
    "(?:" + re.sub(r"\s+", "", _PLACEHOLDER.pattern).replace("(?ix)", "(?i)", 1) + ")"
    f"|(?:{_STAND_IN.pattern})"
)


@functools.cache
def _placeholder_re2() -> Callable[[bytes], Any]:
    from offload_mcp.privacy.engine import compiled, unanchored

    match, anchor = compiled(PLACEHOLDER_RE2)._regexp.Match, unanchored()
    return lambda data: match(anchor, data, 0, len(data))


@functools.lru_cache(maxsize=8192)
def shannon(value: str) -> float:
    """Bits per character; random tokens score high, words and repeats low."""
    if not value:
        return 0.0
    size = len(value)
    counts = Counter(value)
    if size > _TABLED:
        return -sum(n / size * math.log2(n / size) for n in counts.values())
    # The same terms, summed in the same order, so the same float; looked up in C.
    return -sum(map(_terms(size).__getitem__, counts.values()))


_TABLED = 2048  # value lengths whose entropy terms are tabled (PEM bodies included)


@functools.lru_cache(maxsize=256)
def _terms(size: int) -> array[float]:
    """`n / size * log2(n / size)` for each count `n` a value of `size` characters can hold."""
    return array("d", (0.0, *(n / size * math.log2(n / size) for n in range(1, size + 1))))


def is_placeholder(value: str) -> bool:
    """True for references, templates, masks and documentation stand-ins."""
    value = value.strip()
    if not value.isascii():  # Python's `\w` and case folding cover more than ASCII
        return bool(_PLACEHOLDER.match(value) or _STAND_IN.search(value))
    start: int = _placeholder_re2()(value.encode())[0][0]
    return start >= 0


def classes(value: str) -> int:
    """How many of lower, upper, digit and symbol the value mixes."""
    lower = value != value.upper()
    upper = value != value.lower()
    digit = any(map(str.isdigit, value))
    symbol = not value.isalnum()
    return lower + upper + digit + symbol


def looks_random(value: str, min_len: int = 16, min_bits: float = 3.0) -> bool:
    """Long enough, varied enough and not a placeholder: a token rather than a word."""
    return (
        len(value) >= min_len
        and classes(value) >= 2
        and shannon(value) >= min_bits
        and not is_placeholder(value)
    )


def luhn(digits: str) -> bool:
    """The payment-card checksum; random digit runs pass it only one time in ten."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def bounded(text: str, start: int, end: int, chars: frozenset[str] = _TOKEN) -> bool:
    """The span is not a slice of a longer token (`AKIA...` inside a longer base64 run)."""
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    return before not in chars and after not in chars


def word_bounded(text: str, start: int, end: int) -> bool:
    """Like `bounded`, but only letters, digits and `_` continue a token."""
    return bounded(text, start, end, _WORD)
