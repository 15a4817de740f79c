#!/usr/bin/env bash
# The one test command: bring up the local swarm, then run every test target.
#   scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/dev-swarm.sh up
if ! command -v cargo >/dev/null 2>&1 && [[ -x ${HOME:-/root}/.cargo/bin/cargo ]]; then
    PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 || {
    echo "test.sh: cargo not found; install Rust (https://rustup.rs) and retry" >&2
    exit 1
}
exec cargo test --locked --all-targets "$@"
