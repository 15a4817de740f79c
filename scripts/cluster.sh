#!/usr/bin/env bash
# A real multi-node Docker Swarm on this one machine, for stackroll's cluster tests
# (tests/cluster): 3 managers and 2 workers, each a dockerd in its own network namespace on a
# Linux bridge, the test image local/busybox:1 in every node.
#
#   scripts/cluster.sh [up]      create what is missing: bridge, namespaces, daemons (a daemon
#                                that died, e.g. one a test killed, is started again), the
#                                swarm, the image. Safe to run again.
#   scripts/cluster.sh down      stop the daemons it started (by their pidfiles) and whatever
#                                runs in its namespaces, remove the namespaces, the bridge and
#                                its state directories.
#   scripts/cluster.sh status    the nodes as the first manager sees them.
#
# Names: namespaces src1..src5 (src1-src3 managers, src4-src5 workers), bridge srcbr0 on
# 10.213.0.0/24 (nodes .11-.15). Sockets, pidfiles and exec-roots live under
# $STACKROLL_CLUSTER_RUN (default /run/stackroll-cluster): node N answers on
# unix://$STACKROLL_CLUSTER_RUN/srcN/docker.sock. Data-roots and logs under
# $STACKROLL_CLUSTER_DIR (default /var/lib/stackroll-cluster). The single-node dev swarm
# (/var/run/docker.sock) is never touched. Needs root, docker.io and busybox-static.
set -euo pipefail

RUN_DIR="${STACKROLL_CLUSTER_RUN:-/run/stackroll-cluster}"
STATE_DIR="${STACKROLL_CLUSTER_DIR:-/var/lib/stackroll-cluster}"
BRIDGE=srcbr0
SUBNET_PREFIX=10.213.0
MANAGERS=(1 2 3)
WORKERS=(4 5)
NODES=("${MANAGERS[@]}" "${WORKERS[@]}")
IMAGE=local/busybox:1

unset DOCKER_CONTEXT DOCKER_HOST

log() { printf 'cluster: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

ns() { printf 'src%s' "$1"; }
addr() { printf '%s.1%s' "$SUBNET_PREFIX" "$1"; }
sock() { printf '%s/%s/docker.sock' "$RUN_DIR" "$(ns "$1")"; }
# The PID this script started node N's daemon as (nsenter execs dockerd: the same process).
pidfile() { printf '%s/%s/launch.pid' "$RUN_DIR" "$(ns "$1")"; }
dock() {
    local node=$1
    shift
    docker -H "unix://$(sock "$node")" "$@"
}

# The PID of node N's dockerd if it is alive (by its pidfile).
daemon_pid() {
    local file pid
    file=$(pidfile "$1")
    [[ -s $file ]] || return 1
    pid=$(<"$file")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    printf '%s\n' "$pid"
}

# --- network ------------------------------------------------------------------------------

ensure_bridge() {
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        log "creating bridge $BRIDGE ($SUBNET_PREFIX.1/24)"
        ip link add "$BRIDGE" type bridge
        ip addr add "$SUBNET_PREFIX.1/24" dev "$BRIDGE"
    fi
    ip link set "$BRIDGE" up
}

ensure_namespace() {
    local node=$1 name host_end
    name=$(ns "$node")
    host_end="veth-$name"
    if [[ ! -e /var/run/netns/$name ]]; then
        log "creating namespace $name ($(addr "$node"))"
        ip netns add "$name"
    fi
    if ! ip link show "$host_end" >/dev/null 2>&1; then
        ip link add "$host_end" type veth peer name eth0 netns "$name"
        ip link set "$host_end" master "$BRIDGE" up
        ip -n "$name" addr add "$(addr "$node")/24" dev eth0
    fi
    ip -n "$name" link set lo up
    ip -n "$name" link set eth0 up
}

# --- daemons ------------------------------------------------------------------------------

start_daemon() {
    local node=$1 name dir run
    name=$(ns "$node")
    dir="$STATE_DIR/$name"
    run="$RUN_DIR/$name"
    if daemon_pid "$node" >/dev/null; then
        return
    fi
    mkdir -p "$dir/data" "$run/exec"
    log "starting dockerd in $name (log $dir/dockerd.log)"
    # nsenter, not `ip netns exec`: the latter remounts /sys and dockerd then fails. A UTS
    # namespace of its own gives the node its own hostname (what `node ls` and `ps` show).
    setsid nohup unshare --uts sh -c 'hostname "$0" && exec "$@"' "$name" \
        nsenter --net="/var/run/netns/$name" dockerd \
        --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs \
        --data-root "$dir/data" --exec-root "$run/exec" --pidfile "$run/dockerd.pid" \
        -H "unix://$run/docker.sock" \
        >>"$dir/dockerd.log" 2>&1 </dev/null &
    echo $! >"$(pidfile "$node")"
}

wait_daemon() {
    local node=$1 i
    for ((i = 0; i < 240; i++)); do
        dock "$node" info >/dev/null 2>&1 && return
        daemon_pid "$node" >/dev/null || break
        sleep 0.5
    done
    tail -n 30 "$STATE_DIR/$(ns "$node")/dockerd.log" >&2 || true
    die "dockerd of $(ns "$node") did not answer"
}

node_state() { dock "$1" info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || echo unknown; }

# Waits while a node that is part of the swarm says "pending" (right after a restart).
settled_state() {
    local node=$1 state i
    state=$(node_state "$node")
    for ((i = 0; i < 60; i++)); do
        [[ $state == pending ]] || break
        sleep 0.5
        state=$(node_state "$node")
    done
    printf '%s\n' "$state"
}

# --- swarm --------------------------------------------------------------------------------

ensure_swarm() {
    local first=${MANAGERS[0]} node state token_manager token_worker
    state=$(settled_state "$first")
    if [[ $state != active ]]; then
        log "initialising the swarm on $(ns "$first")"
        dock "$first" swarm init --advertise-addr "$(addr "$first")" >/dev/null
    fi
    wait_manager "$first"
    token_manager=$(dock "$first" swarm join-token -q manager)
    token_worker=$(dock "$first" swarm join-token -q worker)
    for node in "${NODES[@]}"; do
        [[ $node == "$first" ]] && continue
        state=$(settled_state "$node")
        [[ $state == active ]] && continue
        local token=$token_worker
        [[ " ${MANAGERS[*]} " == *" $node "* ]] && token=$token_manager
        log "joining $(ns "$node") (state was '$state')"
        dock "$node" swarm join --advertise-addr "$(addr "$node")" --token "$token" \
            "$(addr "$first"):2377" >/dev/null
    done
    wait_ready
}

wait_manager() {
    local i
    for ((i = 0; i < 120; i++)); do
        [[ $(dock "$1" info --format '{{.Swarm.ControlAvailable}}' 2>/dev/null) == true ]] && return
        sleep 0.5
    done
    die "$(ns "$1") is not an active manager"
}

# Waits until some manager lists every node Ready (and every manager reachable).
wait_ready() {
    local i node listing
    for ((i = 0; i < 240; i++)); do
        for node in "${MANAGERS[@]}"; do
            listing=$(dock "$node" node ls --format '{{.Hostname}} {{.Status}} {{.ManagerStatus}}' 2>/dev/null) || continue
            if [[ $(grep -c ' Ready' <<<"$listing") -ge ${#NODES[@]} ]] \
                && [[ $(grep -cE 'Leader|Reachable' <<<"$listing") -ge ${#MANAGERS[@]} ]] \
                && ! grep -q Unreachable <<<"$listing"; then
                return
            fi
            break
        done
        sleep 0.5
    done
    log "nodes as the managers see them:"
    for node in "${MANAGERS[@]}"; do dock "$node" node ls >&2 2>&1 || true; done
    die "not every node is Ready"
}

# --- image --------------------------------------------------------------------------------

build_rootfs_tar() {
    local tar=$1 root bb applet
    root=$(mktemp -d)
    chmod 0755 "$root"
    mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root" "$root/usr" "$root/run" \
        "$root/proc" "$root/sys" "$root/dev"
    chmod 1777 "$root/tmp"
    bb=$(readlink -f "$(command -v busybox)")
    cp "$bb" "$root/bin/busybox"
    chmod 0755 "$root/bin/busybox"
    for applet in $("$root/bin/busybox" --list); do
        [[ $applet == busybox ]] || ln -sf busybox "$root/bin/$applet"
    done
    ln -s bin "$root/sbin"
    ln -s ../bin "$root/usr/bin"
    ln -s ../bin "$root/usr/sbin"
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    tar -C "$root" -c . >"$tar"
    rm -rf "$root"
}

# The same image (one ID) in every node: imported into the first, saved, loaded into the rest.
ensure_image() {
    local first=${NODES[0]} node saved=""
    if ! dock "$first" image inspect "$IMAGE" >/dev/null 2>&1; then
        log "importing $IMAGE into $(ns "$first")"
        local tar="$STATE_DIR/busybox-rootfs.tar"
        build_rootfs_tar "$tar"
        dock "$first" import --change 'ENV PATH=/bin' --change 'CMD ["sh"]' - "$IMAGE" \
            <"$tar" >/dev/null
        rm -f "$tar"
    fi
    for node in "${NODES[@]}"; do
        dock "$node" image inspect "$IMAGE" >/dev/null 2>&1 && continue
        if [[ -z $saved ]]; then
            saved="$STATE_DIR/image.tar"
            dock "$first" save -o "$saved" "$IMAGE"
        fi
        log "loading $IMAGE into $(ns "$node")"
        dock "$node" load -i "$saved" >/dev/null
    done
    [[ -z $saved ]] || rm -f "$saved"
}

# --- commands -----------------------------------------------------------------------------

up() {
    command -v dockerd >/dev/null && command -v nsenter >/dev/null && command -v busybox >/dev/null \
        || die "needs dockerd (docker.io), nsenter and busybox (busybox-static); scripts/dev-swarm.sh up installs them"
    [[ $(id -u) -eq 0 ]] || die "needs root"
    mkdir -p "$RUN_DIR" "$STATE_DIR"
    local started=$SECONDS node
    ensure_bridge
    for node in "${NODES[@]}"; do
        ensure_namespace "$node"
        start_daemon "$node"
    done
    for node in "${NODES[@]}"; do
        wait_daemon "$node"
    done
    ensure_swarm
    ensure_image
    log "ready in $((SECONDS - started))s: managers $(for n in "${MANAGERS[@]}"; do printf 'unix://%s ' "$(sock "$n")"; done)"
}

stop_daemon() {
    local node=$1 pid i
    pid=$(daemon_pid "$node") || return 0
    log "stopping dockerd of $(ns "$node") (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 40; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.5
    done
    kill -KILL "$pid" 2>/dev/null || true
}

down() {
    local node name pids mounts
    for node in "${NODES[@]}"; do
        stop_daemon "$node"
    done
    for node in "${NODES[@]}"; do
        name=$(ns "$node")
        [[ -e /var/run/netns/$name ]] || continue
        # What is left in the namespace (containerd, shims, containers) was started by it.
        pids=$(ip netns pids "$name" 2>/dev/null || true)
        if [[ -n $pids ]]; then
            log "killing what still runs in $name"
            # shellcheck disable=SC2086
            kill -KILL $pids 2>/dev/null || true
        fi
    done
    sleep 0.5
    # Mounts the daemons left under our directories (container rootfs, secrets, netns files).
    mounts=$(awk -v a="$STATE_DIR/" -v b="$RUN_DIR/" \
        'index($2, a) == 1 || index($2, b) == 1 { print $2 }' /proc/self/mounts | sort -r)
    local mount
    for mount in $mounts; do
        umount -l "$mount" 2>/dev/null || true
    done
    for node in "${NODES[@]}"; do
        name=$(ns "$node")
        ip link del "veth-$name" 2>/dev/null || true
        if [[ -e /var/run/netns/$name ]]; then
            log "removing namespace $name"
            ip netns del "$name"
        fi
    done
    if ip link show "$BRIDGE" >/dev/null 2>&1; then
        log "removing bridge $BRIDGE"
        ip link del "$BRIDGE"
    fi
    rm -rf "$RUN_DIR" "$STATE_DIR"
    log "down"
}

status() {
    local node
    for node in "${MANAGERS[@]}"; do
        dock "$node" node ls 2>/dev/null && return
    done
    die "no manager answers"
}

case "${1:-up}" in
up) up ;;
down) down ;;
status) status ;;
-h | --help | help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' ;;
*) die "usage: $0 [up|down|status]" ;;
esac
