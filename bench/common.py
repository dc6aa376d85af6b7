"""Helpers shared by the benchmarks: medians of repeated runs and a plain report table."""
from __future__ import annotations

import statistics
import time
from typing import Callable


def rate(ops: int, fn: Callable[[], None], runs: int = 5, setup: Callable[[], None] | None = None) -> dict:
    """Operations per second over `runs` runs of fn (each doing `ops` operations); median reported."""
    rates = []
    for _ in range(runs):
        if setup:
            setup()
        started = time.perf_counter()
        fn()
        rates.append(ops / (time.perf_counter() - started))
    return {"ops": ops, "runs": runs, "median": statistics.median(rates), "all": rates}


def seconds(fn: Callable[[], None], runs: int = 5) -> dict:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return {"runs": runs, "median": statistics.median(times), "all": times}


def report(title: str, rows: list[tuple[str, dict]], baseline: str) -> None:
    base = dict(rows)[baseline]["median"]
    print(f"\n{title}")
    print(f"  {'measure':<44} {'ops':>6} {'runs':>4} {'median/s':>12} {'ratio':>8}")
    for name, r in rows:
        print(f"  {name:<44} {r['ops']:>6} {r['runs']:>4} {r['median']:>12.1f} {r['median'] / base:>8.3f}")
    print(f"  (ratio = median / median of '{baseline}', all measured in this process)")
