import json
import logging
import os
import stat
import time
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

from offload_mcp.keys import CACHE_TTL_S, SERVICE, KeyStore, keyring_backend_name
from tests.conftest import MemoryKeyring


class BrokenKeyring(MemoryKeyring):
    """A backend that exists but fails at run time, like Secret Service without D-Bus."""

    def get_password(self, service: str, username: str) -> str | None:
        raise RuntimeError("no D-Bus session")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise RuntimeError("no D-Bus session")

    def delete_password(self, service: str, username: str) -> None:
        raise RuntimeError("no D-Bus session")


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_lookup_order_is_keyring_then_file_then_env(
    home: Path, memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("GROQ_API_KEY", "from-env")
    found = KeyStore(home).find("groq", "GROQ_API_KEY")
    assert found is not None and (found.value, found.source) == ("from-env", "env")

    (home / "keys.json").write_text(json.dumps({"groq": "from-file"}))
    found = KeyStore(home).find("groq", "GROQ_API_KEY")
    assert found is not None and (found.value, found.source) == ("from-file", "file")

    memory_keyring.set_password(SERVICE, "groq", "from-keyring")
    found = KeyStore(home).find("groq", "GROQ_API_KEY")
    assert found is not None and (found.value, found.source) == ("from-keyring", "keyring")


def test_nothing_anywhere_is_none(home: Path):
    store = KeyStore(home)
    assert store.find("groq", "GROQ_API_KEY") is None
    assert store.get("groq") is None, "no env var named: the environment is not consulted"


def test_set_goes_to_the_keyring_and_drops_a_stale_file_copy(
    home: Path, memory_keyring: MemoryKeyring
):
    (home / "keys.json").write_text(json.dumps({"groq": "old", "gemini": "other"}))
    assert KeyStore(home).set("groq", "new") == "the OS keyring"
    assert memory_keyring.store[(SERVICE, "groq")] == "new"
    assert json.loads((home / "keys.json").read_text()) == {"gemini": "other"}


def test_set_to_the_keyring_leaves_no_file_behind(home: Path):
    KeyStore(home).set("groq", "new")
    assert not (home / "keys.json").exists()


@pytest.mark.parametrize("backend", [fail.Keyring, BrokenKeyring], ids=["no-backend", "broken"])
def test_without_a_usable_keyring_keys_go_to_a_0600_file(home: Path, backend: type):
    keyring.set_keyring(backend())
    store = KeyStore(home)
    assert store.set("groq", "gsk-secret") == str(home / "keys.json")
    assert mode(home / "keys.json") == 0o600
    assert json.loads((home / "keys.json").read_text()) == {"groq": "gsk-secret"}
    found = KeyStore(home).find("groq")
    assert found is not None and (found.value, found.source) == ("gsk-secret", "file")
    assert not list(home.glob(".keys-*")), "no temporary file is left behind"
    assert store.delete("groq") is True
    assert KeyStore(home).get("groq") is None
    assert store.delete("groq") is False


def test_the_file_is_replaced_atomically_and_keeps_0600(home: Path):
    keyring.set_keyring(fail.Keyring())
    path = home / "keys.json"
    path.write_text(json.dumps({"groq": "one"}))
    path.chmod(0o644)  # a hand-written file: the next write tightens it
    before = path.stat().st_ino
    KeyStore(home).set("gemini", "two")
    assert path.stat().st_ino != before, "a new file renamed over the old, not rewritten in place"
    assert mode(path) == 0o600
    assert json.loads(path.read_text()) == {"gemini": "two", "groq": "one"}


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    home: Path, monkeypatch: pytest.MonkeyPatch
):
    keyring.set_keyring(fail.Keyring())
    path = home / "keys.json"
    path.write_text(json.dumps({"groq": "one"}))

    def explode(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(json, "dump", explode)  # the module keys.py writes with
    with pytest.raises(OSError, match="disk full"):
        KeyStore(home).set("gemini", "two")
    assert json.loads(path.read_text()) == {"groq": "one"}
    assert not list(home.glob(".keys-*"))


def test_a_keyring_that_raises_on_lookup_falls_back_to_the_file(home: Path):
    (home / "keys.json").write_text(json.dumps({"groq": "from-file"}))
    keyring.set_keyring(BrokenKeyring())
    found = KeyStore(home).find("groq")
    assert found is not None and found.source == "file"


def test_delete_removes_the_key_from_keyring_and_file(home: Path, memory_keyring: MemoryKeyring):
    memory_keyring.set_password(SERVICE, "groq", "in-keyring")
    (home / "keys.json").write_text(json.dumps({"groq": "in-file", "gemini": "kept"}))
    store = KeyStore(home)
    assert store.delete("groq") is True
    assert (SERVICE, "groq") not in memory_keyring.store
    assert json.loads((home / "keys.json").read_text()) == {"gemini": "kept"}
    assert store.get("groq") is None
    assert store.delete("groq") is False


def test_delete_leaves_the_environment_alone(home: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GROQ_API_KEY", "from-env")
    store = KeyStore(home)
    assert store.delete("groq") is False
    assert store.get("groq", "GROQ_API_KEY") == "from-env"


def test_cache_is_invalidated_by_set_and_delete(home: Path, memory_keyring: MemoryKeyring):
    store = KeyStore(home)
    assert store.get("groq") is None
    assert store.recent("groq") == (True, None), "the miss is cached"
    store.set("groq", "v1")
    assert store.recent("groq") == (False, None), "set cleared the cache"
    assert store.get("groq") == "v1"
    store.set("groq", "v2")
    assert store.get("groq") == "v2"
    store.delete("groq")
    assert store.get("groq") is None


def test_cached_answers_do_not_touch_the_keyring(home: Path, memory_keyring: MemoryKeyring):
    memory_keyring.set_password(SERVICE, "groq", "v1")
    store = KeyStore(home)
    assert store.get("groq") == "v1"
    memory_keyring.store.clear()  # changed behind the store's back (another process)
    assert store.get("groq") == "v1", "within the TTL the cached answer stands"


def test_cache_expires(home: Path, memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch):
    store = KeyStore(home)
    assert store.get("groq") is None
    memory_keyring.set_password(SERVICE, "groq", "v1")
    later = time.monotonic() + CACHE_TTL_S + 1
    with monkeypatch.context() as patch:
        patch.setattr(time, "monotonic", lambda: later)
        assert store.get("groq") == "v1"


@pytest.mark.parametrize(
    "content",
    ["{not json", "[1, 2]", '"a string"', b"\xff\xfe".decode("latin-1")],
    ids=["corrupt", "list", "string", "not-utf8"],
)
def test_a_corrupt_key_file_is_ignored_with_a_warning(
    home: Path, content: str, caplog: pytest.LogCaptureFixture
):
    (home / "keys.json").write_text(content, encoding="latin-1")
    with caplog.at_level(logging.WARNING, logger="offload_mcp.keys"):
        store = KeyStore(home)
        assert store.get("groq") is None
        assert store.file_names() == []
    assert "unreadable" in caplog.text


def test_an_unreadable_key_file_is_ignored_with_a_warning(
    home: Path, caplog: pytest.LogCaptureFixture
):
    (home / "keys.json").mkdir()  # reading it raises IsADirectoryError, whoever runs the test
    with caplog.at_level(logging.WARNING, logger="offload_mcp.keys"):
        assert KeyStore(home).get("groq") is None
    assert "unreadable" in caplog.text


def test_non_string_values_in_the_file_are_not_keys(home: Path):
    (home / "keys.json").write_text(json.dumps({"groq": None, "gemini": 5, "ok": "v", "e": ""}))
    store = KeyStore(home)
    assert store.get("groq") is None, "json null must not become the key 'None'"
    assert store.file_names() == ["ok"]


def test_storing_over_a_corrupt_file_keeps_it_aside(home: Path, caplog: pytest.LogCaptureFixture):
    keyring.set_keyring(fail.Keyring())
    (home / "keys.json").write_text('{"groq": "hand-edited",')
    with caplog.at_level(logging.WARNING, logger="offload_mcp.keys"):
        KeyStore(home).set("gemini", "new")
    assert json.loads((home / "keys.json").read_text()) == {"gemini": "new"}
    assert (home / "keys.json.unreadable").read_text() == '{"groq": "hand-edited",'
    assert "keys.json.unreadable" in caplog.text


def test_setting_into_the_keyring_does_not_touch_a_corrupt_file(home: Path):
    (home / "keys.json").write_text("{broken")
    KeyStore(home).set("groq", "v")
    assert (home / "keys.json").read_text() == "{broken"


def test_keyring_backend_name(memory_keyring: MemoryKeyring):
    assert keyring_backend_name() == "MemoryKeyring"
    keyring.set_keyring(fail.Keyring())
    assert keyring_backend_name() is None


def test_file_names_lists_names_only(home: Path):
    keyring.set_keyring(fail.Keyring())
    store = KeyStore(home)
    store.set("zeta", "1")
    store.set("alpha", "2")
    assert store.file_names() == ["alpha", "zeta"]
