//! Where each part of a converted ServiceSpec came from: the converter records, as it builds
//! a spec, which Compose field (and the file, line and column of its value) produced which
//! spec path, so a plan can name a changed field as the reviewer wrote it (`deploy.replicas`
//! at `compose.yaml:12:16`) rather than as the Swarm API spells it
//! (`Mode.Replicated.Replicas`). A spec path nothing in the Compose files produced (an engine
//! default, a label stackroll adds) has no origin and keeps its API name.
//!
//! Spec paths are dotted API member names; a list item is `[index]`, a reference by its
//! container target `[/run/secrets/db]` and an environment variable `Env.NAME`, as
//! `plan::canonical` names the differences it finds.

use crate::diagnostic::Location;
use crate::model::node::Node;

/// Compose keys of a mapping and the API members they set, e.g. `("delay", "Delay")`.
pub(super) type Members = [(&'static str, &'static str)];

/// The origins of one service's spec paths, in the order they were recorded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Provenance {
    origins: Vec<Origin>,
}

/// One spec path and the Compose field that produced it.
#[derive(Debug, Clone, PartialEq)]
struct Origin {
    /// The spec path, e.g. `Mode.Replicated.Replicas`.
    api: String,
    /// The Compose field below the service, e.g. `deploy.replicas`.
    field: String,
    /// Where its value was written.
    location: Location,
}

/// The Compose field a spec path comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Traced {
    /// The Compose field below the service; with `exact` false, the field whose conversion
    /// produced the part of the spec holding the path (`deploy.resources` for
    /// `TaskTemplate.Resources.Limits.Pids`).
    pub field: String,
    /// Whether `field` produced exactly the path (not one of its parents).
    pub exact: bool,
    /// Where its value was written.
    pub location: Location,
}

impl Provenance {
    /// Records that Compose `field`, written at `location`, produced spec path `api`.
    pub(super) fn record(
        &mut self,
        api: impl Into<String>,
        field: impl Into<String>,
        location: &Location,
    ) {
        self.origins.push(Origin {
            api: api.into(),
            field: field.into(),
            location: location.clone(),
        });
    }

    /// Records `node` (at `field`) as the origin of `api`, and each member of it named in
    /// `members` (Compose key, API member) as the origin of `api.<member>`, at the member's
    /// own value.
    pub(super) fn record_members(
        &mut self,
        api: &str,
        field: &str,
        node: &Node,
        members: &Members,
    ) {
        self.record(api, field, &node.location);
        let Some(map) = node.as_map() else { return };
        for (key, member) in members {
            if let Some(entry) = map.get(*key) {
                self.record(
                    format!("{api}.{member}"),
                    format!("{field}.{key}"),
                    &entry.value.location,
                );
            }
        }
    }

    /// Records each key of the mapping `node` (at `field`) as the origin of `api.<key>`,
    /// keys kept as written (labels, sysctls, driver options).
    pub(super) fn record_keys(&mut self, api: &str, field: &str, node: &Node) {
        self.record(api, field, &node.location);
        for (key, entry) in node.as_map().into_iter().flatten() {
            self.record(
                format!("{api}.{key}"),
                format!("{field}.{key}"),
                &entry.value.location,
            );
        }
    }

    /// The Compose field of spec path `api`: the origin recorded for it, else for its nearest
    /// recorded parent; None when nothing in the Compose files produced it.
    pub fn trace(&self, api: &str) -> Option<Traced> {
        self.origins
            .iter()
            .filter(|origin| is_within(api, &origin.api))
            .max_by_key(|origin| origin.api.len())
            .map(|origin| Traced {
                field: origin.field.clone(),
                exact: origin.api == api,
                location: origin.location.clone(),
            })
    }
}

/// Whether spec path `path` is `parent` or lies below it (`parent.X` or `parent[X]`).
fn is_within(path: &str, parent: &str) -> bool {
    match path.strip_prefix(parent) {
        Some(rest) => rest.is_empty() || rest.starts_with('.') || rest.starts_with('['),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::SourceFile;

    fn at(line: usize) -> Location {
        Location {
            file: SourceFile::new("compose.yaml", "/"),
            line,
            column: 3,
        }
    }

    #[test]
    fn the_nearest_recorded_parent_names_a_path() {
        let mut provenance = Provenance::default();
        provenance.record("TaskTemplate.Resources", "deploy.resources", &at(4));
        provenance.record(
            "TaskTemplate.Resources.Limits.NanoCPUs",
            "deploy.resources.limits.cpus",
            &at(6),
        );
        provenance.record("EndpointSpec.Ports[1]", "ports[0]", &at(9));
        let cpus = provenance
            .trace("TaskTemplate.Resources.Limits.NanoCPUs")
            .unwrap();
        assert_eq!(
            (cpus.field.as_str(), cpus.exact, cpus.location.line),
            ("deploy.resources.limits.cpus", true, 6)
        );
        let pids = provenance
            .trace("TaskTemplate.Resources.Limits.Pids")
            .unwrap();
        assert_eq!(
            (pids.field.as_str(), pids.exact, pids.location.line),
            ("deploy.resources", false, 4)
        );
        let port = provenance
            .trace("EndpointSpec.Ports[1].PublishedPort")
            .unwrap();
        assert_eq!(port.field, "ports[0]");
        assert!(provenance.trace("EndpointSpec.Ports[10]").is_none());
        assert!(provenance.trace("TaskTemplate.ResourcesX").is_none());
        assert!(provenance.trace("TaskTemplate.ForceUpdate").is_none());
    }
}
