//! The real-world suite: every stack file under `fixtures/realworld/` (taken from public
//! projects, origins in fixtures/realworld/README.md) is read by `docker stack config` (the
//! docker CLI installed here, no engine needed) and by `stackroll config --format json`; both
//! are brought to one shape by the rules below and must be equal, except at the JSON pointers
//! the case's `accepted-differences` file lists, each with the README's reason. A listed
//! pointer that does not differ is a failure too, so the list stays true.
//!
//! `stackroll config` prints its own model (fields as written, references in full); `docker
//! stack config` prints docker/cli's normalised types (long syntax, sizes in bytes, Go
//! durations). Each rule turns one written form into the other without judging it; a rule per
//! representational difference, listed in the README.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use serde_json::{json, Map, Value};
use stackroll::convert::{parse_duration, shell_split};

use crate::command::{fixtures, stackroll};

/// The docker CLI with `docker stack config`: `STACKROLL_DOCKER_CLI`, else the newer CLI at
/// /usr/local/bin/docker (Debian's 20.10 at /usr/bin/docker has no `stack config`), else
/// `docker` on PATH.
fn docker_cli() -> PathBuf {
    if let Ok(path) = std::env::var("STACKROLL_DOCKER_CLI") {
        return PathBuf::from(path);
    }
    let newer = Path::new("/usr/local/bin/docker");
    if newer.exists() {
        return newer.to_path_buf();
    }
    PathBuf::from("docker")
}

/// `KEY=VALUE` lines of the case's `env` file.
fn case_env(dir: &Path) -> Vec<(String, String)> {
    fs::read_to_string(dir.join("env"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `docker stack config -c compose.yml` in `dir`, with an empty docker configuration and an
/// engine address nothing listens on (it needs none).
fn docker_config(dir: &Path, scratch: &Path) -> Result<Value, String> {
    let mut command = StdCommand::new(docker_cli());
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DOCKER_CONFIG", scratch)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .envs(case_env(dir))
        .args(["stack", "config", "-c", "compose.yml"]);
    let output = command
        .output()
        .map_err(|e| format!("cannot run {}: {e}", docker_cli().display()))?;
    if !output.status.success() {
        return Err(format!(
            "docker stack config failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    serde_saphyr::from_str(&String::from_utf8_lossy(&output.stdout))
        .map_err(|e| format!("docker's output is not YAML: {e}"))
}

/// `stackroll config --format json -c compose.yml` in `dir`.
fn stackroll_config(dir: &Path) -> Result<Value, String> {
    let output = stackroll(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(case_env(dir))
        .args(["config", "--format", "json", "-c", "compose.yml"])
        .output()
        .map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(format!(
            "stackroll config failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("stdout is not JSON: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Rules. Each names the representational difference it removes (README: "Normalisation").

/// A scalar as the string docker/cli's mapping types hold (null stays null).
fn scalar_string(value: &Value) -> Value {
    match value {
        Value::String(_) | Value::Null => value.clone(),
        Value::Bool(b) => b.to_string().into(),
        Value::Number(n) => n.to_string().into(),
        other => other.clone(),
    }
}

/// (mapping) a `KEY=VALUE` list or a mapping → a mapping of strings (`KEY` alone → null).
fn mapping(value: &Value, separator: char) -> Value {
    match value {
        Value::Array(items) => Value::Object(
            items
                .iter()
                .filter_map(Value::as_str)
                .map(|item| match item.split_once(separator) {
                    Some((k, v)) => (k.to_string(), Value::String(v.to_string())),
                    None => (item.to_string(), Value::Null),
                })
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), scalar_string(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// (command) a string command → its words, as docker/cli's `ShellCommand` splits it.
fn command(value: &Value) -> Value {
    match value.as_str() {
        Some(text) => json!(shell_split(text).unwrap_or_default()),
        None => value.clone(),
    }
}

/// (duration) a Go duration → nanoseconds (docker prints `5m0s` for `5m`).
fn duration(value: &Value) -> Value {
    match value.as_str().map(parse_duration) {
        Some(Ok(nanos)) => nanos.into(),
        _ => value.clone(),
    }
}

/// (bytes) a size (`128M`, or docker's byte count as a string) → bytes.
fn bytes(value: &Value) -> Value {
    let text = match value {
        Value::String(text) => text.trim().to_ascii_lowercase(),
        Value::Number(n) => return n.as_i64().map(Value::from).unwrap_or(value.clone()),
        _ => return value.clone(),
    };
    let digits: String = text
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let unit = text[digits.len()..].trim().trim_end_matches('b');
    let scale: f64 = match unit.trim_end_matches('i') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        _ => return value.clone(),
    };
    match digits.parse::<f64>() {
        Ok(number) => ((number * scale) as i64).into(),
        Err(_) => value.clone(),
    }
}

/// (number) `cpus: '0.5'` and `0.5` → the number.
fn number(value: &Value) -> Value {
    match value.as_str().map(str::parse::<f64>) {
        Some(Ok(number)) => json!(number),
        _ => match value.as_f64() {
            Some(number) => json!(number),
            None => value.clone(),
        },
    }
}

/// Applies `rule` to `map[key]` when present.
fn apply(map: &mut Map<String, Value>, key: &str, rule: impl Fn(&Value) -> Value) {
    if let Some(value) = map.get_mut(key) {
        *value = rule(value);
    }
}

/// (ports) a short-syntax port → docker/cli's long form(s): `[IP:][PUBLISHED:]TARGET[/PROTO]`,
/// ranges expanded; the long syntax gets the defaults docker/cli fills (ingress, tcp).
fn ports(value: &Value) -> Value {
    let Some(items) = value.as_array() else {
        return value.clone();
    };
    let mut out = Vec::new();
    for item in items {
        match item {
            Value::Object(map) => {
                let mut map = map.clone();
                map.entry("mode").or_insert("ingress".into());
                map.entry("protocol").or_insert("tcp".into());
                apply(&mut map, "target", number_int);
                apply(&mut map, "published", number_int);
                out.push(Value::Object(map));
            }
            other => {
                let text = match other {
                    Value::Number(n) => n.to_string(),
                    _ => other.as_str().unwrap_or_default().to_string(),
                };
                out.extend(short_port(&text));
            }
        }
    }
    Value::Array(out)
}

/// A port number written as a string or a number → the number.
fn number_int(value: &Value) -> Value {
    match value.as_str().map(str::parse::<i64>) {
        Some(Ok(n)) => n.into(),
        _ => value.clone(),
    }
}

/// One short-syntax port.
fn short_port(text: &str) -> Vec<Value> {
    let (rest, protocol) = text.split_once('/').unwrap_or((text, "tcp"));
    let parts: Vec<&str> = rest.rsplitn(3, ':').collect();
    let (target, published) = (parts[0], parts.get(1).copied());
    let range = |r: &str| -> Vec<i64> {
        match r.split_once('-') {
            Some((a, b)) => (a.parse().unwrap_or(0)..=b.parse().unwrap_or(0)).collect(),
            None => vec![r.parse().unwrap_or(0)],
        }
    };
    let targets = range(target);
    let published: Vec<Option<i64>> = match published.filter(|p| !p.is_empty()) {
        Some(p) => range(p).into_iter().map(Some).collect(),
        None => vec![None; targets.len()],
    };
    targets
        .iter()
        .zip(published)
        .map(|(target, published)| {
            let mut port = Map::new();
            port.insert("mode".into(), "ingress".into());
            port.insert("target".into(), (*target).into());
            if let Some(published) = published {
                port.insert("published".into(), published.into());
            }
            port.insert("protocol".into(), protocol.into());
            Value::Object(port)
        })
        .collect()
}

/// (volumes) a short-syntax volume → docker/cli's long form; a relative bind source joined to
/// the case directory, as docker/cli resolves it against the working directory.
fn volumes(value: &Value, dir: &Path) -> Value {
    let Some(items) = value.as_array() else {
        return value.clone();
    };
    let items = items.iter().map(|item| match item.as_str() {
        Some(text) => short_volume(text, dir),
        None => item.clone(),
    });
    Value::Array(items.collect())
}

/// One short-syntax volume `[SOURCE:]TARGET[:OPTIONS]`.
fn short_volume(text: &str, dir: &Path) -> Value {
    let parts: Vec<&str> = text.split(':').collect();
    let mut volume = Map::new();
    let (source, target, options) = match parts.as_slice() {
        [target] => (None, *target, None),
        [source, target] => (Some(*source), *target, None),
        [source, target, options, ..] => (Some(*source), *target, Some(*options)),
        [] => (None, "", None),
    };
    let bind = source.is_some_and(|s| s.starts_with(['.', '/', '~']));
    volume.insert("type".into(), if bind { "bind" } else { "volume" }.into());
    if let Some(source) = source {
        let source = if source.starts_with('.') {
            clean(&dir.join(source))
        } else {
            source.to_string()
        };
        volume.insert("source".into(), source.into());
    }
    volume.insert("target".into(), target.into());
    for option in options.unwrap_or_default().split(',') {
        match option {
            "ro" => {
                volume.insert("read_only".into(), true.into());
            }
            "nocopy" => {
                volume.insert("volume".into(), json!({"nocopy": true}));
            }
            "rprivate" | "private" | "rshared" | "shared" | "rslave" | "slave" => {
                volume.insert("bind".into(), json!({"propagation": option}));
            }
            _ => {}
        }
    }
    Value::Object(volume)
}

/// A path with `.` and `..` resolved, as Go's `filepath.Join` cleans it.
fn clean(path: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for component in path.components() {
        match component {
            std::path::Component::ParentDir => {
                parts.pop();
            }
            std::path::Component::Normal(part) => parts.push(part.to_string_lossy().into()),
            _ => {}
        }
    }
    format!("/{}", parts.join("/"))
}

/// (references) a secret or config reference, short or long → long without the defaults
/// (target = source, uid and gid "0", mode 0444) that stackroll prints and docker leaves out.
fn references(value: &Value) -> Value {
    let Some(items) = value.as_array() else {
        return value.clone();
    };
    let items = items.iter().map(|item| {
        let mut map = match item {
            Value::String(source) => {
                let mut map = Map::new();
                map.insert("source".into(), source.clone().into());
                map
            }
            Value::Object(map) => map.clone(),
            other => return other.clone(),
        };
        let source = map.get("source").cloned();
        if map.get("target") == source.as_ref() {
            map.remove("target");
        }
        for (key, default) in [
            ("uid", json!("0")),
            ("gid", json!("0")),
            ("mode", json!(292)),
        ] {
            if map.get(key) == Some(&default) {
                map.remove(key);
            }
        }
        Value::Object(map)
    });
    Value::Array(items.collect())
}

/// (networks) a list of networks → a mapping of them to null.
fn service_networks(value: &Value) -> Value {
    match value.as_array() {
        Some(items) => Value::Object(
            items
                .iter()
                .filter_map(Value::as_str)
                .map(|name| (name.to_string(), Value::Null))
                .collect(),
        ),
        None => value.clone(),
    }
}

/// The durations of an update or restart configuration.
fn durations(value: &Value, keys: &[&str]) -> Value {
    let mut value = value.clone();
    if let Some(map) = value.as_object_mut() {
        for key in keys {
            apply(map, key, duration);
        }
    }
    value
}

/// `deploy:` fields.
fn deploy(value: &Value) -> Value {
    let mut value = value.clone();
    let Some(map) = value.as_object_mut() else {
        return value;
    };
    apply(map, "labels", |v| mapping(v, '='));
    apply(map, "update_config", |v| {
        durations(v, &["delay", "monitor"])
    });
    apply(map, "rollback_config", |v| {
        durations(v, &["delay", "monitor"])
    });
    apply(map, "restart_policy", |v| {
        durations(v, &["delay", "window"])
    });
    if let Some(resources) = map.get_mut("resources").and_then(Value::as_object_mut) {
        for part in ["limits", "reservations"] {
            if let Some(part) = resources.get_mut(part).and_then(Value::as_object_mut) {
                apply(part, "memory", bytes);
                apply(part, "cpus", number);
            }
        }
    }
    value
}

/// (env_file) docker/cli's loader reads a service's env files into `environment` (which wins
/// over them); stackroll reads them when converting. The files' `KEY=VALUE` lines are put
/// under the model's `environment` the same way.
fn env_files(map: &mut Map<String, Value>, dir: &Path) {
    let Some(files) = map.get("env_file") else {
        return;
    };
    let paths: Vec<String> = match files {
        Value::String(path) => vec![path.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|item| item.as_str().or_else(|| item.get("path")?.as_str()))
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    let mut environment = Map::new();
    for path in paths {
        let text = fs::read_to_string(dir.join(path)).unwrap_or_default();
        for line in text.lines().map(str::trim_start) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some((key, value)) = line.split_once('=') {
                environment.insert(key.to_string(), value.into());
            }
        }
    }
    if let Some(Value::Object(written)) = map.get("environment") {
        environment.extend(written.clone());
    }
    map.insert("environment".into(), Value::Object(environment));
}

/// One service of stackroll's model, with its env files read (see [`env_files`]).
fn stackroll_service(value: &Value, dir: &Path) -> Value {
    let mut value = service(value, dir);
    if let Some(map) = value.as_object_mut() {
        env_files(map, dir);
    }
    value
}

/// One service, either side.
fn service(value: &Value, dir: &Path) -> Value {
    let mut value = value.clone();
    let Some(map) = value.as_object_mut() else {
        return value;
    };
    apply(map, "environment", |v| mapping(v, '='));
    apply(map, "labels", |v| mapping(v, '='));
    apply(map, "command", command);
    apply(map, "entrypoint", command);
    apply(map, "networks", service_networks);
    apply(map, "ports", ports);
    apply(map, "volumes", |v| volumes(v, dir));
    apply(map, "secrets", references);
    apply(map, "configs", references);
    apply(map, "deploy", deploy);
    apply(map, "stop_grace_period", duration);
    apply(map, "healthcheck", |health| {
        let mut health = durations(health, &["interval", "timeout", "start_period"]);
        if let Some(map) = health.as_object_mut() {
            apply(map, "test", |test| match test.as_str() {
                Some(text) => json!(["CMD-SHELL", text]),
                None => test.clone(),
            });
        }
        health
    });
    apply(map, "logging", |logging| {
        let mut logging = logging.clone();
        if let Some(map) = logging.as_object_mut() {
            apply(map, "options", |v| mapping(v, '='));
        }
        logging
    });
    map.retain(|_, v| !is_empty(v));
    value
}

/// Empty lists and mappings and null: what one side prints and the other leaves out.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

/// (definitions) a top-level definition: null → `{}`; labels as a mapping of strings; (external
/// name) an external definition without `name:` is named by its key, which docker/cli writes
/// out and stackroll's model leaves implicit.
fn definitions(value: &Value) -> Value {
    let Some(map) = value.as_object() else {
        return value.clone();
    };
    Value::Object(
        map.iter()
            .map(|(key, definition)| {
                let mut definition = match definition {
                    Value::Null => Map::new(),
                    Value::Object(map) => map.clone(),
                    other => return (key.clone(), other.clone()),
                };
                apply(&mut definition, "labels", |v| mapping(v, '='));
                apply(&mut definition, "driver_opts", |v| mapping(v, '='));
                if definition.get("external") == Some(&Value::Bool(true)) {
                    definition.entry("name").or_insert(key.clone().into());
                }
                (key.clone(), Value::Object(definition))
            })
            .collect(),
    )
}

/// Which tool printed a value.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    Docker,
    Stackroll,
}

/// The whole output of either tool in the one shape. (version) `version:` is left out: docker
/// prints it, stackroll warns that it is obsolete and drops it. (extensions) top-level `x-…`
/// keys are left out: docker prints them back, stackroll's model keeps only what they were
/// merged into (anchors).
fn normalize(value: &Value, dir: &Path, side: Side) -> Value {
    let mut out = Map::new();
    let Some(top) = value.as_object() else {
        return value.clone();
    };
    for (key, value) in top {
        let value = match key.as_str() {
            "version" => continue,
            extension if extension.starts_with("x-") => continue,
            "services" => match value.as_object() {
                Some(services) => Value::Object(
                    services
                        .iter()
                        .map(|(name, s)| match side {
                            Side::Docker => (name.clone(), service(s, dir)),
                            Side::Stackroll => (name.clone(), stackroll_service(s, dir)),
                        })
                        .collect(),
                ),
                None => value.clone(),
            },
            "networks" | "volumes" | "secrets" | "configs" => definitions(value),
            _ => value.clone(),
        };
        if !is_empty(&value) {
            out.insert(key.clone(), value);
        }
    }
    Value::Object(out)
}

// ---------------------------------------------------------------------------------------------
// Comparison.

/// Every JSON pointer at which `a` and `b` differ (a subtree present on one side only is one
/// pointer).
fn differences(a: &Value, b: &Value, at: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let here = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                match (x.get(key), y.get(key)) {
                    (Some(p), Some(q)) => differences(p, q, &here, out),
                    _ => out.push(here),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (index, (p, q)) in x.iter().zip(y).enumerate() {
                differences(p, q, &format!("{at}/{index}"), out);
            }
        }
        (Value::Number(x), Value::Number(y)) if x.as_f64() == y.as_f64() => {}
        _ if a == b => {}
        _ => out.push(at.to_string()),
    }
}

/// The pointers a case accepts as different: `POINTER REASON` lines of `accepted-differences`.
fn accepted(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("accepted-differences"))
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|line| {
            line.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// Runs one case; returns what went wrong.
fn run_case(dir: &Path, scratch: &Path) -> Result<(), String> {
    let dir = &dir.canonicalize().unwrap();
    let docker = normalize(&docker_config(dir, scratch)?, dir, Side::Docker);
    let ours = normalize(&stackroll_config(dir)?, dir, Side::Stackroll);
    let mut found = Vec::new();
    differences(&docker, &ours, "", &mut found);
    let accepted = accepted(dir);
    let unexpected: Vec<&String> = found.iter().filter(|p| !accepted.contains(p)).collect();
    let stale: Vec<&String> = accepted.iter().filter(|p| !found.contains(p)).collect();
    if unexpected.is_empty() && stale.is_empty() {
        return Ok(());
    }
    let show = |pointer: &str| {
        format!(
            "  {pointer}\n    docker:    {}\n    stackroll: {}",
            docker.pointer(pointer).unwrap_or(&Value::Null),
            ours.pointer(pointer).unwrap_or(&Value::Null)
        )
    };
    let mut report = String::new();
    for pointer in unexpected {
        report += &format!("differs:\n{}\n", show(pointer));
    }
    for pointer in stale {
        report += &format!("listed in accepted-differences but equal: {pointer}\n");
    }
    Err(report)
}

#[test]
fn real_world_stack_files_read_as_docker_stack_config_reads_them() {
    let mut cases: Vec<PathBuf> = fs::read_dir(fixtures("realworld"))
        .expect("fixtures/realworld exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 20, "at least 20 real-world files");
    let scratch = tempfile::tempdir().unwrap();
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|dir| {
            run_case(dir, scratch.path()).err().map(|problem| {
                format!("{}:\n{problem}", dir.file_name().unwrap().to_string_lossy())
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} real-world files differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
