"""API keys: the OS keyring first, then a 0600 file, then the provider's environment variable.

The file exists for machines with no keyring backend (headless Linux, CI). Values are never
printed, logged or put in an error; callers get them only to hand to a backend.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

SERVICE = "offload-mcp"
CACHE_TTL_S = 30.0

log = logging.getLogger(__name__)

Source = Literal["keyring", "file", "env"]


@dataclass(frozen=True)
class FoundKey:
    value: str
    source: Source


class KeyStore:
    """Looks keys up by name; caches answers briefly so a call does not hit D-Bus every time."""

    def __init__(self, config_dir: Path) -> None:
        self.file = config_dir / "keys.json"
        self._cache: dict[tuple[str, str | None], tuple[float, FoundKey | None]] = {}

    def recent(self, name: str, env_var: str | None = None) -> tuple[bool, FoundKey | None]:
        """(True, answer) when looked up within the cache TTL, without touching the keyring."""
        cached = self._cache.get((name, env_var))
        if cached and time.monotonic() - cached[0] < CACHE_TTL_S:
            return True, cached[1]
        return False, None

    def find(self, name: str, env_var: str | None = None) -> FoundKey | None:
        known, answer = self.recent(name, env_var)
        if known:
            return answer
        found = self._lookup(name, env_var)
        self._cache[(name, env_var)] = (time.monotonic(), found)
        return found

    def get(self, name: str, env_var: str | None = None) -> str | None:
        found = self.find(name, env_var)
        return found.value if found else None

    def _lookup(self, name: str, env_var: str | None) -> FoundKey | None:
        value = _keyring_get(name)
        if value:
            return FoundKey(value, "keyring")
        value = self._read_file().get(name)
        if value:
            return FoundKey(value, "file")
        value = os.environ.get(env_var) if env_var else None
        if value:
            return FoundKey(value, "env")
        return None

    def set(self, name: str, value: str) -> str:
        """Store a key; returns where it went ("the OS keyring" or the file path)."""
        self._cache.clear()
        if _keyring_set(name, value):
            stored = self._read_file()
            if name in stored:  # a stale file copy must not outlive the new key
                del stored[name]
                self._write_file(stored)
            return "the OS keyring"
        self._write_file({**self._read_file(), name: value})
        return str(self.file)

    def delete(self, name: str) -> bool:
        """Remove a key from the keyring and the file; True if it was stored anywhere."""
        self._cache.clear()
        removed = _keyring_delete(name)
        stored = self._read_file()
        if name in stored:
            del stored[name]
            self._write_file(stored)
            removed = True
        return removed

    def file_names(self) -> list[str]:
        return sorted(self._read_file())

    def _read_file(self) -> dict[str, str]:
        data = self._parse_file()
        if data is None:
            log.warning("key file %s is unreadable; ignoring it", self.file)
            return {}
        # Anything but a non-empty string is not a key (json `null` must not become "None").
        return {str(k): v for k, v in data.items() if isinstance(v, str) and v}

    def _parse_file(self) -> dict[str, object] | None:
        """The file's JSON object; {} when there is no file, None when it cannot be used."""
        try:
            data = json.loads(self.file.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _write_file(self, data: dict[str, str]) -> None:
        if not data and not self.file.exists():
            return
        self.file.parent.mkdir(parents=True, exist_ok=True)
        if self._parse_file() is None:
            # Keep what someone may still repair rather than overwrite it.
            aside = self.file.with_name(f"{self.file.name}.unreadable")
            with contextlib.suppress(OSError):
                os.replace(self.file, aside)
                log.warning("moved the unreadable key file to %s", aside)
        # Write a 0600 temp file and rename it, so the key is never world-readable, even briefly.
        fd, tmp = tempfile.mkstemp(dir=self.file.parent, prefix=".keys-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=2, sort_keys=True)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.file)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def keyring_backend_name() -> str | None:
    """The usable keyring backend's name, or None when there is none (headless Linux)."""
    try:
        import keyring
        from keyring.backends import fail

        backend = keyring.get_keyring()
        if isinstance(backend, fail.Keyring) or backend.priority <= 0:
            return None
        return type(backend).__name__
    except Exception:
        return None


def _keyring_get(name: str) -> str | None:
    if keyring_backend_name() is None:
        return None
    try:
        import keyring

        value: str | None = keyring.get_password(SERVICE, name)
        return value
    except Exception as exc:  # any backend failure means "not here"; never fatal
        log.debug("keyring lookup failed: %s", type(exc).__name__)
        return None


def _keyring_set(name: str, value: str) -> bool:
    if keyring_backend_name() is None:
        return False
    try:
        import keyring

        keyring.set_password(SERVICE, name, value)
        return True
    except Exception as exc:
        log.warning("keyring unusable (%s); storing the key in the 0600 file", type(exc).__name__)
        return False


def _keyring_delete(name: str) -> bool:
    if keyring_backend_name() is None:
        return False
    try:
        import keyring

        keyring.delete_password(SERVICE, name)
        return True
    except Exception:
        return False
