"""Privacy scan throughput on 32 KiB packets: offload-mcp's detectors vs detect-secrets.

Packets are realistic developer text: this repository's own source and docs, plus the test
corpus's clean packets and planted-value packets, cut into 32 KiB pieces. Both scanners see
the same packets in the same run (detect-secrets through its file API, as pre-commit uses it).
Goal: >= 20x detect-secrets' throughput and p95 < 5 ms per packet. Prints figures; never asserts.

    uv run python bench/privacy_scan.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PACKET = 32 * 1024
GOAL_RATIO = 20.0
GOAL_P95_MS = 5.0


def packets(limit: int, dense: bool = False) -> list[str]:
    """Typical packets (source, docs, configs, logs, a few planted values) or dense ones.

    Dense packets are the planted-value corpus alone: ~100 secrets and records per 32 KiB,
    the worst case for per-finding work.
    """
    from tests.privacy_corpus.generate import build

    dirty, clean = build(per_container=8)
    if dense:
        texts = [p.text for p in dirty]
    else:
        texts = [p.text for p in clean] + [p.text for p in dirty[::10]]
        for path in sorted(ROOT.glob("offload_mcp/**/*.py")) + sorted(ROOT.glob("*.md")):
            if "privacy" not in path.parts:  # the rule book itself is all patterns
                texts.append(path.read_text(encoding="utf-8"))
        random.Random(7).shuffle(texts)
    blob = "\n".join(texts)
    out = [blob[i : i + PACKET] for i in range(0, len(blob) - PACKET + 1, PACKET)]
    while len(out) < limit:
        out.extend(out)
    return out[:limit]


def time_ours(texts: list[str]) -> list[float]:
    from offload_mcp.privacy import scan

    scan(texts[0])  # compile the rule book once, as the server does on first use
    times = []
    for text in texts:
        start = time.perf_counter()
        scan(text)
        times.append(time.perf_counter() - start)
    return times


def time_detect_secrets(texts: list[str]) -> list[float]:
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    times = []
    with tempfile.TemporaryDirectory() as tmp, default_settings():
        paths = []
        for index, text in enumerate(texts):
            path = os.path.join(tmp, f"packet{index}.txt")
            Path(path).write_text(text, encoding="utf-8")
            paths.append(path)
        for path in paths:
            collection = SecretsCollection()
            start = time.perf_counter()
            collection.scan_file(path)
            times.append(time.perf_counter() - start)
    return times


def report(name: str, times: list[float]) -> float:
    total = sum(times)
    mb_s = len(times) * PACKET / total / 1e6
    p95 = statistics.quantiles(times, n=20)[-1] * 1e3
    print(
        f"{name:<15} {mb_s:8.2f} MB/s   p50 {statistics.median(times) * 1e3:7.2f} ms"
        f"   p95 {p95:7.2f} ms   ({len(times)} packets)"
    )
    return mb_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer packets")
    args = parser.parse_args()
    for label, dense in (("typical packets", False), ("dense packets", True)):
        texts = packets(30 if args.quick else 200, dense)
        print(f"-- {label}")
        ours = time_ours(texts)
        theirs = time_detect_secrets(texts[: 10 if args.quick else 40])
        ours_mb = report("offload-mcp", ours)
        theirs_mb = report("detect-secrets", theirs)
        p95 = statistics.quantiles(ours, n=20)[-1] * 1e3
        print(
            f"ratio {ours_mb / theirs_mb:.1f}x (goal >= {GOAL_RATIO:.0f}x); "
            f"p95 {p95:.2f} ms (goal < {GOAL_P95_MS:.0f} ms)"
        )


if __name__ == "__main__":
    main()
