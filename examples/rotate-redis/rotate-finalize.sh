#!/bin/sh
# x-rotation `finalize` for redis_password, run in the owner task (exec) after every consumer
# uses the new version: logs in as app with the new password (/run/secrets/redis_password) and
# removes the old one (/run/secrets/old_redis_password) from the user (`ACL SETUSER app <old`).
#
# Idempotent: if the old password is already gone, there is nothing to do.
# Exit 0 = finalized. Passwords reach redis-cli on stdin only; replies are printed as their
# first word only (this very error would echo the password: "modifier '<...'").
set -eu
old=/run/secrets/old_redis_password
new=/run/secrets/redis_password
for f in "$old" "$new"; do
    [ -s "$f" ] || { echo "finalize: $f is missing or empty" >&2; exit 2; }
done

replies=$({
    sed -e 's/[\\"]/\\&/g' -e 's/.*/AUTH app "&"/' "$new"
    echo
    sed -e 's/[\\"]/\\&/g' -e 's/.*/ACL SETUSER app "<&"/' "$old"
    echo
} | timeout 10 redis-cli 2>/tmp/rotate-finalize.err)
case "$replies" in
"OK
OK")
    echo "finalize: the old password of user app is removed"
    exit 0
    ;;
"OK
ERR Error in ACL SETUSER modifier "*"The password you are trying to remove from the user does not exist")
    echo "finalize: the old password was already removed"
    exit 0
    ;;
esac
codes=$(printf '%s\n' "$replies" | awk 'NF { printf "%s%s", sep, $1; sep = " " }')
echo "finalize: failed (replies: ${codes:-none}) $(head -n 1 /tmp/rotate-finalize.err)" >&2
exit 1
