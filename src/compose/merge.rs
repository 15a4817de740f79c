//! Merging several Compose files into one, by the Compose specification's rules: mappings
//! deep-merge with the later file winning; a top-level secret or config definition in a later
//! file replaces the earlier one whole; a service's `secrets`/`configs` lists merge by effective
//! target; `command`, `entrypoint` and `healthcheck.test` are replaced; `environment` and
//! labels merge by variable or label name; other lists append. `!reset` removes a value and
//! `!override` replaces it without merging.

use indexmap::IndexMap;

use crate::model::node::{Entry, MergeTag, Node, Value};
use crate::model::ObjectKind;

/// Merges `later` into `earlier` (both whole Compose documents).
pub fn merge_documents(earlier: Node, later: Node) -> Node {
    merge(earlier, later, &mut Vec::new())
}

fn merge(earlier: Node, mut later: Node, path: &mut Vec<String>) -> Node {
    if later.merge_tag == Some(MergeTag::Override) || replaces_whole(path) {
        later.merge_tag = None;
        return later;
    }
    let Node {
        value: later_value,
        location,
        merge_tag,
    } = later;
    let value = match (earlier.value, later_value) {
        (Value::Map(base), Value::Map(over)) => Value::Map(merge_maps(base, over, path)),
        (Value::Seq(base), Value::Seq(over)) => Value::Seq(merge_sequences(base, over, path)),
        (base @ (Value::Seq(_) | Value::Map(_)), over) if is_keyed_list(path) => {
            let base = Node::new(base, earlier.location);
            let over = Node::new(over, location.clone());
            Value::Map(merge_maps(keyed_to_map(base), keyed_to_map(over), path))
        }
        (_, over) => over,
    };
    Node {
        value,
        location,
        merge_tag,
    }
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

fn merge_sequences(base: Vec<Node>, over: Vec<Node>, path: &[String]) -> Vec<Node> {
    match reference_kind(path) {
        Some(kind) => merge_references(base, over, kind),
        None => base
            .into_iter()
            .chain(over.into_iter().map(strip_tags))
            .collect(),
    }
}

/// Merges service secret/config references by effective target, later replacing in place.
fn merge_references(mut base: Vec<Node>, over: Vec<Node>, kind: ObjectKind) -> Vec<Node> {
    for item in over {
        let target = reference_target(&item, kind);
        match base
            .iter()
            .position(|old| target.is_some() && reference_target(old, kind) == target)
        {
            Some(index) => base[index] = strip_tags(item),
            None => base.push(strip_tags(item)),
        }
    }
    base
}

/// The effective container path of a secret/config reference node, if it can be read.
fn reference_target(node: &Node, kind: ObjectKind) -> Option<String> {
    let target = match node.as_map() {
        Some(map) => map
            .get("target")
            .or_else(|| map.get("source"))
            .and_then(|entry| entry.value.scalar_text()),
        None => node.scalar_text(),
    }?;
    Some(kind.effective_target(target))
}

fn reference_kind(path: &[String]) -> Option<ObjectKind> {
    match path {
        [top, _, key] if top == "services" && key == "secrets" => Some(ObjectKind::Secret),
        [top, _, key] if top == "services" && key == "configs" => Some(ObjectKind::Config),
        _ => None,
    }
}

/// Paths whose value a later file replaces instead of merging into.
fn replaces_whole(path: &[String]) -> bool {
    match path {
        [top, _] => top == "secrets" || top == "configs",
        [top, _, key] => top == "services" && (key == "command" || key == "entrypoint"),
        [top, _, key, test] => top == "services" && key == "healthcheck" && test == "test",
        _ => false,
    }
}

/// Paths holding `KEY=VALUE` lists or mappings that merge by key.
fn is_keyed_list(path: &[String]) -> bool {
    match path {
        [top, _, key] => {
            top == "services" && matches!(key.as_str(), "environment" | "labels" | "annotations")
        }
        [top, _, deploy, key] => top == "services" && deploy == "deploy" && key == "labels",
        _ => false,
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
                        crate::model::node::ScalarStyle::String
                    } else {
                        crate::model::node::ScalarStyle::Plain
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
