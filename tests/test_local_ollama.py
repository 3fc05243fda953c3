"""The Ollama backend against a loopback fake of its REST API, and `local_extract` /
`local_summarize` end to end through Ollama and a local OpenAI-compatible server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from offload_mcp import errors
from offload_mcp.backends.base import Health
from offload_mcp.backends.ollama import OllamaBackend
from offload_mcp.config import Paths, ProviderConfig, build_settings
from offload_mcp.packets import CompletionRequest, Message
from offload_mcp.server import build_server
from offload_mcp.tools.local import fit_words
from tests.fake_ollama import FakeOllama
from tests.fake_openai import FakeOpenAI, closed_port_url

pytestmark = pytest.mark.anyio

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


@pytest.fixture
def fake() -> Iterator[FakeOllama]:
    with FakeOllama() as server:
        yield server


def provider(url: str, **fields: Any) -> ProviderConfig:
    user = {"providers": {"ollama": {"base_url": url, **fields}}}
    return build_settings(user).providers["ollama"]


def request(schema: dict[str, Any] | None = None, timeout_s: float = 5.0) -> CompletionRequest:
    return CompletionRequest(
        messages=(Message("system", "Be brief."), Message("user", "Who is Ada, 36?")),
        max_output_tokens=200,
        timeout_s=timeout_s,
        json_schema=schema,
    )


async def test_chat_sends_schema_options_and_keep_alive(fake: FakeOllama):
    backend = OllamaBackend(provider(fake.url, keep_alive_s=600), None)
    fake.reply('{"name": "Ada", "age": 36}')
    completion = await backend.complete(request(SCHEMA))
    await backend.aclose()
    assert completion.text == '{"name": "Ada", "age": 36}'
    assert (completion.usage.input_tokens, completion.usage.output_tokens) == (42, 7)
    assert completion.model == "qwen2.5:3b"
    body = fake.requests[-1].body
    assert fake.requests[-1].path == "/api/chat"
    assert body["model"] == "qwen2.5:3b" and body["stream"] is False
    assert body["format"] == SCHEMA
    assert body["options"] == {"temperature": 0, "num_predict": 200}
    assert body["keep_alive"] == 600
    assert [m["role"] for m in body["messages"]] == ["system", "user"]


async def test_missing_model_names_the_pull_command(fake: FakeOllama):
    backend = OllamaBackend(provider(fake.url, model="llama3.2:3b"), None)
    with pytest.raises(errors.ModelNotFound) as caught:
        await backend.complete(request())
    assert "Run: ollama pull llama3.2:3b" in str(caught.value)
    health = await backend.health()
    assert not health.ok and "run `ollama pull llama3.2:3b`" in health.detail
    assert "pulled: qwen2.5:3b" in health.detail
    await backend.aclose()


async def test_refused_connection_says_how_to_start_ollama():
    backend = OllamaBackend(provider(closed_port_url().removesuffix("/v1")), None)
    with pytest.raises(errors.ProviderDown) as caught:
        await backend.complete(request())
    assert "ollama serve" in str(caught.value)
    health = await backend.health()
    assert health == Health(False, "not running: start it with `ollama serve`")


async def test_timeout(fake: FakeOllama):
    fake.hang(3)
    backend = OllamaBackend(provider(fake.url), None)
    with pytest.raises(errors.ProviderTimeout):
        await backend.complete(request(timeout_s=0.3))
    await backend.aclose()


@pytest.mark.parametrize(
    ("status", "text", "kind"),
    [
        (200, "{not json", errors.BadResponse),
        (200, json.dumps({"model": "m", "message": {"role": "assistant", "content": ""}}), None),
        (500, json.dumps({"error": "llama runner process has terminated"}), errors.ProviderDown),
        (400, json.dumps({"error": "invalid format"}), errors.ProviderError),
        (429, json.dumps({"error": "server busy"}), errors.RateLimited),
    ],
)
async def test_malformed_and_error_answers(
    fake: FakeOllama, status: int, text: str, kind: type[Exception] | None
):
    fake.raw(status, text)
    backend = OllamaBackend(provider(fake.url), None)
    with pytest.raises(kind or errors.BadResponse) as caught:
        await backend.complete(request())
    await backend.aclose()
    if kind is None:
        assert "empty answer" in str(caught.value)


async def test_health_lists_version_and_models(fake: FakeOllama):
    fake.models.append("llama3.2:latest")
    backend = OllamaBackend(provider(fake.url), None)
    health = await backend.health()
    await backend.aclose()
    assert health.ok
    assert health.detail == "Ollama 0.13.5; qwen2.5:3b ready; also llama3.2:latest"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "bio.txt").write_text("Ada Lovelace, aged 36, wrote the first program.\n")
    return root


def configure(paths: Paths, ollama_url: str, local_url: str) -> None:
    paths.config_file.write_text(
        f"""
[providers.ollama]
base_url = "{ollama_url}"

[providers.llamacpp]
base_url = "{local_url}"
"""
    )


async def call(client: Client, tool: str, **arguments: Any) -> tuple[bool, str]:
    result = await client.call_tool(tool, arguments)
    return result.is_error, result.content[0].text  # type: ignore[union-attr]


async def test_extract_through_ollama_with_one_retry(paths: Paths, project: Path, fake: FakeOllama):
    configure(paths, fake.url, closed_port_url())
    fake.reply('{"name": "Ada"}')  # fails the schema: age is missing
    fake.reply('{"name": "Ada Lovelace", "age": 36}')
    async with Client(build_server(paths=paths, cwd=project)) as client:
        is_error, text = await call(client, "local_extract", schema=SCHEMA, file="bio.txt")
    assert not is_error, text
    answer, footer = text.split("\n\n")
    assert json.loads(answer) == {"name": "Ada Lovelace", "age": 36}
    assert footer.startswith("[local: ollama (qwen2.5:3b)") and "after 1 retry" in footer
    retry = fake.requests[-1].body["messages"]
    assert "age" in retry[-1]["content"] and "rejected" in retry[-1]["content"]


async def test_summarize_falls_over_to_a_local_openai_server(
    paths: Paths, project: Path, fake: FakeOllama
):
    with FakeOpenAI() as local:
        configure(paths, closed_port_url().removesuffix("/v1"), local.url)
        long_answer = "Ada wrote the first program. " * 20
        local.reply(long_answer)
        async with Client(build_server(paths=paths, cwd=project)) as client:
            is_error, text = await call(
                client, "local_summarize", text="Ada Lovelace ...", words=12, focus="who"
            )
    assert not is_error, text
    summary, footer = text.split("\n\n")
    assert summary == "Ada wrote the first program. Ada wrote the first program."
    assert footer.startswith("[local: llamacpp")
    prompt = local.requests[-1].body["messages"][1]["content"]
    assert "at most 12 words" in prompt and "Focus on: who." in prompt
    assert local.requests[-1].body["max_tokens"] == 12 * 3 + 64


async def test_extract_needs_text_or_file(paths: Paths, project: Path):
    async with Client(build_server(paths=paths, cwd=project)) as client:
        is_error, text = await call(client, "local_extract", schema=SCHEMA)
    assert is_error and "either text or file" in text


def test_fit_words():
    assert fit_words("One two three.", 5) == "One two three."
    assert fit_words("One two three. Four five six", 4) == "One two three."
    assert fit_words("one two three four five six", 3) == "one two three…"


async def test_extract_with_llama_cpp_python_dialect(paths: Paths, project: Path):
    with FakeOpenAI() as local:
        paths.config_file.write_text(
            f"""
[providers.llama-cpp-python]
base_url = "{local.url}"

[chains]
local_extract = ["llama-cpp-python"]
"""
        )
        local.reply('{"name": "Ada", "age": 36}')
        async with Client(build_server(paths=paths, cwd=project)) as client:
            is_error, text = await call(client, "local_extract", schema=SCHEMA, text="Ada, 36")
    assert not is_error, text
    assert text.startswith('{"name":"Ada","age":36}')
    assert local.requests[-1].body["response_format"] == {"type": "json_object", "schema": SCHEMA}


async def test_classify_through_ollama_when_chained_first(
    paths: Paths, project: Path, fake: FakeOllama
):
    paths.config_file.write_text(
        f"""
[providers.ollama]
base_url = "{fake.url}"

[chains]
local_classify = ["ollama", "embedded"]
"""
    )
    fake.reply('{"labels": ["billing", "bug"]}')
    async with Client(build_server(paths=paths, cwd=project)) as client:
        is_error, text = await call(
            client,
            "local_classify",
            labels={"billing": "payments", "bug": "errors"},
            items=["The pay button throws an error"],
            multi=True,
        )
    assert not is_error, text
    assert text.startswith("1. billing+bug\n") and "[local_classify: ollama (qwen2.5:3b)" in text
    sent = fake.requests[-1].body
    assert sent["format"]["properties"]["labels"]["items"] == {"enum": ["billing", "bug"]}
    assert "- billing: payments" in sent["messages"][1]["content"]
