//! The variables a project is interpolated with (the process environment over `.env` or
//! `--env-file` files), and interpolation of a whole document tree.

use indexmap::{IndexMap, IndexSet};

use super::casts::{self, Casted, Step};
use super::interpolate::{
    interpolate_within, InterpolationError, ReadingDifference, MAX_OUTPUT_BYTES,
};
use crate::diagnostic::{Diagnostic, Diagnostics, Location};
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

    /// Sets `name` over every other source (the project name Compose exposes to the files).
    pub fn set(&mut self, name: &str, value: &str) {
        self.process.insert(name.to_string(), value.to_string());
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

    /// Interpolates every string value in `node` (never keys), then casts the values of
    /// the fields compose-go types ([`casts`](super::casts)).
    pub fn interpolate(&mut self, node: &mut Node, diagnostics: &mut Diagnostics) {
        self.walk(node, &mut Vec::new(), diagnostics);
    }

    /// Interpolates `node`, found at `path`.
    fn walk(&mut self, node: &mut Node, path: &mut Vec<Step>, diagnostics: &mut Diagnostics) {
        match &mut node.value {
            Value::Seq(items) => {
                for (index, item) in items.iter_mut().enumerate() {
                    path.push(Step::Index(index));
                    self.walk(item, path, diagnostics);
                    path.pop();
                }
            }
            Value::Map(map) => {
                for (key, entry) in map.iter_mut() {
                    path.push(Step::Key(key.clone()));
                    self.walk(&mut entry.value, path, diagnostics);
                    path.pop();
                }
            }
            Value::Scalar(..) => {
                let field = field_name(path);
                if self.scalar(node, &field, diagnostics) {
                    if let Some(cast) = casts::cast_for(path) {
                        cast_scalar(node, cast, &field, diagnostics);
                    }
                }
            }
        }
    }

    /// Interpolates one scalar in place; whether it held a variable and was replaced.
    fn scalar(&mut self, node: &mut Node, field: &str, diagnostics: &mut Diagnostics) -> bool {
        let Value::Scalar(text, style) = &mut node.value else {
            return false;
        };
        if !text.contains('$') {
            return false;
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
                for difference in &result.differences {
                    diagnostics.push(reading_difference(*difference, &node.location, field));
                }
                self.budget -= result.value.len();
                *text = result.value;
                *style = ScalarStyle::String;
                true
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
                false
            }
        }
    }
}

/// The warning for a value `docker stack deploy` reads differently.
fn reading_difference(
    difference: ReadingDifference,
    location: &Location,
    field: &str,
) -> Diagnostic {
    let (message, hint) = match difference {
        ReadingDifference::DollarInArgument => (
            "a `$` inside this default is interpolated (Compose specification); docker stack deploy keeps this `$` literally",
            "write `$$` for a literal `$`",
        ),
        ReadingDifference::AlternativeOperator => (
            "docker stack deploy (docker/cli 20.10) does not know `${VAR:+…}` / `${VAR+…}` and refuses this value",
            "keep it if only stackroll reads the file",
        ),
    };
    let mut warning = Diagnostic::warning(Some(location.clone()), message).hint(hint);
    if !field.is_empty() {
        warning = warning.field(field);
    }
    warning
}

/// The dotted field name of `path` (`services.app.ports[0].target`), for messages.
fn field_name(path: &[Step]) -> String {
    let mut field = String::new();
    for step in path {
        match step {
            Step::Key(key) => {
                if !field.is_empty() {
                    field.push('.');
                }
                field.push_str(key);
            }
            Step::Index(index) => field.push_str(&format!("[{index}]")),
        }
    }
    field
}

/// Types an interpolated scalar the way its field is cast; a YAML 1.1 boolean (`yes`) is read
/// with a warning, as compose-go reads it.
fn cast_scalar(node: &mut Node, cast: casts::Cast, field: &str, diagnostics: &mut Diagnostics) {
    let Value::Scalar(text, style) = &mut node.value else {
        return;
    };
    match casts::apply(cast, text) {
        Casted::Typed(typed) => {
            *text = typed;
            *style = ScalarStyle::Plain;
        }
        Casted::LegacyBoolean(value) => {
            *text = value.to_string();
            *style = ScalarStyle::Plain;
            diagnostics.push(
                Diagnostic::warning(
                    Some(node.location.clone()),
                    format!("the variable's value reads as {value} here, but YAML 1.2 booleans are only true and false"),
                )
                .field(field)
                .hint(format!("set the variable to `{value}`")),
            );
        }
        Casted::Unchanged => {}
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
