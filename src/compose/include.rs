//! `include:`, per the Compose specification (14-include.md): each entry names one compose file
//! (or several, merged like `-c` files) loaded as a project of its own, interpolated with its
//! own environment (the process environment over its `env_file`s, else the `.env` of its project
//! directory), with relative paths resolved against its `project_directory` (default: the
//! directory of its first file); its own `include` and `extends` are resolved, then its
//! services, networks, volumes, secrets and configs join the including file. A resource the
//! including file also defines is an error, and so is an include cycle, each at the `include`
//! entry.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::environment::TreeInterpolator;
use super::{extends, merge, normalize, read_environment_files, read_text, yaml, LoadOptions};
use crate::diagnostic::{Diagnostic, Diagnostics, Location, SourceFile};
use crate::model::node::{Entry, Node, Value};

/// Most compose files a project may include, all levels together.
pub const MAX_INCLUDED_FILES: usize = 256;

/// The top-level sections an included project adds to the including one.
const SECTIONS: &[&str] = &["services", "networks", "volumes", "secrets", "configs"];

/// What include processing carries along: the options (for the process environment) and how
/// many files were included so far.
pub struct Includer<'a> {
    /// The load options.
    pub options: &'a LoadOptions,
    /// Files included so far.
    pub count: usize,
}

/// One `include` entry, read.
struct IncludeEntry {
    /// The files, absolute, in order.
    paths: Vec<PathBuf>,
    /// Where relative paths in them resolve.
    project_directory: PathBuf,
    /// Env files for their interpolation; `None`: the `.env` of the project directory.
    env_files: Option<Vec<PathBuf>>,
    /// Where the entry is.
    location: Location,
}

impl Includer<'_> {
    /// Resolves the `include:` of `document` (the file at `path`, included through `chain`).
    pub fn apply(&mut self, document: &mut Node, chain: &[PathBuf], diagnostics: &mut Diagnostics) {
        let Value::Map(top) = &mut document.value else {
            return;
        };
        let Some(include) = top.shift_remove("include") else {
            return;
        };
        for entry in entries(&include.value, diagnostics) {
            if let Some(included) = self.load(&entry, chain, diagnostics) {
                add_resources(top, included, &entry.location, diagnostics);
            }
        }
    }

    /// Loads one entry's files as a project: interpolated, included, extended, merged.
    fn load(
        &mut self,
        entry: &IncludeEntry,
        chain: &[PathBuf],
        diagnostics: &mut Diagnostics,
    ) -> Option<Node> {
        let env_files: Vec<(String, PathBuf)> = match &entry.env_files {
            Some(files) => files
                .iter()
                .map(|path| (path.display().to_string(), path.clone()))
                .collect(),
            None => {
                let default = entry.project_directory.join(".env");
                if default.exists() {
                    vec![(default.display().to_string(), default)]
                } else {
                    Vec::new()
                }
            }
        };
        let environment = read_environment_files(
            self.options,
            env_files,
            &entry.project_directory,
            diagnostics,
        );
        let mut merged: Option<Node> = None;
        for path in &entry.paths {
            if chain.contains(path) {
                diagnostics.push(
                    Diagnostic::error(
                        Some(entry.location.clone()),
                        format!(
                            "include cycle: {} is already being included",
                            super::display_path(path, &self.options.working_dir)
                        ),
                    )
                    .hint("remove the `include` that leads back to a file already being included"),
                );
                return None;
            }
            self.count += 1;
            if self.count > MAX_INCLUDED_FILES {
                diagnostics.push(
                    Diagnostic::error(
                        Some(entry.location.clone()),
                        format!("more than {MAX_INCLUDED_FILES} included files"),
                    )
                    .hint("include fewer files"),
                );
                return None;
            }
            let text = match read_text(path) {
                Ok(text) => text,
                Err(problem) => {
                    diagnostics.push(
                        Diagnostic::error(
                            Some(entry.location.clone()),
                            format!(
                                "cannot include {}: {problem}",
                                super::display_path(path, &self.options.working_dir)
                            ),
                        )
                        .hint("check the path; it is relative to the including file"),
                    );
                    return None;
                }
            };
            let file = SourceFile::new(
                super::display_path(path, &self.options.working_dir),
                &entry.project_directory,
            );
            let (document, errors) = yaml::parse(&text, &file);
            errors.into_iter().for_each(|error| diagnostics.push(error));
            let mut document = document?;
            let mut interpolator = TreeInterpolator::new(&environment);
            interpolator.interpolate(&mut document, diagnostics);
            let mut deeper = chain.to_vec();
            deeper.push(path.clone());
            self.apply(&mut document, &deeper, diagnostics);
            let working_dir = &self.options.working_dir;
            let mut reader = |base: &Path, at: &Location| {
                let file = SourceFile::new(
                    super::display_path(base, working_dir),
                    &entry.project_directory,
                );
                read_base(base, at, &file, &mut interpolator)
            };
            extends::apply(&mut document, path, &mut reader, diagnostics);
            merged = Some(match merged {
                None => document,
                Some(earlier) => merge::merge_documents(earlier, document),
            });
        }
        merged
    }
}

/// Reads, parses and interpolates the compose file an `extends: {file:}` names.
pub fn read_base(
    path: &Path,
    at: &Location,
    file: &Arc<SourceFile>,
    interpolator: &mut TreeInterpolator,
) -> (Option<Node>, Vec<Diagnostic>) {
    let text = match read_text(path) {
        Ok(text) => text,
        Err(problem) => {
            let error = Diagnostic::error(
                Some(at.clone()),
                format!(
                    "cannot read the `extends` file {}: {problem}",
                    path.display()
                ),
            )
            .hint("`file:` is relative to the file that says `extends`");
            return (None, vec![error]);
        }
    };
    let (document, errors) = yaml::parse(&text, file);
    let mut diagnostics = Diagnostics::default();
    errors.into_iter().for_each(|error| diagnostics.push(error));
    let document = document.map(|mut document| {
        interpolator.interpolate(&mut document, &mut diagnostics);
        document
    });
    (document, diagnostics.iter().cloned().collect())
}

/// Reads the entries of `include:`: a path, or `{path, project_directory, env_file}`.
fn entries(node: &Node, diagnostics: &mut Diagnostics) -> Vec<IncludeEntry> {
    let Some(items) = node.as_seq() else {
        diagnostics.push(
            Diagnostic::error(
                Some(node.location.clone()),
                format!("include must be a list, not {}", node.kind_name()),
            )
            .field("include")
            .hint("write `include:` followed by `- path/to/compose.yaml` items"),
        );
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| entry(item, diagnostics))
        .collect()
}

fn entry(item: &Node, diagnostics: &mut Diagnostics) -> Option<IncludeEntry> {
    let dir = item.location.file.dir.clone();
    let strings = |node: &Node| -> Option<Vec<String>> {
        match node.as_seq() {
            Some(items) => items
                .iter()
                .map(|i| i.scalar_text().map(str::to_string))
                .collect(),
            None => node.scalar_text().map(|text| vec![text.to_string()]),
        }
    };
    let absolute = |text: &String| normalize::absolute_path(&dir, Path::new(text));
    let (paths, project_directory, env_files) = match item.as_map() {
        None => (strings(item), None, None),
        Some(map) => {
            let get = |key: &str| map.get(key).map(|entry: &Entry| &entry.value);
            (
                get("path").and_then(strings),
                get("project_directory")
                    .and_then(|n| n.scalar_text())
                    .map(|t| absolute(&t.to_string())),
                get("env_file")
                    .and_then(strings)
                    .map(|files| files.iter().map(absolute).collect()),
            )
        }
    };
    let paths: Vec<PathBuf> = match paths {
        Some(paths) if !paths.is_empty() => paths.iter().map(absolute).collect(),
        _ => {
            diagnostics.push(
                Diagnostic::error(Some(item.location.clone()), "an include entry needs a path")
                    .field("include")
                    .hint("write `- path/to/compose.yaml` or `- path: path/to/compose.yaml`"),
            );
            return None;
        }
    };
    let project_directory = project_directory
        .unwrap_or_else(|| paths[0].parent().map(Path::to_path_buf).unwrap_or(dir));
    Some(IncludeEntry {
        paths,
        project_directory,
        env_files,
        location: item.location.clone(),
    })
}

/// Adds the included project's resources to the including file's top level; one it already
/// has is an error at the include entry.
fn add_resources(
    top: &mut indexmap::IndexMap<String, Entry>,
    included: Node,
    at: &Location,
    diagnostics: &mut Diagnostics,
) {
    let Value::Map(mut sections) = included.value else {
        return;
    };
    for section in SECTIONS {
        let Some(Entry {
            value:
                Node {
                    value: Value::Map(resources),
                    ..
                },
            key_location,
        }) = sections.shift_remove(*section)
        else {
            continue;
        };
        let target = top.entry(section.to_string()).or_insert_with(|| Entry {
            key_location: key_location.clone(),
            value: Node::new(Value::Map(Default::default()), key_location.clone()),
        });
        if target.value.is_null() {
            target.value = Node::new(Value::Map(Default::default()), key_location.clone());
        }
        let Value::Map(existing) = &mut target.value.value else {
            continue;
        };
        for (key, resource) in resources {
            if let Some(twin) = existing.get(&key) {
                diagnostics.push(
                    Diagnostic::error(
                        Some(twin.key_location.clone()),
                        format!(
                            "{section}.{key} is also defined by an included file ({})",
                            resource.key_location.file.display
                        ),
                    )
                    .hint(format!("rename one of them; the include is at {at}")),
                );
                continue;
            }
            existing.insert(key, resource);
        }
    }
}
