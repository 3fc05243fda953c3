"""Privacy scan throughput on 32 KiB packets: offload-mcp's detectors vs detect-secrets.

Packets are realistic developer text: this repository's source and docs, the Python standard
library's source, and the test corpus's clean and planted-value packets, cut into 32 KiB
pieces. No packet repeats, so caches (RE2's DFA states, memoised checks) are only as warm as a
running server's: the server's warm-up (`privacy.warm()`, run off its event loop at the first
packet) and one scan of a packet outside the timed set come first. The cold cost (import,
then the first scan in a fresh interpreter, with and without the warm-up) is its own figure.
Both scanners see the same packets in the same run (detect-secrets through its file API, as
pre-commit uses it). Goal, on the typical packets: >= 20x detect-secrets' throughput and
p95 < 5 ms per packet. The dense packets (~600 findings per 32 KiB, every few lines a secret
or a patient record) are a stress figure: the cost grows with what is found. Prints figures;
never asserts.

    uv run python bench/privacy_scan.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PACKET = 32 * 1024
GOAL_RATIO = 20.0
GOAL_P95_MS = 5.0


def _corpus(need: int, dense: bool) -> list[str]:
    """Generated packets from as many seeds as `need` characters take (values never repeat)."""
    from tests.privacy_corpus.generate import build

    texts: list[str] = []
    size, seed = 0, 1
    while size < need:
        dirty, clean = build(seed=seed, per_container=8)
        batch = [p.text for p in dirty] if dense else [p.text for p in clean + dirty[::10]]
        texts.extend(batch)
        size += sum(map(len, batch))
        seed += 1
    return texts


def _source(need: int) -> list[str]:
    """This repository's code and docs, then standard-library modules, up to `need` chars."""
    ours = sorted(ROOT.glob("offload_mcp/**/*.py")) + sorted(ROOT.glob("*.md"))
    stdlib = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))
    random.Random(3).shuffle(stdlib)
    texts: list[str] = []
    size = 0
    for path in ours + stdlib:
        if "privacy" in path.parts:  # the rule book itself is all patterns
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        texts.append(text)
        size += len(text)
        if size >= need:
            break
    return texts


def packets(limit: int, dense: bool = False) -> list[str]:
    """`limit` distinct packets: typical (source, docs, configs, a few planted values) or dense.

    Typical packets are two thirds real source and one third generated corpus (clean packets
    full of hard negatives, a tenth of the planted-value ones). Dense packets are the
    planted-value corpus alone: ~100 secrets and records per 32 KiB, the worst case for
    per-finding work.
    """
    need = (limit + 1) * PACKET
    if dense:
        texts = _corpus(need, dense=True)
    else:
        texts = _source(need * 2 // 3) + _corpus(need // 3, dense=False)
    random.Random(7).shuffle(texts)
    blob = "\n".join(texts)
    out = [blob[i : i + PACKET] for i in range(0, len(blob) - PACKET + 1, PACKET)]
    return out[:limit]


def time_ours(texts: list[str], warmup: str) -> list[float]:
    from offload_mcp.privacy import scan, warm

    warm()  # what the server does off its event loop at the first packet
    scan(warmup)  # and the first packet itself
    times = []
    for text in texts:
        start = time.perf_counter()
        scan(text)
        times.append(time.perf_counter() - start)
    return times


def cold_child(warm_first: bool) -> None:
    """In a fresh interpreter: import, warm-up (or not), first scan; milliseconds as JSON."""
    text = sys.stdin.read()
    marks = [time.perf_counter()]
    from offload_mcp.privacy import scan, warm

    marks.append(time.perf_counter())
    if warm_first:
        warm()
    marks.append(time.perf_counter())
    scan(text)
    marks.append(time.perf_counter())
    names = ("import_ms", "warm_ms", "first_ms")
    print(
        json.dumps({n: (b - a) * 1e3 for n, a, b in zip(names, marks[:-1], marks[1:], strict=True)})
    )


def time_cold(text: str, runs: int, warm_first: bool) -> dict[str, float]:
    """Median milliseconds of each cold step over `runs` fresh interpreters."""
    flag = "--cold-warm-child" if warm_first else "--cold-child"
    results = [
        json.loads(
            subprocess.run(
                [sys.executable, __file__, flag],
                input=text,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        for _ in range(runs)
    ]
    return {name: statistics.median(r[name] for r in results) for name in results[0]}


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


def p95_ms(times: list[float]) -> float:
    return statistics.quantiles(times, n=20)[-1] * 1e3


def report(name: str, times: list[float]) -> float:
    mb_s = len(times) * PACKET / sum(times) / 1e6
    print(
        f"{name:<15} {mb_s:8.2f} MB/s   p50 {statistics.median(times) * 1e3:7.2f} ms"
        f"   p95 {p95_ms(times):7.2f} ms   ({len(times)} packets)"
    )
    return mb_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer packets")
    parser.add_argument("--cold-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cold-warm-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cold_child or args.cold_warm_child:
        cold_child(args.cold_warm_child)
        return
    count = 30 if args.quick else 200
    load = os.getloadavg()[0]
    print(f"load average {load:.1f} on {os.cpu_count()} cores (timings are noisy when it is high)")
    for label, dense in (("typical packets", False), ("dense packets", True)):
        texts = packets(count + 1, dense)
        warmup, texts = texts[-1], texts[:-1]
        print(f"-- {label} (distinct, after one warm-up scan)")
        if not dense:
            runs = 1 if args.quick else 3
            cold = time_cold(warmup, runs, warm_first=False)
            warmed = time_cold(warmup, runs, warm_first=True)
            print(
                f"cold start      import {cold['import_ms']:6.1f} ms   "
                f"first scan {cold['first_ms']:6.1f} ms   "
                f"(server: warm-up off the loop {warmed['warm_ms']:6.1f} ms, "
                f"then first scan {warmed['first_ms']:6.1f} ms)"
            )
        ours = time_ours(texts, warmup)
        theirs = time_detect_secrets(texts[: 10 if args.quick else 40])
        ours_mb = report("offload-mcp", ours)
        theirs_mb = report("detect-secrets", theirs)
        print(
            f"ratio {ours_mb / theirs_mb:.1f}x (goal >= {GOAL_RATIO:.0f}x); "
            f"p95 {p95_ms(ours):.2f} ms (goal < {GOAL_P95_MS:.0f} ms)"
        )


if __name__ == "__main__":
    main()
