"""The prose Claude reads: one line per family, then where the families part ways.

Claude pays for every token of it, so problems are cut to the first few per family and the
agreement line names places (file:line), not the issues again.
"""

from __future__ import annotations

from offload_mcp.crosscheck.run import Answer, Outcome
from offload_mcp.crosscheck.verdict import spots

PROBLEMS_SHOWN = 3
ISSUE_CHARS = 140
SUMMARY_CHARS = 240
PLACES_SHOWN = 6


def render(outcome: Outcome) -> str:
    answered = outcome.answered
    lines: list[str] = []
    if len(answered) == 1:
        others = ", ".join(a.family for a in outcome.answers if a.verdict is None)
        lines.append(
            f"ONLY ONE FAMILY ANSWERED ({answered[0].family}; no answer from {others}): "
            "this is a single opinion, not a cross-check."
        )
    lines += [_family_line(answer) for answer in outcome.answers]
    if len(answered) >= 2:
        lines.append(agreement(answered))
    lines.append(_footer(outcome))
    return "\n".join(lines)


def _family_line(answer: Answer) -> str:
    verdict, result = answer.verdict, answer.result
    if verdict is None or result is None:
        return f"{answer.family}: no answer. {answer.missing}"
    head = f"{answer.family} via {answer.provider} ({result.model}): {verdict.verdict}"
    line = f"{head}, confidence {verdict.confidence:.2f}. {_cut(verdict.summary, SUMMARY_CHARS)}"
    if not verdict.problems:
        return f"{line} No problems."
    shown = [
        f"{p.where} {_cut(p.issue, ISSUE_CHARS).rstrip('.')}"
        for p in verdict.problems[:PROBLEMS_SHOWN]
    ]
    more = len(verdict.problems) - PROBLEMS_SHOWN
    tail = f"; +{more} more" if more > 0 else ""
    return f"{line} Problems: {'; '.join(shown)}{tail}"


def agreement(answered: list[Answer]) -> str:
    """Same verdict or a split, then problem places not every family found."""
    verdicts = {a.family: a.verdict for a in answered if a.verdict is not None}
    kinds = {v.verdict for v in verdicts.values()}
    if len(kinds) == 1:
        everyone = "both" if len(verdicts) == 2 else f"all {len(verdicts)}"
        parts = [f"Agreement: {everyone} say {kinds.pop()}."]
    else:
        split = ", ".join(f"{name} {v.verdict}" for name, v in verdicts.items())
        parts = [f"Disagreement: {split}."]
    found = spots(verdicts)
    if not found:
        parts.append("No problems reported.")
        return " ".join(parts)
    names = tuple(verdicts)
    shared = [s.where for s in found if len(s.families) == len(names)]
    if shared:
        everyone = "both" if len(names) == 2 else "all"
        parts.append(f"Found by {everyone}: {_places(shared)}.")
    partial: dict[tuple[str, ...], list[str]] = {}
    for spot in found:
        if len(spot.families) < len(names):
            key = tuple(name for name in names if name in spot.families)
            partial.setdefault(key, []).append(spot.where)
    for families, places in partial.items():
        parts.append(f"Only {'+'.join(families)}: {_places(places)}.")
    return " ".join(parts)


def _places(places: list[str]) -> str:
    more = len(places) - PLACES_SHOWN
    return ", ".join(places[:PLACES_SHOWN]) + (f" +{more} more" if more > 0 else "")


def _footer(outcome: Outcome) -> str:
    results = [a.result for a in outcome.answers if a.result is not None]
    tokens_in = sum(r.usage.input_tokens for r in results)
    tokens_out = sum(r.usage.output_tokens for r in results)
    cost = sum(r.cost_usd for r in results)
    price = f"${cost:.4f}" if cost else "$0"
    asked = len(outcome.answers)
    return (
        f"[cross_check: {len(results)} of {asked} families answered, "
        f"{tokens_in}->{tokens_out} tokens, {price}, {outcome.elapsed_s:.1f} s]"
    )


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
