"""Token spans found from the punctuation in their middle, their start read back by hand.

`[A-Za-z][A-Za-z0-9+.-]{1,20}://...` or `[MNO][A-Za-z0-9_-]{23,27}\\....` as one regex makes
RE2's DFA follow a candidate starting at every letter; on text it has not seen, it builds a
state per byte (~10 ms per dense 32 KiB). The part after the punctuation is a cheap regex,
and the prefix, which cannot hold that punctuation, is one run back from it. Each function
yields exactly the leftmost-longest matches of the whole regex, in order.
"""

from __future__ import annotations

from collections.abc import Iterator

from offload_mcp.privacy.engine import compiled, unanchored

_LETTERS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_SCHEME = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+.-")
_URL_REST = r"://[^\s:/@'\"<>]*:[^\s@/'\"<>]+@[^\s'\"<>`]+"  # `redis://:pass@` has no user
_TOKEN = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_DISCORD_REST = r"\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,40}"


def _run_start(data: bytes, low: int, stop: int, chars: frozenset[int]) -> int:
    """The first index >= `low` from which `data[index:stop]` is all `chars`."""
    while stop > low and data[stop - 1] in chars:
        stop -= 1
    return stop


def _pivoted(
    data: bytes, rest: str, first: frozenset[int], chars: frozenset[int], lengths: range
) -> Iterator[tuple[int, int]]:
    """Matches of `first` `chars`* `rest`, the prefix's length in `lengths`, no `rest` in it."""
    search, anchor = compiled(rest, longest=True)._regexp.Match, unanchored()
    pos, end = 0, len(data)
    while pos < end:
        pivot, stop = search(anchor, data, pos, end)[0]
        if pivot < 0:
            return
        start = _run_start(data, max(pos, pivot - lengths[-1]), pivot, chars)
        while start <= pivot - lengths[0] and data[start] not in first:
            start += 1
        if start > pivot - lengths[0]:
            pos = pivot + 1
            continue
        yield start, stop
        pos = stop


def url_passwords(data: bytes) -> Iterator[tuple[int, int]]:
    """`[A-Za-z][A-Za-z0-9+.-]{1,20}://[^\\s:/@'"<>]*:[^\\s@/'"<>]+@[^\\s'"<>`]+`."""
    return _pivoted(data, _URL_REST, _LETTERS, _SCHEME, range(2, 22))


def discord_tokens(data: bytes) -> Iterator[tuple[int, int]]:
    """`[MNO][A-Za-z0-9_-]{23,27}\\.[A-Za-z0-9_-]{6}\\.[A-Za-z0-9_-]{27,40}`."""
    return _pivoted(data, _DISCORD_REST, frozenset(b"MNO"), _TOKEN, range(24, 29))
