//! `stackroll plan` and `stackroll deploy` output: a human printer that reads like a diff and
//! a JSON printer (schema/plan.schema.json), both over the same [`Report`].

use std::fmt::Write as _;

use serde::Serialize;

use crate::apply::rollout::RolloutFailure;
pub use crate::deploy::Outcome;
use crate::plan::content_diff::{ContentDiff, Shown};
use crate::plan::detail::Detail;
use crate::plan::rotation::Rotation;
use crate::plan::{Action, Plan};

/// Output format of plan and deploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Human-readable text.
    Text,
    /// JSON following schema/plan.schema.json.
    Json,
}

/// The major version of schema/plan.schema.json the JSON printer follows. Version 2 made
/// `details` objects (`field`, `location`, `old`, `new`, `redacted`, ...); version 1's
/// free-text details are gone.
pub const SCHEMA_VERSION: u32 = 2;

/// Everything plan and deploy print.
#[derive(Debug, Clone, Serialize)]
pub struct Report<'a> {
    /// The plan (flattened: stack, changes, notes, summary).
    #[serde(flatten)]
    pub plan: &'a Plan,
    /// How it ended.
    pub outcome: Outcome,
    /// Objects deleted after convergence (deploy only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deleted: Vec<String>,
    /// Failed rollouts (deploy only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<RolloutFailure>,
}

/// The JSON document: the schema's major version, then the report.
#[derive(Serialize)]
struct Versioned<'r> {
    /// [`SCHEMA_VERSION`].
    schema_version: u32,
    #[serde(flatten)]
    report: &'r Report<'r>,
}

/// Renders the report in `format`, ending with a newline.
pub fn render(report: &Report<'_>, format: OutputFormat) -> String {
    match format {
        OutputFormat::Json => {
            let versioned = Versioned {
                schema_version: SCHEMA_VERSION,
                report,
            };
            let mut text = serde_json::to_string_pretty(&versioned).expect("reports serialize");
            text.push('\n');
            text
        }
        OutputFormat::Text => render_text(report),
    }
}

fn render_text(report: &Report<'_>) -> String {
    let plan = report.plan;
    let mut out = String::new();
    if plan.is_empty() {
        let _ = writeln!(
            out,
            "No changes. Stack {} matches the compose files.",
            plan.stack
        );
    } else {
        let _ = writeln!(out, "Stack {}:", plan.stack);
        for change in &plan.changes {
            let sign = match change.action {
                Action::Create => '+',
                Action::Update => '~',
                Action::Delete => '-',
            };
            let noun = change.resource.noun();
            let _ = writeln!(out, "  {sign} {noun} {} ({})", change.name, change.reason);
            for detail in &change.details {
                let _ = writeln!(out, "      {}", detail_line(detail));
            }
            if let Some(diff) = &change.content_diff {
                for line in diff_lines(diff) {
                    let _ = writeln!(out, "      {line}");
                }
            }
        }
    }
    for rotation in &plan.rotations {
        render_rotation(&mut out, rotation);
    }
    for note in &plan.notes {
        let _ = writeln!(out, "Note: {note}");
    }
    if !plan.is_empty() {
        let s = plan.summary;
        let _ = writeln!(
            out,
            "Plan: {} to create, {} to update, {} to delete.",
            s.create, s.update, s.delete
        );
    }
    out
}

/// One detail as a line: `deploy.replicas: 1 -> 2  (compose.yaml:14:16)`.
pub fn detail_line(detail: &Detail) -> String {
    format!(
        "{}: {}  ({})",
        detail.label(),
        detail.summary(),
        detail.whence()
    )
}

/// A config content diff as lines: the unified diff and how many lines were left out, or
/// why there is none.
pub fn diff_lines(diff: &ContentDiff) -> Vec<String> {
    let why = match diff.shown {
        Shown::Text => {
            let mut lines = diff.lines.clone();
            if diff.omitted_lines > 0 {
                lines.push(format!("... {} more lines of diff", diff.omitted_lines));
            }
            return lines;
        }
        Shown::Binary => "not text",
        Shown::TooLarge => "over 64 KiB",
        Shown::Unavailable => "the old content could not be read",
    };
    vec![format!("(no content diff: {why})")]
}

/// A staged rotation as a numbered list of its stages; the ones an earlier deploy did are
/// marked so.
fn render_rotation(out: &mut String, rotation: &Rotation) {
    let _ = writeln!(
        out,
        "  ~ staged rotation of {} {}: {} -> {}",
        rotation.kind.noun(),
        rotation.key,
        rotation.from.name,
        rotation.to.name
    );
    for step in &rotation.stages {
        let done = if step.done { " [done]" } else { "" };
        let _ = writeln!(out, "      {}. {}{done}", step.number, step.action);
    }
}
