#!/usr/bin/env python3
"""The scale benchmark (issue 16 §1), driven by scripts/bench.sh scale.

    scale.py --bin STACKROLL --docker DOCKER --work DIR --tag TAG [--sizes 250,500,1000]
             [--runs 3] [--results FILE]

For each size N, a generated stack (gen_compose.py scale: N services at replicas 0, 2N + 10
secrets, 20 configs, 4 networks) goes through the phases a user meets, stackroll and docker
side by side where docker has the phase:

  config     `stackroll config`            vs `docker stack config`          (paired runs)
  plan       `stackroll plan` against an empty swarm (docker has no plan)
  first      `stackroll deploy --detach` (Argon2id, then HMAC fingerprints)
             vs `docker stack deploy --resolve-image never`                  (one run each)
  no-op      the same deploy again, both tools                                (paired runs)
  changed    one shared secret's file changed: `stackroll plan`, then `stackroll deploy
             --detach` (docker cannot: "only updates to Labels are allowed"; its stack is
             removed before this phase)

Each figure is one process from start to exit: wall seconds, CPU seconds (user + system, from
wait4) and peak RSS (the process's own maxrss), medians over the runs. The number of Engine
API requests of each command comes from one more run of it through count_proxy.py (untimed;
for `first`, a separate stack deployed through the proxy), split into reads and writes.

Stacks are named bench_sc_<TAG>_<N><a|h|d|pa|pd> and removed after each size (and on exit or
Ctrl-C) with stack_rm.sh. Prints Markdown tables; with --results also appends them to FILE.
"""

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_compose  # noqa: E402


class Run:
    """One finished process: wall and CPU seconds, peak RSS in MiB, exit code."""

    def __init__(self, wall, cpu, rss_mib, code):
        self.wall, self.cpu, self.rss_mib, self.code = wall, cpu, rss_mib, code


def run(argv, env=None, cwd=None, ok=(0,)):
    """Runs argv (output to a log in the work dir) and returns its Run; stops on a bad exit."""
    with open(LOG, "ab") as log:
        log.write(("\n$ " + " ".join(argv) + "\n").encode())
        log.flush()
        start = time.monotonic()
        child = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.monotonic() - start
        child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode not in ok:
        sys.exit(f"scale.py: {' '.join(argv)} exited {child.returncode} (log: {LOG})")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, child.returncode)


def counted(argv, env, cwd, ok=(0,)):
    """Runs argv once through count_proxy.py and returns its request counts (dict)."""
    sock = os.path.join(WORK, "proxy.sock")
    counts = os.path.join(WORK, "proxy.counts")
    upstream = env.get("DOCKER_HOST", "unix:///var/run/docker.sock").removeprefix("unix://")
    proxy = subprocess.Popen([sys.executable, os.path.join(HERE, "count_proxy.py"), sock, upstream, counts])
    for _ in range(100):
        if os.path.exists(sock):
            break
        time.sleep(0.05)
    try:
        run(argv, env=dict(env, DOCKER_HOST=f"unix://{sock}"), cwd=cwd, ok=ok)
    finally:
        proxy.send_signal(signal.SIGTERM)
        proxy.wait()
    with open(counts, encoding="utf-8") as handle:
        return dict(line.strip().split("=", 1) for line in handle if "=" in line)


def median(runs, field):
    return statistics.median(getattr(r, field) for r in runs)


class Table:
    """Rows of one size's results, printed as Markdown."""

    def __init__(self, title):
        self.title, self.rows = title, []

    def add(self, phase, tool, runs, counts=None, note=""):
        requests = f"{counts['requests']} ({counts['writes']} writes)" if counts else ""
        self.rows.append(
            f"| {phase} | {tool} | {median(runs, 'wall'):.3f} | {median(runs, 'cpu'):.3f} | "
            f"{median(runs, 'rss_mib'):.0f} | {requests} | {len(runs)} | {note} |"
        )

    def ratio(self, phase, mine, peer, goal=None):
        pairs = [a.wall / b.wall for a, b in zip(mine, peer)]
        text = f"{statistics.median(pairs):.2f}x"
        if goal is not None:
            text += f" (goal ≤ {goal}x: {'met' if statistics.median(pairs) <= goal else 'NOT met'})"
        self.rows.append(f"| {phase} | ratio stackroll/docker (median of pairs) | {text} | | | | | |")

    def markdown(self):
        head = [
            f"#### {self.title}",
            "",
            "| phase | command | wall s | CPU s | peak RSS MiB | engine requests | runs | note |",
            "|---|---|---:|---:|---:|---|---:|---|",
        ]
        return "\n".join(head + self.rows) + "\n"


def paired(a_argv, b_argv, runs, env, cwd, ok=(0,)):
    """Runs A and B in turn, `runs` times each; returns (A runs, B runs)."""
    mine, peer = [], []
    for _ in range(runs):
        mine.append(run(a_argv, env, cwd, ok))
        peer.append(run(b_argv, env, cwd, ok))
    return mine, peer


def remove(stacks):
    existing = [s for s in stacks if s in STACKS_MADE]
    if existing:
        subprocess.run([os.path.join(HERE, "stack_rm.sh"), *existing], check=True,
                       env=dict(os.environ, BENCH_RM_TIMEOUT="900"))
        for stack in existing:
            STACKS_MADE.discard(stack)


def bench_size(args, size):
    directory = os.path.join(WORK, f"scale{size}")
    shutil.rmtree(directory, ignore_errors=True)
    gen_compose.gen_scale(directory, size)
    compose = os.path.join(directory, "compose.yaml")
    env = dict(os.environ, REPLICAS="0")
    hmac_env = dict(env, STACKROLL_FINGERPRINT_KEY="bench-scale-fingerprint-key-not-a-secret-0123")
    stackroll, docker = args.bin, args.docker
    name = lambda suffix: f"bench_sc_{args.tag}_{size}{suffix}"  # noqa: E731
    table = Table(f"{size} services, {2 * size + gen_compose.SCALE_SHARED} secrets, "
                  f"{gen_compose.SCALE_CONFIGS} configs, {gen_compose.SCALE_NETWORKS} networks")

    # config
    mine, peer = paired([stackroll, "config", "-c", compose, "--format", "yaml"],
                        [docker, "stack", "config", "-c", compose], args.runs, env, directory)
    table.add("config", "stackroll config", mine)
    table.add("config", "docker stack config", peer)
    table.ratio("config", mine, peer)

    # plan against an empty swarm
    plan = [stackroll, "plan", "-c", compose, "--resolve-image", "never", name("a")]
    runs = [run(plan, env, directory) for _ in range(args.runs)]
    table.add("plan, empty swarm", "stackroll plan", runs, counted(plan, env, directory))

    # first deploys
    deploy = lambda suffix: [stackroll, "deploy", "-c", compose, "--detach", "--resolve-image", "never", name(suffix)]  # noqa: E731
    docker_deploy = lambda suffix: [docker, "stack", "deploy", "-c", compose, "--detach=true", "--resolve-image", "never", name(suffix)]  # noqa: E731
    for suffix in ("a", "h", "d", "pa", "pd"):
        STACKS_MADE.add(name(suffix))
    first_a = run(deploy("a"), env, directory)
    first_h = run(deploy("h"), hmac_env, directory)
    first_d = run(docker_deploy("d"), env, directory)
    counts_first = counted(deploy("pa"), env, directory)
    counts_first_docker = counted(docker_deploy("pd"), env, directory)
    table.add("first deploy", "stackroll deploy --detach (Argon2id)", [first_a], counts_first)
    table.add("first deploy", "stackroll deploy --detach (HMAC key)", [first_h], counts_first)
    table.add("first deploy", "docker stack deploy", [first_d], counts_first_docker)
    remove([name("h"), name("pa"), name("pd")])

    # no-op redeploys
    mine, peer = paired(deploy("a"), docker_deploy("d"), args.runs, env, directory)
    table.add("no-op redeploy", "stackroll deploy --detach", mine, counted(deploy("a"), env, directory))
    table.add("no-op redeploy", "docker stack deploy", peer, counted(docker_deploy("d"), env, directory))
    table.ratio("no-op redeploy", mine, peer, goal=0.1)

    # one shared secret changed (docker cannot take part: its stack goes first, so the swarm
    # holds what a user's would, this stack, not a second copy of it beside)
    remove([name("d")])
    gen_compose.secret_file(directory, "shared0", 0, generation=1)
    plan_a = [stackroll, "plan", "-c", compose, "--resolve-image", "never", name("a")]
    runs = [run(plan_a, env, directory) for _ in range(args.runs)]
    table.add("one shared secret changed", "stackroll plan", runs, counted(plan_a, env, directory),
              note="goal < 1 s: " + ("met" if median(runs, "wall") < 1 else "NOT met"))
    changed = run(deploy("a"), env, directory)
    table.add("one shared secret changed", f"stackroll deploy --detach ({size // gen_compose.SCALE_SHARED} services roll)", [changed])
    remove([name("a")])
    return table.markdown()


def bench_floor(args, size):
    """The small-stack floor (issue 16 §2): no-op redeploys of the `deploy` benchmark's stack
    with `size` services, stackroll and docker in turn, `--floor-runs` pairs."""
    directory = os.path.join(WORK, f"floor{size}")
    shutil.rmtree(directory, ignore_errors=True)
    gen_compose.gen_deploy(directory, size, restart_policy=False)
    compose = os.path.join(directory, "compose.yaml")
    env = dict(os.environ, REPLICAS="0")
    name = lambda suffix: f"bench_fl_{args.tag}_{size}{suffix}"  # noqa: E731
    deploy = [args.bin, "deploy", "-c", compose, "--detach", "--resolve-image", "never", name("s")]
    docker_deploy = [args.docker, "stack", "deploy", "-c", compose, "--detach=true", "--resolve-image", "never", name("d")]
    STACKS_MADE.update({name("s"), name("d")})
    run(deploy, env, directory)
    run(docker_deploy, env, directory)
    secrets = sum(1 for _ in os.scandir(os.path.join(directory, "secrets")))
    table = Table(f"small-stack floor: no-op redeploy, {size} services (replicas 0), {secrets} file secrets")
    mine, peer = paired(deploy, docker_deploy, args.floor_runs, env, directory)
    table.add("no-op redeploy", "stackroll deploy --detach (Argon2id seal)", mine, counted(deploy, env, directory))
    table.add("no-op redeploy", "docker stack deploy", peer, counted(docker_deploy, env, directory))
    table.ratio("no-op redeploy", mine, peer, goal=0.3)
    remove([name("s"), name("d")])
    return table.markdown()


def main(argv):
    global WORK, LOG
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", required=True)
    parser.add_argument("--docker", default="docker")
    parser.add_argument("--work", required=True)
    parser.add_argument("--tag", required=True)
    parser.add_argument("--sizes", default="250,500,1000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--floor", type=int, help="instead: the small-stack floor with this many services")
    parser.add_argument("--floor-runs", type=int, default=15)
    parser.add_argument("--results")
    args = parser.parse_args(argv)
    WORK = os.path.abspath(args.work)
    os.makedirs(WORK, exist_ok=True)
    LOG = os.path.join(WORK, "scale.log")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        sizes = [args.floor] if args.floor else [int(s) for s in args.sizes.split(",")]
        for size in sizes:
            body = bench_floor(args, size) if args.floor else bench_size(args, size)
            text = f"{table_load()}\n{body}"
            print(text, flush=True)
            if args.results:
                with open(args.results, "a", encoding="utf-8") as handle:
                    handle.write(text + "\n")
    finally:
        remove(sorted(STACKS_MADE))


def table_load():
    with open("/proc/loadavg", encoding="utf-8") as handle:
        return f"1-min load average (nproc {os.cpu_count()}) before this size: {handle.read().split()[0]}\n"


STACKS_MADE = set()
WORK = LOG = None

if __name__ == "__main__":
    main(sys.argv[1:])
