"""Claude Code transcript lines -> usage entries; where transcripts live.

A transcript is JSONL: one `assistant` line per content block, each carrying the request's
top-level `message.usage`. Usage nested elsewhere (subagent messages replayed inside `progress`
lines) is ignored: subagents are read from their own files under `<session>/subagents/`.
Reading files fast (bytes, chunks, processes) is `scan`'s job; this module knows the fields.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

KNOWN_TYPES = frozenset(
    {
        "user",
        "assistant",
        "system",
        "progress",
        "file-history-snapshot",
        "queue-operation",
        "attachment",
        "last-prompt",
        "summary",
        "custom-title",
        "agent-name",
    }
)
SYNTHETIC_MODEL = "<synthetic>"


@dataclass(slots=True)
class Entry:
    """The usage of one assistant line; after dedupe, of one API request."""

    timestamp: float
    session: str
    project: str
    model: str
    message_id: str | None
    request_id: str | None
    sidechain: bool
    input: int
    cache_5m: int
    cache_1h: int
    cache_read: int
    output: int
    fast: bool = False
    tools: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return self.input + self.cache_5m + self.cache_1h + self.cache_read + self.output

    @property
    def context(self) -> int:
        """Prompt size of the request: everything the model read, cached or not."""
        return self.input + self.cache_5m + self.cache_1h + self.cache_read


@dataclass
class ReadStats:
    files: int = 0
    bytes: int = 0
    lines: int = 0
    usage_lines: int = 0
    malformed: int = 0
    truncated_files: int = 0
    synthetic: int = 0
    unknown_types: Counter[str] = field(default_factory=Counter)
    unreadable_files: list[str] = field(default_factory=list)

    def merge(self, other: ReadStats) -> None:
        """Add another reader's counts (a worker process read other files)."""
        self.files += other.files
        self.bytes += other.bytes
        self.lines += other.lines
        self.usage_lines += other.usage_lines
        self.malformed += other.malformed
        self.truncated_files += other.truncated_files
        self.synthetic += other.synthetic
        self.unknown_types.update(other.unknown_types)
        self.unreadable_files.extend(other.unreadable_files)

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "bytes": self.bytes,
            "lines": self.lines,
            "usage_lines": self.usage_lines,
            "malformed_lines": self.malformed,
            "truncated_files": self.truncated_files,
            "synthetic_lines": self.synthetic,
            "unknown_types": dict(sorted(self.unknown_types.items())),
            "unreadable_files": self.unreadable_files,
        }


def default_roots() -> list[Path]:
    """Where Claude Code keeps `projects/`: CLAUDE_CONFIG_DIR (comma-separated) or the defaults."""
    configured = os.environ.get("CLAUDE_CONFIG_DIR", "").strip()
    if configured:
        bases = [Path(part).expanduser() for part in configured.split(",") if part.strip()]
    else:
        home = Path.home()
        bases = [home / ".config" / "claude", home / ".claude"]
    return [base / "projects" for base in bases if (base / "projects").is_dir()]


def find_files(paths: Iterable[Path]) -> list[Path]:
    """Every `*.jsonl` under the given directories (subagent files included), plus given files."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(Path(name) for name in _jsonl_under(str(path))))
        elif path.is_file():
            found.append(path)
    return list(dict.fromkeys(found))


def _jsonl_under(root: str) -> Iterator[str]:
    """What `rglob("*.jsonl")` and `is_file()` find (symlinked directories not entered),
    from one scandir per directory: status walks the tree on every call."""
    pending = [root]
    while pending:
        try:
            with os.scandir(pending.pop()) as listing:
                entries = list(listing)
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                elif entry.name.endswith(".jsonl") and entry.is_file():
                    yield entry.path
            except OSError:
                continue


def session_and_dir(path: Path) -> tuple[str, str]:
    """Session id and project directory from the path: subagents count for their parent."""
    if path.parent.name == "subagents":
        session_dir = path.parent.parent
        return session_dir.name, session_dir.parent.name
    return path.stem, path.parent.name


def parse_timestamp(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


TEST_WORDS = ("pytest", "test", "jest", "vitest", "mocha", "tox", "nox", "ruff", "mypy", "lint")
READ_ONLY_COMMANDS = frozenset(
    ("cat", "ls", "grep", "rg", "find", "head", "tail", "wc", "tree", "file", "stat", "du", "jq")
)
GIT_READS = frozenset(("log", "diff", "status", "show", "blame"))


def label(name: object, command: object) -> str:
    """A tool_use block's name; Bash is split into test runs, read-only look-ups and the rest."""
    if not isinstance(name, str):
        return "?"
    if name != "Bash":
        return name
    if not isinstance(command, str) or not command.strip():
        return "Bash"
    words = command.replace("&&", " ").replace("|", " ").split()
    if any(word in TEST_WORDS or word.endswith(("test", "tests")) for word in words[:4]):
        return "Bash:test"
    first = words[0].rsplit("/", 1)[-1]
    if first in READ_ONLY_COMMANDS or (first == "git" and words[1:2] and words[1] in GIT_READS):
        return "Bash:read"
    return "Bash"


def tool_label(block: dict[str, Any]) -> str:
    tool_input = block.get("input")
    command = tool_input.get("command") if isinstance(tool_input, dict) else None
    return label(block.get("name"), command)


def make_entry(
    timestamp: object,
    request_id: object,
    sidechain: object,
    message_id: object,
    model: object,
    usage: dict[str, Any],
    tools: tuple[str, ...],
    where: tuple[str, str],
    stats: ReadStats,
    /,
) -> Entry | None:
    """The entry of one assistant line from its raw fields, whichever parser read them.

    `where` is (session, project). Synthetic replies and lines without a time are counted.
    Positional only: this runs once per assistant line.
    """
    stats.usage_lines += 1
    if model == SYNTHETIC_MODEL:
        stats.synthetic += 1
        return None
    when = parse_timestamp(timestamp)
    if when is None or message_id == "" or request_id == "":
        stats.malformed += 1
        return None
    get = usage.get
    breakdown = get("cache_creation")
    if type(breakdown) is dict:
        c5, c1 = (
            breakdown.get("ephemeral_5m_input_tokens"),
            breakdown.get("ephemeral_1h_input_tokens"),
        )
    else:
        c5, c1 = get("cache_creation_input_tokens"), 0
    inp, read, out = get("input_tokens"), get("cache_read_input_tokens"), get("output_tokens")
    return Entry(
        when,
        where[0],
        where[1],
        model if type(model) is str and model else "unknown",
        message_id if type(message_id) is str else None,
        request_id if type(request_id) is str else None,
        sidechain is True,
        inp if type(inp) is int else 0,
        c5 if type(c5) is int else 0,
        c1 if type(c1) is int else 0,
        read if type(read) is int else 0,
        out if type(out) is int else 0,
        get("speed") == "fast",
        tools,
    )


def entry_from_line(
    obj: dict[str, Any], session: str, project: str, stats: ReadStats
) -> Entry | None:
    """The usage entry of one line parsed into dicts, or None without top-level usage."""
    message = obj.get("message")
    if not isinstance(message, dict):
        return None
    usage = message.get("usage")
    if not isinstance(usage, dict):
        return None
    content = message.get("content")
    tools: tuple[str, ...] = ()
    if isinstance(content, list):
        tools = tuple(
            tool_label(block)
            for block in content
            if isinstance(block, dict) and block.get("type") == "tool_use"
        )
    return make_entry(
        obj.get("timestamp"),
        obj.get("requestId"),
        obj.get("isSidechain"),
        message.get("id"),
        message.get("model"),
        usage,
        tools,
        (session, project),
        stats,
    )
