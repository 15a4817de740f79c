//! The hermetic tests: the stackroll binary against files only, no Docker engine (an
//! unreachable engine address at most), so `cargo test --test hermetic` runs in seconds
//! anywhere. The tests that need the real swarm are the `swarm` binary (`tests/swarm/`); both
//! share the harness in `tests/support/`.

#[path = "../support/command.rs"]
mod command;
#[path = "../support/leaks.rs"]
mod leaks;

mod cli;
mod completions;
mod encrypted;
mod loader;
mod realworld;
mod secrets_in_errors;
