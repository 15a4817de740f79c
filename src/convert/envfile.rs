//! A service's container environment as docker/cli resolves it: the `env_file:` files (read
//! by the loader, `compose::env_files`) parsed with docker/cli's `opts.ParseEnvFile`
//! (relative paths against the directory of the compose file that names them), then
//! `environment:` over them; a variable without a value, or with an empty one, takes its value
//! from the process environment (as loading saw it) when it is set there.

use indexmap::IndexMap;

use super::values::{bad, boolean, check_keys, get, list_or_dict, text};
use crate::diagnostic::{Diagnostics, Location};
use crate::model::node::Node;
use crate::model::{EnvFileRead, EnvFiles};

/// docker/cli's `opts.ParseEnvFile` on the bytes of an env file: one `KEY=VALUE` a line, the
/// value taken verbatim (no quotes, no trimming, no interpolation); leading white space of a
/// line dropped; empty lines and lines starting with `#` skipped; a line with only a name
/// takes the variable from the process environment, or is skipped when it is unset there.
/// Errors never quote the file's content beyond a variable name.
pub(super) fn parse_env_file(
    bytes: &[u8],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut lines = Vec::new();
    let mut chunks: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    if chunks.last().is_some_and(|last| last.is_empty()) {
        chunks.pop();
    }
    for (index, raw) in chunks.into_iter().enumerate() {
        let number = index + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.len() > 64 * 1024 {
            return Err(format!("line {number} is longer than 64 KiB"));
        }
        let Ok(line) = std::str::from_utf8(raw) else {
            return Err(format!("invalid UTF-8 at line {number}"));
        };
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = match line.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (line, None),
        };
        let name = name.trim_start_matches([' ', '\t']);
        if name.contains([' ', '\t']) {
            return Err(format!(
                "poorly formatted environment: variable '{name}' contains whitespaces (line {number})"
            ));
        }
        if name.is_empty() {
            return Err(format!(
                "poorly formatted environment: no variable name on line {number}"
            ));
        }
        match value {
            Some(value) => lines.push((name.to_string(), value.to_string())),
            None => {
                if let Some(value) = lookup(line) {
                    lines.push((line.trim().to_string(), value));
                }
            }
        }
    }
    Ok(lines)
}

/// Where a container variable is set (`convert::provenance`).
pub(super) struct VariableOrigin {
    /// The variable.
    pub name: String,
    /// `environment.NAME`, or `env_file` for a variable only an env file sets.
    pub field: String,
    /// Where: the variable's key or list item, or the `env_file:` value.
    pub location: Location,
}

/// The origin of each variable of the container's `env` (`KEY=VALUE` or `KEY`): its key or
/// list item in `environment:`, else the `env_file:` value (the files set it).
pub(super) fn variable_origins(
    env_file: Option<&Node>,
    environment: Option<&Node>,
    env: &[String],
) -> Vec<VariableOrigin> {
    let mut written: IndexMap<String, Location> = IndexMap::new();
    if let Some(map) = environment.and_then(Node::as_map) {
        for (name, entry) in map {
            written.insert(name.clone(), entry.key_location.clone());
        }
    }
    for item in environment.and_then(Node::as_seq).into_iter().flatten() {
        if let Some(text) = item.scalar_text() {
            let name = text.split_once('=').map_or(text, |(name, _)| name);
            written.insert(name.to_string(), item.location.clone());
        }
    }
    let mut origins = Vec::new();
    for variable in env {
        let name = variable
            .split_once('=')
            .map_or(variable.as_str(), |(name, _)| name);
        let origin = match (written.get(name), env_file) {
            (Some(location), _) => (format!("environment.{name}"), location),
            (None, Some(file)) => ("env_file".to_string(), &file.location),
            (None, None) => continue,
        };
        origins.push(VariableOrigin {
            name: name.to_string(),
            field: origin.0,
            location: origin.1.clone(),
        });
    }
    origins
}

/// docker/cli's `updateEnvironment`: each variable set over `environment`; one without a value
/// or with an empty value takes the process environment's value when it has one.
fn update(
    environment: &mut IndexMap<String, Option<String>>,
    variables: IndexMap<String, Option<String>>,
    lookup: &dyn Fn(&str) -> Option<String>,
) {
    for (name, value) in variables {
        let empty = value.as_deref().is_none_or(str::is_empty);
        let value = match lookup(&name) {
            Some(found) if empty => Some(found),
            _ => value,
        };
        environment.insert(name, value);
    }
}

/// The container's `Env`: `env_file:` then `environment:`, as sorted `KEY=VALUE` (or `KEY`
/// for a variable with no value anywhere) strings; None when the service has neither.
pub(super) fn container_env(
    env_file: Option<&Node>,
    environment: Option<&Node>,
    field_prefix: &str,
    problems: &mut Diagnostics,
    files: &EnvFiles,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Option<Vec<String>> {
    if env_file.is_none() && environment.is_none() {
        return None;
    }
    let mut resolved: IndexMap<String, Option<String>> = IndexMap::new();
    if let Some(node) = env_file {
        let field = format!("{field_prefix}.env_file");
        let from_files = env_file_variables(node, &field, problems, files, lookup);
        update(&mut resolved, from_files, lookup);
    }
    if let Some(node) = environment {
        let field = format!("{field_prefix}.environment");
        if let Some(variables) = list_or_dict(node, '=', &field, problems) {
            update(&mut resolved, variables, lookup);
        }
    }
    let mut env: Vec<String> = resolved
        .into_iter()
        .map(|(name, value)| match value {
            Some(value) => format!("{name}={value}"),
            None => name,
        })
        .collect();
    env.sort();
    Some(env)
}

/// The variables of every file `env_file:` names, later files winning; an optional file that
/// does not exist is skipped.
fn env_file_variables(
    node: &Node,
    field: &str,
    problems: &mut Diagnostics,
    files: &EnvFiles,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> IndexMap<String, Option<String>> {
    let mut variables: IndexMap<String, Option<String>> = IndexMap::new();
    for item in env_file_items(node, field, problems) {
        let full = EnvFiles::path(&item.path, &item.node.location.file.dir);
        let bytes = match files.get(&full) {
            Some(EnvFileRead::Read(bytes)) => bytes,
            Some(EnvFileRead::Unreadable { missing: true, .. }) if !item.required => continue,
            Some(EnvFileRead::Unreadable { error, .. }) => {
                problems.push(
                    bad(item.node, &item.field, format!("cannot read env file {}: {error}", full.display()))
                        .hint("env_file paths are relative to the directory of the compose file that names them"),
                );
                continue;
            }
            None => {
                problems.push(bad(
                    item.node,
                    &item.field,
                    format!("env file {} was not read while loading", full.display()),
                ));
                continue;
            }
        };
        match parse_env_file(bytes.expose(), lookup) {
            Ok(lines) => {
                for (name, value) in lines {
                    variables.insert(name, Some(value));
                }
            }
            Err(problem) => problems.push(bad(
                item.node,
                &item.field,
                format!("env file {}: {problem}", full.display()),
            )),
        }
    }
    variables
}

/// One file `env_file:` names.
struct EnvFileItem<'n> {
    /// The node the path is written in (relative paths start from its file's directory).
    node: &'n Node,
    /// The path as written.
    path: String,
    /// Whether a missing file is an error (`required: false` skips it).
    required: bool,
    /// The item's field path, for messages.
    field: String,
}

/// `env_file` `format:`. Only `raw` exists (docker compose registers it: `docker run
/// --env-file`'s parser, values taken as written), and it is how stackroll reads every env file,
/// as docker stack deploy does; compose-go refuses any other name ("unsupported env_file
/// format").
fn env_file_format(node: &Node, field: &str, problems: &mut Diagnostics) {
    if let Some(format) = text(node, field, problems) {
        if format != "raw" {
            problems.push(
                bad(node, field, format!("unsupported env_file format {format:?}")).hint(
                    "use `format: raw`, or leave it out: env files are read as docker stack deploy reads them (KEY=VALUE, values as written)",
                ),
            );
        }
    }
}

/// The files `env_file:` names: a string, a list of strings, or (as the Compose specification
/// allows) a list of `{path, required, format}`. `compose::env_files::written_paths` finds the same
/// paths for the loader to read.
fn env_file_items<'n>(
    node: &'n Node,
    field: &str,
    problems: &mut Diagnostics,
) -> Vec<EnvFileItem<'n>> {
    if let Some(path) = node.scalar_text() {
        return vec![EnvFileItem {
            node,
            path: path.to_string(),
            required: true,
            field: field.to_string(),
        }];
    }
    let Some(items) = node.as_seq() else {
        problems.push(bad(
            node,
            field,
            format!("expected a string or a list, not {}", node.kind_name()),
        ));
        return Vec::new();
    };
    let mut files = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let item_field = format!("{field}[{index}]");
        if let Some(map) = item.as_map() {
            check_keys(map, &["path", "required", "format"], &item_field, problems);
            if let Some(format) = get(map, "format") {
                env_file_format(format, &format!("{item_field}.format"), problems);
            }
            let Some(path_node) = get(map, "path") else {
                problems.push(bad(item, &item_field, "an env_file item needs `path`"));
                continue;
            };
            let Some(path) = text(path_node, &format!("{item_field}.path"), problems) else {
                continue;
            };
            let required = match get(map, "required") {
                Some(node) => {
                    boolean(node, &format!("{item_field}.required"), problems).unwrap_or(true)
                }
                None => true,
            };
            files.push(EnvFileItem {
                node: path_node,
                path,
                required,
                field: item_field,
            });
            continue;
        }
        if let Some(path) = text(item, &item_field, problems) {
            files.push(EnvFileItem {
                node: item,
                path,
                required: true,
                field: item_field,
            });
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<String> {
        match name {
            "FROM_ENV" => Some("process".into()),
            "EMPTY_IN_FILE" => Some("filled".into()),
            _ => None,
        }
    }

    #[test]
    fn env_file_lines_like_opts_parse_env_file() {
        // "B " contains a space: an error in docker/cli.
        let bad = parse_env_file(b"B =x\n", &lookup).unwrap_err();
        assert!(bad.contains("contains whitespaces"), "{bad}");
        let good = parse_env_file(
            b"\xEF\xBB\xBF# comment\n  A=1\nC=\"quoted\"  \r\n\nFROM_ENV\nUNSET_VAR\nD=x=y\n\tE=\n",
            &lookup,
        )
        .unwrap();
        assert_eq!(
            good,
            vec![
                ("A".to_string(), "1".to_string()),
                ("C".to_string(), "\"quoted\"  ".to_string()),
                ("FROM_ENV".to_string(), "process".to_string()),
                ("D".to_string(), "x=y".to_string()),
                ("E".to_string(), String::new()),
            ]
        );
        assert!(parse_env_file(b"=x\n", &lookup).is_err());
        let invalid = parse_env_file(b"A=\xff\xfesecret\n", &lookup).unwrap_err();
        assert!(!invalid.contains("secret"));
    }

    #[test]
    fn empty_values_come_from_the_process_environment() {
        let mut environment = IndexMap::new();
        let mut variables = IndexMap::new();
        variables.insert("EMPTY_IN_FILE".to_string(), Some(String::new()));
        variables.insert("FROM_ENV".to_string(), None);
        variables.insert("UNSET".to_string(), None);
        variables.insert("KEPT".to_string(), Some("v".to_string()));
        update(&mut environment, variables, &lookup);
        assert_eq!(environment["EMPTY_IN_FILE"], Some("filled".into()));
        assert_eq!(environment["FROM_ENV"], Some("process".into()));
        assert_eq!(environment["UNSET"], None);
        assert_eq!(environment["KEPT"], Some("v".into()));
    }
}
