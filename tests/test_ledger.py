import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from offload_mcp import migrations
from offload_mcp.config import CapLimit
from offload_mcp.ledger import (
    Cached,
    CacheEntry,
    CallRecord,
    CapWindow,
    Ledger,
    Refusal,
    WouldBlock,
)
from offload_mcp.migrations import LedgerTooNew, migrate


class Clock:
    def __init__(self, now: float = 1_000_020.0) -> None:  # on a minute boundary
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(tmp_path: Path, clock: Clock):
    ledger = Ledger(tmp_path / "sub" / "ledger.db", clock=clock)
    yield ledger
    ledger.close()


def reserve(
    ledger: Ledger,
    windows=(),
    *,
    est_input=10,
    est_output=5,
    est_usd=0.0,
    ttl_s=60.0,
    cache_key=None,
):
    return ledger.reserve(
        provider="p",
        tool="offload",
        model="m",
        windows=list(windows),
        est_input=est_input,
        est_output=est_output,
        est_usd=est_usd,
        ttl_s=ttl_s,
        cache_key=cache_key,
    )


def test_migrate_blank_database():
    db = Database(memory=True)
    migrate(db)
    assert db["calls"].columns_dict == {
        "id": int,
        "ts": float,
        "tool": str,
        "provider": str,
        "model": str,
        "outcome": str,
        "input_tokens": int,
        "cached_tokens": int,
        "output_tokens": int,
        "usd": float,
        "latency_ms": float,
        "retries": int,
        "failovers": int,
        "packet_hash": str,
        "status": str,
        "expires_at": float,
        "counted": int,
        "cache_hit": int,
        "privacy": str,
        "content": str,
    }
    assert set(db.table_names()) >= {"calls", "cooldowns", "cache", "_offload_migrations"}
    applied = [row["name"] for row in db["_offload_migrations"].rows]
    assert applied == [fn.__name__ for fn in migrations.MIGRATIONS]
    migrate(db)  # idempotent
    assert db["_offload_migrations"].count == len(migrations.MIGRATIONS)


def test_migrates_a_database_from_the_first_version():
    db = Database(memory=True)
    db.execute("CREATE TABLE _offload_migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    migrations.m001_calls(db)
    db.execute("INSERT INTO _offload_migrations VALUES ('m001_calls', 'then')")
    db.execute(
        "INSERT INTO calls (ts, tool, provider, model, outcome) VALUES (1, 't', 'p', 'm', '')"
    )
    migrate(db)
    row = next(db["calls"].rows)
    assert (row["status"], row["counted"], row["cache_hit"]) == ("settled", 1, 0)


def test_cache_grounding_migration_drops_answers_with_inline_grounding():
    db = Database(memory=True)
    db.execute("CREATE TABLE _offload_migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    for fn in migrations.MIGRATIONS[:3]:
        fn(db)
        db.execute("INSERT INTO _offload_migrations VALUES (?, 'then')", [fn.__name__])
    inline = 'Acme.\n\n<!-- offload:grounding {"sources": []} -->'
    for key, answer in (("old", inline), ("plain", "Plain answer.")):
        db.execute("INSERT INTO cache VALUES (?, 'p', 'm', ?, 1, 9e9)", [key, answer])
    migrate(db)
    assert [(r["key"], r["grounding"]) for r in db["cache"].rows] == [("plain", None)]


def test_newer_database_is_refused_untouched(tmp_path: Path):
    path = tmp_path / "ledger.db"
    Ledger(path).record(CallRecord(ts=1.0, tool="t", provider="p", model="m", outcome="ok"))
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO _offload_migrations VALUES ('m999_from_the_future', 'x')")
    with pytest.raises(LedgerTooNew, match=r"newer offload-mcp.*m999_from_the_future"):
        Ledger(path).totals_since(0)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM calls").fetchone() == (1,)


def test_failed_migration_rolls_back(monkeypatch: pytest.MonkeyPatch):
    def m003_broken(db: Database) -> None:
        db.execute("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("boom")

    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, m003_broken])
    db = Database(memory=True)
    with pytest.raises(RuntimeError):
        migrate(db)
    assert "half_done" not in db.table_names()
    assert "calls" not in db.table_names()


def test_reserve_then_settle(ledger: Ledger, clock: Clock, tmp_path: Path):
    rid = reserve(ledger, est_input=100, est_output=50, est_usd=0.5)
    assert isinstance(rid, int)
    assert ledger.totals_since(0) == {}, "an unsettled reservation is not a finished call"
    ledger.settle(
        rid,
        outcome="ok",
        model="m-real",
        input_tokens=40,
        cached_tokens=10,
        output_tokens=7,
        usd=0.01,
        latency_ms=12.5,
    )
    totals = ledger.totals_since(0)["p"]
    assert (totals.calls, totals.ok, totals.input_tokens, totals.output_tokens) == (1, 1, 40, 7)
    assert totals.usd == pytest.approx(0.01)
    mode = sqlite3.connect(tmp_path / "sub" / "ledger.db").execute("PRAGMA journal_mode")
    assert mode.fetchone() == ("wal",)


def window(kind="day", start=0.0, reset=2_000_000.0, **limit) -> CapWindow:
    return CapWindow(window=kind, start=start, reset=reset, limit=CapLimit(**limit))


def test_request_cap_counts_reservations_in_flight(ledger: Ledger):
    caps = [window(requests=2)]
    assert isinstance(reserve(ledger, caps), int)
    assert isinstance(reserve(ledger, caps), int)
    refusal = reserve(ledger, caps)
    assert isinstance(refusal, Refusal)
    assert refusal.reason == "day cap reached: 2/2 requests"
    assert refusal.retry_at == 2_000_000.0


def test_token_and_usd_caps_use_estimates_then_actuals(ledger: Ledger):
    caps = [window(tokens=100, usd=1.0)]
    rid = reserve(ledger, caps, est_input=60, est_output=30, est_usd=0.1)
    assert isinstance(reserve(ledger, caps, est_input=20, est_output=20), Refusal)
    ledger.settle(rid, outcome="ok", model="m", input_tokens=20, output_tokens=5, usd=0.9)
    assert isinstance(reserve(ledger, caps, est_input=20, est_output=20, est_usd=0.05), int)
    refusal = reserve(ledger, caps, est_input=1, est_output=1, est_usd=0.2)
    assert isinstance(refusal, Refusal) and "USD" in refusal.reason


def test_failed_requests_the_provider_did_not_serve_do_not_count(ledger: Ledger):
    caps = [window(requests=1)]
    rid = reserve(ledger, caps)
    ledger.settle(rid, outcome="rate_limited", model="m")
    rid = reserve(ledger, caps)
    assert isinstance(rid, int)
    ledger.settle(rid, outcome="bad_response", model="m")
    assert isinstance(reserve(ledger, caps), Refusal)


def test_stale_reservations_expire(ledger: Ledger, clock: Clock):
    caps = [window(requests=1)]
    assert isinstance(reserve(ledger, caps, ttl_s=30), int)
    assert isinstance(reserve(ledger, caps), Refusal)
    clock.now += 31
    assert isinstance(reserve(ledger, caps), int)


def test_windows_only_count_their_own_span(ledger: Ledger, clock: Clock):
    rid = reserve(ledger)
    ledger.settle(rid, outcome="ok", model="m")
    clock.now += 60
    minute = window("minute", start=clock.now, reset=clock.now + 60, requests=1)
    assert isinstance(reserve(ledger, [minute]), int)
    assert isinstance(reserve(ledger, [minute]), Refusal)
    day = window("day", start=clock.now - 3600, requests=2)
    assert isinstance(reserve(ledger, [day]), Refusal), "both calls are in the day"


def test_rolling_window_reset_is_when_the_oldest_use_ages_out(ledger: Ledger, clock: Clock):
    first_ts = clock.now
    rid = reserve(ledger)
    ledger.settle(rid, outcome="ok", model="m")
    clock.now += 3600
    rolling = window("5h", start=clock.now - 5 * 3600, reset=None, requests=1)
    refusal = reserve(ledger, [rolling])
    assert isinstance(refusal, Refusal)
    # it frees up when the oldest use's minute leaves the window
    assert refusal.retry_at == first_ts + 60 + 5 * 3600


def test_cooldowns_are_shared_and_keep_the_later_deadline(ledger: Ledger, clock: Clock, tmp_path):
    ledger.set_cooldown("p", clock.now + 100, "rate limited")
    ledger.set_cooldown("p", clock.now + 50, "shorter")
    other = Ledger(tmp_path / "sub" / "ledger.db", clock=clock)
    refusal = reserve(other)
    assert isinstance(refusal, Refusal)
    assert refusal.reason == "cooling down: rate limited"
    assert refusal.retry_at == clock.now + 100
    assert other.cooldowns() == {"p": (clock.now + 100, "rate limited")}
    clock.now += 101
    assert isinstance(reserve(other), int)
    assert other.cooldowns() == {}
    other.close()


def test_cache_is_filled_by_settle_and_served_by_reserve(ledger: Ledger, clock: Clock):
    caps = [window(requests=1)]
    rid = reserve(ledger, caps)
    assert isinstance(rid, int)
    ledger.settle(rid, outcome="ok", model="m", cache=CacheEntry("k", "answer", ttl_s=10))
    hit = reserve(ledger, caps, cache_key="k")
    assert hit == Cached("answer"), "a hit is served even when the cap is used up"
    assert isinstance(reserve(ledger, cache_key="other"), int)
    clock.now += 11
    assert isinstance(reserve(ledger, cache_key="k"), int), "the entry has expired"
    totals = ledger.totals_since(0)["p"]
    assert totals.cache_hits == 1


def test_usage_groups(ledger: Ledger, clock: Clock):
    for provider, tool in (("a", "offload"), ("a", "offload"), ("b", "local_classify")):
        ledger.record(
            CallRecord(
                ts=clock.now,
                tool=tool,
                provider=provider,
                model="m",
                outcome="ok",
                input_tokens=3,
                usd=0.5,
            )
        )
    ledger.record(
        CallRecord(ts=clock.now, tool="offload", provider="a", model="m", outcome="ok", cache_hit=1)
    )
    rows = ledger.usage(0, ["provider"])
    assert [(r["provider"], r["calls"], r["cache_hits"], r["input_tokens"]) for r in rows] == [
        ("a", 3, 1, 6),
        ("b", 1, 0, 3),
    ]
    assert ledger.usage(0, ["day", "tool"])[0]["day"]
    assert ledger.totals_since(0)["a"].calls == 2, "cache hits are not provider calls"


def test_without_waiting_raises_instead_of_waiting(ledger: Ledger, tmp_path: Path):
    with pytest.raises(WouldBlock):  # not opened yet: opening migrates, which may wait
        ledger.without_waiting(reserve, ledger)
    assert isinstance(reserve(ledger), int)
    assert isinstance(ledger.without_waiting(reserve, ledger), int)
    other = sqlite3.connect(tmp_path / "sub" / "ledger.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    with pytest.raises(WouldBlock):
        ledger.without_waiting(reserve, ledger)
    other.execute("ROLLBACK")
    other.close()
    assert isinstance(ledger.without_waiting(reserve, ledger), int)
