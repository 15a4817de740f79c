#!/usr/bin/env bash
# Fresh stacks for the benchmark runs that deploy a stack from nothing.
#
# Two overlay networks with the same explicit subnet cannot coexist on a swarm: the second one
# is never allocated (`docker network inspect`: Driver "", IPAM Config null; dockerd log:
# "Pool overlaps with other one on this address space", then "networkallocator: could not find
# local network state" for each of its services), and its tasks stay in state New for ever
# (moby/swarmkit#2398). The `full` Compose file gives its backend network a subnet, and the
# benchmark keeps several such stacks at once. So each deploy from nothing gets a /16 that no
# swarm network holds at the moment, as BENCH_SUBNET (the Compose file interpolates it), and a
# stack name never used before in this swarm, PREFIX_<tag>_<n> (tag: random, one per benchmark
# run), so that no network is ever re-created under a name that was just removed.
#
#   fresh.sh new STATE PREFIX       choose NAME and SUBNET; write "NAME SUBNET" to STATE/next and
#                                   STATE/last, add NAME to STATE/created and STATE/pending;
#                                   print "NAME SUBNET"
#   fresh.sh prepare STATE PREFIX   remove the stacks in STATE/pending (once allocated, see
#                                   below; stack_rm.sh: waits until they are gone) and, if there
#                                   were any, wait BENCH_SETTLE seconds; then `new` (prints
#                                   nothing). This is the untimed step before each run;
#                                   fresh_run.sh is the timed one.
#   fresh.sh clean STATE            remove the stacks in STATE/pending (once allocated)
#   fresh.sh allocated STACK...     wait until the swarm has allocated the stacks (below)
#
# STATE is a directory (created when missing). A name leaves STATE/pending only once
# stack_rm.sh has seen the whole stack gone, so removing STATE/pending's stacks removes every
# stack created through STATE. PREFIX must start with "bench" (stack_rm.sh removes no other).
# The tag is BENCH_FRESH_TAG (scripts/bench.sh sets one per run), else STATE/tag (random).
# DOCKER (default: docker) is the CLI.
#
# Allocated: every service has an address on each of its networks (the ingress network too
# when it publishes ports) and no task is in state New. A stack removed before that makes
# the allocator release addresses it had not written back yet, which it cannot ("Could not
# parse VIP address while releasing" in the dockerd log, hundreds of times in a run of
# back-to-back deploys and removals), and the ingress network outlives every stack. (The
# bigger ingress leak, networks removed before their tasks are gone, is stack_rm.sh's.)
# BENCH_ALLOC_TIMEOUT (default 300) bounds the wait.
#
# BENCH_SETTLE (default 20): the swarm goes on working for a while after a removed stack is
# gone from every listing. A 100-service `docker stack deploy` started at once after the
# removal took 2 to 28 s (and more with each run in a row) instead of about 1 s after a
# 20-second pause, which would time the swarm's backlog rather than the tool.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
docker=${DOCKER:-docker}
settle=${BENCH_SETTLE:-20}
alloc_timeout=${BENCH_ALLOC_TIMEOUT:-300}

usage() { sed -n '14,24s/^# \{0,1\}//p' "$0" >&2; exit 2; }

(($# >= 2)) || usage
cmd=$1 state=$2
if [[ $cmd != allocated ]]; then
    mkdir -p "$state"
    touch "$state/created" "$state/pending"
fi

# unallocated STACK: "N services, M tasks" the swarm has not allocated yet, or nothing.
unallocated() {
    local filter="label=com.docker.stack.namespace=$1" ids services=0 tasks=0
    ids=$("$docker" service ls -q --filter "$filter")
    [[ -n $ids ]] || return 0
    # Per service: networks, published ports, VIPs, and one E per VIP without an address.
    # shellcheck disable=SC2086 # one argument per id
    services=$("$docker" service inspect --format \
        '{{len .Spec.TaskTemplate.Networks}} {{if .Spec.EndpointSpec}}{{len .Spec.EndpointSpec.Ports}}{{else}}0{{end}} {{len .Endpoint.VirtualIPs}} x{{range .Endpoint.VirtualIPs}}{{if not .Addr}}E{{end}}{{end}}' \
        $ids | awk '{want = $1 + ($2 > 0)} $3 < want || $4 ~ /E/ {n++} END {print n + 0}')
    tasks=$("$docker" stack ps --no-resolve "$1" --filter desired-state=running --format '{{.CurrentState}}' | grep -c '^New' || true)
    ((services + tasks == 0)) || echo "$services services, $tasks tasks"
}

wait_allocated() {
    local stack start=$SECONDS left
    for stack in "$@"; do
        while left=$(unallocated "$stack") && [[ -n $left ]]; do
            if ((SECONDS - start >= alloc_timeout)); then
                echo "fresh.sh: after ${alloc_timeout}s the swarm has still not allocated $left of stack $stack" \
                    "(ingress network out of addresses? see 'could not find an available IP' in the dockerd log)" >&2
                return 1
            fi
            sleep 0.5
        done
    done
}

# remove_pending [SETTLE]: removes STATE/pending's stacks once the swarm has allocated them;
# then, if there were any, sleeps SETTLE seconds.
remove_pending() {
    local names=()
    mapfile -t names < <(grep . "$state/pending" || true)
    ((${#names[@]} == 0)) && return 0
    wait_allocated "${names[@]}"
    "$here/stack_rm.sh" "${names[@]}"
    : >"$state/pending"
    sleep "${1:-0}"
}

# The /16s in use by swarm networks now: their second octet, one per line (10.X.* only).
used_octets() {
    local ids
    ids=$("$docker" network ls -q --filter scope=swarm)
    [[ -n $ids ]] || return 0
    # shellcheck disable=SC2086 # one argument per id
    "$docker" network inspect --format '{{range .IPAM.Config}}{{.Subnet}} {{end}}' $ids |
        tr ' ' '\n' | sed -n 's/^10\.\([0-9]*\)\..*/\1/p' | sort -u
}

new() {
    local prefix=$1 tag n name octet used i
    [[ $prefix == bench* ]] || { echo "fresh.sh: prefix '$prefix' does not start with bench" >&2; exit 2; }
    tag=${BENCH_FRESH_TAG:-}
    if [[ -z $tag ]]; then
        [[ -s $state/tag ]] || od -An -N3 -tx1 /dev/urandom | tr -d ' \n' >"$state/tag"
        tag=$(cat "$state/tag")
    fi
    n=$(($(cat "$state/counter" 2>/dev/null || echo 0) + 1))
    echo "$n" >"$state/counter"
    name="${prefix}_${tag}_$n"
    if grep -qxF "$name" "$state/created"; then
        echo "fresh.sh: $name was already used" >&2
        exit 1
    fi
    # 10.201.0.0/16 ... 10.250.0.0/16, starting at a different one each time (a just-released
    # pool is not taken again at once), skipping those a swarm network holds now.
    used=$(used_octets)
    octet=""
    for ((i = 0; i < 50; i++)); do
        local candidate=$((201 + (n - 1 + i) % 50))
        if ! grep -qx "$candidate" <<<"$used"; then
            octet=$candidate
            break
        fi
    done
    [[ -n $octet ]] || { echo "fresh.sh: every subnet 10.201.0.0/16 ... 10.250.0.0/16 is in use" >&2; exit 1; }
    echo "$name" >>"$state/created"
    echo "$name" >>"$state/pending"
    echo "$name 10.$octet.0.0/16" >"$state/next"
    cp "$state/next" "$state/last"
    cat "$state/next"
}

case $cmd in
new) (($# == 3)) || usage; new "$3" ;;
prepare) (($# == 3)) || usage; remove_pending "$settle"; new "$3" >/dev/null ;;
clean) (($# == 2)) || usage; remove_pending ;;
allocated) shift; wait_allocated "$@" ;;
*) usage ;;
esac
