//! Comparing service specs the way a person would: after dropping what the engine fills in by
//! itself (nulls, empty values, defaults such as `Runtime: container` or `Replicas: 1`), so a
//! plan right after a deploy is empty. Differences are described per field, with secret and
//! config references shown by name and target and environment values never shown.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::engine::Spec;
use crate::registry::reference::ImageReference;

/// The spec with engine-filled defaults and empty values removed.
pub fn canonical(spec: &Spec) -> Value {
    let mut spec = spec.clone();
    if let Some(task) = spec.get_mut("TaskTemplate").and_then(Value::as_object_mut) {
        remove_if(task, "ForceUpdate", &Value::from(0));
        remove_if(task, "Runtime", &Value::from("container"));
        if let Some(container) = task.get_mut("ContainerSpec").and_then(Value::as_object_mut) {
            remove_if(container, "Isolation", &Value::from("default"));
            // The engine drops zero durations and retries from a healthcheck.
            if let Some(health) = container
                .get_mut("Healthcheck")
                .and_then(Value::as_object_mut)
            {
                health.retain(|_, value| value.as_f64() != Some(0.0));
            }
        }
    }
    if let Some(endpoint) = spec.get_mut("EndpointSpec").and_then(Value::as_object_mut) {
        remove_if(endpoint, "Mode", &Value::from("vip"));
        if let Some(ports) = endpoint.get_mut("Ports").and_then(Value::as_array_mut) {
            for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                remove_if(port, "Protocol", &Value::from("tcp"));
                remove_if(port, "PublishMode", &Value::from("ingress"));
            }
        }
    }
    if let Some(restart) = spec
        .pointer_mut("/TaskTemplate/RestartPolicy")
        .and_then(Value::as_object_mut)
    {
        remove_if(restart, "Condition", &Value::from("any"));
        remove_if(restart, "MaxAttempts", &Value::from(0));
    }
    for key in ["UpdateConfig", "RollbackConfig"] {
        if let Some(config) = spec.get_mut(key).and_then(Value::as_object_mut) {
            remove_if(config, "Order", &Value::from("stop-first"));
            remove_if(config, "FailureAction", &Value::from("pause"));
            for zero in ["MaxFailureRatio", "Delay", "Monitor"] {
                if config.get(zero).and_then(Value::as_f64) == Some(0.0) {
                    config.remove(zero);
                }
            }
        }
    }
    if let Some(replicated) = spec
        .pointer_mut("/Mode/Replicated")
        .and_then(Value::as_object_mut)
    {
        replicated.entry("Replicas").or_insert(Value::from(1));
    }
    prune_empty(&mut spec);
    spec
}

fn remove_if(map: &mut Map<String, Value>, key: &str, default: &Value) {
    if map.get(key) == Some(default) {
        map.remove(key);
    }
}

/// Drops nulls, empty strings, empty arrays and empty objects, recursively. Returns whether
/// the value itself is now empty.
fn prune_empty(value: &mut Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(items) => {
            for item in items.iter_mut() {
                prune_empty(item);
            }
            items.is_empty()
        }
        Value::Object(map) => {
            map.retain(|_, v| !prune_empty(v));
            map.is_empty()
        }
        _ => false,
    }
}

/// Whether going from `live` to `desired` makes Swarm replace the service's tasks: its task
/// template or endpoint changed (not only its name, labels, mode or update settings).
pub fn replaces_tasks(live: &Spec, desired: &Spec) -> bool {
    let (live, desired) = (canonical(live), canonical(desired));
    live.get("TaskTemplate") != desired.get("TaskTemplate")
        || live.get("EndpointSpec") != desired.get("EndpointSpec")
}

/// Keeps the live spec's ForceUpdate counter, as docker/cli does, so a `docker service update
/// --force` done by hand does not look like a change.
pub fn keep_force_update(desired: &mut Spec, live: &Spec) {
    if let Some(force) = live
        .pointer("/TaskTemplate/ForceUpdate")
        .filter(|v| v.as_u64() != Some(0))
    {
        if let Some(task) = desired
            .get_mut("TaskTemplate")
            .and_then(Value::as_object_mut)
        {
            task.insert("ForceUpdate".into(), force.clone());
        }
    }
}

/// What differs between the live spec and the desired one, one line per field; empty when
/// they are the same.
pub fn differences(live: &Spec, desired: &Spec) -> Vec<String> {
    let (live, desired) = (canonical(live), canonical(desired));
    if live == desired {
        return Vec::new();
    }
    let mut lines = Vec::new();
    image_differences(&live, &desired, &mut lines);
    mount_differences(&live, &desired, &mut lines);
    environment_differences(&live, &desired, &mut lines);
    credential_differences(&live, &desired, &mut lines);
    let mut live_rest = live;
    let mut desired_rest = desired;
    for spec in [&mut live_rest, &mut desired_rest] {
        without_shown_fields(spec);
    }
    field_differences("", &live_rest, &desired_rest, &mut lines);
    lines
}

/// The image: for a tag that moved, `image app:main digest sha256:a… -> sha256:b…`; any other
/// change as `image OLD -> NEW`.
fn image_differences(live: &Value, desired: &Value, lines: &mut Vec<String>) {
    let image = |spec: &Value| {
        spec.pointer("/TaskTemplate/ContainerSpec/Image")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (old, new) = (image(live), image(desired));
    if old == new {
        return;
    }
    let parse = |image: &str| ImageReference::parse(image).map(|reference| reference.tagged());
    let line = match (parse(&old), parse(&new)) {
        (Some(a), Some(b)) if a.digest.is_some() && b.digest.is_some() => {
            let (old_digest, new_digest) = (a.digest.clone(), b.digest.clone());
            let unpinned = |mut reference: ImageReference| {
                reference.digest = None;
                reference.familiar()
            };
            let (a, b) = (unpinned(a), unpinned(b));
            match a == b {
                true => format!(
                    "image {a} digest {} -> {}",
                    old_digest.unwrap_or_default(),
                    new_digest.unwrap_or_default()
                ),
                false => format!("image {old} -> {new}"),
            }
        }
        _ => format!("image {} -> {}", show_image(&old), show_image(&new)),
    };
    lines.push(line);
}

/// An image for a plan line; `(none)` when there is none.
fn show_image(image: &str) -> &str {
    if image.is_empty() {
        "(none)"
    } else {
        image
    }
}

/// Secret and config mounts added, removed, switched to another version or changed in owner
/// or mode, by target.
fn mount_differences(live: &Value, desired: &Value, lines: &mut Vec<String>) {
    for (list, noun, name_key) in [
        ("Secrets", "secret", "SecretName"),
        ("Configs", "config", "ConfigName"),
    ] {
        let old = targets(live, list, name_key);
        let new = targets(desired, list, name_key);
        for (target, Mounted { name, file }) in &new {
            match old.get(target) {
                None => lines.push(format!("{noun} + {name} (target {target})")),
                Some(old) if old.name != *name => {
                    let old_name = &old.name;
                    lines.push(format!("{noun} {old_name} -> {name} (target {target})"))
                }
                Some(old) if old.file != *file => lines.push(format!(
                    "{noun} {name}: owner or mode changed (target {target})"
                )),
                _ => {}
            }
        }
        for (target, Mounted { name, .. }) in &old {
            if !new.contains_key(target) {
                lines.push(format!("{noun} - {name} (target {target})"));
            }
        }
    }
}

/// Environment variables added, removed or changed (by name only: values may be secret).
fn environment_differences(live: &Value, desired: &Value, lines: &mut Vec<String>) {
    let old_env = environment(live);
    let new_env = environment(desired);
    for (name, value) in &new_env {
        match old_env.get(name) {
            None => lines.push(format!("environment {name}: added")),
            Some(old) if old != value => lines.push(format!("environment {name}: changed")),
            _ => {}
        }
    }
    for name in old_env.keys() {
        if !new_env.contains_key(name) {
            lines.push(format!("environment {name}: removed"));
        }
    }
}

/// The credential spec's config, by name.
fn credential_differences(live: &Value, desired: &Value, lines: &mut Vec<String>) {
    let credential_config = |spec: &Value| {
        spec.pointer("/TaskTemplate/ContainerSpec/Configs")
            .and_then(Value::as_array)
            .and_then(|refs| refs.iter().find(|r| r.get("Runtime").is_some()))
            .and_then(|r| r["ConfigName"].as_str())
            .map(str::to_string)
    };
    let (old_credential, new_credential) = (credential_config(live), credential_config(desired));
    if old_credential != new_credential {
        lines.push(format!(
            "config {} -> {} (credential spec)",
            old_credential.as_deref().unwrap_or("(none)"),
            new_credential.as_deref().unwrap_or("(none)")
        ));
    }
}

/// Removes from a canonical spec what the steps above already showed, so the field-by-field
/// comparison does not show it again.
fn without_shown_fields(spec: &mut Value) {
    if let Some(container) = spec
        .pointer_mut("/TaskTemplate/ContainerSpec")
        .and_then(Value::as_object_mut)
    {
        container.remove("Image");
        container.remove("Secrets");
        container.remove("Configs");
        container.remove("Env");
        // The credential spec's config is shown by name (credential_differences), not by ID.
        if let Some(privileges) = container
            .get_mut("Privileges")
            .and_then(Value::as_object_mut)
        {
            if let Some(credential) = privileges
                .get_mut("CredentialSpec")
                .and_then(Value::as_object_mut)
            {
                credential.remove("Config");
                if credential.is_empty() {
                    privileges.remove("CredentialSpec");
                }
            }
            if privileges.is_empty() {
                container.remove("Privileges");
            }
        }
    }
}

/// What a secret or config reference mounts at one target.
#[derive(Debug, PartialEq)]
struct Mounted {
    /// The object's name.
    name: String,
    /// The mount settings (`File`: name, owner, mode).
    file: Value,
}

/// The secret or config references by effective target.
fn targets(spec: &Value, list: &str, name_key: &str) -> BTreeMap<String, Mounted> {
    let prefix = if list == "Secrets" {
        "/run/secrets/"
    } else {
        "/"
    };
    spec.pointer(&format!("/TaskTemplate/ContainerSpec/{list}"))
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter(|r| r.get("File").is_some())
                .map(|r| {
                    let target = r
                        .pointer("/File/Name")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let target = if target.starts_with('/') {
                        target.to_string()
                    } else {
                        format!("{prefix}{target}")
                    };
                    let name = r[name_key].as_str().unwrap_or_default().to_string();
                    let file = r.get("File").cloned().unwrap_or(Value::Null);
                    (target, Mounted { name, file })
                })
                .collect()
        })
        .unwrap_or_default()
}

fn environment(spec: &Value) -> BTreeMap<String, String> {
    spec.pointer("/TaskTemplate/ContainerSpec/Env")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(|item| match item.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (item.to_string(), String::new()),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn field_differences(path: &str, old: &Value, new: &Value, lines: &mut Vec<String>) {
    if old == new {
        return;
    }
    if holds_hidden_values(path) {
        hidden_differences(path, old, new, lines);
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let sub = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                field_differences(
                    &sub,
                    a.get(key).unwrap_or(&Value::Null),
                    b.get(key).unwrap_or(&Value::Null),
                    lines,
                );
            }
        }
        _ => lines.push(format!("{path}: {} -> {}", show(old), show(new))),
    }
}

/// Maps whose values often carry credentials (`logging.options` such as `splunk-token`,
/// volume and network `driver_opts` such as `o: password=…`, labels): a plan names what
/// changed in them, never the values.
const HIDDEN_VALUE_MAPS: &[&str] = &["Options", "DriverOpts", "Labels"];

/// Whether the map at `path` is one of [`HIDDEN_VALUE_MAPS`].
fn holds_hidden_values(path: &str) -> bool {
    let last = path.rsplit('.').next().unwrap_or(path);
    HIDDEN_VALUE_MAPS.contains(&last)
}

/// One line per key of a hidden-value map that was added, changed or removed.
fn hidden_differences(path: &str, old: &Value, new: &Value, lines: &mut Vec<String>) {
    let empty = serde_json::Map::new();
    let (old, new) = (
        old.as_object().unwrap_or(&empty),
        new.as_object().unwrap_or(&empty),
    );
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let what = match (old.get(key), new.get(key)) {
            (None, Some(_)) => "added",
            (Some(_), None) => "removed",
            (Some(a), Some(b)) if a != b => "changed",
            _ => continue,
        };
        lines.push(format!("{path}.{key}: {what}"));
    }
}

/// A value as a plan line shows it, with the values of hidden-value maps inside it masked.
fn show(value: &Value) -> String {
    match value {
        Value::Null => "(none)".into(),
        other => masked(other).to_string(),
    }
}

/// `value` with every member of a hidden-value map inside it replaced by `"(hidden)"`.
fn masked(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, member)| {
                    let member = match member {
                        Value::Object(inner) if HIDDEN_VALUE_MAPS.contains(&key.as_str()) => {
                            Value::Object(
                                inner
                                    .keys()
                                    .map(|k| (k.clone(), Value::from("(hidden)")))
                                    .collect(),
                            )
                        }
                        other => masked(other),
                    };
                    (key.clone(), member)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(masked).collect()),
        other => other.clone(),
    }
}

/// For a new service: its secret and config mounts, one line each.
pub fn reference_lines(spec: &Spec) -> Vec<String> {
    let mut lines = Vec::new();
    for (list, noun, name_key) in [
        ("Secrets", "secret", "SecretName"),
        ("Configs", "config", "ConfigName"),
    ] {
        for (target, Mounted { name, .. }) in targets(spec, list, name_key) {
            lines.push(format!("{noun} {name} (target {target})"));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn engine_defaults_are_not_differences() {
        let desired = json!({"Name": "s", "Mode": {"Replicated": {}}, "EndpointSpec": {"Mode": ""},
            "TaskTemplate": {"ContainerSpec": {"Image": "i", "Privileges": {}}, "Placement": {}}});
        let live = json!({"Name": "s", "Mode": {"Replicated": {"Replicas": 1}}, "EndpointSpec": {"Mode": "vip"},
            "TaskTemplate": {"ContainerSpec": {"Image": "i", "Isolation": "default", "Privileges": {"CredentialSpec": null}},
            "ForceUpdate": 0, "Runtime": "container"}});
        assert_eq!(differences(&live, &desired), Vec::<String>::new());
    }

    #[test]
    fn differences_never_show_values_of_options_driver_options_or_labels() {
        let live = json!({"Labels": {"team": "a"}, "TaskTemplate": {
            "LogDriver": {"Name": "splunk", "Options": {"splunk-token": "old-token"}},
            "ContainerSpec": {"Image": "i", "Mounts": [{"Type": "volume", "Source": "v", "Target": "/d",
                "VolumeOptions": {"DriverConfig": {"Name": "local", "Options": {"o": "password=old-pw"}}}}]}}});
        let desired = json!({"Labels": {"team": "b", "token": "new-label-secret"}, "TaskTemplate": {
            "LogDriver": {"Name": "splunk", "Options": {"splunk-token": "new-token"}},
            "ContainerSpec": {"Image": "i", "Mounts": [{"Type": "volume", "Source": "v", "Target": "/e",
                "VolumeOptions": {"DriverConfig": {"Name": "local", "Options": {"o": "password=new-pw"}}}}]}}});
        let lines = differences(&live, &desired).join("\n");
        for value in [
            "old-token",
            "new-token",
            "old-pw",
            "new-pw",
            "new-label-secret",
            "team\": \"a",
        ] {
            assert!(!lines.contains(value), "{value} shown in:\n{lines}");
        }
        assert!(lines.contains("Labels.team: changed"), "{lines}");
        assert!(lines.contains("Labels.token: added"), "{lines}");
        assert!(
            lines.contains("TaskTemplate.LogDriver.Options.splunk-token: changed"),
            "{lines}"
        );
        assert!(
            lines.contains("TaskTemplate.ContainerSpec.Mounts:"),
            "{lines}"
        );
    }

    #[test]
    fn differences_name_fields_and_hide_environment_values() {
        let live = json!({"TaskTemplate": {"ContainerSpec": {"Image": "a", "Env": ["PASSWORD=old", "KEEP=1"],
            "Secrets": [{"File": {"Name": "db"}, "SecretName": "s_db_v1"}]}}});
        let desired = json!({"TaskTemplate": {"ContainerSpec": {"Image": "b", "Env": ["PASSWORD=new", "KEEP=1", "NEW=x"],
            "Secrets": [{"File": {"Name": "db"}, "SecretName": "s_db_v2"}]}}});
        let lines = differences(&live, &desired);
        assert_eq!(
            lines,
            vec![
                "image a -> b",
                "secret s_db_v1 -> s_db_v2 (target /run/secrets/db)",
                "environment NEW: added",
                "environment PASSWORD: changed",
            ]
        );
        assert!(!lines.join("\n").contains("old") && !lines.join("\n").contains("new"));
    }

    /// A tag that moved shows as its digests; other image changes as the whole references.
    #[test]
    fn a_moved_tag_shows_its_digests() {
        let a = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        let b = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
        let spec = |image: &str| json!({"TaskTemplate": {"ContainerSpec": {"Image": image}}});
        assert_eq!(
            differences(
                &spec(&format!("app:main@{a}")),
                &spec(&format!("app:main@{b}"))
            ),
            vec![format!("image app:main digest {a} -> {b}")]
        );
        assert_eq!(
            differences(&spec(&format!("app:1@{a}")), &spec(&format!("app:2@{b}"))),
            vec![format!("image app:1@{a} -> app:2@{b}")]
        );
        assert_eq!(
            differences(&spec("app:main"), &spec(&format!("app:main@{a}"))),
            vec![format!("image app:main -> app:main@{a}")]
        );
        assert!(differences(
            &spec(&format!("app:main@{a}")),
            &spec(&format!("app:main@{a}"))
        )
        .is_empty());
    }
}
