//! `stackroll plan --output markdown`: the plan as a pull-request comment, over the same
//! [`Report`] as the text and JSON printers. A summary line; per stack a table of changes
//! (kind, name, action, reason) in a stable order (creates, updates, deletes; then kind and
//! name), so the comment's diff between two pushes is readable; each change's field details in
//! a collapsible block; staged rotations, notes and warnings. What the plan holds never includes
//! a secret value, and everything taken from the input is escaped, so a name cannot inject
//! Markdown or HTML into the comment.

use std::fmt::Write as _;

use super::plan::{detail_line, diff_lines, impact_words, summary_line, Report};
use crate::plan::{Action, Change};

/// Renders the report as GitHub-flavoured Markdown; `warnings` are the loader's warnings.
pub fn render_markdown(report: &Report<'_>, warnings: &[String]) -> String {
    let plan = report.plan;
    let mut out = String::new();
    let s = plan.summary;
    let summary = if plan.is_empty() {
        "no changes".to_string()
    } else {
        format!(
            "{} to create, {} to update, {} to delete",
            s.create, s.update, s.delete
        )
    };
    let _ = writeln!(
        out,
        "### stackroll plan for `{}`: {summary}\n",
        code(&plan.stack)
    );
    let target = report.target;
    let _ = writeln!(
        out,
        "Target: context `{}`, `{}`, swarm `{}`, manager `{}`\n",
        code(&target.context),
        code(&target.endpoint),
        code(&target.cluster_id),
        code(&target.node)
    );
    let mut changes: Vec<&Change> = plan.changes.iter().collect();
    changes.sort_by_key(|change| {
        (
            action_rank(change.action),
            change.resource.noun(),
            change.name.clone(),
        )
    });
    if !changes.is_empty() {
        out.push_str("| Kind | Name | Action | Reason |\n|---|---|---|---|\n");
        for change in &changes {
            let _ = writeln!(
                out,
                "| {} | `{}` | {} | {}{} |",
                change.resource.noun(),
                code(&change.name),
                action_word(change.action),
                text(&change.reason),
                text(&change.impact.map(impact_words).unwrap_or_default())
            );
        }
        out.push('\n');
        let _ = writeln!(out, "{}\n", text(summary_line(&plan.impact).trim_end()));
    }
    let detailed = |change: &&&Change| !change.details.is_empty() || change.content_diff.is_some();
    for change in changes.iter().filter(detailed) {
        let _ = writeln!(
            out,
            "<details><summary>{} <code>{}</code>: {}</summary>\n",
            change.resource.noun(),
            html(&change.name),
            match (change.details.len(), change.content_diff.is_some()) {
                (0, true) => "content diff".to_string(),
                (1, _) => "1 change".to_string(),
                (count, _) => format!("{count} changes"),
            }
        );
        let mut lines: Vec<String> = change.details.iter().map(detail_line).collect();
        if let Some(diff) = &change.content_diff {
            lines.extend(diff_lines(diff));
        }
        let body = lines.join("\n");
        let fence = "`".repeat(longest_backtick_run(&body).max(2) + 1);
        let _ = writeln!(out, "{fence}\n{body}\n{fence}\n\n</details>\n");
    }
    for rotation in &plan.rotations {
        let _ = writeln!(
            out,
            "**Staged rotation** of {} `{}`: `{}` → `{}`\n",
            rotation.kind.noun(),
            code(&rotation.key),
            code(&rotation.from.name),
            code(&rotation.to.name)
        );
        for step in &rotation.stages {
            let done = if step.done { " *(done)*" } else { "" };
            let _ = writeln!(out, "{}. {}{done}", step.number, text(&step.action));
        }
        out.push('\n');
    }
    for note in &plan.notes {
        let _ = writeln!(out, "> **Note:** {}\n", text(note));
    }
    for warning in warnings {
        let line = warning.lines().next().unwrap_or("");
        let line = line.strip_prefix("warning: ").unwrap_or(line);
        let _ = writeln!(out, "> **Warning:** {}\n", text(line));
    }
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out.push('\n');
    out
}

/// Orders creates before updates before deletes, as they are carried out.
fn action_rank(action: Action) -> u8 {
    match action {
        Action::Create => 0,
        Action::Update => 1,
        Action::Delete => 2,
    }
}

/// The action in the table.
fn action_word(action: Action) -> &'static str {
    match action {
        Action::Create => "➕ create",
        Action::Update => "🔄 update",
        Action::Delete => "➖ delete",
    }
}

/// Text for a table cell or a line: Markdown and HTML characters escaped, one line.
fn text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for character in value.chars() {
        match character {
            '\n' | '\r' => out.push(' '),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '|' | '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '~' => {
                out.push('\\');
                out.push(character);
            }
            c => out.push(c),
        }
    }
    out
}

/// Text inside a code span in a table: no backtick ends it, no `|` splits the cell.
fn code(value: &str) -> String {
    value
        .replace(['\n', '\r'], " ")
        .replace('`', "'")
        .replace('|', "\\|")
}

/// Text inside HTML.
fn html(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The longest run of backticks in `text`, so a fence can be longer.
fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}
