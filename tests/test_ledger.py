import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlite_utils import Database

from offload_mcp import migrations
from offload_mcp.ledger import CallRecord, Ledger, start_of_day
from offload_mcp.migrations import LedgerTooNew, migrate


def test_migrate_blank_database_creates_calls_table():
    db = Database(memory=True)
    migrate(db)
    assert db["calls"].columns_dict == {
        "id": int, "ts": float, "tool": str, "provider": str, "model": str, "outcome": str,
        "input_tokens": int, "cached_tokens": int, "output_tokens": int, "usd": float,
        "latency_ms": float, "retries": int, "failovers": int, "packet_hash": str,
    }  # fmt: skip
    applied = [row["name"] for row in db["_offload_migrations"].rows]
    assert applied == [fn.__name__ for fn in migrations.MIGRATIONS]
    migrate(db)  # idempotent
    assert db["_offload_migrations"].count == len(migrations.MIGRATIONS)


def test_newer_database_is_refused_untouched(tmp_path: Path):
    path = tmp_path / "ledger.db"
    Ledger(path).record(CallRecord(ts=1.0, tool="t", provider="p", model="m", outcome="ok"))
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO _offload_migrations VALUES ('m999_from_the_future', 'x')")
    with pytest.raises(LedgerTooNew, match="newer offload-mcp.*m999_from_the_future"):
        Ledger(path).totals_since(0)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM calls").fetchone() == (1,)


def test_failed_migration_rolls_back(monkeypatch: pytest.MonkeyPatch):
    def m002_broken(db: Database) -> None:
        db.execute("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("boom")

    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, m002_broken])
    db = Database(memory=True)
    with pytest.raises(RuntimeError):
        migrate(db)
    assert "half_done" not in db.table_names()
    assert "calls" not in db.table_names()


def test_record_and_totals(tmp_path: Path):
    ledger = Ledger(tmp_path / "sub" / "ledger.db")
    now = time.time()
    ledger.record(CallRecord(ts=now, tool="offload", provider="groq", model="m", outcome="ok",
                             input_tokens=10, output_tokens=5, usd=0.25))  # fmt: skip
    ledger.record(CallRecord(ts=now, tool="offload", provider="groq", model="m",
                             outcome="rate_limited"))  # fmt: skip
    ledger.record(CallRecord(ts=now - 10 * 86400, tool="offload", provider="groq", model="m",
                             outcome="ok", input_tokens=99))  # fmt: skip
    totals = ledger.totals_since(now - 3600)["groq"]
    assert (totals.calls, totals.ok, totals.input_tokens, totals.output_tokens) == (2, 1, 10, 5)
    assert totals.usd == pytest.approx(0.25)
    journal = sqlite3.connect(tmp_path / "sub" / "ledger.db").execute("PRAGMA journal_mode")
    assert journal.fetchone() == ("wal",)
    ledger.close()


@pytest.mark.parametrize(
    ("now", "tz", "expected"),
    [
        (datetime(2026, 11, 22, 3, 0, tzinfo=UTC), "UTC", datetime(2026, 11, 22, tzinfo=UTC)),
        # 03:00 UTC is still the previous day in Los Angeles (UTC-8 in November)
        (datetime(2026, 11, 22, 3, 0, tzinfo=UTC), "America/Los_Angeles",
         datetime(2026, 11, 21, 8, 0, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_start_of_day_in_provider_time_zone(now, tz, expected):
    assert start_of_day(now, tz) == expected.timestamp()
