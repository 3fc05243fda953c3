"""The Claude window for status and routing: incremental index, persistence, hot verdict."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from offload_mcp.audit import scan, window
from offload_mcp.audit.pricing import PriceTable
from offload_mcp.audit.reader import Entry
from offload_mcp.audit.window import ClaudeWindow, TranscriptIndex, WindowWatch, look, priced
from tests.test_audit_edges import assistant, usage, write

H = 3600.0
NOW = datetime(2026, 3, 20, 15, 30, tzinfo=UTC).timestamp()


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def line(i: int, ts: float, out: int = 10, read: int = 1000) -> dict[str, object]:
    return assistant(f"m{i}", f"r{i}", usage(read=read, out=out), ts=iso(ts))


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Offsets each read starts from."""
    starts: list[int] = []
    real = scan.FileReader.lines

    def spy(self: scan.FileReader, buf: bytes, pos: int, end: int):  # type: ignore[no-untyped-def]
        starts.append(end - pos)
        return real(self, buf, pos, end)

    monkeypatch.setattr(scan.FileReader, "lines", spy)
    return starts


def test_index_reads_only_appended_complete_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "projects" / "p" / "s.jsonl", [line(1, NOW - H), line(2, NOW - H)])
    index = TranscriptIndex([tmp_path / "projects"])
    assert [e.message_id for e in index.refresh(NOW)] == ["m1", "m2"]
    read = _count_reads(monkeypatch)
    assert len(index.refresh(NOW)) == 2 and read == []  # unchanged: not read at all
    added = json.dumps(line(3, NOW - 0.5 * H)) + "\n"
    partial = json.dumps(line(4, NOW))
    with path.open("a") as handle:
        handle.write(added + partial[:40])  # the last line is still being written
    assert [e.message_id for e in index.refresh(NOW)] == ["m1", "m2", "m3"]
    assert sum(read) == len(added)  # only the new whole line was scanned
    with path.open("a") as handle:
        handle.write(partial[40:] + "\n")
    assert [e.message_id for e in index.refresh(NOW)] == ["m1", "m2", "m3", "m4"]


def test_a_rewritten_or_old_file_is_read_again_or_dropped(tmp_path: Path) -> None:
    path = write(tmp_path / "p" / "s.jsonl", [line(1, NOW - H, out=5), line(2, NOW - H)])
    old = write(tmp_path / "p" / "old.jsonl", [line(9, NOW - 90 * 86400)])
    stale = time.time() - 90 * 86400
    os.utime(old, (stale, stale))
    index = TranscriptIndex([tmp_path])
    assert {e.message_id for e in index.refresh(time.time())} == {"m1", "m2"}
    write(path, [line(7, NOW - H, out=6), line(8, NOW - H), line(6, NOW - H)])  # same prefix size
    assert [e.message_id for e in index.refresh(time.time())] == ["m7", "m8", "m6"]
    path.unlink()
    assert index.refresh(time.time()) == []


def test_the_index_persists_for_the_next_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "p" / "s.jsonl", [line(1, NOW - H), line(2, NOW - 2 * H)])
    store = tmp_path / "data" / window.STORE_NAME
    first = TranscriptIndex([tmp_path / "p"], store).refresh(NOW)
    read = _count_reads(monkeypatch)
    again = TranscriptIndex([tmp_path / "p"], store).refresh(NOW)
    assert read == [] and [(e.message_id, e.output, e.project) for e in again] == [
        (e.message_id, e.output, e.project) for e in first
    ]
    store.write_text("{not json")
    assert len(TranscriptIndex([tmp_path / "p"], store).refresh(NOW)) == 2  # rebuilt


def _now_entry(i: int, ts: float, out: int) -> Entry:
    return Entry(ts, "s", "p", "claude-opus-4-6", f"n{i}", "r", False, 0, 0, 0, 0, out)


def _history(blocks: int, out: int) -> list[Entry]:
    """One request a day for `blocks` days before NOW, each its own past block."""
    return [_now_entry(100 + d, NOW - (d + 1) * 86400, out) for d in range(blocks)]


def test_hot_when_the_block_heads_past_the_threshold_of_past_blocks() -> None:
    prices = PriceTable.load()
    busy = [_now_entry(0, NOW - 1.4 * H, 40_000), _now_entry(1, NOW - 0.4 * H, 40_000)]
    state = look(priced(_history(20, 10_000) + busy, prices), NOW)
    assert state.block_percentile == 100.0
    assert state.hot(80) and not state.hot(0)
    text = state.line(80)
    assert text.startswith("Claude window (API-equivalent): 5h block ")
    assert "(p100 of 20 past blocks)" in text and "HOT (>= p80)" in text
    assert "/h -> $" in text
    calm = look(priced(_history(20, 1_000_000) + busy, prices), NOW)  # projection: ~360k
    assert calm.block_percentile == 0.0 and not calm.hot(80) and "HOT" not in calm.line(80)
    young = look(priced(_history(3, 10_000) + busy, prices), NOW)
    assert young.block_percentile is None and not young.hot(1)  # too little history
    idle = look(priced(_history(20, 10_000), prices), NOW)
    assert idle.line(80).startswith("Claude window (API-equivalent): no active 5h block; 7 days")
    assert look(priced([], prices), NOW).line(80) == ""


def test_watch_never_blocks_dispatch_and_status_waits_a_bounded_time(tmp_path: Path) -> None:
    write(
        tmp_path / "p" / "s.jsonl",
        [line(1, NOW - 1.5 * H, out=50), line(2, NOW - 0.5 * H, out=50)],
    )
    clock = [NOW]
    watch = WindowWatch(tmp_path / "data", [tmp_path / "p"], clock=lambda: clock[0], ttl_s=60)
    assert watch.hot(0) is False and watch._thread is None  # off: nothing is read
    assert watch.latest() is None  # the first look starts in the background
    assert watch._thread is not None
    watch._thread.join(10)
    state = watch.latest()
    assert isinstance(state, ClaudeWindow) and state.windows.active is not None
    assert watch.wait_fresh(0) is state  # fresh: no second read
    priced_once = watch._points
    clock[0] += 120
    assert watch.latest() is state  # stale: still answered at once, refreshed behind
    watch._thread.join(10)
    assert watch.latest() is not state
    assert watch._points is priced_once  # no transcript changed: nothing priced again
    text = watch.status_line(80, 5)
    assert "5h block" in text and "HOT" not in text  # no past blocks: no percentile


def test_watch_survives_a_broken_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    watch = WindowWatch(None, [tmp_path])

    def boom(self: TranscriptIndex, now: float) -> list[Entry]:
        raise PermissionError("denied")

    monkeypatch.setattr(TranscriptIndex, "refresh", boom)
    assert watch.status_line(80, 5) == "Claude window unavailable: denied"
    assert watch.hot(80) is False


def test_a_long_first_read_keeps_its_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "p" / "a.jsonl", [line(1, NOW - H)])
    write(tmp_path / "p" / "b.jsonl", [line(2, NOW - H)])
    store = tmp_path / "data" / window.STORE_NAME
    monkeypatch.setattr(window, "SAVE_EVERY_S", 0.0)
    real = TranscriptIndex._read

    def dies_on_b(self: TranscriptIndex, path: Path, *rest: object) -> object:
        if path.name == "b.jsonl":
            raise KeyboardInterrupt  # the process ends mid-read
        return real(self, path, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(TranscriptIndex, "_read", dies_on_b)
    with pytest.raises(KeyboardInterrupt):
        TranscriptIndex([tmp_path / "p"], store).refresh(NOW)
    monkeypatch.setattr(TranscriptIndex, "_read", real)
    kept = json.loads(store.read_text())["files"]
    assert [Path(name).name for name in kept] == ["a.jsonl"]
    assert len(TranscriptIndex([tmp_path / "p"], store).refresh(NOW)) == 2


def test_the_saved_index_may_lag_a_live_transcript(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "p" / "s.jsonl", [line(1, NOW - H)])
    store = tmp_path / "data" / window.STORE_NAME
    index = TranscriptIndex([tmp_path / "p"], store)
    index.refresh(NOW)
    saved = store.read_bytes()
    with path.open("a") as handle:
        handle.write(json.dumps(line(2, NOW)) + "\n")
    assert len(index.refresh(NOW)) == 2
    assert store.read_bytes() == saved  # a turn later: not rewritten yet
    assert len(TranscriptIndex([tmp_path / "p"], store).refresh(NOW)) == 2  # still complete
    monkeypatch.setattr(window, "STORE_LAG_S", 0.0)
    with path.open("a") as handle:
        handle.write(json.dumps(line(3, NOW)) + "\n")
    index.refresh(NOW)
    assert len(json.loads(store.read_text())["files"][str(path)]["entries"]) == 3
