//! Everything stackroll prints: one core value per command, rendered by a human printer or a
//! machine (JSON/YAML) printer; deploy progress goes to stderr through a reporter.

pub mod config;
pub mod markdown;
pub mod plan;
pub mod progress;
pub mod stacks;
pub mod target;

#[cfg(test)]
mod snapshot_tests;
