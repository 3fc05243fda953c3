"""One entry per API request, by ccusage's rule (reference: claude-code.md §3.5).

Streaming writes several lines per request with the same `message.id` and `requestId`; the
input and cache fields repeat and only the last line has the final output count. Keep, per
`(message.id, requestId)`, the line with the largest token total. A non-sidechain copy beats a
sidechain copy, and when either copy is a sidechain (`/btw` replays) `message.id` alone matches.
Lines without `message.id` are never merged. Tool names from every line of a request are kept.
"""

from __future__ import annotations

from collections.abc import Iterable

from offload_mcp.audit.reader import Entry


def _wins(new: Entry, kept: Entry) -> bool:
    if new.sidechain != kept.sidechain:
        return kept.sidechain
    if new.total != kept.total:
        return new.total > kept.total
    return new.fast and not kept.fast


def dedupe(entries: Iterable[Entry]) -> list[Entry]:
    """The kept entries in first-seen order."""
    kept: dict[tuple[str, str], Entry] = {}
    by_message: dict[str, tuple[str, str]] = {}
    unkeyed: list[Entry] = []
    for entry in entries:
        if entry.message_id is None:
            unkeyed.append(entry)
            continue
        key = (entry.message_id, entry.request_id or "")
        match = key if key in kept else None
        if match is None:
            other = by_message.get(entry.message_id)
            if other is not None and (entry.sidechain or kept[other].sidechain):
                match = other
        if match is None:
            kept[key] = entry
            by_message.setdefault(entry.message_id, key)
            continue
        old = kept[match]
        tools = old.tools + tuple(t for t in entry.tools if t not in old.tools)
        winner = entry if _wins(entry, old) else old
        winner.tools = tools
        kept[match] = winner
    return [*kept.values(), *unkeyed]
