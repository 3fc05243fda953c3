"""Ledger schema history: an ordered list of named migration functions (never edit a shipped one).

Applied names are recorded in `_offload_migrations`; a database that records a name this code
does not know was written by a newer offload-mcp, and we refuse to touch it.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlite_utils import Database

from offload_mcp.errors import OffloadError

Migration = Callable[[Database], None]
MIGRATIONS: list[Migration] = []


class LedgerTooNew(OffloadError):
    """The ledger was migrated by a newer version of offload-mcp."""


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append(fn)
    return fn


@migration
def m001_calls(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE calls (
            id INTEGER PRIMARY KEY,
            ts REAL NOT NULL,               -- unix time the call started
            tool TEXT NOT NULL,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            outcome TEXT NOT NULL,          -- "ok" or the error kind
            input_tokens INTEGER NOT NULL DEFAULT 0,
            cached_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            usd REAL NOT NULL DEFAULT 0,
            latency_ms REAL NOT NULL DEFAULT 0,
            retries INTEGER NOT NULL DEFAULT 0,
            failovers INTEGER NOT NULL DEFAULT 0,
            packet_hash TEXT NOT NULL DEFAULT ''
        )
        """
    )
    db.execute("CREATE INDEX calls_provider_ts ON calls (provider, ts)")


@migration
def m002_reservations_cooldowns_cache(db: Database) -> None:
    # A call row is written when its quota is reserved and updated when it settles, so that
    # concurrent processes see each other's in-flight calls. While reserved, the token and USD
    # columns hold the estimate; `expires_at` lets a dead process's reservation lapse.
    db.execute("ALTER TABLE calls ADD COLUMN status TEXT NOT NULL DEFAULT 'settled'")
    db.execute("ALTER TABLE calls ADD COLUMN expires_at REAL")
    db.execute("ALTER TABLE calls ADD COLUMN counted INTEGER NOT NULL DEFAULT 1")
    db.execute("ALTER TABLE calls ADD COLUMN cache_hit INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE calls ADD COLUMN privacy TEXT NOT NULL DEFAULT ''")
    db.execute("ALTER TABLE calls ADD COLUMN content TEXT")
    db.execute(
        """
        CREATE TABLE cooldowns (
            provider TEXT PRIMARY KEY,
            until REAL NOT NULL,
            reason TEXT NOT NULL,
            set_at REAL NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE cache (
            key TEXT PRIMARY KEY,           -- hash of packet + provider + model, never content
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            answer TEXT NOT NULL,           -- as the provider returned it (after redaction)
            created REAL NOT NULL,
            expires REAL NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX cache_expires ON cache (expires)")


@migration
def m003_usage_buckets(db: Database) -> None:
    # Running totals per provider in minute and quarter-hour buckets, kept in step with `calls`
    # by reserve and settle: a cap check then reads a bounded number of small rows however long
    # the history, instead of summing every call of the month inside the write lock. Minutes
    # align with every window boundary; quarter hours with every day boundary (all UTC offsets
    # in use are multiples of 15 minutes).
    db.execute(
        """
        CREATE TABLE usage_buckets (
            provider TEXT NOT NULL,
            size INTEGER NOT NULL,          -- bucket length in seconds: 60 or 900
            start INTEGER NOT NULL,         -- unix time, a multiple of size
            requests INTEGER NOT NULL DEFAULT 0,
            tokens INTEGER NOT NULL DEFAULT 0,
            usd REAL NOT NULL DEFAULT 0,
            PRIMARY KEY (provider, size, start)
        ) WITHOUT ROWID
        """
    )
    db.execute(
        "CREATE INDEX calls_reserved ON calls (provider, expires_at) WHERE status = 'reserved'"
    )
    for size in (60, 900):
        db.execute(
            f"""
            INSERT INTO usage_buckets
            SELECT provider, {size}, CAST(ts / {size} AS INTEGER) * {size}, SUM(counted),
                   SUM(input_tokens + output_tokens), SUM(usd)
            FROM calls WHERE cache_hit = 0 GROUP BY 1, 3
            """
        )


@migration
def m004_cache_grounding(db: Database) -> None:
    # A grounded answer's sources and searches (JSON, `Grounding.to_json`) beside the answer,
    # so a cached research answer keeps its sources without carrying them inside its text.
    # Answers cached with the grounding appended as an HTML comment are dropped, not shown.
    db.execute("ALTER TABLE cache ADD COLUMN grounding TEXT")
    db.execute("DELETE FROM cache WHERE instr(answer, '<!-- offload:grounding ') > 0")


def migrate(db: Database) -> None:
    """Apply missing migrations in one IMMEDIATE transaction, so racing processes serialise."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS _offload_migrations (name TEXT PRIMARY KEY, applied_at TEXT)"
    )
    known = [fn.__name__ for fn in MIGRATIONS]
    if _applied(db) == set(known):
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        applied = _applied(db)
        newer = sorted(applied - set(known))
        if newer:
            raise LedgerTooNew(
                f"the ledger was written by a newer offload-mcp (migration {newer[-1]}).",
                hint="Upgrade offload-mcp, or point OFFLOAD_MCP_HOME at another directory.",
            )
        for fn in MIGRATIONS:
            if fn.__name__ not in applied:
                fn(db)
                db.execute(
                    "INSERT INTO _offload_migrations VALUES (?, datetime('now'))", [fn.__name__]
                )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _applied(db: Database) -> set[str]:
    return {row[0] for row in db.execute("SELECT name FROM _offload_migrations").fetchall()}
