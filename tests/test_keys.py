import json
import os
import stat
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

from offload_mcp.keys import KeyStore, keyring_backend_name
from tests.conftest import MemoryKeyring


class BrokenKeyring(MemoryKeyring):
    """A backend that exists but fails at run time, like Secret Service without D-Bus."""

    def get_password(self, service: str, username: str) -> str | None:
        raise RuntimeError("no D-Bus session")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise RuntimeError("no D-Bus session")


def test_lookup_order_keyring_then_file_then_env(
    home: Path, memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
):
    store = KeyStore(home)
    monkeypatch.setenv("GROQ_API_KEY", "from-env")
    found = store.find("groq", "GROQ_API_KEY")
    assert found is not None and (found.value, found.source) == ("from-env", "env")
    (home / "keys.json").write_text(json.dumps({"groq": "from-file"}))
    store = KeyStore(home)
    assert store.get("groq", "GROQ_API_KEY") == "from-file"
    memory_keyring.set_password("offload-mcp", "groq", "from-keyring")
    store = KeyStore(home)
    assert store.find("groq", "GROQ_API_KEY").source == "keyring"  # type: ignore[union-attr]
    assert store.get("nothing", "NOT_SET_ANYWHERE") is None


def test_set_goes_to_the_keyring_and_clears_a_file_copy(home: Path, memory_keyring: MemoryKeyring):
    (home / "keys.json").write_text(json.dumps({"groq": "old"}))
    assert KeyStore(home).set("groq", "new") == "the OS keyring"
    assert memory_keyring.store[("offload-mcp", "groq")] == "new"
    assert json.loads((home / "keys.json").read_text()) == {}


@pytest.mark.parametrize("backend", [fail.Keyring, BrokenKeyring])
def test_without_a_usable_keyring_keys_go_to_a_0600_file(home: Path, backend: type):
    keyring.set_keyring(backend())
    store = KeyStore(home)
    assert store.set("groq", "gsk-secret") == str(home / "keys.json")
    mode = stat.S_IMODE(os.stat(home / "keys.json").st_mode)
    assert mode == 0o600
    assert KeyStore(home).get("groq") == "gsk-secret"
    assert not list(home.glob(".keys-*")), "no temporary file is left behind"
    assert store.delete("groq") is True
    assert KeyStore(home).get("groq") is None
    assert store.delete("groq") is False


def test_keyring_backend_name(memory_keyring: MemoryKeyring):
    assert keyring_backend_name() == "MemoryKeyring"
    keyring.set_keyring(fail.Keyring())
    assert keyring_backend_name() is None


def test_cache_is_invalidated_by_set_and_delete(home: Path):
    store = KeyStore(home)
    assert store.get("groq") is None
    store.set("groq", "v1")
    assert store.get("groq") == "v1"
    store.delete("groq")
    assert store.get("groq") is None
    assert store.recent("groq") == (True, None)


def test_corrupt_key_file_is_ignored_with_a_warning(home: Path, caplog: pytest.LogCaptureFixture):
    (home / "keys.json").write_text("{not json")
    assert KeyStore(home).get("groq") is None
    assert "unreadable" in caplog.text
