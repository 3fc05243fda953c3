"""The error hierarchy: every failure on the dispatch path is one of these.

Each error carries a message a person can act on: which provider, what happened and
what to do next. `tools.py` turns them into `ToolError`s, the only exception whose text
reaches the model. Messages never contain key values or packet content.
"""

from __future__ import annotations


class OffloadError(Exception):
    """Base class; `str(error)` is the whole user-facing message."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} {hint}".strip())


class ConfigError(OffloadError):
    """The config file is missing a field, has a bad value, or cannot be parsed."""


class InvalidRequest(OffloadError):
    """A tool was called with arguments that cannot make a packet."""


class InputError(InvalidRequest):
    """A named input file is outside the allowed roots, too big, binary or unreadable."""


class MissingKey(OffloadError):
    """A provider needs an API key and none is stored or set in the environment."""

    def __init__(self, provider: str, key_name: str, env_var: str | None) -> None:
        fix = f"run 'offload-mcp keys set {key_name}'"
        if env_var:
            fix += f" or set {env_var}"
        super().__init__(f"{provider}: no API key.", hint=f"Fix: {fix}.")
        self.provider = provider


class ProviderError(OffloadError):
    """A provider was called and the call failed; the chain may try the next one."""

    #: short machine-readable kind, recorded in the ledger
    kind = "provider_error"

    def __init__(self, provider: str, message: str, *, hint: str = "") -> None:
        super().__init__(f"{provider}: {message}", hint=hint)
        self.provider = provider


class AuthFailed(ProviderError):
    kind = "auth"


class NotAllowed(ProviderError):
    """402 / 403: no credit, moderation, or the key may not use this model."""

    kind = "forbidden"


class ModelNotFound(ProviderError):
    kind = "model_not_found"


class RateLimited(ProviderError):
    """429; `retry_after_s` is the provider's own word on when to come back, if it gave one."""

    kind = "rate_limited"

    def __init__(
        self, provider: str, message: str, *, retry_after_s: float | None = None, hint: str = ""
    ) -> None:
        super().__init__(provider, message, hint=hint)
        self.retry_after_s = retry_after_s


class ProviderDown(ProviderError):
    """Connection refused, DNS failure or a 5xx: the provider is not serving now."""

    kind = "down"


class ProviderTimeout(ProviderError):
    kind = "timeout"


class BadResponse(ProviderError):
    """The provider answered, but not in the documented shape."""

    kind = "bad_response"


class InvalidOutput(ProviderError):
    """The answer did not satisfy the packet's output contract, even after one retry."""

    kind = "invalid_output"


class NoProviderLeft(OffloadError):
    """Every provider of the chain was skipped or failed; the message lists why, one per line."""

    def __init__(self, tool: str, reasons: list[str], *, hint: str = "") -> None:
        lines = "\n".join(f"- {reason}" for reason in reasons) or "- the chain is empty"
        super().__init__(f"No provider could run this {tool} packet:\n{lines}", hint=hint)
        self.reasons = reasons
