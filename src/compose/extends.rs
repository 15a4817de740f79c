//! `extends:` on services, per the Compose specification (05-services.md "extends"): a service
//! takes another service (of the same file, or of `file:`, relative to the file that says
//! `extends`) as its base and is merged over it with the rules of several `-c` files
//! (`merge`). The base's own `extends` is resolved first; a cycle is an error at the `extends`
//! that closes it. Relative paths in a base from another file keep resolving against that
//! file's directory, since every value remembers the file it was written in.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use super::merge;
use crate::diagnostic::{Diagnostic, Diagnostics, Location};
use crate::model::node::{Entry, Node, Value};

/// Reads another compose file for `extends: {file:}` (asked for at the `Location`): parsed and
/// interpolated, with the problems found on the way; `None` when it cannot be read.
pub type FileReader<'a> = dyn FnMut(&Path, &Location) -> (Option<Node>, Vec<Diagnostic>) + 'a;

/// Resolves every `extends` of the services of `document`, whose file is `path`.
pub fn apply(
    document: &mut Node,
    path: &Path,
    read: &mut FileReader,
    diagnostics: &mut Diagnostics,
) {
    let Some(services) = services(document).cloned() else {
        return;
    };
    let mut resolver = Resolver {
        read,
        files: IndexMap::new(),
        in_cycles: Vec::new(),
        diagnostics,
    };
    let display = document.location.file.display.clone();
    resolver
        .files
        .insert(path.to_path_buf(), (services.clone(), display));
    let mut resolved = IndexMap::new();
    for (name, entry) in &services {
        if entry
            .value
            .as_map()
            .is_some_and(|map| map.contains_key("extends"))
        {
            let mut chain = Vec::new();
            if let Some(service) = resolver.service(path, name, &entry.key_location, &mut chain) {
                resolved.insert(name.clone(), service);
            }
        }
    }
    let Some(Value::Map(top)) = Some(&mut document.value) else {
        return;
    };
    if let Some(Value::Map(map)) = top.get_mut("services").map(|entry| &mut entry.value.value) {
        for (name, service) in resolved {
            if let Some(entry) = map.get_mut(&name) {
                entry.value = service;
            }
        }
    }
}

/// The `services:` mapping of a document.
fn services(document: &Node) -> Option<&IndexMap<String, Entry>> {
    document.as_map()?.get("services")?.value.as_map()
}

struct Resolver<'r, 'a> {
    read: &'r mut FileReader<'a>,
    /// The services of each file read, and the file's name in messages, by path.
    files: IndexMap<PathBuf, (IndexMap<String, Entry>, String)>,
    /// Services in a cycle already reported.
    in_cycles: Vec<(PathBuf, String)>,
    diagnostics: &'r mut Diagnostics,
}

impl Resolver<'_, '_> {
    /// Service `name` of the file at `path` with its `extends` resolved; `at` is where it is
    /// asked for, `chain` the services being resolved (for cycles).
    fn service(
        &mut self,
        path: &Path,
        name: &str,
        at: &Location,
        chain: &mut Vec<(PathBuf, String)>,
    ) -> Option<Node> {
        let key = (path.to_path_buf(), name.to_string());
        if chain.contains(&key) {
            if self.in_cycles.contains(&key) {
                return None;
            }
            self.in_cycles.extend(chain.iter().cloned());
            self.diagnostics.push(
                Diagnostic::error(
                    Some(at.clone()),
                    format!(
                        "`extends` cycle: service \"{name}\" extends itself through {}",
                        chain
                            .iter()
                            .map(|(_, s)| format!("\"{s}\""))
                            .collect::<Vec<_>>()
                            .join(" → ")
                    ),
                )
                .hint("break the cycle: a base service must not extend the services built on it"),
            );
            return None;
        }
        let (known, display) = self.files.get(path)?;
        let Some(entry) = known.get(name).cloned() else {
            let display = display.clone();
            self.diagnostics.push(
                Diagnostic::error(
                    Some(at.clone()),
                    format!("`extends` names service \"{name}\", which {display} does not define"),
                )
                .hint("check the service name and `file:`"),
            );
            return None;
        };
        let mut service = entry.value;
        let Some(Value::Map(map)) = Some(&mut service.value) else {
            return Some(service);
        };
        let Some(extends) = map.shift_remove("extends") else {
            return Some(service);
        };
        let (base_name, base_file) = self.target(&extends)?;
        let base_path = match base_file {
            Some(file) => {
                let base_path = super::normalize::absolute_path(
                    &extends.value.location.file.dir,
                    Path::new(&file),
                );
                if !self.files.contains_key(&base_path) {
                    let (document, problems) = (self.read)(&base_path, &extends.value.location);
                    problems
                        .into_iter()
                        .for_each(|problem| self.diagnostics.push(problem));
                    let document = document?;
                    let services = services(&document).cloned().unwrap_or_default();
                    let display = document.location.file.display.clone();
                    self.files.insert(base_path.clone(), (services, display));
                }
                base_path
            }
            None => path.to_path_buf(),
        };
        chain.push(key);
        let base = self.service(&base_path, &base_name, &extends.value.location, chain);
        chain.pop();
        let mut merge_path = vec!["services".to_string(), name.to_string()];
        Some(merge::merge_at(base?, service, &mut merge_path))
    }

    /// The service and file an `extends` names: `extends: NAME` or `{service, file}`.
    fn target(&mut self, extends: &Entry) -> Option<(String, Option<String>)> {
        let node = &extends.value;
        if let Some(name) = node.scalar_text() {
            return Some((name.to_string(), None));
        }
        let map = node.as_map();
        let text = |key: &str| {
            map.and_then(|m| m.get(key))
                .and_then(|e| e.value.scalar_text())
                .map(str::to_string)
        };
        match text("service") {
            Some(service) => Some((service, text("file"))),
            None => {
                self.diagnostics.push(
                    Diagnostic::error(Some(node.location.clone()), "`extends` needs a `service:`")
                        .hint("write `extends: {service: base}` or `extends: {file: common.yaml, service: base}`"),
                );
                None
            }
        }
    }
}
