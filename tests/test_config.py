from pathlib import Path
from typing import Any

import pytest

from offload_mcp import config as config_module
from offload_mcp.config import (
    DEFAULT_CHAINS,
    STARTER_CONFIG,
    Paths,
    Prices,
    build_settings,
    expand_env_refs,
    load_presets,
    load_settings,
    locate,
    missing_env_refs,
)
from offload_mcp.errors import ConfigError


def write(paths: Paths, text: str) -> None:
    paths.config_file.write_text(text)


def error_for(paths: Paths, text: str) -> str:
    write(paths, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(paths)
    return str(caught.value)


# --- defaults and presets ----------------------------------------------------------------------


def test_no_file_means_every_preset_and_valid_chains(paths: Paths):
    settings = load_settings(paths)
    assert settings.source == "built-in defaults"
    presets = load_presets()
    concrete = {name for name, entry in presets.items() if not entry.get("abstract")}
    assert set(settings.providers) == concrete
    assert not {"openrouter", "groq-base", "cerebras-base"} & set(settings.providers)
    assert settings.chains == DEFAULT_CHAINS
    for tool, names in settings.chains.items():
        assert [p.name for p in settings.chain(tool)] == names
    assert settings.chain("no-such-tool") == settings.chain("offload")


def test_every_preset_is_complete(paths: Paths):
    for provider in load_settings(paths).providers.values():
        assert provider.model and provider.base_url.startswith(("http://", "https://"))
        if provider.needs_key:
            assert provider.key_env, f"{provider.name}: a needed key must have an env var"


def test_the_starter_config_is_valid_and_changes_nothing(paths: Paths):
    write(paths, STARTER_CONFIG)
    settings = load_settings(paths)
    assert settings.source == str(paths.config_file)
    assert settings.chains == DEFAULT_CHAINS


def test_user_entry_overrides_only_what_it_names(paths: Paths):
    write(paths, '[providers.groq]\nmodel = "llama-3.1-8b-instant"\n')
    groq = load_settings(paths).providers["groq"]
    default = build_settings({}).providers["groq"]
    assert groq.model == "llama-3.1-8b-instant"
    assert groq.model_dump(exclude={"model"}) == default.model_dump(exclude={"model"})


def test_user_entry_may_override_nested_tables_whole(paths: Paths):
    write(paths, "[providers.groq]\ncaps = { day = { requests = 5 } }\n")
    groq = load_settings(paths).providers["groq"]
    assert set(groq.caps) == {"day"} and groq.caps["day"].requests == 5


def test_preset_inheritance_for_new_providers(paths: Paths):
    write(paths, '[providers.my-or]\npreset = "openrouter"\nmodel = "x/y"\n')
    mine = load_settings(paths).providers["my-or"]
    assert mine.base_url == "https://openrouter.ai/api/v1"
    assert (mine.key_name, mine.key_env, mine.trust) == (
        "openrouter",
        "OPENROUTER_API_KEY",
        "trusted",
    )
    assert mine.headers == {"X-Title": "offload-mcp"}


def test_preset_of_a_concrete_preset_chains_through_its_base(paths: Paths):
    write(paths, '[providers.groq-small]\npreset = "groq"\nmodel = "llama-3.1-8b-instant"\n')
    small = load_settings(paths).providers["groq-small"]
    assert small.base_url == "https://api.groq.com/openai/v1" and small.key_name == "groq"
    assert small.caps == build_settings({}).providers["groq"].caps


def test_unknown_preset(paths: Paths):
    message = error_for(paths, '[providers.x]\npreset = "nope"\nmodel = "m"\n')
    assert "line 2: providers.x.preset: unknown preset 'nope'" in message


def test_preset_loop_is_one_error(paths: Paths, monkeypatch: pytest.MonkeyPatch):
    looping: dict[str, dict[str, Any]] = {
        "a": {"abstract": True, "preset": "b"},
        "b": {"abstract": True, "preset": "a"},
    }
    monkeypatch.setattr(config_module, "load_presets", lambda: looping)
    message = error_for(paths, '[providers.mine]\npreset = "a"\nmodel = "m"\n')
    assert "line 2: providers.mine.preset: preset loop: a -> b -> a" in message


def test_loopback_urls_are_local_and_need_no_key():
    for url in ("http://127.0.0.1:9/v1", "http://localhost:9/v1", "http://[::1]:9/v1"):
        box = build_settings({"providers": {"box": {"base_url": url, "model": "m"}}}).providers
        assert (box["box"].trust, box["box"].needs_key) == ("local", False), url
    with_env = build_settings(
        {"providers": {"box": {"base_url": "http://127.0.0.1/v1", "model": "m", "key_env": "K"}}}
    )
    assert with_env.providers["box"].needs_key, "naming an env var says the server wants a key"
    remote = build_settings({"providers": {"far": {"base_url": "https://x.test/v1", "model": "m"}}})
    assert (remote.providers["far"].trust, remote.providers["far"].needs_key) == ("untrusted", True)


def test_litellm_stays_untrusted_although_it_is_on_loopback():
    litellm = build_settings({}).providers["litellm"]
    assert litellm.base_url.startswith("http://127.0.0.1")
    assert litellm.trust == "untrusted", "a proxy forwards to clouds"


# --- errors name the file, the line and the field ----------------------------------------------


def test_bad_toml_names_the_file_and_line(paths: Paths):
    message = error_for(paths, "[limits]\ntimeout_s = 1\nmodel = \n")
    assert message.startswith(f"{paths.config_file}: line 3, column 9: not valid TOML")
    assert "(at line" not in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[providers.groq]\ntrust = "maybe"\n', "line 2: providers.groq.trust: Input should be"),
        ("[providers.groq]\nprices = { input = -1 }\n", "line 2: providers.groq.prices.input"),
        ('[providers.groq]\nmodle = "x"\n', "line 2: providers.groq.modle: Extra inputs"),
        ("[providers.groq]\ncaps = { fortnight = {} }\n", "line 2: providers.groq.caps.fortnight:"),
        ("\n[limits]\ntimeout_s = 0\n", "line 3: limits.timeout_s: Input should be greater"),
        ("[limits]\nallowed_roots = [1]\n", "line 2: limits.allowed_roots.0"),
        ('[providers.groq]\nreset_tz = "Mars/Olympus"\n', "line 2: providers.groq.reset_tz"),
        (
            '[chains]\noffload = ["groq", "nope"]\n',
            "line 2: chains.offload: unknown provider 'nope'",
        ),
        ('chains = ["groq"]\n', "line 1: chains: must be a table"),
        ("[limits]\nx = 1\n\n[surprise]\nx = 1\n", "line 4: surprise: unknown section"),
        ("[providers]\ngroq = 5\n", "line 2: providers.groq: must be a table"),
        ('[providers.x]\nbase_url = "ftp://h"\nmodel = "m"\n', "line 2: providers.x.base_url"),
        ('[providers.x]\nbase_url = "https://h"\n', "line 1: providers.x.model: Field required"),
        ("[providers.x]\npreset = 3\n", "line 2: providers.x.preset: preset must be a string"),
    ],
)
def test_a_bad_field_is_one_message_naming_file_line_and_field(
    paths: Paths, text: str, expected: str
):
    message = error_for(paths, text)
    assert message.startswith(f"{paths.config_file}: ")
    assert expected in message
    assert "\n" not in message


def test_a_comment_after_a_table_header_does_not_lose_the_line(paths: Paths):
    message = error_for(paths, '[providers.groq]   # my groq\n\ntrust = "maybe"\n')
    assert "line 3: providers.groq.trust" in message


def test_several_errors_report_the_first_and_count_the_rest(paths: Paths):
    message = error_for(paths, '[providers.groq]\ntrust = "maybe"\nmodle = 1\n')
    assert "line 2: providers.groq.trust" in message and "(and 1 more)" in message


def test_build_settings_errors_are_value_errors_naming_the_field():
    with pytest.raises(ValueError, match=r"^chains\.offload: unknown provider 'nope'"):
        build_settings({"chains": {"offload": ["nope"]}})


def test_an_unreadable_file_is_a_config_error(paths: Paths):
    paths.config_file.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(paths)


# --- locate ------------------------------------------------------------------------------------

LOCATE_TEXT = """\
# comment = 1
[limits]
timeout_s = 1

[providers.groq]  # trailing comment
model = "m"
caps = { day = { requests = 1 } }
prices.input = 2

[providers."my.box"]
base_url = "http://127.0.0.1/v1"

[providers]
inline = { trust = "x" }

[chains]
offload = [
  "groq",
]
"""


@pytest.mark.parametrize(
    ("loc", "line"),
    [
        (["limits", "timeout_s"], 3),
        (["limits", "max_file_bytes"], 2),  # not written: the table's header
        (["providers", "groq", "model"], 6),
        (["providers", "groq", "caps", "day", "requests"], 7),  # inside an inline table
        (["providers", "groq", "prices", "input"], 8),  # a dotted key
        (["providers", "groq", "trust"], 5),  # missing field: its table's header
        (["providers", "my.box", "base_url"], 11),  # a quoted name with a dot
        (["providers", "inline", "trust"], 14),
        (["chains", "offload", "1"], 17),  # a multi-line array: where it starts
        (["chains", "offload"], 17),
        (["comment"], None),  # a commented-out key is not a key
        (["providers", "other", "model"], 13),  # only `[providers]` is on its path
        (["cache", "ttl_s"], None),
    ],
)
def test_locate(loc: list[str], line: int | None):
    assert locate(LOCATE_TEXT, loc) == line


# --- prices and ${VAR} -------------------------------------------------------------------------


def test_prices_charge_cached_tokens_at_the_cached_price():
    prices = Prices(input=2.0, cached_input=0.5, output=8.0)
    assert prices.cost(1000, 400, 100) == pytest.approx((600 * 2 + 400 * 0.5 + 100 * 8) / 1e6)


def test_the_cached_price_defaults_to_the_input_price():
    prices = Prices(input=1.0, output=3.0)
    assert prices.cost(100, 100, 0) == pytest.approx(100 / 1e6)
    assert prices.cost(100, 40, 10) == pytest.approx((100 * 1 + 10 * 3) / 1e6)


def test_prices_edge_cases():
    assert Prices().cost(10**6, 0, 10**6) == 0.0
    assert Prices(input=1.0, cached_input=0.0).cost(1000, 1000, 0) == 0.0
    # More cached than input tokens (a provider's odd report) never charges negative fresh tokens.
    assert Prices(input=1.0, cached_input=0.5).cost(10, 20, 0) == pytest.approx(20 * 0.5 / 1e6)
    with pytest.raises(ValueError):
        Prices(cached_input=-1)


def test_env_refs(monkeypatch: pytest.MonkeyPatch):
    url = "https://h/${ACCOUNT}/x/${REGION}/v1"
    monkeypatch.delenv("ACCOUNT", raising=False)
    monkeypatch.delenv("REGION", raising=False)
    assert missing_env_refs(url) == ["ACCOUNT", "REGION"]
    assert expand_env_refs(url) == url, "unset references stay as they are"
    monkeypatch.setenv("ACCOUNT", "abc")
    monkeypatch.setenv("REGION", "")
    assert missing_env_refs(url) == ["REGION"], "an empty variable counts as unset"
    monkeypatch.setenv("REGION", "eu")
    assert missing_env_refs(url) == []
    assert expand_env_refs(url) == "https://h/abc/x/eu/v1"
    assert missing_env_refs("https://h/$PLAIN/{X}") == [], "only ${NAME} is a reference"


def test_paths_follow_offload_mcp_home(home: Path):
    paths = Paths.discover()
    assert paths.config_file == home / "config.toml"
    assert paths.ledger_file == home / "ledger.db"
    assert paths.log_file.parent == home / "logs"
