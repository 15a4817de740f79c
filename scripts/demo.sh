#!/usr/bin/env bash
# Runs stackroll on a real example: starts the local swarm, then config → plan → deploy →
# rotate a secret → plan (empty) on a copy of examples/demo, and removes the stack at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/dev-swarm.sh up
cargo build --quiet --locked
bin="$PWD/target/debug/stackroll"
work=$(mktemp -d)
trap 'docker stack rm stackroll-demo >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
cp -r examples/demo/. "$work"
cd "$work"
export API_TOKEN="demo-token-$RANDOM"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
step "$bin" config --format yaml
step "$bin" plan stackroll-demo
step "$bin" deploy stackroll-demo
printf 'a-new-password-%s' "$RANDOM" > db_password.txt
step "$bin" plan stackroll-demo
step "$bin" deploy stackroll-demo
step "$bin" plan --detailed-exitcode stackroll-demo
step docker secret ls --filter label=com.docker.stack.namespace=stackroll-demo
