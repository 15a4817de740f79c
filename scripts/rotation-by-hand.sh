#!/usr/bin/env bash
# Runs the staged credential rotation of examples/rotate-redis or examples/rotate-mariadb BY HAND
# (docker stack deploy + docker service update + docker exec, the stages of Docker's secrets
# guide and issue 17) on the local swarm, checks which passwords the server accepts after each
# stage, counts the client's failed logins, and removes everything it created.
#
#   scripts/rotation-by-hand.sh redis|mariadb
#
# Needs the images of scripts/images.sh. Exit 0 when every check held (for redis: zero failed
# logins during the rotation); the passwords are random, live in a private temp directory and
# are never printed. This is the reference stackroll's x-rotation automates, and a way to tell
# a problem of the examples from a problem of stackroll.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOCKER_HOST="${DOCKER_HOST:-unix:///var/run/docker.sock}"

kind=${1:-}
case $kind in
redis) owner=redis key=redis_password apply=/usr/local/bin/rotate-apply.sh
    finalize=/usr/local/bin/rotate-finalize.sh image=local/redis:rot ;;
mariadb) owner=db key=db_password apply=/usr/local/bin/rotate-apply.sh
    finalize='' image=local/mariadb:rot ;;
*) echo "usage: $0 redis|mariadb" >&2; exit 2 ;;
esac
stack="byhand_$kind"
old="${stack}_${key}" new="${stack}_${key}_v2"

say() { printf '%s by-hand %s: %s\n' "$(date -u +%T)" "$kind" "$*"; }
die() {
    say "FAILED: $*" >&2
    exit 1
}

docker image inspect "$image" >/dev/null 2>&1 || die "image $image missing: run scripts/images.sh"
[[ -z $(docker stack ps -q "$stack" 2>/dev/null) ]] || die "stack $stack exists; remove it first"

work=$(mktemp -d)
chmod 0700 "$work"
cleanup() {
    docker stack rm "$stack" >/dev/null 2>&1 || true
    local i
    for ((i = 0; i < 60; i++)); do
        [[ -z $(docker ps -aq -f "label=com.docker.stack.namespace=$stack") ]] && break
        sleep 1
    done
    docker volume rm "${stack}_db_data" >/dev/null 2>&1 || true
    docker secret rm "$old" "$new" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

random_password() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
cp -r "examples/rotate-$kind/." "$work/"
random_password >"$work/$key.txt"
random_password >"$work/new.txt"

# The running (healthy, if it has a health check) container of a service.
container_of() {
    local service="${stack}_$1" id i
    for ((i = 0; i < 300; i++)); do
        id=$(docker ps -q -f "label=com.docker.swarm.service.name=$service" -f health=healthy | head -n 1)
        [[ -z $id ]] && id=$(docker ps -q -f "label=com.docker.swarm.service.name=$service" \
            -f health=none | head -n 1)
        [[ -n $id ]] && { echo "$id"; return; }
        sleep 0.2
    done
    die "no running container of $service"
}

# Prints "ok" or "refused": does the owner accept the password in file $1 for user app?
login_with() {
    local c reply
    c=$(container_of "$owner")
    if [[ $kind == redis ]]; then
        reply=$({ sed -e 's/[\\"]/\\&/g' -e 's/.*/AUTH app "&"/' "$1"; echo; echo PING; } \
            | docker exec -i "$c" redis-cli 2>&1 | awk 'NF { printf "%s ", $1 }')
        [[ $reply == "OK PONG " ]] && echo ok || echo refused
    else
        reply=$({ echo '[client]'; echo 'user=app'
            sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/.*/password="&"/' "$1"; echo; } \
            | docker exec -i "$c" sh -c 'umask 077; cat >/tmp/by-hand.cnf
                mariadb --defaults-extra-file=/tmp/by-hand.cnf -h 127.0.0.1 -N -e "SELECT 1" 2>&1
                rm -f /tmp/by-hand.cnf')
        [[ $reply == 1 ]] && echo ok || echo refused
    fi
}

# Asserts which of the old and new password the owner accepts: expect OLD NEW (ok|refused).
expect() {
    local got_old got_new
    got_old=$(login_with "$work/$key.txt")
    got_new=$(login_with "$work/new.txt")
    say "   owner accepts: old $got_old, new $got_new"
    [[ $got_old == "$1" && $got_new == "$2" ]] || die "expected old $1, new $2"
}

# docker service update, then wait until the old task is gone too (`service update` returns once
# the new task runs; with start-first the old one may still be stopping). One replica each.
update() {
    local service=${*: -1}
    docker service update -q --detach=false "$@" >/dev/null
    while (($(docker ps -q -f "label=com.docker.swarm.service.name=$service" | wc -l) > 1)); do
        sleep 0.2
    done
}

say "deploying $stack (docker stack deploy --resolve-image never)"
docker stack deploy --resolve-image never -c "$work/compose.yaml" "$stack" >/dev/null 2>&1 \
    || die "docker stack deploy failed"
for ((i = 0; i < 120; i++)); do
    docker service logs --raw "${stack}_client" 2>/dev/null | grep -q ' ok$' && break
    sleep 1
done
((i < 120)) || die "the client never logged in"
say "the client logs in"
expect ok refused
since=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)

say "1. create $new"
docker secret create --label "com.docker.stack.namespace=$stack" "$new" "$work/new.txt" >/dev/null
say "2. $owner gets $old at old_$key and $new at $key"
update --secret-rm "$old" --secret-add "source=$old,target=old_$key" \
    --secret-add "source=$new,target=$key" "${stack}_$owner"
expect ok refused
say "3. apply: docker exec <$owner task> sh $apply"
docker exec "$(container_of "$owner")" sh "$apply"
if [[ $kind == redis ]]; then expect ok ok; else expect refused ok; fi
say "4. client moves to $new"
update --secret-rm "$old" --secret-add "source=$new,target=$key" "${stack}_client"
if [[ -n $finalize ]]; then
    say "5. finalize: docker exec <$owner task> sh $finalize"
    docker exec "$(container_of "$owner")" sh "$finalize"
fi
expect refused ok
say "6. $owner drops $old"
update --secret-rm "$old" "${stack}_$owner"
expect refused ok
say "7. remove $old"
docker secret rm "$old" >/dev/null
sleep 1

logins=$(docker service logs --raw --since "$since" "${stack}_client" 2>/dev/null)
ok=$(grep -c ' ok$' <<<"$logins" || true)
failed=$(grep -c ' fail ' <<<"$logins" || true)
say "client logins during the rotation: $ok ok, $failed failed"
if ((failed > 0)); then
    grep ' fail ' <<<"$logins" | awk '{ $1 = ""; $2 = ""; print "   " $0 }' | sort | uniq -c | head
fi
if [[ $kind == redis ]] && ((failed > 0)); then
    die "a Redis rotation must cost no login"
fi
((ok > 0)) || die "no successful login after the rotation"
say "passed"
