//! Printers for `ls`, `ps`, `status`, `rm`, `wait` and `rollback`: aligned text tables and
//! lines, or the same values as JSON.

use std::fmt::Write as _;

use serde::Serialize;

use super::format::OutputFormat;
use super::target::target_line;
use crate::engine::Target;
use crate::stacks::rollback::RollbackPlan;
use crate::stacks::wait::WaitOutcome;
use crate::stacks::{Removed, StackStatus, StackSummary, TaskRow};

/// Renders rows as a table with a header, columns padded to the widest cell.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let text: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        let _ = writeln!(out, "{}", text.join("   ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

fn json<T: Serialize>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("reports serialize");
    text.push('\n');
    text
}

/// `stackroll ls`.
pub fn render_stacks(stacks: &[StackSummary], format: OutputFormat) -> String {
    match format {
        OutputFormat::Json => json(&stacks),
        OutputFormat::Text => table(
            &["NAME", "SERVICES", "SECRETS", "CONFIGS"],
            &stacks
                .iter()
                .map(|s| {
                    vec![
                        s.name.clone(),
                        s.services.to_string(),
                        s.secrets.to_string(),
                        s.configs.to_string(),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
    }
}

/// `stackroll ps`.
pub fn render_tasks(tasks: &[TaskRow], format: OutputFormat) -> String {
    match format {
        OutputFormat::Json => json(&tasks),
        OutputFormat::Text => table(
            &[
                "ID",
                "NAME",
                "NODE",
                "DESIRED STATE",
                "CURRENT STATE",
                "ERROR",
            ],
            &tasks
                .iter()
                .map(|t| {
                    vec![
                        t.id.chars().take(12).collect(),
                        t.name.clone(),
                        t.node.clone(),
                        t.desired_state.clone(),
                        t.current_state.clone(),
                        t.error.clone(),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
    }
}

/// `stackroll status`.
pub fn render_status(status: &StackStatus, format: OutputFormat) -> String {
    if format == OutputFormat::Json {
        return json(status);
    }
    let mut out = String::new();
    let _ = writeln!(out, "Stack {}", status.stack);
    let objects: Vec<Vec<String>> = status
        .objects
        .iter()
        .map(|o| {
            let used: Vec<String> = o
                .references
                .iter()
                .map(|r| format!("{} → {}", r.service, r.version))
                .collect();
            vec![
                o.kind.noun().to_string(),
                o.key.clone(),
                o.live.clone().unwrap_or_else(|| "(none)".into()),
                o.versions.join(", "),
                used.join(", "),
            ]
        })
        .collect();
    out.push_str(&table(
        &["KIND", "KEY", "LIVE", "VERSIONS", "USED BY"],
        &objects,
    ));
    out.push('\n');
    let services: Vec<Vec<String>> = status
        .services
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.state.clone(),
                format!("{}/{}", s.running, s.desired),
                s.message.clone(),
            ]
        })
        .collect();
    out.push_str(&table(&["SERVICE", "STATE", "TASKS", "MESSAGE"], &services));
    out
}

/// `stackroll rm`.
pub fn render_removed(
    target: &Target,
    stack: &str,
    removed: &Removed,
    format: OutputFormat,
) -> String {
    #[derive(Serialize)]
    struct Report<'a> {
        target: &'a Target,
        stack: &'a str,
        #[serde(flatten)]
        removed: &'a Removed,
    }
    if format == OutputFormat::Json {
        return json(&Report {
            target,
            stack,
            removed,
        });
    }
    let mut out = target_line(target);
    let _ = writeln!(
        out,
        "Removed stack {stack}: {} services, {} networks, {} secrets and configs.",
        removed.services.len(),
        removed.networks.len(),
        removed.objects.len()
    );
    for left in &removed.left {
        let _ = writeln!(out, "Left in place (not created by stackroll): {left}");
    }
    out
}

/// `stackroll wait`.
pub fn render_wait(outcome: &WaitOutcome, format: OutputFormat) -> String {
    if format == OutputFormat::Json {
        return json(outcome);
    }
    let mut out = String::new();
    if outcome.failures.is_empty() {
        let _ = writeln!(
            out,
            "Stack {}: {} services converged.",
            outcome.stack,
            outcome.services.len()
        );
    } else {
        let _ = writeln!(out, "Stack {}: the rollout failed.", outcome.stack);
        for failure in &outcome.failures {
            let _ = writeln!(out, "  {}: {}", failure.service, failure.reason);
        }
    }
    out
}

/// `stackroll rollback`: what goes back (planned with `--dry-run`, done otherwise).
pub fn render_rollback(plan: &RollbackPlan, done: bool, format: OutputFormat) -> String {
    #[derive(Serialize)]
    struct Report<'a> {
        #[serde(flatten)]
        plan: &'a RollbackPlan,
        outcome: &'a str,
    }
    let outcome = if done { "rolled_back" } else { "planned" };
    if format == OutputFormat::Json {
        return json(&Report { plan, outcome });
    }
    let mut out = String::new();
    let _ = writeln!(out, "Rollback of stack {}:", plan.stack);
    for service in &plan.services {
        let _ = writeln!(
            out,
            "  < service {}: back to its previous spec",
            service.service
        );
        for change in &service.changes {
            let _ = writeln!(out, "      {change}");
        }
    }
    for name in &plan.unchanged {
        let _ = writeln!(out, "  = service {name}: no previous spec, left as it is");
    }
    let count = plan.services.len();
    let _ = match done {
        true => writeln!(out, "Rolled back {count} services; they converged."),
        false => writeln!(out, "Plan: {count} services to roll back."),
    };
    out
}
