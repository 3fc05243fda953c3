"""Local classification quality and speed on the hand-labelled sets in tests/eval/.

Two groups of sets: dev (tests/eval/*.json, where methods and the `unsure` margin were chosen)
and held-out (tests/eval/heldout/, written before any tuning and only scored, never tuned on).
For each set: a keyword-rules baseline written for the same labels, then the embedded model with
label names only, with "name: description", and with one example per label added; per-label
recall; accuracy and answered share with `unsure`. Per group: a sweep of the margin, the largest
answered share that keeps answered items >= 90% right, and (dev) how a margin chosen on the
other tasks holds on each left-out task. Then speed: cold load (in a fresh process), items/s
batched, peak RSS. With Ollama reachable, its model is measured the same way.

    uv run python bench/local_classify.py [--quick] [--ollama MODEL]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

EVAL_DIR = Path(__file__).resolve().parent.parent / "tests" / "eval"
MARGINS = (0.0, 0.02, 0.04, 0.06, 0.08, 0.1, 0.11, 0.12, 0.14)
#: answered accuracy the `unsure` margin must keep
TARGET = 0.9


def load_sets(held_out: bool = False) -> list[dict[str, Any]]:
    folder = EVAL_DIR / "heldout" if held_out else EVAL_DIR
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def keyword_label(text: str, keywords: dict[str, list[str]]) -> str:
    lowered = text.lower()
    hits = {label: sum(k in lowered for k in words) for label, words in keywords.items()}
    best = max(hits, key=lambda label: hits[label])
    return best if hits[best] else "unsure"


def score(predicted: list[str], gold: list[str]) -> tuple[float, float, float]:
    """(accuracy over all, share answered, accuracy over answered)."""
    answered = [(p, g) for p, g in zip(predicted, gold, strict=True) if p != "unsure"]
    right = sum(p == g for p, g in answered)
    accuracy = right / len(gold)
    share = len(answered) / len(gold)
    return accuracy, share, (right / len(answered) if answered else 0.0)


def recall(predicted: list[str], gold: list[str]) -> dict[str, float]:
    labels = sorted(set(gold))
    return {
        label: sum(p == g == label for p, g in zip(predicted, gold, strict=True))
        / gold.count(label)
        for label in labels
    }


def coverage_at(margins: list[float], right: list[bool], target: float = TARGET) -> float:
    """Largest share of items, most confident first, whose accuracy stays >= target."""
    ranked = sorted(zip(margins, right, strict=True), key=lambda mr: -mr[0])
    best, hits = 0, 0
    for count, (_, ok) in enumerate(ranked, start=1):
        hits += ok
        if hits >= target * count:
            best = count
    return best / len(ranked) if ranked else 0.0


def margin_for(margins: list[float], right: list[bool], target: float) -> float:
    """The smallest margin whose answered items are >= target right (inf if none)."""
    share = coverage_at(margins, right, target)
    if share == 0:
        return float("inf")
    return sorted(margins, reverse=True)[round(share * len(margins)) - 1]


@dataclass
class SetResult:
    """Per-item best-guess correctness and margin for one set (the embedded model, examples)."""

    right: list[bool] = field(default_factory=list)
    margins: list[float] = field(default_factory=list)


def run_quality(sets: list[dict[str, Any]], title: str) -> list[SetResult]:
    from offload_mcp.backends.embedded import shared_model
    from offload_mcp.classify import MARGIN, classify_embedded, make_labels

    model = shared_model()
    totals: dict[str, list[tuple[float, int]]] = {}
    unsure_rows: dict[str, list[tuple[float, float, int]]] = {}
    per_set: list[SetResult] = []
    print(f"\n# {title}")
    for data in sets:
        texts = [item["text"] for item in data["items"]]
        gold = [item["label"] for item in data["items"]]
        print(f"\n## {data['name']} ({len(texts)} items, {len(data['labels'])} labels)")
        keyword = [keyword_label(t, data["keywords"]) for t in texts]
        acc, share, answered = score(keyword, gold)
        print(f"keyword rules          acc {acc:.1%}  (answers {share:.0%}, right {answered:.1%})")
        totals.setdefault("keyword rules", []).append((acc, len(texts)))
        unsure_rows.setdefault("keyword rules", []).append((share, answered, len(texts)))
        full = make_labels(data["labels"], data["examples"])
        variants = {
            "names only": [replace(s, description="", examples=()) for s in full],
            "name: description": [replace(s, examples=()) for s in full],
            "+ one example/label": full,
        }
        for name, specs in variants.items():
            verdicts, _ = classify_embedded(model.embed, texts, specs, margin=0, min_score=-1)
            predicted = [v.label for v in verdicts]
            acc, _, _ = score(predicted, gold)
            totals.setdefault(name, []).append((acc, len(texts)))
            print(f"{name:<22} acc {acc:.1%}")
            if specs is full:
                rec = recall(predicted, gold)
                print("  recall: " + ", ".join(f"{k} {v:.0%}" for k, v in rec.items()))
                result = SetResult(
                    [p == g for p, g in zip(predicted, gold, strict=True)],
                    [v.margin or 0.0 for v in verdicts],
                )
                per_set.append(result)
                chosen = [v.label for v in classify_embedded(model.embed, texts, specs)[0]]
                _, share, answered = score(chosen, gold)
                unsure_rows.setdefault("embedded", []).append((share, answered, len(texts)))
                print(f"  with unsure (margin {MARGIN}): answers {share:.0%}, right {answered:.1%}")
    print(f"\n## {title}: all sets (item-weighted)")
    for name, rows in totals.items():
        n = sum(count for _, count in rows)
        print(f"{name:<22} acc {sum(a * c for a, c in rows) / n:.1%}")
    for name, rows in unsure_rows.items():
        n = sum(c for *_, c in rows)
        answered_n = sum(s * c for s, _, c in rows)
        right = sum(s * a * c for s, a, c in rows)
        print(
            f"{name + ' with unsure':<22} answers {answered_n / n:.0%}, "
            f"right {right / max(answered_n, 1):.1%}"
            + (f" (margin {MARGIN})" if name == "embedded" else " (no keyword = unsure)")
        )
    report_margins(per_set, title)
    return per_set


def report_margins(per_set: list[SetResult], title: str) -> None:
    margins = [m for r in per_set for m in r.margins]
    right = [ok for r in per_set for ok in r.right]
    print(f"\n## {title}: unsure margin sweep (with examples): answered share, right on answered")
    for margin in MARGINS:
        kept = [ok for m, ok in zip(margins, right, strict=True) if m >= margin]
        rate = sum(kept) / len(kept) if kept else 0.0
        print(f"margin {margin:.2f}: answers {len(kept) / len(right):.0%}, right {rate:.1%}")
    print(
        f"best possible with one margin for all these sets: answers "
        f"{coverage_at(margins, right):.0%} at >= {TARGET:.0%} right"
    )


def leave_one_task_out(per_set: list[SetResult], target: float = 0.94) -> None:
    """Does a margin chosen on some tasks keep answered accuracy on a task it never saw?"""
    answered = right = total = 0
    for index, held in enumerate(per_set):
        rest = [r for j, r in enumerate(per_set) if j != index]
        margin = margin_for(
            [m for r in rest for m in r.margins], [ok for r in rest for ok in r.right], target
        )
        kept = [ok for m, ok in zip(held.margins, held.right, strict=True) if m >= margin]
        answered, right, total = answered + len(kept), right + sum(kept), total + len(held.right)
    print(
        f"leave one task out (margin chosen on the others for {target:.0%}): "
        f"answers {answered / total:.0%}, right {right / max(answered, 1):.1%}"
    )


def run_speed(quick: bool) -> None:
    cold = subprocess.run(
        [sys.executable, "-c", _COLD],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    print(f"\n## speed\ncold load in a fresh process: {cold}")
    from offload_mcp.backends.embedded import shared_model

    model = shared_model()
    texts = [item["text"] for data in load_sets() for item in data["items"]]
    batch = (texts * (2 if quick else 6))[: 1000 if not quick else 350]
    model.embed(batch[:64])
    best, per_cpu_s = 0.0, 0.0
    for _ in range(2 if quick else 4):
        started, cpu = time.perf_counter(), time.process_time()
        model.embed(batch)
        best = max(best, len(batch) / (time.perf_counter() - started))
        per_cpu_s = max(per_cpu_s, len(batch) / (time.process_time() - cpu))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load = os.getloadavg()[0]
    print(f"items/s batched ({len(batch)} items, best run): {best:.0f} (load average {load:.1f})")
    print(f"items per CPU-second: {per_cpu_s:.0f} (x2 = what 2 idle cores can do)")
    print(f"peak RSS of this process: {rss:.0f} MB")


_COLD = """
import time, resource
t = time.perf_counter()
from offload_mcp.backends.embedded import shared_model
m = shared_model(); m.embed(["warm up"])
took = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{took:.2f} s to the first vector (imports + session + tokenizer: {m.load_s:.2f} s), "
      f"RSS {rss:.0f} MB")
"""


def run_ollama(model_name: str, url: str) -> None:
    """Classify every set through Ollama's native API (needs a running server with the model)."""
    import anyio

    from offload_mcp.backends.ollama import OllamaBackend
    from offload_mcp.classify import UNSURE, _generative_contract, _generative_task, make_labels
    from offload_mcp.config import build_settings
    from offload_mcp.contract import check, request_schema
    from offload_mcp.dispatch import render_messages
    from offload_mcp.packets import CompletionRequest, Packet

    user = {"providers": {"ollama": {"model": model_name, "base_url": url}}}
    provider = build_settings(user).providers["ollama"]
    backend = OllamaBackend(provider, None)

    async def main() -> None:
        health = await backend.health()
        print(f"\n## ollama {model_name}: {health.detail}")
        if not health.ok:
            return
        for data in load_sets() + load_sets(held_out=True):
            specs = make_labels(data["labels"], data["examples"])
            contract = _generative_contract(specs, False)
            task = _generative_task(specs, False)
            predicted, started = [], time.perf_counter()
            for item in data["items"]:
                packet = Packet(tool="local_classify", task=task, text=item["text"])
                request = CompletionRequest(
                    render_messages(replace(packet, contract=contract), []),
                    128,
                    120,
                    request_schema(contract),
                )
                try:
                    answer = check(contract, (await backend.complete(request)).text).text
                except Exception:
                    answer = UNSURE
                predicted.append(answer)
            gold = [item["label"] for item in data["items"]]
            acc, share, answered = score(predicted, gold)
            rate = len(gold) / (time.perf_counter() - started)
            print(
                f"{data['name']}: acc {acc:.1%} (answers {share:.0%}, right {answered:.1%}), "
                f"{rate:.1f} items/s"
            )
        await backend.aclose()

    anyio.run(main)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--ollama", default="", help="also measure this Ollama model")
    parser.add_argument("--ollama-url", default="http://127.0.0.1:11434")
    args = parser.parse_args()
    leave_one_task_out(run_quality(load_sets(), "dev sets"))
    run_quality(load_sets(held_out=True), "held-out sets (written before tuning, never tuned on)")
    run_speed(args.quick)
    if args.ollama:
        run_ollama(args.ollama, args.ollama_url)


if __name__ == "__main__":
    main()
