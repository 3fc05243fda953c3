"""GeminiBackend (google-genai) against a loopback fake of the Generative Language API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from offload_mcp import errors
from offload_mcp.backends import create_backend
from offload_mcp.backends.gemini import GeminiBackend, split_base_url
from offload_mcp.config import ProviderConfig, build_settings
from offload_mcp.packets import Completion, CompletionRequest, Grounding, Message, Source
from tests.fake_gemini import FakeGemini, Web

pytestmark = pytest.mark.anyio

KEY = "AIza-test-key-0123456789"
SCHEMA = {"type": "object", "properties": {"year": {"type": "integer"}}, "required": ["year"]}
ANSWER = "Acme was founded in 1947. It employs 1,200 people. Its HQ is in Ohio."
SOURCES = [
    Web("https://vertexaisearch.cloud.google.com/grounding-api-redirect/AAA", "acme.com"),
    Web("https://vertexaisearch.cloud.google.com/grounding-api-redirect/BBB", "wikipedia.org"),
    Web("https://vertexaisearch.cloud.google.com/grounding-api-redirect/CCC", "news.example"),
]


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini() as server:
        yield server


def provider(url: str, **fields: Any) -> ProviderConfig:
    settings = build_settings({})
    base = settings.providers["gemini-search"].model_dump()
    return ProviderConfig(**base | {"base_url": f"{url}/v1beta"} | fields)


def request(schema: dict[str, Any] | None = None, timeout_s: float = 5.0) -> CompletionRequest:
    return CompletionRequest(
        messages=(Message("system", "Be brief."), Message("user", "When was Acme founded?")),
        max_output_tokens=256,
        timeout_s=timeout_s,
        json_schema=schema,
    )


async def complete(config: ProviderConfig, req: CompletionRequest | None = None) -> Completion:
    backend = create_backend(config, KEY)
    assert isinstance(backend, GeminiBackend)
    try:
        return await backend.complete(req or request())
    finally:
        await backend.aclose()


async def failure(config: ProviderConfig, req: CompletionRequest | None = None) -> Exception:
    with pytest.raises(errors.ProviderError) as caught:
        await complete(config, req)
    return caught.value


async def test_grounded_answer_numbers_sources_by_first_citation(fake: FakeGemini) -> None:
    fake.reply(
        ANSWER,
        sources=SOURCES,
        supports=[("Acme was founded in 1947.", [1]), ("It employs 1,200 people.", [2, 1])],
        queries=["acme founding year", "acme employees"],
        usage={
            "promptTokenCount": 30,
            "candidatesTokenCount": 20,
            "thoughtsTokenCount": 7,
            "toolUsePromptTokenCount": 100,
        },
    )
    done = await complete(provider(fake.url))
    assert done.text == ANSWER
    grounding = done.grounding
    assert grounding is not None
    # chunk 1 is cited first, so it is source 1; the uncited chunk 0 comes last
    assert grounding.sources == (
        Source("wikipedia.org", SOURCES[1].uri),
        Source("news.example", SOURCES[2].uri),
        Source("acme.com", SOURCES[0].uri),
    )
    assert grounding.cites == (
        ("Acme was founded in 1947.", (1,)),
        ("It employs 1,200 people.", (2, 1)),
    )
    assert grounding.queries == ("acme founding year", "acme employees")
    assert (done.usage.input_tokens, done.usage.output_tokens) == (130, 27)
    assert done.model == "gemini-2.5-flash"
    call = fake.calls[0]
    assert call.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert call.headers["x-goog-api-key"] == KEY
    assert call.body["tools"] == [{"googleSearch": {}}]
    assert call.body["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    assert call.body["contents"] == [
        {"role": "user", "parts": [{"text": "When was Acme founded?"}]}
    ]
    assert call.body["generationConfig"]["maxOutputTokens"] == 256
    assert call.body["generationConfig"]["temperature"] == 1.0


async def test_multibyte_text_and_duplicate_urls(fake: FakeGemini) -> None:
    text = "Zürich liegt am See. Das ist schön."
    same = Web(SOURCES[0].uri, "zuerich.ch")
    fake.reply(text, sources=[same, same], supports=[("Das ist schön.", [0, 1])], queries=["q"])
    done = await complete(provider(fake.url))
    grounding = done.grounding
    assert grounding is not None
    assert grounding.sources == (Source("zuerich.ch", SOURCES[0].uri),)
    assert grounding.cites == (("Das ist schön.", (1,)),)


async def test_no_grounding_metadata_is_a_plain_answer(fake: FakeGemini) -> None:
    fake.reply("Just text.")
    done = await complete(provider(fake.url))
    assert done.text == "Just text."
    assert done.grounding is None


async def test_plain_provider_sends_schema_without_search(fake: FakeGemini) -> None:
    fake.reply('{"year": 1947}')
    config = provider(fake.url, grounding=False, temperature=None)
    done = await complete(config, request(SCHEMA))
    assert done.text == '{"year": 1947}'
    generation = fake.calls[0].body["generationConfig"]
    assert "tools" not in fake.calls[0].body
    assert generation["responseMimeType"] == "application/json"
    assert generation["responseJsonSchema"] == SCHEMA
    assert generation["temperature"] == 0


async def test_per_minute_429_uses_retry_info(fake: FakeGemini) -> None:
    fake.quota("minute", retry="47s")
    error = await failure(provider(fake.url))
    assert isinstance(error, errors.RateLimited)
    assert error.retry_after_s == 47
    assert "per-minute" in str(error)
    assert len(fake.calls) == 1  # the SDK does not retry on its own


async def test_per_minute_429_without_retry_info_reads_the_message(fake: FakeGemini) -> None:
    fake.fail(429, "Resource has been exhausted. Please retry in 2.5s.")
    error = await failure(provider(fake.url))
    assert isinstance(error, errors.RateLimited)
    assert error.retry_after_s == 2.5


async def test_bare_429_leaves_the_wait_to_dispatch(fake: FakeGemini) -> None:
    fake.fail(429, "Resource has been exhausted (e.g. check quota).")
    error = await failure(provider(fake.url))
    assert isinstance(error, errors.RateLimited)
    assert error.retry_after_s is None


async def test_per_day_429_waits_until_midnight_pacific(fake: FakeGemini) -> None:
    fake.quota("day", retry="30s")
    error = await failure(provider(fake.url))
    assert isinstance(error, errors.RateLimited)
    now = datetime.now(UTC)
    pacific = now.astimezone(ZoneInfo("America/Los_Angeles"))
    seconds_into_day = pacific.hour * 3600 + pacific.minute * 60 + pacific.second
    expected = 86_400 - seconds_into_day
    assert error.retry_after_s is not None
    assert abs(error.retry_after_s - expected) < 3700  # DST days are 23 or 25 hours
    assert "daily" in str(error) and "America/Los_Angeles" in str(error)


async def test_invalid_key_is_auth_failed(fake: FakeGemini) -> None:
    reason = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
    fake.fail(400, f"API key not valid. Please pass a valid API key. {KEY}", [reason])
    error = await failure(provider(fake.url))
    assert isinstance(error, errors.AuthFailed)
    assert KEY not in str(error)
    assert "keys set gemini" in str(error)


async def test_other_400_is_a_rejection(fake: FakeGemini) -> None:
    fake.fail(400, "Request contains an invalid argument.")
    error = await failure(provider(fake.url))
    assert type(error) is errors.ProviderError
    assert "HTTP 400 INVALID_ARGUMENT" in str(error)


async def test_404_is_model_not_found(fake: FakeGemini) -> None:
    fake.fail(404, "models/nope is not found")
    assert isinstance(await failure(provider(fake.url)), errors.ModelNotFound)


async def test_500_is_provider_down(fake: FakeGemini) -> None:
    fake.fail(500, "An internal error has occurred.")
    assert isinstance(await failure(provider(fake.url)), errors.ProviderDown)


async def test_timeout(fake: FakeGemini) -> None:
    fake.hang(10)
    started = time.monotonic()
    error = await failure(provider(fake.url), request(timeout_s=0.5))
    assert isinstance(error, errors.ProviderTimeout)
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    "body", ["not json", '{"candidates": 5}', '{"candidates": [{"content": {"parts": "x"}}]}']
)
async def test_malformed_body(fake: FakeGemini, body: str) -> None:
    fake.raw(200, body)
    assert isinstance(await failure(provider(fake.url)), errors.BadResponse)


async def test_empty_answer_names_the_finish_reason(fake: FakeGemini) -> None:
    fake.reply("", finish="SAFETY")
    error = await failure(provider(fake.url))
    assert isinstance(error, errors.BadResponse)
    assert "SAFETY" in str(error)


async def test_nothing_listening_is_provider_down() -> None:
    with FakeGemini() as gone:
        url = gone.url
    assert isinstance(await failure(provider(url)), errors.ProviderDown)


async def test_health(fake: FakeGemini) -> None:
    backend = GeminiBackend(provider(fake.url), KEY)
    try:
        health = await backend.health()
    finally:
        await backend.aclose()
    assert health.ok
    assert "grounding" in health.detail


def test_base_url_version() -> None:
    assert split_base_url("https://g.googleapis.com/v1beta") == (
        "https://g.googleapis.com",
        "v1beta",
    )
    assert split_base_url("http://127.0.0.1:9/v1") == ("http://127.0.0.1:9", "v1")
    assert split_base_url("http://127.0.0.1:9") == ("http://127.0.0.1:9", "v1beta")


def test_grounding_json_round_trip_and_unreadable_json() -> None:
    grounding = Grounding((Source('a "q"', "https://a"),), ("q\\",), (("x -->\n", (1,)),))
    assert Grounding.from_json(grounding.to_json()) == grounding
    assert Grounding.from_json(None) is None
    assert Grounding.from_json('{"sources": [["only a title"]]}') is None
    assert Grounding.from_json("not json") is None


async def test_offload_tool_through_the_plain_provider(
    fake: FakeGemini, paths: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from mcp import Client

    from offload_mcp.server import build_server

    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    paths.config_file.write_text(
        f'[providers.gemini-flash]\nbase_url = "{fake.url}/v1beta"\n'
        '[chains]\noffload = ["gemini-flash"]\n'
    )
    fake.reply('{"year": 1947}', usage={"promptTokenCount": 50, "candidatesTokenCount": 5})
    async with Client(build_server(paths=paths, cwd=tmp_path)) as client:
        result = await client.call_tool(
            "offload", {"task": "Extract the year.", "text": "Founded 1947.", "schema": SCHEMA}
        )
    text = result.content[0].text  # type: ignore[union-attr]
    assert not result.is_error, text
    assert text.startswith('{"year":1947}')
    assert "gemini-flash (gemini-2.5-flash), 50->5 tokens" in text
    body = fake.calls[0].body
    assert "tools" not in body
    assert body["generationConfig"]["responseJsonSchema"] == SCHEMA
