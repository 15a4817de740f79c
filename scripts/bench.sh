#!/usr/bin/env bash
# Benchmarks of stackroll against its peers, on this machine's local single-node swarm.
#
#   scripts/bench.sh [loader|deploy|full|rotate|registry|scale|floor|regression|all]
#                    (default: all; full: 100 services, every field; scale, floor and
#                    regression are not part of all)
#
#   loader  `stackroll config` vs `docker stack config` on a generated 200-service,
#           400-secret Compose file (anchors, `<<` merge keys, interpolation). No swarm needed.
#   deploy  a 50-service stack: first deploy (stackroll --detach, stackroll waiting, vs
#           `docker stack deploy`), then no-op redeploys with a count of the writes each makes.
#   full    the deploy benchmark with 100 services using every kind of field docker stack
#           deploy converts (ports, volumes, configs, resources, placement, healthcheck, ...).
#   rotate  one secret shared by 10 services: change it and `stackroll deploy` vs the floor
#           (Swarm updating one of those services: `docker service update --detach=false`),
#           vs the same 10 updates at once through the docker CLI, run by run in turn; then vs
#           Docker's documented manual sequence (secret create + service update per service +
#           secret rm).
#   registry  no-op redeploy of a 50-service stack whose images (50 tags) live on the private
#           registry of scripts/registry.sh (started if needed), `--with-registry-auth
#           --resolve-image always` for both tools: every tag is looked up on every deploy.
#   scale   issue 16: generated stacks of 250, 500 and 1000 services at replicas 0 (2N + 10
#           secrets, 20 configs, 4 networks): config, plan on an empty swarm, first deploy
#           (Argon2id and HMAC), no-op redeploy and a changed shared secret, stackroll and
#           docker side by side; wall and CPU time, peak RSS and engine requests of each
#           (scripts/bench/scale.py, requests counted by scripts/bench/count_proxy.py).
#   floor   the small-stack floor: no-op redeploy of a 30-service stack, stackroll and docker
#           in turn (pairs), with the requests each sends.
#   regression  `stackroll config` on the loader's 200-service file against the baseline
#           figure in BENCHMARKS.md ("regression baseline" line): says REGRESSION when the
#           median is more than 20 % slower, also relative to docker stack config.
#
# The other benchmarks run both tools with `--resolve-image never` (local/busybox:1 has no
# registry to look up).
#
# Each benchmark prints a table with both times and the ratio stackroll/peer (measured in the
# same run), and whether the goal is met. These are measurements, not tests: nothing fails
# because of a time. A command that fails (non-zero exit) stops the script.
#
# Tables give mean and median; ratios compare medians (the machine is shared and noisy).
#
# Stacks used: deploy/full create every stack under a name never used before in this swarm,
# bench_s_<tag>_<n> (stackroll), bench_h_<tag>_<n> (stackroll, HMAC fingerprints) and
# bench_d_<tag>_<n> (docker), <tag> being random per run, the `full` stacks' network each on
# its own free /16 (scripts/bench/fresh.sh: a second swarm network with the same subnet is
# never allocated and its tasks stay New for ever); rotate uses bench_rs and bench_rd. All
# are removed at the end, also after Ctrl-C.
# Timing: hyperfine (installed with apt-get when missing and root), else a simple loop
# (scripts/bench/timeit.py). Knobs (environment):
#   BENCH_TIMER=hyperfine|loop   force the timer
#   BENCH_LOADER_RUNS (20)  BENCH_FIRST_RUNS (5)  BENCH_FIRST_WAIT_RUNS (2)
#   BENCH_NOOP_RUNS (5)  BENCH_ROTATE_RUNS (5)  BENCH_ROTATE_PEER_RUNS (2)
#   BENCH_WAIT_TIMEOUT (300)     seconds to wait for a stack's tasks to run before giving up
#   BENCH_SETTLE (20)            first deploy: seconds to wait (untimed) after removing the
#                                previous run's stack, so the swarm is done with it
#   BENCH_RESTART_POLICY=1       give the deploy/rotate services a deploy.restart_policy
#   BENCH_DOCKER_WAIT=1          also time one `docker stack deploy --detach=false` first
#                                deploy (the peer of a waiting stackroll deploy; ~5 min)
#   BENCH_RESULTS=FILE           also write the tables (Markdown) to FILE
#   BENCH_KEEP_WORK=1            keep the temporary directory (generated files, logs)
#   BENCH_SCALE_SIZES (250,500,1000)  BENCH_SCALE_RUNS (3)  BENCH_FLOOR_SERVICES (30)
#   BENCH_FLOOR_RUNS (15)
#   DOCKER=PATH                  docker CLI for everything but `stack config` (default: docker)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH="$ROOT/scripts/bench"

usage() { awk 'NR > 1 && !/^#/ {exit} NR > 1' "$0" | sed 's/^# \{0,1\}//'; }

WHAT=${1:-all}
case $WHAT in
loader | deploy | full | rotate | registry | scale | floor | regression | all) ;;
-h | --help | help) usage; exit 0 ;;
*) usage >&2; exit 2 ;;
esac

# The same engine scripts/dev-swarm.sh manages.
export DOCKER_HOST=unix:///var/run/docker.sock
unset DOCKER_CONTEXT
DOCKER=${DOCKER:-docker}
export DOCKER

# Variables the generated Compose files interpolate (${REPLICAS} has no default on purpose).
export REPLICAS=1 IMAGE_TAG=1 LOG_LEVEL=info BENCH_ENV=bench
unset STACKROLL_FINGERPRINT_KEY # the default (Argon2id) fingerprints, unless a row says otherwise

LOADER_RUNS=${BENCH_LOADER_RUNS:-20}
FIRST_RUNS=${BENCH_FIRST_RUNS:-5}
FIRST_WAIT_RUNS=${BENCH_FIRST_WAIT_RUNS:-2}
NOOP_RUNS=${BENCH_NOOP_RUNS:-5}
ROTATE_RUNS=${BENCH_ROTATE_RUNS:-5}
ROTATE_PEER_RUNS=${BENCH_ROTATE_PEER_RUNS:-2}
WAIT_TIMEOUT=${BENCH_WAIT_TIMEOUT:-300}
[[ $WAIT_TIMEOUT =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_WAIT_TIMEOUT must be a number of seconds" >&2; exit 2; }
export BENCH_SETTLE=${BENCH_SETTLE:-20} # read by scripts/bench/fresh.sh
[[ $BENCH_SETTLE =~ ^[0-9]+$ ]] || { echo "BENCH_SETTLE must be a number of seconds" >&2; exit 2; }

# Fixed-name stacks (rotate), plus the names earlier versions of this script used (removed as
# leftovers). deploy/full name their stacks with scripts/bench/fresh.sh, state in $WORK/fresh*.
STACKS=(bench_rs bench_rd bench_gs bench_gd)
LEGACY_STACKS=(bench_s bench_d bench_h)
BENCH_FRESH_TAG=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n') # this run's stack names
export BENCH_FRESH_TAG
WORK=$(mktemp -d /tmp/stackroll-bench.XXXXXX)
RESULTS="$WORK/results"
SUMMARY="$WORK/summary.md"
mkdir -p "$RESULTS"
: >"$SUMMARY"
SWARM_USED=0
T0=$SECONDS

log() { printf '[bench %02d:%02d] %s\n' $(((SECONDS - T0) / 60)) $(((SECONDS - T0) % 60)) "$*" >&2; }
die() { log "error: $*"; exit 1; }

cleanup() {
    local code=$?
    trap - EXIT INT TERM
    if ((SWARM_USED)); then
        # Every stack this run created and has not seen gone yet (fresh.sh keeps a name in
        # STATE/pending until stack_rm.sh saw the whole stack gone).
        local left=("${STACKS[@]}") state
        for state in "$WORK"/fresh*; do
            [[ -f $state/pending ]] && mapfile -t -O "${#left[@]}" left < <(grep . "$state/pending" || true)
        done
        log "removing benchmark stacks (${left[*]})"
        "$BENCH/stack_rm.sh" "${left[@]}" || log "warning: could not remove every benchmark stack"
    fi
    if [[ ${BENCH_KEEP_WORK:-} == 1 ]]; then
        log "kept $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- timer -------------------------------------------------------------------------------

TIMER=${BENCH_TIMER:-}
if [[ -z $TIMER ]]; then
    if ! command -v hyperfine >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        log "hyperfine missing: apt-get install -y hyperfine"
        { DEBIAN_FRONTEND=noninteractive apt-get install -y hyperfine ||
            { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y hyperfine; }; } \
            >"$WORK/apt.log" 2>&1 || log "could not install hyperfine; using the simple loop"
    fi
    if command -v hyperfine >/dev/null 2>&1; then TIMER=hyperfine; else TIMER=loop; fi
fi
[[ $TIMER == hyperfine || $TIMER == loop ]] || die "BENCH_TIMER must be hyperfine or loop"

# measure NAME RUNS WARMUP PREPARE COMMAND [ARG]...
# Times COMMAND (run without a shell, output discarded; a non-zero exit stops everything).
# PREPARE (may be empty) runs before every run and is not timed. Result: $RESULTS/NAME.json.
measure() {
    local name=$1 runs=$2 warmup=$3 prepare=$4
    shift 4
    local out="$RESULTS/$name.json" code=0
    log "timing $name: $runs runs, $warmup warmup${prepare:+; untimed before each run: ${prepare//"$BENCH/"/}}"
    if [[ $TIMER == hyperfine ]]; then
        local args=(--shell=none --style basic --runs "$runs" --warmup "$warmup" --export-json "$out")
        [[ -n $prepare ]] && args+=(--prepare "$prepare")
        hyperfine "${args[@]}" "$(printf '%q ' "$@")" >&2 || code=$?
    else
        local args=(--runs "$runs" --warmup "$warmup" --export-json "$out")
        [[ -n $prepare ]] && args+=(--prepare "$prepare")
        python3 "$BENCH/timeit.py" "${args[@]}" -- "$@" >&2 || code=$?
    fi
    if ((code != 0)); then
        local stack=""
        # measure_first's runs: the stack of the run that failed.
        [[ -n ${MEASURE_STATE:-} && -s $MEASURE_STATE/last ]] && read -r stack _ <"$MEASURE_STATE/last"
        swarm_diag "$stack"
        die "timing $name failed: a run or its untimed preparation exited non-zero (exit $code; message above)"
    fi
}

# table ARGS... (see scripts/bench/report.py): prints the table and appends it to the summary,
# with the 1-minute load average since load_mark (other work on the machine adds noise).
table() {
    python3 "$BENCH/report.py" "$@" \
        --note "1-min load average (nproc $(nproc)): $LOAD_MARK at the start, $(load1) at the end" |
        tee -a "$SUMMARY"
}
load1() { cut -d' ' -f1 /proc/loadavg; }
LOAD_MARK=$(load1)
load_mark() { LOAD_MARK=$(load1); }

# --- helpers for the swarm benchmarks ------------------------------------------------------

stack_rm() { "$BENCH/stack_rm.sh" "$@"; }

# count_services STACK: how many services the stack has.
count_services() {
    "$DOCKER" service ls -q --filter "label=com.docker.stack.namespace=$1" | wc -l
}

# wait_running STACK N: until the stack has N services, each with all replicas running; gives
# up after BENCH_WAIT_TIMEOUT seconds with what is wrong (task states, unallocated networks).
wait_running() {
    local stack=$1 want=$2 start=$SECONDS lines
    while :; do
        lines=$("$DOCKER" service ls --filter "label=com.docker.stack.namespace=$stack" --format '{{.Replicas}}')
        if [[ $(grep -c . <<<"$lines") -eq $want ]] && ! grep -vqE '^([0-9]+)/\1( |$)' <<<"$lines"; then
            return 0
        fi
        if ((SECONDS - start >= WAIT_TIMEOUT)); then
            log "stack $stack: $(grep -c . <<<"$lines") services, $(grep -cE '^([0-9]+)/\1( |$)' <<<"$lines") with all replicas running (want $want)"
            swarm_diag "$stack"
            die "stack $stack did not reach $want running services in ${WAIT_TIMEOUT}s (BENCH_WAIT_TIMEOUT)"
        fi
        sleep 1
    done
}

# unallocated_networks [STACK]: swarm networks (of STACK, else every bench* network) that the
# swarm never allocated (Driver empty): their tasks stay New for ever.
unallocated_networks() {
    local filter=(--filter scope=swarm) ids
    [[ -n ${1:-} ]] && filter+=(--filter "label=com.docker.stack.namespace=$1")
    ids=$("$DOCKER" network ls -q "${filter[@]}")
    [[ -n $ids ]] || return 0
    # shellcheck disable=SC2086 # one argument per id
    "$DOCKER" network inspect --format '{{.Name}} {{.Driver}}' $ids | awk '$1 ~ /^bench/ && NF == 1 {print $1}'
}

# swarm_diag [STACK]: on stderr, why a stack may not come up: its task states and errors,
# unallocated networks, the last allocation errors of the dev swarm's dockerd log.
swarm_diag() {
    local stack=${1:-} nets log=/var/lib/stackroll-dev-swarm/dockerd.log
    {
        if [[ -n $stack ]]; then
            echo "tasks of $stack by current state (and error):"
            "$DOCKER" stack ps "$stack" --no-trunc --no-resolve --filter desired-state=running \
                --format '{{.CurrentState}} {{.Error}}' 2>&1 | sed 's/ [0-9a-z ]* ago//' | sort | uniq -c | sort -rn | head -n 10
        fi
        nets=$(unallocated_networks "$stack" || true)
        [[ -n $nets ]] && echo "networks the swarm never allocated (Driver empty; their tasks stay New): $(tr '\n' ' ' <<<"$nets")"
        if [[ -r $log ]]; then
            echo "last allocation errors in $log:"
            grep -E 'Failed allocation|Pool overlaps|could not find an available IP' "$log" | tail -n 3 | cut -c1-300
        fi
    } >&2 || true
}

# kv FILE KEY: the value of KEY=... in FILE (scripts/bench/swarmstate.py diff output).
kv() { sed -n "s/^$2=//p" "$1"; }

# run_logged LOGNAME COMMAND...: runs COMMAND with its output in $WORK/LOGNAME.log; on failure
# shows the end of the log (stackroll and docker never print secret values) and stops.
run_logged() {
    local name=$1
    shift
    if ! "$@" >"$WORK/$name.log" 2>&1; then
        tail -n 30 "$WORK/$name.log" >&2
        die "$name failed: $*"
    fi
}

# --- build and machine ------------------------------------------------------------------------

log "building stackroll (cargo build --release --locked)"
if ! cargo build --release --locked >"$WORK/build.log" 2>&1; then
    tail -n 40 "$WORK/build.log" >&2
    die "cargo build --release --locked failed"
fi
# A private copy, so another build during the run cannot swap the binary under us.
cp target/release/stackroll "$WORK/stackroll"
BIN="$WORK/stackroll"

machine() {
    local mem dirty=""
    mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
    git diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || dirty=" + uncommitted changes in src/"
    echo "### Machine"
    echo
    echo "- CPUs (nproc): $(nproc); memory: $mem; kernel: $(uname -r)"
    echo "- $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
    echo "- stackroll: $("$BIN" --version | awk '{print $2}'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$dirty"
    echo "- docker CLI ($DOCKER): $("$DOCKER" version --format '{{.Client.Version}}' 2>/dev/null || echo unknown)"
    if [[ $WHAT != loader && $WHAT != regression ]]; then
        echo "- dockerd: $("$DOCKER" version --format '{{.Server.Version}} (API {{.Server.APIVersion}})'), storage driver $("$DOCKER" info --format '{{.Driver}}')"
    fi
    echo "- timer: $TIMER$([[ $TIMER == hyperfine ]] && echo " ($(hyperfine --version | awk '{print $2}'))")"
    echo
}

if [[ $WHAT != loader && $WHAT != regression ]]; then
    log "starting the local swarm (scripts/dev-swarm.sh up)"
    scripts/dev-swarm.sh up
    SWARM_USED=1
    log "removing leftovers of earlier runs"
    stack_rm "${STACKS[@]}" "${LEGACY_STACKS[@]}"
    # Fresh-named stacks of another run: that run may still be going, so they are only named.
    others=$("$DOCKER" stack ls --format '{{.Name}}' | grep -E '^bench_[a-z]+_[0-9a-f]{6}_[0-9]+$' || true)
    [[ -z $others ]] || log "warning: benchmark stacks of another run are on the swarm (remove them with scripts/bench/stack_rm.sh if that run is over): $(tr '\n' ' ' <<<"$others")"
fi
machine | tee -a "$SUMMARY"

# --- 1. loader -----------------------------------------------------------------------------

bench_loader() {
    load_mark
    local dir="$WORK/loader" cli="" candidate
    python3 "$BENCH/gen_compose.py" loader "$dir" --services 200 --secrets 400 >/dev/null
    for candidate in "$DOCKER" /usr/local/bin/docker /usr/bin/docker; do
        if command -v "$candidate" >/dev/null 2>&1 && "$candidate" stack config --help >/dev/null 2>&1; then
            cli=$(command -v "$candidate")
            break
        fi
    done
    pushd "$dir" >/dev/null
    # Both must accept the file: check exit codes and that every service comes out.
    "$BIN" config -c "$dir/compose.yaml" --format yaml >"$WORK/loader.stackroll.yaml" 2>"$WORK/loader.stackroll.err" ||
        { cat "$WORK/loader.stackroll.err" >&2; die "stackroll config rejected the loader file"; }
    [[ $(grep -c '^  svc[0-9]*:$' "$WORK/loader.stackroll.yaml") -eq 200 ]] || die "stackroll config did not print 200 services"
    if [[ -z $cli ]]; then
        log "no docker CLI with 'stack config' (needs docker/cli >= 25); loader benchmark skipped"
        # shellcheck disable=SC2016 # the backquotes are Markdown
        printf '### loader\n\nskipped: no docker CLI with `stack config` found (tried %s, /usr/local/bin/docker, /usr/bin/docker)\n\n' "$DOCKER" | tee -a "$SUMMARY"
        popd >/dev/null
        return
    fi
    "$cli" stack config -c "$dir/compose.yaml" >"$WORK/loader.docker.yaml" 2>"$WORK/loader.docker.err" ||
        { cat "$WORK/loader.docker.err" >&2; die "docker stack config rejected the loader file"; }
    [[ $(grep -c '^  svc[0-9]*:$' "$WORK/loader.docker.yaml") -eq 200 ]] || die "docker stack config did not print 200 services"

    measure loader_stackroll "$LOADER_RUNS" 3 "" "$BIN" config -c "$dir/compose.yaml" --format yaml
    measure loader_docker "$LOADER_RUNS" 3 "" "$cli" stack config -c "$dir/compose.yaml"
    popd >/dev/null
    table --title "loader: 200 services, 400 file secrets, anchors + merge keys + interpolation" \
        --row "stackroll config --format yaml=$RESULTS/loader_stackroll.json" \
        --row "docker stack config ($("$cli" version --format '{{.Client.Version}}' 2>/dev/null))=$RESULTS/loader_docker.json" \
        --ratio "stackroll config --format yaml/docker stack config ($("$cli" version --format '{{.Client.Version}}' 2>/dev/null)):0.2" \
        --note "file: $(wc -l <"$dir/compose.yaml") lines, $(wc -c <"$dir/compose.yaml") bytes; both commands exit 0 and print all 200 services"
}

# --- 2. deploy -----------------------------------------------------------------------------

# measure_first NAME STATE PREFIX RUNS SERVICES COMMAND [ARG]...: times first deploys of
# `COMMAND ARG... STACK`, each on a new stack (scripts/bench/fresh.sh). Before each run,
# untimed, the stacks STATE's earlier runs created are removed (once the swarm has allocated
# them; then awaited; then BENCH_SETTLE seconds) and a new name and subnet are chosen; the
# timed run is scripts/bench/fresh_run.sh, which adds the name and execs COMMAND. Then
# checks that every run made its own stack and that the last one has SERVICES services and
# is allocated (networks, services, tasks). The last stack is left in place.
measure_first() {
    local name=$1 state=$2 prefix=$3 runs=$4 services=$5
    shift 5
    local before after last
    before=$(grep -c "^${prefix}_" "$state/created" 2>/dev/null || true)
    MEASURE_STATE=$state measure "$name" "$runs" 0 "$BENCH/fresh.sh prepare $state $prefix" bash "$BENCH/fresh_run.sh" "$state" "$@"
    after=$(grep -c "^${prefix}_" "$state/created" || true)
    ((after - before == runs)) || die "$name: $((after - before)) new stacks for $runs runs"
    read -r last _ <"$state/last"
    [[ $(count_services "$last") -eq $services ]] || die "$name: stack $last has $(count_services "$last") services, not $services"
    [[ -z $(unallocated_networks "$last") ]] || { swarm_diag "$last"; die "$name: the swarm did not allocate every network of $last"; }
    "$BENCH/fresh.sh" allocated "$last" || { swarm_diag "$last"; die "$name: the swarm did not allocate every service and task of $last"; }
}

bench_deploy() {
    load_mark
    # bench_deploy [SERVICES [GENERATOR FLAGS...]]: `full` runs it with 100 services that use
    # every kind of field (issue 4's goals: first deploy <= 0.5x, no-op <= 0.2x).
    local services=${1:-50}
    local dir="$WORK/deploy$services" gen_flags=("${@:2}")
    [[ ${BENCH_RESTART_POLICY:-} == 1 ]] && gen_flags+=(--restart-policy)
    python3 "$BENCH/gen_compose.py" deploy "$dir" --services "$services" "${gen_flags[@]}" >/dev/null
    local secrets
    secrets=$(find "$dir/secrets" -type f | wc -l)
    local file="$dir/compose.yaml"
    local docker_deploy=("$DOCKER" stack deploy --resolve-image never -c "$file")
    # Every stack of this benchmark has a name never used before (and its own subnet, which
    # the `full` file's network uses): see scripts/bench/fresh.sh. State: $fresh.
    local fresh="$WORK/fresh$services"
    # HMAC fingerprints for the rows that say so: a random key, never printed.
    local key
    key=$(head -c 32 /dev/urandom | base64 | tr -d '\n')
    pushd "$dir" >/dev/null

    # First deploy: every run deploys a new stack from nothing (the previous run's stack is
    # removed before it, awaited and not timed).
    measure_first first_docker "$fresh" bench_d "$FIRST_RUNS" "$services" "${docker_deploy[@]}"
    measure_first first_stackroll_detach "$fresh" bench_s "$FIRST_RUNS" "$services" "$BIN" deploy --resolve-image never --detach -c "$file"
    STACKROLL_FINGERPRINT_KEY=$key measure_first first_stackroll_detach_hmac "$fresh" bench_h "$FIRST_RUNS" "$services" \
        "$BIN" deploy --resolve-image never --detach -c "$file"
    local wait_rows=()
    if [[ ${BENCH_DOCKER_WAIT:-} == 1 ]]; then
        measure_first first_docker_wait "$fresh" bench_d 1 "$services" "${docker_deploy[@]}" --detach=false
        wait_rows=(--row "docker stack deploy --resolve-image never --detach=false=$RESULTS/first_docker_wait.json"
            --ratio "stackroll deploy (waits for convergence)/docker stack deploy --resolve-image never --detach=false")
    fi
    # --timeout only bounds a run that cannot converge (e.g. an unallocated network).
    measure_first first_stackroll_wait "$fresh" bench_s "$FIRST_WAIT_RUNS" "$services" \
        "$BIN" deploy --resolve-image never --timeout "${WAIT_TIMEOUT}s" -c "$file"
    # The stack of the last waiting run stays: it is stackroll's stack for the no-op part.
    local s_stack s_subnet
    read -r s_stack s_subnet <"$fresh/last"
    wait_running "$s_stack" "$services"
    local hmac_label="stackroll deploy --detach (HMAC fingerprints, STACKROLL_FINGERPRINT_KEY set)"
    table --title "deploy, first: $services services, $secrets file secrets, 1 overlay network" \
        --row "stackroll deploy --detach=$RESULTS/first_stackroll_detach.json" \
        --row "$hmac_label=$RESULTS/first_stackroll_detach_hmac.json" \
        --row "stackroll deploy (waits for convergence)=$RESULTS/first_stackroll_wait.json" \
        --row "docker stack deploy --resolve-image never=$RESULTS/first_docker.json" \
        --ratio "stackroll deploy --detach/docker stack deploy --resolve-image never" \
        --ratio "$hmac_label/docker stack deploy --resolve-image never" \
        --ratio "stackroll deploy (waits for convergence)/docker stack deploy --resolve-image never" \
        "${wait_rows[@]}" \
        --note "no time goal for a first deploy; the comparable ratio is the --detach one. Like-for-like is --detach: docker stack deploy returns once the writes are accepted; plain stackroll deploy also waits until all $services tasks run" \
        --note "default --detach row: $secrets Argon2id fingerprints (m=19 MiB, t=2), one per new secret version; HMAC row: the same deploy with STACKROLL_FINGERPRINT_KEY set (random key, never printed)" \
        --note "each run deploys a new stack under a name never used before in this swarm (bench_d_, bench_s_, bench_h_ + ${BENCH_FRESH_TAG}_<n>)$([[ " ${gen_flags[*]} " == *" --full "* ]] && echo ", its network on its own /16 subnet"); before it, untimed, the previous run's stack is removed once the swarm has allocated it, services first and the rest once its tasks are gone (either shortcut leaks ingress addresses on dockerd 20.10), then ${BENCH_SETTLE} s pass (BENCH_SETTLE: right after a removal the swarm is still busy with it, and back-to-back 100-service docker deploys took 2 to 28 s instead of about 1 s). The timed command is scripts/bench/fresh_run.sh, a bash wrapper (about 2 ms) that adds the stack name and execs the tool. After each row: the last run's stack has all $services services, its networks, services and tasks are allocated (checked)"

    # No-op redeploy: stackroll's stack (the last waiting first deploy, converged), docker's and
    # the HMAC one (new stacks, deployed and awaited untimed), then the unchanged file again.
    load_mark
    local d_stack d_subnet h_stack h_subnet out
    out=$("$BENCH/fresh.sh" new "$fresh" bench_d)
    read -r d_stack d_subnet <<<"$out"
    BENCH_SUBNET=$d_subnet run_logged noop_setup_docker "${docker_deploy[@]}" "$d_stack"
    wait_running "$d_stack" "$services"
    local pending=0
    BENCH_SUBNET=$s_subnet "$BIN" plan --resolve-image never --detailed-exitcode -c "$file" "$s_stack" >"$WORK/noop_plan.txt" 2>&1 || pending=$?
    if ((pending == 2)); then
        log "warning: stackroll plan is not empty right after a converged deploy (every redeploy will write):"
        grep -m5 '^  ' "$WORK/noop_plan.txt" >&2 || true
        tail -n1 "$WORK/noop_plan.txt" >&2
    elif ((pending != 0)); then
        cat "$WORK/noop_plan.txt" >&2
        die "stackroll plan failed"
    fi
    python3 "$BENCH/swarmstate.py" snapshot "$s_stack" "$WORK/s0.json"
    BENCH_SUBNET=$s_subnet measure noop_stackroll "$NOOP_RUNS" 1 "" "$BIN" deploy --resolve-image never -c "$file" "$s_stack"
    python3 "$BENCH/swarmstate.py" snapshot "$s_stack" "$WORK/s1.json"
    BENCH_SUBNET=$d_subnet measure noop_docker "$NOOP_RUNS" 1 "" "${docker_deploy[@]}" "$d_stack"
    # Writes of one more (untimed) redeploy each.
    python3 "$BENCH/swarmstate.py" snapshot "$d_stack" "$WORK/d0.json"
    BENCH_SUBNET=$d_subnet run_logged noop_count_docker "${docker_deploy[@]}" "$d_stack"
    python3 "$BENCH/swarmstate.py" snapshot "$d_stack" "$WORK/d1.json"
    BENCH_SUBNET=$s_subnet run_logged noop_count_stackroll "$BIN" deploy --resolve-image never -c "$file" "$s_stack"
    python3 "$BENCH/swarmstate.py" snapshot "$s_stack" "$WORK/s2.json"
    python3 "$BENCH/swarmstate.py" diff "$WORK/s0.json" "$WORK/s1.json" >"$WORK/noop_s_all.kv"
    python3 "$BENCH/swarmstate.py" diff "$WORK/s1.json" "$WORK/s2.json" >"$WORK/noop_s_one.kv"
    python3 "$BENCH/swarmstate.py" diff "$WORK/d0.json" "$WORK/d1.json" >"$WORK/noop_d_one.kv"

    # The same no-op with HMAC fingerprints (STACKROLL_FINGERPRINT_KEY), on its own stack
    # deployed with that key: shows what the default Argon2id checks cost.
    out=$("$BENCH/fresh.sh" new "$fresh" bench_h)
    read -r h_stack h_subnet <<<"$out"
    BENCH_SUBNET=$h_subnet STACKROLL_FINGERPRINT_KEY=$key run_logged noop_setup_hmac \
        "$BIN" deploy --resolve-image never --timeout "${WAIT_TIMEOUT}s" -c "$file" "$h_stack"
    BENCH_SUBNET=$h_subnet STACKROLL_FINGERPRINT_KEY=$key measure noop_stackroll_hmac "$NOOP_RUNS" 1 "" \
        "$BIN" deploy --resolve-image never -c "$file" "$h_stack"
    popd >/dev/null

    local s_writes s_sum0 s_sum1 s_one d_services d_secrets d_total check
    s_writes=$(kv "$WORK/noop_s_all.kv" writes)
    s_sum0=$(kv "$WORK/noop_s_all.kv" service_index_sum_before)
    s_sum1=$(kv "$WORK/noop_s_all.kv" service_index_sum_after)
    s_one=$(kv "$WORK/noop_s_one.kv" writes)
    d_services=$(kv "$WORK/noop_d_one.kv" services_changed)
    d_secrets=$(kv "$WORK/noop_d_one.kv" secrets_changed)
    d_total=$(kv "$WORK/noop_d_one.kv" services)
    check=fail
    [[ $s_writes -eq 0 && $s_sum0 -eq $s_sum1 && $pending -eq 0 ]] && check=ok
    table --title "deploy, no-op redeploy of the unchanged $services-service stack" \
        --row "stackroll deploy (Argon2id fingerprints, default)=$RESULTS/noop_stackroll.json" \
        --row "stackroll deploy (HMAC fingerprints, STACKROLL_FINGERPRINT_KEY set)=$RESULTS/noop_stackroll_hmac.json" \
        --row "docker stack deploy --resolve-image never=$RESULTS/noop_docker.json" \
        --ratio "stackroll deploy (Argon2id fingerprints, default)/docker stack deploy --resolve-image never:0.3" \
        --ratio "stackroll deploy (HMAC fingerprints, STACKROLL_FINGERPRINT_KEY set)/docker stack deploy --resolve-image never" \
        --check "stackroll writes nothing: sum of service Version.Index $s_sum0 before, $s_sum1 after $((NOOP_RUNS + 1)) redeploys; $s_writes objects changed; plan before: $([[ $pending -eq 0 ]] && echo empty || echo NOT empty)=$check" \
        --note "writes per redeploy (one more, untimed): stackroll $s_one; docker stack deploy updated $d_services of $d_total services and $d_secrets of $secrets secrets" \
        --note "default row: Argon2id fingerprints (m=19 MiB, t=2), $secrets secrets; how many of them a no-op evaluates is up to stackroll (see the content seal in README.md)" \
        --note "stacks: $s_stack (stackroll, from the last waiting first deploy), $d_stack (docker), $h_stack (HMAC); docker's and the HMAC one are new stacks, deployed and awaited untimed"
    log "removing this benchmark's stacks"
    "$BENCH/fresh.sh" clean "$fresh"
}

# --- 3. rotate -----------------------------------------------------------------------------

bench_rotate() {
    load_mark
    local dir="$WORK/rotate" gen_flags=() services=10
    [[ ${BENCH_RESTART_POLICY:-} == 1 ]] && gen_flags+=(--restart-policy)
    python3 "$BENCH/gen_compose.py" rotate "$dir" --services "$services" "${gen_flags[@]}" >/dev/null
    local file="$dir/compose.yaml"
    pushd "$dir" >/dev/null
    stack_rm bench_rs bench_rd
    run_logged rotate_setup_stackroll "$BIN" deploy --resolve-image never -c "$file" bench_rs
    run_logged rotate_setup_docker "$DOCKER" stack deploy --resolve-image never -c "$file" bench_rd
    wait_running bench_rd "$services"
    wait_running bench_rs "$services"
    local peers
    mapfile -t peers < <("$DOCKER" service ls --filter label=com.docker.stack.namespace=bench_rd --format '{{.Name}}' | sort)
    ((${#peers[@]} == services)) || die "bench_rd has ${#peers[@]} services, not $services"

    # stackroll's rotation, the floor (Swarm updating one of the services, the docker CLI
    # waiting) and the same ten updates at once, in turn run by run: their ratios do not drift
    # with the machine's speed. The floor and the ten run on docker's stack, whose services
    # have the same update_config.
    log "timing rotate (stackroll / one service / ten at once, in turn): $ROTATE_RUNS runs, 1 warmup"
    python3 "$BENCH/interleave.py" --runs "$ROTATE_RUNS" --warmup 1 \
        --command "$RESULTS/rotate_stackroll.json" "$(printf '%q ' bash "$BENCH/rotate_stackroll.sh" "$BIN" "$dir" bench_rs)" \
        --command "$RESULTS/rotate_floor.json" "$(printf '%q ' bash "$BENCH/rotate_floor.sh" "${peers[0]}")" \
        --command "$RESULTS/rotate_swarm10.json" "$(printf '%q ' bash "$BENCH/rotate_floor.sh" "${peers[@]}")" |
        tee "$WORK/rotate_pairs.txt" >&2 || die "timing rotate failed (a run exited non-zero; message above)"
    local paired
    paired=$(sed -n 's/^  paired ratio first \/ .*: median \([0-9.]*x\) .*/\1/p' "$WORK/rotate_pairs.txt" | paste -sd/ -)
    measure rotate_docker "$ROTATE_PEER_RUNS" 0 "" bash "$BENCH/rotate_peer.sh" "$dir" bench_rd app_token "${peers[@]}"

    # Both ended where they should: every service on the newest secret, and converged.
    local s_gen p_gen wrong=0 name
    s_gen=$(cat "$dir/.stackroll_gen")
    p_gen=$(cat "$dir/.peer_gen")
    "$BIN" plan --resolve-image never --detailed-exitcode -c "$file" bench_rs >"$WORK/rotate_plan.txt" 2>&1 ||
        { cat "$WORK/rotate_plan.txt" >&2; die "stackroll plan not empty after the rotations"; }
    for name in $("$DOCKER" service ls --filter label=com.docker.stack.namespace=bench_rs --format '{{.Name}}'); do
        [[ $("$DOCKER" service inspect "$name" --format '{{range .Spec.TaskTemplate.ContainerSpec.Secrets}}{{.SecretName}}{{end}}') == "bench_rs_rotated_v$((s_gen + 1))" ]] || wrong=$((wrong + 1))
    done
    for name in "${peers[@]}"; do
        [[ $("$DOCKER" service inspect "$name" --format '{{range .Spec.TaskTemplate.ContainerSpec.Secrets}}{{.SecretName}}{{end}}') == "bench_rd_rotated_g$p_gen" ]] || wrong=$((wrong + 1))
    done
    ((wrong == 0)) || die "$wrong services are not on the newest secret version after the rotations"
    local kept
    kept=$("$DOCKER" secret ls -q --filter label=com.docker.stack.namespace=bench_rs | wc -l)
    popd >/dev/null
    local rotation="stackroll deploy (new version, roll all, wait, prune)"
    local floor="floor: docker service update --detach=false --force of one of the services"
    local ten="the same $services updates at once: $services x docker service update --detach=false --force"
    local peer="docker secret create + $services x docker service update (waits) + docker secret rm"
    table --title "rotate: one secret shared by $services services" \
        --row "$rotation=$RESULTS/rotate_stackroll.json" \
        --row "$floor=$RESULTS/rotate_floor.json" \
        --row "$ten=$RESULTS/rotate_swarm10.json" \
        --row "$peer=$RESULTS/rotate_docker.json" \
        --ratio "$rotation/$floor:1.15" \
        --ratio "$rotation/$ten" \
        --ratio "$rotation/$peer:0.3" \
        --note "the first three rows ran in turn, run by run; median of the per-run ratios stackroll / floor and stackroll / ten at once: $paired" \
        --note "both end with every service on the new secret (checked) and converged; stackroll kept $kept versions (--keep 1), the peer removed the old secret" \
        --note "services: replicas 1, update_config parallelism 1, order stop-first, failure_action rollback, monitor default (5s)"
    stack_rm bench_rs bench_rd
}

# --- 4. registry ---------------------------------------------------------------------------

bench_registry() {
    load_mark
    local services=50 dir="$WORK/registry" config="$WORK/docker-config"
    local state=${STACKROLL_REGISTRY_DIR:-/var/lib/stackroll-registry}
    "$ROOT/scripts/registry.sh" up
    local address
    address=$(<"$state/address")
    mkdir -p "$dir" "$config"
    run_logged registry_login "$DOCKER" --config "$config" login --username "$(<"$state/user")" \
        --password-stdin "$address" <"$state/password"
    # One image, pushed under a tag per service (the layers once, then a manifest per tag).
    local id
    id=$("$DOCKER" create local/busybox:1)
    "$DOCKER" export -o "$WORK/busybox.tar" "$id" >/dev/null
    "$DOCKER" rm "$id" >/dev/null
    "$DOCKER" import "$WORK/busybox.tar" "$address/bench/app:t1" >/dev/null
    local i
    {
        echo 'version: "3.8"'
        echo 'services:'
        for ((i = 1; i <= services; i++)); do
            ((i > 1)) && "$DOCKER" tag "$address/bench/app:t1" "$address/bench/app:t$i"
            run_logged "registry_push_$i" "$DOCKER" --config "$config" push "$address/bench/app:t$i"
            printf '  svc%d:\n    image: %s/bench/app:t%d\n    command: %s\n' "$i" "$address" "$i" \
                '["sh", "-c", "trap \"exit 0\" TERM; sleep 3600 & wait"]'
        done
    } >"$dir/compose.yaml"
    local file="$dir/compose.yaml"
    local docker_deploy=("$DOCKER" --config "$config" stack deploy --with-registry-auth --resolve-image always -c "$file")
    local stackroll_deploy=("$BIN" deploy --with-registry-auth --resolve-image always -c "$file")
    pushd "$dir" >/dev/null
    stack_rm bench_gs bench_gd
    DOCKER_CONFIG=$config run_logged registry_setup_stackroll "${stackroll_deploy[@]}" --timeout "${WAIT_TIMEOUT}s" bench_gs
    run_logged registry_setup_docker "${docker_deploy[@]}" bench_gd
    wait_running bench_gd "$services"
    wait_running bench_gs "$services"
    local pinned
    # (`service ls` shows images without their digest: read the specs.)
    pinned=$("$DOCKER" service inspect --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}' \
        $("$DOCKER" service ls -q --filter label=com.docker.stack.namespace=bench_gs) | grep -c '@sha256:' || true)
    ((pinned == services)) || die "only $pinned of $services stackroll services are pinned to a digest"
    python3 "$BENCH/swarmstate.py" snapshot bench_gs "$WORK/g0.json"
    DOCKER_CONFIG=$config measure registry_noop_stackroll "$NOOP_RUNS" 1 "" "${stackroll_deploy[@]}" bench_gs
    python3 "$BENCH/swarmstate.py" snapshot bench_gs "$WORK/g1.json"
    measure registry_noop_docker "$NOOP_RUNS" 1 "" "${docker_deploy[@]}" bench_gd
    python3 "$BENCH/swarmstate.py" snapshot bench_gd "$WORK/gd0.json"
    run_logged registry_count_docker "${docker_deploy[@]}" bench_gd
    python3 "$BENCH/swarmstate.py" snapshot bench_gd "$WORK/gd1.json"
    popd >/dev/null
    python3 "$BENCH/swarmstate.py" diff "$WORK/g0.json" "$WORK/g1.json" >"$WORK/registry_s.kv"
    python3 "$BENCH/swarmstate.py" diff "$WORK/gd0.json" "$WORK/gd1.json" >"$WORK/registry_d.kv"
    local s_writes s_sum0 s_sum1 d_services check=fail
    s_writes=$(kv "$WORK/registry_s.kv" writes)
    s_sum0=$(kv "$WORK/registry_s.kv" service_index_sum_before)
    s_sum1=$(kv "$WORK/registry_s.kv" service_index_sum_after)
    d_services=$(kv "$WORK/registry_d.kv" services_changed)
    [[ $s_writes -eq 0 && $s_sum0 -eq $s_sum1 ]] && check=ok
    table --title "registry: no-op redeploy of $services services on the private registry (--with-registry-auth --resolve-image always)" \
        --row "stackroll deploy=$RESULTS/registry_noop_stackroll.json" \
        --row "docker stack deploy=$RESULTS/registry_noop_docker.json" \
        --ratio "stackroll deploy/docker stack deploy:0.3" \
        --check "stackroll writes nothing: sum of service Version.Index $s_sum0 before, $s_sum1 after $((NOOP_RUNS + 1)) redeploys; $s_writes objects changed=$check" \
        --note "registry: scripts/registry.sh ($address, TLS, htpasswd); $services tags of one image, each looked up by both tools on every deploy (stackroll: concurrently, each tag once, a tag its services already run pinned checked with the registry itself, HEAD of the manifest, the engine's /distribution lookup only for a moved or new tag; docker: one engine lookup per service, in turn)" \
        --note "writes per redeploy (one more, untimed): stackroll 0 expected; docker stack deploy updated $d_services of $services services"
    stack_rm bench_gs bench_gd
}

# --- scale, floor (issue 16) ----------------------------------------------------------------

bench_scale() {
    log "scale: sizes ${BENCH_SCALE_SIZES:-250,500,1000}, ${BENCH_SCALE_RUNS:-3} runs of each repeatable phase"
    echo "### scale" | tee -a "$SUMMARY"
    echo | tee -a "$SUMMARY"
    python3 "$BENCH/scale.py" --bin "$BIN" --docker "$DOCKER" --work "$WORK/scale" --tag "$BENCH_FRESH_TAG" \
        --sizes "${BENCH_SCALE_SIZES:-250,500,1000}" --runs "${BENCH_SCALE_RUNS:-3}" | tee -a "$SUMMARY"
}

bench_floor() {
    echo "### floor" | tee -a "$SUMMARY"
    echo | tee -a "$SUMMARY"
    python3 "$BENCH/scale.py" --bin "$BIN" --docker "$DOCKER" --work "$WORK/floor" --tag "$BENCH_FRESH_TAG" \
        --floor "${BENCH_FLOOR_SERVICES:-30}" --floor-runs "${BENCH_FLOOR_RUNS:-15}" | tee -a "$SUMMARY"
}

# --- regression check ---------------------------------------------------------------------

bench_regression() {
    local dir="$WORK/loader" baseline
    baseline=$(sed -n 's/^<!-- regression baseline: \(.*\) -->$/\1/p' BENCHMARKS.md)
    [[ -n $baseline ]] || die "BENCHMARKS.md has no '<!-- regression baseline: ... -->' line"
    python3 "$BENCH/gen_compose.py" loader "$dir" --services 200 --secrets 400 >/dev/null
    pushd "$dir" >/dev/null
    measure regression_stackroll "$LOADER_RUNS" 3 "" "$BIN" config -c "$dir/compose.yaml" --format yaml
    measure regression_docker "$LOADER_RUNS" 3 "" "$DOCKER" stack config -c "$dir/compose.yaml"
    popd >/dev/null
    python3 "$BENCH/regression.py" --baseline "$baseline" \
        --stackroll "$RESULTS/regression_stackroll.json" --docker "$RESULTS/regression_docker.json" |
        tee -a "$SUMMARY"
}

case $WHAT in
loader) bench_loader ;;
scale) bench_scale ;;
floor) bench_floor ;;
regression) bench_regression ;;
deploy) bench_deploy ;;
full) bench_deploy 100 --full ;;
rotate) bench_rotate ;;
registry) bench_registry ;;
all)
    bench_loader
    bench_deploy
    bench_rotate
    bench_registry
    bench_deploy 100 --full
    ;;
esac

log "done in $(((SECONDS - T0) / 60))m$(((SECONDS - T0) % 60))s"
echo
echo "================ summary ================"
cat "$SUMMARY"
if [[ -n ${BENCH_RESULTS:-} ]]; then
    cp "$SUMMARY" "$BENCH_RESULTS"
    log "tables written to $BENCH_RESULTS"
fi
