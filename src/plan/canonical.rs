//! Comparing service specs the way a person would: after dropping what the engine fills in by
//! itself (nulls, empty values, defaults such as `Runtime: container` or `Replicas: 1`), so a
//! plan right after a deploy is empty. Differences are found per field, at spec paths
//! ([`FieldChange`]), with secret and config references shown by name and target and the
//! values of environment variables, options, driver options and labels withheld.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::engine::Spec;

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

/// How a field changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum How {
    /// It is new.
    Added,
    /// It has another value.
    Changed,
    /// It is gone.
    Removed,
}

impl How {
    /// The word for it.
    pub fn word(self) -> &'static str {
        match self {
            How::Added => "added",
            How::Changed => "changed",
            How::Removed => "removed",
        }
    }
}

/// One difference between two specs, at a spec path (`Mode.Replicated.Replicas`,
/// `EndpointSpec.Ports[0].PublishedPort`, `TaskTemplate.ContainerSpec.Env.NAME`,
/// `TaskTemplate.ContainerSpec.Secrets[/run/secrets/db]`), the names `convert::provenance`
/// records origins under.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    /// The spec path.
    pub path: String,
    /// How it changed.
    pub how: How,
    /// The value before; None when absent or withheld.
    pub old: Option<Value>,
    /// The value after; None when absent or withheld.
    pub new: Option<Value>,
    /// Whether the values are withheld because they may carry credentials (environment
    /// variables, options, driver options, labels).
    pub redacted: bool,
}

impl FieldChange {
    /// A change whose values are shown (masked where they hold hidden-value maps).
    fn shown(path: String, old: &Value, new: &Value) -> FieldChange {
        let present = |value: &Value| (!value.is_null()).then(|| masked(value));
        FieldChange {
            path,
            how: match (old.is_null(), new.is_null()) {
                (true, _) => How::Added,
                (_, true) => How::Removed,
                _ => How::Changed,
            },
            old: present(old),
            new: present(new),
            redacted: false,
        }
    }

    /// A change whose values are withheld.
    fn withheld(path: String, how: How) -> FieldChange {
        FieldChange {
            path,
            how,
            old: None,
            new: None,
            redacted: true,
        }
    }
}

/// Where the container's settings sit in a spec path.
const CONTAINER: &str = "TaskTemplate.ContainerSpec";

/// What differs between the live spec and the desired one, one change per field; empty when
/// they are the same.
pub fn differences(live: &Spec, desired: &Spec) -> Vec<FieldChange> {
    let (live, desired) = (canonical(live), canonical(desired));
    if live == desired {
        return Vec::new();
    }
    let mut changes = Vec::new();
    mount_differences(&live, &desired, &mut changes);
    environment_differences(&live, &desired, &mut changes);
    credential_differences(&live, &desired, &mut changes);
    let mut live_rest = live;
    let mut desired_rest = desired;
    for spec in [&mut live_rest, &mut desired_rest] {
        without_shown_fields(spec);
    }
    field_differences("", &live_rest, &desired_rest, &mut changes);
    changes
}

/// Secret and config mounts added, removed, switched to another version or changed in owner
/// or mode, by target (`…Secrets[/run/secrets/db]`, values the object names, or the `File`
/// settings when only those changed).
fn mount_differences(live: &Value, desired: &Value, changes: &mut Vec<FieldChange>) {
    for (list, name_key) in [("Secrets", "SecretName"), ("Configs", "ConfigName")] {
        let old = targets(live, list, name_key);
        let new = targets(desired, list, name_key);
        let path = |target: &str| format!("{CONTAINER}.{list}[{target}]");
        for (target, mounted) in &new {
            match old.get(target) {
                None => changes.push(FieldChange::shown(
                    path(target),
                    &Value::Null,
                    &Value::from(mounted.name.clone()),
                )),
                Some(before) if before.name != mounted.name => changes.push(FieldChange::shown(
                    path(target),
                    &Value::from(before.name.clone()),
                    &Value::from(mounted.name.clone()),
                )),
                Some(before) if before.file != mounted.file => changes.push(FieldChange::shown(
                    format!("{}.File", path(target)),
                    &before.file,
                    &mounted.file,
                )),
                _ => {}
            }
        }
        for (target, mounted) in &old {
            if !new.contains_key(target) {
                changes.push(FieldChange::shown(
                    path(target),
                    &Value::from(mounted.name.clone()),
                    &Value::Null,
                ));
            }
        }
    }
}

/// Environment variables added, removed or changed (by name only: values may be secret).
fn environment_differences(live: &Value, desired: &Value, changes: &mut Vec<FieldChange>) {
    let old_env = environment(live);
    let new_env = environment(desired);
    let path = |name: &str| format!("{CONTAINER}.Env.{name}");
    for (name, value) in &new_env {
        match old_env.get(name) {
            None => changes.push(FieldChange::withheld(path(name), How::Added)),
            Some(old) if old != value => {
                changes.push(FieldChange::withheld(path(name), How::Changed))
            }
            _ => {}
        }
    }
    for name in old_env.keys() {
        if !new_env.contains_key(name) {
            changes.push(FieldChange::withheld(path(name), How::Removed));
        }
    }
}

/// The credential spec's config, by name.
fn credential_differences(live: &Value, desired: &Value, changes: &mut Vec<FieldChange>) {
    let credential_config = |spec: &Value| {
        spec.pointer("/TaskTemplate/ContainerSpec/Configs")
            .and_then(Value::as_array)
            .and_then(|refs| refs.iter().find(|r| r.get("Runtime").is_some()))
            .and_then(|r| r.get("ConfigName"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let (old, new) = (credential_config(live), credential_config(desired));
    if old != new {
        changes.push(FieldChange::shown(
            format!("{CONTAINER}.Privileges.CredentialSpec.Config"),
            &old,
            &new,
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

/// The differences below `path`: objects member by member (an absent one as an empty one),
/// lists of objects of equal length item by item (`[index]`), anything else as one value.
fn field_differences(path: &str, old: &Value, new: &Value, changes: &mut Vec<FieldChange>) {
    if old == new {
        return;
    }
    if holds_hidden_values(path) {
        hidden_differences(path, old, new, changes);
        return;
    }
    let empty = Map::new();
    match (members(old, new, &empty), members(new, old, &empty)) {
        (Some(a), Some(b)) => {
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
                    changes,
                );
            }
        }
        _ => match (old, new) {
            (Value::Array(a), Value::Array(b))
                if a.len() == b.len() && a.iter().chain(b).all(Value::is_object) =>
            {
                for (index, (old, new)) in a.iter().zip(b).enumerate() {
                    field_differences(&format!("{path}[{index}]"), old, new, changes);
                }
            }
            _ => changes.push(FieldChange::shown(path.to_string(), old, new)),
        },
    }
}

/// The members of `value` when it is an object, or none (`empty`) when it is absent and
/// `other` is an object.
fn members<'a>(
    value: &'a Value,
    other: &Value,
    empty: &'a Map<String, Value>,
) -> Option<&'a Map<String, Value>> {
    match value {
        Value::Object(map) => Some(map),
        Value::Null if other.is_object() => Some(empty),
        _ => None,
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

/// One withheld change per key of a hidden-value map that was added, changed or removed.
fn hidden_differences(path: &str, old: &Value, new: &Value, changes: &mut Vec<FieldChange>) {
    let empty = serde_json::Map::new();
    let (old, new) = (
        old.as_object().unwrap_or(&empty),
        new.as_object().unwrap_or(&empty),
    );
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let how = match (old.get(key), new.get(key)) {
            (None, Some(_)) => How::Added,
            (Some(_), None) => How::Removed,
            (Some(a), Some(b)) if a != b => How::Changed,
            _ => continue,
        };
        changes.push(FieldChange::withheld(format!("{path}.{key}"), how));
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

/// For a new service: its secret and config mounts, each as added.
pub fn references(spec: &Spec) -> Vec<FieldChange> {
    let mut changes = Vec::new();
    mount_differences(&Value::Null, &canonical(spec), &mut changes);
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Each difference as `PATH HOW: OLD -> NEW`, or `PATH HOW (redacted)`.
    fn described(live: &Value, desired: &Value) -> Vec<String> {
        let show = |value: &Option<Value>| value.as_ref().map_or("(none)".into(), Value::to_string);
        differences(live, desired)
            .iter()
            .map(|change| match change.redacted {
                true => format!("{} {} (redacted)", change.path, change.how.word()),
                false => format!(
                    "{} {}: {} -> {}",
                    change.path,
                    change.how.word(),
                    show(&change.old),
                    show(&change.new)
                ),
            })
            .collect()
    }

    #[test]
    fn lists_of_objects_of_equal_length_differ_item_by_item_others_as_a_whole() {
        let live = json!({"EndpointSpec": {"Ports": [{"TargetPort": 80, "PublishedPort": 8080}]},
            "TaskTemplate": {"ContainerSpec": {"Image": "i", "Args": ["a"]}}});
        let desired = json!({"EndpointSpec": {"Ports": [{"TargetPort": 80, "PublishedPort": 9090}]},
            "TaskTemplate": {"ContainerSpec": {"Image": "i", "Args": ["a", "b"]}}});
        assert_eq!(
            described(&live, &desired),
            vec![
                "EndpointSpec.Ports[0].PublishedPort changed: 8080 -> 9090",
                "TaskTemplate.ContainerSpec.Args changed: [\"a\"] -> [\"a\",\"b\"]",
            ]
        );
        let more = json!({"EndpointSpec": {"Ports": [{"TargetPort": 80}, {"TargetPort": 81}]},
            "TaskTemplate": {"ContainerSpec": {"Image": "i", "Args": ["a"]}}});
        assert_eq!(
            described(&live, &more),
            vec!["EndpointSpec.Ports changed: [{\"TargetPort\":80,\"PublishedPort\":8080}] -> [{\"TargetPort\":80},{\"TargetPort\":81}]"]
        );
    }

    #[test]
    fn mounts_of_a_new_service_are_added_references() {
        let spec = json!({"TaskTemplate": {"ContainerSpec": {"Image": "i",
            "Secrets": [{"File": {"Name": "db"}, "SecretName": "s_db_v1"}],
            "Configs": [{"File": {"Name": "/etc/c"}, "ConfigName": "s_c_v1"}]}}});
        let found: Vec<(String, How, Option<Value>)> = references(&spec)
            .into_iter()
            .map(|change| (change.path, change.how, change.new))
            .collect();
        assert_eq!(
            found,
            vec![
                (
                    "TaskTemplate.ContainerSpec.Secrets[/run/secrets/db]".into(),
                    How::Added,
                    Some(json!("s_db_v1"))
                ),
                (
                    "TaskTemplate.ContainerSpec.Configs[/etc/c]".into(),
                    How::Added,
                    Some(json!("s_c_v1"))
                ),
            ]
        );
    }

    #[test]
    fn engine_defaults_are_not_differences() {
        let desired = json!({"Name": "s", "Mode": {"Replicated": {}}, "EndpointSpec": {"Mode": ""},
            "TaskTemplate": {"ContainerSpec": {"Image": "i", "Privileges": {}}, "Placement": {}}});
        let live = json!({"Name": "s", "Mode": {"Replicated": {"Replicas": 1}}, "EndpointSpec": {"Mode": "vip"},
            "TaskTemplate": {"ContainerSpec": {"Image": "i", "Isolation": "default", "Privileges": {"CredentialSpec": null}},
            "ForceUpdate": 0, "Runtime": "container"}});
        assert_eq!(differences(&live, &desired), Vec::<FieldChange>::new());
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
        let lines = described(&live, &desired).join("\n");
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
        assert!(lines.contains("Labels.team changed (redacted)"), "{lines}");
        assert!(lines.contains("Labels.token added (redacted)"), "{lines}");
        assert!(
            lines.contains("TaskTemplate.LogDriver.Options.splunk-token changed (redacted)"),
            "{lines}"
        );
        assert!(
            lines.contains("TaskTemplate.ContainerSpec.Mounts[0].Target changed: \"/d\" -> \"/e\""),
            "{lines}"
        );
        assert!(
            lines.contains("Mounts[0].VolumeOptions.DriverConfig.Options.o changed (redacted)"),
            "{lines}"
        );
    }

    #[test]
    fn differences_name_fields_and_hide_environment_values() {
        let live = json!({"TaskTemplate": {"ContainerSpec": {"Image": "a", "Env": ["PASSWORD=old", "KEEP=1"],
            "Secrets": [{"File": {"Name": "db"}, "SecretName": "s_db_v1"}]}}});
        let desired = json!({"TaskTemplate": {"ContainerSpec": {"Image": "b", "Env": ["PASSWORD=new", "KEEP=1", "NEW=x"],
            "Secrets": [{"File": {"Name": "db"}, "SecretName": "s_db_v2"}]}}});
        let lines = described(&live, &desired);
        assert_eq!(
            lines,
            vec![
                "TaskTemplate.ContainerSpec.Secrets[/run/secrets/db] changed: \"s_db_v1\" -> \"s_db_v2\"",
                "TaskTemplate.ContainerSpec.Env.NEW added (redacted)",
                "TaskTemplate.ContainerSpec.Env.PASSWORD changed (redacted)",
                "TaskTemplate.ContainerSpec.Image changed: \"a\" -> \"b\"",
            ]
        );
        assert!(!lines.join("\n").contains("old") && !lines.join("\n").contains("new"));
    }
}
