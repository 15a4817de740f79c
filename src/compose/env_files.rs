//! Reading the files services name under `env_file:`, while loading, so that converting a
//! service reads no file. Nothing is judged here: a file that cannot be read is recorded as
//! such, and conversion (`convert::envfile`) reports it, or skips it when it is optional.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::model::node::Node;
use crate::model::{EnvFileRead, EnvFiles, Project, SensitiveBytes};

/// Reads every env file a service of `project` names (each path once).
pub fn read(project: &Project) -> EnvFiles {
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
                let read = read_one(&full);
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
/// reads), keeping the error when it cannot be read.
fn read_one(path: &Path) -> EnvFileRead {
    let unreadable = |error: std::io::Error| EnvFileRead::Unreadable {
        missing: error.kind() == std::io::ErrorKind::NotFound,
        error: error.to_string(),
    };
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) => return unreadable(error),
    };
    let limit = super::MAX_FILE_BYTES;
    let size = file
        .metadata()
        .map_or(0, |metadata| metadata.len())
        .min(limit + 1);
    let mut bytes = Vec::with_capacity(size as usize);
    if let Err(error) = file.take(limit + 1).read_to_end(&mut bytes) {
        return unreadable(error);
    }
    if bytes.len() as u64 > limit {
        zeroize::Zeroize::zeroize(&mut bytes);
        return EnvFileRead::Unreadable {
            missing: false,
            error: format!("file is larger than {limit} bytes"),
        };
    }
    EnvFileRead::Read(SensitiveBytes::new(bytes))
}
