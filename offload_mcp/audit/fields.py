"""Decode only the fields the audit reads from a transcript line, skipping the rest unbuilt.

An assistant line is mostly its one content block: thinking text and its signature, a reply,
a tool's input (whole files for Write). Decoded into these msgspec structs, those bytes are
stepped over without building Python strings: about twice as fast as a full parse into dicts.
Anything the types do not fit (a field of another kind) raises `Unfit`, and the caller parses
the line in full instead, so the result is always the one the full parse gives.
"""

from __future__ import annotations

from typing import Any

import msgspec


class ToolInput(msgspec.Struct):
    command: Any = None


class Block(msgspec.Struct):
    type: Any = None
    name: Any = None
    input: ToolInput | None = None


class Message(msgspec.Struct):
    id: Any = None
    model: Any = None
    usage: Any = None
    content: list[Block] | str | None = None


class Line(msgspec.Struct):
    type: Any = None
    cwd: Any = None
    timestamp: Any = None
    requestId: Any = None  # the transcript's own key names
    isSidechain: Any = None
    message: Message | None = None


Unfit = msgspec.MsgspecError
_decode = msgspec.json.Decoder(Line).decode


def decode(raw: bytes) -> Line:
    """The line's fields; raises `Unfit` (or UnicodeDecodeError) where a full parse must decide.

    msgspec does not check the UTF-8 of strings it skips; orjson refuses a line with bad
    UTF-8 anywhere, so the bytes are checked first (ASCII, the common case, is one pass).
    """
    if not raw.isascii():
        raw.decode()
    return _decode(raw)
