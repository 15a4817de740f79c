#!/usr/bin/env python3
"""Times several commands in turn, run by run (A B C A B C ...), for benchmarks whose ratio must
not drift with the machine's speed during the run (scripts/bench.sh rotate).

    interleave.py --runs N [--warmup W] --command FILE 'COMMAND' [--command FILE 'COMMAND']...

Each COMMAND is split like a shell would (no shell) and run with its output discarded; any
non-zero exit stops with an error, like hyperfine. Each FILE gets hyperfine's JSON shape
(results[0]: command, mean, stddev, median, min, max, times), the runs in the order they ran,
so run i of one command is paired with run i of the others. Warmup rounds run every command
once and are not counted. Prints one line per round and, for every command after the first,
the median of the per-round ratios first/other.
"""

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time


def timed(argv):
    start = time.perf_counter()
    code = subprocess.call(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if code != 0:
        sys.exit(f"interleave: {shlex.join(argv)!r} exited with {code}")
    return elapsed


def export(path, argv, times):
    result = {
        "command": shlex.join(argv),
        "mean": statistics.fmean(times),
        "stddev": statistics.stdev(times) if len(times) > 1 else 0.0,
        "median": statistics.median(times),
        "min": min(times),
        "max": max(times),
        "times": times,
    }
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"results": [result]}, handle, indent=2)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--command", nargs=2, action="append", metavar=("FILE", "COMMAND"))
    args = parser.parse_args()
    if not args.command or args.runs < 1:
        parser.error("at least one --command and one run")
    commands = [(path, shlex.split(command)) for path, command in args.command]
    times = [[] for _ in commands]
    for round_ in range(args.warmup + args.runs):
        counted = round_ >= args.warmup
        line = []
        for index, (_, argv) in enumerate(commands):
            elapsed = timed(argv)
            line.append(f"{elapsed:.3f} s")
            if counted:
                times[index].append(elapsed)
        what = f"run {round_ - args.warmup + 1}" if counted else "warmup"
        print(f"  {what}: {' | '.join(line)}", flush=True)
    for (path, argv), series in zip(commands, times):
        export(path, argv, series)
    for (_, argv), series in list(zip(commands, times))[1:]:
        ratios = [first / other for first, other in zip(times[0], series)]
        print(
            f"  paired ratio first / {shlex.join(argv)}: median {statistics.median(ratios):.2f}x"
            f" (min {min(ratios):.2f}, max {max(ratios):.2f})"
        )


if __name__ == "__main__":
    main()
