#!/usr/bin/env python3
"""A small stand-in for hyperfine, used by scripts/bench.sh when hyperfine is missing.

    timeit.py --runs N [--warmup W] [--prepare CMD] --export-json FILE -- COMMAND [ARG]...

Runs PREPARE (split like a shell would, no shell) before every warmup and timed run, then
COMMAND with its output discarded; any non-zero exit stops with an error, like hyperfine.
Writes hyperfine's JSON shape (results[0]: command, mean, stddev, median, min, max, times)
and prints a one-line summary.
"""

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time


def run(argv, what):
    code = subprocess.call(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if code != 0:
        sys.exit(f"timeit: {what} {shlex.join(argv)!r} exited with {code}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--prepare")
    parser.add_argument("--export-json", required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command")
    prepare = shlex.split(args.prepare) if args.prepare else None
    times = []
    for i in range(args.warmup + args.runs):
        if prepare:
            run(prepare, "prepare command")
        start = time.perf_counter()
        run(command, "command")
        elapsed = time.perf_counter() - start
        if i >= args.warmup:
            times.append(elapsed)
    result = {
        "command": shlex.join(command),
        "mean": statistics.fmean(times),
        "stddev": statistics.stdev(times) if len(times) > 1 else 0.0,
        "median": statistics.median(times),
        "min": min(times),
        "max": max(times),
        "times": times,
    }
    with open(args.export_json, "w", encoding="utf-8") as handle:
        json.dump({"results": [result]}, handle, indent=2)
    print(
        f"  {result['command']}\n    mean {result['mean']:.3f} s ± {result['stddev']:.3f} s,"
        f" median {result['median']:.3f} s"
        f" (min {result['min']:.3f}, max {result['max']:.3f}, {len(times)} runs)"
    )


if __name__ == "__main__":
    main()
