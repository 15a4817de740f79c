#!/usr/bin/env bash
# The one test command: every test target, those needing no engine first (unit tests against the
# in-memory engine, the `hermetic` binary: seconds), then the local swarm is brought up and the
# `swarm` binary (end to end, faults, stacks, parity, credential rotation, the private registry
# of scripts/registry.sh) runs against it. The
# rotation tests' server images (Redis, MariaDB from Debian's packages) are built first, cached.
# Then the `remote` binary: contexts against the docker CLI, ssh:// through a local sshd, TLS
# against a dockerd with --tlsverify (scripts/sshd.sh, scripts/tls-engine.sh). Last, the
# multi-node swarm (scripts/cluster.sh up: 3 managers, 2 workers in network namespaces) is
# brought up and the `cluster` binary (nodes and managers lost mid-deploy) runs against it.
#   scripts/test.sh [extra cargo test args, passed to every run]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1 && [[ -x ${HOME:-/root}/.cargo/bin/cargo ]]; then
    PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 || {
    echo "test.sh: cargo not found; install Rust (https://rustup.rs) and retry" >&2
    exit 1
}
# The fault tests kill stackroll at chosen points: the binary needs the test-only switch.
features=(--features test-kill-points)
cargo test --locked "${features[@]}" --lib --bins --examples --test hermetic "$@"
scripts/dev-swarm.sh up
scripts/registry.sh up
scripts/images.sh
cargo test --locked "${features[@]}" --test swarm "$@"
# Remote engines: an sshd in front of the swarm and a dockerd with --tlsverify (the tests would
# start them too; starting them here puts their setup time and errors before the tests).
scripts/sshd.sh up
scripts/tls-engine.sh up
cargo test --locked "${features[@]}" --test remote "$@"
scripts/cluster.sh up
exec cargo test --locked "${features[@]}" --test cluster "$@"
