"""The cost of a retry decorator, side by side: stormguard against tenacity,
stamina, backoff and tenacity-rs, in one process, with timeit.

Two workloads, each against a reference without any retry library:

* success path -- a decorated function that returns at once, against the
  bare call: the overhead every call pays;
* fail twice, then succeed -- a function that raises ``ConnectionError``
  twice and then returns, retried with zero waits, against a hand-written
  ``for``/``try`` loop doing the same three calls.

Every library gets 3 attempts, retries on ``ConnectionError`` and waits
zero seconds between attempts, using its own settings for that. Waits of
zero still go through ``time.sleep(0)`` in stamina, backoff and tenacity's
default sleep; on some machines that is a real system call (tens of
microseconds), which would measure the kernel instead of the library, so
this script replaces ``time.sleep`` with a version that returns at once
for a zero delay (and sleeps as usual otherwise) before any library binds
it. stormguard calls no sleep for a zero delay.

stamina's default retry hook logs a warning per retry, backoff logs each
retry at INFO level and stormguard's default hooks log a record (and count
in Prometheus when prometheus_client is installed); all are turned off
(stamina's and stormguard's hook lists emptied, backoff's ``logger=None``)
so no library logs or counts.

Usage: python bench.py [--quick] [--json FILE]
Run by ``scripts/bench``, which installs requirements-bench.txt into the
project's .venv first.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import timeit
from typing import Any, Callable, Dict, List, Optional, Tuple

_real_sleep = time.sleep


def _sleep_skipping_zero(seconds: float) -> None:
    if seconds > 0:
        _real_sleep(seconds)


time.sleep = _sleep_skipping_zero  # before any library binds it

import stormguard as sg  # noqa: E402

sg.set_on_retry_hooks([])
sg.set_on_give_up_hooks([])

ATTEMPTS = 3
RESULT = 42

Decorate = Callable[[Callable[[], int]], Callable[[], int]]


def make_flaky() -> Callable[[], int]:
    """A function that fails on two calls out of three: fail, fail, succeed."""
    count = 0

    def flaky() -> int:
        nonlocal count
        count += 1
        if count % 3:
            raise ConnectionError("refused")
        return RESULT

    return flaky


def work() -> int:
    return RESULT


# --- the libraries, each configured for 3 attempts and zero waits -----------


def stormguard_decorators() -> List[Tuple[str, Decorate]]:
    zero = sg.Backoff.constant(0.0)

    def plain(fn: Callable[[], int]) -> Callable[[], int]:
        return sg.retry(on=ConnectionError, attempts=ATTEMPTS, backoff=zero)(fn)

    def testing(fn: Callable[[], int]) -> Callable[[], int]:
        # The default (exponential, jittered) backoff; testing mode skips the
        # waits by moving stormguard's clock instead. Set at call time below.
        return sg.retry(on=ConnectionError, attempts=ATTEMPTS)(fn)

    def guarded(fn: Callable[[], int]) -> Callable[[], int]:
        return sg.retry(
            on=ConnectionError,
            attempts=ATTEMPTS,
            backoff=zero,
            deadline=30.0,
            budget=sg.Throttle(max_tokens=1000, token_ratio=2.0),  # two failures, one success: level
            breaker=sg.CircuitBreaker(failure_threshold=1000, recovery_timeout=30.0),
        )(fn)

    return [
        ("stormguard", plain),
        ("stormguard, testing mode", testing),
        ("stormguard + Throttle + breaker + deadline", guarded),
    ]


def tenacity_decorator() -> Decorate:
    import tenacity

    return tenacity.retry(
        stop=tenacity.stop_after_attempt(ATTEMPTS),
        wait=tenacity.wait_none(),
        retry=tenacity.retry_if_exception_type(ConnectionError),
        reraise=True,
    )


def tenacity_rs_decorator() -> Decorate:
    import tenacity_rs

    return tenacity_rs.retry(  # type: ignore[no-any-return]
        stop=tenacity_rs.stop_after_attempt(ATTEMPTS),
        wait=tenacity_rs.wait_none(),
        retry=tenacity_rs.retry_if_exception_type(ConnectionError),
        reraise=True,
    )


def stamina_decorator() -> Decorate:
    import stamina
    import stamina.instrumentation

    stamina.instrumentation.set_on_retry_hooks([])
    return stamina.retry(  # type: ignore[no-any-return]
        on=ConnectionError,
        attempts=ATTEMPTS,
        wait_initial=0.0,
        wait_max=0.0,
        wait_jitter=0.0,
    )


def backoff_decorator() -> Decorate:
    import backoff

    return backoff.on_exception(  # type: ignore[no-any-return]
        backoff.constant,
        ConnectionError,
        max_tries=ATTEMPTS,
        interval=0,
        jitter=None,
        logger=None,
    )


def libraries() -> Tuple[List[Tuple[str, Decorate]], List[str]]:
    found: List[Tuple[str, Decorate]] = list(stormguard_decorators())
    missing: List[str] = []
    for name, make in [
        ("tenacity", tenacity_decorator),
        ("tenacity-rs", tenacity_rs_decorator),
        ("stamina", stamina_decorator),
        ("backoff", backoff_decorator),
    ]:
        try:
            found.append((name, make()))
        except ImportError as exc:
            missing.append(f"{name} ({exc})")
    return found, missing


# --- measuring ----------------------------------------------------------------


def per_call(fn: Callable[[], Any], repeat: int, min_time: float) -> float:
    """Median over `repeat` runs of the time per call, in seconds."""
    timer = timeit.Timer("fn()", globals={"fn": fn})
    number = 1
    while True:  # like Timer.autorange, but to `min_time`
        if timer.timeit(number) >= min_time:
            break
        number *= 2 if number < 8 else 4
    runs = timer.repeat(repeat=repeat, number=number)
    return statistics.median(runs) / number


def hand_loop(flaky: Callable[[], int]) -> Callable[[], int]:
    def loop() -> int:
        for _ in range(ATTEMPTS):
            try:
                return flaky()
            except ConnectionError:
                pass
        raise ConnectionError("gave up")

    return loop


def empty_wrapper(fn: Callable[[], int]) -> Callable[[], int]:
    """The least a decorator written in Python costs: a wrapper passing
    ``*args, **kwargs`` through and the result back."""

    def wrapper(*args: Any, **kwargs: Any) -> int:
        return fn(*args, **kwargs)

    return wrapper


def interleaved(fns: List[Callable[[], Any]], repeat: int, min_time: float) -> List[float]:
    """Like `per_call` for each of `fns`, but run in turns (one timing of
    each per round), so that a noisy machine slows them alike: their
    ratios hold even when the absolute figures move."""
    timers = [timeit.Timer("fn()", globals={"fn": fn}) for fn in fns]
    numbers = []
    for timer in timers:
        number = 1
        while timer.timeit(number) < min_time:
            number *= 2 if number < 8 else 4
        numbers.append(number)
    runs: List[List[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for i, timer in enumerate(timers):
            runs[i].append(timer.timeit(numbers[i]) / numbers[i])
    return [statistics.median(r) for r in runs]


def measure(repeat: int, min_time: float) -> Dict[str, Any]:
    libs, missing = libraries()
    rows: List[Dict[str, Any]] = []
    plain = dict(libs)["stormguard"](work)
    # The success path three ways, in turns: the bare call, the least a
    # Python decorator costs, and stormguard's plain decorator.
    bare, floor, ours = interleaved([work, empty_wrapper(work), plain], repeat, min_time)
    hand = per_call(hand_loop(make_flaky()), repeat, min_time)
    for name, decorate in libs:
        success_fn = decorate(work)
        flaky_fn = decorate(make_flaky())
        testing = name.endswith("testing mode")
        sg.set_testing(testing)
        try:
            for fn in (success_fn, flaky_fn):
                if fn() != RESULT:
                    raise SystemExit(f"{name}: wrong result")
            rows.append(
                {
                    "library": name,
                    "success": per_call(success_fn, repeat, min_time),
                    "fail_twice": per_call(flaky_fn, repeat, min_time),
                }
            )
        finally:
            sg.set_testing(False)
        print(f"  measured {name}", file=sys.stderr)
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "bare_call": bare,
        "empty_wrapper": floor,
        "stormguard_interleaved": ours,
        "hand_loop": hand,
        "rows": rows,
        "missing": missing,
        "sleep_zero": per_call(lambda: _real_sleep(0), 3, min_time),
    }


# --- reporting ----------------------------------------------------------------


def fmt(seconds: float) -> str:
    ns = seconds * 1e9
    if ns < 1000:
        return f"{ns:.0f} ns"
    if ns < 1e6:
        return f"{ns / 1000:.2f} µs"
    return f"{ns / 1e6:.2f} ms"


def report(r: Dict[str, Any]) -> Tuple[str, bool]:
    bare, hand = r["bare_call"], r["hand_loop"]
    rows = r["rows"]
    ours = next(row for row in rows if row["library"] == "stormguard")
    our_over = max(ours["success"] - bare, 1e-12)
    our_fail_over = max(ours["fail_twice"] - hand, 1e-12)
    lines = [
        f"CPython {r['python']}; medians of timeit runs; "
        f"bare call {fmt(bare)}, hand-written retry loop {fmt(hand)}.",
        "",
        "| library | success path | overhead per call | × stormguard's overhead "
        "| fail twice, then succeed | overhead over the hand loop | × stormguard's overhead |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        over = row["success"] - bare
        fail_over = row["fail_twice"] - hand
        lines.append(
            f"| {row['library']} | {fmt(row['success'])} | {fmt(over)} | {over / our_over:.1f}× "
            f"| {fmt(row['fail_twice'])} | {fmt(fail_over)} | {fail_over / our_fail_over:.1f}× |"
        )
    for name in r["missing"]:
        lines.append(f"\nnot measured: {name}")
    floor_over = r["empty_wrapper"] - bare
    ours_over = r["stormguard_interleaved"] - bare
    lines.append(
        f"\nIn turns with the bare call: an empty Python wrapper (`*args, **kwargs` "
        f"through) costs {fmt(floor_over)} over it, stormguard's decorator "
        f"{fmt(ours_over)}: {ours_over / max(floor_over, 1e-12):.2f}× the least a "
        "Python decorator costs."
    )
    lines.append(
        f"\n`time.sleep(0)` costs {fmt(r['sleep_zero'])} here (replaced by a no-op for the runs above)."
    )
    others = [row["success"] - bare for row in rows if not row["library"].startswith("stormguard")]
    met_abs = our_over <= 150e-9
    met_rel = bool(others) and min(others) >= 10 * our_over
    lines.append("")
    lines.append(
        f"target: success-path overhead ≤ 150 ns (aim ≤ 90 ns): {fmt(our_over)} -> "
        f"{'met' if met_abs else 'MISSED'}"
    )
    if others:
        lines.append(
            f"target: ≥ 10× below the fastest alternative ({fmt(min(others))}): "
            f"{min(others) / our_over:.1f}× -> {'met' if met_rel else 'MISSED'}"
        )
    return "\n".join(lines), met_abs and met_rel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (a smoke test)")
    parser.add_argument("--json", help="also write the raw figures (seconds) to this file")
    args = parser.parse_args()
    repeat, min_time = (3, 0.02) if args.quick else (7, 0.2)
    results = measure(repeat, min_time)
    text, _ = report(results)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
