//! The tests against the real local swarm (`scripts/dev-swarm.sh up`): end to end (`e2e`),
//! faults (crashes, locks, engine failures: `faults`), `ls`/`ps`/`status`/`rm` (`stacks`) and
//! the differential suite against `docker stack deploy` (`parity`), with the `docker` CLI as the
//! oracle. The harness in `tests/support/` is shared with the `hermetic` binary.

#[path = "../support/command.rs"]
mod command;
#[path = "../support/docker.rs"]
mod docker;
#[path = "../support/leaks.rs"]
mod leaks;
#[path = "../support/stack.rs"]
mod stack;

mod compose;
mod e2e;
mod encrypted;
mod faults;
mod gitops;
mod modes;
mod parity;
mod registry;
mod rotation;
mod stacks;
