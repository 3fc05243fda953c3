"""`scan(text)`: every secret, personal and health value in a text, raw or encoded.

Pure: no I/O, no logging of values. Other code (dispatch, the `scan` command, pre-commit
hooks) calls this one function.
"""

from __future__ import annotations

from offload_mcp.privacy.engine import engine
from offload_mcp.privacy.findings import Finding, merge
from offload_mcp.privacy.views import views, windows


def scan(text: str) -> list[Finding]:
    """Findings sorted by position; each span covers the whole value in `text`."""
    rules = engine()
    found = rules.scan(text)
    # Decoding only the lines around escapes: a whole-text view rescans what is already done.
    for offset, stop in windows(text):
        for view in views(text[offset:stop]):
            for finding in rules.scan(view.text):
                start, end = view.original(finding.start, finding.end)
                found.append(finding.shifted(offset + start, offset + end))
    return merge(found)
