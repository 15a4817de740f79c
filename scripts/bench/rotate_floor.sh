#!/usr/bin/env bash
# Swarm's own pace for a rotation's service updates, as the docker CLI waits for them:
# `docker service update --detach=false --force` of every SERVICE at once, returning when the
# last one has converged. With one service this is the floor a rotation is compared with (what
# Swarm takes to replace one service's task under the stack's update_config); with all of a
# rotation's services it is Swarm's pace for the same updates a rotation writes.
#   rotate_floor.sh SERVICE...
# `--force` replaces the tasks as a secret change does, with the same update_config, and can
# be repeated without new secrets. The CLI returns once Swarm reports the update `completed`
# (after the update's monitor period) or after its own 5-second stability check.
set -euo pipefail
docker=${DOCKER:-docker}
pids=()
for service in "$@"; do
    "$docker" service update --detach=false --quiet --force "$service" >/dev/null &
    pids+=("$!")
done
failed=0
for pid in "${pids[@]}"; do
    wait "$pid" || failed=1
done
exit "$failed"
