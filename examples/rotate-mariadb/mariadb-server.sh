#!/bin/sh
# Entrypoint of the owner service `db` (mounted as a config at /usr/local/bin/mariadb-server.sh).
#
# MariaDB keeps the password of user app inside its datadir (/var/lib/mysql/data; mount a
# volume at /var/lib/mysql):
#   first start (no datadir): mariadb-install-db, then user app@'%' with the password in
#     /run/secrets/db_password and a database `app` it owns. This happens in a scratch directory
#     renamed to the datadir at the end, so a start killed halfway is simply redone;
#   every later start: the secret file is NOT read. The password changes only inside the
#     database (`rotate-apply.sh`), which is why a rotation needs stages.
#
# The password reaches mariadbd as SQL on stdin (`mariadbd --bootstrap`), never as an argument
# or in a file. It is one line; a trailing newline in the file is ignored.
set -eu
datadir=/var/lib/mysql/data
scratch=/var/lib/mysql/initialising
secret=/run/secrets/db_password

if [ ! -d "$datadir" ]; then
    [ -s "$secret" ] || { echo "mariadb-server.sh: $secret is missing or empty" >&2; exit 1; }
    [ "$(sed -n '$=' "$secret")" -le 1 ] || { echo "mariadb-server.sh: $secret has more than one line" >&2; exit 1; }
    echo "mariadb-server.sh: initialising $datadir"
    rm -rf "$scratch"
    mkdir -p "$scratch"
    chown mysql:mysql /var/lib/mysql "$scratch"
    if ! mariadb-install-db --user=mysql --datadir="$scratch" --skip-test-db \
        --skip-name-resolve >/tmp/install-db.log 2>&1; then
        cat /tmp/install-db.log >&2
        exit 1
    fi
    # Backslash and quote escaped for an SQL string.
    if ! {
        echo "FLUSH PRIVILEGES;"
        echo "CREATE DATABASE IF NOT EXISTS app;"
        sed -e 's/\\/\\\\/g' -e "s/'/\\\\'/g" \
            -e "s/.*/CREATE USER 'app'@'%' IDENTIFIED BY '&';/" "$secret"
        echo
        echo "GRANT ALL ON app.* TO 'app'@'%';"
    } | mariadbd --user=mysql --datadir="$scratch" --bootstrap --skip-networking \
        >/tmp/bootstrap.log 2>&1; then
        cat /tmp/bootstrap.log >&2
        exit 1
    fi
    mv "$scratch" "$datadir"
    echo "mariadb-server.sh: user app created"
else
    echo "mariadb-server.sh: $datadir is initialised; user app keeps the password it has"
fi

exec mariadbd --user=mysql --datadir="$datadir" --bind-address=0.0.0.0 --port=3306 \
    --skip-name-resolve
