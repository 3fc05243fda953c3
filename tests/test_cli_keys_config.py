import json
import os
import stat
from pathlib import Path

import keyring
from click.testing import CliRunner
from keyring.backends import fail

from offload_mcp.cli import cli
from tests.conftest import MemoryKeyring

SECRET = "gsk-this-must-never-be-printed"


def run(*args: str, stdin: str | None = None):
    return CliRunner().invoke(cli, list(args), input=stdin)


def test_keys_set_from_stdin_then_list_shows_source_not_value(memory_keyring: MemoryKeyring):
    result = run("keys", "set", "groq", stdin=SECRET + "\n")
    assert result.exit_code == 0 and "OS keyring" in result.output
    assert memory_keyring.store[("offload-mcp", "groq")] == SECRET
    listed = run("keys", "list")
    assert listed.exit_code == 0
    line = next(line for line in listed.output.splitlines() if " groq " in line)
    assert "keyring" in line
    for output in (
        result.output,
        listed.output,
        run("config", "show").output,
        run("config", "show", "--json").output,
        run("status", "--no-check").output,
    ):
        assert SECRET not in output


def test_keys_set_without_keyring_uses_a_0600_file(home: Path):
    keyring.set_keyring(fail.Keyring())
    result = run("keys", "set", "openrouter", stdin=SECRET)
    assert result.exit_code == 0 and str(home / "keys.json") in result.output
    assert stat.S_IMODE(os.stat(home / "keys.json").st_mode) == 0o600
    assert "file" in run("keys", "list").output


def test_keys_set_refuses_empty_and_warns_on_unknown_names():
    assert run("keys", "set", "groq", stdin="  \n").exit_code == 2
    result = run("keys", "set", "grok", stdin=SECRET)
    assert result.exit_code == 0
    assert "no configured provider uses a key named 'grok'" in result.output


def test_keys_delete():
    run("keys", "set", "groq", stdin=SECRET)
    assert run("keys", "delete", "groq").exit_code == 0
    missing = run("keys", "delete", "groq")
    assert missing.exit_code == 1 and "No stored key" in missing.output


def test_config_init_refuses_to_overwrite(home: Path):
    first = run("config", "init")
    assert first.exit_code == 0 and (home / "config.toml").exists()
    assert run("config", "show").exit_code == 0, "the starter file is valid"
    again = run("config", "init")
    assert again.exit_code == 1 and "--force" in again.output
    assert run("config", "init", "--force").exit_code == 0


def test_config_show_json(monkeypatch):
    monkeypatch.setenv("GROQ_API_KEY", SECRET)
    result = run("config", "show", "--json")
    document = json.loads(result.output)
    assert document["providers"]["groq"]["key_status"] == "env GROQ_API_KEY"
    assert document["providers"]["cerebras"]["key_status"] == "missing"
    assert document["chains"]["offload"][0] == "groq"
    assert SECRET not in result.output


def test_broken_config_is_one_line_and_exit_2(home: Path):
    (home / "config.toml").write_text('[limits]\ntimeout_s = "soon"\n')
    for command in (("config", "show"), ("keys", "list"), ("status",)):
        result = run(*command)
        assert result.exit_code == 2
        assert "line 2: limits.timeout_s" in result.output
        assert "Traceback" not in result.output


def test_config_path_and_presets(home: Path):
    assert str(home / "ledger.db") in run("config", "path").output
    presets = run("config", "presets").output
    assert "openrouter-haiku" in presets and "paid" in presets
