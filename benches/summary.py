"""Turns criterion's results (and the Python benchmark's JSON) into the
Markdown tables of BENCHMARKS.md: per benchmark the median and its ratio to
stormguard, then each target of the benchmark plan, met or missed.

Usage: python3 benches/summary.py CRITERION_DIR [--since EPOCH] [--python FILE]

Only results written after --since are shown, so renamed or removed
benchmarks left over from older runs do not appear.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, List, Optional, Tuple

# (group, row) pairs the targets read.
THROTTLE_FAIL = ("budget failure+check", "stormguard Throttle")
THROTTLE_OK = ("budget success", "stormguard Throttle")
MUTEX_FAIL = ("budget failure+check", "grpc-go Mutex<f64>")
MUTEX_OK = ("budget success", "grpc-go Mutex<f64>")
PAIR_1 = "budget pair, 1 thread"
PAIR_2 = "budget pair, 2 threads"
DECISION = ("decision", "on_failure, Throttle + breaker")

Results = Dict[str, List[Tuple[str, float, float]]]  # group -> [(row, median ns, mtime)]


def load(root: str, since: float) -> Results:
    groups: Results = {}
    for dirpath, _, files in os.walk(root):
        if "estimates.json" not in files or os.path.basename(dirpath) != "new":
            continue
        estimates = os.path.join(dirpath, "estimates.json")
        mtime = os.path.getmtime(estimates)
        if mtime < since:
            continue
        with open(os.path.join(dirpath, "benchmark.json")) as f:
            bench = json.load(f)
        with open(estimates) as f:
            median = json.load(f)["median"]["point_estimate"]
        groups.setdefault(bench["group_id"], []).append((bench["function_id"], median, mtime))
    for rows in groups.values():
        rows.sort(key=lambda row: row[2])  # the order they ran in, as written
    return groups


def fmt(ns: float) -> str:
    if ns < 10:
        return f"{ns:.2f} ns"
    if ns < 1000:
        return f"{ns:.1f} ns"
    return f"{ns / 1000:.2f} µs"


def median_of(groups: Results, group: str, row: str) -> Optional[float]:
    for name, median, _ in groups.get(group, []):
        if name == row:
            return median
    return None


def tables(groups: Results) -> str:
    out = []
    for group in sorted(groups, key=lambda g: min(r[2] for r in groups[g])):
        rows = groups[group]
        reference = next((r for r in rows if r[0].startswith("stormguard")), None)
        has_alternatives = reference is not None and any(
            not r[0].startswith("stormguard") for r in rows
        )
        out.append(f"### {group}\n")
        if has_alternatives:
            assert reference is not None
            out.append(f"| benchmark | median | ÷ {reference[0]} |")
            out.append("|---|---:|---:|")
            for name, median, _ in rows:
                out.append(f"| {name} | {fmt(median)} | {median / reference[1]:.2f}× |")
        else:
            out.append("| benchmark | median |")
            out.append("|---|---:|")
            for name, median, _ in rows:
                out.append(f"| {name} | {fmt(median)} |")
        out.append("")
    return "\n".join(out)


def verdict(ok: Optional[bool]) -> str:
    return "not measured" if ok is None else ("**met**" if ok else "**missed**")


def targets(groups: Results, python: Optional[dict]) -> str:
    lines = ["| target | measured | verdict |", "|---|---|---|"]

    fail, ok = median_of(groups, *THROTTLE_FAIL), median_of(groups, *THROTTLE_OK)
    if fail is not None and ok is not None:
        lines.append(
            f"| a budget operation ≤ 10 ns, single thread | Throttle failure+check "
            f"{fmt(fail)}, success {fmt(ok)} | {verdict(max(fail, ok) <= 10)} |"
        )
    ratios = []
    for ours, theirs, label in [
        (THROTTLE_FAIL, MUTEX_FAIL, "failure+check"),
        (THROTTLE_OK, MUTEX_OK, "success"),
        ((PAIR_1, "stormguard Throttle"), (PAIR_1, "grpc-go Mutex<f64>"), "pair, 1 thread"),
        ((PAIR_2, "stormguard Throttle"), (PAIR_2, "grpc-go Mutex<f64>"), "pair, 2 threads"),
    ]:
        a, b = median_of(groups, *ours), median_of(groups, *theirs)
        if a is not None and b is not None:
            ratios.append((label, b / a))
    if ratios:
        single = [r for label, r in ratios if "2 threads" not in label]
        shown = ", ".join(f"{label} {r:.2f}×" for label, r in ratios)
        lines.append(
            f"| Throttle ≥ 2× faster than the Mutex bucket (single thread) | {shown} "
            f"| {verdict(min(single) >= 2)} |"
        )
    decision = median_of(groups, *DECISION)
    if decision is not None:
        lines.append(
            f"| a full `on_failure` decision ≤ 30 ns | {DECISION[1]}: {fmt(decision)} "
            f"| {verdict(decision <= 30)} |"
        )
    if python is not None:
        bare = python["bare_call"]
        ours = next(r for r in python["rows"] if r["library"] == "stormguard")
        over = ours["success"] - bare
        others = {
            r["library"]: r["success"] - bare
            for r in python["rows"]
            if not r["library"].startswith("stormguard")
        }
        lines.append(
            f"| Python success-path overhead ≤ 300 ns | {over * 1e9:.0f} ns "
            f"| {verdict(over <= 300e-9)} |"
        )
        if others:
            name = min(others, key=lambda k: others[k])
            lines.append(
                f"| … and ≥ 10× below the fastest alternative | {name}: "
                f"{others[name] * 1e9:.0f} ns, {others[name] / over:.1f}× | "
                f"{verdict(others[name] >= 10 * over)} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("criterion_dir")
    parser.add_argument("--since", type=float, default=0.0)
    parser.add_argument("--python", help="the JSON written by bindings-python/benches/bench.py")
    args = parser.parse_args()
    groups = load(args.criterion_dir, args.since)
    if not groups:
        sys.exit(f"no criterion results in {args.criterion_dir}")
    python = None
    if args.python and os.path.exists(args.python):
        with open(args.python) as f:
            python = json.load(f)
    print(tables(groups))
    print("### targets\n")
    print(targets(groups, python))


if __name__ == "__main__":
    main()
