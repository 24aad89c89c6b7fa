"""Instructions per call of the success path, counted by valgrind's
callgrind: a figure a busy machine does not move, where timings on a
shared 2-vCPU machine move by ±50 %.

For each variant, the interpreter runs this file twice under callgrind --
once making no call, once making N calls -- and the difference divided by
N is the instructions one call costs (the loop included, so compare
against ``bare``). ``PYTHONHASHSEED=0`` keeps the interpreter's start-up
the same in both runs.

Variants: ``bare`` (the function itself), ``empty`` (a Python wrapper
passing ``*args, **kwargs`` through: the least any Python decorator
costs), ``stormguard`` (the plain decorator), ``throttle`` (with a budget:
one Rust call on success), ``guarded`` (a Throttle, a breaker and a
deadline: start and success through the core's lifecycle).

Usage: python instructions.py [N]      (needs valgrind on the PATH)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from typing import Callable, Dict

VARIANTS = ["bare", "empty", "stormguard", "throttle", "guarded"]


def make(variant: str) -> Callable[[], int]:
    import stormguard as sg

    def work() -> int:
        return 42

    def empty(*args: object, **kwargs: object) -> int:
        return work(*args, **kwargs)  # type: ignore[arg-type]

    zero = sg.Backoff.constant(0.0)
    made: Dict[str, Callable[[], int]] = {
        "bare": work,
        "empty": empty,
        "stormguard": sg.retry(on=ConnectionError, backoff=zero)(work),
        "throttle": sg.retry(on=ConnectionError, backoff=zero, budget=sg.Throttle(10, 0.1))(work),
        "guarded": sg.retry(
            on=ConnectionError,
            backoff=zero,
            deadline=30.0,
            budget=sg.Throttle(max_tokens=1000, token_ratio=2.0),
            breaker=sg.CircuitBreaker(failure_threshold=1000),
        )(work),
    }
    return made[variant]


def run(variant: str, n: int) -> None:
    fn = make(variant)
    for _ in range(n):
        fn()


def count(variant: str, n: int) -> int:
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, __file__, "--run", variant, str(n)],
        env={**os.environ, "PYTHONHASHSEED": "0"},
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    match = re.search(r"Collected : (\d+)", out)
    if match is None:
        raise SystemExit(f"no instruction count from callgrind:\n{out}")
    return int(match.group(1))


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--run":
        run(sys.argv[2], int(sys.argv[3]))
        return
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install valgrind")
    per_call = {v: (count(v, n) - count(v, 0)) / n for v in VARIANTS}
    bare, empty = per_call["bare"], per_call["empty"]
    print(f"instructions per call (callgrind, {n} calls, PYTHONHASHSEED=0)\n")
    print("| variant | per call | over the bare call | ÷ the empty wrapper's |")
    print("|---|---:|---:|---:|")
    for v in VARIANTS:
        over = per_call[v] - bare
        ratio = over / (empty - bare) if v != "bare" else 0.0
        print(f"| {v} | {per_call[v]:.0f} | {over:.0f} | {ratio:.2f}× |")


if __name__ == "__main__":
    main()
