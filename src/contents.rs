//! The data of every secret and config the stack creates, read once before planning: from
//! files, from the environment (already in the model), or inline content. Data is held in
//! [`SensitiveBytes`] and never shown; descriptions say only where it comes from and its size.

use std::collections::HashMap;
use std::path::Path;

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::model::{ObjectKey, ObjectKind, Project, SensitiveBytes, Source};

/// Data and a description for each (kind, key).
#[derive(Debug, Default)]
pub struct Contents {
    data: HashMap<ObjectKey, SensitiveBytes>,
    descriptions: HashMap<ObjectKey, String>,
}

impl Contents {
    /// Reads the data of every non-external definition. `working_dir` shortens file paths in
    /// descriptions.
    pub fn read(project: &Project, working_dir: &Path) -> Result<Contents, Diagnostics> {
        let mut contents = Contents::default();
        let mut problems = Diagnostics::default();
        for kind in [ObjectKind::Secret, ObjectKind::Config] {
            for definition in project.definitions(kind).values() {
                let key = ObjectKey::new(kind, &definition.key);
                let (data, description) = match &definition.source {
                    Source::External => continue,
                    Source::Driver(driver) => {
                        contents
                            .descriptions
                            .insert(key, format!("driver {driver}, content not known"));
                        continue;
                    }
                    Source::File(path) => match std::fs::read(&path.value) {
                        Ok(bytes) => {
                            let shown = match path.value.strip_prefix(working_dir) {
                                Ok(relative) => format!("./{}", relative.display()),
                                Err(_) => path.value.display().to_string(),
                            };
                            let size = bytes.len();
                            (
                                SensitiveBytes::new(bytes),
                                format!("file {shown}, {size} bytes"),
                            )
                        }
                        Err(error) => {
                            problems.push(
                                Diagnostic::error(
                                    Some(path.location.clone()),
                                    format!("cannot read {}: {error}", path.value.display()),
                                )
                                .field(format!(
                                    "{}.{}.file",
                                    kind.plural(),
                                    definition.key
                                )),
                            );
                            continue;
                        }
                    },
                    Source::Environment { variable, value } => (
                        value.clone(),
                        format!("environment {}, {} bytes", variable.value, value.len()),
                    ),
                    Source::Content(value) => (
                        value.clone(),
                        format!("inline content, {} bytes", value.len()),
                    ),
                };
                contents.data.insert(key.clone(), data);
                contents.descriptions.insert(key, description);
            }
        }
        if problems.has_errors() {
            return Err(problems);
        }
        Ok(contents)
    }

    /// The data of (kind, key), if it has any (external and driver-backed ones have none).
    pub fn get(&self, kind: ObjectKind, key: &str) -> Option<&SensitiveBytes> {
        self.data.get(&ObjectKey::new(kind, key))
    }

    /// Where the data comes from and its size, e.g. `file ./db.txt, 17 bytes`.
    pub fn describe(&self, kind: ObjectKind, key: &str) -> String {
        self.descriptions
            .get(&ObjectKey::new(kind, key))
            .cloned()
            .unwrap_or_default()
    }
}
