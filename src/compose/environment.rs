//! The variables a project is interpolated with (the process environment over `.env` or
//! `--env-file` files), and interpolation of a whole document tree.

use indexmap::{IndexMap, IndexSet};

use super::interpolate::interpolate;
use super::node::{Node, ScalarStyle, Value};
use crate::diagnostic::{Diagnostic, Diagnostics};

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

    /// The value of `name`, if set (possibly empty).
    pub fn get(&self, name: &str) -> Option<String> {
        self.process
            .get(name)
            .or_else(|| self.files.get(name))
            .cloned()
    }
}

/// Interpolates every string value in `node` (never keys). Unset variables without a default
/// are warned about once per name across calls (`warned`); failures become errors located at
/// the scalar that holds them.
pub fn interpolate_tree(
    node: &mut Node,
    environment: &Environment,
    warned: &mut IndexSet<String>,
    diagnostics: &mut Diagnostics,
) {
    match &mut node.value {
        Value::Seq(items) => {
            for item in items {
                interpolate_tree(item, environment, warned, diagnostics);
            }
        }
        Value::Map(map) => {
            for entry in map.values_mut() {
                interpolate_tree(&mut entry.value, environment, warned, diagnostics);
            }
        }
        Value::Scalar(text, style) => {
            if !text.contains('$') {
                return;
            }
            match interpolate(text, &|name| environment.get(name)) {
                Ok(result) => {
                    for name in result.unset {
                        if warned.insert(name.clone()) {
                            diagnostics.push(
                                Diagnostic::warning(
                                    Some(node.location.clone()),
                                    format!("variable \"{name}\" is not set; substituting an empty string"),
                                )
                                .hint(format!("set {name} in the environment or in .env, or write ${{{name}:-default}}")),
                            );
                        }
                    }
                    *text = result.value;
                    *style = ScalarStyle::String;
                }
                Err(error) => diagnostics.push(
                    Diagnostic::error(Some(node.location.clone()), error.to_string())
                        .hint("set the variable, or write `$$` for a literal `$`"),
                ),
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
