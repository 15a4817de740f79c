//! `deploy:` → the service mode, resources, restart policy, placement and update/rollback
//! settings, as docker/cli's `convertDeployMode`, `convertResources`, `convertRestartPolicy`,
//! `getPlacementPreference` and `convertUpdateConfig` build them.

use indexmap::IndexMap;
use serde_json::{json, Map, Value};

use super::units::{parse_cpus, ram_in_bytes};
use super::values::{
    bad, check_keys, duration, float, get, integer, mapping, string_list, text, unsigned,
};
use crate::diagnostic::Diagnostics;
use crate::model::node::{Entry, Node, Typed};

/// `deploy:` keys docker stack deploy reads.
pub(super) const DEPLOY_KEYS: &[&str] = &[
    "mode",
    "replicas",
    "labels",
    "update_config",
    "rollback_config",
    "resources",
    "restart_policy",
    "placement",
    "endpoint_mode",
];

/// `deploy.update_config` / `rollback_config` keys and the `UpdateConfig` members they set
/// (`convert::provenance`).
pub(super) const UPDATE_CONFIG_MEMBERS: &[(&str, &str)] = &[
    ("parallelism", "Parallelism"),
    ("delay", "Delay"),
    ("failure_action", "FailureAction"),
    ("monitor", "Monitor"),
    ("max_failure_ratio", "MaxFailureRatio"),
    ("order", "Order"),
];

/// `deploy.resources.limits` / `reservations` keys and the `Resources` members they set.
pub(super) const RESOURCE_MEMBERS: &[(&str, &str)] = &[
    ("cpus", "NanoCPUs"),
    ("memory", "MemoryBytes"),
    ("pids", "Pids"),
    ("generic_resources", "GenericResources"),
];

/// `deploy.restart_policy` keys and the `RestartPolicy` members they set.
pub(super) const RESTART_POLICY_MEMBERS: &[(&str, &str)] = &[
    ("condition", "Condition"),
    ("delay", "Delay"),
    ("max_attempts", "MaxAttempts"),
    ("window", "Window"),
];

/// `deploy.placement` keys and the `Placement` members they set.
pub(super) const PLACEMENT_MEMBERS: &[(&str, &str)] = &[
    ("constraints", "Constraints"),
    ("preferences", "Preferences"),
    ("max_replicas_per_node", "MaxReplicas"),
];

/// `ServiceSpec.Mode` from `deploy.mode` and `deploy.replicas`. `replicated-job` and
/// `global-job` are converted as docker/cli 23+ converts them (20.10 rejects them; the 20.10
/// engine runs them).
pub(super) fn mode(
    mode: Option<&Node>,
    replicas: Option<&Node>,
    field: &str,
    problems: &mut Diagnostics,
) -> Value {
    let replicas = replicas.and_then(|node| unsigned(node, &format!("{field}.replicas"), problems));
    let mode_text = match mode {
        Some(node) => text(node, &format!("{field}.mode"), problems).unwrap_or_default(),
        None => String::new(),
    };
    let replicas_not_allowed = |problems: &mut Diagnostics| {
        problems.push(
            bad(
                mode.expect("a mode was written"),
                &format!("{field}.replicas"),
                "replicas can only be used with replicated or replicated-job mode",
            )
            .hint("remove `replicas`, or use `mode: replicated`"),
        );
    };
    match mode_text.as_str() {
        "replicated" | "" => match replicas {
            Some(count) => json!({"Replicated": {"Replicas": count}}),
            None => json!({"Replicated": {}}),
        },
        "global" => {
            if replicas.is_some() {
                replicas_not_allowed(problems);
            }
            json!({"Global": {}})
        }
        "replicated-job" => {
            let mut job = Map::new();
            if let Some(count) = replicas {
                job.insert("MaxConcurrent".into(), count.into());
                job.insert("TotalCompletions".into(), count.into());
            }
            json!({"ReplicatedJob": job})
        }
        "global-job" => {
            if replicas.is_some() {
                replicas_not_allowed(problems);
            }
            json!({"GlobalJob": {}})
        }
        other => {
            let node = mode.expect("a mode was written");
            problems.push(
                bad(
                    node,
                    &format!("{field}.mode"),
                    format!("unknown mode: {other}"),
                )
                .hint("use replicated, global, replicated-job or global-job"),
            );
            Value::Null
        }
    }
}

/// `TaskTemplate.Resources` (always present, as docker/cli always sets it).
pub(super) fn resources(node: Option<&Node>, field: &str, problems: &mut Diagnostics) -> Value {
    let mut resources = Map::new();
    let Some(node) = node else {
        return Value::Object(resources);
    };
    let Some(map) = mapping(node, field, problems) else {
        return Value::Object(resources);
    };
    check_keys(map, &["limits", "reservations"], field, problems);
    if let Some(limits) = get(map, "limits") {
        let sub = format!("{field}.limits");
        if let Some(limits) = mapping(limits, &sub, problems) {
            check_keys(limits, &["cpus", "memory", "pids"], &sub, problems);
            let mut out = Map::new();
            cpus_and_memory(limits, &sub, &mut out, problems);
            if let Some(node) = get(limits, "pids") {
                if let Some(pids) = integer(node, &format!("{sub}.pids"), problems) {
                    if pids != 0 {
                        out.insert("Pids".into(), pids.into());
                    }
                }
            }
            resources.insert("Limits".into(), Value::Object(out));
        }
    }
    if let Some(reservations) = get(map, "reservations") {
        let sub = format!("{field}.reservations");
        if let Some(reservations) = mapping(reservations, &sub, problems) {
            check_keys(
                reservations,
                &["cpus", "memory", "generic_resources"],
                &sub,
                problems,
            );
            let mut out = Map::new();
            cpus_and_memory(reservations, &sub, &mut out, problems);
            if let Some(node) = get(reservations, "generic_resources") {
                let generic =
                    generic_resources(node, &format!("{sub}.generic_resources"), problems);
                if !generic.is_empty() {
                    out.insert("GenericResources".into(), Value::Array(generic));
                }
            }
            resources.insert("Reservations".into(), Value::Object(out));
        }
    }
    Value::Object(resources)
}

fn cpus_and_memory(
    map: &IndexMap<String, Entry>,
    field: &str,
    out: &mut Map<String, Value>,
    problems: &mut Diagnostics,
) {
    if let Some(node) = get(map, "cpus") {
        let sub = format!("{field}.cpus");
        if let Some(cpus) = text(node, &sub, problems) {
            match parse_cpus(&cpus) {
                Ok(0) => {}
                Ok(nanos) => {
                    out.insert("NanoCPUs".into(), nanos.into());
                }
                Err(problem) => problems.push(
                    bad(node, &sub, problem).hint("write a number of CPUs, e.g. \"0.5\" or \"2\""),
                ),
            }
        }
    }
    if let Some(node) = get(map, "memory") {
        let sub = format!("{field}.memory");
        if let Some(bytes) = memory_bytes(node, &sub, problems) {
            if bytes != 0 {
                out.insert("MemoryBytes".into(), bytes.into());
            }
        }
    }
}

/// A size in bytes: an integer, or a string read by go-units' `RAMInBytes` (`512M`, `1g`).
pub(super) fn memory_bytes(node: &Node, field: &str, problems: &mut Diagnostics) -> Option<i64> {
    if let Some(Typed::Int(bytes)) = node.typed() {
        return Some(bytes);
    }
    let text = text(node, field, problems)?;
    match ram_in_bytes(&text) {
        Ok(bytes) => Some(bytes),
        Err(problem) => {
            problems
                .push(bad(node, field, problem).hint("write e.g. 512M, 1g or a number of bytes"));
            None
        }
    }
}

fn generic_resources(node: &Node, field: &str, problems: &mut Diagnostics) -> Vec<Value> {
    let Some(items) = node.as_seq() else {
        problems.push(bad(
            node,
            field,
            format!("expected a list, not {}", node.kind_name()),
        ));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let item_field = format!("{field}[{index}]");
        let Some(map) = mapping(item, &item_field, problems) else {
            continue;
        };
        check_keys(map, &["discrete_resource_spec"], &item_field, problems);
        let mut resource = Map::new();
        if let Some(spec) = get(map, "discrete_resource_spec") {
            let spec_field = format!("{item_field}.discrete_resource_spec");
            if let Some(spec) = mapping(spec, &spec_field, problems) {
                check_keys(spec, &["kind", "value"], &spec_field, problems);
                let mut discrete = Map::new();
                if let Some(kind) =
                    get(spec, "kind").and_then(|n| text(n, &format!("{spec_field}.kind"), problems))
                {
                    if !kind.is_empty() {
                        discrete.insert("Kind".into(), kind.into());
                    }
                }
                if let Some(value) = get(spec, "value")
                    .and_then(|n| integer(n, &format!("{spec_field}.value"), problems))
                {
                    if value != 0 {
                        discrete.insert("Value".into(), value.into());
                    }
                }
                resource.insert("DiscreteResourceSpec".into(), Value::Object(discrete));
            }
        }
        out.push(Value::Object(resource));
    }
    out
}

/// `TaskTemplate.RestartPolicy`: `deploy.restart_policy` when given, else the service's
/// `restart:` read as docker/cli reads it (`no` → none, `always`/`unless-stopped` → any,
/// `on-failure[:N]` → on-failure with N attempts).
pub(super) fn restart_policy(
    policy: Option<&Node>,
    restart: Option<&Node>,
    field_prefix: &str,
    problems: &mut Diagnostics,
) -> Option<Value> {
    if let Some(node) = policy {
        return deploy_restart_policy(node, field_prefix, problems);
    }
    restart_policy_of_restart(restart?, field_prefix, problems)
}

/// `deploy.restart_policy`, field by field.
fn deploy_restart_policy(
    node: &Node,
    field_prefix: &str,
    problems: &mut Diagnostics,
) -> Option<Value> {
    let field = format!("{field_prefix}.deploy.restart_policy");
    let map = mapping(node, &field, problems)?;
    check_keys(
        map,
        &["condition", "delay", "max_attempts", "window"],
        &field,
        problems,
    );
    let mut out = Map::new();
    if let Some(node) = get(map, "condition") {
        let sub = format!("{field}.condition");
        if let Some(condition) = text(node, &sub, problems) {
            if !matches!(condition.as_str(), "none" | "on-failure" | "any") {
                problems.push(
                    bad(
                        node,
                        &sub,
                        format!("invalid restart condition {condition:?}"),
                    )
                    .hint("use none, on-failure or any"),
                );
            } else {
                out.insert("Condition".into(), condition.into());
            }
        }
    }
    if let Some(node) = get(map, "delay") {
        if let Some(nanos) = duration(node, &format!("{field}.delay"), problems) {
            out.insert("Delay".into(), nanos.into());
        }
    }
    if let Some(node) = get(map, "max_attempts") {
        if let Some(count) = unsigned(node, &format!("{field}.max_attempts"), problems) {
            out.insert("MaxAttempts".into(), count.into());
        }
    }
    if let Some(node) = get(map, "window") {
        if let Some(nanos) = duration(node, &format!("{field}.window"), problems) {
            out.insert("Window".into(), nanos.into());
        }
    }
    Some(Value::Object(out))
}

/// The service's `restart:` as docker/cli reads it when there is no `deploy.restart_policy`.
fn restart_policy_of_restart(
    node: &Node,
    field_prefix: &str,
    problems: &mut Diagnostics,
) -> Option<Value> {
    let field = format!("{field_prefix}.restart");
    let policy = text(node, &field, problems)?;
    let hint =
        "use no, always, unless-stopped, on-failure or on-failure:N, or set deploy.restart_policy";
    let parts: Vec<&str> = policy.split(':').collect();
    if parts.len() > 2 {
        problems.push(bad(node, &field, "invalid restart policy format").hint(hint));
        return None;
    }
    let mut attempts: u64 = 0;
    if parts.len() == 2 {
        let count = parts[1];
        let digits = count.strip_prefix(['+', '-']).unwrap_or(count);
        let parsed: Option<i64> = (!digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| count.parse().ok())
        .flatten();
        match parsed.map(u64::try_from) {
            Some(Ok(count)) => attempts = count,
            Some(Err(_)) => {
                problems
                    .push(bad(node, &field, "maximum retry count must not be negative").hint(hint));
                return None;
            }
            None => {
                problems
                    .push(bad(node, &field, "maximum retry count must be an integer").hint(hint));
                return None;
            }
        }
    }
    match parts[0] {
        "" | "no" => None,
        "always" | "unless-stopped" => Some(json!({"Condition": "any"})),
        "on-failure" => Some(json!({"Condition": "on-failure", "MaxAttempts": attempts})),
        other => {
            problems.push(bad(node, &field, format!("unknown restart policy: {other}")).hint(hint));
            None
        }
    }
}

/// `TaskTemplate.Placement` (always present, as docker/cli always sets it).
pub(super) fn placement(node: Option<&Node>, field: &str, problems: &mut Diagnostics) -> Value {
    let mut placement = Map::new();
    let Some(node) = node else {
        return Value::Object(placement);
    };
    let Some(map) = mapping(node, field, problems) else {
        return Value::Object(placement);
    };
    check_keys(
        map,
        &["constraints", "preferences", "max_replicas_per_node"],
        field,
        problems,
    );
    if let Some(node) = get(map, "constraints") {
        if let Some(constraints) = string_list(node, &format!("{field}.constraints"), problems) {
            if !constraints.is_empty() {
                placement.insert("Constraints".into(), json!(constraints));
            }
        }
    }
    if let Some(node) = get(map, "preferences") {
        let sub = format!("{field}.preferences");
        match node.as_seq() {
            Some(items) => {
                let mut preferences = Vec::new();
                for (index, item) in items.iter().enumerate() {
                    let item_field = format!("{sub}[{index}]");
                    let Some(item) = mapping(item, &item_field, problems) else {
                        continue;
                    };
                    check_keys(item, &["spread"], &item_field, problems);
                    let spread = get(item, "spread")
                        .and_then(|n| text(n, &format!("{item_field}.spread"), problems))
                        .unwrap_or_default();
                    preferences.push(json!({"Spread": {"SpreadDescriptor": spread}}));
                }
                if !preferences.is_empty() {
                    placement.insert("Preferences".into(), Value::Array(preferences));
                }
            }
            None => problems.push(bad(
                node,
                &sub,
                format!("expected a list, not {}", node.kind_name()),
            )),
        }
    }
    if let Some(node) = get(map, "max_replicas_per_node") {
        if let Some(max) = unsigned(node, &format!("{field}.max_replicas_per_node"), problems) {
            if max != 0 {
                placement.insert("MaxReplicas".into(), max.into());
            }
        }
    }
    Value::Object(placement)
}

/// `UpdateConfig` / `RollbackConfig` as docker/cli's `convertUpdateConfig`: parallelism
/// defaults to 1; `MaxFailureRatio` and `Order` always present (Go has no `omitempty` on
/// them), zero delays and an empty failure action left out.
pub(super) fn update_config(node: &Node, field: &str, problems: &mut Diagnostics) -> Value {
    let mut out = Map::new();
    let mut parallelism: u64 = 1;
    let mut ratio: f64 = 0.0;
    let mut order = String::new();
    if let Some(map) = mapping(node, field, problems) {
        check_keys(
            map,
            &[
                "parallelism",
                "delay",
                "failure_action",
                "monitor",
                "max_failure_ratio",
                "order",
            ],
            field,
            problems,
        );
        let sub = |key: &str| format!("{field}.{key}");
        if let Some(node) = get(map, "parallelism") {
            if let Some(value) = unsigned(node, &sub("parallelism"), problems) {
                parallelism = value;
            }
        }
        if let Some(node) = get(map, "delay") {
            if let Some(nanos) = duration(node, &sub("delay"), problems) {
                if nanos != 0 {
                    out.insert("Delay".into(), nanos.into());
                }
            }
        }
        if let Some(node) = get(map, "failure_action") {
            if let Some(action) = choice(
                node,
                &sub("failure_action"),
                &["continue", "pause", "rollback"],
                problems,
            ) {
                out.insert("FailureAction".into(), action.into());
            }
        }
        if let Some(node) = get(map, "monitor") {
            if let Some(nanos) = duration(node, &sub("monitor"), problems) {
                if nanos != 0 {
                    out.insert("Monitor".into(), nanos.into());
                }
            }
        }
        if let Some(node) = get(map, "max_failure_ratio") {
            if let Some(value) = float(node, &sub("max_failure_ratio"), problems) {
                // docker/cli holds it as a float32: send the float32's shortest decimal.
                ratio = (value as f32).to_string().parse().unwrap_or(value);
            }
        }
        if let Some(node) = get(map, "order") {
            if let Some(value) = choice(
                node,
                &sub("order"),
                &["stop-first", "start-first"],
                problems,
            ) {
                order = value;
            }
        }
    }
    let mut config = Map::new();
    config.insert("Parallelism".into(), parallelism.into());
    config.extend(out);
    config.insert("MaxFailureRatio".into(), go_float(ratio));
    config.insert("Order".into(), order.into());
    Value::Object(config)
}

/// A string that must be one of `choices` (compared without case, as the engine does; sent
/// lower-case).
fn choice(
    node: &Node,
    field: &str,
    choices: &[&str],
    problems: &mut Diagnostics,
) -> Option<String> {
    let value = text(node, field, problems)?;
    let lower = value.to_ascii_lowercase();
    if choices.contains(&lower.as_str()) {
        return Some(lower);
    }
    problems.push(
        bad(node, field, format!("invalid value {value:?}"))
            .hint(format!("use {}", choices.join(", "))),
    );
    None
}

/// A float as Go's encoding/json writes it: integral values without a fraction.
pub(super) fn go_float(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        json!(value as i64)
    } else {
        json!(value)
    }
}
