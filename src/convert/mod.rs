//! Converting the Compose model into Swarm API specs the way `docker stack deploy`
//! (docker/cli's cli/compose/convert, 20.10) does: names scoped by the stack, the stack label on
//! everything, references sorted so that an unchanged file gives an identical spec.
//!
//! - `service`: the ServiceSpec (container, task, mode, update settings, endpoint);
//! - `deploy`, `ports`, `volumes`, `network`, `envfile`: the field groups;
//! - `values`, `units`, `duration`: reading values as docker/cli's loader reads them.

mod deploy;
mod duration;
mod envfile;
mod network;
mod ports;
mod service;
mod units;
mod values;
mod volumes;

#[cfg(test)]
mod tests;

pub use duration::parse_duration;
pub use network::network_specs;
pub use service::{
    service_spec, ResolvedObjects, CONVERTED_SERVICE_FIELDS, IGNORED_SERVICE_FIELDS, IMAGE_LABEL,
};
pub use units::shell_split;

use indexmap::IndexMap;

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::engine::STACK_NAMESPACE_LABEL;
use crate::model::Project;

/// Every problem converting the project would hit, found without the engine (object names
/// and IDs do not matter for this). Each problem is reported once, even when several
/// services hit it.
pub fn check(namespace: &Namespace, project: &Project) -> Diagnostics {
    let mut found = Diagnostics::default();
    let objects = ResolvedObjects::new();
    for service in project.services.values() {
        if let Err(problems) = service_spec(namespace, service, project, &objects) {
            found.extend(problems);
        }
    }
    if let Err(problems) = network_specs(namespace, project) {
        found.extend(problems);
    }
    found.extend(volumes::check_definitions(project));
    let mut unique = Diagnostics::default();
    let mut seen: Vec<Diagnostic> = Vec::new();
    for diagnostic in found.iter() {
        if !seen.contains(diagnostic) {
            seen.push(diagnostic.clone());
            unique.push(diagnostic.clone());
        }
    }
    unique
}

/// One warning per service that uses fields `docker stack deploy` accepts but ignores
/// (`build`, `depends_on`, `container_name`, ..., `restart` when `deploy.restart_policy` is
/// set, a host IP in a port, per-network addresses, ...), located at the service's key.
pub fn warnings(project: &Project) -> Diagnostics {
    let mut warnings = Diagnostics::default();
    for service in project.services.values() {
        let ignored = service::ignored_fields(service, project);
        if ignored.is_empty() {
            continue;
        }
        warnings.push(
            Diagnostic::warning(
                Some(service.location.clone()),
                format!(
                    "docker stack deploy ignores {} of service \"{}\": {}",
                    if ignored.len() == 1 {
                        "this field"
                    } else {
                        "these fields"
                    },
                    service.name,
                    ignored.join(", ")
                ),
            )
            .field(format!("services.{}", service.name))
            .hint("Swarm has no equivalent for them: remove them, or keep them for docker compose"),
        );
    }
    warnings
}

/// The stack a deploy works on: scopes names and labels objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace(pub String);

impl Namespace {
    /// `<stack>_<name>`, how docker/cli names a stack's services, networks and objects.
    pub fn scope(&self, name: &str) -> String {
        format!("{}_{name}", self.0)
    }

    /// `com.docker.stack.namespace=<stack>`, for list filters.
    pub fn label_filter(&self) -> String {
        format!("{STACK_NAMESPACE_LABEL}={}", self.0)
    }

    /// `labels` plus the stack label.
    pub fn add_label(&self, labels: &IndexMap<String, String>) -> IndexMap<String, String> {
        let mut labels = labels.clone();
        labels.insert(STACK_NAMESPACE_LABEL.to_string(), self.0.clone());
        labels
    }
}
