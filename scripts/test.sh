#!/usr/bin/env bash
# The one test command: every test target, those needing no engine first (unit tests against the
# in-memory engine, the `hermetic` binary: seconds), then the local swarm is brought up and the
# `swarm` binary (end to end, faults, stacks, parity, credential rotation, the private registry
# of scripts/registry.sh) runs against it. The
# rotation tests' server images (Redis, MariaDB from Debian's packages) are built first, cached.
#   scripts/test.sh [extra cargo test args, passed to both runs]
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
exec cargo test --locked "${features[@]}" --test swarm "$@"
