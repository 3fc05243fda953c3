"""`status` and `usage` around window boundaries, with a fake clock on a real ledger."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from offload_mcp import status as status_module
from offload_mcp.cli import cli
from offload_mcp.config import Paths, build_settings
from offload_mcp.dispatch import Dispatcher
from offload_mcp.keys import KeyStore
from offload_mcp.ledger import CallRecord, Ledger
from offload_mcp.quota import cap_windows

pytestmark = pytest.mark.anyio
LA = "America/Los_Angeles"


class Clock:
    def __init__(self, when: datetime) -> None:
        self.now = when.timestamp()

    def __call__(self) -> float:
        return self.now


def dispatcher(paths: Paths, clock: Clock) -> Dispatcher:
    settings = build_settings(
        {
            "providers": {
                "capped": {
                    "base_url": "http://127.0.0.1:9/v1",
                    "model": "m",
                    "reset_tz": LA,
                    "caps": {"day": {"requests": 3}, "5h": {"tokens": 1000}},
                }
            },
            "chains": {"offload": ["capped"]},
        }
    )
    ledger = Ledger(paths.ledger_file, clock=clock)
    return Dispatcher(settings=settings, keys=KeyStore(paths.config_dir), ledger=ledger)


def use(d: Dispatcher, tokens: int) -> None:
    reserved = d.ledger.reserve(
        provider="capped",
        tool="offload",
        model="m",
        windows=cap_windows(d.settings.providers["capped"], d.clock()),
        est_input=tokens,
        est_output=0,
        est_usd=0.0,
        ttl_s=60,
    )
    assert isinstance(reserved, int)
    d.ledger.settle(reserved, outcome="ok", model="m", input_tokens=tokens)


async def test_day_window_resets_at_the_providers_midnight(paths: Paths):
    # 23:59 in Los Angeles = 07:59 UTC next day (PST)
    clock = Clock(datetime(2026, 11, 23, 7, 59, tzinfo=UTC))
    d = dispatcher(paths, clock)
    for _ in range(3):
        use(d, 100)
    report = await status_module.collect(d, check_health=False)
    row = report.providers[0]
    assert [(w.window, w.requests, w.tokens) for w in row.windows] == [
        ("day", 3, 300),
        ("5h", 3, 300),
    ]
    text = status_module.short_text(report)
    assert "day 3/3 req (resets at" in text and "(in 1m00s))" in text
    clock.now += 120  # 00:01 in Los Angeles: a new day there, still the same 5 hours
    report = await status_module.collect(d, check_health=False)
    assert [(w.window, w.requests, w.tokens) for w in report.providers[0].windows] == [
        ("day", 0, 0),
        ("5h", 3, 300),
    ]
    clock.now += 5 * 3600  # the rolling window has moved past the calls
    report = await status_module.collect(d, check_health=False)
    assert [w.tokens for w in report.providers[0].windows] == [0, 0]
    await d.aclose()


def test_usage_command_groups_and_formats(paths: Paths):
    ledger = Ledger(paths.ledger_file)
    now = datetime.now(UTC).timestamp()
    for provider, tool, model, tokens in (
        ("groq", "offload", "llama", 10),
        ("groq", "offload", "llama", 20),
        ("openrouter-glm", "offload", "glm", 5),
    ):
        ledger.record(
            CallRecord(
                ts=now,
                tool=tool,
                provider=provider,
                model=model,
                outcome="ok",
                input_tokens=tokens,
                usd=0.25,
            )
        )
    ledger.record(
        CallRecord(
            ts=now - 40 * 86400,
            tool="offload",
            provider="groq",
            model="llama",
            outcome="ok",
            input_tokens=1000,
        )
    )
    ledger.close()
    runner = CliRunner()
    result = runner.invoke(cli, ["usage", "--by", "provider", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["provider"], r["calls"], r["input_tokens"]) for r in rows] == [
        ("groq", 2, 30),
        ("openrouter-glm", 1, 5),
    ]
    result = runner.invoke(cli, ["usage", "--since", "60d", "--by", "model", "--csv"])
    parsed = list(csv.DictReader(io.StringIO(result.output)))
    assert {r["model"]: r["input_tokens"] for r in parsed} == {"glm": "5", "llama": "1030"}
    result = runner.invoke(cli, ["usage"])
    assert result.exit_code == 0 and "total" in result.output
    result = runner.invoke(cli, ["usage", "--since", "last tuesday"])
    assert result.exit_code == 2 and "use 7d, 12h, 30m or a date" in result.output


def test_status_command_json_without_network(paths: Paths, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GROQ_API_KEY", "gsk-test-secret")
    result = CliRunner().invoke(cli, ["status", "--json", "--no-check"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    by_name = {row["name"]: row for row in report["providers"]}
    assert by_name["groq"]["key"] == "env GROQ_API_KEY" and by_name["groq"]["problem"] is None
    assert "no API key" in by_name["cerebras"]["problem"]
    assert "gsk-test-secret" not in result.output


def test_status_command_reports_a_bad_config(paths: Paths):
    paths.config_file.write_text('[providers.groq]\ntrust = "maybe"\n')
    result = CliRunner().invoke(cli, ["status"])
    assert result.exit_code == 2
    assert "line 2" in result.output and "providers.groq.trust" in result.output
