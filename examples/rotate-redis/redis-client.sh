#!/bin/sh
# The consumer (service `client`, mounted as a config at /usr/local/bin/redis-client.sh).
#
# Every $LOGIN_INTERVAL seconds (default 0.1) it opens a new connection to $REDIS_HOST (default
# redis), logs in as app with the password in /run/secrets/redis_password (read again for each
# attempt) and sends PING. One line per attempt on stdout, so a test can count them from
# `docker service logs` (use --timestamps for sub-second times):
#   2025-01-01T12:00:00Z 42 ok
#   2025-01-01T12:00:00Z 43 fail exit=0 WRONGPASS NOAUTH
# A failed line names redis-cli's exit status (124/143: timed out), the reply codes (first word
# of each reply) and the first line redis-cli printed on stderr (connection errors) only;
# the password reaches redis-cli on stdin, never as an argument, and is never printed.
host=${REDIS_HOST:-redis}
interval=${LOGIN_INTERVAL:-0.1}
secret=/run/secrets/redis_password
trap 'exit 0' TERM INT

n=0
while :; do
    n=$((n + 1))
    replies=$({
        sed -e 's/[\\"]/\\&/g' -e 's/.*/AUTH app "&"/' "$secret"
        echo
        echo PING
    } | timeout 2 redis-cli -h "$host" 2>/tmp/redis-cli.err)
    status=$?
    now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    if [ "$replies" = "OK
PONG" ]; then
        echo "$now $n ok"
    else
        codes=$(printf '%s\n' "$replies" | awk 'NF { printf "%s ", $1 }')
        echo "$now $n fail exit=$status ${codes}$(head -n 1 /tmp/redis-cli.err)"
    fi
    sleep "$interval" &
    wait $!
done
