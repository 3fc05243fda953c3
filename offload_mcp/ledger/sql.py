"""Low-level SQL the ledger shares: taking the write lock, and the usage-bucket arithmetic."""

from __future__ import annotations

import random
import sqlite3
import time

from offload_mcp.config import Window
from offload_mcp.ledger.records import WouldBlock

#: how long a write waits for another process's transaction before giving up
LOCK_WAIT_S = 30.0


def bucket_size(window: Window) -> int:
    return 60 if window in ("minute", "hour", "5h") else 900


def add_to_buckets(
    db: sqlite3.Connection, provider: str, ts: float, requests: int, tokens: int, usd: float
) -> None:
    for size in (60, 900):
        db.execute(
            """
            INSERT INTO usage_buckets VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (provider, size, start) DO UPDATE SET
                requests = requests + excluded.requests, tokens = tokens + excluded.tokens,
                usd = usd + excluded.usd
            """,
            [provider, size, int(ts // size) * size, requests, tokens, usd],
        )


def begin(db: sqlite3.Connection, *, wait: bool = True) -> None:
    """BEGIN IMMEDIATE, retried with short jittered sleeps while another process writes."""
    deadline = time.monotonic() + LOCK_WAIT_S
    pause = 0.0002
    while True:
        try:
            db.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            busy = "locked" in str(exc) or "busy" in str(exc)
            if busy and not wait:
                raise WouldBlock from None
            if not busy or time.monotonic() > deadline:
                raise
        time.sleep(random.uniform(pause / 2, pause))
        pause = min(pause * 2, 0.004)
