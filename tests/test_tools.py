"""The `offload` and `status` tools end to end, in process, against loopback fake providers."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from offload_mcp.config import Paths
from offload_mcp.server import build_server, compact_schema
from tests.fake_openai import FakeOpenAI, closed_port_url

pytestmark = pytest.mark.anyio


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "notes.txt").write_text("The meeting moved to Tuesday.\n")
    return root


def write_config(paths: Paths, first_url: str, second_url: str, extra: str = "") -> None:
    paths.config_file.write_text(
        f"""
[providers.first]
base_url = "{first_url}"
model = "m1"
trust = "untrusted"
key_env = "FIRST_KEY"
prices = {{ input = 1.0, output = 2.0 }}

[providers.second]
base_url = "{second_url}"
model = "m2"
trust = "untrusted"
key_env = "SECOND_KEY"

[chains]
offload = ["first", "second"]
{extra}
"""
    )


@pytest.fixture
async def client(
    paths: Paths,
    first: FakeOpenAI,
    second: FakeOpenAI,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Client]:
    monkeypatch.setenv("FIRST_KEY", "sk-first-secret-value")
    monkeypatch.setenv("SECOND_KEY", "sk-second-secret-value")
    write_config(paths, first.url, second.url)
    async with Client(build_server(paths=paths, cwd=project)) as connected:
        yield connected


async def call(client: Client, **arguments: Any) -> tuple[bool, str]:
    result = await client.call_tool("offload", arguments)
    assert result.structured_content is None, "prose tools must not be wrapped for Claude Code"
    text = result.content[0].text  # type: ignore[union-attr]
    return result.is_error, text


def ledger_rows(paths: Paths) -> list[tuple[str, str]]:
    with sqlite3.connect(paths.ledger_file) as conn:
        return conn.execute("SELECT provider, outcome FROM calls ORDER BY id").fetchall()


async def test_lists_tools_with_small_schemas(client: Client):
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert {"offload", "status"} <= set(tools)
    assert tools["offload"].input_schema["required"] == ["task"]
    assert tools["offload"].output_schema is None
    # as sent: the SDK leaves unset (None) fields out of the JSON and writes it compact
    sent = [t.model_dump(mode="json", exclude_none=True) for t in tools.values()]
    assert len(json.dumps(sent, separators=(",", ":"))) < 6000


async def test_text_answer_with_footer(client: Client, first: FakeOpenAI, paths: Paths):
    first.reply("Tuesday.", usage={"prompt_tokens": 120, "completion_tokens": 3})
    is_error, text = await call(client, task="When is the meeting?", files=["notes.txt"])
    assert not is_error
    answer, footer = text.split("\n\n")
    assert answer == "Tuesday."
    assert footer.startswith("[offload: first (fake-model), 120->3 tokens, $0.0001")
    body = first.requests[-1].body
    assert body["model"] == "m1"
    user = body["messages"][1]["content"]
    assert "When is the meeting?" in user and "The meeting moved to Tuesday." in user
    assert "## File: notes.txt" in user
    assert first.requests[-1].headers["authorization"] == "Bearer sk-first-secret-value"
    assert ledger_rows(paths) == [("first", "ok")]


async def test_json_schema_answer_is_validated(client: Client, first: FakeOpenAI):
    schema = {"type": "object", "properties": {"day": {"type": "string"}}, "required": ["day"]}
    first.reply('{"day": "Tuesday"}')
    is_error, text = await call(
        client, task="Extract the day.", text="moved to Tuesday", schema=schema
    )
    assert not is_error
    assert text.split("\n\n")[0] == '{"day":"Tuesday"}'
    sent = first.requests[-1].body
    assert sent["response_format"]["json_schema"]["schema"] == schema
    assert sent["temperature"] == 0


async def test_labels(client: Client, first: FakeOpenAI):
    first.reply('{"label": "bug"}')
    is_error, text = await call(client, task="Classify.", text="it crashes", labels=["bug", "idea"])
    assert not is_error and text.startswith("bug\n\n")
    enum = first.requests[-1].body["response_format"]["json_schema"]["schema"]
    assert enum["properties"]["label"]["enum"] == ["bug", "idea"]


async def test_validation_retry_on_same_provider(client: Client, first: FakeOpenAI, paths: Paths):
    first.reply("Sure! The label is probably a bug.")
    first.reply('{"label": "bug"}')
    is_error, text = await call(client, task="Classify.", text="x", labels=["bug", "idea"])
    assert not is_error and "after 1 retry" in text
    retry_messages = first.requests[-1].body["messages"]
    assert retry_messages[-2] == {
        "role": "assistant",
        "content": "Sure! The label is probably a bug.",
    }
    assert "rejected" in retry_messages[-1]["content"]
    assert ledger_rows(paths) == [("first", "invalid_output"), ("first", "ok")]


async def test_invalid_twice_fails_over(client: Client, first: FakeOpenAI, second: FakeOpenAI):
    first.reply("nope")
    first.reply("still nope")
    second.reply('{"label": "idea"}')
    is_error, text = await call(client, task="Classify.", text="x", labels=["bug", "idea"])
    assert not is_error and text.startswith("idea\n\n[offload: second")


@pytest.mark.parametrize(
    "break_first",
    [
        lambda fake: fake.fail(
            429, {"error": {"message": "slow down"}}, headers={"Retry-After": "7"}
        ),
        lambda fake: fake.fail(500, {"error": {"message": "upstream exploded"}}),
        lambda fake: fake.raw(200, "<html>not json</html>", "text/html"),
        lambda fake: fake.hang(5),
    ],
    ids=["429", "500", "malformed", "timeout"],
)
async def test_failover_to_second_provider(
    client: Client, first: FakeOpenAI, second: FakeOpenAI, paths: Paths, break_first: Any
):
    break_first(first)
    second.reply("from second")
    is_error, text = await call(client, task="Say hi.", timeout_s=0.5)
    assert not is_error, text
    assert text.startswith("from second\n\n[offload: second")
    outcomes = ledger_rows(paths)
    assert outcomes[-1] == ("second", "ok")
    assert outcomes[0][0] == "first" and outcomes[0][1] != "ok"


async def test_connection_refused_fails_over(
    paths: Paths, second: FakeOpenAI, project: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("FIRST_KEY", "k1")
    monkeypatch.setenv("SECOND_KEY", "k2")
    write_config(paths, closed_port_url(), second.url)
    second.reply("up")
    async with Client(build_server(paths=paths, cwd=project)) as client:
        is_error, text = await call(client, task="Say hi.")
    assert not is_error and text.startswith("up")
    assert ledger_rows(paths)[0] == ("first", "down")


async def test_every_provider_failing_lists_each_reason(
    client: Client, first: FakeOpenAI, second: FakeOpenAI
):
    first.fail(429, {"error": {"message": "daily limit"}}, headers={"Retry-After": "3600"})
    second.fail(401, {"error": {"message": "bad key sk-second-secret-value"}})
    is_error, text = await call(client, task="Say hi.")
    assert is_error
    assert "No provider could run this offload packet" in text
    assert "- first: rate limited" in text and "Retry after 3600 s" in text
    assert "- second: the key was refused" in text and "offload-mcp keys set second" in text
    assert "sk-second-secret-value" not in text


async def test_missing_keys_say_how_to_fix(client: Client, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("FIRST_KEY")
    monkeypatch.delenv("SECOND_KEY")
    is_error, text = await call(client, task="Say hi.")
    assert is_error
    assert "first: no API key. Fix: run 'offload-mcp keys set first' or set FIRST_KEY." in text


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"task": "   "}, "task: must not be blank"),
        ({"task": ""}, "at least 1 character"),
        ({"task": "x", "provider": "nope"}, "unknown provider 'nope'"),
        ({"task": "x", "files": ["../outside.txt"]}, "outside the allowed roots"),
        ({"task": "x", "files": ["missing.txt"]}, "does not exist"),
        ({"task": "x", "schema": {"type": 12}}, "not a valid JSON Schema"),
        ({"task": "x", "labels": ["a", "b"], "schema": {"type": "object"}}, "not both"),
        ({"task": "x", "labels": ["a"]}, "at least two"),
        ({"task": "x", "max_output_tokens": -5}, "greater than or equal to 0"),
        ({"task": "x", "timeout_s": 99999}, "less than or equal to 3600"),
    ],
)
async def test_bad_arguments_get_clear_errors(
    client: Client, first: FakeOpenAI, arguments: dict[str, Any], message: str
):
    is_error, text = await call(client, **arguments)
    assert is_error and message in text
    assert first.requests == [], "nothing may be sent for a bad packet"
    first.reply("still alive")
    is_error, text = await call(client, task="ping")
    assert not is_error and text.startswith("still alive\n\n[offload: first")


async def test_forced_provider_skips_the_chain(
    client: Client, second: FakeOpenAI, first: FakeOpenAI
):
    second.reply("chosen")
    is_error, text = await call(client, task="x", provider="second")
    assert not is_error and text.startswith("chosen")
    assert first.requests == []


async def test_status_reports_use_and_problems(
    client: Client, first: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
):
    first.reply("ok", usage={"prompt_tokens": 10, "completion_tokens": 2})
    await call(client, task="x")
    monkeypatch.delenv("SECOND_KEY")
    result = await client.call_tool("status", {})
    text = result.content[0].text  # type: ignore[union-attr]
    assert not result.is_error
    first_line = next(line for line in text.splitlines() if line.startswith("- first"))
    assert "reachable" in first_line and "today 1/1 ok, 12 tok" in first_line
    assert "- second [offload] (untrusted): no API key" in text
    assert len(text) < 2000


async def test_unexpected_backend_crash_is_reported_and_survived(paths: Paths, project: Path):
    class Exploding:
        def __init__(self, provider: Any, key: Any) -> None:
            self.provider = provider

        async def complete(self, request: Any) -> Any:
            raise RuntimeError("kaboom")

        async def health(self) -> Any:
            raise RuntimeError("kaboom")

        async def aclose(self) -> None:
            pass

    paths.config_file.write_text(
        '[providers.local]\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\n'
        '[chains]\noffload = ["local"]\n'
    )
    async with Client(build_server(paths=paths, cwd=project, backend_factory=Exploding)) as client:
        is_error, text = await call(client, task="x")
        assert is_error and "internal error in offload (RuntimeError)" in text
        assert (await client.call_tool("status", {})).is_error
        assert (await client.list_tools()).tools


async def test_prompts_expose_the_packet_templates(client: Client):
    prompts = {p.name: p for p in (await client.list_prompts()).prompts}
    assert {"offload", "system"} <= set(prompts)
    rendered = await client.get_prompt("offload", {"task": "T", "inputs": "", "output_rules": "R"})
    assert "## Task\nT" in rendered.messages[0].content.text  # type: ignore[union-attr]


def test_compact_schema_keeps_meaning_and_property_names():
    schema = {
        "title": "xArguments",
        "type": "object",
        "properties": {
            "title": {"title": "Title", "type": "string", "default": ""},
            "flag": {"type": "boolean", "default": False},
            "on": {"type": "boolean", "default": True},
            "schema": {"type": "object", "additionalProperties": True, "default": {}},
            "n": {"type": "integer", "default": 3},
        },
    }
    assert compact_schema(schema) == {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "flag": {"type": "boolean", "default": False},
            "on": {"type": "boolean", "default": True},
            "schema": {"type": "object"},
            "n": {"type": "integer", "default": 3},
        },
    }


async def test_listed_schemas_are_compact(client: Client):
    listed = json.dumps([t.input_schema for t in (await client.list_tools()).tools])
    assert '"title"' not in listed and '"default": ""' not in listed
