//! The data of every secret and config the stack creates, read once before planning: from
//! files (decrypted in memory when they are age or SOPS files, see [`crate::decrypt`]), from
//! the environment (already in the model), or inline content. Data is held in
//! [`SensitiveBytes`] and never shown; descriptions say only where it comes from and, for a
//! config, its size.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::compose::read::{read_file, ReadError};
use crate::compose::validate::FilePolicy;
use crate::compose::Loaded;
use crate::decrypt::{decrypt_file, AgeKeys, Decrypted, DECRYPT_HINT};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::model::{Definition, Located, ObjectKey, ObjectKind, SensitiveBytes, Source};

/// Data and a description for each (kind, key).
#[derive(Debug, Default)]
pub struct Contents {
    data: HashMap<ObjectKey, SensitiveBytes>,
    descriptions: HashMap<ObjectKey, String>,
}

impl Contents {
    /// Reads the data of every non-external definition of the loaded project. Each file is
    /// opened once, where the project's file policy allows, decrypted when it is encrypted
    /// (with the loaded project's age identities), and its bytes are checked here (a regular
    /// file, 1 byte to Swarm's limit): the bytes checked are the bytes sent.
    /// `working_dir` shortens file paths in descriptions.
    pub fn read(loaded: &Loaded, working_dir: &Path) -> Result<Contents, Diagnostics> {
        let mut contents = Contents::default();
        let mut problems = Diagnostics::default();
        for kind in [ObjectKind::Secret, ObjectKind::Config] {
            for definition in loaded.project.definitions(kind).values() {
                let key = ObjectKey::new(kind, &definition.key);
                let (data, description) = match &definition.source {
                    Source::External => continue,
                    Source::Driver(driver) => {
                        contents
                            .descriptions
                            .insert(key, format!("driver {driver}, content not known"));
                        continue;
                    }
                    Source::File(path) => {
                        match read_file_source(definition, path, &loaded.files, &loaded.age_keys) {
                            Ok(Decrypted { bytes, encryption }) => {
                                let shown = match path.value.strip_prefix(working_dir) {
                                    Ok(relative) => format!("./{}", relative.display()),
                                    Err(_) => path.value.display().to_string(),
                                };
                                let size = size_of(kind, bytes.len());
                                let description = match encryption {
                                    None => format!("file {shown}{size}"),
                                    Some(encryption) => {
                                        format!("{encryption} file {shown}{size} (decrypted)")
                                    }
                                };
                                (bytes, description)
                            }
                            Err(problem) => {
                                problems.push(problem);
                                continue;
                            }
                        }
                    }
                    Source::Environment { variable, value } => (
                        value.clone(),
                        format!(
                            "environment {}{}",
                            variable.value,
                            size_of(kind, value.len())
                        ),
                    ),
                    Source::Content(value) => (
                        value.clone(),
                        format!("inline content{}", size_of(kind, value.len())),
                    ),
                };
                contents.data.insert(key.clone(), data);
                contents.descriptions.insert(key, description);
            }
        }
        if problems.has_errors() {
            return Err(problems);
        }
        Ok(contents)
    }

    /// The data of (kind, key), if it has any (external and driver-backed ones have none).
    pub fn get(&self, kind: ObjectKind, key: &str) -> Option<&SensitiveBytes> {
        self.data.get(&ObjectKey::new(kind, key))
    }

    /// Where the data comes from and its size, e.g. `file ./db.txt, 17 bytes`.
    pub fn describe(&self, kind: ObjectKind, key: &str) -> String {
        self.descriptions
            .get(&ObjectKey::new(kind, key))
            .cloned()
            .unwrap_or_default()
    }
}

/// The size a description shows: `, N bytes` for a config, nothing for a secret. A secret's
/// length narrows a guess of it (a 6-byte password is one of few), while a reviewer learns
/// nothing from it that the file name and "content changed" do not say; so no plan, in any
/// format, shows it.
fn size_of(kind: ObjectKind, bytes: usize) -> String {
    match kind {
        ObjectKind::Secret => String::new(),
        ObjectKind::Config => format!(", {bytes} bytes"),
    }
}

/// The bytes of a `file:` source, read once within the policy, decrypted when encrypted and
/// checked against Swarm's limits for its kind; a problem names the file and field, never the
/// content or key material.
fn read_file_source(
    definition: &Definition,
    path: &Located<PathBuf>,
    policy: &FilePolicy,
    keys: &AgeKeys,
) -> Result<Decrypted, Diagnostic> {
    let kind = definition.kind;
    let limit = kind.max_bytes();
    let field = format!("{}.{}.file", kind.plural(), definition.key);
    let problem = |problem: String| {
        Diagnostic::error(
            Some(path.location.clone()),
            format!("{}: {problem}", path.value.display()),
        )
        .field(field.clone())
    };
    let limits_hint = format!(
        "a {} file must be a regular file holding 1 to {limit} bytes, inside the project directory unless --allow-external-files",
        kind.noun()
    );
    let bytes = read_file(&path.value, encrypted_limit(limit), policy.containment())
        .map_err(|error| problem(error.to_string()).hint(limits_hint.clone()))?;
    let decrypted = decrypt_file(&path.value, bytes, keys).map_err(|error| {
        Diagnostic::error(Some(path.location.clone()), error.to_string())
            .field(field.clone())
            .hint(DECRYPT_HINT)
    })?;
    let size = decrypted.bytes.len() as u64;
    if size > limit {
        let too_large = ReadError::TooLarge {
            size: Some(size),
            limit,
        };
        return Err(problem(too_large.to_string()).hint(limits_hint));
    }
    if size == 0 {
        return Err(problem("file is empty".to_string()).hint(limits_hint));
    }
    Ok(decrypted)
}

/// The most bytes read of a secret or config file whose data may hold `limit` bytes: room for
/// an encrypted file's overhead (base64, SOPS metadata); the data is checked once decrypted.
fn encrypted_limit(limit: u64) -> u64 {
    limit * 4 + 64 * 1024
}

#[cfg(test)]
mod tests {
    use super::Contents;
    use crate::compose::{load, LoadOptions};

    /// A project with secret `db` from `db.txt`, loaded (checks passed).
    fn loaded(dir: &tempfile::TempDir) -> crate::compose::Loaded {
        std::fs::write(
            dir.path().join("compose.yaml"),
            "services:\n  app:\n    image: i\n    secrets: [db]\nsecrets:\n  db:\n    file: ./db.txt\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("db.txt"), "small").unwrap();
        let options = LoadOptions {
            working_dir: dir.path().to_path_buf(),
            ..LoadOptions::default()
        };
        load(&options).expect("loads")
    }

    fn error_of(dir: &tempfile::TempDir, loaded: &crate::compose::Loaded) -> String {
        let problems = Contents::read(loaded, dir.path()).expect_err("refused");
        problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn a_file_changed_after_the_checks_is_judged_by_the_bytes_read() {
        let dir = tempfile::tempdir().unwrap();
        let loaded = loaded(&dir);
        std::fs::write(dir.path().join("db.txt"), vec![b'x'; 600_000]).unwrap();
        assert!(error_of(&dir, &loaded).contains("file is too large"));
        std::fs::write(dir.path().join("db.txt"), "").unwrap();
        assert!(error_of(&dir, &loaded).contains("file is empty"));
    }

    #[test]
    fn a_symlink_swapped_in_after_the_checks_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("key"), "private").unwrap();
        let loaded = loaded(&dir);
        std::fs::remove_file(dir.path().join("db.txt")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("key"), dir.path().join("db.txt")).unwrap();
        let error = error_of(&dir, &loaded);
        assert!(error.contains("outside the project directory"), "{error}");
        assert!(!error.contains("private"));
    }
}
