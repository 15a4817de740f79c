//! How a config's content changes: a unified diff of the version the plan replaces (its data
//! read back from the engine by `crate::observe::replaced_config_data`, only for configs the
//! plan replaces) against the new content, capped in length. Never for secrets: the engine
//! never returns their data, and a plan never shows it.

use std::collections::HashMap;

use serde::Serialize;

use super::{Operation, Plan};
use crate::contents::Contents;
use crate::model::ObjectKind;

/// Most lines of a diff a plan shows; the rest are counted in `omitted_lines`.
pub const MAX_DIFF_LINES: usize = 60;

/// Largest content (each side, in bytes) that is diffed; larger ones are only said to differ.
pub const MAX_DIFF_BYTES: usize = 64 * 1024;

/// What a config content diff could show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shown {
    /// A unified diff of the two texts.
    Text,
    /// One side is not UTF-8 text: no diff.
    Binary,
    /// One side is larger than [`MAX_DIFF_BYTES`]: no diff.
    TooLarge,
    /// The old content could not be read back from the engine.
    Unavailable,
}

/// The content diff of a config version the plan creates to replace another.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContentDiff {
    /// The version replaced.
    pub from: String,
    /// The new version.
    pub to: String,
    /// Whether there is a diff, or why not.
    pub shown: Shown,
    /// The unified diff (`--- from`, `+++ to`, hunks), at most [`MAX_DIFF_LINES`] lines.
    pub lines: Vec<String>,
    /// Lines of the diff left out.
    pub omitted_lines: usize,
}

/// The IDs of the config versions the plan replaces: the old data a diff needs.
pub fn replaced_configs(plan: &Plan) -> Vec<String> {
    plan.changes
        .iter()
        .filter_map(|change| match &change.operation {
            Operation::CreateObject(creation) if creation.kind == ObjectKind::Config => creation
                .replaces
                .as_ref()
                .map(|replaced| replaced.id.clone()),
            _ => None,
        })
        .collect()
}

/// Gives each config version the plan creates to replace another its content diff, from the
/// replaced versions' data (`old`, by ID; one missing is said to be unavailable) and the new
/// contents.
pub fn attach(plan: &mut Plan, old: &HashMap<String, Vec<u8>>, contents: &Contents) {
    for change in &mut plan.changes {
        let Operation::CreateObject(creation) = &change.operation else {
            continue;
        };
        let (ObjectKind::Config, Some(replaced)) = (creation.kind, &creation.replaces) else {
            continue;
        };
        let Some(new) = contents.get(ObjectKind::Config, &creation.key) else {
            continue;
        };
        change.content_diff = Some(diff(
            &replaced.name,
            &creation.name,
            old.get(&replaced.id).map(Vec::as_slice),
            new.expose(),
        ));
    }
}

/// The capped unified diff of `old` (None: unreadable) against `new`.
pub fn diff(from: &str, to: &str, old: Option<&[u8]>, new: &[u8]) -> ContentDiff {
    let mut result = ContentDiff {
        from: from.to_string(),
        to: to.to_string(),
        shown: Shown::Text,
        lines: Vec::new(),
        omitted_lines: 0,
    };
    let Some(old) = old else {
        result.shown = Shown::Unavailable;
        return result;
    };
    if old.len() > MAX_DIFF_BYTES || new.len() > MAX_DIFF_BYTES {
        result.shown = Shown::TooLarge;
        return result;
    }
    let (Ok(old), Ok(new)) = (std::str::from_utf8(old), std::str::from_utf8(new)) else {
        result.shown = Shown::Binary;
        return result;
    };
    let text = similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(from, to)
        .to_string();
    let lines: Vec<&str> = text.lines().collect();
    result.omitted_lines = lines.len().saturating_sub(MAX_DIFF_LINES);
    result.lines = lines
        .into_iter()
        .take(MAX_DIFF_LINES)
        .map(str::to_string)
        .collect();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_line_shows_as_a_unified_diff() {
        let found = diff(
            "c_v1",
            "c_v2",
            Some(b"a\nlisten 8080\nb\n"),
            b"a\nlisten 9090\nb\n",
        );
        assert_eq!(found.shown, Shown::Text);
        assert_eq!(
            found.lines,
            [
                "--- c_v1",
                "+++ c_v2",
                "@@ -1,3 +1,3 @@",
                " a",
                "-listen 8080",
                "+listen 9090",
                " b"
            ]
        );
        assert_eq!(found.omitted_lines, 0);
    }

    #[test]
    fn long_diffs_are_capped_and_binary_or_large_content_is_not_diffed() {
        let old: String = (0..200).map(|n| format!("line {n}\n")).collect();
        let found = diff("a", "b", Some(old.as_bytes()), b"other\n");
        assert_eq!(found.lines.len(), MAX_DIFF_LINES);
        assert_eq!(found.omitted_lines, 2 + 1 + 200 + 1 - MAX_DIFF_LINES);
        assert_eq!(diff("a", "b", Some(b"\xff\xfe"), b"x").shown, Shown::Binary);
        let large = vec![b'x'; MAX_DIFF_BYTES + 1];
        assert_eq!(diff("a", "b", Some(b"x"), &large).shown, Shown::TooLarge);
        let unread = diff("a", "b", None, b"x");
        assert_eq!((unread.shown, unread.lines.len()), (Shown::Unavailable, 0));
    }
}
