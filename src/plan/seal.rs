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
//!
//! So that one changed key among thousands does not cost a check of every other one, the seal
//! also holds the fingerprints of its parts: a tree whose level 1 parts cover 8 consecutive
//! versions (in the seal's order), level 2 parts 64, and so on below the whole seal. When the
//! whole does not verify, its parts are checked level by level, each failing part handing on
//! to its own parts, so one changed key costs about 8 evaluations per level (~30 for 2,000
//! keys, on every core) instead of one per key. Recording the parts costs one evaluation per
//! 7 versions when they are first made; later seals make again only the parts whose versions
//! changed. A part is no easier to guess than a version's
//! own fingerprint: it needs the data of all the versions it covers. A new seal reuses the
//! fingerprints of the parts that cover exactly the versions they covered in the seal it
//! replaces (versions are immutable, so those stay true); a stored part that is wrong only
//! ever fails, and planning then checks below it.

use std::collections::HashMap;
use std::ops::Range;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::fingerprint::{on_every_core, Fingerprinter, Material};
use crate::contents::Contents;
use crate::engine::SwarmObject;
use crate::model::{ObjectKey, ObjectKind, Project};
use crate::swarm::labels::{
    MANAGED_LABEL, SEAL_LABEL, SEAL_OBJECTS_LABEL, SEAL_PARTS_LABEL, SEAL_SERIAL_LABEL,
    STACK_NAMESPACE_LABEL,
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
    /// The fingerprints of its parts, level by level from 1 (see [`part_ranges`]); empty for
    /// a seal without parts (older builds, or too few versions to have any).
    pub parts: Vec<Vec<String>>,
}

/// How many versions a level 1 part covers, and how many parts of a level one part of the
/// next level covers.
pub const BRANCHING: usize = 8;

/// The version ranges of a seal's parts over `len` versions, level by level from 1: level
/// `l`'s parts cover `BRANCHING^l` consecutive versions each (the last one may cover fewer).
/// The levels stop below the first whose one part would cover every version: that is the
/// whole seal.
pub fn part_ranges(len: usize) -> Vec<Vec<Range<usize>>> {
    let mut levels = Vec::new();
    let mut size = BRANCHING;
    while size < len {
        let level = (0..len)
            .step_by(size)
            .map(|start| start..(start + size).min(len))
            .collect();
        levels.push(level);
        size *= BRANCHING;
    }
    levels
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
            let parts = object
                .labels
                .get(SEAL_PARTS_LABEL)
                .and_then(|parts| serde_json::from_str(parts).ok())
                .unwrap_or_default();
            Some(StoredSeal {
                serial,
                fingerprint: object.labels.get(SEAL_LABEL)?,
                versions,
                parts,
            })
        })
        .max_by_key(|seal| seal.serial)
}

/// The labels of a new seal config.
pub fn labels(
    namespace: &Namespace,
    serial: u64,
    fingerprints: SealFingerprints,
    versions: &[SealedVersion],
) -> IndexMap<String, String> {
    let mut labels = IndexMap::new();
    labels.insert(STACK_NAMESPACE_LABEL.to_string(), namespace.0.clone());
    labels.insert(MANAGED_LABEL.to_string(), "true".to_string());
    labels.insert(SEAL_LABEL.to_string(), fingerprints.whole);
    labels.insert(
        SEAL_OBJECTS_LABEL.to_string(),
        serde_json::to_string(versions).expect("plain strings serialize"),
    );
    if !fingerprints.parts.is_empty() {
        labels.insert(
            SEAL_PARTS_LABEL.to_string(),
            serde_json::to_string(&fingerprints.parts).expect("plain strings serialize"),
        );
    }
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

/// What a stored seal vouches for.
#[derive(Debug, Default)]
pub struct SealCheck {
    /// The versions (kind and key to ID) whose keys' current data is theirs.
    pub vouched: HashMap<ObjectKey, String>,
    /// Whether the whole seal verified (not only some of its parts).
    pub whole: bool,
}

/// One part of a stored seal to check: its level (the whole seal is one above the highest
/// part level), the versions it covers and its stored fingerprint.
struct PartToCheck<'s> {
    level: usize,
    range: Range<usize>,
    fingerprint: &'s str,
}

/// What the stored seal vouches for: the whole seal when every version it covers still
/// exists as a version of its key and the current data of those keys reproduces its
/// fingerprint (one evaluation); else, level by level, the parts that do.
pub fn verified(
    namespace: &Namespace,
    seal: &StoredSeal<'_>,
    existing: impl Fn(ObjectKind, &str, &str) -> bool + Sync,
    project: &Project,
    contents: &Contents,
    fingerprinter: &Fingerprinter,
) -> SealCheck {
    let mut check = SealCheck::default();
    if seal.versions.is_empty() {
        return check;
    }
    let ranges = part_ranges(seal.versions.len());
    let parts_match = seal.parts.len() == ranges.len()
        && seal
            .parts
            .iter()
            .zip(&ranges)
            .all(|(f, r)| f.len() == r.len());
    let parts: &[Vec<String>] = if parts_match { &seal.parts } else { &[] };
    let mut round = vec![PartToCheck {
        level: ranges.len() + 1,
        range: 0..seal.versions.len(),
        fingerprint: seal.fingerprint,
    }];
    while !round.is_empty() {
        let passed = on_every_core(&round, |part| {
            let versions = &seal.versions[part.range.clone()];
            versions
                .iter()
                .all(|version| existing(version.kind, &version.key, &version.id))
                && material(namespace, versions, project, contents).is_some_and(|material| {
                    fingerprinter.matches_bytes(part.fingerprint, &material)
                })
        });
        let mut next = Vec::new();
        for (part, passed) in round.into_iter().zip(passed) {
            if passed {
                check.whole |= part.level == ranges.len() + 1;
                vouch(&mut check.vouched, &seal.versions[part.range]);
            } else {
                next.extend(parts_of(&part, &ranges, parts));
            }
        }
        round = next;
    }
    check
}

/// The parts one level below `part` that it covers (none below level 1, or without parts).
fn parts_of<'s>(
    part: &PartToCheck<'_>,
    ranges: &[Vec<Range<usize>>],
    parts: &'s [Vec<String>],
) -> Vec<PartToCheck<'s>> {
    let level = part.level - 1;
    if level == 0 || parts.is_empty() {
        return Vec::new();
    }
    ranges[level - 1]
        .iter()
        .zip(&parts[level - 1])
        .filter(|(range, _)| range.start >= part.range.start && range.end <= part.range.end)
        .map(|(range, fingerprint)| PartToCheck {
            level,
            range: range.clone(),
            fingerprint,
        })
        .collect()
}

/// Adds `versions` to what is vouched for.
fn vouch(vouched: &mut HashMap<ObjectKey, String>, versions: &[SealedVersion]) {
    for version in versions {
        vouched.insert(
            ObjectKey::new(version.kind, &version.key),
            version.id.clone(),
        );
    }
}

/// The fingerprints of a new seal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealFingerprints {
    /// Over every version.
    pub whole: String,
    /// Of its parts, level by level from 1 (see [`part_ranges`]).
    pub parts: Vec<Vec<String>>,
}

/// A stored seal's fingerprints by the versions each covers ([`covered`]), for a new seal to
/// reuse where one of its parts covers exactly the same versions.
pub fn reusable(seal: &StoredSeal<'_>) -> HashMap<String, String> {
    let mut known = HashMap::new();
    if seal.versions.is_empty() {
        return known;
    }
    known.insert(covered(&seal.versions), seal.fingerprint.to_string());
    let ranges = part_ranges(seal.versions.len());
    for (level, fingerprints) in ranges.iter().zip(&seal.parts) {
        for (range, fingerprint) in level.iter().zip(fingerprints) {
            known.insert(covered(&seal.versions[range.clone()]), fingerprint.clone());
        }
    }
    known
}

/// The versions a part covers, as one string (kinds, keys and IDs: nothing secret).
pub fn covered(versions: &[SealedVersion]) -> String {
    versions
        .iter()
        .map(|version| format!("{} {} {}\n", version.kind.noun(), version.key, version.id))
        .collect()
}

/// One fingerprint of a new seal: known already, or to compute from its material.
enum PartFingerprint {
    Known(String),
    Compute(Zeroizing<Vec<u8>>),
}

/// What a new seal's fingerprints are made from; [`SealInputs::fingerprints`] makes them.
pub struct SealInputs {
    /// The whole seal, then each level's parts in order.
    fingerprints: Vec<PartFingerprint>,
    /// How many parts each level has.
    level_sizes: Vec<usize>,
}

/// The inputs of a new seal over `versions`: the material of every part whose fingerprint
/// `reusable` does not already hold. `None` when a key has no data.
pub fn inputs(
    namespace: &Namespace,
    versions: &[SealedVersion],
    project: &Project,
    contents: &Contents,
    reusable: &HashMap<String, String>,
) -> Option<SealInputs> {
    let ranges = part_ranges(versions.len());
    let mut fingerprints = Vec::new();
    for range in std::iter::once(0..versions.len()).chain(ranges.iter().flatten().cloned()) {
        let covered_versions = &versions[range];
        fingerprints.push(match reusable.get(&covered(covered_versions)) {
            Some(known) => PartFingerprint::Known(known.clone()),
            None => {
                PartFingerprint::Compute(material(namespace, covered_versions, project, contents)?)
            }
        });
    }
    Some(SealInputs {
        fingerprints,
        level_sizes: ranges.iter().map(Vec::len).collect(),
    })
}

impl SealInputs {
    /// The seal's fingerprints, computed on every core where not known.
    pub fn fingerprints(self, fingerprinter: &Fingerprinter) -> SealFingerprints {
        let mut all = on_every_core(&self.fingerprints, |part| match part {
            PartFingerprint::Known(known) => known.clone(),
            PartFingerprint::Compute(material) => fingerprinter.fingerprint_bytes(material),
        })
        .into_iter();
        let whole = all.next().expect("the whole seal is the first fingerprint");
        let parts = self
            .level_sizes
            .iter()
            .map(|size| all.by_ref().take(*size).collect())
            .collect();
        SealFingerprints { whole, parts }
    }

    /// How many fingerprints must be computed (not reused).
    pub fn to_compute(&self) -> usize {
        self.fingerprints
            .iter()
            .filter(|part| matches!(part, PartFingerprint::Compute(_)))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_consecutive_versions_level_by_level_below_the_whole() {
        let sizes = |len: usize| -> Vec<Vec<usize>> {
            part_ranges(len)
                .iter()
                .map(|level| level.iter().map(|range| range.len()).collect())
                .collect()
        };
        assert!(part_ranges(0).is_empty());
        assert!(
            part_ranges(8).is_empty(),
            "8 versions: the whole seal alone"
        );
        assert_eq!(sizes(9), [vec![8, 1]]);
        assert_eq!(sizes(40), [vec![8; 5]]);
        assert_eq!(sizes(64).len(), 1);
        assert_eq!(sizes(65), [vec![8, 8, 8, 8, 8, 8, 8, 8, 1], vec![64, 1]]);
        let big = part_ranges(2030);
        assert_eq!(big.len(), 3);
        assert_eq!(big[0].len(), 254);
        assert_eq!(big[1].len(), 32);
        assert_eq!(big[2].len(), 4);
        for level in &big {
            assert_eq!(level.first().unwrap().start, 0);
            assert_eq!(level.last().unwrap().end, 2030);
            assert!(level.windows(2).all(|pair| pair[0].end == pair[1].start));
        }
    }
}
