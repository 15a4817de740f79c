//! The tests of reaching remote engines the way the docker CLI does, against real components:
//! the docker CLI 28 as the oracle of which engine a context, flag or variable picks
//! (`contexts`), an sshd on 127.0.0.1 in front of the dev swarm (`ssh`, `scripts/sshd.sh`), and a
//! dockerd listening with `--tlsverify` in its own network namespace (`tls`,
//! `scripts/tls-engine.sh`). The scripts are started here when needed (idempotent; they need
//! root); the swarm tests' harness in `tests/support/` is shared.

// The shared harness: this binary uses part of it.
#[allow(dead_code)]
#[path = "../support/command.rs"]
mod command;
#[allow(dead_code)]
#[path = "../support/docker.rs"]
mod docker;
#[allow(dead_code)]
#[path = "../support/leaks.rs"]
mod leaks;
#[allow(dead_code)]
#[path = "../support/stack.rs"]
mod stack;

mod contexts;
mod plugin;
mod remote;
mod ssh;
mod tls;
