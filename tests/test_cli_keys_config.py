import importlib
import json
import os
import stat
from pathlib import Path

import keyring
import pytest
from click.testing import CliRunner, Result
from keyring.backends import fail

from offload_mcp.cli import cli
from offload_mcp.keys import SERVICE
from tests.conftest import MemoryKeyring

# `offload_mcp.cli.keys` the attribute is the click group; this is the module.
keys_cli = importlib.import_module("offload_mcp.cli.keys")

SECRET = "gsk-this-must-never-be-printed"


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=stdin)


def row(output: str, name: str) -> str:
    """The table line whose first cell is `name`."""
    return next(line for line in output.splitlines() if line.startswith(f"│ {name} "))


def every_output(*results: Result) -> str:
    return "\n".join(result.stdout + result.stderr for result in results)


# --- keys ----------------------------------------------------------------------------------------


def test_keys_set_from_stdin_then_list_shows_the_source_never_the_value(
    memory_keyring: MemoryKeyring,
):
    stored = run("keys", "set", "groq", stdin=f"  {SECRET}\n")
    assert stored.exit_code == 0, stored.output
    assert "OS keyring (MemoryKeyring)" in stored.stdout
    assert memory_keyring.store[(SERVICE, "groq")] == SECRET, "stored stripped"
    listed = run("keys", "list")
    assert listed.exit_code == 0
    assert "keyring" in row(listed.stdout, "groq")
    outputs = every_output(
        stored,
        listed,
        run("keys"),
        run("config", "show"),
        run("config", "show", "--json"),
        run("config"),
    )
    for fragment in (SECRET, SECRET[:8], SECRET[-8:]):
        assert fragment not in outputs, "not even part of the key"


def test_keys_list_names_missing_keys_with_the_fix_and_env_sources(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    listed = run("keys", "list")
    assert listed.exit_code == 0
    groq = row(listed.stdout, "groq")
    assert "missing: run 'offload-mcp keys set groq' or set GROQ_API_KEY" in groq
    assert "env GEMINI_API_KEY" in row(listed.stdout, "gemini")
    assert "openrouter-free" in row(listed.stdout, "openrouter"), "who uses the key"
    assert "not set (optional)" in row(listed.stdout, "litellm")
    assert "│ lmstudio " not in listed.stdout, "local servers need no key"
    assert SECRET not in listed.output


def test_keys_list_includes_names_only_in_the_file_and_keys_for_local_servers(home: Path):
    keyring.set_keyring(fail.Keyring())
    (home / "keys.json").write_text(json.dumps({"my-extra": "v1", "vllm": "v2"}))
    listed = run("keys", "list")
    assert "file" in row(listed.stdout, "my-extra")
    assert "file" in row(listed.stdout, "vllm")
    assert "none, so keys go to the file" in listed.stdout
    assert "v1" not in listed.stdout and "v2" not in listed.stdout


def test_keys_set_without_a_keyring_uses_a_0600_file(home: Path):
    keyring.set_keyring(fail.Keyring())
    result = run("keys", "set", "openrouter", stdin=SECRET)
    assert result.exit_code == 0
    assert f"{home / 'keys.json'} (mode 0600)" in result.stdout
    assert stat.S_IMODE(os.stat(home / "keys.json").st_mode) == 0o600
    listed = run("keys", "list")
    assert "file" in row(listed.stdout, "openrouter")
    assert SECRET not in every_output(result, listed)


def test_keys_set_at_a_terminal_prompts_without_echo(
    memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(keys_cli, "stdin_is_tty", lambda: True)
    result = run("keys", "set", "groq", stdin=SECRET + "\n")
    assert result.exit_code == 0
    assert "API key for groq" in result.output
    assert SECRET not in result.output
    assert memory_keyring.store[(SERVICE, "groq")] == SECRET


@pytest.mark.parametrize("value", ["", "  \n", "\n\n"])
def test_keys_set_refuses_an_empty_value(value: str, memory_keyring: MemoryKeyring):
    result = run("keys", "set", "groq", stdin=value)
    assert result.exit_code == 2
    assert "empty" in result.stderr
    assert memory_keyring.store == {}


def test_keys_set_refuses_more_than_one_key(memory_keyring: MemoryKeyring):
    result = run("keys", "set", "groq", stdin="GROQ_API_KEY=a\nGEMINI_API_KEY=b\n")
    assert result.exit_code == 2 and "line breaks" in result.stderr
    assert memory_keyring.store == {}
    assert "GROQ_API_KEY=a" not in result.output


def test_keys_set_warns_on_an_unknown_name_but_stores_it(memory_keyring: MemoryKeyring):
    result = run("keys", "set", "grok", stdin=SECRET)
    assert result.exit_code == 0
    assert "no configured provider uses a key named 'grok'" in result.stderr
    assert "groq" in result.stderr and "openrouter" in result.stderr, "lists the known names"
    assert memory_keyring.store[(SERVICE, "grok")] == SECRET
    known = run("keys", "set", "groq", stdin=SECRET)
    assert known.stderr == ""


def test_keys_set_knows_names_from_the_users_config(home: Path):
    (home / "config.toml").write_text(
        '[providers.mine]\nbase_url = "https://x.test/v1"\nmodel = "m"\nkey = "my-key"\n'
    )
    assert run("keys", "set", "my-key", stdin=SECRET).stderr == ""


def test_keys_set_says_a_stored_key_beats_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GROQ_API_KEY", "other")
    result = run("keys", "set", "groq", stdin=SECRET)
    assert "GROQ_API_KEY is also set; the stored key takes precedence" in result.stdout


def test_keys_delete(memory_keyring: MemoryKeyring):
    run("keys", "set", "groq", stdin=SECRET)
    deleted = run("keys", "delete", "groq")
    assert deleted.exit_code == 0 and "Deleted the stored key 'groq'" in deleted.stdout
    assert memory_keyring.store == {}
    missing = run("keys", "delete", "groq")
    assert missing.exit_code == 1 and "No stored key named 'groq'" in missing.stderr


def test_keys_delete_from_the_file(home: Path):
    keyring.set_keyring(fail.Keyring())
    run("keys", "set", "groq", stdin=SECRET)
    assert run("keys", "delete", "groq").exit_code == 0
    assert json.loads((home / "keys.json").read_text()) == {}


def test_keys_delete_mentions_an_env_var_still_set(monkeypatch: pytest.MonkeyPatch):
    run("keys", "set", "groq", stdin=SECRET)
    monkeypatch.setenv("GROQ_API_KEY", "other")
    result = run("keys", "delete", "groq")
    assert result.exit_code == 0 and "GROQ_API_KEY is still set" in result.stdout


def test_keys_delete_works_with_a_broken_config(home: Path):
    run("keys", "set", "groq", stdin=SECRET)
    (home / "config.toml").write_text("[limits\n")
    assert run("keys", "delete", "groq").exit_code == 0


# --- config --------------------------------------------------------------------------------------


def test_config_init_refuses_to_overwrite_unless_forced(home: Path):
    first = run("config", "init")
    path = home / "config.toml"
    assert first.exit_code == 0 and str(path) in first.stdout
    assert path.read_text().startswith("# offload-mcp configuration")
    assert run("config", "show").exit_code == 0, "the starter file is valid"
    path.write_text("# mine\n")
    again = run("config", "init")
    assert again.exit_code == 1 and "--force" in again.stderr
    assert path.read_text() == "# mine\n", "left alone"
    forced = run("config", "init", "--force")
    assert forced.exit_code == 0 and path.read_text().startswith("# offload-mcp configuration")


def test_config_init_creates_the_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    nested = tmp_path / "a" / "b"
    monkeypatch.setenv("OFFLOAD_MCP_HOME", str(nested))
    assert run("config", "init").exit_code == 0
    assert (nested / "config.toml").is_file()


def test_config_show_hides_key_values_and_shows_sources(
    home: Path, monkeypatch: pytest.MonkeyPatch
):
    (home / "config.toml").write_text('[providers.groq]\nmodel = "llama-3.1-8b-instant"\n')
    monkeypatch.setenv("CEREBRAS_API_KEY", SECRET)
    run("keys", "set", "groq", stdin=SECRET)
    shown = run("config", "show")
    assert shown.exit_code == 0
    assert f"config  {home / 'config.toml'}" in shown.stdout
    assert "keyring" in row(shown.stdout, "groq") and "llama-3.1-8b-instant" in shown.stdout
    assert "env CEREBRAS_API_KEY" in row(shown.stdout, "cerebras")
    assert "openrouter: missing" in row(shown.stdout, "openrouter-free")
    assert "keys list" in shown.stdout, "points at the fix"
    assert "0.1 / 0.025 / 0.4" in row(shown.stdout, "openrouter-flash-lite")
    assert "chain" in shown.stdout and "groq -> cerebras" in shown.stdout
    assert SECRET not in shown.output


def test_config_show_without_a_file_says_so(home: Path):
    shown = run("config", "show")
    assert f"built-in defaults (no {home / 'config.toml'})" in shown.stdout


def test_config_show_json(home: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GROQ_API_KEY", SECRET)
    (home / "config.toml").write_text(
        '[providers.groq]\nheaders = { Authorization = "Bearer hunter2", X-Title = "t" }\n'
    )
    result = run("config", "show", "--json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["source"] == str(home / "config.toml")
    groq = document["providers"]["groq"]
    assert groq["key_status"] == "env GROQ_API_KEY"
    assert groq["headers"] == {"Authorization": "<hidden>", "X-Title": "t"}
    assert groq["chains"] == ["offload"]
    assert document["providers"]["cerebras"]["key_status"] == "missing"
    assert document["providers"]["ollama"]["key_status"] == "not needed"
    assert document["providers"]["cloudflare"]["missing_env"] == ["CLOUDFLARE_ACCOUNT_ID"]
    assert document["chains"]["offload"][0] == "groq"
    assert document["limits"]["timeout_s"] == 120
    assert SECRET not in result.output and "hunter2" not in result.output


@pytest.mark.parametrize(
    "command",
    [("config", "show"), ("config", "show", "--json"), ("keys", "list"), ("keys", "set", "groq")],
)
def test_a_broken_config_is_one_line_and_exit_2(home: Path, command: tuple[str, ...]):
    (home / "config.toml").write_text('[limits]\ntimeout_s = "soon"\n')
    result = run(*command, stdin=SECRET)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "line 2: limits.timeout_s" in result.stderr
    assert str(home / "config.toml") in result.stderr
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_config_path(home: Path):
    result = run("config", "path")
    assert result.exit_code == 0
    for expected in ("config.toml", "keys.json", "ledger.db", "offload-mcp.log"):
        assert str(home) in result.stdout and expected in result.stdout


def test_config_presets_one_line_each():
    result = run("config", "presets")
    assert result.exit_code == 0
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert "openrouter-haiku" in lines and " paid " in f"{lines['openrouter-haiku']} "
    assert "anthropic/claude-haiku-4.5" in lines["openrouter-haiku"]
    assert "untrusted" in lines["groq"] and lines["groq"].endswith("free")
    assert "local" in lines["ollama"]
    assert "openrouter, groq-base, cerebras-base" in result.stdout


def test_help_texts_carry_examples():
    for group in ("keys", "config"):
        result = run(group, "--help")
        assert result.exit_code == 0 and "Example usage:" in result.stdout
    assert "echo" in run("keys", "set", "--help").stdout
