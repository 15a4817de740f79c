//! The content seal: one fingerprint over the data of every secret and config version a
//! stack uses, kept in the labels of a config of its own (`<stack>_stackroll-seal_<serial>`),
//! so that a redeploy with nothing changed checks all of its contents with a single slow
//! evaluation instead of one per object.
//!
//! The seal records, for each Compose key with data, the ID of the version that held that
//! data when the seal was made, and a fingerprint (same scheme as the per-version ones) of
//! all those IDs and contents together. Versions are immutable, so a seal never becomes
//! false; it only stops applying. When every key it records still has that version and data
//! reproducing its fingerprint, those versions are the matches and the per-version checks
//! are skipped; otherwise planning falls back to them. A seal cannot help anyone confirm a
//! guess of one secret: checking it needs every other content of the stack as well.

use std::collections::HashMap;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::fingerprint::{Fingerprinter, Material};
use crate::contents::Contents;
use crate::engine::SwarmObject;
use crate::model::{ObjectKey, ObjectKind, Project};
use crate::swarm::labels::{
    MANAGED_LABEL, SEAL_LABEL, SEAL_OBJECTS_LABEL, SEAL_SERIAL_LABEL, STACK_NAMESPACE_LABEL,
};
use crate::swarm::namespace::{is_managed_by, Namespace};

/// What the seal config's data says to someone who inspects it.
pub const SEAL_DATA: &[u8] =
    b"stackroll content seal: see its labels. It holds no secret data; stackroll replaces it.\n";

/// One version a seal covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedVersion {
    /// Secret or config.
    pub kind: ObjectKind,
    /// Its Compose key.
    pub key: String,
    /// Swarm's ID of the version.
    pub id: String,
}

/// A seal found on the swarm.
#[derive(Debug)]
pub struct StoredSeal<'o> {
    /// Its serial number.
    pub serial: u64,
    /// Its fingerprint.
    pub fingerprint: &'o str,
    /// The versions it covers.
    pub versions: Vec<SealedVersion>,
}

/// The seal config's name for a serial number.
pub fn seal_name(namespace: &Namespace, serial: u64) -> String {
    namespace.scope(&format!("stackroll-seal_{serial}"))
}

/// Whether `object` is one of this stack's seals.
pub fn is_seal(object: &SwarmObject, namespace: &Namespace) -> bool {
    is_managed_by(object, namespace) && object.labels.contains_key(SEAL_LABEL)
}

/// The stack's newest seal that can be read, if any.
pub fn newest<'o>(configs: &'o [SwarmObject], namespace: &Namespace) -> Option<StoredSeal<'o>> {
    configs
        .iter()
        .filter(|object| is_seal(object, namespace))
        .filter_map(|object| {
            let serial = object.labels.get(SEAL_SERIAL_LABEL)?.parse().ok()?;
            let versions = serde_json::from_str(object.labels.get(SEAL_OBJECTS_LABEL)?).ok()?;
            Some(StoredSeal {
                serial,
                fingerprint: object.labels.get(SEAL_LABEL)?,
                versions,
            })
        })
        .max_by_key(|seal| seal.serial)
}

/// The labels of a new seal config.
pub fn labels(
    namespace: &Namespace,
    serial: u64,
    fingerprint: String,
    versions: &[SealedVersion],
) -> IndexMap<String, String> {
    let mut labels = IndexMap::new();
    labels.insert(STACK_NAMESPACE_LABEL.to_string(), namespace.0.clone());
    labels.insert(MANAGED_LABEL.to_string(), "true".to_string());
    labels.insert(SEAL_LABEL.to_string(), fingerprint);
    labels.insert(
        SEAL_OBJECTS_LABEL.to_string(),
        serde_json::to_string(versions).expect("plain strings serialize"),
    );
    labels.insert(SEAL_SERIAL_LABEL.to_string(), serial.to_string());
    labels
}

/// The bytes a seal fingerprints: each covered version's kind, key and ID with the encoded
/// material of the data it must hold, in the seal's order. `None` when a key has no data.
pub fn material(
    namespace: &Namespace,
    versions: &[SealedVersion],
    project: &Project,
    contents: &Contents,
) -> Option<Zeroizing<Vec<u8>>> {
    const HEADER: &[u8] = b"stackroll-seal-v2";
    let encoded: Vec<Zeroizing<Vec<u8>>> = versions
        .iter()
        .map(|version| {
            let definition = project.definitions(version.kind).get(&version.key)?;
            let data = contents.get(version.kind, &version.key)?;
            Some(
                Material {
                    stack: &namespace.0,
                    kind: version.kind,
                    key: &version.key,
                    data: data.expose(),
                    template_driver: definition.template_driver.as_deref(),
                }
                .encode(),
            )
        })
        .collect::<Option<_>>()?;
    // Allocated once at its final size: no reallocation leaves a copy of the data behind.
    let size = 8
        + HEADER.len()
        + versions
            .iter()
            .zip(&encoded)
            .map(|(version, encoded)| {
                32 + version.kind.noun().len()
                    + version.key.len()
                    + version.id.len()
                    + encoded.len()
            })
            .sum::<usize>();
    let mut out = Zeroizing::new(Vec::with_capacity(size));
    push(&mut out, HEADER);
    for (version, encoded) in versions.iter().zip(&encoded) {
        push(&mut out, version.kind.noun().as_bytes());
        push(&mut out, version.key.as_bytes());
        push(&mut out, version.id.as_bytes());
        push(&mut out, encoded);
    }
    Some(out)
}

fn push(out: &mut Vec<u8>, part: &[u8]) {
    out.extend_from_slice(&(part.len() as u64).to_be_bytes());
    out.extend_from_slice(part);
}

/// The versions (kind and key to ID) the stored seal vouches for, when it applies: every
/// version it covers still exists as a version of its key, and the current data of those
/// keys reproduces its fingerprint. One fingerprint evaluation.
pub fn verified(
    namespace: &Namespace,
    seal: &StoredSeal<'_>,
    existing: impl Fn(ObjectKind, &str, &str) -> bool,
    project: &Project,
    contents: &Contents,
    fingerprinter: &Fingerprinter,
) -> Option<HashMap<ObjectKey, String>> {
    if seal.versions.is_empty()
        || !seal
            .versions
            .iter()
            .all(|version| existing(version.kind, &version.key, &version.id))
    {
        return None;
    }
    let material = material(namespace, &seal.versions, project, contents)?;
    if !fingerprinter.matches_bytes(seal.fingerprint, &material) {
        return None;
    }
    Some(
        seal.versions
            .iter()
            .map(|version| {
                (
                    ObjectKey::new(version.kind, &version.key),
                    version.id.clone(),
                )
            })
            .collect(),
    )
}
