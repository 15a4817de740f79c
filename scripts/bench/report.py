#!/usr/bin/env python3
"""Prints one benchmark's table (Markdown) from hyperfine/timeit JSON exports.

    report.py --title T [--row LABEL=FILE]... [--ratio NUM/DEN[:GOAL]]... [--check TEXT=ok|fail]...
              [--note TEXT]...

LABEL may contain '=' (FILE may not); NUM and DEN may not contain '/'.

A ratio is median(NUM)/median(DEN), NUM and DEN being row labels (the ratio of the means is
shown next to it); the benchmark's goal is met when every ratio is at most its GOAL and every
check is ok. Ratios without ':GOAL' are shown for information only. The median is taken from
the export's "median" (hyperfine and timeit.py write it), else computed from "times".
"""

import argparse
import json
import statistics
import sys


def load(path):
    with open(path, encoding="utf-8") as handle:
        result = json.load(handle)["results"][0]
    if result.get("median") is None:
        result["median"] = statistics.median(result["times"])
    return result


def seconds(value):
    return f"{value:.3f}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--title", required=True)
    parser.add_argument("--row", action="append", default=[])
    parser.add_argument("--ratio", action="append", default=[])
    parser.add_argument("--check", action="append", default=[])
    parser.add_argument("--note", action="append", default=[])
    args = parser.parse_args()

    rows = {}
    print(f"### {args.title}\n")
    print("| command | mean (s) | median (s) | σ (s) | min (s) | max (s) | runs |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for spec in args.row:
        label, path = spec.rsplit("=", 1)
        result = load(path)
        rows[label] = result
        print(
            f"| {label} | {seconds(result['mean'])} | {seconds(result['median'])} | "
            f"{seconds(result['stddev'] or 0.0)} | "
            f"{seconds(result['min'])} | {seconds(result['max'])} | {len(result['times'])} |"
        )
    print()
    met = True
    has_goal = False
    for spec in args.ratio:
        pair, _, goal = spec.rpartition(":")
        try:
            float(goal)
        except ValueError:
            pair, goal = spec, ""
        num, den = pair.split("/", 1)
        ratio = rows[num]["median"] / rows[den]["median"]
        of_means = f"of means {rows[num]['mean'] / rows[den]['mean']:.2f}x"
        if goal:
            has_goal = True
            ok = ratio <= float(goal)
            met = met and ok
            print(
                f"- ratio {num} / {den} = **{ratio:.2f}x** ({of_means}; "
                f"goal ≤ {goal}x: {'met' if ok else 'NOT met'})"
            )
        else:
            print(f"- ratio {num} / {den} = {ratio:.2f}x ({of_means}; information)")
    for spec in args.check:
        text, _, state = spec.rpartition("=")
        ok = state == "ok"
        met = met and ok
        print(f"- check: {text}: {'ok' if ok else 'FAILED'}")
    if args.ratio:
        print(
            "- ratios compare medians, which one slow run on this shared machine moves less than "
            "the mean; the ratio of the means is in parentheses"
        )
    for note in args.note:
        print(f"- {note}")
    if has_goal or args.check:
        print(f"- **goal {'met' if met else 'NOT met'}**")
    print()


if __name__ == "__main__":
    sys.exit(main())
