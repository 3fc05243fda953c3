"""An estimate of how many requests were bounded work that could have been offloaded.

Heuristic, from the tool calls each request made (not from what the work meant):
- offloadable kinds: only look-ups (Read, Grep, Glob, LS, WebFetch, WebSearch, read-only shell
  commands), only mechanical edits (Edit, MultiEdit, Write, NotebookEdit), or test/lint runs;
- coordination: no tool call (a reply, a plan), delegation or planning tools (Task, Agent,
  TodoWrite, AskUserQuestion, plan mode), any other shell command, or a mix of kinds.
It is an upper bound on what a packet could carry: a look-up the coordinator needs for its own
judgement still counts as offloadable here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from offload_mcp.audit.reader import Entry

HEURISTIC = (
    "estimate from tool calls: a request whose only tool calls are look-ups (Read, Grep, Glob, "
    "web fetch/search, read-only shell), mechanical edits (Edit, Write) or test/lint runs counts "
    "as offloadable; replies without tools, delegation/planning tools, other shell commands and "
    "mixes count as coordination. An upper bound."
)
LOOKUP = frozenset(("Read", "Grep", "Glob", "LS", "WebFetch", "WebSearch", "Bash:read"))
EDIT = frozenset(("Edit", "MultiEdit", "Write", "NotebookEdit"))
TESTS = frozenset(("Bash:test",))
KINDS = (("lookup", LOOKUP), ("edit", EDIT), ("tests", TESTS))


def classify(entry: Entry) -> str:
    tools = set(entry.tools)
    if not tools:
        return "reply"
    for kind, members in KINDS:
        if tools <= members:
            return kind
    return "coordination"


def offloadable_share(entries: Iterable[Entry]) -> dict[str, Any]:
    counts: Counter[str] = Counter(classify(entry) for entry in entries)
    total = sum(counts.values())
    offloadable = sum(counts[kind] for kind, _ in KINDS)
    return {
        "estimate": True,
        "heuristic": HEURISTIC,
        "requests": total,
        "by_kind": dict(sorted(counts.items())),
        "offloadable": offloadable,
        "share": offloadable / total if total else 0.0,
    }
