//! Everything stackroll prints: one core value per command, rendered by a human printer or a
//! machine (JSON/YAML) printer; deploy progress goes to stderr through a reporter.

pub mod config;
pub mod format;
pub mod markdown;
pub mod plan;
pub mod progress;
pub mod stacks;
pub mod target;

#[cfg(test)]
mod snapshot_tests;

use format::{OutputFormat, PlanFormat};
use plan::Report;

/// Renders a plan in `format`; `warnings` (the loader's) are part of the Markdown only, the
/// other formats leave them on stderr.
pub fn render_plan(report: &Report<'_>, format: PlanFormat, warnings: &[String]) -> String {
    match format {
        PlanFormat::Text => plan::render(report, OutputFormat::Text),
        PlanFormat::Json => plan::render(report, OutputFormat::Json),
        PlanFormat::Markdown => markdown::render_markdown(report, warnings),
    }
}
