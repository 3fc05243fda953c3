"""Which model family a provider serves, and which families may review a packet.

A second opinion is worth most from a model built differently from the coordinator, so
families are read from who made the model, not from who hosts it: `gpt-oss-120b` on Cerebras is
OpenAI's, `meta/llama-3.3-70b-instruct` on NVIDIA NIM is Meta's. Claude is the coordinator, so
`anthropic` is opt-in (named in `families`, or listed in a user's `cross_check` chain). The
embedded model only classifies, and a grounded Gemini CLI appends sources to every answer, so
neither reviews.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from offload_mcp.config import ProviderConfig, Settings
from offload_mcp.errors import InvalidRequest

TOOL = "cross_check"
ANTHROPIC = "anthropic"

_BY_KIND = {"codex": "openai", "gemini": "google", "gemini_cli": "google"}

#: a model id segment starting with one of these names (then a digit, a separator or its end)
_NAMES: tuple[tuple[str, str], ...] = (
    ("openai", r"chatgpt|gpt|o\d|openai|davinci"),
    ("google", r"gemini|gemma|google"),
    (ANTHROPIC, r"claude|anthropic"),
    ("meta", r"llama|meta-llama|meta"),
    (
        "mistral",
        r"mistral|mistralai|mixtral|ministral|magistral|codestral|devstral|pixtral|voxtral",
    ),
    ("deepseek", r"deepseek|deepseek-ai"),
    ("alibaba", r"qwen|qwq|alibaba"),
    ("zhipu", r"glm|chatglm|z-ai|zai-org|zhipu|thudm"),
    ("moonshot", r"kimi|moonshot|moonshotai"),
    ("xai", r"grok|x-ai|xai"),
    ("microsoft", r"phi|microsoft"),
    ("cohere", r"command|cohere|c4ai|aya"),
    ("ibm", r"granite|ibm-granite|ibm"),
    ("nvidia", r"nemotron|nvidia"),
    ("minimax", r"minimax|minimaxai"),
)
_PATTERNS = tuple((family, re.compile(rf"(?:{names})(?=$|[-_.:\d])")) for family, names in _NAMES)

#: built-in presets in the order they are asked when no `cross_check` chain is configured:
#: the strongest flat-rate or free reviewer of each family first, local models last
REVIEW_ORDER = (
    "codex",
    "cerebras",
    "gemini-flash",
    "gemini-flash-lite",
    "openrouter-flash-lite",
    "openrouter-qwen",
    "groq",
    "openrouter-free",
    "nvidia-nim",
    "huggingface",
    "cloudflare",
    "mistral",
    "openrouter-glm",
    "openrouter-kimi",
    "ollama",
    "ollama-openai",
)


@dataclass(frozen=True)
class Family:
    """One model family and the providers that serve it, in the order they are tried."""

    name: str
    providers: tuple[ProviderConfig, ...]


def family_of(provider: ProviderConfig) -> str | None:
    """The provider's model family: its `family` field, else read from kind and model id."""
    if provider.family:
        return provider.family
    if provider.kind == "embedded":
        return None
    if provider.kind in _BY_KIND:
        return _BY_KIND[provider.kind]
    return model_family(provider.model)


def model_family(model: str) -> str | None:
    """`meta/llama-3.3-70b` -> meta: the model name first, then the vendor segments."""
    for segment in reversed(model.lower().split("/")):
        for family, pattern in _PATTERNS:
            if pattern.match(segment):
                return family
    return None


def can_review(provider: ProviderConfig) -> bool:
    return (
        provider.enabled
        and provider.kind != "embedded"
        and not (provider.kind == "gemini_cli" and provider.grounding)
    )


def reviewer_families(settings: Settings) -> list[Family]:
    """Every family with a provider that could review, in preference order.

    A user's `cross_check` chain decides which providers and in what order; without one,
    every enabled provider whose family is known takes part, built-in presets in
    `REVIEW_ORDER` first, then the rest in config order, and Anthropic's only on request.
    """
    chain = settings.chains.get(TOOL)
    if chain is not None:
        providers = [settings.providers[name] for name in chain]
    else:
        order = {name: i for i, name in enumerate(REVIEW_ORDER)}
        providers = sorted(settings.providers.values(), key=lambda p: order.get(p.name, len(order)))
    groups: dict[str, list[ProviderConfig]] = {}
    for provider in providers:
        family = family_of(provider) if can_review(provider) else None
        if family is not None:
            groups.setdefault(family, []).append(provider)
    return [Family(name, tuple(members)) for name, members in groups.items()]


def choose(families: Sequence[Family], wanted: Sequence[str], chained: bool) -> list[Family]:
    """The families to ask: those named (in that order), else all but Anthropic's.

    `chained`: the user listed the providers in a `cross_check` chain, Anthropic's included
    if they put one there.
    """
    by_name = {family.name: family for family in families}
    if not wanted:
        return [f for f in families if chained or f.name != ANTHROPIC]
    names = [name.strip().lower() for name in wanted]
    if len(set(names)) < 2 or len(set(names)) != len(names):
        raise InvalidRequest("families: name at least two different families, each once.")
    unknown = [name for name in names if name not in by_name]
    if unknown:
        known = ", ".join(by_name) or "none"
        raise InvalidRequest(
            f"families: no reviewing provider of family {', '.join(map(repr, unknown))} is "
            f"configured (configured: {known}).",
            hint='Add one, or set `family = "NAME"` on a provider in config.toml.',
        )
    return [by_name[name] for name in names]
