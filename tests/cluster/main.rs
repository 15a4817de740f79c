//! The tests against a real multi-node swarm (`scripts/cluster.sh up`: 3 managers, 2 workers,
//! each a dockerd in its own network namespace): a spread rotation read back on every node,
//! a worker lost mid-rotation, the raft leader lost mid-deploy, the manager stackroll talks to
//! lost mid-deploy, `status`/`ps`/`rm`, and output fit for logs. The tests kill and restart
//! nodes, so they run one at a time ([`nodes::Cluster::lock`]) and leave every node Ready.
//! The harness in `tests/support/` is shared with the other test binaries.

// This binary uses only part of the shared harness.
#![allow(dead_code)]

#[path = "../support/command.rs"]
mod command;
#[path = "../support/docker.rs"]
mod docker;
#[path = "../support/leaks.rs"]
mod leaks;
#[path = "../support/stack.rs"]
mod stack;

mod nodes;
mod scenarios;
