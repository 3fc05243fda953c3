"""A separate OS process that hammers one ledger; driven by test_ledger_processes.py.

usage: ledger_worker.py DB reserve N CAP   -> prints "admitted K" (each admitted call settled)
       ledger_worker.py DB crash TTL       -> prints "committed ID" lines, and after 300 of them
                                              "holding ID" (a reservation it never settles),
                                              and keeps writing until it is killed
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from offload_mcp.config import CapLimit
from offload_mcp.ledger import CapWindow, Ledger


def reserve_many(ledger: Ledger, count: int, cap: int) -> None:
    windows = [CapWindow(window="day", start=0.0, reset=None, limit=CapLimit(requests=cap))]
    admitted = 0
    for _ in range(count):
        reserved = ledger.reserve(
            provider="p",
            tool="t",
            model="m",
            windows=windows,
            est_input=1,
            est_output=1,
            est_usd=0.0,
            ttl_s=600,
        )
        if isinstance(reserved, int):
            admitted += 1
            ledger.settle(reserved, outcome="ok", model="m", input_tokens=1, output_tokens=1)
    print(f"admitted {admitted}", flush=True)


def crash_run(ledger: Ledger, ttl: float) -> None:
    warmed_up = threading.Event()
    printing = threading.Lock()  # two threads write lines; never interleave them

    def say(line: str) -> None:
        with printing:
            print(line, flush=True)

    def writer() -> None:
        for written in range(sys.maxsize):
            if written == 300:
                warmed_up.set()
            reserved = ledger.reserve(
                provider="w",
                tool="t",
                model="m",
                windows=[],
                est_input=1,
                est_output=1,
                est_usd=0.0,
                ttl_s=600,
            )
            assert isinstance(reserved, int)
            ledger.settle(reserved, outcome="ok", model="m", input_tokens=3)
            say(f"committed {reserved}")

    threading.Thread(target=writer, daemon=True).start()
    warmed_up.wait()
    held = ledger.reserve(
        provider="p",
        tool="t",
        model="m",
        windows=[],
        est_input=1,
        est_output=1,
        est_usd=0.0,
        ttl_s=ttl,
    )
    say(f"holding {held}")
    time.sleep(3600)


def main() -> None:
    path, mode, *args = sys.argv[1:]
    ledger = Ledger(Path(path))
    if mode == "reserve":
        reserve_many(ledger, int(args[0]), int(args[1]))
    else:
        crash_run(ledger, float(args[0]))


if __name__ == "__main__":
    main()
