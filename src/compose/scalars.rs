//! Reading one scalar field of the Compose tree with a located error, shared by the
//! normaliser and the `x-stackroll-rotation` reader.

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::model::node::Node;

/// A scalar's text, or an error at `field` for a mapping or list.
pub(super) fn string_field(
    node: &Node,
    field: &str,
    diagnostics: &mut Diagnostics,
) -> Option<String> {
    match node.scalar_text() {
        Some(text) => Some(text.to_string()),
        None => {
            diagnostics.push(
                Diagnostic::error(
                    Some(node.location.clone()),
                    format!("expected a string, not {}", node.kind_name()),
                )
                .field(field)
                .hint("write a single value here"),
            );
            None
        }
    }
}
