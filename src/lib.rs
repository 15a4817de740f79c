//! stackroll deploys Docker Compose files to Docker Swarm and gets secrets right: versioned
//! secrets and configs, rolled onto every service that uses them, with a plan first.
//!
//! Layers, from the edge inwards: `cli` (flags → settings, exit codes), `render` (printers),
//! `deploy` (the workflow: prepare, plan, lock, apply), `apply` (the executor), `plan` (pure),
//! `contents` and `observe` (the reads a plan is made from), `compose` (files → validated
//! `model`, whose raw document tree is `model::node`), `swarm` (stackroll's names, labels,
//! versions, update states and write retries on the swarm), `diagnostic` and `error` (what goes
//! wrong).

pub mod apply;
pub mod cli;
pub mod compose;
pub mod contents;
pub mod convert;
pub mod decrypt;
pub mod deploy;
pub mod diagnostic;
pub mod engine;
pub mod error;
pub mod model;
pub mod observe;
pub mod plan;
pub mod progress;
pub mod registry;
pub mod render;
pub mod signal;
pub mod stacks;
pub mod swarm;
