#!/usr/bin/env bash
# A second Docker engine for the TLS tests: a dockerd that listens on TCP with --tlsverify, as a
# single-node swarm manager, in its own network namespace (so its swarm ports do not meet the
# dev swarm's). Certificates are made here with openssl: a CA, the engine's certificate (for
# 10.214.0.2), a client certificate, and a "rogue" CA with a client certificate of its own.
#
#   scripts/tls-engine.sh [up]   create what is missing and start the engine (no-op when up)
#   scripts/tls-engine.sh down   stop the engine this script started, remove its namespace
#   scripts/tls-engine.sh env    print the engine's address and certificate directories
#
# Network: namespace srtls, veth pair srtls-h (host, 10.214.0.1/24) / srtls-n (10.214.0.2/24).
# The engine: tcp://10.214.0.2:2376 (TLS, client certificates required) and a Unix socket,
# $STATE_DIR/docker.sock, for setting up. State (certificates, data-root, exec-root, pid file,
# log) lives in $STACKROLL_TLS_ENGINE_DIR (default /var/lib/stackroll-tls-engine). Needs root.
# Private keys are written 0600 and never printed.
set -euo pipefail

STATE_DIR="${STACKROLL_TLS_ENGINE_DIR:-/var/lib/stackroll-tls-engine}"
NETNS=srtls
HOST_IF=srtls-h
NS_IF=srtls-n
HOST_IP=10.214.0.1
ENGINE_IP=10.214.0.2
PORT=2376
CERTS="$STATE_DIR/certs"
SOCK="$STATE_DIR/docker.sock"
PID_FILE="$STATE_DIR/dockerd.pid"
LOG_FILE="$STATE_DIR/dockerd.log"

log() { printf 'tls-engine: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

local_docker() { DOCKER_HOST="unix://$SOCK" DOCKER_CONTEXT='' docker "$@"; }

our_pid() {
    local pid
    [[ -s $PID_FILE ]] || return 1
    pid=$(<"$PID_FILE")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    printf '%s\n' "$pid"
}

ensure_tools() {
    local missing=()
    command -v openssl >/dev/null 2>&1 || missing+=(openssl)
    command -v ip >/dev/null 2>&1 || missing+=(iproute2)
    command -v nsenter >/dev/null 2>&1 || missing+=(util-linux)
    command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
    ((${#missing[@]} == 0)) && return
    [[ $(id -u) -eq 0 ]] || die "missing ${missing[*]} and not root"
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >"$STATE_DIR/apt.log" 2>&1 \
        || { tail -n 20 "$STATE_DIR/apt.log" >&2; die "apt-get failed"; }
}

# sign NAME CA_DIR SUBJECT EXTENSIONS: NAME-key.pem and NAME-cert.pem signed by CA_DIR's CA.
sign() {
    local name=$1 ca=$2 subject=$3 extensions=$4
    (umask 077 && openssl genrsa -out "$name-key.pem" 2048 2>/dev/null)
    openssl req -new -key "$name-key.pem" -subj "$subject" -out "$name.csr" 2>/dev/null
    printf '%s\n' "$extensions" >"$name.ext"
    openssl x509 -req -in "$name.csr" -CA "$ca/ca.pem" -CAkey "$ca/ca-key.pem" \
        -CAcreateserial -days 3650 -sha256 -extfile "$name.ext" -out "$name-cert.pem" 2>/dev/null
    rm -f "$name.csr" "$name.ext"
}

# new_ca DIR SUBJECT
new_ca() {
    mkdir -p "$1"
    (umask 077 && openssl genrsa -out "$1/ca-key.pem" 2048 2>/dev/null)
    openssl req -x509 -new -key "$1/ca-key.pem" -days 3650 -sha256 -subj "$2" \
        -out "$1/ca.pem" 2>/dev/null
}

ensure_certs() {
    [[ -s $CERTS/client/key.pem && -s $CERTS/rogue/key.pem ]] && return
    log "making certificates in $CERTS"
    rm -rf "$CERTS"
    mkdir -p "$CERTS"
    chmod 0700 "$CERTS"
    new_ca "$CERTS/ca" "/CN=stackroll test CA"
    new_ca "$CERTS/rogue-ca" "/CN=stackroll rogue CA"
    (
        cd "$CERTS"
        sign server ca "/CN=$ENGINE_IP" \
            "subjectAltName=IP:$ENGINE_IP
extendedKeyUsage=serverAuth"
        sign client ca "/CN=stackroll client" "extendedKeyUsage=clientAuth"
        sign rogue rogue-ca "/CN=stackroll rogue client" "extendedKeyUsage=clientAuth"
        # DOCKER_CERT_PATH-style directories: the right client, and one from the rogue CA.
        mkdir -p client rogue
        cp ca/ca.pem client/ca.pem
        mv client-cert.pem client/cert.pem
        mv client-key.pem client/key.pem
        cp rogue-ca/ca.pem rogue/ca.pem
        mv rogue-cert.pem rogue/cert.pem
        mv rogue-key.pem rogue/key.pem
    )
}

ensure_network() {
    if ! ip netns list | grep -qw "^$NETNS"; then
        log "creating network namespace $NETNS"
        ip netns add "$NETNS"
    fi
    if ! ip link show "$HOST_IF" >/dev/null 2>&1; then
        ip link add "$HOST_IF" type veth peer name "$NS_IF"
        ip link set "$NS_IF" netns "$NETNS"
        ip addr add "$HOST_IP/24" dev "$HOST_IF"
        ip link set "$HOST_IF" up
        ip -n "$NETNS" addr add "$ENGINE_IP/24" dev "$NS_IF"
        ip -n "$NETNS" link set "$NS_IF" up
        ip -n "$NETNS" link set lo up
    fi
}

ensure_daemon() {
    if local_docker info >/dev/null 2>&1; then
        log "engine already answers on $SOCK"
        return
    fi
    mkdir -p "$STATE_DIR/data" "$STATE_DIR/exec"
    echo '{}' >"$STATE_DIR/daemon.json"
    if ! our_pid >/dev/null; then
        log "starting dockerd in namespace $NETNS (log $LOG_FILE)"
        # nsenter, not `ip netns exec` (that remounts /sys and dockerd then fails).
        setsid nohup nsenter --net="/var/run/netns/$NETNS" dockerd \
            --config-file "$STATE_DIR/daemon.json" \
            --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs \
            --data-root "$STATE_DIR/data" --exec-root "$STATE_DIR/exec" \
            --pidfile "$PID_FILE" \
            -H "unix://$SOCK" -H "tcp://$ENGINE_IP:$PORT" \
            --tlsverify --tlscacert "$CERTS/ca/ca.pem" \
            --tlscert "$CERTS/server-cert.pem" --tlskey "$CERTS/server-key.pem" \
            >>"$LOG_FILE" 2>&1 </dev/null &
    fi
    local i
    for ((i = 0; i < 120; i++)); do
        local_docker info >/dev/null 2>&1 && return
        sleep 0.5
    done
    tail -n 30 "$LOG_FILE" >&2 || true
    die "dockerd did not answer within 60s"
}

ensure_swarm() {
    local i state
    for ((i = 0; i < 40; i++)); do
        state=$(local_docker info --format '{{.Swarm.LocalNodeState}}')
        [[ $state == pending ]] || break
        sleep 0.5
    done
    if [[ $state != active ]]; then
        log "initialising swarm"
        local_docker swarm init --advertise-addr "$ENGINE_IP" >/dev/null
    fi
    for ((i = 0; i < 60; i++)); do
        [[ $(local_docker info --format '{{.Swarm.ControlAvailable}}' 2>/dev/null) == true ]] && return
        sleep 0.5
    done
    die "swarm manager not ready after 30s"
}

up() {
    [[ $(id -u) -eq 0 ]] || die "needs root (network namespace, dockerd)"
    mkdir -p "$STATE_DIR"
    chmod 0700 "$STATE_DIR"
    ensure_tools
    ensure_certs
    ensure_network
    ensure_daemon
    ensure_swarm
    log "ready: tcp://$ENGINE_IP:$PORT (TLS), client certificates in $CERTS/client"
}

down() {
    local pid i
    if pid=$(our_pid); then
        log "stopping dockerd (pid $pid)"
        kill -TERM "$pid"
        for ((i = 0; i < 60; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.5
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PID_FILE"
    ip link del "$HOST_IF" 2>/dev/null || true
    ip netns del "$NETNS" 2>/dev/null || true
    log "down"
}

case "${1:-up}" in
up) up ;;
down) down ;;
env)
    printf 'TLS_ENGINE_HOST=tcp://%s:%s\nTLS_ENGINE_CERTS=%s\nTLS_ENGINE_SOCK=%s\n' \
        "$ENGINE_IP" "$PORT" "$CERTS" "$SOCK"
    ;;
-h | --help | help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' ;;
*) die "usage: $0 [up|down|env]" ;;
esac
