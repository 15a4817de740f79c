//! Turning a merged, interpolated document into the [`Project`] model: short syntax expanded,
//! defaults filled (`target` = source key, `uid`/`gid` = "0", `mode` = 0o444), `file:` paths made
//! absolute against the directory of the file that declared them, modes read the way
//! compose-go reads them. Every shape problem becomes a located diagnostic.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use indexmap::IndexMap;

use super::environment::Environment;
use super::scalars::string_field;
use crate::diagnostic::{Diagnostic, Diagnostics, Location};
use crate::model::node::{Entry, Node, ScalarStyle, Typed, Value};
use crate::model::{
    Definition, FileReference, Located, ObjectKind, Project, SensitiveBytes, Service, Source,
};

/// Default permission bits of a mounted secret or config (0o444).
pub const DEFAULT_MODE: u32 = 0o444;

const TOP_LEVEL_KEYS: &[&str] = &[
    "name", "version", "include", "services", "networks", "volumes", "secrets", "configs",
];
const DEFINITION_KEYS: &[&str] = &[
    "file",
    "environment",
    "external",
    "content",
    "driver",
    "name",
    "labels",
    "driver_opts",
    "template_driver",
];
const REFERENCE_KEYS: &[&str] = &["source", "target", "uid", "gid", "mode"];

/// Secret and config keys that are declared but whose definition was rejected: references to
/// them are not reported again as undefined.
pub type Rejected = HashSet<(ObjectKind, String)>;

/// Builds the project model from a whole document. Problems are added to `diagnostics`.
pub fn normalize(
    document: &Node,
    environment: &Environment,
    diagnostics: &mut Diagnostics,
) -> (Project, Rejected) {
    let mut project = Project::default();
    let mut rejected = Rejected::new();
    let Some(top) = document.as_map() else {
        let message = if document.is_null() {
            "empty compose file".to_string()
        } else {
            format!(
                "a compose file must be a mapping, not {}",
                document.kind_name()
            )
        };
        diagnostics.push(
            Diagnostic::error(Some(document.location.clone()), message)
                .hint("start with `services:`"),
        );
        return (project, rejected);
    };
    check_top_level_keys(top, diagnostics);
    if let Some(name) = top.get("name") {
        // Checked here; the project's name is decided by `project_name`.
        string_field(&name.value, "name", diagnostics);
    }
    project.networks = top.get("networks").map(|entry| entry.value.clone());
    project.volumes = top.get("volumes").map(|entry| entry.value.clone());
    for kind in [ObjectKind::Secret, ObjectKind::Config] {
        let Some(section) = top.get(kind.plural()) else {
            continue;
        };
        let Some(map) = mapping(&section.value, kind.plural(), diagnostics) else {
            continue;
        };
        let definitions = definitions(kind, map, environment, &mut rejected, diagnostics);
        match kind {
            ObjectKind::Secret => project.secrets = definitions,
            ObjectKind::Config => project.configs = definitions,
        }
    }
    if let Some(services) = top.get("services") {
        if let Some(map) = mapping(&services.value, "services", diagnostics) {
            for (name, entry) in map {
                if let Some(service) = service(name, entry, diagnostics) {
                    project.services.insert(name.clone(), service);
                }
            }
        }
    }
    (project, rejected)
}

/// Reports top-level keys Compose does not have, and the obsolete `version`.
fn check_top_level_keys(top: &IndexMap<String, Entry>, diagnostics: &mut Diagnostics) {
    for (key, entry) in top {
        if key.starts_with("x-") {
            continue;
        }
        if !TOP_LEVEL_KEYS.contains(&key.as_str()) {
            diagnostics.push(
                Diagnostic::error(
                    Some(entry.key_location.clone()),
                    format!("unknown top-level key \"{key}\""),
                )
                .hint(format!(
                    "allowed: {}, or an extension starting with `x-`",
                    TOP_LEVEL_KEYS.join(", ")
                )),
            );
        }
    }
    if let Some(version) = top.get("version") {
        diagnostics.push(
            Diagnostic::warning(
                Some(version.key_location.clone()),
                "the top-level `version` key is obsolete and ignored",
            )
            .field("version")
            .hint("remove it"),
        );
    }
}

/// The secret or config definitions of one top-level section; the keys of those that cannot
/// be read go to `rejected`, so references to them are not reported again.
fn definitions(
    kind: ObjectKind,
    map: &IndexMap<String, Entry>,
    environment: &Environment,
    rejected: &mut Rejected,
    diagnostics: &mut Diagnostics,
) -> IndexMap<String, Definition> {
    map.iter()
        .filter_map(|(key, entry)| {
            let field = format!("{}.{key}", kind.plural());
            let Some(definition) = definition(kind, key, entry, &field, environment, diagnostics)
            else {
                rejected.insert((kind, key.clone()));
                return None;
            };
            Some((key.clone(), definition))
        })
        .collect()
}

fn service(name: &str, entry: &Entry, diagnostics: &mut Diagnostics) -> Option<Service> {
    let field = format!("services.{name}");
    let map = mapping(&entry.value, &field, diagnostics)?;
    let mut service = Service {
        name: name.to_string(),
        fields: IndexMap::new(),
        secrets: Vec::new(),
        configs: Vec::new(),
        location: entry.key_location.clone(),
    };
    for (key, value) in map {
        match key.as_str() {
            "secrets" => {
                service.secrets = references(ObjectKind::Secret, value, &field, diagnostics)
            }
            "configs" => {
                service.configs = references(ObjectKind::Config, value, &field, diagnostics)
            }
            _ => {
                service.fields.insert(key.clone(), value.value.clone());
            }
        }
    }
    Some(service)
}

fn references(
    kind: ObjectKind,
    entry: &Entry,
    service_field: &str,
    diagnostics: &mut Diagnostics,
) -> Vec<FileReference> {
    let list_field = format!("{service_field}.{}", kind.plural());
    let Some(items) = entry.value.as_seq() else {
        if !entry.value.is_null() {
            diagnostics.push(
                Diagnostic::error(
                    Some(entry.value.location.clone()),
                    format!(
                        "{} must be a list, not {}",
                        kind.plural(),
                        entry.value.kind_name()
                    ),
                )
                .field(list_field)
                .hint(format!(
                    "write `{}:` followed by `- KEY` items",
                    kind.plural()
                )),
            );
        }
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(index, item)| {
            reference(kind, item, &format!("{list_field}[{index}]"), diagnostics)
        })
        .collect()
}

fn reference(
    kind: ObjectKind,
    item: &Node,
    field: &str,
    diagnostics: &mut Diagnostics,
) -> Option<FileReference> {
    let Some(map) = item.as_map() else {
        return short_reference(kind, item, field, diagnostics);
    };
    let location = item.location.clone();
    let ok = reference_keys_allowed(kind, map, field, diagnostics);
    let Some(source_entry) = map.get("source") else {
        diagnostics.push(
            Diagnostic::error(
                Some(location),
                format!("{} reference has no source", kind.noun()),
            )
            .field(field)
            .hint(format!(
                "add `source: KEY` naming a top-level {}",
                kind.noun()
            )),
        );
        return None;
    };
    let source = string_field(&source_entry.value, &format!("{field}.source"), diagnostics);
    let target = match map.get("target") {
        Some(entry) => string_field(&entry.value, &format!("{field}.target"), diagnostics),
        None => source.clone(),
    };
    let uid = id_field(map.get("uid"), "uid", field, diagnostics);
    let gid = id_field(map.get("gid"), "gid", field, diagnostics);
    let mode = mode_field(map.get("mode"), field, diagnostics);
    match (ok, source, target, uid, gid, mode) {
        (true, Some(source), Some(target), Some(uid), Some(gid), Some(mode)) => {
            Some(FileReference {
                source: Located {
                    value: source,
                    location: source_entry.value.location.clone(),
                },
                target,
                uid,
                gid,
                mode,
                location,
            })
        }
        _ => None,
    }
}

/// A reference written as a bare key: `- KEY` mounts it at its key, owned by root, mode 0444.
fn short_reference(
    kind: ObjectKind,
    item: &Node,
    field: &str,
    diagnostics: &mut Diagnostics,
) -> Option<FileReference> {
    let location = item.location.clone();
    let Some(source) = item.scalar_text() else {
        diagnostics.push(
            Diagnostic::error(
                Some(location),
                format!(
                    "a {} reference must be a key or a mapping, not {}",
                    kind.noun(),
                    item.kind_name()
                ),
            )
            .field(field)
            .hint("write `- KEY` or `- source: KEY`"),
        );
        return None;
    };
    Some(FileReference {
        source: Located {
            value: source.to_string(),
            location: location.clone(),
        },
        target: source.to_string(),
        uid: "0".into(),
        gid: "0".into(),
        mode: DEFAULT_MODE,
        location,
    })
}

/// Whether a long-syntax reference has only the keys a reference takes; reports every other.
fn reference_keys_allowed(
    kind: ObjectKind,
    map: &IndexMap<String, Entry>,
    field: &str,
    diagnostics: &mut Diagnostics,
) -> bool {
    let mut ok = true;
    for (key, entry) in map {
        if !REFERENCE_KEYS.contains(&key.as_str()) && !key.starts_with("x-") {
            ok = false;
            diagnostics.push(
                Diagnostic::error(
                    Some(entry.key_location.clone()),
                    format!("unknown key \"{key}\""),
                )
                .field(format!("{field}.{key}"))
                .hint(format!(
                    "a {} reference takes {}",
                    kind.noun(),
                    REFERENCE_KEYS.join(", ")
                )),
            );
        }
    }
    ok
}

/// A reference's `mode:`, the default when it has none; `None` (reported) when invalid.
fn mode_field(entry: Option<&Entry>, field: &str, diagnostics: &mut Diagnostics) -> Option<u32> {
    match entry {
        None => Some(DEFAULT_MODE),
        Some(entry) => match parse_mode(&entry.value) {
            Ok(mode) => Some(mode),
            Err(problem) => {
                diagnostics.push(
                    Diagnostic::error(
                        Some(entry.value.location.clone()),
                        format!("invalid mode: {problem}"),
                    )
                    .field(format!("{field}.mode"))
                    .hint("write octal permission bits such as 0400 or \"0440\" (at most 07777)"),
                );
                None
            }
        },
    }
}

/// Reads a `mode` the way compose-go does: a plain `0440` or `0o440` is octal, a plain `256`
/// decimal, a string (quoted, or produced by interpolation) always octal. Errors do not quote
/// the value: it may come from a variable that holds a secret.
pub fn parse_mode(node: &Node) -> Result<u32, String> {
    let Some((text, style)) = node.as_scalar() else {
        return Err(format!("expected a number, not {}", node.kind_name()));
    };
    let text = text.trim();
    let (digits, radix) = match style {
        ScalarStyle::String => (text.strip_prefix("0o").unwrap_or(text), 8),
        ScalarStyle::Plain => match text.strip_prefix("0o") {
            Some(octal) => (octal, 8),
            None if text.len() > 1 && text.starts_with('0') => (&text[1..], 8),
            None => (text, 10),
        },
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        let expected = if radix == 8 {
            "octal digits"
        } else {
            "a number"
        };
        return Err(format!("the value is not {expected}"));
    }
    match u32::from_str_radix(digits, radix) {
        Ok(mode) if mode <= 0o7777 => Ok(mode),
        _ => Err("the number is above 07777".into()),
    }
}

fn id_field(
    entry: Option<&Entry>,
    name: &str,
    field: &str,
    diagnostics: &mut Diagnostics,
) -> Option<String> {
    let Some(entry) = entry else {
        return Some("0".into());
    };
    match entry.value.scalar_text() {
        Some(text) if !text.is_empty() && text.chars().all(|c| c.is_ascii_digit()) => {
            Some(text.to_string())
        }
        _ => {
            // The value is not shown: it may come from a variable that holds a secret.
            diagnostics.push(
                Diagnostic::error(
                    Some(entry.value.location.clone()),
                    format!("invalid {name}: the value is not a numeric id"),
                )
                .field(format!("{field}.{name}"))
                .hint(format!(
                    "Swarm takes a numeric {name}, e.g. {name}: \"1000\""
                )),
            );
            None
        }
    }
}

/// One secret or config definition, checked step by step: its keys, `external:`, `name:`, its
/// one source, then labels and driver options. Every problem is reported before giving up.
fn definition(
    kind: ObjectKind,
    key: &str,
    entry: &Entry,
    field: &str,
    environment: &Environment,
    diagnostics: &mut Diagnostics,
) -> Option<Definition> {
    let at_key = Some(entry.key_location.clone());
    let map = mapping(&entry.value, field, diagnostics)?;
    let mut ok = definition_keys_allowed(kind, map, field, diagnostics);
    let external = external(map, field, diagnostics);
    ok &= external.is_some();
    let External {
        external,
        legacy_name,
    } = external.unwrap_or_default();
    let mut name = map.get("name").and_then(|entry| {
        string_field(&entry.value, &format!("{field}.name"), diagnostics).map(|value| Located {
            value,
            location: entry.value.location.clone(),
        })
    });
    if legacy_name.is_some() {
        if name.is_some() {
            ok = false;
            diagnostics.push(
                Diagnostic::error(
                    at_key.clone(),
                    format!(
                        "{} \"{key}\" sets both \"external.name\" and \"name\"",
                        kind.noun()
                    ),
                )
                .field(field)
                .hint("keep only `name:` (with `external: true`)"),
            );
        }
        name = legacy_name;
    }
    let which = one_source(kind, key, map, external, at_key, field, diagnostics)?;
    let source = source(which, kind, &map[which], field, environment, diagnostics)?;
    let labels = string_map(map.get("labels"), &format!("{field}.labels"), diagnostics);
    let driver_opts = string_map(
        map.get("driver_opts"),
        &format!("{field}.driver_opts"),
        diagnostics,
    );
    let template_driver = map.get("template_driver").and_then(|entry| {
        string_field(
            &entry.value,
            &format!("{field}.template_driver"),
            diagnostics,
        )
    });
    ok.then(|| Definition {
        key: key.to_string(),
        kind,
        source,
        name,
        labels,
        driver_opts,
        template_driver,
        rotation: map
            .get(super::rotation::KEY)
            .and_then(|entry| super::rotation::parse(entry, field, diagnostics)),
        location: entry.key_location.clone(),
    })
}

/// Whether a definition has only keys its kind allows; reports every other one.
fn definition_keys_allowed(
    kind: ObjectKind,
    map: &IndexMap<String, Entry>,
    field: &str,
    diagnostics: &mut Diagnostics,
) -> bool {
    let noun = kind.noun();
    let mut ok = true;
    for (name, value) in map {
        if !DEFINITION_KEYS.contains(&name.as_str()) && !name.starts_with("x-") {
            ok = false;
            diagnostics.push(
                Diagnostic::error(
                    Some(value.key_location.clone()),
                    format!("unknown key \"{name}\""),
                )
                .field(format!("{field}.{name}"))
                .hint(format!(
                    "a {noun} definition takes {}",
                    DEFINITION_KEYS.join(", ")
                )),
            );
        }
    }
    let not_allowed = match kind {
        ObjectKind::Secret => "content",
        ObjectKind::Config => "driver",
    };
    if let Some(bad) = map.get(not_allowed) {
        ok = false;
        let only = if kind == ObjectKind::Secret {
            "configs"
        } else {
            "secrets"
        };
        diagnostics.push(
            Diagnostic::error(
                Some(bad.key_location.clone()),
                format!("\"{not_allowed}\" is only allowed for {only}"),
            )
            .field(format!("{field}.{not_allowed}"))
            .hint(match kind {
                ObjectKind::Secret => {
                    "put the value in a file and use `file:`, or use `environment:`"
                }
                ObjectKind::Config => "Swarm configs have no driver; use a secret",
            }),
        );
    }
    ok
}

/// `external:` as written: whether the definition is external, and the name its legacy
/// mapping form gives.
#[derive(Default)]
struct External {
    /// `external: true` (or the legacy mapping).
    external: bool,
    /// `external: {name: x}`'s name.
    legacy_name: Option<Located<String>>,
}

/// Reads `external:`; `None` (reported) when it is neither a boolean nor a mapping.
/// (`external: {name: x}` is the legacy spelling of `external: true` + `name: x`.)
fn external(
    map: &IndexMap<String, Entry>,
    field: &str,
    diagnostics: &mut Diagnostics,
) -> Option<External> {
    let mut external = External::default();
    if let Some(entry) = map.get("external") {
        match (&entry.value.typed(), entry.value.as_map()) {
            (Some(Typed::Bool(value)), _) => external.external = *value,
            (_, Some(legacy)) => {
                external.external = true;
                if let Some(name) = legacy.get("name") {
                    external.legacy_name =
                        string_field(&name.value, &format!("{field}.external.name"), diagnostics)
                            .map(|value| Located {
                                value,
                                location: name.value.location.clone(),
                            });
                }
            }
            _ => {
                diagnostics.push(
                    Diagnostic::error(
                        Some(entry.value.location.clone()),
                        format!(
                            "external must be true, false or a mapping, not {}",
                            entry.value.kind_name()
                        ),
                    )
                    .field(format!("{field}.external"))
                    .hint("write `external: true`"),
                );
                return None;
            }
        }
    }
    Some(external)
}

/// Which one source the definition names (`file`, `environment`, `external`, `content` or
/// `driver`); none or several is an error.
fn one_source(
    kind: ObjectKind,
    key: &str,
    map: &IndexMap<String, Entry>,
    external: bool,
    at_key: Option<Location>,
    field: &str,
    diagnostics: &mut Diagnostics,
) -> Option<&'static str> {
    let noun = kind.noun();
    let sources: Vec<&str> = ["file", "environment", "external", "content", "driver"]
        .into_iter()
        .filter(|source| match *source {
            "external" => external,
            _ => map.contains_key(*source),
        })
        .collect();
    match sources.as_slice() {
        [] => {
            diagnostics.push(
                Diagnostic::error(at_key, format!("{noun} \"{key}\" has no source"))
                    .field(field)
                    .hint(match kind {
                        ObjectKind::Secret => {
                            "add one of `file:`, `environment:`, `external: true` or `driver:`"
                        }
                        ObjectKind::Config => {
                            "add one of `file:`, `environment:`, `content:` or `external: true`"
                        }
                    }),
            );
            None
        }
        [_, _, ..] => {
            diagnostics.push(
                Diagnostic::error(
                    at_key,
                    format!(
                        "{noun} \"{key}\" has more than one source ({})",
                        sources.join(", ")
                    ),
                )
                .field(field)
                .hint("keep exactly one of them"),
            );
            None
        }
        [single] => Some(single),
    }
}

fn source(
    which: &str,
    kind: ObjectKind,
    entry: &Entry,
    field: &str,
    environment: &Environment,
    diagnostics: &mut Diagnostics,
) -> Option<Source> {
    let field = format!("{field}.{which}");
    let location = entry.value.location.clone();
    Some(match which {
        "external" => Source::External,
        "file" => {
            let path = string_field(&entry.value, &field, diagnostics)?;
            let absolute = absolute_path(&location.file.dir, Path::new(&path));
            Source::File(Located {
                value: absolute,
                location,
            })
        }
        "environment" => {
            let variable = string_field(&entry.value, &field, diagnostics)?;
            let Some(value) = environment.get(&variable) else {
                diagnostics.push(
                    Diagnostic::error(
                        Some(location),
                        format!("environment variable \"{variable}\" is not set"),
                    )
                    .field(field)
                    .hint(format!(
                        "set {variable} in the environment, in .env or in an --env-file"
                    )),
                );
                return None;
            };
            Source::Environment {
                variable: Located {
                    value: variable,
                    location,
                },
                value: SensitiveBytes::new(value.into_bytes()),
            }
        }
        "content" => {
            let content = string_field(&entry.value, &field, diagnostics)?;
            Source::Content(SensitiveBytes::new(content.into_bytes()))
        }
        "driver" => Source::Driver(string_field(&entry.value, &field, diagnostics)?),
        _ => unreachable!("{kind:?} source {which}"),
    })
}

/// `dir`/`path` with `.` and `..` resolved lexically; absolute paths are kept.
pub fn absolute_path(dir: &Path, path: &Path) -> PathBuf {
    let joined = dir.join(path);
    let mut normalized = PathBuf::new();
    for component in joined.components() {
        match component {
            Component::ParentDir => {
                normalized.pop();
            }
            Component::CurDir => {}
            other => normalized.push(other),
        }
    }
    normalized
}

fn mapping<'n>(
    node: &'n Node,
    field: &str,
    diagnostics: &mut Diagnostics,
) -> Option<&'n IndexMap<String, Entry>> {
    if let Some(map) = node.as_map() {
        return Some(map);
    }
    if node.is_null() {
        return None;
    }
    diagnostics.push(
        Diagnostic::error(
            Some(node.location.clone()),
            format!("{field} must be a mapping, not {}", node.kind_name()),
        )
        .field(field)
        .hint("write `key: value` pairs indented under it"),
    );
    None
}

/// Reads labels or driver options: a mapping, or a list of `KEY=VALUE` strings.
fn string_map(
    entry: Option<&Entry>,
    field: &str,
    diagnostics: &mut Diagnostics,
) -> IndexMap<String, String> {
    let Some(entry) = entry else {
        return IndexMap::new();
    };
    let node = &entry.value;
    let mut map = IndexMap::new();
    match &node.value {
        Value::Map(entries) => {
            for (key, value) in entries {
                let text = if value.value.is_null() {
                    Some(String::new())
                } else {
                    string_field(&value.value, &format!("{field}.{key}"), diagnostics)
                };
                if let Some(text) = text {
                    map.insert(key.clone(), text);
                }
            }
        }
        Value::Seq(items) => {
            for (index, item) in items.iter().enumerate() {
                if let Some(text) = string_field(item, &format!("{field}[{index}]"), diagnostics) {
                    let (key, value) = text.split_once('=').unwrap_or((&text, ""));
                    map.insert(key.to_string(), value.to_string());
                }
            }
        }
        Value::Scalar(..) if node.is_null() => {}
        Value::Scalar(..) => diagnostics.push(
            Diagnostic::error(
                Some(node.location.clone()),
                format!(
                    "expected a mapping or a list of KEY=VALUE, not {}",
                    node.kind_name()
                ),
            )
            .field(field)
            .hint("write `key: value` pairs or `- key=value` items"),
        ),
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::yaml::parse;
    use crate::diagnostic::SourceFile;

    fn mode_of(text: &str) -> Result<u32, String> {
        let node = parse(&format!("mode: {text}"), &SourceFile::new("t", "/"))
            .0
            .unwrap();
        parse_mode(&node.as_map().unwrap()["mode"].value)
    }

    #[test]
    fn modes_are_read_like_compose_go() {
        assert_eq!(mode_of("0400"), Ok(0o400));
        assert_eq!(mode_of("0o400"), Ok(0o400));
        assert_eq!(mode_of("\"0440\""), Ok(0o440));
        assert_eq!(mode_of("\"440\""), Ok(0o440));
        assert_eq!(mode_of("256"), Ok(256));
        assert_eq!(mode_of("0"), Ok(0));
        assert!(mode_of("0489").is_err());
        assert!(mode_of("0o9").is_err());
        assert!(mode_of("4096").is_err());
        assert!(mode_of("-1").is_err());
        assert!(mode_of("[1]").is_err());
    }

    #[test]
    fn paths_resolve_lexically() {
        assert_eq!(
            absolute_path(Path::new("/a/b"), Path::new("../c/./d")),
            PathBuf::from("/a/c/d")
        );
        assert_eq!(
            absolute_path(Path::new("/a"), Path::new("/x/y")),
            PathBuf::from("/x/y")
        );
    }
}
