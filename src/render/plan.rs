//! `stackroll plan` and `stackroll deploy` output: a human printer that reads like a diff and
//! a JSON printer (schema/plan.schema.json), both over the same [`Report`]; `plan` also has a
//! Markdown printer for pull requests ([`super::markdown`]).

use std::fmt::Write as _;

use serde::Serialize;

use super::target::target_line;
use crate::apply::rollout::RolloutFailure;
pub use crate::deploy::Outcome;
use crate::engine::Target;
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

/// Output format of `stackroll plan`: the report formats and Markdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    /// Human-readable text.
    Text,
    /// JSON following schema/plan.schema.json.
    Json,
    /// GitHub-flavoured Markdown, for a pull-request comment.
    Markdown,
}

/// Renders a plan in `format`; `warnings` (the loader's) are part of the Markdown only, the
/// other formats leave them on stderr.
pub fn render_plan(report: &Report<'_>, format: PlanFormat, warnings: &[String]) -> String {
    match format {
        PlanFormat::Text => render(report, OutputFormat::Text),
        PlanFormat::Json => render(report, OutputFormat::Json),
        PlanFormat::Markdown => super::markdown::render_markdown(report, warnings),
    }
}

/// Everything plan and deploy print.
#[derive(Debug, Clone, Serialize)]
pub struct Report<'a> {
    /// The engine the plan was made against (first in the output).
    pub target: &'a Target,
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

/// Renders the report in `format`, ending with a newline.
pub fn render(report: &Report<'_>, format: OutputFormat) -> String {
    match format {
        OutputFormat::Json => {
            let mut text = serde_json::to_string_pretty(report).expect("reports serialize");
            text.push('\n');
            text
        }
        OutputFormat::Text => render_text(report),
    }
}

fn render_text(report: &Report<'_>) -> String {
    let plan = report.plan;
    let mut out = target_line(report.target);
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
            match (change.action, change.details.as_slice()) {
                (Action::Update, [single]) => {
                    let _ = writeln!(out, "  {sign} {noun} {}: {single}", change.name);
                }
                (_, details) => {
                    let _ = writeln!(out, "  {sign} {noun} {} ({})", change.name, change.reason);
                    for detail in details {
                        let _ = writeln!(out, "      {detail}");
                    }
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
