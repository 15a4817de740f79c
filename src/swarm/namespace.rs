//! The stack a deploy works on: how it scopes names and labels objects, and which objects
//! stackroll created for it.

use indexmap::IndexMap;

use super::labels::{MANAGED_LABEL, STACK_NAMESPACE_LABEL};
use crate::engine::SwarmObject;

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

/// Whether stackroll created `object` for this stack.
pub fn is_managed_by(object: &SwarmObject, namespace: &Namespace) -> bool {
    object.labels.get(MANAGED_LABEL).map(String::as_str) == Some("true")
        && object.labels.get(STACK_NAMESPACE_LABEL) == Some(&namespace.0)
}
