#!/bin/sh
# Entrypoint of the owner service `redis` (mounted as a config at /usr/local/bin/redis-server.sh).
#
# Starts redis-server with one ACL user, `app`, whose password is read from a secret file:
#   /run/secrets/old_redis_password  if it is mounted: a rotation is under way, and the server
#                                    still holds the old credential until `rotate-apply` adds
#                                    the new one (as a database keeps its password in its data);
#   /run/secrets/redis_password      otherwise.
# The default user is off, so every client must log in as app. Nothing is persisted (no RDB, no
# AOF): the ACL is built here at every start.
#
# The password goes to redis-server as its configuration on stdin (`redis-server -`, a here-doc:
# a pipe), never as an argument. It is one line; a trailing newline in the file is ignored.
set -eu

if [ -e /run/secrets/old_redis_password ]; then
    file=/run/secrets/old_redis_password
else
    file=/run/secrets/redis_password
fi
[ -s "$file" ] || { echo "redis-server.sh: $file is missing or empty" >&2; exit 1; }
[ "$(sed -n '$=' "$file")" -le 1 ] || { echo "redis-server.sh: $file has more than one line" >&2; exit 1; }
# Escaped for a double-quoted argument of the configuration (backslash and quote).
password=$(sed -e 's/[\\"]/\\&/g' "$file")
echo "redis-server.sh: starting with the password of $file"

exec redis-server - --port 6379 --protected-mode no --save "" --appendonly no <<CONF
user default off
user app on ">$password" ~* &* +@all
CONF
