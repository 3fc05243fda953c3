"""The privacy gate's place on the dispatch path: scan once, screen per provider, restore.

The detectors and policy live in `offload_mcp.privacy` (imported on first use: RE2 and the
rule book stay out of server start-up); this module is the glue dispatch needs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from offload_mcp import contract
from offload_mcp.config import ProviderConfig
from offload_mcp.packets import Grounding, Message, Packet

if TYPE_CHECKING:
    from offload_mcp.privacy import PacketScan, Screened

#: packets shorter than this are scanned on the event loop (well under a millisecond)
INLINE_SCAN_CHARS = 16_384


def overrides(provider: ProviderConfig) -> dict[str, str]:
    """The provider's per-category privacy overrides, in the shape the policy takes."""
    return {str(category): str(action) for category, action in provider.privacy.items()}


@dataclass(frozen=True)
class Sending:
    """The rendered messages and the one privacy scan of the user message they carry."""

    messages: tuple[Message, ...]
    found: PacketScan

    def for_provider(self, screened: Screened) -> tuple[Message, ...]:
        """The messages this provider may see: the user message as screened for its trust."""
        if screened.texts == self.found.texts:
            return self.messages
        system, _ = self.messages
        return (system, Message("user", screened.texts[0]))


async def scan_messages(messages: tuple[Message, ...]) -> PacketScan:
    """Scan the packet's user message (the system prompt is ours); big ones off the loop.

    The first packet also warms the scanner off the loop (rule book, lazy imports: ~0.2 s
    once), so no later packet, however small, stalls the event loop on a first use.
    """
    from offload_mcp.privacy import scan_packet, warm, warmed  # first use only

    texts = [messages[1].content]
    if not warmed():
        await anyio.to_thread.run_sync(warm)
    if len(texts[0]) < INLINE_SCAN_CHARS:
        return scan_packet(texts)
    return await anyio.to_thread.run_sync(scan_packet, texts)


def redact_all(text: str) -> str:
    """Every finding replaced by its placeholder, whatever the trust (for stored content)."""
    from offload_mcp.privacy import screen

    return screen([text], "untrusted", _REDACT_EVERYTHING).texts[0] if text else text


_REDACT_EVERYTHING = {"secret": "redact", "pii": "redact", "phi": "redact"}


def restored(packet: Packet, screened: Screened, answer: str) -> contract.Checked:
    """Check the answer as the provider gave it, then put the redacted values back.

    Restoring after parsing keeps a value with quotes or backslashes from breaking JSON.
    """
    checked = contract.check(packet.contract, answer)
    if screened.restore(answer) == answer:
        return checked
    data = screened.restore(checked.data)
    if packet.contract.kind == "json":
        return contract.Checked(json.dumps(data, ensure_ascii=False, separators=(",", ":")), data)
    return contract.Checked(screened.restore(checked.text), data)


def restored_grounding(screened: Screened, grounding: Grounding | None) -> Grounding | None:
    """The grounding's passages, titles and searches with the redacted values put back, so
    cited passages still match the restored answer."""
    return grounding.mapped(screened.restore) if grounding else None
