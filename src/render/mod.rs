//! Everything stackroll prints: one core value per command, rendered by a human printer or a
//! machine (JSON/YAML) printer.

pub mod config;
