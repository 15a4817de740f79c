#!/usr/bin/env bash
# Local server images for the credential-rotation tests (issue 17), made from Debian's packages.
#
#   scripts/images.sh [redis|mariadb]...   build the named images (default: both)
#
#   local/redis:rot    redis-server + redis-cli (Debian's redis-server, redis-tools) + busybox
#   local/mariadb:rot  mariadbd, mariadb, mariadb-admin, mariadb-install-db, my_print_defaults
#                      (Debian's mariadb-server, mariadb-client) + busybox; user mysql (999),
#                      /run/mysqld and /var/lib/mysql owned by it, share files in /usr/share/mysql
#
# No registry is needed: the installed binaries and the shared libraries ldd names are copied
# into a root filesystem (merged /usr, like Debian) and `docker import`ed. Missing packages are
# installed with apt-get (as root) without starting their services. Each image carries the
# label org.stackroll.recipe, a hash of its recipe (the functions below) and of the package
# versions; an image whose label matches is kept, so a second run only checks and exits.
# A smoke test runs each new image (redis answers PING, mariadb initialises a datadir and
# answers a query) before it is tagged; on failure the log's last lines are printed.
#
# Environment: STACKROLL_IMAGES_LOG_DIR (default /tmp/stackroll-images) for the build logs.
set -euo pipefail

export DOCKER_HOST="${DOCKER_HOST:-unix:///var/run/docker.sock}"
unset DOCKER_CONTEXT

LOG_DIR="${STACKROLL_IMAGES_LOG_DIR:-/tmp/stackroll-images}"
LABEL=org.stackroll.recipe
PACKAGES=(redis-server redis-tools mariadb-server mariadb-client busybox-static)
IMAGE_PATH='/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
MYSQL_ID=999 # uid and gid of the mysql user in local/mariadb:rot

log() { printf 'images: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# Runs "$@" with its output appended to $LOG_FILE; on failure prints the log's tail and exits.
run_logged() {
    local what=$1
    shift
    printf '\n== %s: %s\n' "$what" "$*" >>"$LOG_FILE"
    # A subshell outside any `if`/`||`, so that `set -e` and `die` work inside it.
    local rc
    set +e
    (
        set -e
        "$@"
    ) >>"$LOG_FILE" 2>&1
    rc=$?
    set -e
    if ((rc != 0)); then
        log "$what failed (exit $rc); last lines of $LOG_FILE:"
        tail -n 40 "$LOG_FILE" | sed 's/^/    /' >&2
        exit 1
    fi
}

# --- host packages -------------------------------------------------------------------------

missing_packages() {
    local pkg
    for pkg in "${PACKAGES[@]}"; do
        dpkg-query -W -f '${Status}\n' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
            || printf '%s\n' "$pkg"
    done
}

# Installs the missing packages without letting apt start their services: a policy-rc.d that
# denies every start is put in place for the install (unless one exists) and removed after.
ensure_packages() {
    local missing
    mapfile -t missing < <(missing_packages)
    ((${#missing[@]})) || return 0
    [[ $(id -u) -eq 0 ]] || die "missing packages (${missing[*]}) and not root; install them"
    log "installing ${missing[*]} with apt-get (log $LOG_DIR/apt.log)"
    local policy=/usr/sbin/policy-rc.d our_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\n# stackroll scripts/images.sh: no service starts during its install\nexit 101\n' >"$policy"
        chmod 0755 "$policy"
        our_policy=1
        # shellcheck disable=SC2064
        trap "rm -f '$policy'" EXIT
    fi
    LOG_FILE="$LOG_DIR/apt.log"
    : >"$LOG_FILE"
    export DEBIAN_FRONTEND=noninteractive
    run_logged "apt-get update" apt-get update
    run_logged "apt-get install" apt-get install -y --no-install-recommends "${missing[@]}"
    if ((our_policy)); then
        rm -f "$policy"
        trap - EXIT
    fi
    stop_host_services
    mapfile -t missing < <(missing_packages)
    ((${#missing[@]} == 0)) || die "still missing after apt-get install: ${missing[*]}"
}

# The packages ship services for the host; the images need only their files. Stop any that
# did start (found by their own pid files) and keep systemd from starting them at boot.
stop_host_services() {
    local unit pidfile pid
    if [[ -d /run/systemd/system ]]; then
        for unit in redis-server.service mariadb.service; do
            systemctl disable --now "$unit" >>"$LOG_DIR/apt.log" 2>&1 || true
        done
    fi
    for pidfile in /run/redis/redis-server.pid /run/mysqld/mysqld.pid; do
        [[ -s $pidfile ]] || continue
        pid=$(<"$pidfile")
        if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
            log "stopping host service started by apt (pid $pid from $pidfile)"
            kill -TERM "$pid" || true
        fi
    done
}

# --- root filesystem helpers (part of every recipe hash) -----------------------------------

# An empty root with Debian's merged-/usr layout, busybox and its applets (real binaries that a
# recipe copies later take precedence over applets of the same name).
new_root() {
    local root=$1 dir
    for dir in usr/bin usr/sbin usr/lib usr/lib64 usr/local/bin etc root run tmp var/tmp \
        proc sys dev; do
        mkdir -p "$root/$dir"
    done
    chmod 0755 "$root" # tar records "." and it becomes the image's /
    chmod 1777 "$root/tmp" "$root/var/tmp"
    ln -s usr/bin "$root/bin"
    ln -s usr/sbin "$root/sbin"
    ln -s usr/lib "$root/lib"
    ln -s usr/lib64 "$root/lib64"
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"
    cp "$(readlink -f "$(command -v busybox)")" "$root/usr/bin/busybox"
    local applet
    for applet in $("$root/usr/bin/busybox" --list); do
        [[ -e $root/usr/bin/$applet || -L $root/usr/bin/$applet ]] \
            || ln -s busybox "$root/usr/bin/$applet"
    done
}

# Copies one host path into the root as it is on the host: a symlink stays a symlink and its
# target is copied too (so /usr/bin/redis-server -> redis-check-rdb keeps both names).
add_path() {
    local root=$1 path=$2 target
    while :; do
        [[ -e $path || -L $path ]] || die "recipe needs $path, which is not on this host"
        mkdir -p "$root$(dirname "$path")"
        rm -f "$root$path"
        cp -P "$path" "$root$path"
        [[ -L $path ]] || return 0
        target=$(readlink "$path")
        [[ $target == /* ]] || target="$(dirname "$path")/$target"
        path=$target
    done
}

# Copies an ELF executable and every shared library ldd resolves for it.
add_elf() {
    local root=$1 path=$2 libs
    add_path "$root" "$path"
    libs=$(ldd "$path") || die "ldd $path failed"
    if grep -q 'not found' <<<"$libs"; then
        die "ldd $path: $(grep 'not found' <<<"$libs" | tr -s ' \t' ' ')"
    fi
    local lib
    while read -r lib; do
        add_path "$root" "$lib"
    done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$libs")
}

# --- recipes ------------------------------------------------------------------------------

recipe_redis() {
    local root=$1
    add_elf "$root" /usr/bin/redis-server # -> redis-check-rdb, one binary for server and checks
    add_elf "$root" /usr/bin/redis-cli
    mkdir -p "$root/data"
}
changes_redis() { printf '%s\n' --change 'WORKDIR /data' --change 'CMD ["redis-server", "--protected-mode", "no"]'; }
packages_redis() { echo redis-server redis-tools busybox-static; }
smoke_redis() {
    docker run --rm --network none "$1" sh -c '
        redis-server --port 6379 --save "" --appendonly no >/tmp/redis.log 2>&1 &
        for i in $(seq 50); do
            [ "$(redis-cli ping 2>/dev/null)" = PONG ] && { redis-server --version; redis-cli --version; exit 0; }
            sleep 0.1
        done
        cat /tmp/redis.log; exit 1'
}

recipe_mariadb() {
    local root=$1 file
    add_elf "$root" /usr/sbin/mariadbd
    add_elf "$root" /usr/bin/mariadb
    add_elf "$root" /usr/bin/mariadb-admin
    add_elf "$root" /usr/bin/my_print_defaults
    add_elf "$root" /usr/bin/resolveip # mariadb-install-db looks the host name up with it
    add_path "$root" /usr/bin/mariadb-install-db # a shell script, runs under busybox sh
    add_path "$root" /usr/bin/mysql              # -> mariadb
    add_path "$root" /usr/bin/mysqladmin         # -> mariadb-admin (the name Docker's guide uses)
    # Error messages (English only), character sets and the system tables' SQL.
    mkdir -p "$root/usr/share/mysql"
    cp -r /usr/share/mysql/english /usr/share/mysql/charsets "$root/usr/share/mysql/"
    for file in /usr/share/mysql/*.sql; do
        cp "$file" "$root/usr/share/mysql/"
    done
    mkdir -p "$root/usr/lib/mysql/plugin" "$root/run/mysqld" "$root/var/lib/mysql" \
        "$root/etc/mysql/conf.d"
    printf 'mysql:x:%s:%s:MariaDB Server:/nonexistent:/bin/false\n' "$MYSQL_ID" "$MYSQL_ID" >>"$root/etc/passwd"
    printf 'mysql:x:%s:\n' "$MYSQL_ID" >>"$root/etc/group"
    chown "$MYSQL_ID:$MYSQL_ID" "$root/run/mysqld" "$root/var/lib/mysql"
    chmod 0755 "$root/run/mysqld"
    chmod 0750 "$root/var/lib/mysql"
}
changes_mariadb() { printf '%s\n' --change 'CMD ["mariadbd", "--user=mysql"]'; }
packages_mariadb() { echo mariadb-server mariadb-client busybox-static; }
smoke_mariadb() {
    docker run --rm --network none "$1" sh -c '
        mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db \
            --skip-name-resolve >/tmp/install.log 2>&1 || { cat /tmp/install.log; exit 1; }
        mariadbd --user=mysql --datadir=/var/lib/mysql --skip-networking >/tmp/mariadbd.log 2>&1 &
        for i in $(seq 100); do
            if mariadb -N -e "SELECT VERSION()" 2>/dev/null; then
                mariadb-admin shutdown && exit 0
            fi
            sleep 0.1
        done
        cat /tmp/install.log /tmp/mariadbd.log; exit 1'
}

# --- building -----------------------------------------------------------------------------

# The recipe hash: what the image is made of (the helper and recipe functions' text, the
# package versions, the busybox binary), so any change there rebuilds the image.
recipe_hash() {
    local name=$1
    {
        echo "image-format 1 path=$IMAGE_PATH mysql_id=$MYSQL_ID"
        declare -f new_root add_path add_elf import_root "recipe_$name" "changes_$name"
        # shellcheck disable=SC2046
        dpkg-query -W -f '${Package} ${Version}\n' $(packages_"$name")
        sha256sum <"$(readlink -f "$(command -v busybox)")"
    } | sha256sum | cut -c1-16
}

build_image() {
    local name=$1 image="local/$1:rot" hash current old_id root started size
    hash=$(recipe_hash "$name")
    current=$(docker image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$image" 2>/dev/null || true)
    old_id=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
    if [[ $current == "$hash" ]]; then
        log "$image is up to date (recipe $hash)"
        return
    fi
    started=$SECONDS
    LOG_FILE="$LOG_DIR/$name.log"
    : >"$LOG_FILE"
    log "building $image (recipe $hash${current:+, replacing $current}; log $LOG_FILE)"
    root=$(mktemp -d "${TMPDIR:-/tmp}/stackroll-image-$name.XXXXXX")
    # shellcheck disable=SC2064
    trap "rm -rf '$root'" EXIT
    run_logged "root filesystem" new_root "$root"
    run_logged "recipe $name" "recipe_$name" "$root"
    log "  root filesystem: $(du -sh "$root" | cut -f1), $(find "$root" | wc -l) entries"
    # Imported under a temporary tag; the real tag moves only after the smoke test passes.
    local candidate="local/$name:rot-candidate"
    run_logged "docker import" import_root "$root" "$candidate" "$hash" "$name"
    rm -rf "$root"
    # shellcheck disable=SC2064
    trap "docker rmi -f '$candidate' >/dev/null 2>&1 || true" EXIT
    log "  smoke test"
    run_logged "smoke test $image" "smoke_$name" "$candidate"
    run_logged "tag $image" docker tag "$candidate" "$image"
    run_logged "untag candidate" docker rmi "$candidate"
    trap - EXIT
    if [[ -n $old_id && $old_id != "$(docker image inspect -f '{{.Id}}' "$image")" ]]; then
        # The replaced image, unless a container still uses it (then it stays, untagged).
        docker rmi "$old_id" >>"$LOG_FILE" 2>&1 || log "  kept the replaced image $old_id (in use)"
    fi
    size=$(docker image inspect -f '{{.Size}}' "$image")
    log "built $image in $((SECONDS - started))s ($((size / 1000000)) MB)"
}

import_root() {
    local root=$1 image=$2 hash=$3 name=$4 changes
    mapfile -t changes < <("changes_$name")
    tar -C "$root" --numeric-owner -c . | docker import \
        --change "LABEL $LABEL=$hash" --change "ENV PATH=$IMAGE_PATH" "${changes[@]}" \
        - "$image"
}

main() {
    local names=("$@") name
    ((${#names[@]})) || names=(redis mariadb)
    for name in "${names[@]}"; do
        [[ $name == redis || $name == mariadb ]] || die "unknown image '$name' (redis, mariadb)"
    done
    mkdir -p "$LOG_DIR"
    # One build at a time on this machine (tests may call this script in parallel).
    exec 9>"$LOG_DIR/.lock"
    flock 9
    docker info >/dev/null 2>&1 || die "no docker daemon on $DOCKER_HOST (scripts/dev-swarm.sh up)"
    ensure_packages
    for name in "${names[@]}"; do
        build_image "$name"
    done
}

case "${1:-}" in
-h | --help | help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' ;;
*) main "$@" ;;
esac
