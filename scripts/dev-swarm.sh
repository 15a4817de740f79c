#!/usr/bin/env bash
# Local single-node Docker Swarm for stackroll's tests.
#
#   scripts/dev-swarm.sh [up]   install docker.io + busybox-static if missing, start dockerd
#                               (unless one already answers), init the swarm, build the
#                               local test image local/busybox:1. Safe to run again (no-op).
#   scripts/dev-swarm.sh down   leave the swarm and stop the dockerd this script started.
#
# State (data-root, exec-root, log, pid file) lives in $STACKROLL_DEV_SWARM_DIR
# (default /var/lib/stackroll-dev-swarm). Needs root; no registry access is needed.
set -euo pipefail

STATE_DIR="${STACKROLL_DEV_SWARM_DIR:-/var/lib/stackroll-dev-swarm}"
SOCK=/var/run/docker.sock
IMAGE=local/busybox:1
PID_FILE="$STATE_DIR/dockerd.pid"
LOG_FILE="$STATE_DIR/dockerd.log"

# Always talk to the daemon this script manages, whatever context the caller has.
export DOCKER_HOST="unix://$SOCK"
unset DOCKER_CONTEXT

log() { printf 'dev-swarm: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

daemon_up() { docker info >/dev/null 2>&1; }

our_pid() {
    # PID of the dockerd we started, if it is still alive.
    local pid
    [[ -s $PID_FILE ]] || return 1
    pid=$(<"$PID_FILE")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    printf '%s\n' "$pid"
}

ensure_packages() {
    if command -v dockerd >/dev/null 2>&1 && command -v busybox >/dev/null 2>&1 \
        && command -v docker >/dev/null 2>&1; then
        return
    fi
    [[ $(id -u) -eq 0 ]] || die "docker.io/busybox-static missing and not root; install them"
    mkdir -p "$STATE_DIR"
    local apt_log="$STATE_DIR/apt.log"
    log "installing docker.io busybox-static (apt-get, log $apt_log)"
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update && apt-get install -y docker.io busybox-static; } >"$apt_log" 2>&1; then
        tail -n 30 "$apt_log" >&2
        die "apt-get failed"
    fi
    command -v dockerd >/dev/null 2>&1 || die "dockerd still missing after apt-get install"
    command -v busybox >/dev/null 2>&1 || die "busybox still missing after apt-get install"
}

ensure_daemon() {
    if daemon_up; then
        log "dockerd already answers on $SOCK"
        return
    fi
    mkdir -p "$STATE_DIR/data" "$STATE_DIR/exec"
    if ! our_pid >/dev/null; then
        log "starting dockerd (state in $STATE_DIR, log $LOG_FILE)"
        # setsid: own session, so it survives this script and its terminal.
        setsid nohup dockerd \
            --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs \
            --data-root "$STATE_DIR/data" --exec-root "$STATE_DIR/exec" \
            -H "unix://$SOCK" \
            >>"$LOG_FILE" 2>&1 </dev/null &
        echo $! >"$PID_FILE"
    else
        log "dockerd (pid $(our_pid)) is starting; waiting"
    fi
    local i
    for ((i = 0; i < 120; i++)); do
        daemon_up && { log "dockerd is up ($(docker version --format '{{.Server.Version}} API {{.Server.APIVersion}}' 2>/dev/null))"; return; }
        if ! our_pid >/dev/null; then
            break # it died
        fi
        sleep 0.5
    done
    if our_pid >/dev/null; then
        log "dockerd did not answer within 60s; last lines of $LOG_FILE:"
    else
        log "dockerd exited; last lines of $LOG_FILE:"
    fi
    tail -n 40 "$LOG_FILE" >&2 || true
    exit 1
}

ensure_swarm() {
    local state i
    state=$(docker info --format '{{.Swarm.LocalNodeState}}')
    # Right after a daemon restart an existing swarm node is briefly "pending".
    i=0
    while [[ $state == pending ]] && ((i++ < 40)); do
        sleep 0.5
        state=$(docker info --format '{{.Swarm.LocalNodeState}}')
    done
    if [[ $state == active ]]; then
        log "swarm already active"
    else
        log "initialising swarm (node state was '$state')"
        docker swarm init --advertise-addr 127.0.0.1 >/dev/null
    fi
    for ((i = 0; i < 60; i++)); do
        [[ $(docker info --format '{{.Swarm.ControlAvailable}}' 2>/dev/null) == true ]] && return
        sleep 0.5
    done
    die "swarm manager not ready after 30s"
}

ensure_image() {
    if docker image inspect "$IMAGE" >/dev/null 2>&1; then
        log "image $IMAGE present"
        return
    fi
    log "building $IMAGE from $(command -v busybox)"
    local root bb applet
    root=$(mktemp -d)
    chmod 0755 "$root" # mktemp makes 0700; tar records "." and it becomes the image's /
    # shellcheck disable=SC2064
    trap "rm -rf '$root'" EXIT
    mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root" "$root/usr" "$root/run" \
        "$root/proc" "$root/sys" "$root/dev"
    chmod 1777 "$root/tmp"
    bb=$(readlink -f "$(command -v busybox)")
    cp "$bb" "$root/bin/busybox"
    chmod 0755 "$root/bin/busybox"
    for applet in $("$root/bin/busybox" --list); do
        [[ $applet == busybox ]] || ln -sf busybox "$root/bin/$applet"
    done
    # Absolute paths such as /usr/bin/env or /sbin/ip resolve to the same applets.
    ln -s bin "$root/sbin"
    ln -s ../bin "$root/usr/bin"
    ln -s ../bin "$root/usr/sbin"
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    tar -C "$root" -c . | docker import \
        --change 'ENV PATH=/bin' --change 'CMD ["sh"]' - "$IMAGE" >/dev/null
    docker run --rm --network none "$IMAGE" sh -c 'test -x /bin/busybox && echo ok' \
        | grep -qx ok || die "image $IMAGE does not run 'sh -c' (is $bb statically linked? needs busybox-static)"
    rm -rf "$root"
    trap - EXIT
    log "image $IMAGE built"
}

up() {
    ensure_packages
    ensure_daemon
    ensure_swarm
    ensure_image
    log "ready: single-node swarm on $SOCK, image $IMAGE"
}

down() {
    if daemon_up; then
        if [[ $(docker info --format '{{.Swarm.LocalNodeState}}') != inactive ]]; then
            log "leaving swarm"
            docker swarm leave --force >/dev/null || true
        fi
    fi
    local pid i
    if pid=$(our_pid); then
        log "stopping dockerd (pid $pid)"
        kill -TERM "$pid"
        for ((i = 0; i < 60; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.5
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "dockerd still running after 30s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    elif daemon_up; then
        log "dockerd was not started by this script; leaving it running"
    fi
    rm -f "$PID_FILE"
    log "down"
}

case "${1:-up}" in
up) up ;;
down) down ;;
-h | --help | help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' ;;
*) die "usage: $0 [up|down]" ;;
esac
