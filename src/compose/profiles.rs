//! Profiles, per the Compose specification (15-profiles.md): a service with `profiles:` is part
//! of the project only when one of them is active; a service without is always. The active
//! profiles are the `--profile` flags, else `COMPOSE_PROFILES` (comma-separated, from the
//! process environment or `.env`); `*` activates every profile. An active service that refers
//! to an inactive one (`depends_on`, `links`, `network_mode: service:…`, `volumes_from`) is an
//! error at the reference, and a secret or config only inactive services use is left out, so
//! it is never created.

use indexmap::IndexMap;

use super::environment::Environment;
use crate::diagnostic::{Diagnostic, Diagnostics, Location};
use crate::model::node::{Node, Value};
use crate::model::{ObjectKind, Project, Service};

/// The variable that names the active profiles when no `--profile` is given.
pub const PROFILES_VARIABLE: &str = "COMPOSE_PROFILES";

/// The profiles that are active.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActiveProfiles {
    /// Profile names, as given.
    names: Vec<String>,
}

impl ActiveProfiles {
    /// The `--profile` flags when there are any, else `COMPOSE_PROFILES`.
    pub fn resolve(flags: &[String], environment: &Environment) -> ActiveProfiles {
        let names = if flags.is_empty() {
            environment
                .get(PROFILES_VARIABLE)
                .map(|value| split(&value))
                .unwrap_or_default()
        } else {
            flags.iter().flat_map(|flag| split(flag)).collect()
        };
        ActiveProfiles { names }
    }

    /// Whether a service with `profiles` is enabled.
    fn enables(&self, profiles: &[String]) -> bool {
        profiles.is_empty()
            || self.names.iter().any(|name| name == "*")
            || profiles.iter().any(|profile| self.names.contains(profile))
    }
}

fn split(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .collect()
}

/// A service left out because none of its profiles is active.
struct Inactive {
    /// Its profiles, for messages.
    profiles: Vec<String>,
    /// The service.
    service: Service,
}

/// Removes the services none of whose profiles is active, and the secrets and configs only
/// they use; reports references from active services to removed ones.
pub fn apply(project: &mut Project, active: &ActiveProfiles, diagnostics: &mut Diagnostics) {
    let mut inactive: IndexMap<String, Inactive> = IndexMap::new();
    project.services.retain(|name, service| {
        let profiles = read_profiles(service, diagnostics);
        if active.enables(&profiles) {
            return true;
        }
        inactive.insert(
            name.clone(),
            Inactive {
                profiles,
                service: service.clone(),
            },
        );
        false
    });
    for (name, left_out) in &inactive {
        diagnostics.push(left_out_warning(name, &left_out.service));
    }
    for service in project.services.values() {
        for reference in service_references(service) {
            if let Some(target) = inactive.get(&reference.service) {
                diagnostics.push(inactive_reference(service, &reference, target));
            }
        }
    }
    for kind in [ObjectKind::Secret, ObjectKind::Config] {
        let uses = |service: &Service, key: &str| {
            service
                .references(kind)
                .iter()
                .any(|reference| reference.source.value == key)
        };
        let only_inactive: Vec<String> = project
            .definitions(kind)
            .keys()
            .filter(|key| {
                inactive
                    .values()
                    .any(|left_out| uses(&left_out.service, key))
                    && !project.services.values().any(|service| uses(service, key))
                    && !credential_spec_uses(project, kind, key)
            })
            .cloned()
            .collect();
        let definitions = match kind {
            ObjectKind::Secret => &mut project.secrets,
            ObjectKind::Config => &mut project.configs,
        };
        for key in only_inactive {
            definitions.shift_remove(&key);
        }
    }
}

/// Whether an active service's `credential_spec.config` names config `key`.
fn credential_spec_uses(project: &Project, kind: ObjectKind, key: &str) -> bool {
    kind == ObjectKind::Config
        && project.services.values().any(|service| {
            service
                .fields
                .get("credential_spec")
                .and_then(Node::as_map)
                .and_then(|map| map.get("config"))
                .and_then(|entry| entry.value.scalar_text())
                == Some(key)
        })
}

/// A service's `profiles:` (a list of names); a malformed one is reported and read as none.
fn read_profiles(service: &Service, diagnostics: &mut Diagnostics) -> Vec<String> {
    let Some(node) = service
        .fields
        .get("profiles")
        .filter(|node| !node.is_null())
    else {
        return Vec::new();
    };
    let field = format!("services.{}.profiles", service.name);
    let names: Option<Vec<String>> = node.as_seq().and_then(|items| {
        items
            .iter()
            .map(|item| item.scalar_text().map(str::to_string))
            .collect()
    });
    names.unwrap_or_else(|| {
        diagnostics.push(
            Diagnostic::error(
                Some(node.location.clone()),
                format!("profiles must be a list of names, not {}", node.kind_name()),
            )
            .field(field)
            .hint("write `profiles: [debug]`"),
        );
        Vec::new()
    })
}

/// One service naming another.
struct ServiceReference {
    /// The service named.
    service: String,
    /// Which field names it.
    field: String,
    /// Where.
    location: Location,
}

/// The services `service` names in `depends_on`, `links`, `network_mode` and `volumes_from`.
fn service_references(service: &Service) -> Vec<ServiceReference> {
    let mut found = Vec::new();
    let prefix = format!("services.{}", service.name);
    let mut add = |name: &str, field: String, location: &Location| {
        found.push(ServiceReference {
            service: name.to_string(),
            field,
            location: location.clone(),
        })
    };
    if let Some(node) = service.fields.get("depends_on") {
        match &node.value {
            Value::Seq(items) => items.iter().enumerate().for_each(|(index, item)| {
                if let Some(name) = item.scalar_text() {
                    add(
                        name,
                        format!("{prefix}.depends_on[{index}]"),
                        &item.location,
                    );
                }
            }),
            Value::Map(map) => map.iter().for_each(|(name, entry)| {
                add(
                    name,
                    format!("{prefix}.depends_on.{name}"),
                    &entry.key_location,
                );
            }),
            Value::Scalar(..) => {}
        }
    }
    for key in ["links", "volumes_from"] {
        let Some(items) = service.fields.get(key).and_then(Node::as_seq) else {
            continue;
        };
        for (index, item) in items.iter().enumerate() {
            let Some(text) = item.scalar_text() else {
                continue;
            };
            if key == "volumes_from" && text.starts_with("container:") {
                continue;
            }
            let name = text.split(':').next().unwrap_or(text);
            add(name, format!("{prefix}.{key}[{index}]"), &item.location);
        }
    }
    if let Some(node) = service.fields.get("network_mode") {
        if let Some(name) = node
            .scalar_text()
            .and_then(|mode| mode.strip_prefix("service:"))
        {
            add(name, format!("{prefix}.network_mode"), &node.location);
        }
    }
    found
}

fn inactive_reference(
    service: &Service,
    reference: &ServiceReference,
    target: &Inactive,
) -> Diagnostic {
    let profiles = target.profiles.join(", ");
    Diagnostic::error(
        Some(reference.location.clone()),
        format!(
            "service \"{}\" refers to service \"{}\", which is not active (its profiles: {profiles})",
            service.name, reference.service
        ),
    )
    .field(reference.field.clone())
    .hint(format!(
        "activate one of its profiles (--profile {} or COMPOSE_PROFILES), give \"{}\" the same profiles, or remove the reference",
        target.profiles.first().map(String::as_str).unwrap_or(""),
        service.name
    ))
}

/// The warning for a service left out: `docker stack deploy`, which ignores profiles, would
/// deploy it.
fn left_out_warning(name: &str, service: &Service) -> Diagnostic {
    Diagnostic::warning(
        Some(service.location.clone()),
        format!(
            "service \"{name}\" is not deployed: none of its profiles is active (docker stack deploy ignores profiles and would deploy it)"
        ),
    )
    .field(format!("services.{name}.profiles"))
    .hint("activate one with --profile NAME or COMPOSE_PROFILES=NAME to deploy it")
}
