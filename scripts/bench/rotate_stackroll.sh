#!/usr/bin/env bash
# One timed stackroll rotation: new content in DIR/secrets/rotated.txt, then
# `stackroll deploy` (waits until the services converge, then prunes).
#   rotate_stackroll.sh STACKROLL_BIN DIR STACK
# The content is a fresh generation each call (never equal to a retained version, so a new
# version is created every time); it is never printed.
set -euo pipefail
bin=$1 dir=$2 stack=$3
gen=$(($(cat "$dir/.stackroll_gen" 2>/dev/null || echo 0) + 1))
printf 'bench-rotated-stackroll-g%d\n' "$gen" >"$dir/secrets/rotated.txt"
echo "$gen" >"$dir/.stackroll_gen"
cd "$dir"
exec "$bin" deploy --resolve-image never -c compose.yaml "$stack"
