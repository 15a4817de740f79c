//! Which secret and config versions may be deleted: only ones stackroll created for this
//! stack, that no service's current or previous spec references, and that are older than the
//! newest `keep` superseded versions of their key (a key gone from the Compose files keeps
//! none beyond what is referenced). The highest version of a defined key always stays, so
//! version numbers are never reused.

use std::collections::BTreeMap;

use super::{is_managed_by, KEY_LABEL, VERSION_LABEL};
use crate::convert::Namespace;
use crate::engine::{Spec, SwarmObject};
use crate::model::{ObjectKind, Project};

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
    services: &[(Spec, Option<Spec>)],
    keep: usize,
) -> Vec<Prunable<'o>> {
    let mut by_key: BTreeMap<&str, Vec<(u64, &SwarmObject)>> = BTreeMap::new();
    for object in objects
        .iter()
        .filter(|object| is_managed_by(object, namespace))
    {
        let (Some(key), Some(version)) = (
            object.labels.get(KEY_LABEL),
            object
                .labels
                .get(VERSION_LABEL)
                .and_then(|v| v.parse::<u64>().ok()),
        ) else {
            continue;
        };
        by_key.entry(key).or_default().push((version, object));
    }
    let mut result = Vec::new();
    for (key, mut versions) in by_key {
        versions.sort_by_key(|v| std::cmp::Reverse(v.0));
        let still_defined = project
            .definitions(kind)
            .get(key)
            .is_some_and(|d| !d.is_external());
        // While the key is defined its highest version is never deleted: it is what the next
        // version number counts from, so a number is never given to two contents.
        // (When the version in use is new, it is the highest and nothing else needs keeping.)
        let in_use_exists = versions
            .iter()
            .any(|(_, object)| in_use.contains(&&object.name));
        let highest = versions
            .first()
            .map(|(version, _)| *version)
            .filter(|_| still_defined && in_use_exists);
        let superseded = versions.into_iter().filter(|(version, object)| {
            !in_use.contains(&&object.name) && Some(*version) != highest
        });
        let (kept, reason) = if still_defined {
            (keep, "superseded, unreferenced")
        } else {
            (0, "no longer in the compose files, unreferenced")
        };
        for (_, object) in superseded.skip(kept) {
            if !services.iter().any(|(spec, previous)| {
                references(spec, kind, object)
                    || previous
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
