#!/usr/bin/env python3
"""The loader regression check of scripts/bench.sh regression.

    regression.py --baseline "stackroll=0.0226 docker=0.133" --stackroll S.json --docker D.json

Compares the median of this run's `stackroll config` on the 200-service loader file (S.json,
a hyperfine or timeit.py export) with the baseline figure recorded in BENCHMARKS.md, and
prints a Markdown verdict: REGRESSION when stackroll's median is more than 20 % above the
baseline. Absolute times depend on the machine and its load, so the same comparison is also
made relative to `docker stack config` timed in the same run (D.json): when only the absolute
figure moved and the ratio did not, the machine is slower, not stackroll. Exit status 0 either
way: this is a report, not a test.
"""

import argparse
import json
import statistics

LIMIT = 1.20


def median(path):
    with open(path, encoding="utf-8") as handle:
        result = json.load(handle)["results"][0]
    return result.get("median") or statistics.median(result["times"])


def verdict(now, then):
    change = now / then
    word = "REGRESSION" if change > LIMIT else "ok"
    return f"{change:.2f}x the baseline: {word}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True)
    parser.add_argument("--stackroll", required=True)
    parser.add_argument("--docker", required=True)
    args = parser.parse_args()
    baseline = dict(item.split("=", 1) for item in args.baseline.split())
    then_mine, then_docker = float(baseline["stackroll"]), float(baseline["docker"])
    mine, docker = median(args.stackroll), median(args.docker)
    with open("/proc/loadavg", encoding="utf-8") as handle:
        load = handle.read().split()[0]
    print("### regression: `stackroll config`, 200-service loader file\n")
    print("| | baseline (BENCHMARKS.md) | this run | change |")
    print("|---|---:|---:|---|")
    print(f"| stackroll config (median s) | {then_mine:.4f} | {mine:.4f} | {verdict(mine, then_mine)} |")
    print(f"| docker stack config (median s) | {then_docker:.4f} | {docker:.4f} | {docker / then_docker:.2f}x |")
    print(
        f"| stackroll / docker | {then_mine / then_docker:.3f} | {mine / docker:.3f} | "
        f"{verdict(mine / docker, then_mine / then_docker)} |"
    )
    print(f"\n1-min load average at the end: {load}; limit: {LIMIT:.2f}x (20 % slower).\n")


if __name__ == "__main__":
    main()
