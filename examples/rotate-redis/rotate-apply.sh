#!/bin/sh
# x-rotation `apply` for redis_password, run in the owner task (exec) while both versions are
# mounted: logs in as app with the old password (/run/secrets/old_redis_password) and adds the
# new one (/run/secrets/redis_password) beside it (`ACL SETUSER app >new`). From then on both
# passwords work, so consumers can move one by one without a failed login.
#
# Idempotent: adding a password twice changes nothing; if the old password no longer works but
# the new one does (the rotation went further already), there is nothing to do.
# Exit 0 = applied. Passwords reach redis-cli on stdin only; replies are printed as their first
# word only (an ACL error would echo the password it was given).
set -eu
old=/run/secrets/old_redis_password
new=/run/secrets/redis_password
for f in "$old" "$new"; do
    [ -s "$f" ] || { echo "apply: $f is missing or empty" >&2; exit 2; }
done

# Prints "AUTH app <password of file $1>" as a redis-cli command line.
auth() { sed -e 's/[\\"]/\\&/g' -e 's/.*/AUTH app "&"/' "$1"; echo; }
# The first word of every reply, on one line.
codes() { awk 'NF { printf "%s%s", sep, $1; sep = " " }'; }

replies=$({
    auth "$old"
    sed -e 's/[\\"]/\\&/g' -e 's/.*/ACL SETUSER app ">&"/' "$new"
    echo
} | timeout 10 redis-cli 2>/tmp/rotate-apply.err | codes)
if [ "$replies" = "OK OK" ]; then
    echo "apply: user app accepts the new password (the old one still works until finalize)"
    exit 0
fi
if [ "$(auth "$new" | timeout 10 redis-cli 2>/dev/null | codes)" = OK ]; then
    echo "apply: the old password is refused but the new one works: already applied"
    exit 0
fi
echo "apply: failed (replies: ${replies:-none}) $(head -n 1 /tmp/rotate-apply.err)" >&2
exit 1
