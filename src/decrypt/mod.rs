//! Encrypted secret sources: a secret or config `file:`, an `env_file:` or `.env` that is an
//! age file ([`age`]) or a SOPS file ([`sops`]) is decrypted in memory with the age identities
//! the user gave ([`AgeKeys`]). A file that is neither is passed through unchanged.
//!
//! The plaintext is built in a [`Plaintext`] buffer that never leaves a copy behind and ends up
//! in a [`SensitiveBytes`] (zeroed when dropped); it is never written anywhere, and errors name
//! the file, its format and the identities tried (by source and public key), never key material
//! or content.

pub mod age;
pub mod sops;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use indexmap::IndexMap;
use zeroize::{Zeroize, Zeroizing};

use crate::compose::read::{read_file, Containment};
use crate::model::SensitiveBytes;

/// Where age identities come from, resolved once from the command line and the environment;
/// the files are read (and the keys parsed) the first time a file needs decrypting.
#[derive(Clone, Default)]
pub struct AgeKeys {
    /// The sources, in the order they are tried.
    sources: Vec<KeySource>,
    /// The identities, once loaded.
    loaded: Arc<OnceLock<LoadedKeys>>,
}

/// One place identities come from.
#[derive(Clone)]
struct KeySource {
    /// How the user named it: `--age-identity ./key.txt`, `SOPS_AGE_KEY`, ...
    label: String,
    /// The identities' text, or the file holding it.
    material: KeyMaterial,
}

/// An identity file or identities given inline.
#[derive(Clone)]
enum KeyMaterial {
    /// A file of identities, one per line (`age-keygen` output).
    File(PathBuf),
    /// Identities given in a variable.
    Inline(Zeroizing<String>),
}

/// The identities of every source, and what was tried, for messages.
struct LoadedKeys {
    /// Every identity that parsed.
    identities: Vec<::age::x25519::Identity>,
    /// Per source: its label and its public keys, or why it gave none.
    tried: Vec<String>,
}

/// Largest identity file read.
const MAX_KEY_FILE_BYTES: u64 = 1024 * 1024;

impl AgeKeys {
    /// The identities of `--age-identity FILE`s (relative to `working_dir`), then of
    /// `SOPS_AGE_KEY_FILE` and `SOPS_AGE_KEY` in `environment`, then SOPS's default key file
    /// (`$XDG_CONFIG_HOME/sops/age/keys.txt`, else `~/.config/sops/age/keys.txt`) when it exists.
    pub fn resolve(
        identity_files: &[String],
        working_dir: &Path,
        environment: &IndexMap<String, String>,
    ) -> AgeKeys {
        let mut sources: Vec<KeySource> = identity_files
            .iter()
            .map(|file| KeySource {
                label: format!("--age-identity {file}"),
                material: KeyMaterial::File(working_dir.join(file)),
            })
            .collect();
        if let Some(file) = environment
            .get("SOPS_AGE_KEY_FILE")
            .filter(|f| !f.is_empty())
        {
            sources.push(KeySource {
                label: format!("SOPS_AGE_KEY_FILE={file}"),
                material: KeyMaterial::File(working_dir.join(file)),
            });
        }
        if let Some(text) = environment.get("SOPS_AGE_KEY").filter(|t| !t.is_empty()) {
            sources.push(KeySource {
                label: "SOPS_AGE_KEY".to_string(),
                material: KeyMaterial::Inline(Zeroizing::new(text.clone())),
            });
        }
        let config = environment
            .get("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| {
                environment
                    .get("HOME")
                    .map(|home| Path::new(home).join(".config"))
            });
        if let Some(default) = config.map(|dir| dir.join("sops/age/keys.txt")) {
            if default.is_file() {
                sources.push(KeySource {
                    label: format!("default key file {}", default.display()),
                    material: KeyMaterial::File(default),
                });
            }
        }
        AgeKeys {
            sources,
            loaded: Arc::default(),
        }
    }

    /// The identities, read and parsed on first use.
    fn loaded(&self) -> &LoadedKeys {
        self.loaded.get_or_init(|| {
            let mut loaded = LoadedKeys {
                identities: Vec::new(),
                tried: Vec::new(),
            };
            for source in &self.sources {
                let parsed = match &source.material {
                    KeyMaterial::Inline(text) => age::parse_identities(text),
                    KeyMaterial::File(path) => read_key_file(path)
                        .map_err(|problem| vec![problem])
                        .and_then(|text| age::parse_identities(&text)),
                };
                let tried = match parsed {
                    Ok(identities) if identities.is_empty() => "holds no age identity".to_string(),
                    Ok(identities) => {
                        let public: Vec<String> = identities
                            .iter()
                            .map(|identity| identity.to_public().to_string())
                            .collect();
                        loaded.identities.extend(identities);
                        public.join(", ")
                    }
                    Err(problems) => problems.join("; "),
                };
                loaded.tried.push(format!("{} ({tried})", source.label));
            }
            loaded
        })
    }

    /// What was tried, for an error: each source with its public keys or its problem.
    fn tried(&self) -> String {
        let tried = &self.loaded().tried;
        if tried.is_empty() {
            "no identities given".to_string()
        } else {
            tried.join("; ")
        }
    }
}

impl fmt::Debug for AgeKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let labels: Vec<&str> = self.sources.iter().map(|s| s.label.as_str()).collect();
        f.debug_struct("AgeKeys").field("sources", &labels).finish()
    }
}

/// Reads an identity file, whole, into memory that is zeroed when dropped.
fn read_key_file(path: &Path) -> Result<Zeroizing<String>, String> {
    let bytes = Zeroizing::new(
        read_file(path, MAX_KEY_FILE_BYTES, Containment::Anywhere)
            .map_err(|error| error.to_string())?,
    );
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(Zeroizing::new(text.to_string())),
        Err(_) => Err("not a text file".to_string()),
    }
}

/// How a file is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    /// An age file, binary or armored.
    Age,
    /// A SOPS file in this format.
    Sops(sops::Format),
}

impl fmt::Display for Encryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Encryption::Age => f.write_str("age"),
            Encryption::Sops(format) => write!(f, "SOPS {format}"),
        }
    }
}

/// A file's data, decrypted when it was encrypted.
#[derive(Debug)]
pub struct Decrypted {
    /// The plaintext (or the file's bytes when it was not encrypted).
    pub bytes: SensitiveBytes,
    /// How it was encrypted, if it was.
    pub encryption: Option<Encryption>,
}

/// A file that could not be decrypted. Names the file, never its content or key material.
#[derive(Debug, thiserror::Error)]
#[error("{}: {}", file.display(), self.without_file())]
pub struct DecryptError {
    /// The file.
    pub file: PathBuf,
    /// How it is encrypted.
    pub encryption: Encryption,
    /// What went wrong.
    pub reason: String,
    /// The identities tried: their sources and public keys.
    pub tried: String,
}

impl DecryptError {
    /// The message without the file's name, for callers that name it themselves.
    pub fn without_file(&self) -> String {
        format!(
            "cannot decrypt this {} file: {}; identities tried: {}",
            self.encryption, self.reason, self.tried
        )
    }
}

/// The hint every decryption failure comes with.
pub const DECRYPT_HINT: &str = "give an age identity the file is encrypted to with --age-identity FILE, SOPS_AGE_KEY_FILE or SOPS_AGE_KEY";

/// Decrypts `bytes`, read from `file`, when they are an age or SOPS file; else returns them
/// as they are. The read bytes are zeroed once decrypted.
pub fn decrypt_file(
    file: &Path,
    bytes: Vec<u8>,
    keys: &AgeKeys,
) -> Result<Decrypted, DecryptError> {
    let encrypted = Zeroizing::new(bytes);
    let encryption = if age::is_age(&encrypted) {
        Encryption::Age
    } else if let Some(format) = sops::detect(file, &encrypted) {
        Encryption::Sops(format)
    } else {
        let mut bytes = encrypted;
        return Ok(Decrypted {
            bytes: SensitiveBytes::new(std::mem::take(&mut *bytes)),
            encryption: None,
        });
    };
    let identities = &keys.loaded().identities;
    let result = match encryption {
        Encryption::Age => age::decrypt(&encrypted, identities),
        Encryption::Sops(format) => sops::decrypt(format, &encrypted, identities),
    };
    match result {
        Ok(plaintext) => Ok(Decrypted {
            bytes: plaintext.into_sensitive(),
            encryption: Some(encryption),
        }),
        Err(reason) => Err(DecryptError {
            file: file.to_path_buf(),
            encryption,
            reason,
            tried: keys.tried(),
        }),
    }
}

/// A growing plaintext buffer that never leaves a copy behind: to grow, it allocates anew,
/// copies, and zeroes the old allocation before freeing it; dropped, it is zeroed.
pub struct Plaintext {
    /// The bytes so far.
    bytes: Vec<u8>,
}

impl Plaintext {
    /// An empty buffer with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Plaintext {
        Plaintext {
            bytes: Vec::with_capacity(capacity),
        }
    }

    /// Appends `data`.
    pub fn push(&mut self, data: &[u8]) {
        let needed = self.bytes.len() + data.len();
        if needed > self.bytes.capacity() {
            let mut grown = Vec::with_capacity(needed.max(self.bytes.capacity() * 2));
            grown.extend_from_slice(&self.bytes);
            self.bytes.zeroize();
            self.bytes = grown;
        }
        self.bytes.extend_from_slice(data);
    }

    /// Appends `text`.
    pub fn push_str(&mut self, text: &str) {
        self.push(text.as_bytes());
    }

    /// The bytes so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The plaintext as sensitive bytes.
    pub fn into_sensitive(mut self) -> SensitiveBytes {
        SensitiveBytes::new(std::mem::take(&mut self.bytes))
    }
}

impl Drop for Plaintext {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Plaintext({} bytes)", self.bytes.len())
    }
}

#[cfg(test)]
mod tests;
