//! Checks across the whole project that no single field can make: references to undefined
//! secrets and configs, two references with one container path, source files Swarm would
//! refuse or that lie outside the project directory (`file:` and `env_file:`), names Swarm
//! would refuse, and definitions nobody uses.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use super::normalize::{self, Rejected};
use crate::diagnostic::{Diagnostic, Diagnostics, Location};
use crate::model::node::Node;
use crate::model::{Definition, Located, ObjectKind, Project, Service, Source};

/// Longest name Swarm accepts for a secret or config.
pub const MAX_SWARM_NAME: usize = 64;
/// Room kept at the end of a versioned name for `_v<N>` (up to `_v9999`).
pub const VERSION_SUFFIX_ROOM: usize = 6;

/// Checks the project and adds every problem to `diagnostics`. References to `rejected` keys
/// were already reported with their definition.
pub fn validate(
    project: &Project,
    rejected: &Rejected,
    policy: &FilePolicy,
    diagnostics: &mut Diagnostics,
) {
    for service in project.services.values() {
        check_env_files(service, policy, diagnostics);
    }
    for kind in [ObjectKind::Secret, ObjectKind::Config] {
        let definitions = project.definitions(kind);
        for service in project.services.values() {
            check_references(service, kind, definitions, rejected, diagnostics);
        }
        for definition in definitions.values() {
            check_definition(project, definition, policy, diagnostics);
        }
    }
}

/// Data Swarm would refuse (empty, or over the kind's limit), from an `environment:` variable
/// or inline `content:`; the value itself is never shown.
fn check_data_size(
    definition: &Definition,
    size: usize,
    what: &str,
    location: &Location,
    field: &str,
    diagnostics: &mut Diagnostics,
) {
    let limit = definition.kind.max_bytes();
    let problem = if size == 0 {
        format!("{what} is empty")
    } else if size as u64 > limit {
        format!("{what} holds {size} bytes, more than {limit}")
    } else {
        return;
    };
    diagnostics.push(
        Diagnostic::error(Some(location.clone()), problem)
            .field(field)
            .hint(format!(
                "Swarm takes {} data of 1 to {limit} bytes",
                definition.kind.noun()
            )),
    );
}

/// Labels stackroll keeps for itself (`io.stackroll.`) set by the user.
fn check_reserved_labels(definition: &Definition, diagnostics: &mut Diagnostics) {
    for key in definition
        .labels
        .keys()
        .filter(|key| key.starts_with(RESERVED_LABEL_PREFIX))
    {
        diagnostics.push(
            Diagnostic::error(
                Some(definition.location.clone()),
                format!("label \"{key}\" is in stackroll's own namespace"),
            )
            .field(format!(
                "{}.{}.labels.{key}",
                definition.kind.plural(),
                definition.key
            ))
            .hint(format!(
                "stackroll sets the `{RESERVED_LABEL_PREFIX}` labels itself; use another prefix"
            )),
        );
    }
}

/// A service's references to secrets or configs of `kind`: each defined, one owner and mode
/// per object, one object per target.
fn check_references(
    service: &Service,
    kind: ObjectKind,
    definitions: &IndexMap<String, Definition>,
    rejected: &Rejected,
    diagnostics: &mut Diagnostics,
) {
    let mut targets: HashMap<String, &Location> = HashMap::new();
    for (index, reference) in service.references(kind).iter().enumerate() {
        let field = format!("services.{}.{}[{index}]", service.name, kind.plural());
        let source = &reference.source.value;
        if !definitions.contains_key(source) && !rejected.contains(&(kind, source.clone())) {
            let defined: Vec<&str> = definitions.keys().map(String::as_str).collect();
            let hint = if defined.is_empty() {
                format!("define it under the top-level `{}:` key", kind.plural())
            } else {
                format!(
                    "define it under the top-level `{}:` key, or use one of: {}",
                    kind.plural(),
                    defined.join(", ")
                )
            };
            diagnostics.push(
                Diagnostic::error(
                    Some(reference.source.location.clone()),
                    format!(
                        "{} \"{}\" is not defined",
                        kind.noun(),
                        reference.source.value
                    ),
                )
                .field(format!("{field}.source"))
                .hint(hint),
            );
        }
        let earlier = &service.references(kind)[..index];
        if let Some(twin) = earlier.iter().find(|r| {
            r.source.value == reference.source.value
                && (r.uid != reference.uid || r.gid != reference.gid || r.mode != reference.mode)
        }) {
            diagnostics.push(
                Diagnostic::warning(
                    Some(reference.location.clone()),
                    format!(
                        "{} \"{}\" is mounted twice with a different owner or mode",
                        kind.noun(),
                        reference.source.value
                    ),
                )
                .field(field.clone())
                .hint(format!(
                    "the engine writes one file per {} and task, so both targets get one owner and mode: stackroll gives both the most restrictive of this one and {}; use one mode, or two {}",
                    kind.noun(),
                    twin.location,
                    kind.plural()
                )),
            );
        }
        let target = kind.effective_target(&reference.target);
        if let Some(first) = targets.get(&target) {
            diagnostics.push(
                Diagnostic::error(
                    Some(reference.location.clone()),
                    format!("conflicting target \"{target}\""),
                )
                .field(field)
                .hint(format!(
                    "{first} already mounts a {} there; give one of them another `target:`",
                    kind.noun()
                )),
            );
        } else {
            targets.insert(target, &reference.location);
        }
    }
}

/// A secret or config definition: its source, its swarm name, and whether anything uses it.
fn check_definition(
    project: &Project,
    definition: &Definition,
    policy: &FilePolicy,
    diagnostics: &mut Diagnostics,
) {
    let kind = definition.kind;
    check_source(definition, policy, diagnostics);
    if let Some(name) = &definition.name {
        let room = if definition.is_external() {
            0
        } else {
            VERSION_SUFFIX_ROOM
        };
        if let Some(problem) = swarm_name_problem(&name.value, room) {
            diagnostics.push(
                Diagnostic::error(
                    Some(name.location.clone()),
                    format!("invalid swarm name {:?}: {problem}", name.value),
                )
                .field(format!("{}.{}.name", kind.plural(), definition.key))
                .hint("Swarm names use letters, digits, `-`, `_` and `.`, start and end with a letter or digit, and are at most 64 characters"),
            );
        }
    }
    let used = project.services.values().any(|service| {
        service
            .references(kind)
            .iter()
            .any(|r| r.source.value == definition.key)
            || (kind == ObjectKind::Config
                && credential_spec_config(service) == Some(&definition.key))
    });
    if !used {
        diagnostics.push(
            Diagnostic::warning(
                Some(definition.location.clone()),
                format!(
                    "{} \"{}\" is declared but not used",
                    kind.noun(),
                    definition.key
                ),
            )
            .field(format!("{}.{}", kind.plural(), definition.key))
            .hint("reference it from a service or remove it"),
        );
    }
}

/// The label prefix stackroll keeps for itself.
const RESERVED_LABEL_PREFIX: &str = "io.stackroll.";

/// The config a service's `credential_spec: {config: KEY}` names.
fn credential_spec_config(service: &crate::model::Service) -> Option<&String> {
    let entry = service
        .fields
        .get("credential_spec")?
        .as_map()?
        .get("config")?;
    match &entry.value.value {
        crate::model::node::Value::Scalar(text, _) => Some(text),
        _ => None,
    }
}

/// Why Swarm would refuse `name` (with `room` characters kept free for a version suffix).
pub fn swarm_name_problem(name: &str, room: usize) -> Option<String> {
    let limit = MAX_SWARM_NAME - room;
    if name.is_empty() {
        return Some("it is empty".into());
    }
    if name.len() > limit {
        return Some(if room == 0 {
            format!(
                "it is {} characters long, at most {limit} are allowed",
                name.len()
            )
        } else {
            format!(
                "it is {} characters long, at most {limit} are allowed so that the version suffix `_vN` fits",
                name.len()
            )
        });
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Some(format!("{bad:?} is not allowed"));
    }
    let first = name.chars().next().expect("not empty");
    let last = name.chars().last().expect("not empty");
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return Some("it must start and end with a letter or digit".into());
    }
    None
}

/// Longest name Swarm accepts for a service or network (a DNS label).
pub const MAX_DNS_NAME: usize = 63;

/// Why Swarm would refuse `name` for a service or network: swarmkit holds those to a DNS
/// label, at most 63 characters and no `.` (secrets and configs may have one).
pub fn dns_name_problem(name: &str) -> Option<String> {
    if name.contains('.') {
        return Some("'.' is not allowed in service and network names".into());
    }
    if name.len() > MAX_DNS_NAME {
        return Some(format!(
            "it is {} characters long, at most {MAX_DNS_NAME} are allowed",
            name.len()
        ));
    }
    swarm_name_problem(name, 0)
}

/// Where secret, config and env files may come from.
#[derive(Debug, Clone)]
pub struct FilePolicy {
    /// The project directory (the first compose file's directory).
    pub project_dir: PathBuf,
    /// Whether files may lie, or symlinks lead, outside the project directory
    /// (`--allow-external-files`).
    pub allow_external: bool,
}

impl FilePolicy {
    /// Where [`read::read_file`](super::read::read_file) may open a file under this policy.
    pub fn containment(&self) -> super::read::Containment<'_> {
        if self.allow_external {
            super::read::Containment::Anywhere
        } else {
            super::read::Containment::Inside(&self.project_dir)
        }
    }
}

/// How a resolved path stands with the project directory.
enum Placement {
    /// Inside, written and resolved (or it does not exist yet, and is written inside).
    Inside,
    /// Written outside the project directory (`../x`, `/etc/x`), and not really inside it.
    Outside,
    /// Written inside, but a symlink leads outside, to `real` (outside `project`).
    SymlinkOutside { real: PathBuf, project: PathBuf },
}

impl FilePolicy {
    /// Where the absolute `path` lies: as written (lexically normalized) and as the kernel
    /// resolves it (`dir/link/..` is not `dir`). A path written outside counts as inside when
    /// its real path is inside the real project directory (the project was reached through a
    /// symlink).
    fn placement(&self, path: &Path) -> Placement {
        let written = normalize::absolute_path(&self.project_dir, path);
        let real = path
            .canonicalize()
            .ok()
            .zip(self.project_dir.canonicalize().ok());
        let real_inside = real
            .as_ref()
            .map(|(real, project)| real.starts_with(project));
        if !written.starts_with(&self.project_dir) {
            return match real_inside {
                Some(true) => Placement::Inside,
                _ => Placement::Outside,
            };
        }
        match real {
            Some((real, project)) if !real.starts_with(&project) => {
                Placement::SymlinkOutside { real, project }
            }
            _ => Placement::Inside,
        }
    }

    /// The error for `path` when it may not be used, or None.
    fn refusal(&self, path: &Located<PathBuf>, what: &str, field: &str) -> Option<Diagnostic> {
        if self.allow_external {
            return None;
        }
        let message = match self.placement(&path.value) {
            Placement::Inside => return None,
            Placement::Outside => format!(
                "{what} {} is outside the project directory {}",
                path.value.display(),
                self.project_dir.display()
            ),
            Placement::SymlinkOutside { real, project } => format!(
                "{} is a symlink to {}, outside the project directory {}",
                path.value.display(),
                real.display(),
                project.display()
            ),
        };
        Some(
            Diagnostic::error(Some(path.location.clone()), message)
                .field(field)
                .hint("keep the files a project reads inside its directory (the first compose file's), or pass --allow-external-files"),
        )
    }
}

/// Refuses `env_file:` paths outside the project directory. Their shape and contents are
/// checked where the container environment is built.
fn check_env_files(service: &Service, policy: &FilePolicy, diagnostics: &mut Diagnostics) {
    let Some(node) = service.fields.get("env_file") else {
        return;
    };
    let field = format!("services.{}.env_file", service.name);
    for (path, item_field) in env_file_paths(node, &field) {
        if let Some(refusal) = policy.refusal(&path, "env file", &item_field) {
            diagnostics.push(refusal);
        }
    }
}

/// The paths `env_file:` names (a string, a list of strings, or a list of `{path, ...}`),
/// joined to the directory of the file that names them as they are read (not normalized),
/// with their fields.
fn env_file_paths(node: &Node, field: &str) -> Vec<(Located<PathBuf>, String)> {
    let resolved = |path_node: &Node, field: String| {
        let path = path_node.scalar_text()?;
        let value = path_node.location.file.dir.join(path);
        let location = path_node.location.clone();
        Some((Located { value, location }, field))
    };
    let Some(items) = node.as_seq() else {
        return resolved(node, field.to_string()).into_iter().collect();
    };
    let mut paths = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let item_field = format!("{field}[{index}]");
        let found = match item.as_map().and_then(|map| map.get("path")) {
            Some(entry) => resolved(&entry.value, format!("{item_field}.path")),
            None => resolved(item, item_field),
        };
        paths.extend(found);
    }
    paths
}

fn check_source(definition: &Definition, policy: &FilePolicy, diagnostics: &mut Diagnostics) {
    check_reserved_labels(definition, diagnostics);
    let path = match &definition.source {
        Source::File(path) => path,
        Source::Environment { variable, value } => {
            let field = format!(
                "{}.{}.environment",
                definition.kind.plural(),
                definition.key
            );
            let what = format!("variable {}", variable.value);
            check_data_size(
                definition,
                value.len(),
                &what,
                &variable.location,
                &field,
                diagnostics,
            );
            return;
        }
        Source::Content(value) => {
            let field = format!("{}.{}.content", definition.kind.plural(), definition.key);
            check_data_size(
                definition,
                value.len(),
                "content",
                &definition.location,
                &field,
                diagnostics,
            );
            return;
        }
        Source::External | Source::Driver(_) => return,
    };
    let field = format!("{}.{}.file", definition.kind.plural(), definition.key);
    // Checked first: a file outside is not even looked at.
    if let Some(refusal) = policy.refusal(path, definition.kind.noun(), &field) {
        diagnostics.push(refusal);
        return;
    }
    if let Some(problem) = file_problem(&path.value, definition.kind.max_bytes()) {
        diagnostics.push(
            Diagnostic::error(
                Some(path.location.clone()),
                format!("{}: {problem}", path.value.display()),
            )
            .field(field)
            .hint(format!(
                "a {} file must be a regular file holding 1 to {} bytes",
                definition.kind.noun(),
                definition.kind.max_bytes()
            )),
        );
        return;
    }
    if definition.kind == ObjectKind::Secret {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(metadata) = std::fs::metadata(&path.value) {
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                diagnostics.push(
                    Diagnostic::warning(
                        Some(path.location.clone()),
                        format!(
                            "secret file {} is readable by other users (mode {mode:04o})",
                            path.value.display()
                        ),
                    )
                    .field(field)
                    .hint(format!("chmod 600 {}", path.value.display())),
                );
            }
        }
    }
}

fn file_problem(path: &Path, max_bytes: u64) -> Option<String> {
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Some("file not found".into())
        }
        Err(error) => return Some(format!("cannot read: {error}")),
    };
    if metadata.is_dir() {
        return Some("is a directory".into());
    }
    if !metadata.is_file() {
        return Some(format!(
            "is {}, not a regular file",
            super::read::kind_name(&metadata.file_type())
        ));
    }
    match metadata.len() {
        0 => Some("file is empty".into()),
        len if len > max_bytes => Some(format!(
            "file is too large ({len} bytes, at most {max_bytes})"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swarm_names() {
        assert_eq!(swarm_name_problem("demo_db", 0), None);
        assert!(swarm_name_problem("_db", 0).is_some());
        assert!(swarm_name_problem("db-", 0).is_some());
        assert!(swarm_name_problem("d b", 0).is_some());
        assert!(swarm_name_problem(&"a".repeat(64), 0).is_none());
        assert!(swarm_name_problem(&"a".repeat(65), 0).is_some());
        assert!(swarm_name_problem(&"a".repeat(59), VERSION_SUFFIX_ROOM).is_some());
        assert!(swarm_name_problem(&"a".repeat(58), VERSION_SUFFIX_ROOM).is_none());
        assert!(swarm_name_problem("demo_web.v2", 0).is_none());
        assert!(dns_name_problem("demo_web.v2").is_some());
        assert!(dns_name_problem("demo_web-v2__x").is_none());
        assert!(dns_name_problem(&"a".repeat(63)).is_none());
        assert!(dns_name_problem(&"a".repeat(64)).is_some());
    }
}
