"""Caps, cool-downs, waiting and the response cache, through the real tools and a fake provider."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from offload_mcp.config import Paths
from offload_mcp.server import build_server
from tests.fake_openai import FakeOpenAI

pytestmark = pytest.mark.anyio


def configure(paths: Paths, first: str, second: str, first_extra: str = "") -> None:
    paths.config_file.write_text(
        f"""
[providers.first]
base_url = "{first}"
model = "m1"
trust = "untrusted"
prices = {{ input = 2.0, cached_input = 0.5, output = 8.0 }}
{first_extra}

[providers.second]
base_url = "{second}"
model = "m2"
trust = "untrusted"

[chains]
offload = ["first", "second"]
"""
    )


@pytest.fixture
async def client(
    paths: Paths, first: FakeOpenAI, second: FakeOpenAI, tmp_path: Path
) -> AsyncIterator[Client]:
    configure(paths, first.url, second.url, "caps = { day = { requests = 2 } }")
    async with Client(build_server(paths=paths, cwd=tmp_path)) as connected:
        yield connected


async def call(client: Client, **arguments: Any) -> tuple[bool, str]:
    result = await client.call_tool("offload", {"task": "Say hi.", **arguments})
    return result.is_error, result.content[0].text  # type: ignore[union-attr]


def rows(paths: Paths, columns: str = "provider, outcome") -> list[tuple[Any, ...]]:
    with sqlite3.connect(paths.ledger_file) as conn:
        return conn.execute(f"SELECT {columns} FROM calls ORDER BY id").fetchall()


async def test_capped_provider_fails_over_then_all_capped_error(
    client: Client, first: FakeOpenAI, second: FakeOpenAI, paths: Paths
):
    for n in range(2):
        first.reply(f"first {n}")
        assert (await call(client, text=str(n)))[1].startswith(f"first {n}")
    second.reply("second takes over")
    assert (await call(client, text="2"))[1].startswith("second takes over")
    assert len(first.requests) == 2, "the capped provider was not called"
    second.fail(503, {"error": {"message": "overloaded"}})
    is_error, text = await call(client, text="3")
    assert is_error
    assert "first: day cap reached: 2/2 requests, resets at 00:00" in text
    assert "second: server error (HTTP 503: overloaded)" in text


async def test_rate_limit_sets_a_shared_cooldown(
    client: Client, first: FakeOpenAI, second: FakeOpenAI, paths: Paths
):
    first.fail(429, {"error": {"message": "slow down"}}, headers={"Retry-After": "120"})
    second.reply("a")
    second.reply("b")
    assert (await call(client, text="1"))[1].startswith("a")
    assert (await call(client, text="2"))[1].startswith("b")
    assert len(first.requests) == 1, "a cooling provider is skipped without a request"
    status = (await client.call_tool("status", {})).content[0].text  # type: ignore[union-attr]
    assert "cooling down 2m" in status and "(rate limited by the provider)" in status


async def test_wait_for_the_reset_then_succeed(
    paths: Paths, first: FakeOpenAI, second: FakeOpenAI, tmp_path: Path
):
    configure(paths, first.url, second.url)
    paths.config_file.write_text(
        paths.config_file.read_text().replace(
            'offload = ["first", "second"]', 'offload = ["first"]'
        )
    )
    async with Client(build_server(paths=paths, cwd=tmp_path)) as client:
        first.fail(429, {"error": {"message": "wait a second"}}, headers={"Retry-After": "1"})
        is_error, text = await call(client, text="1")
        assert is_error and "first: rate limited (HTTP 429: wait a second)" in text
        first.reply("after the wait")
        progress: list[str] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append(message or "")

        result = await client.call_tool(
            "offload",
            {"task": "Say hi.", "text": "1", "wait_s": 30},
            progress_callback=on_progress,
        )
        assert not result.is_error
        assert result.content[0].text.startswith("after the wait")  # type: ignore[union-attr]
        assert any("waiting" in message for message in progress)


async def test_wait_is_bounded(client: Client, first: FakeOpenAI, second: FakeOpenAI):
    first.fail(429, {"error": {"message": "come back in an hour"}}, headers={"Retry-After": "3600"})
    second.fail(429, {"error": {"message": "same"}}, headers={"Retry-After": "3600"})
    is_error, text = await call(client, wait_s=5)
    assert is_error and "No provider could run" in text


async def test_cache_hit_bypass_and_cost(client: Client, first: FakeOpenAI, paths: Paths):
    first.reply(
        "cached answer",
        usage={
            "prompt_tokens": 1000,
            "completion_tokens": 100,
            "prompt_tokens_details": {"cached_tokens": 400},
        },
    )
    assert (await call(client, text="same"))[1].startswith("cached answer")
    is_error, text = await call(client, text="same")
    assert not is_error
    assert text == "cached answer\n\n[offload: first (m1), from cache, $0]"
    assert len(first.requests) == 1
    first.reply("fresh answer")
    assert (await call(client, text="same", cache=False))[1].startswith("fresh answer")
    assert len(first.requests) == 2
    recorded = rows(paths, "provider, outcome, cache_hit, usd")
    # 600 fresh x $2 + 400 cached x $0.50 + 100 out x $8, per million
    assert recorded[0][:3] == ("first", "ok", 0)
    assert recorded[0][3] == pytest.approx((600 * 2 + 400 * 0.5 + 100 * 8) / 1e6)
    assert recorded[1] == ("first", "ok", 1, 0.0)
    status = (await client.call_tool("status", {})).content[0].text  # type: ignore[union-attr]
    assert "1 cached" in status
    assert "day 2/2 req" in status, "cache hits do not count against caps"


async def test_different_packets_do_not_share_cache_entries(client: Client, first: FakeOpenAI):
    first.reply("one")
    first.reply("two")
    assert (await call(client, text="a"))[1].startswith("one")
    assert (await call(client, text="b"))[1].startswith("two")


async def test_a_429_inside_the_call_is_waited_out(
    paths: Paths, first: FakeOpenAI, second: FakeOpenAI, tmp_path: Path
):
    configure(paths, first.url, second.url)
    text = paths.config_file.read_text()
    paths.config_file.write_text(text.replace('["first", "second"]', '["first"]'))
    first.fail(429, {"error": {"message": "one moment"}}, headers={"retry-after-ms": "300"})
    first.reply("made it")
    async with Client(build_server(paths=paths, cwd=tmp_path)) as client:
        is_error, answer = await call(client, wait_s=10)
    assert not is_error and answer.startswith("made it")
    assert rows(paths) == [("first", "rate_limited"), ("first", "ok")]


async def test_a_used_up_window_in_the_headers_cools_the_provider(
    client: Client, first: FakeOpenAI, second: FakeOpenAI
):
    first.reply(
        "last request of the minute",
        headers={"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "45s"},
    )
    second.reply("second")
    assert (await call(client, text="1"))[1].startswith("last request of the minute")
    assert (await call(client, text="2"))[1].startswith("second")
    assert len(first.requests) == 1


async def test_a_cancelled_call_settles_its_reservation(
    client: Client, first: FakeOpenAI, paths: Paths
):
    from mcp import MCPError

    first.hang(5)
    with pytest.raises(MCPError):
        await client.call_tool("offload", {"task": "Say hi."}, read_timeout_seconds=0.5)
    for _ in range(50):  # the server settles in a shielded scope right after the cancel
        if rows(paths, "outcome, status") == [("cancelled", "settled")]:
            break
        await anyio.sleep(0.05)
    assert rows(paths, "outcome, status") == [("cancelled", "settled")]
    first.reply("still serving")
    assert (await call(client, text="after"))[1].startswith("still serving")


def test_cooldown_for_rate_limits_and_timeouts():
    from offload_mcp import errors, quota

    assert quota.cooldown_for(errors.RateLimited("p", "x", retry_after_s=0.0), 100.0) == (
        100.0,
        "rate limited by the provider",
    )
    until, _ = quota.cooldown_for(errors.RateLimited("p", "x"), 100.0)  # type: ignore[misc]
    assert until == 100.0 + quota.DEFAULT_RATE_LIMIT_COOLDOWN_S
    assert quota.cooldown_for(errors.ProviderTimeout("p", "x"), 0.0) is not None
    assert quota.cooldown_for(errors.AuthFailed("p", "x"), 0.0) is None
