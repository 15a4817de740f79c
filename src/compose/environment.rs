//! The variables a project is interpolated with (the process environment over `.env` or
//! `--env-file` files), and interpolation of a whole document tree.

use indexmap::{IndexMap, IndexSet};

use super::interpolate::{interpolate_within, InterpolationError, MAX_OUTPUT_BYTES};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::model::node::{Node, ScalarStyle, Value};

/// The variables visible to a project. The process environment wins over env files.
/// `Debug` shows variable names only: values may be secrets.
#[derive(Clone, Default)]
pub struct Environment {
    process: IndexMap<String, String>,
    files: IndexMap<String, String>,
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Environment")
            .field("process", &self.process.keys().collect::<Vec<_>>())
            .field("files", &self.files.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Environment {
    /// Variables from the process and from env files (later files already merged in).
    pub fn new(process: IndexMap<String, String>, files: IndexMap<String, String>) -> Environment {
        Environment { process, files }
    }

    /// The value of `name`, if set (possibly empty). A [reserved](RESERVED_VARIABLES) variable
    /// is never available: it reads as unset.
    pub fn get(&self, name: &str) -> Option<String> {
        if RESERVED_VARIABLES.contains(&name) {
            return None;
        }
        self.process
            .get(name)
            .or_else(|| self.files.get(name))
            .cloned()
    }
}

/// Variables a compose file can never read: the fingerprint key and the age identities
/// (`SOPS_AGE_KEY`) would otherwise end up in a label, an environment value or a secret anyone
/// with access to the swarm reads.
pub const RESERVED_VARIABLES: &[&str] = &["STACKROLL_FINGERPRINT_KEY", "SOPS_AGE_KEY"];

/// Most bytes the interpolated values of all of a project's compose files may add up to
/// (64 MiB): a hostile file cannot make `$BIG$BIG...` grow without bound.
pub const MAX_INTERPOLATED_BYTES: usize = MAX_OUTPUT_BYTES;

/// Interpolates the string values of a project's documents: warns about each unset variable
/// once, bounds the bytes all interpolated values add up to, and reports failures at the
/// scalar that holds them, with its field and the position in the value, never the value.
pub struct TreeInterpolator<'a> {
    environment: &'a Environment,
    /// Unset variables already warned about.
    warned: IndexSet<String>,
    /// Bytes interpolation may still produce.
    budget: usize,
}

impl<'a> TreeInterpolator<'a> {
    /// An interpolator over `environment` with the whole [`MAX_INTERPOLATED_BYTES`] to spend.
    pub fn new(environment: &'a Environment) -> TreeInterpolator<'a> {
        TreeInterpolator {
            environment,
            warned: IndexSet::new(),
            budget: MAX_INTERPOLATED_BYTES,
        }
    }

    /// Interpolates every string value in `node` (never keys).
    pub fn interpolate(&mut self, node: &mut Node, diagnostics: &mut Diagnostics) {
        self.walk(node, &mut String::new(), diagnostics);
    }

    /// Interpolates `node`, whose dotted field path is `field`.
    fn walk(&mut self, node: &mut Node, field: &mut String, diagnostics: &mut Diagnostics) {
        let parent = field.len();
        match &mut node.value {
            Value::Seq(items) => {
                for (index, item) in items.iter_mut().enumerate() {
                    field.push_str(&format!("[{index}]"));
                    self.walk(item, field, diagnostics);
                    field.truncate(parent);
                }
            }
            Value::Map(map) => {
                for (key, entry) in map.iter_mut() {
                    if !field.is_empty() {
                        field.push('.');
                    }
                    field.push_str(key);
                    self.walk(&mut entry.value, field, diagnostics);
                    field.truncate(parent);
                }
            }
            Value::Scalar(..) => self.scalar(node, field, diagnostics),
        }
    }

    /// Interpolates one scalar in place.
    fn scalar(&mut self, node: &mut Node, field: &str, diagnostics: &mut Diagnostics) {
        let Value::Scalar(text, style) = &mut node.value else {
            return;
        };
        if !text.contains('$') {
            return;
        }
        let environment = self.environment;
        match interpolate_within(text, &|name| environment.get(name), self.budget) {
            Ok(result) => {
                for name in result.unset {
                    if RESERVED_VARIABLES.contains(&name.as_str()) {
                        let mut error = Diagnostic::error(
                            Some(node.location.clone()),
                            format!("${{{name}}} is stackroll's own key and never available to compose files"),
                        )
                        .hint("use another variable; stackroll's keys only make fingerprints and decrypt files");
                        if !field.is_empty() {
                            error = error.field(field);
                        }
                        diagnostics.push(error);
                        continue;
                    }
                    if self.warned.insert(name.clone()) {
                        diagnostics.push(
                            Diagnostic::warning(
                                Some(node.location.clone()),
                                format!("variable \"{name}\" is not set; substituting an empty string"),
                            )
                            .hint(format!("set {name} in the environment or in .env, or write ${{{name}:-default}}")),
                        );
                    }
                }
                self.budget -= result.value.len();
                *text = result.value;
                *style = ScalarStyle::String;
            }
            Err(error) => {
                let hint = match error {
                    InterpolationError::TooLarge { .. } => {
                        "interpolated values may add up to at most 64 MiB; check which variables this value repeats"
                    }
                    _ => "set the variable, or write `$$` for a literal `$`",
                };
                let mut diagnostic =
                    Diagnostic::error(Some(node.location.clone()), error.to_string()).hint(hint);
                if !field.is_empty() {
                    diagnostic = diagnostic.field(field);
                }
                diagnostics.push(diagnostic);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_names_never_values() {
        let environment = Environment::new(
            IndexMap::from([("TOKEN".to_string(), "process-secret".to_string())]),
            IndexMap::from([("DB".to_string(), "file-secret".to_string())]),
        );
        let shown = format!("{environment:?}");
        assert!(shown.contains("TOKEN") && shown.contains("DB"), "{shown}");
        assert!(
            !shown.contains("process-secret") && !shown.contains("file-secret"),
            "{shown}"
        );
    }
}
