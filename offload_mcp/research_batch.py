"""Batch research: the same fields looked up for many entities, one grounded packet each.

Each entity is one `research` packet through dispatch (privacy gate, cache, quota, cool-downs,
fail-over down the chain), at most `concurrency` at a time. A per-minute cap or 429 is waited
out (up to `BATCH_WAIT_S` per entity) so a long list is paced rather than failed; an entity
whose packet still fails (a daily cap or quota, a provider error, invalid JSON twice) is marked
with the reason, and the others still count.
Every cell names one of the sources returned *for its own entity*: the source the grounding
metadata ties to the cell's part of the answer, else the number the model gave if it is in
range, else the cell is marked unsourced. The table goes to a CSV and a JSON file; Claude gets
a short summary naming them. A re-run answers finished entities from the cache.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio

from offload_mcp.errors import InvalidRequest, NoProviderLeft, OffloadError
from offload_mcp.packets import Grounding, Source

if TYPE_CHECKING:
    from offload_mcp.dispatch import Dispatcher
    from offload_mcp.tools.research import Answer

MAX_ENTITIES = 200
MAX_FIELDS = 20
MAX_NAME_CHARS = 200
DEFAULT_CONCURRENCY = 4
#: how long one entity waits out caps and cool-downs: past a minute window, never a day's
BATCH_WAIT_S = 90.0
#: rows shown in the summary Claude reads; the files hold all of them
SUMMARY_ROWS = 3
SUMMARY_FAILURES = 5
MAX_REASON_CHARS = 400

#: (entities done, entities in all, message)
BatchProgress = Callable[[int, int, str], Awaitable[None]]
CellStatus = Literal["ok", "unsourced", "not_found", "failed"]

_NUMBER = re.compile(r"\d+")
_ASK = (
    'For each field give an object {"value": V, "source": S}: V is the fact (a string or '
    "number; null if no reliable source has it), S is the marker of the search result that "
    'supports it, written as a string like "[1]" (null if none).'
)


@dataclass(frozen=True)
class Cell:
    value: Any
    status: CellStatus
    #: 1-based number into the row's sources
    source: int | None = None
    #: "grounding" (the metadata ties the source to this cell) or "answer" (the model's pick)
    basis: str = ""


@dataclass
class Row:
    entity: str
    cells: dict[str, Cell]
    sources: tuple[Source, ...] = ()
    provider: str = ""
    error: str = ""
    cached: bool = False
    tokens: int = 0
    cost_usd: float = 0.0

    def source_of(self, name: str) -> Source | None:
        number = self.cells[name].source
        return self.sources[number - 1] if number else None


@dataclass
class Table:
    fields: list[str]
    rows: list[Row]
    dropped: int = 0
    seconds: float = 0.0
    files: dict[str, Path] = field(default_factory=dict)


def check_arguments(entities: Sequence[str], fields: Sequence[str]) -> tuple[list[str], list[str]]:
    """Cleaned, de-duplicated entities and fields; anything unusable is an actionable error."""
    names = _cleaned("entities", entities)
    wanted = _cleaned("fields", fields)
    if not names:
        raise InvalidRequest("entities: give at least one entity (e.g. company names).")
    if not wanted:
        raise InvalidRequest(
            'fields: name what to find for each entity, e.g. ["founding year", "HQ city"].'
        )
    if len(names) > MAX_ENTITIES:
        raise InvalidRequest(
            f"entities: at most {MAX_ENTITIES} per batch (got {len(names)}); split the list."
        )
    if len(wanted) > MAX_FIELDS:
        raise InvalidRequest(f"fields: at most {MAX_FIELDS} (got {len(wanted)}).")
    return names, wanted


def _cleaned(what: str, values: Sequence[str]) -> list[str]:
    seen: dict[str, str] = {}
    for value in values:
        name = " ".join(value.split())
        if len(name) > MAX_NAME_CHARS:
            raise InvalidRequest(f"{what}: {name[:40]!r}… is over {MAX_NAME_CHARS} characters.")
        if name:
            seen.setdefault(name.casefold(), name)
    return list(seen.values())


def row_schema(fields: Sequence[str]) -> dict[str, Any]:
    """One object per field: the value and the marker of its source."""
    cell = {
        "type": "object",
        "properties": {
            "value": {"type": ["string", "number", "boolean", "null"]},
            "source": {"type": ["string", "integer", "null"]},
        },
        "required": ["value", "source"],
    }
    return {
        "type": "object",
        "properties": dict.fromkeys(fields, cell),
        "required": list(fields),
    }


def entity_question(question: str, entity: str, fields: Sequence[str]) -> str:
    wanted = "\n".join(f"- {name}" for name in fields)
    return f"{question.strip()}\n\nEntity: {entity}\nFind these fields:\n{wanted}\n{_ASK}"


async def run_batch(
    dispatcher: Dispatcher,
    question: str,
    entities: Sequence[str],
    fields: Sequence[str],
    *,
    results_dir: Path,
    files: Sequence[str] = (),
    urls: Sequence[str] = (),
    provider: str | None = None,
    progress: BatchProgress | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> Table:
    """Look every entity up (bounded parallel), then write the CSV and JSON files."""
    from offload_mcp.tools.research import research

    names, wanted = check_arguments(entities, fields)
    schema = row_schema(wanted)
    started = time.monotonic()
    rows: dict[str, Row] = {}
    limiter = anyio.CapacityLimiter(max(1, concurrency))
    wait_s = max(dispatcher.settings.limits.wait_s, BATCH_WAIT_S)
    done = 0
    bad: list[InvalidRequest] = []

    async def one(entity: str) -> None:
        nonlocal done
        async with limiter:
            try:
                answer = await research(
                    dispatcher,
                    entity_question(question, entity, wanted),
                    files=list(files),
                    urls=list(urls),
                    schema=schema,
                    provider=provider,
                    wait_s=wait_s,
                )
                row = answer_row(entity, wanted, answer)
            except InvalidRequest as exc:
                # the same for every entity (a bad URL, file or provider): the call is wrong
                bad.append(exc)
                group.cancel_scope.cancel()
                return
            except NoProviderLeft as exc:
                row = failed_row(entity, wanted, "; ".join(exc.reasons))
            except OffloadError as exc:
                row = failed_row(entity, wanted, str(exc))
        rows[entity] = row
        done += 1
        if progress is not None:
            state = f"failed: {row.error[:120]}" if row.error else "done"
            await progress(done, len(names), f"{done}/{len(names)} {entity}: {state}")

    async with anyio.create_task_group() as group:
        for entity in names:
            group.start_soon(one, entity)
    if bad:
        raise bad[0]
    table = Table(wanted, [rows[name] for name in names], dropped=len(entities) - len(names))
    table.seconds = time.monotonic() - started
    table.files = await anyio.to_thread.run_sync(write_files, table, question, results_dir)
    return table


def answer_row(entity: str, fields: Sequence[str], answer: Answer) -> Row:
    grounding = answer.grounding or Grounding()
    data = answer.data if isinstance(answer.data, dict) else {}
    spans = _field_spans(answer.text, fields)
    count = len(grounding.sources)
    cells = {}
    for name in fields:
        raw = data.get(name)
        value = raw.get("value") if isinstance(raw, dict) else raw
        claimed = _claimed(raw.get("source") if isinstance(raw, dict) else None, count)
        if value is None or value == "":
            cells[name] = Cell(None, "not_found")
            continue
        backed = _grounded_numbers(answer.text, spans.get(name), grounding.cites, count)
        if claimed is not None and claimed in backed:
            cells[name] = Cell(value, "ok", claimed, "grounding")
        elif backed:
            cells[name] = Cell(value, "ok", backed[0], "grounding")
        elif claimed is not None:
            cells[name] = Cell(value, "ok", claimed, "answer")
        else:
            cells[name] = Cell(value, "unsourced")
    result = answer.result
    return Row(
        entity,
        cells,
        grounding.sources,
        provider=result.provider,
        cached=result.cached,
        tokens=result.usage.total,
        cost_usd=result.cost_usd,
    )


def failed_row(entity: str, fields: Sequence[str], reason: str) -> Row:
    text = " ".join(reason.split())
    text = text[:MAX_REASON_CHARS] + ("…" if len(text) > MAX_REASON_CHARS else "")
    return Row(entity, {name: Cell(None, "failed") for name in fields}, error=text)


def _claimed(marker: Any, count: int) -> int | None:
    """The model's source number, only if it names one of the sources returned."""
    if isinstance(marker, bool):
        return None
    if isinstance(marker, int):
        number = marker
    elif isinstance(marker, str) and (found := _NUMBER.search(marker)):
        number = int(found.group())
    else:
        return None
    return number if 1 <= number <= count else None


def _field_spans(text: str, fields: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Where each field's part of the JSON answer lies: from its key to the next key."""
    starts: list[tuple[int, str]] = []
    for name in fields:
        key = re.escape(json.dumps(name, ensure_ascii=False)) + r"\s*:"
        found = re.search(key, text) or re.search(re.escape(json.dumps(name)) + r"\s*:", text)
        if found:
            starts.append((found.start(), name))
    starts.sort()
    ends = [start for start, _ in starts[1:]] + [len(text)]
    return {name: (start, end) for (start, name), end in zip(starts, ends, strict=True)}


def _grounded_numbers(
    text: str,
    span: tuple[int, int] | None,
    cites: Sequence[tuple[str, Sequence[int]]],
    count: int,
) -> list[int]:
    """Source numbers whose cited passage overlaps the cell's span, most overlap first."""
    if span is None:
        return []
    scored: dict[int, int] = {}
    for passage, numbers in cites:
        at = text.find(passage) if passage else -1
        if at < 0:
            continue
        overlap = min(span[1], at + len(passage)) - max(span[0], at)
        if overlap <= 0:
            continue
        for number in numbers:
            if 1 <= number <= count:
                scored[number] = max(scored.get(number, 0), overlap)
    return sorted(scored, key=lambda n: -scored[n])


def write_files(table: Table, question: str, results_dir: Path) -> dict[str, Path]:
    results_dir.mkdir(parents=True, exist_ok=True)
    names = "\0".join(row.entity for row in table.rows) + "\0" + "\0".join(table.fields)
    digest = hashlib.sha256(f"{question}\0{names}".encode()).hexdigest()[:8]
    stem = f"research-batch-{time.strftime('%Y%m%d-%H%M%S')}-{digest}"
    csv_path = results_dir / f"{stem}.csv"
    json_path = results_dir / f"{stem}.json"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        header = ["entity", "status"]
        for name in table.fields:
            header += [name, f"{name} source"]
        writer.writerow([*header, "error"])
        for row in table.rows:
            line = [row.entity, "failed" if row.error else "ok"]
            for name in table.fields:
                cell = row.cells[name]
                source = row.source_of(name)
                line += [_csv_value(cell.value), source.url if source else cell.status]
            writer.writerow([*line, row.error])
    payload = {
        "question": question,
        "fields": table.fields,
        "rows": [_row_json(row, table.fields) for row in table.rows],
        "counts": counts(table),
    }
    json_path.write_text(json.dumps(payload, ensure_ascii=False, indent=1), "utf-8")
    return {"csv": csv_path, "json": json_path}


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _row_json(row: Row, fields: Sequence[str]) -> dict[str, Any]:
    cells: dict[str, Any] = {}
    for name in fields:
        cell = row.cells[name]
        source = row.source_of(name)
        cells[name] = {
            "value": cell.value,
            "status": cell.status,
            "source": (
                {"n": cell.source, "title": source.title, "url": source.url, "basis": cell.basis}
                if source and cell.source
                else None
            ),
        }
    out: dict[str, Any] = {"entity": row.entity, "status": "failed" if row.error else "ok"}
    if row.error:
        out["error"] = row.error
    else:
        out["provider"] = row.provider
        out["cached"] = row.cached
    out["cells"] = cells
    out["sources"] = [
        {"n": i, "title": s.title, "url": s.url} for i, s in enumerate(row.sources, 1)
    ]
    return out


def counts(table: Table) -> dict[str, int]:
    cells = Counter(cell.status for row in table.rows for cell in row.cells.values())
    failed = sum(1 for row in table.rows if row.error)
    return {
        "entities": len(table.rows),
        "ok": len(table.rows) - failed,
        "failed": failed,
        "cells_sourced": cells["ok"],
        "cells_unsourced": cells["unsourced"],
        "cells_not_found": cells["not_found"],
        "cells_failed": cells["failed"],
    }


def summary(table: Table) -> str:
    """What Claude reads: counts, the files, the failures and the first rows."""
    c = counts(table)
    lines = [
        f"{c['entities']} entities x {len(table.fields)} fields: {c['ok']} ok, "
        f"{c['failed']} failed; cells {c['cells_sourced']} sourced, "
        f"{c['cells_unsourced']} unsourced, {c['cells_not_found']} not found."
        + (f" ({table.dropped} duplicate or blank entities dropped.)" if table.dropped else ""),
        f"Table: {table.files['csv']} (CSV); with sources per cell: {table.files['json']}",
    ]
    failed = [row for row in table.rows if row.error]
    by_reason: dict[str, list[str]] = {}
    for row in failed:
        by_reason.setdefault(row.error, []).append(row.entity)
    for reason, names in list(by_reason.items())[:SUMMARY_FAILURES]:
        who = ", ".join(names[:5]) + (f" +{len(names) - 5}" if len(names) > 5 else "")
        lines.append(f"failed {who}: {reason[:200]}")
    if len(by_reason) > SUMMARY_FAILURES:
        lines.append("(more failure reasons in the files)")
    if failed:
        lines.append("Re-run to retry the failed ones; finished entities come from the cache.")
    shown = [row for row in table.rows if not row.error][:SUMMARY_ROWS]
    if shown:
        lines.append("entity | " + " | ".join(table.fields))
        lines.extend(
            f"{row.entity} | " + " | ".join(_shown(row, f) for f in table.fields) for row in shown
        )
    providers = Counter(row.provider for row in table.rows if not row.error)
    used = ", ".join(f"{name} x{n}" for name, n in providers.most_common()) or "none"
    tokens = sum(row.tokens for row in table.rows)
    cost = sum(row.cost_usd for row in table.rows)
    lines.append(
        f"[gemini_research batch: {used}; {tokens} tokens, ${cost:.4f}, {table.seconds:.1f} s]"
    )
    return "\n".join(lines)


def _shown(row: Row, name: str) -> str:
    cell = row.cells[name]
    if cell.status == "not_found":
        return "-"
    value = _csv_value(cell.value)[:60]
    source = row.source_of(name)
    return f"{value} ({source.title[:40]})" if source else f"{value} (unsourced)"
