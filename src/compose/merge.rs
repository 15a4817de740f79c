//! Merging several Compose files into one, by the Compose specification's rules (13-merge.md)
//! as compose-go applies them (`override/merge.go` and `override/uncity.go`): mappings
//! deep-merge with the later file winning; `command`, `entrypoint`, `healthcheck.test` and each
//! `ulimits` entry are replaced; `environment`, labels, `annotations` and `sysctls` merge by
//! name; the lists with a unique key merge by it, a later item replacing an earlier one with
//! the same key in place and new ones appended ([`unique_key`]: ports by host IP, published
//! port, target and protocol; volumes, devices, secrets and configs by target; `cap_add`,
//! `cap_drop`, `dns`, `dns_opt`, `dns_search`, `profiles`, `links`, `expose`, `tmpfs`, network
//! aliases by value; `env_file` by path; IPAM configs by subnet); `extra_hosts` drops exact
//! repeats; a service's `networks` and `depends_on` merge as mappings; `logging` merges only
//! when the driver stays the same. A string where a list is expected (`dns: 8.8.8.8`) is a
//! one-item list. Other lists append. A top-level secret or config definition in a later file
//! replaces the earlier one whole (a stackroll rule: a definition has exactly one source).
//! `!reset` removes a value and `!override` replaces it without merging.

use indexmap::IndexMap;

use crate::model::node::{Entry, MergeTag, Node, ScalarStyle, Value};
use crate::model::ObjectKind;

/// Merges `later` into `earlier` (both whole Compose documents).
pub fn merge_documents(earlier: Node, later: Node) -> Node {
    merge(earlier, later, &mut Vec::new())
}

/// How the value at a path merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// Deep-merge mappings, append sequences, the later scalar wins.
    Default,
    /// The later value replaces the earlier one.
    Replace,
    /// `KEY=VALUE` lists or mappings merged by key, into a mapping.
    ByName,
    /// A list whose items have a unique key.
    Unique(UniqueKey),
    /// A list of names or a mapping, merged as a mapping (service `networks`, `depends_on`).
    AsMapping,
    /// `extra_hosts`: a list (mappings become `host=ip` items) without exact repeats.
    ExtraHosts,
    /// `logging`: merged when the driver stays the same, else replaced.
    Logging,
}

/// What identifies an item of a list with unique items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UniqueKey {
    /// `{host_ip, published, target, protocol}`.
    Port,
    /// The container path of a volume or device.
    Target,
    /// The effective target of a secret or config reference.
    Reference(ObjectKind),
    /// The text before `=` (the whole text when there is none).
    Name,
    /// An `env_file` entry's path.
    Path,
    /// An IPAM config's subnet.
    Subnet,
}

/// The rule for the value at `path` (keys from the document root).
fn rule(path: &[String]) -> Rule {
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    match path.as_slice() {
        ["secrets" | "configs", _] => Rule::Replace,
        ["networks" | "volumes", _, "labels"] => Rule::ByName,
        ["networks", _, "ipam", "config"] => Rule::Unique(UniqueKey::Subnet),
        ["services", _, rest @ ..] => service_rule(rest),
        _ => Rule::Default,
    }
}

/// The rule for a path below one service.
fn service_rule(path: &[&str]) -> Rule {
    match path {
        ["command" | "entrypoint"] | ["healthcheck", "test"] | ["ulimits", _] => Rule::Replace,
        ["environment" | "labels" | "annotations" | "sysctls"] | ["deploy", "labels"] => {
            Rule::ByName
        }
        ["ports"] => Rule::Unique(UniqueKey::Port),
        ["volumes" | "devices"] => Rule::Unique(UniqueKey::Target),
        ["secrets"] => Rule::Unique(UniqueKey::Reference(ObjectKind::Secret)),
        ["configs"] => Rule::Unique(UniqueKey::Reference(ObjectKind::Config)),
        ["cap_add" | "cap_drop" | "dns" | "dns_opt" | "dns_search" | "profiles" | "links"
        | "expose" | "tmpfs"]
        | ["networks", _, "aliases" | "link_local_ips"] => Rule::Unique(UniqueKey::Name),
        ["env_file"] => Rule::Unique(UniqueKey::Path),
        ["networks" | "depends_on"] => Rule::AsMapping,
        ["extra_hosts"] => Rule::ExtraHosts,
        ["logging"] => Rule::Logging,
        _ => Rule::Default,
    }
}

/// Merges `later` over `earlier`, both found at `path` (e.g. a service over the one it
/// extends, at `["services", name]`).
pub fn merge_at(earlier: Node, later: Node, path: &mut Vec<String>) -> Node {
    merge(earlier, later, path)
}

fn merge(earlier: Node, mut later: Node, path: &mut Vec<String>) -> Node {
    let rule = rule(path);
    if later.merge_tag == Some(MergeTag::Override) || rule == Rule::Replace {
        later.merge_tag = None;
        return later;
    }
    let location = later.location.clone();
    let merge_tag = later.merge_tag;
    let value = match rule {
        Rule::ByName if is_collection(&earlier) || is_collection(&later) => {
            Value::Map(merge_maps(keyed_to_map(earlier), keyed_to_map(later), path))
        }
        Rule::Unique(key) => Value::Seq(merge_unique(items(earlier), items(later), key)),
        Rule::AsMapping if is_collection(&earlier) && is_collection(&later) => {
            Value::Map(merge_maps(names_to_map(earlier), names_to_map(later), path))
        }
        Rule::ExtraHosts => Value::Seq(merge_extra_hosts(earlier, later)),
        Rule::Logging if driver(&earlier).is_some() && driver(&later).is_some() => {
            if driver(&earlier) != driver(&later) {
                return strip_tags(later);
            }
            default_merge(earlier.value, later.value, path)
        }
        _ => default_merge(earlier.value, later.value, path),
    };
    Node {
        value,
        location,
        merge_tag,
    }
}

/// Mappings deep-merge, sequences append, otherwise the later value wins.
fn default_merge(earlier: Value, later: Value, path: &mut Vec<String>) -> Value {
    match (earlier, later) {
        (Value::Map(base), Value::Map(over)) => Value::Map(merge_maps(base, over, path)),
        (Value::Seq(base), Value::Seq(over)) => Value::Seq(
            base.into_iter()
                .chain(over.into_iter().map(strip_tags))
                .collect(),
        ),
        (_, over) => over,
    }
}

fn is_collection(node: &Node) -> bool {
    !matches!(node.value, Value::Scalar(..))
}

fn merge_maps(
    mut base: IndexMap<String, Entry>,
    over: IndexMap<String, Entry>,
    path: &mut Vec<String>,
) -> IndexMap<String, Entry> {
    for (key, entry) in over {
        if entry.value.merge_tag == Some(MergeTag::Reset) {
            base.shift_remove(&key);
            continue;
        }
        match base.get_mut(&key) {
            Some(slot) => {
                let placeholder = Node::new(Value::Seq(Vec::new()), entry.key_location.clone());
                let old = std::mem::replace(&mut slot.value, placeholder);
                path.push(key);
                slot.value = merge(old, entry.value, path);
                path.pop();
                slot.key_location = entry.key_location;
            }
            None => {
                let entry = Entry {
                    value: strip_tags(entry.value),
                    ..entry
                };
                base.insert(key, entry);
            }
        }
    }
    base
}

/// The items of a list; a single non-null scalar is a one-item list.
fn items(node: Node) -> Vec<Node> {
    match node.value {
        Value::Seq(items) => items,
        Value::Scalar(..) if node.is_null() => Vec::new(),
        _ => vec![node],
    }
}

/// Appends `over` to `base`, an item with the key of an earlier one replacing it in place.
fn merge_unique(mut base: Vec<Node>, over: Vec<Node>, key: UniqueKey) -> Vec<Node> {
    for item in over {
        let item_key = unique_key(&item, key);
        let slot = item_key.as_ref().and_then(|wanted| {
            base.iter()
                .position(|old| unique_key(old, key).as_ref() == Some(wanted))
        });
        match slot {
            Some(index) => base[index] = strip_tags(item),
            None => base.push(strip_tags(item)),
        }
    }
    base
}

/// The key that identifies a list item, or `None` when it cannot be read (then it is appended).
fn unique_key(node: &Node, key: UniqueKey) -> Option<String> {
    let field = |name: &str| {
        node.as_map()
            .and_then(|map| map.get(name))
            .and_then(|entry| entry.value.scalar_text())
    };
    match key {
        UniqueKey::Port => match node.as_map() {
            Some(_) => Some(port_key(
                field("host_ip").unwrap_or(""),
                field("published").unwrap_or(""),
                field("target")?,
                field("protocol").unwrap_or("tcp"),
            )),
            None => short_port_key(node.scalar_text()?),
        },
        UniqueKey::Target => match node.as_map() {
            Some(_) => field("target").map(str::to_string),
            None => {
                let text = node.scalar_text()?;
                let mut parts = text.split(':');
                let first = parts.next()?;
                Some(parts.next().unwrap_or(first).to_string())
            }
        },
        UniqueKey::Reference(kind) => {
            let target = match node.as_map() {
                Some(_) => field("target").or_else(|| field("source")),
                None => node.scalar_text(),
            }?;
            Some(kind.effective_target(target))
        }
        UniqueKey::Name => {
            let text = node.scalar_text()?;
            Some(
                text.split_once('=')
                    .map_or(text, |(name, _)| name)
                    .to_string(),
            )
        }
        UniqueKey::Path => match node.as_map() {
            Some(_) => field("path").map(str::to_string),
            None => node.scalar_text().map(str::to_string),
        },
        UniqueKey::Subnet => field("subnet").map(str::to_string),
    }
}

/// A port's unique key; no host IP and `0.0.0.0` are the same.
fn port_key(host_ip: &str, published: &str, target: &str, protocol: &str) -> String {
    let host_ip = if host_ip.is_empty() {
        "0.0.0.0"
    } else {
        host_ip
    };
    format!(
        "{host_ip}:{published}:{target}/{}",
        protocol.to_ascii_lowercase()
    )
}

/// The key of a short-syntax port, `[[HOST_IP:]PUBLISHED:]TARGET[/PROTOCOL]`.
fn short_port_key(spec: &str) -> Option<String> {
    let (ports, protocol) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let parts: Vec<&str> = ports.split(':').collect();
    let (host_ip, published, target) = match parts.as_slice() {
        [target] => (String::new(), "", *target),
        [published, target] => (String::new(), *published, *target),
        [ip @ .., published, target] => (ip.join(":"), *published, *target),
        [] => return None,
    };
    let host_ip = host_ip.trim_start_matches('[').trim_end_matches(']');
    Some(port_key(host_ip, published, target, protocol))
}

/// `extra_hosts` of both files as one list: mappings become `host=ip` items (sorted, as
/// compose-go sorts them); later items already present are dropped.
fn merge_extra_hosts(earlier: Node, later: Node) -> Vec<Node> {
    let mut merged = host_items(earlier);
    for item in host_items(later) {
        if !merged
            .iter()
            .any(|old| old.scalar_text() == item.scalar_text())
        {
            merged.push(item);
        }
    }
    merged
}

fn host_items(node: Node) -> Vec<Node> {
    let Value::Map(map) = node.value else {
        return items(node);
    };
    let mut hosts: Vec<Node> = Vec::new();
    for (host, entry) in map {
        let location = entry.value.location.clone();
        let addresses = match &entry.value.value {
            Value::Seq(list) => list
                .iter()
                .filter_map(|n| n.scalar_text().map(str::to_string))
                .collect(),
            _ => entry
                .value
                .scalar_text()
                .map(str::to_string)
                .into_iter()
                .collect::<Vec<_>>(),
        };
        for address in addresses {
            let text = format!("{host}={address}");
            hosts.push(Node::new(
                Value::Scalar(text, ScalarStyle::String),
                location.clone(),
            ));
        }
    }
    hosts.sort_by(|a, b| a.scalar_text().cmp(&b.scalar_text()));
    hosts
}

/// The `driver` of a `logging` mapping.
fn driver(node: &Node) -> Option<&str> {
    node.as_map()?.get("driver")?.value.scalar_text()
}

/// A list of names (`[front, back]`) as a mapping of names to null; mappings pass through.
fn names_to_map(node: Node) -> IndexMap<String, Entry> {
    match node.value {
        Value::Map(map) => map,
        Value::Seq(items) => items
            .into_iter()
            .filter_map(|item| {
                let name = item.scalar_text()?.to_string();
                let location = item.location.clone();
                let null = Node::new(
                    Value::Scalar(String::new(), ScalarStyle::Plain),
                    location.clone(),
                );
                Some((
                    name,
                    Entry {
                        key_location: location,
                        value: null,
                    },
                ))
            })
            .collect(),
        Value::Scalar(..) => IndexMap::new(),
    }
}

/// Turns a `KEY=VALUE` list into a mapping (`KEY` alone maps to null); mappings pass through.
fn keyed_to_map(node: Node) -> IndexMap<String, Entry> {
    match node.value {
        Value::Map(map) => map,
        Value::Seq(items) => items
            .into_iter()
            .filter_map(|item| {
                let text = item.scalar_text()?.to_string();
                let (key, value) = match text.split_once('=') {
                    Some((key, value)) => (key.to_string(), Some(value.to_string())),
                    None => (text, None),
                };
                let value = Value::Scalar(
                    value.clone().unwrap_or_default(),
                    if value.is_some() {
                        ScalarStyle::String
                    } else {
                        ScalarStyle::Plain
                    },
                );
                let location = item.location.clone();
                Some((
                    key,
                    Entry {
                        key_location: location.clone(),
                        value: Node::new(value, location),
                    },
                ))
            })
            .collect(),
        Value::Scalar(..) => IndexMap::new(),
    }
}

/// Drops merge tags from a value that had nothing to merge with.
fn strip_tags(mut node: Node) -> Node {
    node.merge_tag = None;
    node
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::yaml::parse;
    use crate::diagnostic::SourceFile;

    fn merged(a: &str, b: &str) -> serde_json::Value {
        let file = SourceFile::new("t", "/");
        merge_documents(parse(a, &file).0.unwrap(), parse(b, &file).0.unwrap()).to_json()
    }

    #[test]
    fn mappings_deep_merge_later_wins() {
        let json = merged(
            "services: {app: {image: a, deploy: {replicas: 1, mode: replicated}}}",
            "services: {app: {deploy: {replicas: 3}}, web: {image: w}}",
        );
        assert_eq!(
            json["services"],
            serde_json::json!({"app": {"image": "a", "deploy": {"replicas": 3, "mode": "replicated"}}, "web": {"image": "w"}})
        );
    }

    #[test]
    fn definitions_are_replaced_whole() {
        let json = merged(
            "secrets: {db: {file: a.txt, labels: {x: y}}}",
            "secrets: {db: {environment: DB}}",
        );
        assert_eq!(
            json["secrets"],
            serde_json::json!({"db": {"environment": "DB"}})
        );
    }

    #[test]
    fn references_merge_by_effective_target() {
        let json = merged(
            "services: {app: {secrets: [db, {source: api, target: /etc/api}]}}",
            "services: {app: {secrets: [{source: db2, target: /run/secrets/db}, extra]}}",
        );
        assert_eq!(
            json["services"]["app"]["secrets"],
            serde_json::json!([{"source": "db2", "target": "/run/secrets/db"}, {"source": "api", "target": "/etc/api"}, "extra"])
        );
    }

    #[test]
    fn command_is_replaced_and_environment_merges_by_key() {
        let json = merged(
            "services: {app: {command: [a, b], environment: [A=1, B=2], ports: ['80']}}",
            "services: {app: {command: [c], environment: {B: '3', C: '4'}, ports: ['81']}}",
        );
        let app = &json["services"]["app"];
        assert_eq!(app["command"], serde_json::json!(["c"]));
        assert_eq!(
            app["environment"],
            serde_json::json!({"A": "1", "B": "3", "C": "4"})
        );
        assert_eq!(app["ports"], serde_json::json!(["80", "81"]));
    }

    #[test]
    fn port_keys_follow_compose_go() {
        assert_eq!(short_port_key("80"), Some("0.0.0.0::80/tcp".into()));
        assert_eq!(
            short_port_key("8080:80/UDP"),
            Some("0.0.0.0:8080:80/udp".into())
        );
        assert_eq!(short_port_key("0.0.0.0:8080:80"), short_port_key("8080:80"));
        assert_eq!(
            short_port_key("[::1]:8080:80"),
            Some("::1:8080:80/tcp".into())
        );
    }

    #[test]
    fn a_string_merges_with_a_list_as_one_item() {
        let json = merged(
            "services: {app: {dns: 8.8.8.8, tmpfs: [/a]}}",
            "services: {app: {dns: [8.8.8.8, 1.1.1.1], tmpfs: /b}}",
        );
        assert_eq!(
            json["services"]["app"]["dns"],
            serde_json::json!(["8.8.8.8", "1.1.1.1"])
        );
        assert_eq!(
            json["services"]["app"]["tmpfs"],
            serde_json::json!(["/a", "/b"])
        );
    }

    #[test]
    fn reset_and_override_tags() {
        let json = merged(
            "services: {app: {image: a, ports: ['80'], deploy: {replicas: 2, mode: global}}}",
            "services: {app: {ports: !reset [], deploy: !override {replicas: 5}}}",
        );
        assert_eq!(
            json["services"]["app"],
            serde_json::json!({"image": "a", "deploy": {"replicas": 5}})
        );
    }
}
