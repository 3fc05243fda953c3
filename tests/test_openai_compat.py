"""OpenAICompatBackend against a loopback fake server: success, request bodies, every failure."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from email.utils import formatdate
from typing import Any

import pytest

from offload_mcp import errors
from offload_mcp.backends.openai_compat import OpenAICompatBackend
from offload_mcp.config import ProviderConfig
from offload_mcp.packets import Completion, CompletionRequest, Message, Usage
from tests.fake_openai import FakeOpenAI, closed_port_url

pytestmark = pytest.mark.anyio

KEY = "sk-test-0123456789abcdef"
SCHEMA = {"type": "object", "properties": {"day": {"type": "string"}}, "required": ["day"]}


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def provider(url: str, **fields: Any) -> ProviderConfig:
    return ProviderConfig(
        **{"name": "fake", "base_url": url, "model": "m", "trust": "untrusted"} | fields
    )


def request(
    schema: dict[str, Any] | None = None, timeout_s: float = 5.0, max_tokens: int = 256
) -> CompletionRequest:
    return CompletionRequest(
        messages=(Message("system", "Be brief."), Message("user", "Which day?")),
        max_output_tokens=max_tokens,
        timeout_s=timeout_s,
        json_schema=schema,
    )


async def complete(
    config: ProviderConfig, key: str | None = KEY, req: CompletionRequest | None = None
) -> Completion:
    backend = OpenAICompatBackend(config, key)
    try:
        return await backend.complete(req or request())
    finally:
        await backend.aclose()


async def failure(
    config: ProviderConfig, key: str | None = KEY, req: CompletionRequest | None = None
) -> errors.ProviderError:
    with pytest.raises(errors.ProviderError) as caught:
        await complete(config, key, req)
    return caught.value


# -- success --------------------------------------------------------------------------------


async def test_success_returns_text_usage_and_model(fake: FakeOpenAI) -> None:
    fake.reply(
        "Tuesday.",
        model="vendor/model-v2",
        usage={
            "prompt_tokens": 120,
            "completion_tokens": 3,
            "prompt_tokens_details": {"cached_tokens": 100},
        },
    )
    completion = await complete(provider(fake.url))

    assert completion.text == "Tuesday."
    assert completion.usage == Usage(input_tokens=120, cached_input_tokens=100, output_tokens=3)
    assert completion.model == "vendor/model-v2"
    assert completion.reported_cost_usd is None

    [sent] = fake.requests
    assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
    assert sent.headers["content-type"] == "application/json"
    assert sent.body == {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Which day?"},
        ],
        "max_tokens": 256,
        "stream": False,
    }


async def test_default_answer_and_reported_cost(fake: FakeOpenAI) -> None:
    fake.reply("priced", usage={"cost": 0.00125})
    assert (await complete(provider(fake.url))).reported_cost_usd == pytest.approx(0.00125)
    assert (await complete(provider(fake.url))).text == "ok"  # empty queue: the default
    assert len(fake.requests) == 2


async def test_missing_usage_counts_as_zero(fake: FakeOpenAI) -> None:
    body = fake.completion("fine", "fake-model", None)
    del body["usage"]
    del body["model"]
    fake.raw(200, json.dumps(body))
    completion = await complete(provider(fake.url))
    assert completion.usage == Usage()
    assert completion.model == "m"


@pytest.mark.parametrize(("key", "expected"), [(KEY, f"Bearer {KEY}"), (None, None), ("", None)])
async def test_authorization_only_with_a_key(
    fake: FakeOpenAI, key: str | None, expected: str | None
) -> None:
    await complete(provider(fake.url), key=key)
    assert fake.requests[-1].headers.get("authorization") == expected


async def test_provider_headers_and_extra_body_are_sent(fake: FakeOpenAI) -> None:
    config = provider(
        fake.url,
        headers={"HTTP-Referer": "https://example.invalid/offload", "X-Title": "offload-mcp"},
        extra_body={"provider": {"data_collection": "deny"}, "max_tokens": 99},
    )
    await complete(config)
    sent = fake.requests[-1]
    assert sent.headers["http-referer"] == "https://example.invalid/offload"
    assert sent.headers["x-title"] == "offload-mcp"
    assert sent.headers["accept"] == "application/json"
    assert sent.body["provider"] == {"data_collection": "deny"}
    assert sent.body["max_tokens"] == 99  # extra_body wins over computed fields


async def test_one_client_serves_several_requests(fake: FakeOpenAI) -> None:
    backend = OpenAICompatBackend(provider(fake.url), KEY)
    try:
        fake.reply("one")
        fake.reply("two")
        assert (await backend.complete(request())).text == "one"
        assert (await backend.complete(request())).text == "two"
    finally:
        await backend.aclose()
    await backend.aclose()  # idempotent


# -- structured output ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        (
            "json_schema",
            {"type": "json_schema", "json_schema": {"name": "result", "schema": SCHEMA}},
        ),
        ("json_object", {"type": "json_object"}),
        ("json_object_schema", {"type": "json_object", "schema": SCHEMA}),
        ("prompt", None),
    ],
)
async def test_structured_output_dialects(
    fake: FakeOpenAI, dialect: str, expected: dict[str, Any] | None
) -> None:
    fake.reply('{"day": "Tuesday"}')
    completion = await complete(provider(fake.url, structured_output=dialect), req=request(SCHEMA))
    assert json.loads(completion.text) == {"day": "Tuesday"}
    body = fake.requests[-1].body
    assert body.get("response_format") == expected
    assert ("response_format" in body) == (expected is not None)
    assert body["temperature"] == 0


# -- HTTP errors ----------------------------------------------------------------------------


async def test_401_names_the_fix_and_never_the_key(fake: FakeOpenAI) -> None:
    fake.fail(
        401,
        {
            "error": {
                "message": f"Incorrect API key provided: {KEY}. Find yours at the dashboard.",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        },
    )
    error = await failure(provider(fake.url, key_env="FAKE_API_KEY"))
    assert type(error) is errors.AuthFailed
    assert error.kind == "auth"
    text = str(error)
    assert KEY not in text
    assert "[key]" in text
    assert "HTTP 401" in text
    assert "offload-mcp keys set fake" in text
    assert "FAKE_API_KEY" in text


async def test_401_fix_uses_the_key_name(fake: FakeOpenAI) -> None:
    fake.fail(401)
    error = await failure(provider(fake.url, key="shared-router"))
    assert "offload-mcp keys set shared-router" in str(error)


@pytest.mark.parametrize(
    ("status", "body", "kind", "said"),
    [
        (
            402,
            {"error": {"code": 402, "message": "Insufficient credits"}},
            errors.NotAllowed,
            "Insufficient credits",
        ),
        (
            403,
            {"error": {"code": 403, "message": "flagged by moderation"}},
            errors.NotAllowed,
            "moderation",
        ),
        (404, None, errors.ModelNotFound, "'m' not found"),
        (
            500,
            {"error": {"message": "upstream exploded"}},
            errors.ProviderDown,
            "upstream exploded",
        ),
        (502, "<html><body>Bad Gateway</body></html>", errors.ProviderDown, "Bad Gateway"),
        (
            503,
            {"error": {"code": 503, "message": "No endpoints found"}},
            errors.ProviderDown,
            "No endpoints",
        ),
        (400, {"error": {"message": "max_tokens is too large"}}, errors.ProviderError, "too large"),
    ],
)
async def test_http_errors_map_to_kinds(
    fake: FakeOpenAI, status: int, body: Any, kind: type[errors.ProviderError], said: str
) -> None:
    fake.fail(status, body)
    error = await failure(provider(fake.url))
    assert type(error) is kind
    assert said in str(error)
    assert f"HTTP {status}" in str(error)
    assert error.provider == "fake"


async def test_long_provider_messages_are_shortened(fake: FakeOpenAI) -> None:
    fake.fail(500, {"error": {"message": "x" * 5000}})
    error = await failure(provider(fake.url))
    assert "x" * 300 + "…" in str(error)
    assert "x" * 301 not in str(error)


# -- rate limits ----------------------------------------------------------------------------


async def test_429_retry_after_seconds(fake: FakeOpenAI) -> None:
    fake.fail(429, {"error": {"message": "slow down"}}, headers={"Retry-After": "7"})
    error = await failure(provider(fake.url))
    assert isinstance(error, errors.RateLimited)
    assert error.retry_after_s == 7.0
    assert "Retry after 7 s." in str(error)


async def test_429_retry_after_http_date(fake: FakeOpenAI) -> None:
    when = formatdate(time.time() + 120, usegmt=True)
    fake.fail(429, headers={"Retry-After": when})
    error = await failure(provider(fake.url))
    assert isinstance(error, errors.RateLimited)
    assert error.retry_after_s == pytest.approx(120, abs=5)


async def test_429_groq_reset_header(fake: FakeOpenAI) -> None:
    fake.fail(
        429,
        {
            "error": {
                "message": "Rate limit reached ... Please try again in 2m59.56s.",
                "type": "requests",
                "code": "rate_limit_exceeded",
            }
        },
        headers={"x-ratelimit-reset-requests": "2m59.56s", "x-ratelimit-reset-tokens": "7.66s"},
    )
    error = await failure(provider(fake.url))
    assert isinstance(error, errors.RateLimited)
    assert error.retry_after_s == pytest.approx(179.56)


def openrouter_429(reset_in_s: float) -> dict[str, Any]:
    return {
        "error": {
            "message": "Rate limit exceeded: free-models-per-day. Add 10 credits to unlock 1000 "
            "free model requests per day",
            "code": 429,
            "metadata": {
                "headers": {
                    "X-RateLimit-Limit": "50",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(int((time.time() + reset_in_s) * 1000)),
                },
                "provider_name": None,
            },
        }
    }


async def test_429_openrouter_body_headers(fake: FakeOpenAI) -> None:
    fake.fail(429, openrouter_429(3600))
    error = await failure(provider(fake.url))
    assert isinstance(error, errors.RateLimited)
    assert "free-models-per-day" in str(error)
    assert error.retry_after_s == pytest.approx(3600, abs=5)


async def test_429_without_a_wait(fake: FakeOpenAI) -> None:
    fake.fail(429)
    error = await failure(provider(fake.url))
    assert isinstance(error, errors.RateLimited)
    assert error.retry_after_s is None
    assert "Retry after" not in str(error)


# -- errors inside an HTTP 200 (OpenRouter) -------------------------------------------------


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (
            {"code": 502, "message": "upstream died", "metadata": {"provider_name": "X"}},
            errors.ProviderDown,
        ),
        ({"code": 402, "message": "Insufficient credits"}, errors.NotAllowed),
        ({"message": "stream cut off", "code": "server_error"}, errors.ProviderDown),
    ],
)
async def test_error_inside_a_200(
    fake: FakeOpenAI, error: dict[str, Any], kind: type[errors.ProviderError]
) -> None:
    fake.raw(200, json.dumps({"id": "gen-1", "error": error}))
    raised = await failure(provider(fake.url))
    assert type(raised) is kind
    assert error["message"] in str(raised)


async def test_rate_limit_inside_a_200(fake: FakeOpenAI) -> None:
    fake.raw(200, json.dumps(openrouter_429(60)))
    error = await failure(provider(fake.url))
    assert isinstance(error, errors.RateLimited)
    assert error.retry_after_s == pytest.approx(60, abs=5)


# -- malformed answers ----------------------------------------------------------------------


def _answer(content: Any, **choice: Any) -> str:
    return json.dumps(
        {
            "id": "x",
            "object": "chat.completion",
            "model": "m",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, **choice}
            ],
        }
    )


@pytest.mark.parametrize(
    ("text", "content_type", "said"),
    [
        ("<html>not json</html>", "text/html", "not JSON"),
        ("", "application/json", "not JSON"),
        ('{"choices": [', "application/json", "not JSON"),
        ("[1, 2, 3]", "application/json", "not an object"),
        ('"ok"', "application/json", "not an object"),
        ('{"id": "x", "object": "chat.completion"}', "application/json", "without choices"),
        ('{"choices": []}', "application/json", "without choices"),
        ('{"choices": [{"index": 0}]}', "application/json", "without choices"),
        ('{"choices": [{"message": "hi"}]}', "application/json", "without choices"),
        ('{"choices": "hi"}', "application/json", "without choices"),
        (_answer(""), "application/json", "empty answer"),
        (_answer("  \n "), "application/json", "empty answer"),
        (_answer(None, finish_reason="length"), "application/json", "finish_reason=length"),
        (_answer(["not", "text"]), "application/json", "empty answer"),
    ],
)
async def test_malformed_answers_are_bad_responses(
    fake: FakeOpenAI, text: str, content_type: str, said: str
) -> None:
    fake.raw(200, text, content_type)
    error = await failure(provider(fake.url))
    assert type(error) is errors.BadResponse
    assert said in str(error)


# -- other providers' error bodies ----------------------------------------------------------


async def test_gemini_list_shaped_error(fake: FakeOpenAI) -> None:
    fake.fail(
        400,
        [{"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT"}}],
    )
    error = await failure(provider(fake.url))
    assert type(error) is errors.ProviderError
    assert "API key not valid." in str(error)


async def test_nim_problem_json_title(fake: FakeOpenAI) -> None:
    fake.raw(429, '{"status": 429, "title": "Too Many Requests"}', "application/problem+json")
    error = await failure(provider(fake.url))
    assert isinstance(error, errors.RateLimited)
    assert "Too Many Requests" in str(error)


async def test_nim_problem_json_detail_wins(fake: FakeOpenAI) -> None:
    fake.raw(
        422,
        '{"status": 422, "title": "Unprocessable Entity", "detail": "max_tokens must be <= 4096"}',
        "application/problem+json",
    )
    error = await failure(provider(fake.url))
    assert "max_tokens must be <= 4096" in str(error)


async def test_mistral_error_shape(fake: FakeOpenAI) -> None:
    fake.fail(
        429,
        {
            "object": "error",
            "message": "Rate limit exceeded",
            "type": "rate_limited",
            "param": None,
            "code": "1300",
        },
    )
    error = await failure(provider(fake.url))
    assert isinstance(error, errors.RateLimited)
    assert "Rate limit exceeded" in str(error)


# -- transport failures ---------------------------------------------------------------------


async def test_timeout_is_quick(fake: FakeOpenAI) -> None:
    fake.hang(2)
    started = time.monotonic()
    error = await failure(provider(fake.url), req=request(timeout_s=0.3))
    assert type(error) is errors.ProviderTimeout
    assert "0.3 s" in str(error)
    assert time.monotonic() - started < 1.5


async def test_slow_but_in_time(fake: FakeOpenAI) -> None:
    fake.reply("worth the wait", delay_s=0.2)
    assert (await complete(provider(fake.url), req=request(timeout_s=2))).text == "worth the wait"


@pytest.mark.parametrize(
    ("trust", "hint"),
    [("untrusted", "Check the network"), ("local", "Start the local server at http://127.0.0.1")],
)
async def test_connection_refused(trust: str, hint: str) -> None:
    error = await failure(provider(closed_port_url(), trust=trust))
    assert type(error) is errors.ProviderDown
    assert "cannot connect" in str(error)
    assert "ConnectError" in str(error)
    assert hint in error.hint


# -- health ---------------------------------------------------------------------------------


async def health(config: ProviderConfig, key: str | None = KEY) -> Any:
    backend = OpenAICompatBackend(config, key)
    try:
        return await backend.health()
    finally:
        await backend.aclose()


async def test_health_ok(fake: FakeOpenAI) -> None:
    result = await health(provider(fake.url))
    assert result.ok
    [sent] = fake.requests
    assert (sent.method, sent.path) == ("GET", "/v1/models")
    assert sent.headers["authorization"] == f"Bearer {KEY}"


async def test_health_key_refused(fake: FakeOpenAI) -> None:
    fake.models(401)
    result = await health(provider(fake.url))
    assert not result.ok
    assert "401" in result.detail


async def test_health_other_status(fake: FakeOpenAI) -> None:
    fake.models(503, "down for maintenance")
    result = await health(provider(fake.url))
    assert (result.ok, result.detail) == (False, "HTTP 503")


async def test_health_unreachable() -> None:
    result = await health(provider(closed_port_url()))
    assert not result.ok
    assert "unreachable" in result.detail


async def test_health_does_not_take_queued_answers(fake: FakeOpenAI) -> None:
    fake.reply("kept")
    assert (await health(provider(fake.url))).ok
    assert (await complete(provider(fake.url))).text == "kept"


async def test_used_up_window_is_reported_for_a_cooldown(fake: FakeOpenAI) -> None:
    fake.reply(
        "last one",
        headers={
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "2m30s",
            "x-ratelimit-remaining-tokens": "5000",
            "x-ratelimit-reset-tokens": "7.5s",
        },
    )
    completion = await complete(provider(fake.url))
    assert completion.exhausted_for_s == 150.0
    fake.reply(
        "plenty left",
        headers={"x-ratelimit-remaining-requests": "12", "x-ratelimit-reset-requests": "2m30s"},
    )
    assert (await complete(provider(fake.url))).exhausted_for_s is None


async def test_groq_style_wait_in_the_message(fake: FakeOpenAI) -> None:
    message = (
        "Rate limit reached for model `llama-3.3-70b-versatile` on tokens per day (TPD): "
        "Limit 100000, Used 97050, Requested 3619. Please try again in 9m38.016s."
    )
    fake.fail(429, {"error": {"message": message, "type": "tokens", "code": "rate_limit_exceeded"}})
    error = await failure(provider(fake.url))
    assert isinstance(error, errors.RateLimited)
    assert error.retry_after_s == pytest.approx(578.016)
