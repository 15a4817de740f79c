//! Converting the Compose model into Swarm API specs the way `docker stack deploy`
//! (docker/cli's cli/compose/convert) does: names scoped by the stack, the stack label on
//! everything, references sorted so that an unchanged file gives an identical spec.

mod duration;
mod service;

pub use duration::parse_duration;
pub use service::{network_specs, service_spec, ResolvedObjects, IGNORED_SERVICE_FIELDS};

use indexmap::IndexMap;

use crate::engine::STACK_NAMESPACE_LABEL;

/// Every problem converting the project would hit, found without the engine (object names
/// and IDs do not matter for this).
pub fn check(
    namespace: &Namespace,
    project: &crate::model::Project,
) -> crate::diagnostic::Diagnostics {
    let mut problems = crate::diagnostic::Diagnostics::default();
    let objects = ResolvedObjects::new();
    for service in project.services.values() {
        if let Err(found) = service_spec(namespace, service, project, &objects) {
            problems.extend(found);
        }
    }
    if let Err(found) = network_specs(namespace, project) {
        problems.extend(found);
    }
    problems
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
