"""Read the files a packet names: only inside the allowed roots, under the size caps, text only.

Claude passes paths instead of pasting content (pasting costs Claude tokens); this is the one
place those paths are trusted, so it resolves symlinks before checking the roots.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from offload_mcp.config import Limits
from offload_mcp.errors import InputError
from offload_mcp.packets import InputFile

#: bytes sniffed for NUL to tell binary from text
_SNIFF_BYTES = 8192


def allowed_roots(limits: Limits, cwd: Path | None = None) -> list[Path]:
    """The configured roots, or the working directory (Claude Code starts us in the project)."""
    roots = limits.allowed_roots or [str(cwd or Path.cwd())]
    return [Path(root).expanduser().resolve() for root in roots]


def read_inputs(paths: Sequence[str], limits: Limits, cwd: Path | None = None) -> list[InputFile]:
    roots = allowed_roots(limits, cwd)
    base = cwd or Path.cwd()
    files: list[InputFile] = []
    total = 0
    for name in paths:
        if not name.strip():
            raise InputError("files: an empty path was given.")
        resolved = (base / Path(name).expanduser()).resolve()
        if not any(resolved.is_relative_to(root) for root in roots):
            raise InputError(
                f"files: {name} is outside the allowed roots ({', '.join(map(str, roots))}).",
                hint="Pass a file inside the project, or add its directory to "
                "limits.allowed_roots in config.toml.",
            )
        text = _read_text(name, resolved, limits.max_file_bytes)
        total += len(text.encode("utf-8"))
        if total > limits.max_input_bytes:
            raise InputError(
                f"files: together they exceed {limits.max_input_bytes} bytes.",
                hint="Send fewer or smaller files, or raise limits.max_input_bytes.",
            )
        files.append(InputFile(path=name, text=text))
    return files


def _read_text(name: str, path: Path, max_bytes: int) -> str:
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise InputError(f"files: {name} is not a regular file.")
        if size > max_bytes:
            raise InputError(
                f"files: {name} is {size} bytes, over the {max_bytes}-byte cap.",
                hint="Send an excerpt as text, or raise limits.max_file_bytes.",
            )
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"files: {name} does not exist.") from None
    except OSError as exc:
        raise InputError(f"files: cannot read {name} ({exc.strerror}).") from None
    if b"\0" in data[:_SNIFF_BYTES]:
        raise InputError(f"files: {name} looks binary; only text files can be sent.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"files: {name} is not UTF-8 text.") from None
