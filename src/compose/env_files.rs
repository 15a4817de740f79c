//! Reading the files services name under `env_file:`, while loading, so that converting a
//! service reads no file. SOPS- or age-encrypted ones are decrypted here (`crate::decrypt`). Nothing is judged here: a file that cannot be read is recorded as
//! such, and conversion (`convert::envfile`) reports it, or skips it when it is optional.

use std::path::Path;

use super::read::{read_file, ReadError};
use super::validate::FilePolicy;
use crate::decrypt::{decrypt_file, AgeKeys, DECRYPT_HINT};
use crate::model::node::Node;
use crate::model::{EnvFileRead, EnvFiles, Project};

/// Reads every env file a service of `project` names (each path once).
pub fn read(project: &Project, policy: &FilePolicy, keys: &AgeKeys) -> EnvFiles {
    let mut files = EnvFiles::default();
    for service in project.services.values() {
        let Some(node) = service
            .fields
            .get("env_file")
            .filter(|node| !node.is_null())
        else {
            continue;
        };
        for (written, path) in written_paths(node) {
            let full = EnvFiles::path(path, &written.location.file.dir);
            if !files.contains(&full) {
                let read = read_one(&full, policy, keys);
                files.insert(full, read);
            }
        }
    }
    files
}

/// Every path an `env_file:` value names, with the node it is written in: a string, a list
/// of strings, or a list of `{path, required}`. Anything else names no file (conversion
/// reports it).
pub fn written_paths(node: &Node) -> Vec<(&Node, &str)> {
    if let Some(path) = node.scalar_text() {
        return vec![(node, path)];
    }
    let items = node.as_seq().unwrap_or_default();
    items
        .iter()
        .filter_map(|item| {
            let written = match item.as_map() {
                Some(map) => map
                    .get("path")
                    .map(|entry| &entry.value)
                    .filter(|node| !node.is_null())?,
                None => item,
            };
            Some((written, written.scalar_text()?))
        })
        .collect()
}

/// Reads one file (at most [`MAX_FILE_BYTES`](super::MAX_FILE_BYTES), as every file the loader
/// reads, opened once: a FIFO or device is refused, not waited on; where the policy says),
/// decrypted when encrypted), keeping the error when it cannot be read.
fn read_one(path: &Path, policy: &FilePolicy, keys: &AgeKeys) -> EnvFileRead {
    match read_file(path, super::MAX_FILE_BYTES, policy.containment()) {
        Ok(bytes) => match decrypt_file(path, bytes, keys) {
            Ok(decrypted) => EnvFileRead::Read(decrypted.bytes),
            Err(error) => EnvFileRead::Unreadable {
                missing: false,
                error: format!("{} (hint: {DECRYPT_HINT})", error.without_file()),
            },
        },
        Err(error) => EnvFileRead::Unreadable {
            missing: matches!(error, ReadError::NotFound),
            error: error.to_string(),
        },
    }
}
