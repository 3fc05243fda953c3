"""CodexBackend against the replay fake `tests/fakes/codex` (fast; no real CLI, no network)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from offload_mcp import errors
from offload_mcp.backends import create_backend
from offload_mcp.backends.codex import CodexBackend, toml_value
from offload_mcp.backends.process import group_members
from offload_mcp.config import ProviderConfig, build_settings
from offload_mcp.packets import CompletionRequest, Message

pytestmark = pytest.mark.anyio

FAKE = Path(__file__).parent / "fakes" / "codex"


@pytest.fixture
def record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "record.json"
    monkeypatch.setenv("FAKE_CODEX_RECORD", str(path))
    monkeypatch.delenv("CODEX_API_KEY", raising=False)
    return path


def provider(**extra: Any) -> ProviderConfig:
    base = build_settings({}).providers["codex"]
    fields = base.model_dump()
    fields["command"] = str(FAKE)
    fields.update(extra)
    return ProviderConfig.model_validate(fields)


def request(schema: dict[str, Any] | None = None, timeout_s: float = 10) -> CompletionRequest:
    return CompletionRequest(
        messages=(Message("system", "Be brief."), Message("user", "Say done.")),
        max_output_tokens=100,
        timeout_s=timeout_s,
        json_schema=schema,
    )


def scenario(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("FAKE_CODEX_SCENARIO", name)


async def test_preset_and_registry() -> None:
    codex = build_settings({}).providers["codex"]
    assert (codex.kind, codex.trust, codex.needs_key, codex.is_paid) == (
        "codex",
        "trusted",
        False,
        False,
    )
    assert isinstance(create_backend(codex, None), CodexBackend)


async def test_success_argv_stdin_and_env(record: Path) -> None:
    backend = CodexBackend(provider(), "sk-test-123")
    completion = await backend.complete(request())
    assert completion.text == "done"
    assert (completion.usage.input_tokens, completion.usage.cached_input_tokens) == (240, 200)
    assert completion.usage.output_tokens == 14
    seen = json.loads(record.read_text())
    argv = seen["argv"]
    assert argv[:4] == ["--json", "--skip-git-repo-check", "--ephemeral", "-s"]
    assert argv[argv.index("-s") + 1] == "read-only"
    assert "--ignore-user-config" in argv
    assert argv[argv.index("-c") + 1] == "mcp_servers={}"
    assert "-m" not in argv  # model "default": Codex picks
    assert "--output-schema" not in argv
    assert argv[-1] == "-"
    assert seen["stdin"] == "Be brief.\n\nSay done."
    assert seen["env"]["CODEX_API_KEY"] == "sk-test-123"
    assert Path(seen["cwd"]).name == "work" and not Path(seen["cwd"]).exists()


async def test_model_profile_overrides_and_schema(record: Path, monkeypatch) -> None:
    monkeypatch.setenv("CODEX_API_KEY", "from-the-environment")
    monkeypatch.setenv("FAKE_CODEX_ANSWER", '{"label": "bug"}')
    backend = CodexBackend(
        provider(
            model="gpt-5.1-codex",
            extra_body={
                "profile": "fast",
                "user_config": True,
                "config": {"model_reasoning_effort": "low", "model_providers.x.retries": 2},
            },
        ),
        None,
    )
    schema = {"type": "object", "properties": {"label": {"type": "string"}}}
    completion = await backend.complete(request(schema))
    assert json.loads(completion.text) == {"label": "bug"}
    seen = json.loads(record.read_text())
    argv = seen["argv"]
    assert argv[argv.index("-m") + 1] == "gpt-5.1-codex"
    assert argv[argv.index("-p") + 1] == "fast"
    assert "--ignore-user-config" not in argv
    assert 'model_reasoning_effort="low"' in argv and "model_providers.x.retries=2" in argv
    assert argv[argv.index("--output-schema") + 1].endswith("schema.json")
    # the key comes only from offload-mcp's resolution, never straight from the environment
    assert "CODEX_API_KEY" not in seen["env"]


async def test_tool_run_still_answers(record: Path, monkeypatch) -> None:
    scenario(monkeypatch, "tool")
    completion = await CodexBackend(provider(), None).complete(request())
    assert completion.text == "done"


@pytest.mark.parametrize(
    ("name", "error_type", "words"),
    [
        ("401", errors.AuthFailed, "not authenticated"),
        ("quota", errors.RateLimited, "quota exceeded"),
        ("ratelimit", errors.RateLimited, "rate limited"),
        ("plan_limit", errors.RateLimited, "usage limit"),
        ("usage", errors.ProviderError, "rejected its arguments"),
        ("crash", errors.ProviderError, "panicked"),
    ],
)
async def test_failures_are_typed(
    record: Path, monkeypatch, name: str, error_type: type, words: str
) -> None:
    scenario(monkeypatch, name)
    with pytest.raises(errors.ProviderError) as caught:
        await CodexBackend(provider(), None).complete(request())
    assert type(caught.value) is error_type
    assert words in str(caught.value)
    if name == "plan_limit":
        assert isinstance(caught.value, errors.RateLimited)
        assert caught.value.retry_after_s == 2.5 * 3600


async def test_hang_hits_the_idle_timeout_and_leaves_nothing(record: Path, monkeypatch) -> None:
    scenario(monkeypatch, "hang")
    backend = CodexBackend(provider(extra_body={"idle_timeout_s": 0.5}), None)
    # killed while Codex waited for the network: the model was unreachable, not slow
    with pytest.raises(errors.ProviderDown) as caught:
        await backend.complete(request())
    assert "cannot reach the model" in str(caught.value)
    assert "printed nothing for 0.5 s" in str(caught.value)
    assert "waiting for network" in str(caught.value)
    assert group_members(json.loads(record.read_text())["pid"]) == []


async def test_missing_binary(record: Path, tmp_path: Path) -> None:
    backend = CodexBackend(provider(command=str(tmp_path / "nope")), None)
    with pytest.raises(errors.ProviderDown, match="not found"):
        await backend.complete(request())
    health = await backend.health()
    assert not health.ok and "not found" in health.detail


async def test_health_detection_rule(record: Path, monkeypatch) -> None:
    monkeypatch.delenv("FAKE_CODEX_LOGGED_IN", raising=False)
    health = await CodexBackend(provider(), None).health()
    assert not health.ok and "0.169.0" in health.detail and "codex login" in health.detail
    assert (await CodexBackend(provider(), "sk-x").health()).ok
    custom = provider(extra_body={"config": {"model_provider": "local"}})
    assert (await CodexBackend(custom, None).health()).ok
    monkeypatch.setenv("FAKE_CODEX_LOGGED_IN", "1")
    health = await CodexBackend(provider(), None).health()
    assert health.ok and "Logged in using ChatGPT" in health.detail
    assert await CodexBackend(provider(), None).version() == "0.169.0"


def test_toml_value() -> None:
    assert toml_value({"a": [1, True, 'x"y'], "b": 1.5}) == '{"a" = [1, true, "x\\"y"], "b" = 1.5}'
    with pytest.raises(errors.ConfigError):
        toml_value(object())


async def test_refused_login_names_the_custom_providers_key(
    record: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    scenario(monkeypatch, "401")

    async def hint(**extra_body: Any) -> str:
        backend = CodexBackend(provider(extra_body=extra_body), None)
        with pytest.raises(errors.AuthFailed) as caught:
            await backend.complete(request())
        return caught.value.hint

    assert "codex login" in await hint()
    # a provider of offload-mcp's own config, as dotted keys or a nested table
    local = {"model_provider": "local", "model_providers.local.env_key": "LOCAL_KEY"}
    said = await hint(config=local)
    assert "set LOCAL_KEY" in said and "`local`" in said and "codex login" not in said
    nested = {"model_provider": "local", "model_providers": {"local": {"env_key": "NESTED_KEY"}}}
    assert "set NESTED_KEY" in await hint(config=nested)
    assert "sends no API key" in await hint(config={"model_provider": "local"})
    # one from the user's Codex config (read only with user_config), its profile's first
    home = tmp_path / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(
        'model_provider = "corp"\n[profiles.fast]\nmodel_provider = "lab"\n'
        '[model_providers.corp]\nenv_key = "CORP_KEY"\n[model_providers.lab]\nenv_key = "LAB_KEY"\n'
    )
    monkeypatch.setenv("CODEX_HOME", str(home))
    assert "set CORP_KEY" in await hint(user_config=True)
    monkeypatch.delenv("FAKE_CODEX_LOGGED_IN", raising=False)
    health = await CodexBackend(provider(extra_body={"user_config": True}), None).health()
    assert health.ok and "provider corp" in health.detail  # no `codex login` needed
    assert "set LAB_KEY" in await hint(user_config=True, profile="fast")
    assert "codex login" in await hint()  # --ignore-user-config: Codex reads none of it
    (home / "config.toml").write_text(
        'model_provider = "corp"\n[model_providers.corp]\nrequires_openai_auth = true\n'
    )
    assert "codex login" in await hint(user_config=True)
