//! Which secret and config versions may be deleted: only ones stackroll created for this
//! stack, that no service's current or previous spec references, and that are older than the
//! newest `keep` superseded versions of their key (a key gone from the Compose files keeps
//! none beyond what is referenced). The highest version of a defined key always stays, so
//! version numbers are never reused.

use crate::engine::{Spec, SwarmObject};
use crate::model::{ObjectKind, Project};
use crate::swarm::namespace::Namespace;
use crate::swarm::versions::versions_by_key;

/// A service's spec and its previous one: a version either references is still needed.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpecs {
    /// The spec the service runs (or will, once the plan is carried out).
    pub current: Spec,
    /// The spec it ran before its last update, which a rollback returns to.
    pub previous: Option<Spec>,
}

/// An object that may be deleted, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Prunable<'o> {
    /// The object.
    pub object: &'o SwarmObject,
    /// Why it may go.
    pub reason: String,
}

/// The objects of `kind` that may be deleted once services run `services` (each with its
/// current and previous spec) and use the objects named in `in_use`.
pub fn prunable<'o>(
    kind: ObjectKind,
    objects: &'o [SwarmObject],
    namespace: &Namespace,
    project: &Project,
    in_use: &[&String],
    services: &[ServiceSpecs],
    keep: usize,
) -> Vec<Prunable<'o>> {
    let mut result = Vec::new();
    for (key, versions) in versions_by_key(objects, namespace) {
        let still_defined = project
            .definitions(kind)
            .get(key)
            .is_some_and(|d| !d.is_external());
        // While the key is defined its highest version is never deleted: it is what the next
        // version number counts from, so a number is never given to two contents.
        // (When the version in use is new, it is the highest and nothing else needs keeping.)
        let in_use_exists = versions
            .iter()
            .any(|version| in_use.contains(&&version.object.name));
        let highest = versions
            .first()
            .map(|version| version.number)
            .filter(|_| still_defined && in_use_exists);
        let superseded = versions.into_iter().filter(|version| {
            !in_use.contains(&&version.object.name) && Some(version.number) != highest
        });
        let (kept, reason) = if still_defined {
            (keep, "superseded, unreferenced")
        } else {
            (0, "no longer in the compose files, unreferenced")
        };
        for object in superseded.skip(kept).map(|version| version.object) {
            if !services.iter().any(|specs| {
                references(&specs.current, kind, object)
                    || specs
                        .previous
                        .as_ref()
                        .is_some_and(|p| references(p, kind, object))
            }) {
                result.push(Prunable {
                    object,
                    reason: reason.to_string(),
                });
            }
        }
    }
    result
}

/// Whether a ServiceSpec references `object` by ID or name.
pub fn references(spec: &Spec, kind: ObjectKind, object: &SwarmObject) -> bool {
    let (list, id_key, name_key) = kind.spec_keys();
    spec["TaskTemplate"]["ContainerSpec"][list]
        .as_array()
        .is_some_and(|refs| {
            refs.iter().any(|r| {
                r[id_key].as_str() == Some(object.id.as_str())
                    || r[name_key].as_str() == Some(object.name.as_str())
            })
        })
}
