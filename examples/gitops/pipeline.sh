#!/bin/sh
# A GitOps pipeline in plain shell, the same steps as github-actions.yml:
#   pipeline.sh plan STACK    on a pull request: writes plan.md (Markdown for a PR comment) and
#                             says whether the change would change the stack
#   pipeline.sh deploy STACK  on merge: deploys, then gates on the stack's state
# Needs an age identity for the encrypted secrets (SOPS_AGE_KEY_FILE or SOPS_AGE_KEY) and a
# swarm manager (DOCKER_HOST, else the local socket). STACKROLL names the binary (default
# `stackroll`). Exit codes: 0 fine, 1 bad input or engine error, 3 a rollout failed (the
# deploy step then rolls the stack back to its previous state), 4 still updating.
set -eu
cd "$(dirname "$0")"
stackroll=${STACKROLL:-stackroll}
step=${1:?usage: pipeline.sh plan|deploy STACK}
stack=${2:?usage: pipeline.sh plan|deploy STACK}

case $step in
plan)
    # --detailed-exitcode: 0 no changes, 2 changes; anything else is a failure.
    status=0
    "$stackroll" plan --output markdown --detailed-exitcode "$stack" >plan.md || status=$?
    case $status in
    0) echo "no changes" ;;
    2) echo "changes: see plan.md" ;;
    *) exit "$status" ;;
    esac
    ;;
deploy)
    status=0
    "$stackroll" deploy --timeout 5m "$stack" || status=$?
    if [ "$status" -eq 3 ]; then
        echo "the rollout failed; rolling back" >&2
        "$stackroll" rollback --dry-run "$stack" || true
        "$stackroll" rollback "$stack" || true
        exit 3
    fi
    [ "$status" -eq 0 ] || exit "$status"
    # Gate on the stack as a whole: 0 converged, 3 failed, 4 still updating.
    "$stackroll" status "$stack"
    ;;
*)
    echo "usage: pipeline.sh plan|deploy STACK" >&2
    exit 1
    ;;
esac
