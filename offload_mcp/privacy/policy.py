"""Who may see what: a provider's trust level decides, per category, allow, redact or block.

Defaults follow ARCHITECTURE.md ("Trust and privacy"); a provider's config may override
any category. Unknown trust levels get the strictest row, so a typo never loosens the gate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from offload_mcp.privacy.findings import CATEGORIES, Category

Action = Literal["allow", "redact", "block"]
ACTIONS: tuple[Action, ...] = ("allow", "redact", "block")

DEFAULTS: dict[str, dict[Category, Action]] = {
    "local": {"secret": "allow", "pii": "allow", "phi": "allow"},
    "trusted": {"secret": "redact", "pii": "allow", "phi": "block"},
    "untrusted": {"secret": "redact", "pii": "redact", "phi": "block"},
}


def decide(trust: str, category: Category, overrides: Mapping[str, str] | None = None) -> Action:
    """The action for one category at one trust level, after the provider's overrides."""
    if overrides and category in overrides:
        action = overrides[category]
        if action not in ACTIONS:
            raise ValueError(f"privacy override for {category}: {action!r} is not one of {ACTIONS}")
        return action
    return DEFAULTS.get(trust, DEFAULTS["untrusted"])[category]


def actions(trust: str, overrides: Mapping[str, str] | None = None) -> dict[Category, Action]:
    """Every category's action at this trust level."""
    return {category: decide(trust, category, overrides) for category in CATEGORIES}
