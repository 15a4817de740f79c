//! `stackroll plan` and `stackroll deploy` output: a human printer that reads like a diff and
//! a JSON printer (schema/plan.schema.json), both over the same [`Report`]; `plan` also has a
//! Markdown printer for pull requests ([`super::markdown`]).

use std::fmt::Write as _;

use serde::Serialize;

use super::format::OutputFormat;
use super::target::target_line;
use crate::apply::rollout::RolloutFailure;
pub use crate::deploy::Outcome;
use crate::engine::Target;
use crate::plan::content_diff::{ContentDiff, Shown};
use crate::plan::detail::Detail;
use crate::plan::impact::{Impact, ImpactSummary};
use crate::plan::rotation::Rotation;
use crate::plan::{Action, Plan};

/// The major version of schema/plan.schema.json the JSON printer follows. Version 2 made
/// `details` objects (`field`, `location`, `old`, `new`, `redacted`, ...); version 1's
/// free-text details are gone.
pub const SCHEMA_VERSION: u32 = 2;

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
    /// How long the deploy took from its first write until every service converged, in
    /// seconds (deploy only, when it waited), to compare with `impact.estimate_seconds`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measured_seconds: Option<u64>,
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
            let impact = change.impact.map(impact_words).unwrap_or_default();
            let _ = writeln!(
                out,
                "  {sign} {noun} {} ({}{impact})",
                change.name, change.reason
            );
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
    if plan.changes.iter().any(|change| change.impact.is_some()) {
        let _ = writeln!(out, "{}", summary_line(&plan.impact));
    }
    if let Some(seconds) = report.measured_seconds {
        let _ = writeln!(
            out,
            "Rollout took {seconds} s (estimated about {} s).",
            plan.impact.estimate_seconds
        );
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

/// What a service change does to its tasks, after its reason: `; restarts 2 tasks, about 9 s`,
/// `; no restart`, `; starts 3 tasks, about 2 s`.
pub fn impact_words(impact: Impact) -> String {
    let tasks = |count: u64| match count {
        1 => "1 task".to_string(),
        n => format!("{n} tasks"),
    };
    match (impact.restarts, impact.tasks) {
        (true, count) => format!(
            "; restarts {}, about {} s",
            tasks(count),
            impact.estimate_seconds
        ),
        (false, 0) => "; no restart".to_string(),
        (false, count) => format!(
            "; starts {}, about {} s",
            tasks(count),
            impact.estimate_seconds
        ),
    }
}

/// The plan's impact in one line: `Impact: 2 services restart (3 tasks), 1 task starts, about
/// 25 s.`
pub fn summary_line(impact: &ImpactSummary) -> String {
    let count = |n: u64, one: &str, many: &str| match n {
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    };
    let mut parts = vec![match impact.services_restarted {
        0 => "no service restarts".to_string(),
        n => format!(
            "{} ({})",
            count(n as u64, "service restarts", "services restart"),
            count(impact.tasks_replaced, "task", "tasks")
        ),
    }];
    if impact.tasks_started > 0 {
        parts.push(count(impact.tasks_started, "task starts", "tasks start"));
    }
    format!(
        "Impact: {}, about {} s.",
        parts.join(", "),
        impact.estimate_seconds
    )
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
