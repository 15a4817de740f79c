//! Which objects are the versions of a secret or config key, by one rule: stackroll created it
//! for this stack (`is_managed_by`) and it carries the key label and a whole version number.
//! The planner, pruning and `stackroll status` all read versions through `versions_by_key`.

use std::collections::BTreeMap;

use super::labels::{KEY_LABEL, VERSION_LABEL};
use super::namespace::{is_managed_by, Namespace};
use crate::engine::SwarmObject;

/// One version of a secret or config that stackroll created.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Version<'o> {
    /// Its version number.
    pub number: u64,
    /// The swarm object.
    pub object: &'o SwarmObject,
}

/// `<base>_v<version>`, the name of a version.
pub fn versioned_name(base: &str, version: u64) -> String {
    format!("{base}_v{version}")
}

/// The key `object` is a version of, and its version, when it is one of the stack's versions.
fn as_version<'o>(
    object: &'o SwarmObject,
    namespace: &Namespace,
) -> Option<(&'o str, Version<'o>)> {
    if !is_managed_by(object, namespace) {
        return None;
    }
    let key = object.labels.get(KEY_LABEL)?;
    let number = object.labels.get(VERSION_LABEL)?.parse().ok()?;
    Some((key, Version { number, object }))
}

/// The stack's versions among `objects`, by key (sorted), each key's newest first.
pub fn versions_by_key<'o>(
    objects: &'o [SwarmObject],
    namespace: &Namespace,
) -> BTreeMap<&'o str, Vec<Version<'o>>> {
    let mut by_key: BTreeMap<&str, Vec<Version<'o>>> = BTreeMap::new();
    for (key, version) in objects.iter().filter_map(|o| as_version(o, namespace)) {
        by_key.entry(key).or_default().push(version);
    }
    for versions in by_key.values_mut() {
        versions.sort_by_key(|version| std::cmp::Reverse(version.number));
    }
    by_key
}
