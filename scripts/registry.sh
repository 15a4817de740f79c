#!/usr/bin/env bash
# A private registry for stackroll's registry tests: Debian's docker-registry (the CNCF
# distribution registry) on 127.0.0.1 with TLS (a CA and a server certificate made here with
# openssl) and htpasswd basic auth.
#
#   scripts/registry.sh [up]   install docker-registry, apache2-utils and openssl if missing,
#                              make the CA, certificate and password (once), let the local
#                              dockerd trust the CA (/etc/docker/certs.d/<host:port>/ca.crt; no
#                              daemon restart needed) and start the registry unless it answers.
#                              Safe to run again (no-op).
#   scripts/registry.sh down   stop the registry this script started (its pid file).
#
# State lives in $STACKROLL_REGISTRY_DIR (default /var/lib/stackroll-registry): ca.crt, the
# server key and certificate, htpasswd, `user` and `password` (mode 600: the tests read them and
# register the password as a value no output may contain), `address` (127.0.0.1:<port>), the
# config, the storage, the log and the pid file. Port: $STACKROLL_REGISTRY_PORT (default 5055).
# Needs root (apt-get, /etc/docker/certs.d); no network beyond 127.0.0.1.
set -euo pipefail

STATE_DIR="${STACKROLL_REGISTRY_DIR:-/var/lib/stackroll-registry}"
PORT="${STACKROLL_REGISTRY_PORT:-5055}"
ADDRESS="127.0.0.1:$PORT"
USER_NAME=stackroll
PID_FILE="$STATE_DIR/registry.pid"
LOG_FILE="$STATE_DIR/registry.log"
CERTS_DIR="/etc/docker/certs.d/$ADDRESS"

log() { printf 'registry: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# PID of the registry this script started, if it is still alive.
our_pid() {
    local pid
    [[ -s $PID_FILE ]] || return 1
    pid=$(<"$PID_FILE")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    printf '%s\n' "$pid"
}

# Whether a registry answers on $ADDRESS with our CA (401: it wants credentials).
answers() {
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$STATE_DIR/ca.crt" \
        "https://$ADDRESS/v2/" 2>/dev/null) || return 1
    [[ $code == 401 ]]
}

ensure_packages() {
    local missing=()
    command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
    command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)
    command -v openssl >/dev/null 2>&1 || missing+=(openssl)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    [[ ${#missing[@]} -eq 0 ]] && return
    [[ $(id -u) -eq 0 ]] || die "${missing[*]} missing and not root; install them"
    mkdir -p "$STATE_DIR"
    log "installing ${missing[*]} (apt-get, log $STATE_DIR/apt.log)"
    export DEBIAN_FRONTEND=noninteractive
    # The package's own service is not started: there is no init system here, and this script
    # runs its own instance.
    if ! { apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; } \
        >"$STATE_DIR/apt.log" 2>&1; then
        tail -n 30 "$STATE_DIR/apt.log" >&2
        die "apt-get failed"
    fi
}

# The CA, the server certificate (for IP 127.0.0.1) and the htpasswd file, made once.
ensure_material() {
    mkdir -p "$STATE_DIR/data"
    chmod 700 "$STATE_DIR"
    if [[ ! -s $STATE_DIR/ca.crt || ! -s $STATE_DIR/server.crt ]]; then
        log "making a CA and a certificate for $ADDRESS"
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj '/CN=stackroll test CA' \
            -keyout "$STATE_DIR/ca.key" -out "$STATE_DIR/ca.crt" 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -subj '/CN=127.0.0.1' \
            -keyout "$STATE_DIR/server.key" -out "$STATE_DIR/server.csr" 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$STATE_DIR/san.ext"
        openssl x509 -req -days 3650 -in "$STATE_DIR/server.csr" -CA "$STATE_DIR/ca.crt" \
            -CAkey "$STATE_DIR/ca.key" -CAcreateserial -extfile "$STATE_DIR/san.ext" \
            -out "$STATE_DIR/server.crt" 2>/dev/null
    fi
    if [[ ! -s $STATE_DIR/password || ! -s $STATE_DIR/htpasswd ]]; then
        (umask 077 && openssl rand -hex 16 | sed 's/^/regpw-/' >"$STATE_DIR/password")
        printf '%s\n' "$USER_NAME" >"$STATE_DIR/user"
        # The password goes to htpasswd on standard input, never as an argument.
        htpasswd -iBc "$STATE_DIR/htpasswd" "$USER_NAME" <"$STATE_DIR/password" 2>/dev/null
    fi
    printf '%s\n' "$ADDRESS" >"$STATE_DIR/address"
    cat >"$STATE_DIR/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE_DIR/data
  delete:
    enabled: true
http:
  addr: $ADDRESS
  tls:
    certificate: $STATE_DIR/server.crt
    key: $STATE_DIR/server.key
auth:
  htpasswd:
    realm: stackroll-test
    path: $STATE_DIR/htpasswd
EOF
    mkdir -p "$CERTS_DIR"
    cp "$STATE_DIR/ca.crt" "$CERTS_DIR/ca.crt"
}

up() {
    ensure_packages
    ensure_material
    if answers; then
        log "a registry already answers on $ADDRESS"
        return
    fi
    our_pid >/dev/null && die "the registry we started (pid $(our_pid)) does not answer; see $LOG_FILE"
    log "starting docker-registry on $ADDRESS (log $LOG_FILE)"
    setsid docker-registry serve "$STATE_DIR/config.yml" >"$LOG_FILE" 2>&1 </dev/null &
    echo $! >"$PID_FILE"
    for _ in $(seq 1 100); do
        answers && {
            log "up: https://$ADDRESS (user $USER_NAME, password in $STATE_DIR/password)"
            return
        }
        our_pid >/dev/null || break
        sleep 0.1
    done
    tail -n 20 "$LOG_FILE" >&2 || true
    die "the registry did not answer on $ADDRESS"
}

down() {
    local pid
    if ! pid=$(our_pid); then
        log "no registry started by this script is running"
        rm -f "$PID_FILE"
        return
    fi
    kill "$pid"
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    rm -f "$PID_FILE"
    log "stopped (pid $pid)"
}

case "${1:-up}" in
up) up ;;
down) down ;;
*) die "usage: $0 [up|down]" ;;
esac
