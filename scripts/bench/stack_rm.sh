#!/usr/bin/env bash
# Removes benchmark stacks and waits until the swarm holds nothing of them: no service,
# network, secret, config or container labelled com.docker.stack.namespace=<stack>.
#   stack_rm.sh STACK...      (only names starting with "bench")
# DOCKER (default: docker) is the CLI; BENCH_RM_TIMEOUT (default 300) bounds the wait in s.
#
# Services go first, and the networks only once every task of the stack is gone (as
# `stackroll rm` does). `docker stack rm` removes both at once, and the swarm (dockerd 20.10)
# lets a network go while its tasks are still stopping; those tasks' addresses on their other
# networks are then never released (moby/moby#37338). For the ingress network, which outlives
# every stack, that was about 10 addresses per removed `full` stack (10 services publish
# ports), so its /24 ran out after about two dozen stacks ("could not find an available IP
# while allocating VIP"; services with ports stay unallocated, their tasks New).
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

start=$SECONDS
# 1. The services; then wait until their tasks (listed until the swarm deletes them) and
#    containers are gone.
for stack in "$@"; do
    "$docker" service ls -q --filter "label=com.docker.stack.namespace=$stack" | xargs -r "$docker" service rm >/dev/null 2>&1 || true
done
tasks_left() { # tasks, services and containers still there of stack $1, one per line
    local filter="label=com.docker.stack.namespace=$1"
    # --no-resolve: no GET of each task's (removed) service, which dockerd logs as an error
    "$docker" stack ps -q --no-resolve "$1" 2>/dev/null || true
    "$docker" service ls -q --filter "$filter"
    "$docker" ps -aq --filter "$filter"
}
while :; do
    remaining=""
    for stack in "$@"; do
        remaining+=$(tasks_left "$stack" || echo "unknown (docker failed)")$'\n'
    done
    [[ -z ${remaining//$'\n'/} ]] && break
    if ((SECONDS - start > timeout)); then
        echo "stack_rm.sh: after ${timeout}s still $(grep -c . <<<"$remaining") tasks, services or containers of $*" >&2
        exit 1
    fi
    sleep 0.5
done

# 2. Everything else (networks, secrets, configs).
for stack in "$@"; do
    "$docker" stack rm "$stack" >/dev/null 2>&1 || true
done
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
