"""Decoded views of a text: JSON-escaped and URL-encoded values, with spans mapped back.

A key inside a JSON string (`"-----BEGIN PRIVATE KEY-----\\nMII..."`) or a query string
(`p%40ss`) does not match its raw pattern; scanning the decoded view finds it, and the
offset map turns the view's span into the span of the escaped text, so redaction replaces
exactly the bytes that would have been sent.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass, replace
from urllib.parse import unquote_plus

_JSON_ESCAPE = re.compile(r"\\(?:u[0-9a-fA-F]{4}|[\"\\/bfnrt])")
_URL_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}(?:%[0-9A-Fa-f]{2})*")
_FORM_ESCAPE = re.compile(r"(?:%[0-9A-Fa-f]{2}|\+)+")
_SIMPLE = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", '"': '"', "\\": "\\", "/": "/"}


@dataclass(frozen=True)
class View:
    """A decoded text and, per decoded escape character, where it came from."""

    text: str
    view_starts: list[int]
    original_starts: list[int]
    original_ends: list[int]
    parent: View | None = None

    def original(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original text that decodes to `text[start:end]`."""
        first, last = self._char(start)[0], self._char(max(end - 1, start))[1]
        if self.parent is not None:
            return self.parent.original(first, last)
        return first, last

    def _char(self, position: int) -> tuple[int, int]:
        index = bisect.bisect_right(self.view_starts, position) - 1
        if index < 0:
            return position, position + 1
        if self.view_starts[index] == position:
            return self.original_starts[index], self.original_ends[index]
        base = self.original_ends[index] + position - self.view_starts[index] - 1
        return base, base + 1


def _build(text: str, pattern: re.Pattern[str], decode: object) -> View | None:
    pieces: list[str] = []
    view_starts: list[int] = []
    original_starts: list[int] = []
    original_ends: list[int] = []
    last = 0
    length = 0
    for match in pattern.finditer(text):
        pieces.append(text[last : match.start()])
        length += match.start() - last
        decoded = decode(match.group())  # type: ignore[operator]
        # Each decoded character maps to its own escape; a multi-char escape run is split.
        width = (match.end() - match.start()) / max(len(decoded), 1)
        for offset in range(len(decoded)):
            view_starts.append(length + offset)
            original_starts.append(match.start() + round(offset * width))
            original_ends.append(match.start() + round((offset + 1) * width))
        pieces.append(decoded)
        length += len(decoded)
        last = match.end()
    if not view_starts:
        return None
    pieces.append(text[last:])
    return View("".join(pieces), view_starts, original_starts, original_ends)


def _form_unescape(escape: str) -> str:
    """`%40` -> `@`, `+` -> space; a run that is not UTF-8 (`%DB_PASSWORD%`) stays as it is."""
    decoded = unquote_plus(escape, errors="replace")
    return escape if "\ufffd" in decoded else decoded


def _json_unescape(escape: str) -> str:
    if escape[1] == "u":
        return json.loads(f'"{escape}"')  # type: ignore[no-any-return]
    return _SIMPLE[escape[1]]


# Context a value found in a decoded view may need beyond its own line (a key or label a
# line or two above). A JSON string, with its escapes and its terms, is one line.
MARGIN = 256


def windows(text: str) -> list[tuple[int, int]]:
    """Whole lines within `MARGIN` of an escape, merged: the only text worth decoding.

    A value that decodes differently touches an escape; far from any, the view is the raw
    text, already scanned. Escapes never span lines, so a window decodes as the whole would.
    """
    spans: list[tuple[int, int]] = []
    for pattern, mark in ((_JSON_ESCAPE, "\\"), (_URL_ESCAPE, "%")):
        if mark in text:
            spans.extend(match.span() for match in pattern.finditer(text))
    found: list[tuple[int, int]] = []
    for first, last in sorted(spans):
        if found and first - MARGIN <= found[-1][1]:
            if last + MARGIN > found[-1][1]:
                found[-1] = (found[-1][0], _line_end(text, last + MARGIN))
            continue
        found.append(
            (text.rfind("\n", 0, max(first - MARGIN, 0)) + 1, _line_end(text, last + MARGIN))
        )
    return found


def _line_end(text: str, position: int) -> int:
    end = text.find("\n", min(position, len(text)))
    return len(text) if end < 0 else end


def views(text: str) -> list[View]:
    """The decoded views worth scanning (none for text without escapes)."""
    found: list[View] = []
    if "\\" in text:
        view = _build(text, _JSON_ESCAPE, _json_unescape)
        if view is not None:
            found.append(view)
            # JSON inside a JSON string: one more level of escaping.
            if "\\" in view.text:
                inner = _build(view.text, _JSON_ESCAPE, _json_unescape)
                if inner is not None:
                    found.append(replace(inner, parent=view))
    if "%" in text:
        # Form encoding writes a space as `+` (`reach+me+on+904.416.9675`).
        view = _build(text, _FORM_ESCAPE, _form_unescape)
        if view is not None:
            found.append(view)
    return found
