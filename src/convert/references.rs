//! Secret and config references of a ServiceSpec: built and sorted as docker/cli builds them
//! when a service is converted (object names and IDs still empty), then pointed at the object
//! versions planning picked ([`link`]), so a service is converted once however often it is
//! planned.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::values::{bad, check_keys, get, mapping, text};
use crate::diagnostic::Diagnostics;
use crate::engine::Spec;
use crate::model::node::Node;
use crate::model::{FileReference, ObjectKey, ObjectKind, Project};
use crate::swarm::namespace::Namespace;

/// The swarm object a secret or config definition resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedObject {
    /// Its swarm name.
    pub name: String,
    /// Its ID; empty for a version the plan creates (the executor fills it in).
    pub id: String,
}

/// The object each secret and config definition resolves to.
#[derive(Debug, Clone, Default)]
pub struct ResolvedObjects(HashMap<ObjectKey, ResolvedObject>);

impl ResolvedObjects {
    /// None resolved yet.
    pub fn new() -> ResolvedObjects {
        ResolvedObjects::default()
    }

    /// Resolves `key` to `object`.
    pub fn insert(&mut self, key: ObjectKey, object: ResolvedObject) {
        self.0.insert(key, object);
    }

    /// The object `key` of `kind` resolves to.
    pub fn get(&self, kind: ObjectKind, key: &str) -> Option<&ResolvedObject> {
        self.0.get(&ObjectKey::new(kind, key))
    }

    /// Every resolved object's name (in no particular order).
    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.0.values().map(|object| &object.name)
    }
}

/// Where a converted spec's references sit: the definition key of each entry of
/// `ContainerSpec.Secrets` and `ContainerSpec.Configs`, in order, and the config a credential
/// spec reads (its ID goes into `Privileges.CredentialSpec.Config`).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct ObjectSlots {
    /// Keys of `Secrets`, in spec order.
    pub secrets: Vec<String>,
    /// Keys of `Configs`, in spec order (the runtime reference of a credential spec included).
    pub configs: Vec<String>,
    /// The config key `credential_spec.config` names.
    pub credential_config: Option<String>,
}

/// Fills every reference of `spec` with the name and ID of the object its key resolves to;
/// one that resolves to none keeps an empty name and ID.
pub(super) fn link(spec: &mut Spec, slots: &ObjectSlots, objects: &ResolvedObjects) {
    for (kind, keys) in [
        (ObjectKind::Secret, &slots.secrets),
        (ObjectKind::Config, &slots.configs),
    ] {
        let (list, id_key, name_key) = kind.spec_keys();
        let Some(references) = spec
            .pointer_mut(&format!("/TaskTemplate/ContainerSpec/{list}"))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for (reference, key) in references.iter_mut().zip(keys) {
            if let Some(object) = objects.get(kind, key) {
                reference[id_key] = Value::from(object.id.clone());
                reference[name_key] = Value::from(object.name.clone());
            }
        }
    }
    let credential_object = slots
        .credential_config
        .as_ref()
        .and_then(|key| objects.get(ObjectKind::Config, key));
    if let (Some(object), Some(config)) = (
        credential_object,
        spec.pointer_mut("/TaskTemplate/ContainerSpec/Privileges/CredentialSpec/Config"),
    ) {
        *config = Value::from(object.id.clone());
    }
}

/// What docker/cli sorts references by: the object's name, file references before the
/// runtime one of the same config; then, where docker/cli keeps the written order, the most
/// permissive mount first. The engine writes one file per object and task and gives every
/// target of it the owner and mode of the LAST reference (checked on dockerd 20.10), so the
/// most restrictive mode, and an explicit owner, is what a file mounted twice gets: a requested
/// mode is never relaxed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ReferenceOrder {
    object_name: String,
    runtime: bool,
    /// Permission bits, most permissive first.
    mode: std::cmp::Reverse<u32>,
    /// Whether the owner is someone other than root (`uid`/`gid` not "0"), root first.
    explicit_owner: bool,
    target: String,
}

/// A reference before its object is known.
#[derive(Debug, Clone)]
pub(super) struct Reference {
    order: ReferenceOrder,
    key: String,
    value: Value,
}

impl Reference {
    /// The key of the definition it names.
    pub(super) fn key(&self) -> &str {
        &self.key
    }
}

/// References sorted as docker/cli sorts them, and their keys in the same order.
pub(super) struct SortedReferences {
    /// The `Secrets` or `Configs` items.
    pub values: Vec<Value>,
    /// The definition key of each.
    pub keys: Vec<String>,
}

/// Sorts references by object name, keeping file references before the runtime one of the
/// same config (a stable sort, as docker/cli's).
pub(super) fn sorted(mut references: Vec<Reference>) -> SortedReferences {
    references.sort_by(|a, b| a.order.cmp(&b.order));
    let keys = references.iter().map(|r| r.key.clone()).collect();
    let values = references.into_iter().map(|r| r.value).collect();
    SortedReferences { values, keys }
}

/// The name docker/cli gives the object a reference names (`name:`, the key for an external
/// object, `<stack>_<key>` otherwise): docker/cli sorts references by it.
fn object_name(kind: ObjectKind, key: &str, project: &Project, namespace: &Namespace) -> String {
    match project.definitions(kind).get(key) {
        Some(definition) => match &definition.name {
            Some(name) => name.value.clone(),
            None if definition.is_external() => key.to_string(),
            None => namespace.scope(key),
        },
        None => namespace.scope(key),
    }
}

/// Secret or config file references, names and IDs empty.
pub(super) fn file_references(
    kind: ObjectKind,
    refs: &[FileReference],
    project: &Project,
    namespace: &Namespace,
) -> Vec<Reference> {
    let (_, id_key, name_key) = kind.spec_keys();
    refs.iter()
        .map(|reference| Reference {
            order: ReferenceOrder {
                object_name: object_name(kind, &reference.source.value, project, namespace),
                runtime: false,
                mode: std::cmp::Reverse(reference.mode),
                explicit_owner: reference.uid != "0" || reference.gid != "0",
                target: reference.target.clone(),
            },
            key: reference.source.value.clone(),
            value: json!({
                "File": {"Name": reference.target, "UID": reference.uid, "GID": reference.gid, "Mode": reference.mode},
                id_key: "",
                name_key: "",
            }),
        })
        .collect()
}

/// A converted `credential_spec`.
pub(super) struct CredentialSpec {
    /// `Privileges.CredentialSpec` (for `config:`, its ID still empty).
    pub value: Value,
    /// For `config:`, the runtime config reference docker/cli adds, and the config's key.
    pub runtime: Option<Reference>,
}

/// `credential_spec` → `Privileges.CredentialSpec`, and for `config:` the runtime config
/// reference docker/cli adds.
pub(super) fn credential_spec(
    node: &Node,
    field: &str,
    project: &Project,
    namespace: &Namespace,
    problems: &mut Diagnostics,
) -> Option<CredentialSpec> {
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
    if !only_one_credential_source(node, field, [&config, &file, &registry], problems) {
        return None;
    }
    if config.is_empty() {
        return Some(CredentialSpec {
            value: json!({"Config": "", "File": file, "Registry": registry}),
            runtime: None,
        });
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
    let runtime = Reference {
        order: ReferenceOrder {
            object_name: object_name(ObjectKind::Config, &config, project, namespace),
            runtime: true,
            mode: std::cmp::Reverse(0),
            explicit_owner: false,
            target: String::new(),
        },
        key: config,
        value: json!({"Runtime": {}, "ConfigID": "", "ConfigName": ""}),
    };
    Some(CredentialSpec {
        value: json!({"Config": "", "File": "", "Registry": ""}),
        runtime: Some(runtime),
    })
}

/// Whether at most one of a credential spec's `config`, `file` and `registry` is set
/// (reporting docker/cli's error when more are); false when none is.
fn only_one_credential_source(
    node: &Node,
    field: &str,
    [config, file, registry]: [&String; 3],
    problems: &mut Diagnostics,
) -> bool {
    let given: Vec<&str> = [
        ("\"Config\"", config),
        ("\"File\"", file),
        ("\"Registry\"", registry),
    ]
    .into_iter()
    .filter(|(_, value)| !value.is_empty())
    .map(|(name, _)| name)
    .collect();
    let message = match given.len() {
        0 => return false,
        1 => return true,
        2 => format!(
            "invalid credential spec: cannot specify both {} and {}",
            given[0], given[1]
        ),
        _ => format!(
            "invalid credential spec: cannot specify both {}, and {}",
            given[..2].join(", "),
            given[2]
        ),
    };
    problems.push(bad(node, field, message));
    false
}
