#!/bin/sh
# The consumer (service `client`, mounted as a config at /usr/local/bin/mariadb-client.sh).
#
# Every $LOGIN_INTERVAL seconds (default 0.2) it opens a new connection to $DB_HOST (default
# db), logs in as app with the password in /run/secrets/db_password (read again for each
# attempt) and runs SELECT 1. One line per attempt on stdout, so a test can count them from
# `docker service logs` (use --timestamps for sub-second times):
#   2025-01-01T12:00:00Z 42 ok
#   2025-01-01T12:00:00Z 43 fail exit=1 ERROR 1045 (28000): Access denied for user 'app'@'10.0.1.5' (using password: YES)
# The password reaches the client through an option file (mode 0600, /tmp/client.cnf, rewritten
# for each attempt), never as an argument; MariaDB's error messages do not contain it.
host=${DB_HOST:-db}
interval=${LOGIN_INTERVAL:-0.2}
secret=/run/secrets/db_password
cnf=/tmp/client.cnf
trap 'exit 0' TERM INT
umask 077

n=0
while :; do
    n=$((n + 1))
    {
        echo "[client]"
        echo "user=app"
        sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/.*/password="&"/' "$secret"
        echo
    } >"$cnf"
    out=$(timeout 3 mariadb --defaults-extra-file="$cnf" --host="$host" --connect-timeout=2 \
        --batch --skip-column-names --execute='SELECT 1' app 2>&1)
    status=$?
    now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    if [ "$status" -eq 0 ] && [ "$out" = 1 ]; then
        echo "$now $n ok"
    else
        echo "$now $n fail exit=$status $(printf '%s\n' "$out" | head -n 1)"
    fi
    sleep "$interval" &
    wait $!
done
