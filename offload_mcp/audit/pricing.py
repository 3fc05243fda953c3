"""API prices from `prices.toml` (data, not code) and the cost of one request."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from offload_mcp.audit.reader import Entry

KINDS = ("input", "cache_5m", "cache_1h", "cache_read", "output")
#: ccusage's long-context tier applies per token kind above this many tokens in one request
TIER_THRESHOLD = 200_000
_DATE_SUFFIX = re.compile(r"-\d{8}$")


@dataclass(frozen=True)
class ModelPrices:
    """USD per million tokens of each kind, with the optional above-200k tier."""

    input: float
    cache_5m: float
    cache_1h: float
    cache_read: float
    output: float
    above_200k: tuple[float, float, float, float, float] | None = None
    fast: float = 1.0

    def cost(self, entry: Entry) -> float:
        counts = (entry.input, entry.cache_5m, entry.cache_1h, entry.cache_read, entry.output)
        if self.above_200k is None or max(counts) <= TIER_THRESHOLD:  # the common case
            total = (
                counts[0] * self.input
                + counts[1] * self.cache_5m
                + counts[2] * self.cache_1h
                + counts[3] * self.cache_read
                + counts[4] * self.output
            )
            return total / 1e6 * (self.fast if entry.fast else 1.0)
        base = (self.input, self.cache_5m, self.cache_1h, self.cache_read, self.output)
        total = 0.0
        for i, tokens in enumerate(counts):
            if self.above_200k is not None and tokens > TIER_THRESHOLD:
                total += TIER_THRESHOLD * base[i] + (tokens - TIER_THRESHOLD) * self.above_200k[i]
            else:
                total += tokens * base[i]
        return total / 1e6 * (self.fast if entry.fast else 1.0)


@dataclass(frozen=True)
class Target:
    """A model an offload could go to: per-token prices, no cache discount assumed."""

    name: str
    label: str
    input: float
    output: float


@cache
def _table() -> dict[str, Any]:
    text = resources.files("offload_mcp.audit").joinpath("prices.toml").read_text("utf-8")
    return tomllib.loads(text)


def _five(raw: dict[str, Any]) -> tuple[float, float, float, float, float]:
    i, c5, c1, cr, o = (float(raw[kind]) for kind in KINDS)
    return i, c5, c1, cr, o


def _model_prices(raw: dict[str, Any]) -> ModelPrices:
    tier = raw.get("above_200k")
    return ModelPrices(
        *_five(raw), above_200k=_five(tier) if tier else None, fast=float(raw.get("fast", 1.0))
    )


class PriceTable:
    """Looks a model up by its name less any `provider/` prefix and `-YYYYMMDD` suffix."""

    def __init__(self, models: dict[str, ModelPrices]) -> None:
        self.models = models
        self._found: dict[str, ModelPrices | None] = {}

    @classmethod
    def load(cls) -> PriceTable:
        models = {name: _model_prices(raw) for name, raw in _table()["models"].items()}
        return cls(models)

    def find(self, model: str) -> ModelPrices | None:
        if model not in self._found:
            name = _DATE_SUFFIX.sub("", model.rsplit("/", 1)[-1])
            self._found[model] = self.models.get(name)
        return self._found[model]

    def cost(self, entry: Entry) -> float | None:
        """USD at API prices, or None when the model is not in the table."""
        prices = self.find(entry.model)
        return None if prices is None else prices.cost(entry)


def targets() -> dict[str, Target]:
    return {
        name: Target(name, str(raw.get("label", name)), float(raw["input"]), float(raw["output"]))
        for name, raw in _table()["targets"].items()
    }
