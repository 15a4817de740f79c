#!/usr/bin/env bash
# The timed part of a first-deploy run on a fresh stack (see fresh.sh):
#   fresh_run.sh STATE COMMAND [ARG]...
# runs `COMMAND ARG... NAME` with BENCH_SUBNET=SUBNET, NAME and SUBNET being what the untimed
# `fresh.sh prepare STATE PREFIX` wrote to STATE/next just before. Each name is used once:
# STATE/next is emptied here, so a run without its prepare step fails instead of deploying
# over an existing stack. Only bash builtins, then exec: the wrapper adds a few milliseconds.
set -eu
state=$1
shift
name="" subnet=""
read -r name subnet <"$state/next" || true
[[ -n $name && -n $subnet ]] || { echo "fresh_run.sh: no fresh stack name in $state/next (run fresh.sh prepare first)" >&2; exit 2; }
: >"$state/next"
export BENCH_SUBNET=$subnet
exec "$@" "$name"
