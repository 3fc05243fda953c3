"""Batch `gemini_research` (entities + fields), in process, against the loopback Gemini API fake."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from offload_mcp import research_batch
from offload_mcp.backends.gemini_cli import SOURCES_ASK
from offload_mcp.config import Paths
from offload_mcp.errors import InvalidRequest
from offload_mcp.server import build_server
from tests.clients import gemini_binary
from tests.fake_gemini import FakeGemini, Web, error_body, quota_body
from tests.loopback import Answer

pytestmark = pytest.mark.anyio

FIELDS = ["founding year", "HQ", "head count"]
QUESTION = "Facts about these companies."


def name(i: int) -> str:
    return f"Company {i:02d}"


def webs(i: int) -> list[Web]:
    return [Web(f"https://example.org/c{i:02d}/{k}", f"site{i}-{k}.org") for k in range(2)]


def row_answer(i: int) -> Answer:
    """A grounded JSON row: the founding year is tied to chunk 1 by the metadata (the model
    claims [2]), HQ only has the model's claim, head count claims a source that does not exist."""
    text = json.dumps(
        {
            "founding year": {"value": 1900 + i, "source": "[2]"},
            "HQ": {"value": f"City {i}", "source": "[2]"},
            "head count": {"value": 100 * i, "source": "[7]"},
        }
    )
    segment = f'"founding year": {{"value": {1900 + i}'
    return FakeGemini.answer_for(
        text, sources=webs(i), supports=[(segment, [1])], queries=[f"company {i}"]
    )


def error_answer(status: int, body: Any) -> Answer:
    return Answer(status, json.dumps(body))


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini() as server:
        yield server


def write_config(paths: Paths, fake: FakeGemini, extra: str = "") -> None:
    paths.config_file.write_text(
        f"""
[providers.gemini-search]
base_url = "{fake.url}/v1beta"
{extra}

[providers.gemini-cli]
command = "{paths.data_dir}/no-such-gemini"
"""
    )


@pytest.fixture
async def client(
    paths: Paths, fake: FakeGemini, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Client]:
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-batch-key")
    write_config(paths, fake)
    async with Client(build_server(paths=paths, cwd=tmp_path)) as connected:
        yield connected


async def batch(
    client: Client, entities: list[str], fields: list[str] = FIELDS, **more: Any
) -> tuple[bool, str, list[tuple[float, float | None, str | None]]]:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    result = await client.call_tool(
        "gemini_research",
        {"question": QUESTION, "entities": entities, "fields": fields, **more},
        progress_callback=on_progress,
    )
    return result.is_error, result.content[0].text, seen  # type: ignore[union-attr]


def files_of(text: str) -> tuple[Path, Path]:
    found = re.search(r"Table: (\S+\.csv) \(CSV\); with sources per cell: (\S+\.json)", text)
    assert found, text
    return Path(found.group(1)), Path(found.group(2))


async def test_partial_failures_are_marked_and_the_rest_succeed(
    client: Client, fake: FakeGemini, paths: Paths
) -> None:
    broken = {
        3: [error_answer(500, error_body(500, "backend exploded"))],
        # a per-minute 429 is waited out (its RetryInfo says 1 s), not marked
        5: [error_answer(429, quota_body("minute", retry="1s")), row_answer(5)],
        7: [FakeGemini.answer_for("not json at all", sources=webs(7))] * 2,
        9: [Answer(200, "<html>proxy error</html>", "text/html")],
    }
    for i in range(1, 11):
        fake.route(name(i), *broken.get(i, [row_answer(i)]))
    error, text, seen = await batch(client, [name(i) for i in range(1, 11)])
    assert not error, text
    assert text.startswith("10 entities x 3 fields: 7 ok, 3 failed; cells 14 sourced, 7 unsourced")
    assert "failed Company 03: " in text and "server error" in text
    assert "Company 05" not in text.split("entity | ")[0]
    assert "failed Company 07: " in text and "failed the schema twice" in text
    assert "failed Company 09: " in text and "not Gemini's JSON" in text
    assert "Company 01 | 1901 (site1-1.org) | City 1 (site1-0.org) | 100 (unsourced)" in text
    assert "gemini-search x7" in text
    assert sum("Company 05" in json.dumps(call.body) for call in fake.calls) == 2

    csv_path, json_path = files_of(text)
    assert csv_path.is_relative_to(paths.data_dir) and json_path.is_relative_to(paths.data_dir)
    with csv_path.open(newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [r["entity"] for r in table] == [name(i) for i in range(1, 11)]
    first = table[0]
    assert first["status"] == "ok" and first["founding year"] == "1901"
    assert first["founding year source"] == webs(1)[1].uri
    assert first["HQ source"] == webs(1)[0].uri
    assert first["head count source"] == "unsourced"
    assert table[2]["status"] == "failed" and "server error" in table[2]["error"]

    saved = json.loads(json_path.read_text())
    assert saved["counts"]["failed"] == 3 and saved["fields"] == FIELDS
    assert saved["rows"][4]["status"] == "ok"
    for row in saved["rows"]:
        i = int(row["entity"].split()[1])
        returned = {w.uri for w in webs(i)}
        assert {s["url"] for s in row["sources"]} <= returned
        for cell in row["cells"].values():
            if row["status"] == "failed":
                assert cell == {"value": None, "status": "failed", "source": None}
            elif cell["source"] is not None:
                assert cell["source"]["url"] in returned
                assert row["sources"][cell["source"]["n"] - 1]["url"] == cell["source"]["url"]
    ok = saved["rows"][0]["cells"]
    assert ok["founding year"]["source"]["basis"] == "grounding"
    assert ok["HQ"]["source"]["basis"] == "answer"
    assert ok["head count"]["status"] == "unsourced"

    assert [p for p, _, _ in seen] == list(range(1, 11))
    assert all(total == 10 for _, total, _ in seen)
    assert any("Company 03: failed" in (m or "") for _, _, m in seen)


async def test_concurrency_is_bounded(client: Client, fake: FakeGemini) -> None:
    fake.model_delay_s = 0.3
    for i in range(1, 11):
        fake.route(name(i), row_answer(i))
    error, text, _ = await batch(client, [name(i) for i in range(1, 11)])
    assert not error, text
    assert text.startswith("10 entities x 3 fields: 10 ok, 0 failed")
    assert 2 <= fake.max_in_flight <= research_batch.DEFAULT_CONCURRENCY


async def test_a_cap_reached_mid_batch_marks_the_rest(
    paths: Paths, fake: FakeGemini, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-batch-key")
    # A rolling window: a day cap resets at midnight Pacific, and a run across it admits all six.
    write_config(paths, fake, 'caps = { "5h" = { requests = 3 } }')
    for i in range(1, 7):
        fake.route(name(i), row_answer(i))
    async with Client(build_server(paths=paths, cwd=tmp_path)) as client:
        error, text, seen = await batch(client, [name(i) for i in range(1, 7)])
    assert not error, text
    assert text.startswith("6 entities x 3 fields: 3 ok, 3 failed")
    # the three refused entities share one reason, so the summary names them on one line
    assert re.search(
        r"failed (Company \d\d, ){2}Company \d\d: gemini-search: 5h cap reached: 3/3", text
    )
    _, json_path = files_of(text)
    rows = json.loads(json_path.read_text())["rows"]
    assert sum("5h cap reached" in r.get("error", "") for r in rows) == 3
    assert len(fake.calls) == 3
    assert len(seen) == 6


async def test_past_the_cap_the_rest_fail_over_to_the_logged_in_cli(
    paths: Paths, fake: FakeGemini, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API's day cap runs out mid-batch; the other entities go down the research chain to
    the real Gemini CLI (pointed at the same fake), whose sources come from its source list."""
    binary = gemini_binary()
    home = tmp_path / "gemini-home"
    (home / ".gemini").mkdir(parents=True)
    auth = {"security": {"auth": {"selectedType": "gemini-api-key"}}}
    (home / ".gemini" / "settings.json").write_text(json.dumps(auth))
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-batch-key")
    paths.config_file.write_text(
        f"""
[providers.gemini-search]
base_url = "{fake.url}/v1beta"
caps = {{ day = {{ requests = 2 }} }}

[providers.gemini-cli]
command = "{binary}"
base_url = "{fake.url}"
env = {{ GEMINI_CLI_HOME = "{home}" }}
"""
    )
    cli_text = (
        json.dumps(
            {
                "founding year": {"value": 1999, "source": "[4]"},
                "HQ": {"value": "Cli City", "source": "[9]"},
                "head count": {"value": None, "source": None},
            }
        )
        + "\n\nSources:\n[4] CLI registry - https://cli.example/registry\n"
        + "[9] CLI news - https://cli.example/news"
    )
    # only the CLI's prompt carries SOURCES_ASK, so its calls take these answers
    fake.route(SOURCES_ASK.strip()[-40:], FakeGemini.answer_for(cli_text))
    for i in range(1, 4):
        fake.route(name(i), row_answer(i))
    async with Client(build_server(paths=paths, cwd=tmp_path)) as client:
        error, text, seen = await batch(client, [name(i) for i in range(1, 4)])
    assert not error, text
    assert text.startswith("3 entities x 3 fields: 3 ok, 0 failed")
    assert "gemini-search x2" in text and "gemini-cli x1" in text
    _, json_path = files_of(text)
    rows = json.loads(json_path.read_text())["rows"]
    by_cli = [r for r in rows if r["provider"] == "gemini-cli"]
    assert len(by_cli) == 1 and len(seen) == 3
    for row in by_cli:
        cells = row["cells"]
        assert [s["url"] for s in row["sources"]] == [
            "https://cli.example/registry",
            "https://cli.example/news",
        ]
        assert cells["founding year"]["value"] == 1999
        assert cells["founding year"]["source"]["url"] == "https://cli.example/registry"
        assert cells["HQ"]["source"] == {
            "n": 2,
            "title": "CLI news",
            "url": "https://cli.example/news",
            "basis": "answer",
        }
        assert cells["head count"] == {"value": None, "status": "not_found", "source": None}
    for row in rows:
        if row["provider"] == "gemini-search":
            i = int(row["entity"].split()[1])
            assert row["cells"]["founding year"]["value"] == 1900 + i


async def test_a_daily_quota_mid_batch_cools_the_provider_for_the_rest(
    client: Client, fake: FakeGemini
) -> None:
    fake.route(name(1), error_answer(429, quota_body("day")))
    for i in range(2, 9):
        fake.route(name(i), row_answer(i))
    error, text, _ = await batch(client, [name(i) for i in range(1, 9)])
    assert not error, text
    _, json_path = files_of(text)
    rows = json.loads(json_path.read_text())["rows"]
    assert "daily free-tier quota used up" in rows[0]["error"]
    cooled = [r for r in rows[1:] if r["status"] == "failed"]
    assert all("gemini-search: cooling down" in r["error"] for r in cooled)
    # only the entities already on their way when the quota ran out reached the API
    assert len(fake.calls) == 8 - len(cooled)
    assert sum(r["status"] == "ok" for r in rows) == 7 - len(cooled)


async def test_duplicates_are_dropped_and_cached_rows_cost_nothing(
    client: Client, fake: FakeGemini
) -> None:
    fake.route(name(1), row_answer(1))
    fake.route(name(2), row_answer(2))
    entities = [name(1), name(2), f" {name(1)} ", ""]
    error, text, _ = await batch(client, entities)
    assert not error, text
    assert (
        "2 entities x 3 fields: 2 ok" in text and "(2 duplicate or blank entities dropped.)" in text
    )
    error, text, _ = await batch(client, [name(1), name(2)])
    assert not error, text
    assert text.startswith("2 entities x 3 fields: 2 ok") and "0 tokens" in text
    assert len(fake.calls) == 2
    # the cache keeps each entity's grounding, so cached cells keep their sources
    _, json_path = files_of(text)
    first = json.loads(json_path.read_text())["rows"][0]
    assert first["cached"] is True
    assert [s["url"] for s in first["sources"]] == [webs(1)[1].uri, webs(1)[0].uri]
    assert first["cells"]["founding year"]["source"]["basis"] == "grounding"


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"entities": [], "fields": ["HQ"]}, "entities: give at least one entity"),
        ({"entities": ["", "  "], "fields": ["HQ"]}, "entities: give at least one entity"),
        ({"entities": ["Acme"], "fields": []}, "fields: name what to find"),
        ({"entities": ["Acme"], "fields": [" "]}, "fields: name what to find"),
        ({"entities": [f"E{i}" for i in range(201)], "fields": ["HQ"]}, "at most 200 per batch"),
        ({"entities": ["Acme"], "fields": [f"f{i}" for i in range(21)]}, "fields: at most 20"),
        ({"entities": ["x" * 201], "fields": ["HQ"]}, "over 200 characters"),
        (
            {"entities": ["Acme"], "fields": ["HQ"], "schema": {"type": "object"}},
            "schema or entities+fields, not both",
        ),
        ({"entities": ["Acme"], "fields": ["HQ"], "urls": ["ftp://x"]}, "not an http(s) URL"),
        ({"entities": ["Acme"], "fields": ["HQ"], "provider": "nope"}, "unknown provider"),
    ],
)
async def test_bad_arguments_say_what_to_fix(
    client: Client, fake: FakeGemini, arguments: dict[str, Any], expected: str
) -> None:
    result = await client.call_tool("gemini_research", {"question": QUESTION, **arguments})
    assert result.is_error
    assert expected in result.content[0].text  # type: ignore[union-attr]
    assert fake.calls == []


def test_argument_limits_are_documented_constants() -> None:
    names, fields = research_batch.check_arguments(["A", "a", "B"], ["HQ", "hq "])
    assert names == ["A", "B"] and fields == ["HQ"]
    with pytest.raises(InvalidRequest):
        research_batch.check_arguments(["A"] * 0, ["HQ"])
