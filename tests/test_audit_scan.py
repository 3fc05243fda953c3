"""The byte-level reader: what it may skip without parsing, chunk boundaries, processes."""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from offload_mcp.audit import scan
from offload_mcp.audit.reader import Entry, ReadStats
from offload_mcp.audit.run import run_audit
from tests.test_audit_edges import assistant, usage, write

FIXTURES = Path(__file__).parent / "fixtures" / "claude-transcripts" / "spotter"


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (b'{"type":"user","message":{"type":"x"}}', b"user"),
        (b'{"parentUuid":"a{b","type":"progress"}', None),  # a brace before: left to the parser
        (b'{"message":{"type":"message"},"type":"assistant"}', None),
        (b'{"a":[1],"type":"user"}', b"user"),  # an array of scalars holds no key
        (b'{"a":[{"type":"x"}],"type":"user"}', None),  # a key deeper down: after a {
        (b'{"type":"us\\u0065r"}', None),  # an escape: the parser decides
        (b'{"cwd":"/x","type":"system"}', b"system"),
        (b'{"type":', None),
    ],
)
def test_line_type_is_exact_or_declines(line: bytes, kind: bytes | None) -> None:
    assert scan.line_type(line, 0, len(line)) == kind


def _read(path: Path) -> tuple[list[Entry], ReadStats]:
    stats = ReadStats()
    return list(scan.read_file(path, stats)), stats


def test_skipped_lines_still_count_blank_crlf_and_shapes(tmp_path: Path) -> None:
    lines = [
        json.dumps({"type": "user", "cwd": "/real/cwd", "message": {"content": "usage"}}),
        "   ",
        '{"type":"progress","data":{"usage":{"output_tok',  # cut off: not {...}
        '  {"type": "assistant", "timestamp": "2026-03-02T10:15:00Z", "message": '
        '{"id": "m0", "model": "claude-opus-4-6", "usage": {"output_tokens": 2}}}',
        json.dumps(assistant("m1", "r1", usage(out=7))),
    ]
    path = tmp_path / "p" / "s.jsonl"
    path.parent.mkdir()
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    entries, stats = _read(path)
    assert [e.output for e in entries] == [2, 7]  # leading blanks: parsed, not lost
    assert stats.lines == 5 and stats.malformed == 1
    assert {e.project for e in entries} == {"/real/cwd"}  # named by the first line's cwd


def test_lines_cut_by_chunk_boundaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    long_text = "x" * 5000
    lines = [
        assistant(f"m{i}", f"r{i}", usage(out=i + 1), content=[{"type": "text", "text": long_text}])
        for i in range(20)
    ]
    path = write(tmp_path / "p" / "s.jsonl", lines, tail=json.dumps(lines[0])[:-3])
    expected = sum(range(1, 21))
    for chunk in (7, 64, 4999, 5001, 1 << 22):
        monkeypatch.setattr(scan, "CHUNK", chunk)
        entries, stats = _read(path)
        assert sum(e.output for e in entries) == expected, chunk
        assert (stats.lines, stats.truncated_files, stats.malformed) == (21, 1, 0), chunk
        assert stats.bytes == path.stat().st_size


def test_processes_give_the_same_audit_as_one(tmp_path: Path) -> None:
    one = run_audit([FIXTURES], tz=UTC, workers=1)
    two = run_audit([FIXTURES], tz=UTC, workers=2)
    assert two.report.as_dict() == one.report.as_dict()
    assert two.stats.as_dict() == one.stats.as_dict()
    assert [(e.message_id, e.output, e.tools) for e in two.entries] == [
        (e.message_id, e.output, e.tools) for e in one.entries
    ]
    narrowed = run_audit([FIXTURES], tz=UTC, workers=2, project="nowhere")
    assert narrowed.report.total.requests == 0


def test_parallel_only_for_big_audits_in_a_single_thread() -> None:
    assert scan.workers_for(1000) == 1
    big = scan.PARALLEL_BYTES * 2
    import threading

    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert scan.workers_for(big) == 1  # never fork a process that runs other threads
    finally:
        stop.set()
        thread.join()


def test_unreadable_file_is_listed_not_fatal(tmp_path: Path) -> None:
    missing = tmp_path / "gone.jsonl"
    for workers in (1, 2):
        stats = ReadStats()
        assert scan.read_all([missing, missing], stats, workers=workers) == []
        assert stats.unreadable_files == [str(missing), str(missing)]


def _base() -> dict[str, Any]:
    return assistant("m1", "r1", usage(out=7), content=[{"type": "text", "text": "ok"}])


ODD_LINES: list[bytes] = [
    json.dumps(_base()).encode(),
    json.dumps({**_base(), "message": {**_base()["message"], "content": "a string"}}).encode(),
    json.dumps({**_base(), "message": {**_base()["message"], "content": {"a": 1}}}).encode(),
    json.dumps({**_base(), "message": None}).encode(),
    json.dumps({**_base(), "message": [1]}).encode(),
    json.dumps({**_base(), "type": ["assistant"]}).encode(),  # once crashed the reader
    json.dumps({**_base(), "type": None}).encode(),
    json.dumps({**_base(), "isSidechain": "yes", "requestId": 5}).encode(),
    json.dumps(
        {
            **_base(),
            "message": {
                **_base()["message"],
                "content": [
                    {"type": "tool_use", "name": "Bash", "input": {"command": "pytest -q"}},
                    {"type": "tool_use", "name": "Bash", "input": "not an object"},
                    None,
                ],
            },
        }
    ).encode(),
    json.dumps(
        {
            **_base(),
            "message": {
                **_base()["message"],
                "content": [{"type": "tool_use", "name": "Read", "input": None}],
            },
        }
    ).encode(),
    json.dumps(_base(), ensure_ascii=False).replace("ok", "ok → ✓").encode(),
    json.dumps(_base()).replace('"ok"', '"ok\xff"').encode("latin-1"),  # bad UTF-8
    json.dumps(_base())
    .replace('"type": "assistant"', '"type": "assistant", "type": "user"')
    .encode(),  # duplicate keys: the last one counts, in both parsers
]


def _row(e: Entry | None) -> tuple[object, ...] | None:
    if e is None:
        return None
    return (e.timestamp, e.message_id, e.request_id, e.sidechain, e.model, e.output, e.tools)


@pytest.mark.parametrize("raw", ODD_LINES)
def test_field_decoding_gives_what_the_full_parse_gives(raw: bytes, tmp_path: Path) -> None:
    fast_stats, full_stats = ReadStats(), ReadStats()
    fast = scan.FileReader(tmp_path / "s.jsonl", fast_stats, None).parsed(raw)
    full = scan.FileReader(tmp_path / "s.jsonl", full_stats, None).parsed_in_full(raw)
    assert _row(fast) == _row(full)
    assert fast_stats.as_dict() == full_stats.as_dict()


def test_most_odd_lines_take_the_fast_path() -> None:
    from offload_mcp.audit.fields import Unfit, decode

    def fits(raw: bytes) -> bool:
        try:
            decode(raw)
        except (Unfit, UnicodeDecodeError):
            return False
        return True

    assert [fits(raw) for raw in ODD_LINES] == [
        True, True, False, True, False, True, True, True, False, True, True, False, True,
    ]  # fmt: skip


def test_a_dead_worker_share_is_read_here_and_a_failing_one_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    files = sorted(FIXTURES.rglob("*.jsonl"))
    expected = [_row(e) for e in scan.read_all(files, ReadStats(), workers=1)]

    def dies(send: object, job: object) -> None:
        os._exit(3)  # killed before it could answer

    monkeypatch.setattr(scan, "_work", dies)
    stats = ReadStats()
    assert [_row(e) for e in scan.read_all(files, stats, workers=2)] == expected
    assert stats.files == len(files)
    monkeypatch.undo()

    def fails(job: object) -> None:
        raise PermissionError("no access")

    monkeypatch.setattr(scan, "_read_batch", fails)
    with pytest.raises(PermissionError, match="no access"):
        scan.read_all(files, ReadStats(), workers=2)


def test_find_files_finds_what_rglob_finds(tmp_path: Path) -> None:
    from offload_mcp.audit.reader import find_files

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.jsonl").write_text("{}\n")
    (tmp_path / "dir.jsonl").mkdir()  # a directory by that name: entered, not listed
    (tmp_path / "dir.jsonl" / "y.jsonl").write_text("{}\n")
    (tmp_path / "a" / "notes.txt").write_text("")
    (tmp_path / ".hidden.jsonl").write_text("{}\n")
    (tmp_path / "link.jsonl").symlink_to(tmp_path / "a" / "x.jsonl")
    (tmp_path / "broken.jsonl").symlink_to(tmp_path / "nowhere")
    (tmp_path / "linked-dir").symlink_to(tmp_path / "a")  # not entered, as rglob does not
    found = find_files([tmp_path, tmp_path / "a" / "x.jsonl"])
    expected = sorted(p for p in tmp_path.rglob("*.jsonl") if p.is_file())
    assert found == expected
    assert [p.name for p in found] == [".hidden.jsonl", "x.jsonl", "y.jsonl", "link.jsonl"]
