//! Compose service and network → Swarm ServiceSpec and NetworkCreateRequest JSON.

use std::collections::HashMap;

use indexmap::IndexMap;
use serde_json::{json, Map, Value};

use super::{parse_duration, Namespace};
use crate::compose::node::{Node, Typed};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::engine::Spec;
use crate::model::{FileReference, ObjectKind, Project, Service};

/// Label docker/cli puts on a service with the image the compose file named.
pub const IMAGE_LABEL: &str = "com.docker.stack.image";

/// Service keys `docker stack deploy` ignores; stackroll warns about them once.
pub const IGNORED_SERVICE_FIELDS: &[&str] = &[
    "build",
    "cgroup_parent",
    "container_name",
    "depends_on",
    "devices",
    "external_links",
    "links",
    "network_mode",
    "profiles",
    "pull_policy",
    "restart",
    "security_opt",
    "userns_mode",
];

/// Service keys converted today.
const SUPPORTED_SERVICE_FIELDS: &[&str] = &[
    "image",
    "command",
    "entrypoint",
    "environment",
    "labels",
    "deploy",
    "healthcheck",
    "networks",
];
const SUPPORTED_DEPLOY_FIELDS: &[&str] = &[
    "replicas",
    "mode",
    "labels",
    "update_config",
    "rollback_config",
    "restart_policy",
];

/// The swarm object each (kind, key) resolves to: its name and, once it exists, its ID.
pub type ResolvedObjects = HashMap<(ObjectKind, String), (String, String)>;

/// The ServiceSpec docker/cli would build for `service`, with secret and config references
/// pointing at `objects`.
pub fn service_spec(
    namespace: &Namespace,
    service: &Service,
    project: &Project,
    objects: &ResolvedObjects,
) -> Result<Spec, Diagnostics> {
    let mut problems = Diagnostics::default();
    let field = |name: &str| format!("services.{}.{name}", service.name);
    for (key, node) in &service.fields {
        if !SUPPORTED_SERVICE_FIELDS.contains(&key.as_str())
            && !IGNORED_SERVICE_FIELDS.contains(&key.as_str())
            && !key.starts_with("x-")
        {
            problems.push(
                Diagnostic::error(Some(node.location.clone()), format!("service field \"{key}\" is not supported yet"))
                    .field(field(key))
                    .hint(format!("stackroll converts {}; remove the field or deploy this stack with docker stack deploy", SUPPORTED_SERVICE_FIELDS.join(", "))),
            );
        }
    }
    let get = |key: &str| service.fields.get(key).filter(|node| !node.is_null());

    let image = match get("image").and_then(Node::scalar_text) {
        Some(image) => image.to_string(),
        None => {
            problems.push(
                Diagnostic::error(Some(service.location.clone()), "service has no image")
                    .field(field("image"))
                    .hint("add `image: NAME:TAG`; docker stack deploy does not build images"),
            );
            String::new()
        }
    };
    let command =
        get("command").and_then(|node| string_list(node, &field("command"), &mut problems));
    let entrypoint =
        get("entrypoint").and_then(|node| string_list(node, &field("entrypoint"), &mut problems));
    let env =
        get("environment").map(|node| environment(node, &field("environment"), &mut problems));
    let container_labels = labels(get("labels"), &field("labels"), &mut problems);

    let deploy = get("deploy").and_then(|node| node.as_map());
    let deploy_get = |key: &str| {
        deploy
            .and_then(|map| map.get(key))
            .map(|entry| &entry.value)
            .filter(|n| !n.is_null())
    };
    if let Some(deploy) = deploy {
        for (key, entry) in deploy {
            if !SUPPORTED_DEPLOY_FIELDS.contains(&key.as_str()) {
                problems.push(
                    Diagnostic::error(
                        Some(entry.key_location.clone()),
                        format!("deploy field \"{key}\" is not supported yet"),
                    )
                    .field(field(&format!("deploy.{key}")))
                    .hint(format!(
                        "stackroll converts deploy.{}",
                        SUPPORTED_DEPLOY_FIELDS.join(", deploy.")
                    )),
                );
            }
        }
    }
    let service_labels = labels(deploy_get("labels"), &field("deploy.labels"), &mut problems);
    let mode = deploy_mode(
        deploy_get("mode"),
        deploy_get("replicas"),
        &field("deploy"),
        &mut problems,
    );
    let update = deploy_get("update_config")
        .map(|node| update_config(node, &field("deploy.update_config"), &mut problems));
    let rollback_config = deploy_get("rollback_config")
        .map(|node| update_config(node, &field("deploy.rollback_config"), &mut problems));
    let restart_policy = deploy_get("restart_policy")
        .map(|node| restart_policy(node, &field("deploy.restart_policy"), &mut problems));
    let healthcheck =
        get("healthcheck").map(|node| healthcheck(node, &field("healthcheck"), &mut problems));
    let networks = service_networks(namespace, service, project, &mut problems);

    let secrets = references(ObjectKind::Secret, &service.secrets, objects);
    let configs = references(ObjectKind::Config, &service.configs, objects);
    if problems.has_errors() {
        return Err(problems);
    }

    let mut container = Map::new();
    container.insert("Image".into(), image.clone().into());
    container.insert(
        "Labels".into(),
        json!(namespace.add_label(&container_labels)),
    );
    if let Some(entrypoint) = entrypoint {
        container.insert("Command".into(), json!(entrypoint));
    }
    if let Some(command) = command {
        container.insert("Args".into(), json!(command));
    }
    if let Some(env) = env {
        container.insert("Env".into(), json!(env));
    }
    if let Some(healthcheck) = healthcheck {
        container.insert("Healthcheck".into(), healthcheck);
    }
    container.insert("Privileges".into(), json!({}));
    if !secrets.is_empty() {
        container.insert("Secrets".into(), Value::Array(secrets));
    }
    if !configs.is_empty() {
        container.insert("Configs".into(), Value::Array(configs));
    }

    let mut task = Map::new();
    task.insert("ContainerSpec".into(), Value::Object(container));
    task.insert("Resources".into(), json!({}));
    if let Some(restart_policy) = restart_policy {
        task.insert("RestartPolicy".into(), restart_policy);
    }
    task.insert("Placement".into(), json!({}));
    task.insert("Networks".into(), json!(networks));

    let mut labels = namespace.add_label(&service_labels);
    labels.insert(IMAGE_LABEL.to_string(), image);
    let mut spec = Map::new();
    spec.insert("Name".into(), namespace.scope(&service.name).into());
    spec.insert("Labels".into(), json!(labels));
    spec.insert("TaskTemplate".into(), Value::Object(task));
    spec.insert("Mode".into(), mode);
    if let Some(update_config) = update {
        spec.insert("UpdateConfig".into(), update_config);
    }
    if let Some(rollback_config) = rollback_config {
        spec.insert("RollbackConfig".into(), rollback_config);
    }
    spec.insert("EndpointSpec".into(), json!({"Mode": ""}));
    Ok(Value::Object(spec))
}

/// The NetworkCreateRequests for the stack's own networks that some service uses, by name
/// (`<stack>_default` included when a service names no network), and the names of the
/// external networks services use.
pub fn network_specs(
    namespace: &Namespace,
    project: &Project,
) -> Result<(IndexMap<String, Spec>, Vec<String>), Diagnostics> {
    let mut problems = Diagnostics::default();
    let declared = project.networks.as_ref().and_then(Node::as_map);
    let mut created = IndexMap::new();
    let mut external = Vec::new();
    let mut used: Vec<String> = Vec::new();
    for service in project.services.values() {
        for name in network_names(service) {
            if !used.contains(&name) {
                used.push(name);
            }
        }
    }
    for key in used {
        let entry = declared.and_then(|map| map.get(&key));
        let config = entry.map(|entry| &entry.value).and_then(Node::as_map);
        let get = |field: &str| {
            config
                .and_then(|map| map.get(field))
                .map(|e| &e.value)
                .filter(|n| !n.is_null())
        };
        if entry.is_none() && key != "default" {
            continue; // reported by service_networks
        }
        let field = format!("networks.{key}");
        let explicit_name = get("name").and_then(Node::scalar_text).map(str::to_string);
        let is_external = match get("external").map(|node| (node.typed(), node.as_map())) {
            Some((Some(Typed::Bool(value)), _)) => value,
            Some((_, Some(_))) => true,
            _ => false,
        };
        let legacy_name = get("external")
            .and_then(Node::as_map)
            .and_then(|map| map.get("name"))
            .and_then(|entry| entry.value.scalar_text())
            .map(str::to_string);
        let name = legacy_name
            .or(explicit_name.clone())
            .unwrap_or_else(|| namespace.scope(&key));
        if is_external {
            external.push(
                if explicit_name.is_some() || get("external").and_then(Node::as_map).is_some() {
                    name
                } else {
                    key.clone()
                },
            );
            continue;
        }
        let driver = get("driver")
            .and_then(Node::scalar_text)
            .unwrap_or("overlay")
            .to_string();
        let mut spec = Map::new();
        spec.insert("Name".into(), name.clone().into());
        spec.insert("Driver".into(), driver.into());
        spec.insert("Scope".into(), "swarm".into());
        spec.insert(
            "Labels".into(),
            json!(namespace.add_label(&labels(
                get("labels"),
                &format!("{field}.labels"),
                &mut problems
            ))),
        );
        let options = labels(
            get("driver_opts"),
            &format!("{field}.driver_opts"),
            &mut problems,
        );
        if !options.is_empty() {
            spec.insert("Options".into(), json!(options));
        }
        for (compose, api) in [("internal", "Internal"), ("attachable", "Attachable")] {
            if let Some(Typed::Bool(true)) = get(compose).and_then(Node::typed) {
                spec.insert(api.into(), true.into());
            }
        }
        if let Some(ipam) = get("ipam") {
            spec.insert("IPAM".into(), ipam_spec(ipam));
        }
        created.insert(name, Value::Object(spec));
    }
    if problems.has_errors() {
        return Err(problems);
    }
    Ok((created, external))
}

fn ipam_spec(node: &Node) -> Value {
    let json = node.to_json();
    let configs: Vec<Value> = json["config"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|item| {
                    let mut config = Map::new();
                    for (compose, api) in [
                        ("subnet", "Subnet"),
                        ("ip_range", "IPRange"),
                        ("gateway", "Gateway"),
                    ] {
                        if let Some(value) = item.get(compose).and_then(Value::as_str) {
                            config.insert(api.into(), value.into());
                        }
                    }
                    if let Some(aux) = item.get("aux_addresses") {
                        config.insert("AuxiliaryAddresses".into(), aux.clone());
                    }
                    Value::Object(config)
                })
                .collect()
        })
        .unwrap_or_default();
    let mut ipam = Map::new();
    if let Some(driver) = json.get("driver").and_then(Value::as_str) {
        ipam.insert("Driver".into(), driver.into());
    }
    if !configs.is_empty() {
        ipam.insert("Config".into(), Value::Array(configs));
    }
    Value::Object(ipam)
}

/// The compose network keys a service joins (`default` when it names none).
fn network_names(service: &Service) -> Vec<String> {
    let names: Vec<String> = match service.fields.get("networks").map(|node| &node.value) {
        Some(crate::compose::node::Value::Seq(items)) => items
            .iter()
            .filter_map(|item| item.scalar_text().map(str::to_string))
            .collect(),
        Some(crate::compose::node::Value::Map(map)) => map.keys().cloned().collect(),
        _ => Vec::new(),
    };
    if names.is_empty() {
        vec!["default".to_string()]
    } else {
        names
    }
}

fn service_networks(
    namespace: &Namespace,
    service: &Service,
    project: &Project,
    problems: &mut Diagnostics,
) -> Vec<Value> {
    let declared = project.networks.as_ref().and_then(Node::as_map);
    let node = service.fields.get("networks");
    let mut attachments: Vec<Value> = Vec::new();
    for key in network_names(service) {
        let config = declared
            .and_then(|map| map.get(&key))
            .map(|entry| &entry.value);
        if config.is_none() && key != "default" {
            let location = node
                .map(|n| n.location.clone())
                .unwrap_or_else(|| service.location.clone());
            problems.push(
                Diagnostic::error(Some(location), format!("network \"{key}\" is not defined"))
                    .field(format!("services.{}.networks", service.name))
                    .hint("define it under the top-level `networks:` key"),
            );
            continue;
        }
        let config_map = config.and_then(Node::as_map);
        let name_of = |field: &str| {
            config_map
                .and_then(|m| m.get(field))
                .and_then(|e| e.value.scalar_text())
                .map(str::to_string)
        };
        let legacy = config_map
            .and_then(|m| m.get("external"))
            .and_then(|e| e.value.as_map())
            .and_then(|m| m.get("name"))
            .and_then(|e| e.value.scalar_text())
            .map(str::to_string);
        let target = legacy
            .or_else(|| name_of("name"))
            .unwrap_or_else(|| namespace.scope(&key));
        let per_service = node
            .and_then(Node::as_map)
            .and_then(|m| m.get(&key))
            .and_then(|e| e.value.as_map());
        let mut aliases: Vec<Value> = per_service
            .and_then(|m| m.get("aliases"))
            .and_then(|e| e.value.as_seq())
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i.scalar_text().map(Value::from))
                    .collect()
            })
            .unwrap_or_default();
        let mut attachment = Map::new();
        attachment.insert("Target".into(), target.clone().into());
        // docker/cli adds the service name as an alias on user-defined networks.
        if !matches!(target.as_str(), "host" | "bridge" | "none" | "default")
            && !target.starts_with("container:")
        {
            aliases.push(service.name.clone().into());
        }
        if !aliases.is_empty() {
            attachment.insert("Aliases".into(), Value::Array(aliases));
        }
        if let Some(opts) = per_service.and_then(|m| m.get("driver_opts")) {
            attachment.insert("DriverOpts".into(), opts.value.to_json());
        }
        attachments.push(Value::Object(attachment));
    }
    attachments.sort_by(|a, b| a["Target"].as_str().cmp(&b["Target"].as_str()));
    attachments
}

/// Secret or config references, sorted by object name (then target) as docker/cli sorts them.
fn references(kind: ObjectKind, refs: &[FileReference], objects: &ResolvedObjects) -> Vec<Value> {
    let (id_key, name_key) = match kind {
        ObjectKind::Secret => ("SecretID", "SecretName"),
        ObjectKind::Config => ("ConfigID", "ConfigName"),
    };
    let mut values: Vec<(String, String, Value)> = refs
        .iter()
        .map(|reference| {
            let (name, id) = objects
                .get(&(kind, reference.source.value.clone()))
                .cloned()
                .unwrap_or_default();
            let value = json!({
                "File": {"Name": reference.target, "UID": reference.uid, "GID": reference.gid, "Mode": reference.mode},
                id_key: id,
                name_key: name,
            });
            (name, reference.target.clone(), value)
        })
        .collect();
    values.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    values.into_iter().map(|(_, _, value)| value).collect()
}

fn string_list(node: &Node, field: &str, problems: &mut Diagnostics) -> Option<Vec<String>> {
    if let Some(items) = node.as_seq() {
        return items
            .iter()
            .map(|item| {
                item.scalar_text().map(str::to_string).ok_or_else(|| {
                    Diagnostic::error(
                        Some(item.location.clone()),
                        format!("expected a string, not {}", item.kind_name()),
                    )
                    .field(field)
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|d| problems.push(d))
            .ok();
    }
    match node.scalar_text() {
        Some(text) => match shell_split(text) {
            Ok(words) => Some(words),
            Err(problem) => {
                problems.push(
                    Diagnostic::error(Some(node.location.clone()), problem)
                        .field(field)
                        .hint("close the quote, or write the command as a list"),
                );
                None
            }
        },
        None => {
            problems.push(
                Diagnostic::error(
                    Some(node.location.clone()),
                    format!("expected a string or a list, not {}", node.kind_name()),
                )
                .field(field),
            );
            None
        }
    }
}

/// Splits a command string into words the way a POSIX shell would (quotes, backslashes).
pub fn shell_split(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated single quote in command".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated double quote in command".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated double quote in command".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    word.push(c);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

fn environment(node: &Node, field: &str, problems: &mut Diagnostics) -> Vec<String> {
    let mut env: Vec<String> = match (node.as_map(), node.as_seq()) {
        (Some(map), _) => map
            .iter()
            .map(|(key, entry)| match entry.value.scalar_text() {
                None => key.clone(),
                Some(value) => format!("{key}={value}"),
            })
            .collect(),
        (_, Some(items)) => items
            .iter()
            .filter_map(|item| item.scalar_text().map(str::to_string))
            .collect(),
        _ => {
            problems.push(
                Diagnostic::error(
                    Some(node.location.clone()),
                    format!("expected a mapping or a list, not {}", node.kind_name()),
                )
                .field(field),
            );
            Vec::new()
        }
    };
    env.sort();
    env
}

fn labels(
    node: Option<&Node>,
    field: &str,
    problems: &mut Diagnostics,
) -> IndexMap<String, String> {
    let Some(node) = node else {
        return IndexMap::new();
    };
    if let Some(map) = node.as_map() {
        return map
            .iter()
            .map(|(key, entry)| {
                (
                    key.clone(),
                    entry.value.scalar_text().unwrap_or_default().to_string(),
                )
            })
            .collect();
    }
    if let Some(items) = node.as_seq() {
        return items
            .iter()
            .filter_map(|item| item.scalar_text())
            .map(|text| {
                let (key, value) = text.split_once('=').unwrap_or((text, ""));
                (key.to_string(), value.to_string())
            })
            .collect();
    }
    if !node.is_null() {
        problems.push(
            Diagnostic::error(
                Some(node.location.clone()),
                format!("expected a mapping or a list, not {}", node.kind_name()),
            )
            .field(field),
        );
    }
    IndexMap::new()
}

fn deploy_mode(
    mode: Option<&Node>,
    replicas: Option<&Node>,
    field: &str,
    problems: &mut Diagnostics,
) -> Value {
    let replicas = replicas.and_then(|node| match unsigned(node) {
        Some(n) => Some(n),
        None => {
            problems.push(
                Diagnostic::error(
                    Some(node.location.clone()),
                    "replicas must be a whole number",
                )
                .field(format!("{field}.replicas")),
            );
            None
        }
    });
    let mode_text = mode.and_then(Node::scalar_text).unwrap_or("replicated");
    match mode_text {
        "replicated" => match replicas {
            Some(n) => json!({"Replicated": {"Replicas": n}}),
            None => json!({"Replicated": {}}),
        },
        "global" => json!({"Global": {}}),
        "replicated-job" => {
            json!({"ReplicatedJob": {"MaxConcurrent": replicas, "TotalCompletions": replicas}})
        }
        "global-job" => json!({"GlobalJob": {}}),
        other => {
            problems.push(
                Diagnostic::error(
                    mode.map(|n| n.location.clone()),
                    format!("unknown mode: {other}"),
                )
                .field(format!("{field}.mode"))
                .hint("use replicated, global, replicated-job or global-job"),
            );
            Value::Null
        }
    }
}

fn unsigned(node: &Node) -> Option<u64> {
    match node.typed()? {
        Typed::Int(n) if n >= 0 => Some(n as u64),
        Typed::Str(text) => text.trim().parse().ok(),
        _ => None,
    }
}

fn duration_of(node: &Node, field: &str, problems: &mut Diagnostics) -> Option<i64> {
    match node.scalar_text().map(parse_duration) {
        Some(Ok(nanos)) => Some(nanos),
        Some(Err(problem)) => {
            problems.push(Diagnostic::error(Some(node.location.clone()), problem).field(field));
            None
        }
        None => {
            problems.push(
                Diagnostic::error(
                    Some(node.location.clone()),
                    format!("expected a duration, not {}", node.kind_name()),
                )
                .field(field),
            );
            None
        }
    }
}

/// Reads a mapping's fields, reporting unknown ones, into an API object.
fn convert_fields(
    node: &Node,
    field: &str,
    problems: &mut Diagnostics,
    convert: impl Fn(&str, &Node, &str, &mut Diagnostics) -> Option<Option<(&'static str, Value)>>,
) -> Value {
    let mut out = Map::new();
    let Some(map) = node.as_map() else {
        problems.push(
            Diagnostic::error(
                Some(node.location.clone()),
                format!("expected a mapping, not {}", node.kind_name()),
            )
            .field(field),
        );
        return Value::Object(out);
    };
    for (key, entry) in map {
        let sub = format!("{field}.{key}");
        match convert(key, &entry.value, &sub, problems) {
            None => problems.push(
                Diagnostic::error(
                    Some(entry.key_location.clone()),
                    format!("unknown key \"{key}\""),
                )
                .field(sub),
            ),
            Some(Some((api, value))) => {
                out.insert(api.into(), value);
            }
            Some(None) => {}
        }
    }
    Value::Object(out)
}

fn update_config(node: &Node, field: &str, problems: &mut Diagnostics) -> Value {
    let mut value = convert_fields(node, field, problems, |key, node, sub, problems| {
        Some(match key {
            "parallelism" => unsigned(node).map(|n| ("Parallelism", json!(n))),
            "delay" => duration_of(node, sub, problems).map(|n| ("Delay", json!(n))),
            "monitor" => duration_of(node, sub, problems).map(|n| ("Monitor", json!(n))),
            "failure_action" => node.scalar_text().map(|s| ("FailureAction", json!(s))),
            "order" => node.scalar_text().map(|s| ("Order", json!(s))),
            "max_failure_ratio" => match node.typed() {
                Some(Typed::Float(f)) => Some(("MaxFailureRatio", json!(f))),
                Some(Typed::Int(i)) => Some(("MaxFailureRatio", json!(i as f64))),
                _ => None,
            },
            _ => return None,
        })
    });
    // docker/cli defaults parallelism to 1.
    if let Some(map) = value.as_object_mut() {
        map.entry("Parallelism").or_insert(json!(1));
    }
    value
}

fn restart_policy(node: &Node, field: &str, problems: &mut Diagnostics) -> Value {
    convert_fields(node, field, problems, |key, node, sub, problems| {
        Some(match key {
            "condition" => node.scalar_text().map(|s| ("Condition", json!(s))),
            "delay" => duration_of(node, sub, problems).map(|n| ("Delay", json!(n))),
            "window" => duration_of(node, sub, problems).map(|n| ("Window", json!(n))),
            "max_attempts" => unsigned(node).map(|n| ("MaxAttempts", json!(n))),
            _ => return None,
        })
    })
}

fn healthcheck(node: &Node, field: &str, problems: &mut Diagnostics) -> Value {
    let disabled = node
        .as_map()
        .and_then(|m| m.get("disable"))
        .is_some_and(|e| matches!(e.value.typed(), Some(Typed::Bool(true))));
    if disabled {
        return json!({"Test": ["NONE"]});
    }
    convert_fields(node, field, problems, |key, node, sub, problems| {
        Some(match key {
            "test" => match (node.as_seq(), node.scalar_text()) {
                (Some(items), _) => Some((
                    "Test",
                    json!(items
                        .iter()
                        .filter_map(|i| i.scalar_text())
                        .collect::<Vec<_>>()),
                )),
                (_, Some(text)) => Some(("Test", json!(["CMD-SHELL", text]))),
                _ => None,
            },
            "interval" => duration_of(node, sub, problems).map(|n| ("Interval", json!(n))),
            "timeout" => duration_of(node, sub, problems).map(|n| ("Timeout", json!(n))),
            "start_period" => duration_of(node, sub, problems).map(|n| ("StartPeriod", json!(n))),
            "retries" => unsigned(node).map(|n| ("Retries", json!(n))),
            "disable" => None,
            _ => return None,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words() {
        assert_eq!(
            shell_split("sh -c 'echo hi; sleep 1'").unwrap(),
            vec!["sh", "-c", "echo hi; sleep 1"]
        );
        assert_eq!(
            shell_split(r#"a "b c" d\ e"#).unwrap(),
            vec!["a", "b c", "d e"]
        );
        assert_eq!(shell_split("  ").unwrap(), Vec::<String>::new());
        assert!(shell_split("'open").is_err());
    }
}
