"""Real OS processes on one ledger: caps hold across processes, and a kill -9 loses nothing."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from offload_mcp.config import CapLimit
from offload_mcp.ledger import CapWindow, Ledger, Refusal

WORKER = str(Path(__file__).with_name("ledger_worker.py"))
pytestmark = pytest.mark.slow


def test_eight_processes_admit_exactly_the_cap(tmp_path: Path):
    db = tmp_path / "ledger.db"
    Ledger(db).totals_since(0)  # create and migrate once, as a running server would have
    cap, processes, each = 1500, 8, 1000
    workers = [
        subprocess.Popen(
            [sys.executable, WORKER, str(db), "reserve", str(each), str(cap)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    admitted = 0
    try:
        for worker in workers:
            out, err = worker.communicate(timeout=300)
            assert worker.returncode == 0, err
            assert "locked" not in err
            admitted += int(out.split()[-1])
    finally:
        for worker in workers:
            worker.kill()
    assert admitted == cap
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT COUNT(*), SUM(status = 'settled') FROM calls").fetchone()
    assert rows == (cap, cap), "every admitted call has exactly one settled row"


def test_kill_minus_nine_loses_nothing_and_reservations_expire(tmp_path: Path):
    db = tmp_path / "ledger.db"
    ttl = 3.0
    worker = subprocess.Popen(
        [sys.executable, WORKER, str(db), "crash", str(ttl)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    committed: list[int] = []
    held = None
    try:
        assert worker.stdout is not None
        while held is None:
            line = worker.stdout.readline()
            assert line, "worker died before holding a reservation"
            kind, value = line.split()
            if kind == "committed":
                committed.append(int(value))
            else:
                held, held_at = int(value), time.monotonic()
        worker.send_signal(signal.SIGKILL)  # while its writer thread is mid-run
    finally:
        worker.kill()
        worker.communicate(timeout=10)
    assert len(committed) >= 300
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        ids = {row[0] for row in conn.execute("SELECT id FROM calls WHERE status = 'settled'")}
        assert set(committed) <= ids
        status = conn.execute("SELECT status FROM calls WHERE id = ?", [held]).fetchone()
        assert status == ("reserved",)

    # The dead process's reservation counts until it expires, then frees its slot.
    one_request = [CapWindow(window="day", start=0.0, reset=None, limit=CapLimit(requests=1))]
    ledger = Ledger(db)

    def attempt() -> int | Refusal:
        return ledger.reserve(
            provider="p",
            tool="t",
            model="m",
            windows=one_request,
            est_input=1,
            est_output=1,
            est_usd=0.0,
            ttl_s=60,
        )

    assert isinstance(attempt(), Refusal)
    result = attempt()
    while isinstance(result, Refusal) and time.monotonic() - held_at < ttl + 10:
        time.sleep(0.1)
        result = attempt()
    assert isinstance(result, int)
    assert time.monotonic() - held_at >= ttl - 0.5
    ledger.close()
