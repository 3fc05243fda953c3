from pathlib import Path

import pytest

from offload_mcp.config import (
    Paths,
    Prices,
    build_settings,
    expand_env_refs,
    load_settings,
    locate,
    missing_env_refs,
)
from offload_mcp.errors import ConfigError


def write(paths: Paths, text: str) -> None:
    paths.config_file.write_text(text)


def test_no_file_means_every_preset_and_valid_chains(paths: Paths):
    settings = load_settings(paths)
    assert settings.source == "built-in defaults"
    assert {"groq", "openrouter-free", "llamacpp", "litellm"} <= set(settings.providers)
    assert [p.name for p in settings.chain("offload")][:2] == ["groq", "cerebras"]
    assert "openrouter" not in settings.providers, "abstract bases are not providers"


def test_user_entry_overrides_only_what_it_names(paths: Paths):
    write(paths, '[providers.groq]\nmodel = "llama-3.1-8b-instant"\n')
    groq = load_settings(paths).providers["groq"]
    assert groq.model == "llama-3.1-8b-instant"
    assert groq.base_url == "https://api.groq.com/openai/v1"
    assert groq.key_env == "GROQ_API_KEY" and groq.trust == "untrusted"


def test_preset_inheritance_for_new_providers(paths: Paths):
    write(paths, '[providers.my-or]\npreset = "openrouter"\nmodel = "x/y"\n')
    mine = load_settings(paths).providers["my-or"]
    assert mine.base_url == "https://openrouter.ai/api/v1"
    assert mine.key_name == "openrouter" and mine.trust == "trusted"


def test_loopback_urls_are_local_and_need_no_key():
    settings = build_settings(
        {"providers": {"box": {"base_url": "http://[::1]:9/v1", "model": "m"}}}
    )
    box = settings.providers["box"]
    assert (box.trust, box.needs_key) == ("local", False)
    assert settings.providers["litellm"].trust == "untrusted", "a proxy forwards to clouds"
    remote = build_settings({"providers": {"far": {"base_url": "https://x.test/v1", "model": "m"}}})
    assert remote.providers["far"].trust == "untrusted"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[providers.groq]\ntrust = "maybe"\n', "line 2: providers.groq.trust"),
        ("[providers.groq]\nprices = { input = -1 }\n", "line 2: providers.groq.prices.input"),
        ('[providers.groq]\nmodle = "x"\n', "line 2: providers.groq.modle: Extra inputs"),
        ("[limits]\ntimeout_s = 0\n", "line 2: limits.timeout_s"),
        ('[chains]\noffload = ["nope"]\n', "chains.offload names unknown provider 'nope'"),
        ("[surprise]\nx = 1\n", "unknown section(s): surprise"),
        ('[providers.x]\npreset = "nope"\n', "unknown preset 'nope'"),
        ('[providers.x]\nbase_url = "ftp://h"\nmodel = "m"\n', "providers.x.base_url"),
        ("[providers.groq\n", "not valid TOML"),
    ],
)
def test_bad_config_is_one_message_naming_file_line_and_field(
    paths: Paths, text: str, expected: str
):
    write(paths, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(paths)
    message = str(caught.value)
    assert message.startswith(str(paths.config_file))
    assert expected in message


def test_preset_loop_is_reported():
    with pytest.raises(ValueError, match="preset loop"):
        from offload_mcp.config import _merge_preset

        _merge_preset("a", {"preset": "b"}, {"a": {"preset": "b"}, "b": {"preset": "a"}})


@pytest.mark.parametrize(
    ("loc", "line"),
    [
        (["limits", "timeout_s"], 3),
        (["providers", "groq", "model"], 6),
        (["providers", "groq", "caps", "day"], 7),
        (["providers", "other"], None),
    ],
)
def test_locate(loc: list[str], line: int | None):
    text = '# c\n[limits]\ntimeout_s = 1\n\n[providers.groq]\nmodel = "m"\ncaps = {}\n'
    assert locate(text, loc) == line


def test_prices():
    prices = Prices(input=2.0, cached_input=0.5, output=8.0)
    assert prices.cost(1000, 400, 100) == pytest.approx((600 * 2 + 400 * 0.5 + 100 * 8) / 1e6)
    assert Prices(input=1.0, output=1.0).cost(100, 100, 0) == pytest.approx(100 / 1e6)


def test_env_refs(monkeypatch: pytest.MonkeyPatch):
    url = "https://h/${ACCOUNT}/v1"
    monkeypatch.delenv("ACCOUNT", raising=False)
    assert missing_env_refs(url) == ["ACCOUNT"]
    monkeypatch.setenv("ACCOUNT", "abc")
    assert missing_env_refs(url) == [] and expand_env_refs(url) == "https://h/abc/v1"


def test_paths_follow_offload_mcp_home(home: Path):
    paths = Paths.discover()
    assert paths.config_file == home / "config.toml"
    assert paths.ledger_file == home / "ledger.db"
    assert paths.log_file.parent == home / "logs"
