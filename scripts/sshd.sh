#!/usr/bin/env bash
# An sshd for the ssh:// tests: Debian's openssh-server on 127.0.0.1, port 22022, with its own
# host key and a client key made here. Logging in as root with the client key runs commands
# against the dev swarm's engine (DOCKER_HOST=unix:///var/run/docker.sock), so
# `ssh ... docker system dial-stdio` reaches it, as the docker CLI and stackroll do for ssh://.
#
#   scripts/sshd.sh [up]   install openssh-server if missing, make keys, start sshd (no-op when up)
#   scripts/sshd.sh down   stop the sshd this script started
#   scripts/sshd.sh env    print the directory with the ssh wrapper to put first on PATH
#
# Clients use $STATE_DIR/bin/ssh, a wrapper running `ssh -F $STATE_DIR/ssh_config`: host
# `stackroll-sshd` logs in with the client key (host key checked against known_hosts);
# host `stackroll-sshd-stranger` offers a key sshd does not accept. State lives in
# $STACKROLL_SSHD_DIR (default /var/lib/stackroll-sshd). Needs root. Private keys are written
# 0600 and never printed.
set -euo pipefail

STATE_DIR="${STACKROLL_SSHD_DIR:-/var/lib/stackroll-sshd}"
PORT="${STACKROLL_SSHD_PORT:-22022}"
PID_FILE="$STATE_DIR/sshd.pid"
LOG_FILE="$STATE_DIR/sshd.log"

log() { printf 'sshd: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

our_pid() {
    local pid
    [[ -s $PID_FILE ]] || return 1
    pid=$(<"$PID_FILE")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    printf '%s\n' "$pid"
}

ensure_packages() {
    [[ -x /usr/sbin/sshd ]] && command -v ssh >/dev/null 2>&1 && return
    [[ $(id -u) -eq 0 ]] || die "openssh-server missing and not root"
    log "installing openssh-server openssh-client (log $STATE_DIR/apt.log)"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update && apt-get install -y openssh-server openssh-client; } >"$STATE_DIR/apt.log" 2>&1 \
        || { tail -n 20 "$STATE_DIR/apt.log" >&2; die "apt-get failed"; }
}

ensure_keys() {
    local name
    for name in host client stranger; do
        [[ -s $STATE_DIR/${name}_ed25519 ]] && continue
        ssh-keygen -q -t ed25519 -N '' -C "stackroll-test-$name" -f "$STATE_DIR/${name}_ed25519"
    done
    cp "$STATE_DIR/client_ed25519.pub" "$STATE_DIR/authorized_keys"
    chmod 0600 "$STATE_DIR/authorized_keys"
    printf '[127.0.0.1]:%s %s\n' "$PORT" "$(cut -d' ' -f1,2 "$STATE_DIR/host_ed25519.pub")" \
        >"$STATE_DIR/known_hosts"
}

write_configs() {
    cat >"$STATE_DIR/sshd_config" <<EOF
Port $PORT
ListenAddress 127.0.0.1
HostKey $STATE_DIR/host_ed25519
PidFile $PID_FILE
AuthorizedKeysFile $STATE_DIR/authorized_keys
PermitRootLogin prohibit-password
AllowUsers root
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes yes
PrintMotd no
SetEnv DOCKER_HOST=unix:///var/run/docker.sock
LogLevel VERBOSE
EOF
    cat >"$STATE_DIR/ssh_config" <<EOF
Host stackroll-sshd
    HostName 127.0.0.1
    Port $PORT
    User root
    IdentityFile $STATE_DIR/client_ed25519
Host stackroll-sshd-stranger
    HostName 127.0.0.1
    Port $PORT
    User root
    IdentityFile $STATE_DIR/stranger_ed25519
Host *
    IdentitiesOnly yes
    IdentityAgent none
    UserKnownHostsFile $STATE_DIR/known_hosts
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    BatchMode yes
    LogLevel ERROR
EOF
    mkdir -p "$STATE_DIR/bin"
    cat >"$STATE_DIR/bin/ssh" <<EOF
#!/bin/sh
exec /usr/bin/ssh -F "$STATE_DIR/ssh_config" "\$@"
EOF
    chmod 0755 "$STATE_DIR/bin/ssh"
}

up() {
    [[ $(id -u) -eq 0 ]] || die "needs root"
    mkdir -p "$STATE_DIR"
    chmod 0700 "$STATE_DIR"
    ensure_packages
    ensure_keys
    write_configs
    if our_pid >/dev/null; then
        log "sshd already running (pid $(our_pid)) on 127.0.0.1:$PORT"
        return
    fi
    mkdir -p /run/sshd
    /usr/sbin/sshd -t -f "$STATE_DIR/sshd_config" || die "sshd refuses its configuration"
    /usr/sbin/sshd -f "$STATE_DIR/sshd_config" -E "$LOG_FILE"
    local i
    for ((i = 0; i < 50; i++)); do
        if our_pid >/dev/null && "$STATE_DIR/bin/ssh" stackroll-sshd true 2>/dev/null; then
            log "ready: ssh://stackroll-sshd (127.0.0.1:$PORT) with PATH=$STATE_DIR/bin:\$PATH"
            return
        fi
        sleep 0.2
    done
    tail -n 20 "$LOG_FILE" >&2 || true
    die "sshd did not accept the client key within 10s"
}

down() {
    local pid
    if pid=$(our_pid); then
        log "stopping sshd (pid $pid)"
        kill -TERM "$pid"
    fi
    rm -f "$PID_FILE"
    log "down"
}

case "${1:-up}" in
up) up ;;
down) down ;;
env) printf 'SSHD_BIN=%s\n' "$STATE_DIR/bin" ;;
-h | --help | help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' ;;
*) die "usage: $0 [up|down|env]" ;;
esac
