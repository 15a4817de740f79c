//! Networks: the top-level `networks:` definitions → NetworkCreateRequests (docker/cli's
//! `convert.Networks` plus the `overlay` default of `createNetworks`), and a service's
//! `networks:` → `TaskTemplate.Networks` (docker/cli's `convertServiceNetworks`).

use indexmap::IndexMap;
use serde_json::{json, Map, Value};

use super::values::{
    bad, boolean, check_keys, get, mapping, string_list, string_map, string_mapping, text,
};
use super::volumes::external;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::engine::Spec;
use crate::model::node::Node;
use crate::model::{Project, Service};
use crate::swarm::namespace::Namespace;

const NETWORK_KEYS: &[&str] = &[
    "name",
    "driver",
    "driver_opts",
    "ipam",
    "external",
    "internal",
    "attachable",
    "labels",
    "enable_ipv6",
];

/// A top-level `networks:` entry, loaded as docker/cli's `LoadNetworks` loads it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct NetworkDefinition {
    /// The swarm name: `name:`, or for an external network the legacy `external.name` or the
    /// key. None: `<stack>_<key>`.
    pub name: Option<String>,
    /// Whether the network exists outside the stack.
    pub external: bool,
    /// The NetworkCreateRequest fields other than the name (for a network the stack creates).
    pub request: Map<String, Value>,
}

/// Reads the network `key` (an undeclared `default` is an empty definition); None when it is
/// not declared.
pub(super) fn network_definition(
    project: &Project,
    namespace: &Namespace,
    key: &str,
    problems: &mut Diagnostics,
) -> Option<NetworkDefinition> {
    let entry = project
        .networks
        .as_ref()
        .and_then(Node::as_map)
        .and_then(|map| map.get(key));
    let Some(entry) = entry else {
        return (key == "default").then(|| NetworkDefinition {
            request: request(None, namespace, "networks.default", problems),
            ..NetworkDefinition::default()
        });
    };
    let field = format!("networks.{key}");
    let node = &entry.value;
    if node.is_null() {
        return Some(NetworkDefinition {
            request: request(None, namespace, &field, problems),
            ..NetworkDefinition::default()
        });
    }
    let map = mapping(node, &field, problems)?;
    check_keys(map, NETWORK_KEYS, &field, problems);
    let mut name = get(map, "name").and_then(|n| text(n, &format!("{field}.name"), problems));
    let (is_external, legacy_name) = external(map, &field, problems);
    if is_external {
        if let Some(legacy) = legacy_name {
            if name.is_some() {
                problems.push(
                    Diagnostic::error(
                        Some(entry.key_location.clone()),
                        format!("network {key}: network.external.name and network.name conflict; only use network.name"),
                    )
                    .field(field.clone()),
                );
            }
            name = Some(legacy);
        } else if name.is_none() {
            name = Some(key.to_string());
        }
    }
    Some(NetworkDefinition {
        name,
        external: is_external,
        request: request(Some(map), namespace, &field, problems),
    })
}

/// The NetworkCreateRequest members docker/cli sends (`types.NetworkCreate`, whose fields have
/// no `omitempty`; null ones left out).
fn request(
    map: Option<&IndexMap<String, crate::model::node::Entry>>,
    namespace: &Namespace,
    field: &str,
    problems: &mut Diagnostics,
) -> Map<String, Value> {
    let get = |key: &str| map.and_then(|map| get(map, key));
    let sub = |key: &str| format!("{field}.{key}");
    let flag = |key: &str, problems: &mut Diagnostics| {
        get(key)
            .and_then(|node| boolean(node, &sub(key), problems))
            .unwrap_or(false)
    };
    let mut request = Map::new();
    request.insert("CheckDuplicate".into(), false.into());
    let driver = get("driver")
        .and_then(|node| text(node, &sub("driver"), problems))
        .filter(|driver| !driver.is_empty())
        .unwrap_or_else(|| "overlay".to_string());
    request.insert("Driver".into(), driver.into());
    request.insert("Scope".into(), "".into());
    request.insert("EnableIPv6".into(), flag("enable_ipv6", problems).into());
    if let Some(node) = get("ipam") {
        if let Some(ipam) = ipam(node, &sub("ipam"), problems) {
            request.insert("IPAM".into(), ipam);
        }
    }
    request.insert("Internal".into(), flag("internal", problems).into());
    request.insert("Attachable".into(), flag("attachable", problems).into());
    request.insert("Ingress".into(), false.into());
    request.insert("ConfigOnly".into(), false.into());
    if let Some(node) = get("driver_opts") {
        if let Some(options) = string_map(node, &sub("driver_opts"), problems) {
            request.insert("Options".into(), json!(options));
        }
    }
    let labels = get("labels")
        .and_then(|node| string_mapping(node, &sub("labels"), problems))
        .unwrap_or_default();
    request.insert("Labels".into(), json!(namespace.add_label(&labels)));
    request
}

/// `ipam:` → `IPAM`, only when it names a driver or has pools (as docker/cli). docker/cli
/// sends only each pool's `Subnet` (its schema allows nothing else); `ip_range`, `gateway`,
/// `aux_addresses` and `options` are converted as the Compose specification describes them.
fn ipam(node: &Node, field: &str, problems: &mut Diagnostics) -> Option<Value> {
    let map = mapping(node, field, problems)?;
    check_keys(map, &["driver", "config", "options"], field, problems);
    let driver = get(map, "driver")
        .and_then(|n| text(n, &format!("{field}.driver"), problems))
        .unwrap_or_default();
    let mut pools = Vec::new();
    if let Some(config) = get(map, "config") {
        let sub = format!("{field}.config");
        match config.as_seq() {
            Some(items) => {
                for (index, item) in items.iter().enumerate() {
                    let item_field = format!("{sub}[{index}]");
                    let Some(item) = mapping(item, &item_field, problems) else {
                        continue;
                    };
                    check_keys(
                        item,
                        &["subnet", "ip_range", "gateway", "aux_addresses"],
                        &item_field,
                        problems,
                    );
                    let mut pool = Map::new();
                    for (key, api) in [
                        ("subnet", "Subnet"),
                        ("ip_range", "IPRange"),
                        ("gateway", "Gateway"),
                    ] {
                        if let Some(value) = get(item, key)
                            .and_then(|n| text(n, &format!("{item_field}.{key}"), problems))
                        {
                            if !value.is_empty() {
                                pool.insert(api.into(), value.into());
                            }
                        }
                    }
                    if let Some(aux) = get(item, "aux_addresses") {
                        if let Some(aux) =
                            string_map(aux, &format!("{item_field}.aux_addresses"), problems)
                        {
                            if !aux.is_empty() {
                                pool.insert("AuxiliaryAddresses".into(), json!(aux));
                            }
                        }
                    }
                    pools.push(Value::Object(pool));
                }
            }
            None => problems.push(bad(
                config,
                &sub,
                format!("expected a list, not {}", config.kind_name()),
            )),
        }
    }
    let options =
        get(map, "options").and_then(|n| string_map(n, &format!("{field}.options"), problems));
    if driver.is_empty() && pools.is_empty() && options.is_none() {
        return None;
    }
    let mut ipam = Map::new();
    ipam.insert("Driver".into(), driver.into());
    if let Some(options) = options {
        ipam.insert("Options".into(), json!(options));
    }
    if !pools.is_empty() {
        ipam.insert("Config".into(), Value::Array(pools));
    }
    Some(Value::Object(ipam))
}

/// The NetworkCreateRequests for the stack's own networks that some service uses, by name
/// (`<stack>_default` included when a service names no network), and the names of the
/// external networks services use.
pub fn network_specs(
    namespace: &Namespace,
    project: &Project,
) -> Result<NetworkSpecs, Diagnostics> {
    let mut problems = Diagnostics::default();
    let declared: Vec<String> = project
        .networks
        .as_ref()
        .filter(|node| !node.is_null())
        .and_then(|node| mapping(node, "networks", &mut problems))
        .map(|map| map.keys().cloned().collect())
        .unwrap_or_default();
    let mut definitions = IndexMap::new();
    for key in &declared {
        if let Some(definition) = network_definition(project, namespace, key, &mut problems) {
            definitions.insert(key.clone(), definition);
        }
    }
    let mut used: Vec<String> = Vec::new();
    for service in project.services.values() {
        for JoinedNetwork { key, .. } in service_network_keys(service, &mut Diagnostics::default())
        {
            if !used.contains(&key) {
                used.push(key);
            }
        }
    }
    let mut created = IndexMap::new();
    let mut external = Vec::new();
    for key in used {
        let definition = match definitions.get(&key) {
            Some(definition) => definition.clone(),
            None if key == "default" => {
                network_definition(project, namespace, &key, &mut problems).unwrap_or_default()
            }
            None => continue, // undefined: reported with the service
        };
        if definition.external {
            let name = definition.name.clone().unwrap_or_else(|| key.clone());
            if !external.contains(&name) {
                external.push(name);
            }
            continue;
        }
        let name = definition
            .name
            .clone()
            .unwrap_or_else(|| namespace.scope(&key));
        let mut spec = Map::new();
        spec.insert("Name".into(), name.clone().into());
        spec.extend(definition.request);
        created.insert(name, Value::Object(spec));
    }
    if problems.has_errors() {
        return Err(problems);
    }
    Ok(NetworkSpecs { created, external })
}

/// The networks a stack's services use.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkSpecs {
    /// NetworkCreateRequests of the stack's own networks, by swarm name.
    pub created: IndexMap<String, Spec>,
    /// Swarm names of the external networks.
    pub external: Vec<String>,
}

/// A network a service joins, as its `networks:` names it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct JoinedNetwork<'s> {
    /// The network's key under the top-level `networks:`.
    pub key: String,
    /// The per-service settings (aliases, ...), if any were written.
    pub settings: Option<&'s Node>,
}

/// The network keys a service joins with their per-service settings (none for null), in
/// document order; `default` when it names none.
pub(super) fn service_network_keys<'s>(
    service: &'s Service,
    problems: &mut Diagnostics,
) -> Vec<JoinedNetwork<'s>> {
    let field = format!("services.{}.networks", service.name);
    let mut keys: Vec<JoinedNetwork<'s>> = Vec::new();
    match service.fields.get("networks").filter(|n| !n.is_null()) {
        None => {}
        Some(node) => {
            if node.as_seq().is_some() {
                if let Some(names) = string_list(node, &field, problems) {
                    for name in names {
                        if !keys.iter().any(|joined| joined.key == name) {
                            keys.push(JoinedNetwork {
                                key: name,
                                settings: None,
                            });
                        }
                    }
                }
            } else if let Some(map) = node.as_map() {
                for (key, entry) in map {
                    keys.push(JoinedNetwork {
                        key: key.clone(),
                        settings: Some(&entry.value).filter(|n| !n.is_null()),
                    });
                }
            } else {
                problems.push(bad(
                    node,
                    &field,
                    format!("expected a list or a mapping, not {}", node.kind_name()),
                ));
            }
        }
    }
    if keys.is_empty() {
        keys.push(JoinedNetwork {
            key: "default".to_string(),
            settings: None,
        });
    }
    keys
}

/// What converting a service's `networks:` gives: the attachments, sorted by target, and the
/// per-service settings docker/cli ignores.
#[derive(Debug, Default)]
pub(super) struct Attachments {
    /// `TaskTemplate.Networks`.
    pub networks: Vec<Value>,
    /// Ignored settings, as field paths.
    pub ignored: Vec<String>,
}

/// docker/cli's `convertServiceNetworks`: each network's target (its swarm name), its aliases
/// plus the service name on user-defined networks, its driver options (docker/cli 23+; the
/// 20.10 engine honours them).
pub(super) fn service_networks(
    namespace: &Namespace,
    service: &Service,
    project: &Project,
    problems: &mut Diagnostics,
) -> Attachments {
    let mut result = Attachments::default();
    let field = format!("services.{}.networks", service.name);
    for JoinedNetwork { key, settings } in service_network_keys(service, problems) {
        let Some(definition) =
            network_definition(project, namespace, &key, &mut Diagnostics::default())
        else {
            let location = service
                .fields
                .get("networks")
                .map(|node| match node.as_map().and_then(|map| map.get(&key)) {
                    Some(entry) => entry.key_location.clone(),
                    None => node.location.clone(),
                })
                .unwrap_or_else(|| service.location.clone());
            problems.push(
                Diagnostic::error(Some(location), format!("undefined network \"{key}\""))
                    .field(field.clone())
                    .hint("define it under the top-level `networks:` key"),
            );
            continue;
        };
        let target = definition
            .name
            .clone()
            .unwrap_or_else(|| namespace.scope(&key));
        let mut aliases: Vec<String> = Vec::new();
        let mut driver_opts = None;
        if let Some(settings) = settings {
            let sub = format!("{field}.{key}");
            if let Some(map) = mapping(settings, &sub, problems) {
                check_keys(
                    map,
                    &["aliases", "driver_opts", "ipv4_address", "ipv6_address"],
                    &sub,
                    problems,
                );
                if let Some(node) = get(map, "aliases") {
                    aliases =
                        string_list(node, &format!("{sub}.aliases"), problems).unwrap_or_default();
                }
                if let Some(node) = get(map, "driver_opts") {
                    driver_opts = string_map(node, &format!("{sub}.driver_opts"), problems);
                }
                for ignored in ["ipv4_address", "ipv6_address"] {
                    if map.contains_key(ignored) {
                        result.ignored.push(format!("networks.{key}.{ignored}"));
                    }
                }
            }
        }
        if is_user_defined(&target) {
            aliases.push(service.name.clone());
        }
        let mut attachment = Map::new();
        attachment.insert("Target".into(), target.into());
        if !aliases.is_empty() {
            attachment.insert("Aliases".into(), json!(aliases));
        }
        if let Some(options) = driver_opts.filter(|o| !o.is_empty()) {
            attachment.insert("DriverOpts".into(), json!(options));
        }
        result.networks.push(Value::Object(attachment));
    }
    result
        .networks
        .sort_by(|a, b| a["Target"].as_str().cmp(&b["Target"].as_str()));
    result
}

/// Docker's `NetworkMode.IsUserDefined`: not `default`, `bridge`, `host`, `none` or
/// `container:…`.
fn is_user_defined(target: &str) -> bool {
    !matches!(target, "default" | "bridge" | "host" | "none") && !target.starts_with("container:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_defined_networks() {
        assert!(is_user_defined("s_default"));
        assert!(!is_user_defined("host"));
        assert!(!is_user_defined("container:abc"));
    }
}
