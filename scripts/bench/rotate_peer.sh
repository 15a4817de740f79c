#!/usr/bin/env bash
# One timed rotation the way Docker's documentation describes it ("Rotate a secret" in
# https://docs.docker.com/engine/swarm/secrets/): create the new secret, move each service to
# it with `docker service update --secret-rm OLD --secret-add source=NEW,target=TARGET`
# (the CLI waits for each service to converge, --detach=false), then remove the old secret.
#   rotate_peer.sh DIR STACK TARGET SERVICE...
# The stack was deployed by `docker stack deploy`, so generation 0 is `<stack>_rotated`;
# generation N is `<stack>_rotated_g<N>`. The content is never printed.
set -euo pipefail
docker=${DOCKER:-docker}
dir=$1 stack=$2 target=$3
shift 3
gen=$(cat "$dir/.peer_gen" 2>/dev/null || echo 0)
new_gen=$((gen + 1))
old="${stack}_rotated"
((gen > 0)) && old="${stack}_rotated_g$gen"
new="${stack}_rotated_g$new_gen"
file="$dir/peer_rotated.txt"
printf 'bench-rotated-peer-g%d\n' "$new_gen" >"$file"
"$docker" secret create --label "com.docker.stack.namespace=$stack" "$new" "$file" >/dev/null
for service in "$@"; do
    "$docker" service update --detach=false --quiet \
        --secret-rm "$old" --secret-add "source=$new,target=$target" "$service" >/dev/null
done
"$docker" secret rm "$old" >/dev/null
echo "$new_gen" >"$dir/.peer_gen"
