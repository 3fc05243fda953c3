"""The ledger: one SQLite file shared by every offload-mcp process on the machine.

One row of `calls` is one attempt at one provider: what it cost, how long it took, and how it
ended. Rows never hold packet content, answers or key values; only a hash of the packet.
This is the only module (with migrations.py) that speaks SQL.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import astuple, dataclass, fields
from datetime import datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

BUSY_TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class CallRecord:
    ts: float
    tool: str
    provider: str
    model: str
    outcome: str
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    usd: float = 0.0
    latency_ms: float = 0.0
    retries: int = 0
    failovers: int = 0
    packet_hash: str = ""


@dataclass(frozen=True)
class ProviderTotals:
    calls: int
    ok: int
    input_tokens: int
    output_tokens: int
    usd: float


class Ledger:
    """Thread-safe; opens (and migrates) the database on first use, not at server start."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            from sqlite_utils import Database

            from offload_mcp.migrations import migrate  # sqlite-utils: only when first used

            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                check_same_thread=False,
            )  # fmt: skip
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL mode survives a killed process; only power loss can drop the
            # last commits, and an fsync per call would cost more than the call's overhead goal.
            conn.execute("PRAGMA synchronous = NORMAL")
            migrate(Database(conn))
            self._conn = conn
        return self._conn

    def record(self, call: CallRecord) -> None:
        columns = ", ".join(f.name for f in fields(CallRecord))
        marks = ", ".join("?" for _ in fields(CallRecord))
        with self._lock:
            self._db().execute(f"INSERT INTO calls ({columns}) VALUES ({marks})", astuple(call))

    def totals_since(self, since_ts: float) -> dict[str, ProviderTotals]:
        """Per provider: attempts, successes, tokens and USD since a unix time."""
        with self._lock:
            rows = (
                self._db()
                .execute(
                    """
                SELECT provider, COUNT(*), SUM(outcome = 'ok'), SUM(input_tokens),
                       SUM(output_tokens), SUM(usd)
                FROM calls WHERE ts >= ? GROUP BY provider
                """,
                    [since_ts],
                )
                .fetchall()
            )
        return {row[0]: ProviderTotals(*row[1:]) for row in rows}

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def start_of_day(now: datetime, tz: str = "UTC") -> float:
    """Unix time of the most recent midnight in `tz` (the day providers count in)."""
    local = now.astimezone(ZoneInfo(tz))
    return datetime.combine(local.date(), time(0), tzinfo=local.tzinfo).timestamp()
