//! A Compose service → Swarm ServiceSpec JSON, field by field as docker/cli's
//! `convert.Service` builds it (docker/cli 20.10, the `docker stack deploy` that runs against
//! the engines stackroll supports; where 20.10 refuses a field that later docker/cli versions
//! and the 20.10 engine support, the later conversion is used and says so).

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::deploy::{self, DEPLOY_KEYS};
use super::envfile::container_env;
use super::network::service_networks;
use super::ports::ports;
use super::units::{effective_capabilities, shell_split};
use super::values::{
    bad, boolean, check_keys, duration, get, integer, mapping, string_list, string_map,
    string_mapping, string_or_list, text, unsigned,
};
use super::volumes::mounts;
use super::Namespace;
use crate::compose::node::Node;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::engine::Spec;
use crate::model::{FileReference, ObjectKind, Project, Service};

/// Label docker/cli puts on a service with the image the compose file named.
pub const IMAGE_LABEL: &str = "com.docker.stack.image";

/// Service keys `docker stack deploy` accepts and ignores (docker/cli's unsupported and
/// deprecated properties, and the ones its converter never reads), plus Compose-specification
/// keys that only matter to `docker compose`. `restart` is not here: docker/cli uses it when
/// `deploy.restart_policy` is absent.
pub const IGNORED_SERVICE_FIELDS: &[&str] = &[
    "build",
    "cgroup_parent",
    "cgroupns_mode",
    "container_name",
    "depends_on",
    "devices",
    "domainname",
    "expose",
    "external_links",
    "ipc",
    "links",
    "mac_address",
    "network_mode",
    "pid",
    "privileged",
    "profiles",
    "pull_policy",
    "security_opt",
    "shm_size",
    "tmpfs",
    "userns_mode",
];

/// Service keys converted into the ServiceSpec.
pub const CONVERTED_SERVICE_FIELDS: &[&str] = &[
    "image",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "labels",
    "deploy",
    "healthcheck",
    "networks",
    "ports",
    "volumes",
    "dns",
    "dns_search",
    "dns_opt",
    "extra_hosts",
    "hostname",
    "user",
    "working_dir",
    "stop_grace_period",
    "stop_signal",
    "tty",
    "stdin_open",
    "read_only",
    "init",
    "cap_add",
    "cap_drop",
    "sysctls",
    "ulimits",
    "logging",
    "isolation",
    "credential_spec",
    "restart",
];

/// Keys docker/cli refuses outright, with its reason.
const FORBIDDEN_SERVICE_FIELDS: &[(&str, &str)] = &[
    ("extends", "Support for `extends` is not implemented yet."),
    ("volume_driver", "Instead of setting the volume driver on the service, define a volume using the top-level `volumes` option and specify the driver there."),
    ("volumes_from", "To share a volume between services, define it using the top-level `volumes` option and reference it from each service that shares it using the service-level `volumes` option."),
    ("cpu_quota", "Set resource limits using deploy.resources"),
    ("cpu_shares", "Set resource limits using deploy.resources"),
    ("cpuset", "Set resource limits using deploy.resources"),
    ("mem_limit", "Set resource limits using deploy.resources"),
    ("memswap_limit", "Set resource limits using deploy.resources"),
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
    let converted = convert(namespace, service, project, objects);
    if converted.problems.has_errors() {
        return Err(converted.problems);
    }
    Ok(converted.spec)
}

/// One conversion: the spec (meaningful only without errors), the problems, and what
/// docker stack deploy would ignore.
pub(super) struct Converted {
    pub spec: Spec,
    pub problems: Diagnostics,
    pub ignored: Vec<String>,
}

/// Converts `service`.
pub(super) fn convert(
    namespace: &Namespace,
    service: &Service,
    project: &Project,
    objects: &ResolvedObjects,
) -> Converted {
    let mut problems = Diagnostics::default();
    let mut ignored: Vec<String> = Vec::new();
    let prefix = format!("services.{}", service.name);
    let field = |name: &str| format!("{prefix}.{name}");
    check_service_keys(service, &prefix, &mut ignored, &mut problems);
    let get = |key: &str| service.fields.get(key).filter(|node| !node.is_null());
    let problems = &mut problems;

    let image = match get("image").and_then(|node| text(node, &field("image"), problems)) {
        Some(image) if !image.is_empty() => image,
        _ => {
            problems.push(
                Diagnostic::error(Some(service.location.clone()), "service has no image")
                    .field(field("image"))
                    .hint("add `image: NAME:TAG`; docker stack deploy does not build images"),
            );
            String::new()
        }
    };

    // deploy:
    let deploy = get("deploy").and_then(|node| mapping(node, &field("deploy"), problems));
    if let Some(map) = deploy {
        check_keys(map, DEPLOY_KEYS, &field("deploy"), problems);
    }
    let deploy_get = |key: &str| deploy.and_then(|map| super::values::get(map, key));
    let service_labels = deploy_get("labels")
        .and_then(|node| string_mapping(node, &field("deploy.labels"), problems))
        .unwrap_or_default();
    let mode = deploy::mode(
        deploy_get("mode"),
        deploy_get("replicas"),
        &field("deploy"),
        problems,
    );
    let update_config = deploy_get("update_config")
        .map(|node| deploy::update_config(node, &field("deploy.update_config"), problems));
    let rollback_config = deploy_get("rollback_config")
        .map(|node| deploy::update_config(node, &field("deploy.rollback_config"), problems));
    let resources = deploy::resources(
        deploy_get("resources"),
        &field("deploy.resources"),
        problems,
    );
    let restart_policy = deploy::restart_policy(
        deploy_get("restart_policy"),
        get("restart"),
        &prefix,
        problems,
    );
    if deploy_get("restart_policy").is_some() && get("restart").is_some() {
        ignored.push("restart (deploy.restart_policy is used)".into());
    }
    let placement = deploy::placement(
        deploy_get("placement"),
        &field("deploy.placement"),
        problems,
    );
    let endpoint_mode = deploy_get("endpoint_mode").and_then(|node| {
        let sub = field("deploy.endpoint_mode");
        let value = text(node, &sub, problems)?;
        let lower = value.to_ascii_lowercase();
        if matches!(lower.as_str(), "" | "vip" | "dnsrr") {
            Some(lower)
        } else {
            problems.push(
                bad(node, &sub, format!("invalid endpoint mode {value:?}"))
                    .hint("use vip or dnsrr"),
            );
            None
        }
    });
    let ports = get("ports").map(|node| ports(node, &field("ports"), problems));
    if let Some(ports) = &ports {
        for (index, ip) in &ports.ignored_ips {
            ignored.push(format!(
                "ports[{index}] host IP {ip} (Swarm publishes on all addresses)"
            ));
        }
    }

    // The container.
    let mut container = Map::new();
    container.insert("Image".into(), image.clone().into());
    let container_labels = get("labels")
        .and_then(|node| string_mapping(node, &field("labels"), problems))
        .unwrap_or_default();
    container.insert(
        "Labels".into(),
        json!(namespace.add_label(&container_labels)),
    );
    // Empty lists are left out (Go's omitempty): the image's own entrypoint and command run.
    if let Some(entrypoint) = get("entrypoint")
        .and_then(|node| command(node, &field("entrypoint"), problems))
        .filter(|words| !words.is_empty())
    {
        container.insert("Command".into(), json!(entrypoint));
    }
    if let Some(args) = get("command")
        .and_then(|node| command(node, &field("command"), problems))
        .filter(|words| !words.is_empty())
    {
        container.insert("Args".into(), json!(args));
    }
    for (key, api) in [
        ("hostname", "Hostname"),
        ("working_dir", "Dir"),
        ("user", "User"),
        ("stop_signal", "StopSignal"),
    ] {
        if let Some(value) = get(key).and_then(|node| text(node, &field(key), problems)) {
            if !value.is_empty() {
                container.insert(api.into(), value.into());
            }
        }
    }
    if let Some(hosts) =
        get("extra_hosts").and_then(|node| extra_hosts(node, &field("extra_hosts"), problems))
    {
        if !hosts.is_empty() {
            container.insert("Hosts".into(), json!(hosts));
        }
    }
    if let Some(dns) = dns_config(
        get("dns"),
        get("dns_search"),
        get("dns_opt"),
        &prefix,
        problems,
    ) {
        container.insert("DNSConfig".into(), dns);
    }
    if let Some(health) =
        get("healthcheck").and_then(|node| healthcheck(node, &field("healthcheck"), problems))
    {
        container.insert("Healthcheck".into(), health);
    }
    if let Some(env) = container_env(
        get("env_file"),
        get("environment"),
        &prefix,
        problems,
        &project.env_files,
        &|name| project.environment.get(name).map(str::to_string),
    ) {
        if !env.is_empty() {
            container.insert("Env".into(), json!(env));
        }
    }
    if let Some(node) = get("volumes") {
        let converted = mounts(node, namespace, project, &field("volumes"), problems);
        ignored.extend(
            converted
                .ignored
                .into_iter()
                .map(|path| path.trim_start_matches(&format!("{prefix}.")).to_string()),
        );
        if !converted.mounts.is_empty() {
            container.insert("Mounts".into(), Value::Array(converted.mounts));
        }
    }
    if let Some(node) = get("stop_grace_period") {
        if let Some(nanos) = duration(node, &field("stop_grace_period"), problems) {
            container.insert("StopGracePeriod".into(), nanos.into());
        }
    }
    for (key, api) in [
        ("tty", "TTY"),
        ("stdin_open", "OpenStdin"),
        ("read_only", "ReadOnly"),
    ] {
        if let Some(true) = get(key).and_then(|node| boolean(node, &field(key), problems)) {
            container.insert(api.into(), true.into());
        }
    }
    let secrets = references(
        ObjectKind::Secret,
        &service.secrets,
        objects,
        project,
        namespace,
    );
    let mut configs = references(
        ObjectKind::Config,
        &service.configs,
        objects,
        project,
        namespace,
    );
    let mut privileges = Map::new();
    if let Some(node) = get("credential_spec") {
        if let Some((spec, runtime)) = credential_spec(
            node,
            &field("credential_spec"),
            project,
            namespace,
            objects,
            problems,
        ) {
            privileges.insert("CredentialSpec".into(), spec);
            configs.extend(runtime);
        }
    }
    container.insert("Privileges".into(), Value::Object(privileges));
    if let Some(value) =
        get("isolation").and_then(|node| isolation(node, &field("isolation"), problems))
    {
        container.insert("Isolation".into(), value.into());
    }
    if let Some(init) = get("init").and_then(|node| boolean(node, &field("init"), problems)) {
        container.insert("Init".into(), init.into());
    }
    if let Some(sysctls) =
        get("sysctls").and_then(|node| string_mapping(node, &field("sysctls"), problems))
    {
        if !sysctls.is_empty() {
            container.insert("Sysctls".into(), json!(sysctls));
        }
    }
    let cap_add = get("cap_add")
        .and_then(|node| string_list(node, &field("cap_add"), problems))
        .unwrap_or_default();
    let cap_drop = get("cap_drop")
        .and_then(|node| string_list(node, &field("cap_drop"), problems))
        .unwrap_or_default();
    let (cap_add, cap_drop) = effective_capabilities(&cap_add, &cap_drop);
    if !cap_add.is_empty() {
        container.insert("CapabilityAdd".into(), json!(cap_add));
    }
    if !cap_drop.is_empty() {
        container.insert("CapabilityDrop".into(), json!(cap_drop));
    }
    if let Some(ulimits) =
        get("ulimits").and_then(|node| ulimits(node, &field("ulimits"), problems))
    {
        if !ulimits.is_empty() {
            container.insert("Ulimits".into(), Value::Array(ulimits));
        }
    }
    let secrets = sorted(secrets);
    let configs = sorted(configs);
    if !secrets.is_empty() {
        container.insert("Secrets".into(), Value::Array(secrets));
    }
    if !configs.is_empty() {
        container.insert("Configs".into(), Value::Array(configs));
    }

    // The task.
    let mut task = Map::new();
    task.insert("ContainerSpec".into(), Value::Object(container));
    task.insert("Resources".into(), resources);
    if let Some(restart_policy) = restart_policy {
        task.insert("RestartPolicy".into(), restart_policy);
    }
    task.insert("Placement".into(), placement);
    let attachments = service_networks(namespace, service, project, problems);
    ignored.extend(attachments.ignored);
    task.insert("Networks".into(), Value::Array(attachments.networks));
    // docker/cli sends it (no omitempty); a deploy keeps the live value (see the planner).
    task.insert("ForceUpdate".into(), 0.into());
    if let Some(driver) = get("logging").and_then(|node| logging(node, &field("logging"), problems))
    {
        task.insert("LogDriver".into(), driver);
    }

    // The service.
    let mut labels = namespace.add_label(&service_labels);
    labels.insert(IMAGE_LABEL.to_string(), image);
    let mut spec = Map::new();
    spec.insert("Name".into(), namespace.scope(&service.name).into());
    spec.insert("Labels".into(), json!(labels));
    spec.insert("TaskTemplate".into(), Value::Object(task));
    spec.insert("Mode".into(), mode);
    if let Some(update_config) = update_config {
        spec.insert("UpdateConfig".into(), update_config);
    }
    if let Some(rollback_config) = rollback_config {
        spec.insert("RollbackConfig".into(), rollback_config);
    }
    let mut endpoint = Map::new();
    if let Some(mode) = endpoint_mode.filter(|mode| !mode.is_empty()) {
        endpoint.insert("Mode".into(), mode.into());
    }
    if let Some(ports) = ports.filter(|ports| !ports.ports.is_empty()) {
        endpoint.insert(
            "Ports".into(),
            ports
                .ports
                .iter()
                .map(super::ports::PortConfig::to_json)
                .collect(),
        );
    }
    spec.insert("EndpointSpec".into(), Value::Object(endpoint));
    let problems = std::mem::take(problems);
    Converted {
        spec: Value::Object(spec),
        problems,
        ignored,
    }
}

/// Reports service keys stackroll cannot convert; collects the ones docker stack deploy
/// ignores.
fn check_service_keys(
    service: &Service,
    prefix: &str,
    ignored: &mut Vec<String>,
    problems: &mut Diagnostics,
) {
    for (key, node) in &service.fields {
        if CONVERTED_SERVICE_FIELDS.contains(&key.as_str()) || key.starts_with("x-") {
            continue;
        }
        if IGNORED_SERVICE_FIELDS.contains(&key.as_str()) {
            ignored.push(key.clone());
            continue;
        }
        let field = format!("{prefix}.{key}");
        let diagnostic = if let Some((_, reason)) = FORBIDDEN_SERVICE_FIELDS
            .iter()
            .find(|(name, _)| name == key)
        {
            Diagnostic::error(
                Some(node.location.clone()),
                format!("docker stack deploy does not support \"{key}\""),
            )
            .hint(*reason)
        } else if key == "oom_score_adj" {
            Diagnostic::error(
                Some(node.location.clone()),
                "oom_score_adj is not supported by docker stack deploy 20.10 (Docker Engine API 1.46 added it to services)",
            )
            .hint("remove it; Swarm on this engine cannot set it")
        } else {
            Diagnostic::error(
                Some(node.location.clone()),
                format!("service field \"{key}\" is not supported by docker stack deploy"),
            )
            .hint("remove it, or deploy with docker compose; stackroll converts the fields docker stack deploy converts")
        };
        problems.push(diagnostic.field(field));
    }
}

/// `command` / `entrypoint`: a list as written, a string split as google/shlex splits it.
fn command(node: &Node, field: &str, problems: &mut Diagnostics) -> Option<Vec<String>> {
    if node.as_seq().is_some() {
        return string_list(node, field, problems);
    }
    let text = text(node, field, problems)?;
    match shell_split(&text) {
        Ok(words) => Some(words),
        Err(problem) => {
            problems.push(
                bad(node, field, problem).hint("close the quote, or write the command as a list"),
            );
            None
        }
    }
}

/// `extra_hosts` → `Hosts`, "IP NAME" lines. A mapping is sorted by "NAME:IP" as docker/cli
/// sorts it; list items may be "NAME:IP" or (docker/cli 23+, the Compose specification)
/// "NAME=IP", with an IPv6 address optionally in brackets. Items without a separator are
/// dropped, as docker/cli drops them.
fn extra_hosts(node: &Node, field: &str, problems: &mut Diagnostics) -> Option<Vec<String>> {
    let entries: Vec<String> = if let Some(map) = node.as_map() {
        let mut entries = Vec::new();
        for (name, entry) in map {
            if entry.value.is_null() {
                continue;
            }
            let ip = text(&entry.value, &format!("{field}.{name}"), problems)?;
            entries.push(format!("{name}:{ip}"));
        }
        entries.sort();
        entries
    } else if node.as_seq().is_some() {
        string_list(node, field, problems)?
            .into_iter()
            .filter_map(|item| {
                let (name, ip) = item.split_once('=').or_else(|| item.split_once(':'))?;
                Some(format!("{name}:{ip}"))
            })
            .collect()
    } else {
        problems.push(bad(
            node,
            field,
            format!("expected a mapping or a list, not {}", node.kind_name()),
        ));
        return None;
    };
    Some(
        entries
            .into_iter()
            .filter_map(|entry| {
                let (name, ip) = entry.split_once(':')?;
                let ip = ip
                    .strip_prefix('[')
                    .and_then(|inner| inner.strip_suffix(']'))
                    .filter(|_| ip.len() > 2)
                    .unwrap_or(ip);
                Some(format!("{ip} {name}"))
            })
            .collect(),
    )
}

/// `dns`, `dns_search` (and `dns_opt`, which docker/cli does not read; the engine does) →
/// `DNSConfig`, present when any of them is.
fn dns_config(
    dns: Option<&Node>,
    search: Option<&Node>,
    options: Option<&Node>,
    prefix: &str,
    problems: &mut Diagnostics,
) -> Option<Value> {
    if dns.is_none() && search.is_none() && options.is_none() {
        return None;
    }
    let mut config = Map::new();
    for (node, key, api) in [
        (dns, "dns", "Nameservers"),
        (search, "dns_search", "Search"),
        (options, "dns_opt", "Options"),
    ] {
        let Some(node) = node else { continue };
        let values = if key == "dns_opt" {
            string_list(node, &format!("{prefix}.{key}"), problems)
        } else {
            string_or_list(node, &format!("{prefix}.{key}"), problems)
        };
        if let Some(values) = values.filter(|v| !v.is_empty()) {
            config.insert(api.into(), json!(values));
        }
    }
    Some(Value::Object(config))
}

/// `healthcheck` → `Healthcheck` (docker/cli's `convertHealthcheck`).
fn healthcheck(node: &Node, field: &str, problems: &mut Diagnostics) -> Option<Value> {
    let map = mapping(node, field, problems)?;
    check_keys(
        map,
        &[
            "test",
            "interval",
            "timeout",
            "retries",
            "start_period",
            "start_interval",
            "disable",
        ],
        field,
        problems,
    );
    if let Some(entry) = map.get("start_interval") {
        problems.push(
            Diagnostic::error(
                Some(entry.key_location.clone()),
                "healthcheck.start_interval is not supported by docker stack deploy 20.10 (Docker Engine API 1.44 added it)",
            )
            .field(format!("{field}.start_interval"))
            .hint("remove it; start_period still applies"),
        );
    }
    let sub = |key: &str| format!("{field}.{key}");
    let test: Option<Vec<String>> = get(map, "test").and_then(|node| {
        if node.as_seq().is_some() {
            string_list(node, &sub("test"), problems)
        } else {
            text(node, &sub("test"), problems).map(|command| vec!["CMD-SHELL".to_string(), command])
        }
    });
    let disabled = get(map, "disable")
        .and_then(|node| boolean(node, &sub("disable"), problems))
        .unwrap_or(false);
    if disabled {
        if test.as_ref().is_some_and(|test| !test.is_empty()) {
            problems.push(
                bad(
                    node,
                    field,
                    "test and disable can't be set at the same time",
                )
                .hint("remove `test`, or `disable: true`"),
            );
            return None;
        }
        return Some(json!({"Test": ["NONE"]}));
    }
    let mut health = Map::new();
    if let Some(test) = test.filter(|test| !test.is_empty()) {
        health.insert("Test".into(), json!(test));
    }
    for (key, api) in [
        ("interval", "Interval"),
        ("timeout", "Timeout"),
        ("start_period", "StartPeriod"),
    ] {
        if let Some(nanos) = get(map, key).and_then(|node| duration(node, &sub(key), problems)) {
            if nanos != 0 {
                health.insert(api.into(), nanos.into());
            }
        }
    }
    if let Some(retries) =
        get(map, "retries").and_then(|node| unsigned(node, &sub("retries"), problems))
    {
        if retries != 0 {
            health.insert("Retries".into(), retries.into());
        }
    }
    Some(Value::Object(health))
}

/// `logging` → `LogDriver`.
fn logging(node: &Node, field: &str, problems: &mut Diagnostics) -> Option<Value> {
    let map = mapping(node, field, problems)?;
    check_keys(map, &["driver", "options"], field, problems);
    let mut driver = Map::new();
    if let Some(name) =
        get(map, "driver").and_then(|node| text(node, &format!("{field}.driver"), problems))
    {
        if !name.is_empty() {
            driver.insert("Name".into(), name.into());
        }
    }
    if let Some(options) =
        get(map, "options").and_then(|node| string_map(node, &format!("{field}.options"), problems))
    {
        if !options.is_empty() {
            driver.insert("Options".into(), json!(options));
        }
    }
    Some(Value::Object(driver))
}

/// `isolation`: the engine reads it without case and knows default, process and hyperv.
fn isolation(node: &Node, field: &str, problems: &mut Diagnostics) -> Option<String> {
    let value = text(node, field, problems)?;
    let lower = value.to_ascii_lowercase();
    match lower.as_str() {
        "" => None,
        "default" | "process" | "hyperv" => Some(lower),
        _ => {
            problems.push(
                bad(node, field, format!("invalid isolation {value:?}"))
                    .hint("use default, process or hyperv"),
            );
            None
        }
    }
}

/// `ulimits` → `Ulimits`, sorted by name: a number sets both limits, `{soft, hard}` each.
fn ulimits(node: &Node, field: &str, problems: &mut Diagnostics) -> Option<Vec<Value>> {
    let map = mapping(node, field, problems)?;
    let mut limits: Vec<(String, i64, i64)> = Vec::new();
    for (name, entry) in map {
        let sub = format!("{field}.{name}");
        let value = &entry.value;
        if let Some(pair) = value.as_map() {
            check_keys(pair, &["soft", "hard"], &sub, problems);
            let (Some(soft), Some(hard)) = (get(pair, "soft"), get(pair, "hard")) else {
                problems.push(
                    bad(value, &sub, "a ulimit needs both `soft` and `hard`")
                        .hint("write e.g. {soft: 1024, hard: 2048}, or one number for both"),
                );
                continue;
            };
            let (Some(soft), Some(hard)) = (
                integer(soft, &format!("{sub}.soft"), problems),
                integer(hard, &format!("{sub}.hard"), problems),
            ) else {
                continue;
            };
            limits.push((name.clone(), soft, hard));
        } else if let Some(single) = integer(value, &sub, problems) {
            limits.push((name.clone(), single, single));
        }
    }
    limits.sort_by(|a, b| a.0.cmp(&b.0));
    Some(
        limits
            .into_iter()
            .map(|(name, soft, hard)| json!({"Name": name, "Hard": hard, "Soft": soft}))
            .collect(),
    )
}

/// The name docker/cli gives the object a reference names (`name:`, the key for an external
/// object, `<stack>_<key>` otherwise): docker/cli sorts references by it.
fn base_name(kind: ObjectKind, key: &str, project: &Project, namespace: &Namespace) -> String {
    match project.definitions(kind).get(key) {
        Some(definition) => match &definition.name {
            Some(name) => name.value.clone(),
            None if definition.is_external() => key.to_string(),
            None => namespace.scope(key),
        },
        None => namespace.scope(key),
    }
}

/// A reference and what it sorts by: (docker/cli's object name, file before runtime, target).
type Sortable = ((String, u8, String), Value);

/// Secret or config file references.
fn references(
    kind: ObjectKind,
    refs: &[FileReference],
    objects: &ResolvedObjects,
    project: &Project,
    namespace: &Namespace,
) -> Vec<Sortable> {
    let (id_key, name_key) = match kind {
        ObjectKind::Secret => ("SecretID", "SecretName"),
        ObjectKind::Config => ("ConfigID", "ConfigName"),
    };
    refs.iter()
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
            let sort = (
                base_name(kind, &reference.source.value, project, namespace),
                0,
                reference.target.clone(),
            );
            (sort, value)
        })
        .collect()
}

/// docker/cli sorts references by object name, keeping file references before the runtime
/// one of the same config (the order of two references to one object is undefined there:
/// here, by target).
fn sorted(mut references: Vec<Sortable>) -> Vec<Value> {
    references.sort_by(|a, b| a.0.cmp(&b.0));
    references.into_iter().map(|(_, value)| value).collect()
}

/// `credential_spec` → `Privileges.CredentialSpec`, and for `config:` the runtime config
/// reference docker/cli adds.
fn credential_spec(
    node: &Node,
    field: &str,
    project: &Project,
    namespace: &Namespace,
    objects: &ResolvedObjects,
    problems: &mut Diagnostics,
) -> Option<(Value, Option<Sortable>)> {
    let map = mapping(node, field, problems)?;
    check_keys(map, &["config", "file", "registry"], field, problems);
    let value = |key: &str, problems: &mut Diagnostics| {
        get(map, key)
            .and_then(|node| text(node, &format!("{field}.{key}"), problems))
            .unwrap_or_default()
    };
    let (config, file, registry) = (
        value("config", problems),
        value("file", problems),
        value("registry", problems),
    );
    let given: Vec<&str> = [
        ("\"Config\"", &config),
        ("\"File\"", &file),
        ("\"Registry\"", &registry),
    ]
    .into_iter()
    .filter(|(_, value)| !value.is_empty())
    .map(|(name, _)| name)
    .collect();
    match given.len() {
        0 => return None,
        1 => {}
        2 => {
            problems.push(bad(
                node,
                field,
                format!(
                    "invalid credential spec: cannot specify both {} and {}",
                    given[0], given[1]
                ),
            ));
            return None;
        }
        _ => {
            problems.push(bad(
                node,
                field,
                format!(
                    "invalid credential spec: cannot specify both {}, and {}",
                    given[..2].join(", "),
                    given[2]
                ),
            ));
            return None;
        }
    }
    if config.is_empty() {
        return Some((
            json!({"Config": "", "File": file, "Registry": registry}),
            None,
        ));
    }
    if !project.configs.contains_key(&config) {
        let location = get(map, "config").map_or(node, |n| n);
        problems.push(
            bad(
                location,
                &format!("{field}.config"),
                format!("undefined config \"{config}\""),
            )
            .hint("define it under the top-level `configs:` key"),
        );
        return None;
    }
    let (name, id) = objects
        .get(&(ObjectKind::Config, config.clone()))
        .cloned()
        .unwrap_or_default();
    let runtime = json!({"Runtime": {}, "ConfigID": id, "ConfigName": name});
    let sort = (
        base_name(ObjectKind::Config, &config, project, namespace),
        1,
        String::new(),
    );
    Some((
        json!({"Config": id, "File": "", "Registry": ""}),
        Some((sort, runtime)),
    ))
}

/// The fields of `service` docker stack deploy would ignore, as field paths.
pub(super) fn ignored_fields(service: &Service, project: &Project) -> Vec<String> {
    let namespace = Namespace("stack".into());
    let converted = convert(&namespace, service, project, &ResolvedObjects::new());
    converted.ignored
}
