"""`scan(text)`: every secret, personal and health value in a text, raw or encoded.

Pure: no I/O, no logging of values. Other code (dispatch, the `scan` command, pre-commit
hooks) calls this one function.
"""

from __future__ import annotations

from offload_mcp.privacy.engine import engine
from offload_mcp.privacy.findings import Finding, merge
from offload_mcp.privacy.views import views


def scan(text: str) -> list[Finding]:
    """Findings sorted by position; each span covers the whole value in `text`."""
    rules = engine()
    found = rules.scan(text)
    for view in views(text):
        for finding in rules.scan(view.text):
            start, end = view.original(finding.start, finding.end)
            found.append(finding.shifted(start, end))
    return merge(found)
