"""The ledger: one SQLite file shared by every offload-mcp process on the machine.

One row of `calls` is one request to one provider. It is written when the request's quota is
reserved (holding the estimate) and updated when it settles (holding what really happened), so
concurrent processes always count each other's in-flight requests. Admission runs inside
`BEGIN IMMEDIATE`, which serialises writers across processes: N processes can never admit more
than a cap between them. Rows never hold packet content, answers or key values.

This package and migrations.py are the only code that speaks SQL.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import astuple, fields
from pathlib import Path
from typing import Any, TypeVar

from offload_mcp.config import Window
from offload_mcp.ledger.records import (
    Cached,
    CacheEntry,
    CallRecord,
    CapWindow,
    ProviderTotals,
    Refusal,
    WindowUse,
    WouldBlock,
)
from offload_mcp.ledger.sql import LOCK_WAIT_S, add_to_buckets, begin, bucket_size

__all__ = [
    "CacheEntry",
    "Cached",
    "CallRecord",
    "CapWindow",
    "Ledger",
    "ProviderTotals",
    "Refusal",
    "WindowUse",
    "WouldBlock",
]
from offload_mcp.windows import ROLLING

T = TypeVar("T")

#: outcomes where the provider did not serve the request, so it does not count against caps
NOT_SERVED = frozenset({"down", "rate_limited", "auth", "forbidden", "cooling"})


class Ledger:
    """Thread-safe; opens (and migrates) the database on first use, not at server start."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._local = threading.local()

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            from sqlite_utils import Database

            from offload_mcp.migrations import migrate  # sqlite-utils: only when first used

            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path,
                timeout=LOCK_WAIT_S,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL mode survives a killed process; only power loss can drop the
            # last commits, and an fsync per call would cost more than the call itself here.
            conn.execute("PRAGMA synchronous = NORMAL")
            migrate(Database(conn))
            # From here on, waits for the write lock are ours (see _begin): SQLite's own busy
            # handler sleeps up to 100 ms at a time, which made p99 under contention ~60 ms.
            conn.execute("PRAGMA busy_timeout = 0")
            self._conn = conn
        return self._conn

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """The connection, for reads (WAL readers never wait for the database itself).

        Inside `without_waiting`, raises `WouldBlock` instead of waiting for another thread.
        """
        waiting = not getattr(self._local, "without_waiting", False)
        if not waiting and self._conn is None:
            raise WouldBlock  # the first use opens and migrates the database, which may wait
        if not self._lock.acquire(blocking=waiting):
            raise WouldBlock
        try:
            yield self._db()
        finally:
            self._lock.release()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the database lock up front.

        It waits for other threads and processes, except inside `without_waiting`, where it
        raises `WouldBlock` instead (before anything is written).
        """
        with self._read() as db:
            begin(db, wait=not getattr(self._local, "without_waiting", False))
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def without_waiting(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a ledger operation now if no lock stands in the way, else raise `WouldBlock`.

        Lets the event loop do a ~0.2 ms write itself instead of paying a thread hop, and
        hand it to a thread only when it would have to wait.
        """
        self._local.without_waiting = True
        try:
            return fn(*args, **kwargs)
        finally:
            self._local.without_waiting = False

    def reserve(
        self,
        *,
        provider: str,
        tool: str,
        model: str,
        windows: Sequence[CapWindow],
        est_input: int,
        est_output: int,
        est_usd: float,
        ttl_s: float,
        packet_hash: str = "",
        retries: int = 0,
        failovers: int = 0,
        cache_key: str | None = None,
    ) -> int | Refusal | Cached:
        """Admit one request against every cap and cool-down, or say why not; atomic.

        With a `cache_key`, a stored answer is returned instead (recorded as a cache hit,
        free and outside every cap), in the same transaction: one round trip per call.
        """
        with self._write() as db:
            now = self.clock()
            if cache_key is not None:
                row = db.execute(
                    "SELECT answer, grounding FROM cache WHERE key = ? AND expires > ?",
                    [cache_key, now],
                ).fetchone()
                if row is not None:
                    db.execute(
                        "INSERT INTO calls (ts, tool, provider, model, outcome, packet_hash, "
                        "counted, cache_hit) VALUES (?, ?, ?, ?, 'ok', ?, 0, 1)",
                        [now, tool, provider, model, packet_hash],
                    )
                    return Cached(str(row[0]), row[1])
            self._reap(db, provider, now)
            refusal = self._cooling(db, provider, now) or self._over_cap(
                db, provider, windows, now, est_input + est_output, est_usd
            )
            if refusal is not None:
                return refusal
            cursor = db.execute(
                """
                INSERT INTO calls (ts, tool, provider, model, outcome, input_tokens,
                    output_tokens, usd, retries, failovers, packet_hash, status, expires_at)
                VALUES (?, ?, ?, ?, 'reserved', ?, ?, ?, ?, ?, ?, 'reserved', ?)
                """,
                [
                    now,
                    tool,
                    provider,
                    model,
                    est_input,
                    est_output,
                    est_usd,
                    retries,
                    failovers,
                    packet_hash,
                    now + ttl_s,
                ],
            )
            assert cursor.lastrowid is not None
            add_to_buckets(db, provider, now, 1, est_input + est_output, est_usd)
            return cursor.lastrowid

    def settle(
        self,
        reservation: int,
        *,
        outcome: str,
        model: str,
        input_tokens: int = 0,
        cached_tokens: int = 0,
        output_tokens: int = 0,
        usd: float = 0.0,
        latency_ms: float = 0.0,
        privacy: str = "",
        cache: CacheEntry | None = None,
        content: str | None = None,
    ) -> None:
        """Replace the estimate with what happened; a failed request keeps no tokens.

        `cache` stores the answer for identical packets in the same transaction.
        """
        counted = 0 if outcome in NOT_SERVED else 1
        with self._write() as db:
            if cache is not None:
                now = self.clock()
                db.execute("DELETE FROM cache WHERE expires <= ?", [now])
                db.execute(
                    "INSERT OR REPLACE INTO cache (key, provider, model, answer, grounding, "
                    "created, expires) SELECT ?, provider, ?, ?, ?, ?, ? FROM calls WHERE id = ?",
                    [
                        cache.key,
                        model,
                        cache.answer,
                        cache.grounding,
                        now,
                        now + cache.ttl_s,
                        reservation,
                    ],
                )
            row = db.execute(
                "SELECT provider, ts, status, input_tokens + output_tokens, usd FROM calls "
                "WHERE id = ?",
                [reservation],
            ).fetchone()
            if row is None or row[2] == "settled":
                return
            provider, ts, status, est_tokens, est_usd = row
            db.execute(
                """
                UPDATE calls SET status = 'settled', expires_at = NULL, outcome = ?, model = ?,
                    input_tokens = ?, cached_tokens = ?, output_tokens = ?, usd = ?,
                    latency_ms = ?, counted = ?, privacy = ?, content = ?
                WHERE id = ?
                """,
                [
                    outcome,
                    model,
                    input_tokens,
                    cached_tokens,
                    output_tokens,
                    usd,
                    latency_ms,
                    counted,
                    privacy,
                    content,
                    reservation,
                ],
            )
            # A reservation still in the buckets is corrected by the difference; one that
            # expired meanwhile (and was taken out) is added back whole.
            held = (1, est_tokens, est_usd) if status == "reserved" else (0, 0, 0.0)
            add_to_buckets(
                db,
                provider,
                ts,
                counted - held[0],
                input_tokens + output_tokens - held[1],
                usd - held[2],
            )

    def _reap(self, db: sqlite3.Connection, provider: str, now: float) -> None:
        """Take reservations whose process never settled them (it died) out of the totals."""
        expired = db.execute(
            "SELECT id, ts, input_tokens + output_tokens, usd FROM calls "
            "WHERE provider = ? AND status = 'reserved' AND expires_at <= ?",
            [provider, now],
        ).fetchall()
        for call_id, ts, tokens, usd in expired:
            add_to_buckets(db, provider, ts, -1, -tokens, -usd)
            db.execute(
                "UPDATE calls SET status = 'expired', outcome = 'expired', input_tokens = 0, "
                "output_tokens = 0, usd = 0, counted = 0 WHERE id = ?",
                [call_id],
            )

    def record(self, call: CallRecord) -> None:
        columns = ", ".join(f.name for f in fields(CallRecord))
        marks = ", ".join("?" for _ in fields(CallRecord))
        with self._write() as db:
            db.execute(f"INSERT INTO calls ({columns}) VALUES ({marks})", astuple(call))

    def _cooling(self, db: sqlite3.Connection, provider: str, now: float) -> Refusal | None:
        row = db.execute(
            "SELECT until, reason FROM cooldowns WHERE provider = ? AND until > ?", [provider, now]
        ).fetchone()
        return Refusal(provider, f"cooling down: {row[1]}", row[0]) if row else None

    def _over_cap(
        self,
        db: sqlite3.Connection,
        provider: str,
        windows: Sequence[CapWindow],
        now: float,
        est_tokens: int,
        est_usd: float,
    ) -> Refusal | None:
        for use in self._use(db, provider, windows, now):
            limit = use.limit
            for what, used, extra, cap in (
                ("requests", use.requests, 1, limit.requests),
                ("tokens", use.tokens, est_tokens, limit.tokens),
                ("USD", use.usd, est_usd, limit.usd),
            ):
                if cap is not None and used + extra > cap:
                    reset = use.reset or self._rolling_reset(db, provider, use.window, windows)
                    shown = f"${used:.4f}/${cap:.2f}" if what == "USD" else f"{used}/{cap}"
                    return Refusal(provider, f"{use.window} cap reached: {shown} {what}", reset)
        return None

    def _use(
        self, db: sqlite3.Connection, provider: str, windows: Sequence[CapWindow], now: float
    ) -> list[WindowUse]:
        result = []
        for w in windows:
            size = bucket_size(w.window)
            row = db.execute(
                "SELECT SUM(requests), SUM(tokens), SUM(usd) FROM usage_buckets "
                "WHERE provider = ? AND size = ? AND start >= ?",
                [provider, size, int(w.start // size) * size],
            ).fetchone()
            result.append(
                WindowUse(
                    w.window,
                    int(row[0] or 0),
                    int(row[1] or 0),
                    float(row[2] or 0.0),
                    w.limit,
                    w.reset,
                )
            )
        return result

    def _rolling_reset(
        self, db: sqlite3.Connection, provider: str, window: Window, windows: Sequence[CapWindow]
    ) -> float | None:
        """When the oldest use in a rolling window ages out (a bucket leaves whole)."""
        if window not in ROLLING:
            return None
        start = next(w.start for w in windows if w.window == window)
        size = bucket_size(window)
        oldest = db.execute(
            "SELECT MIN(start) FROM usage_buckets WHERE provider = ? AND size = ? AND start >= ? "
            "AND requests > 0",
            [provider, size, int(start // size) * size],
        ).fetchone()[0]
        return None if oldest is None else oldest + size + ROLLING[window].total_seconds()

    def window_use(self, provider: str, windows: Sequence[CapWindow]) -> list[WindowUse]:
        with self._write() as db:
            now = self.clock()
            self._reap(db, provider, now)
            return self._use(db, provider, windows, now)

    def set_cooldown(self, provider: str, until: float, reason: str) -> None:
        """Skip this provider until `until` in every process; a later deadline wins."""
        with self._write() as db:
            db.execute(
                """
                INSERT INTO cooldowns (provider, until, reason, set_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (provider) DO UPDATE SET until = excluded.until,
                    reason = excluded.reason, set_at = excluded.set_at
                WHERE excluded.until > cooldowns.until
                """,
                [provider, until, reason, self.clock()],
            )

    def cooldowns(self) -> dict[str, tuple[float, str]]:
        with self._read() as db:
            rows = db.execute(
                "SELECT provider, until, reason FROM cooldowns WHERE until > ?", [self.clock()]
            ).fetchall()
        return {row[0]: (row[1], row[2]) for row in rows}

    def totals_since(self, since_ts: float) -> dict[str, ProviderTotals]:
        """Per provider: settled requests, successes, tokens, USD and cache hits since then."""
        with self._read() as db:
            rows = db.execute(
                """
                SELECT provider, SUM(cache_hit = 0), SUM(outcome = 'ok' AND cache_hit = 0),
                       SUM(input_tokens), SUM(output_tokens), SUM(usd), SUM(cache_hit)
                FROM calls WHERE ts >= ? AND status = 'settled' GROUP BY provider
                """,
                [since_ts],
            ).fetchall()
        return {row[0]: ProviderTotals(*row[1:]) for row in rows}

    def usage(self, since_ts: float, group_by: Sequence[str]) -> list[dict[str, Any]]:
        """Settled use grouped by any of day (local), provider, tool, model; for `usage`."""
        columns = {
            "day": "date(ts, 'unixepoch', 'localtime')",
            "provider": "provider",
            "tool": "tool",
            "model": "model",
        }
        keys = [columns[name] for name in group_by]
        select = ", ".join(f"{expr} AS {name}" for name, expr in zip(group_by, keys, strict=True))
        with self._read() as db:
            cursor = db.execute(
                f"""
                SELECT {select}, COUNT(*) AS calls, SUM(outcome = 'ok') AS ok,
                    SUM(cache_hit) AS cache_hits, SUM(input_tokens) AS input_tokens,
                    SUM(cached_tokens) AS cached_tokens, SUM(output_tokens) AS output_tokens,
                    ROUND(SUM(usd), 6) AS usd
                FROM calls WHERE ts >= ? AND status = 'settled'
                GROUP BY {", ".join(keys)} ORDER BY {", ".join(keys)}
                """,
                [since_ts],
            )
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
