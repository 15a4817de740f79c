#!/bin/sh
# x-rotation `apply` for db_password, run in the owner task (exec) while both versions are
# mounted: logs in as app with the old password (/run/secrets/old_db_password) and sets the new
# one (/run/secrets/db_password): `SET PASSWORD = PASSWORD(new)`, Docker's guide's
# `mysqladmin password` step. MariaDB holds one password per user, so from here on the old one
# is refused: consumers still on the old version fail to log in until they are rolled.
#
# Idempotent: if the new password already works, there is nothing to do.
# Exit 0 = applied. Passwords go to the client through option files (mode 0600, in a private
# directory under /tmp, removed on exit) and SQL on stdin, never as arguments.
set -eu
old=/run/secrets/old_db_password
new=/run/secrets/db_password
for f in "$old" "$new"; do
    [ -s "$f" ] || { echo "apply: $f is missing or empty" >&2; exit 2; }
done
umask 077
dir=$(mktemp -d /tmp/rotate-apply.XXXXXX)
trap 'rm -rf "$dir"' EXIT

# Writes a [client] option file for user app with the password in file $1 to $2.
option_file() {
    {
        echo "[client]"
        echo "user=app"
        sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/.*/password="&"/' "$1"
        echo
    } >"$2"
}
# Logs in through TCP on this task with option file $1 and runs the SQL on stdin.
sql() { mariadb --defaults-extra-file="$1" --host=127.0.0.1 --connect-timeout=5 --batch; }

option_file "$new" "$dir/new.cnf"
if echo 'SELECT 1;' | sql "$dir/new.cnf" >/dev/null 2>&1; then
    echo "apply: user app already logs in with the new password"
    exit 0
fi
option_file "$old" "$dir/old.cnf"
if ! sed -e 's/\\/\\\\/g' -e "s/'/\\\\'/g" -e "s/.*/SET PASSWORD = PASSWORD('&');/" "$new" \
    | sql "$dir/old.cnf" 2>"$dir/err"; then
    echo "apply: failed to set the new password: $(head -n 1 "$dir/err")" >&2
    exit 1
fi
if ! echo 'SELECT 1;' | sql "$dir/new.cnf" >/dev/null 2>"$dir/err"; then
    echo "apply: the new password was set but does not log in: $(head -n 1 "$dir/err")" >&2
    exit 1
fi
echo "apply: user app now logs in with the new password only"
