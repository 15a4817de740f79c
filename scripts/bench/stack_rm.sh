#!/usr/bin/env bash
# Removes benchmark stacks and waits until the swarm holds nothing of them: no service,
# network, secret, config or container labelled com.docker.stack.namespace=<stack>.
#   stack_rm.sh STACK...      (only names starting with "bench")
# DOCKER (default: docker) is the CLI; BENCH_RM_TIMEOUT (default 300) bounds the wait in s.
set -euo pipefail
docker=${DOCKER:-docker}
timeout=${BENCH_RM_TIMEOUT:-300}

for stack in "$@"; do
    [[ $stack == bench* ]] || { echo "stack_rm.sh: refusing to remove non-bench stack '$stack'" >&2; exit 2; }
done

left() { # what is left of stack $1, one "kind id" per line
    local filter="label=com.docker.stack.namespace=$1"
    "$docker" service ls -q --filter "$filter" | sed 's/^/service /'
    "$docker" network ls -q --filter "$filter" | sed 's/^/network /'
    "$docker" secret ls -q --filter "$filter" | sed 's/^/secret /'
    "$docker" config ls -q --filter "$filter" | sed 's/^/config /'
    "$docker" ps -aq --filter "$filter" | sed 's/^/container /'
}

for stack in "$@"; do
    "$docker" stack rm "$stack" >/dev/null 2>&1 || true
done
start=$SECONDS
tick=0
while :; do
    remaining=""
    for stack in "$@"; do
        remaining+=$(left "$stack" || echo "unknown (docker failed)")$'\n'
    done
    [[ -z ${remaining//$'\n'/} ]] && exit 0
    if ((SECONDS - start > timeout)); then
        echo "stack_rm.sh: after ${timeout}s still present:" >&2
        printf '%s\n' "$remaining" | awk 'NF {print $1}' | sort | uniq -c >&2
        exit 1
    fi
    # Networks and secrets can only go once the tasks are gone: retry every few seconds.
    if ((++tick % 10 == 0)); then
        for stack in "$@"; do
            "$docker" stack rm "$stack" >/dev/null 2>&1 || true
            filter="label=com.docker.stack.namespace=$stack"
            "$docker" network ls -q --filter "$filter" | xargs -r "$docker" network rm >/dev/null 2>&1 || true
            "$docker" secret ls -q --filter "$filter" | xargs -r "$docker" secret rm >/dev/null 2>&1 || true
        done
    fi
    sleep 0.5
done
