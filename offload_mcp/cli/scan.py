"""`offload-mcp scan`: the privacy gate's detectors over files, for humans and pre-commit."""

from __future__ import annotations

import bisect
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import click

_SKIP_DIRS = {".git", ".hg", ".svn", "node_modules", ".venv", "__pycache__", ".mypy_cache"}


def mask(value: str) -> str:
    """A preview that never shows the value: a few leading characters and the length."""
    keep = min(4, len(value) // 6)
    head = value[:keep].split("\n")[0].split("\\")[0]
    return f"{head}{'*' * 6} ({len(value)} chars)"


def _files(paths: tuple[str, ...]) -> Iterator[str]:
    for path in paths:
        if path != "-" and os.path.isdir(path):
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
                yield from (os.path.join(root, name) for name in sorted(names))
        else:
            yield path


def _read(path: str) -> str | None:
    """The file's text, or None for binary files (they cannot be scanned as text)."""
    data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON array of findings.")
def scan(paths: tuple[str, ...], as_json: bool) -> None:
    """Find secrets, personal and health data in files (`-` reads stdin).

    Exit status: 0 clean, 1 findings, 2 errors. Values are never printed.

    \b
    Example usage:
        offload-mcp scan src/ config/.env
        git diff --cached | offload-mcp scan -
        offload-mcp scan --json notes.txt
    """
    from offload_mcp.privacy import scan as detect

    rows: list[dict[str, object]] = []
    errors = 0
    for path in _files(paths):
        name = "<stdin>" if path == "-" else path
        try:
            text = _read(path)
        except OSError as exc:
            click.echo(f"{name}: cannot read ({exc.strerror or exc})", err=True)
            errors += 1
            continue
        if text is None:
            click.echo(f"{name}: skipped (binary)", err=True)
            continue
        newlines = [i for i, c in enumerate(text) if c == "\n"] if "\n" in text else []
        for finding in detect(text):
            line = bisect.bisect_left(newlines, finding.start) + 1
            row = {
                "file": name,
                "kind": finding.kind,
                "category": finding.category,
                "line": line,
                "start": finding.start,
                "end": finding.end,
                "confidence": finding.confidence,
            }
            rows.append(row)
            if not as_json:
                preview = mask(text[finding.start : finding.end])
                click.echo(f"{name}:{line}: {finding.kind} ({finding.category}) {preview}")
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    sys.exit(2 if errors else 1 if rows else 0)
