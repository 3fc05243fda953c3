"""What offloading a share of the requests to a per-token model would really cost.

Naive: only the fresh input (uncached input + cache writes) and the output are billed.
Real: a per-token API without Claude's cache re-bills the whole context (input + cache writes +
cache reads) at full input price on every turn, plus the output. The gap is the cache-read share.
One-shot packets: each offloaded request becomes one packet carrying `packet_tokens` of input
instead of the conversation, plus the same output.
The share is applied uniformly: every figure is `share` times the figure over all requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from offload_mcp.audit.pricing import Target
from offload_mcp.audit.report import Tally

HEURISTIC = (
    "share applied uniformly to all requests; naive = (uncached input + cache writes) x input "
    "price + output x output price; real = (input + cache writes + cache reads) x input price "
    "+ output x output price, i.e. every turn re-sends the whole context with no cache discount; "
    "packets = one request per offloaded turn carrying packet_tokens of input + the same output"
)


@dataclass(frozen=True)
class Projection:
    target: Target
    share: float
    packet_tokens: int
    claude_usd: float
    naive_usd: float
    real_usd: float
    packet_usd: float
    cache_read_share: float
    requests: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target.name,
            "target_label": self.target.label,
            "target_prices": {"input": self.target.input, "output": self.target.output},
            "share": self.share,
            "requests": self.requests,
            "claude_usd": self.claude_usd,
            "naive_usd": self.naive_usd,
            "real_usd": self.real_usd,
            "real_over_naive": self.real_usd / self.naive_usd if self.naive_usd else None,
            "packet_tokens": self.packet_tokens,
            "packet_usd": self.packet_usd,
            "cache_read_share": self.cache_read_share,
            "heuristic": HEURISTIC,
        }


def project(total: Tally, target: Target, share: float, packet_tokens: int) -> Projection:
    """Cost of offloading `share` of the requests in `total` to `target`."""
    per_m = 1e6
    output_usd = total.output * target.output / per_m
    naive = (total.input + total.cache_write) * target.input / per_m + output_usd
    real = total.context * target.input / per_m + output_usd
    packets = total.requests * packet_tokens * target.input / per_m + output_usd
    return Projection(
        target=target,
        share=share,
        packet_tokens=packet_tokens,
        claude_usd=share * total.usd,
        naive_usd=share * naive,
        real_usd=share * real,
        packet_usd=share * packets,
        cache_read_share=total.cache_read / total.context if total.context else 0.0,
        requests=share * total.requests,
    )


def parse_target(value: str, presets: dict[str, Target]) -> Target:
    """A preset name, or `IN,OUT` USD per million tokens."""
    if value in presets:
        return presets[value]
    parts = value.split(",")
    if len(parts) == 2:
        try:
            price_in, price_out = float(parts[0]), float(parts[1])
        except ValueError:
            pass
        else:
            if price_in >= 0 and price_out >= 0:
                return Target(
                    value, f"custom ${price_in:g}/${price_out:g} per M", price_in, price_out
                )
    raise ValueError(f"{value!r}: use a preset ({', '.join(presets)}) or IN,OUT like 0.4,1.75")
