"""What a backend sees: the packet rendered as chat messages, and the packet's stable digest."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence

from offload_mcp import contract
from offload_mcp.packets import InputFile, Message, Packet
from offload_mcp.templates import get_template


def render_messages(packet: Packet, files: Sequence[InputFile]) -> tuple[Message, ...]:
    """The packet as chat messages: the shared system prompt, then the rendered template."""
    sections: list[str] = []
    if packet.text:
        sections.append(f"\n## Input\n{_fenced(packet.text)}")
    sections.extend(f"\n## File: {f.path}\n{_fenced(f.text)}" for f in files)
    user = get_template(packet.template).render(
        task=packet.task.strip(),
        inputs="".join(sections),
        output_rules=contract.output_rules(packet.contract),
    )
    system = get_template("system").render()
    return (Message("system", system.strip()), Message("user", user.strip()))


def _fenced(text: str) -> str:
    """Fence input so it cannot be mistaken for instructions; longer fence if text has one."""
    longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=2)
    fence = "`" * (longest + 1)
    return f"{fence}\n{text.rstrip()}\n{fence}"


def packet_hash(packet: Packet, files: Sequence[InputFile]) -> str:
    """A stable digest of what the packet asks and carries; content itself is never stored."""
    payload = {
        "task": " ".join(packet.task.split()),
        "text": packet.text,
        "files": [[f.path, hashlib.sha256(f.text.encode()).hexdigest()] for f in files],
        "contract": [packet.contract.kind, list(packet.contract.labels), packet.contract.schema],
        "template": packet.template,
        "max_output_tokens": packet.max_output_tokens,
    }
    encoded = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:32]
