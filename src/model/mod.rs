//! The desired state of a stack as the Compose files describe it, after loading: merged,
//! interpolated, defaults filled, validated. Later stages (planning, conversion to Swarm specs)
//! read only this. `node` is the raw document tree the loader builds and the model keeps
//! where a value stays untyped until conversion.

pub mod node;

use std::fmt;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::diagnostic::Location;
use node::Node;

/// A value together with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub location: Location,
}

/// Bytes that must never be shown: secret data, or config data that may carry secrets.
/// `Debug` prints only the length; the bytes are overwritten with zeros when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct SensitiveBytes(Vec<u8>);

impl SensitiveBytes {
    /// Wraps `bytes`.
    pub fn new(bytes: Vec<u8>) -> SensitiveBytes {
        SensitiveBytes(bytes)
    }

    /// The bytes, for uploading or fingerprinting only.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// How many bytes there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Drop for SensitiveBytes {
    /// Overwrites the bytes before the memory is freed.
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl fmt::Debug for SensitiveBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SensitiveBytes({} bytes)", self.0.len())
    }
}

/// Secret or config: the two kinds of file-like objects Swarm mounts into containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    /// A Swarm secret, mounted under `/run/secrets/` by default.
    Secret,
    /// A Swarm config, mounted under `/` by default.
    Config,
}

impl ObjectKind {
    /// `"secret"` or `"config"`.
    pub fn noun(self) -> &'static str {
        match self {
            ObjectKind::Secret => "secret",
            ObjectKind::Config => "config",
        }
    }

    /// The Compose top-level and service key: `"secrets"` or `"configs"`.
    pub fn plural(self) -> &'static str {
        match self {
            ObjectKind::Secret => "secrets",
            ObjectKind::Config => "configs",
        }
    }

    /// Where a ServiceSpec's ContainerSpec lists references of this kind, and the keys of a
    /// reference's ID and name: `("Secrets", "SecretID", "SecretName")` or the config ones.
    pub fn spec_keys(self) -> (&'static str, &'static str, &'static str) {
        match self {
            ObjectKind::Secret => ("Secrets", "SecretID", "SecretName"),
            ObjectKind::Config => ("Configs", "ConfigID", "ConfigName"),
        }
    }

    /// Largest data Swarm accepts for this kind, in bytes.
    pub fn max_bytes(self) -> u64 {
        match self {
            ObjectKind::Secret => 511_999,
            ObjectKind::Config => 1_023_999,
        }
    }

    /// The container path a target resolves to: relative secret targets land under
    /// `/run/secrets/`, relative config targets under `/`.
    pub fn effective_target(self, target: &str) -> String {
        if target.starts_with('/') {
            return target.to_string();
        }
        match self {
            ObjectKind::Secret => format!("/run/secrets/{target}"),
            ObjectKind::Config => format!("/{target}"),
        }
    }
}

/// A secret or config definition's identity: its kind and its key under `secrets:` or
/// `configs:`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectKey {
    /// Secret or config.
    pub kind: ObjectKind,
    /// The Compose key.
    pub key: String,
}

impl ObjectKey {
    /// The key `key` of `kind`.
    pub fn new(kind: ObjectKind, key: &str) -> ObjectKey {
        ObjectKey {
            kind,
            key: key.to_string(),
        }
    }
}

/// Where a secret's or config's data comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Read from a file (absolute path) at deploy time.
    File(Located<PathBuf>),
    /// The value of an environment variable, read when the project was loaded.
    Environment {
        /// The variable's name.
        variable: Located<String>,
        /// Its value.
        value: SensitiveBytes,
    },
    /// An object that already exists in the swarm and is never created or deleted.
    External,
    /// Inline content (configs only), after interpolation.
    Content(SensitiveBytes),
    /// Created by a secret driver plugin; its content is not known to us.
    Driver(String),
}

/// A top-level `secrets:` or `configs:` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    /// The key under `secrets:`/`configs:` that services refer to.
    pub key: String,
    /// Secret or config.
    pub kind: ObjectKind,
    /// Where the data comes from.
    pub source: Source,
    /// `name:` (or legacy `external: {name:}`): the swarm name, not scoped by the stack.
    pub name: Option<Located<String>>,
    /// User labels.
    pub labels: IndexMap<String, String>,
    /// Options for a secret driver.
    pub driver_opts: IndexMap<String, String>,
    /// Templating driver for the data (e.g. `golang`).
    pub template_driver: Option<String>,
    /// `x-stackroll-rotation:`: how a content change is rolled out in stages to the services that hold
    /// the credential. `None`: every service moves to a new version at once.
    pub rotation: Option<RotationPolicy>,
    /// Where the definition's key was written.
    pub location: Location,
}

/// A definition's `x-stackroll-rotation:` block: the staged rotation of a credential held by services
/// (Docker's "Rotate a secret"): owners get the old and the new version, `apply` changes the
/// credential inside them, consumers move to the new version, `finalize` revokes the old one,
/// and owners lose the old version.
#[derive(Debug, Clone, PartialEq)]
pub struct RotationPolicy {
    /// The services that hold the credential, in the order written.
    pub owners: Vec<RotationOwner>,
    /// Run once every owner has both versions mounted.
    pub apply: Option<RotationStep>,
    /// Run once every consumer uses the new version, before owners lose the old one.
    pub finalize: Option<RotationStep>,
    /// Where `x-stackroll-rotation` was written.
    pub location: Location,
}

/// One owner of a rotated credential.
#[derive(Debug, Clone, PartialEq)]
pub struct RotationOwner {
    /// The service's key under `services:`.
    pub service: Located<String>,
    /// Where the old version is mounted during a rotation (relative like any target).
    pub previous_target: Located<String>,
}

/// A command run inside one running task of an owner.
#[derive(Debug, Clone, PartialEq)]
pub struct RotationStep {
    /// The owner service whose task runs it.
    pub service: Located<String>,
    /// The command and its arguments (no shell unless the command is one).
    pub command: Vec<String>,
    /// The user to run it as; the container's user when `None`.
    pub user: Option<String>,
    /// Where the step was written.
    pub location: Location,
}

impl Definition {
    /// Whether the object is external (never created, versioned or deleted by us).
    pub fn is_external(&self) -> bool {
        matches!(self.source, Source::External)
    }
}

/// A service's reference to a secret or config, defaults filled.
#[derive(Debug, Clone, PartialEq)]
pub struct FileReference {
    /// The key of the top-level definition.
    pub source: Located<String>,
    /// Where the file appears in the container, as written (relative stays relative).
    pub target: String,
    /// Owner user id, digits.
    pub uid: String,
    /// Owner group id, digits.
    pub gid: String,
    /// Permission bits, at most 0o7777.
    pub mode: u32,
    /// Where the reference starts (the list item).
    pub location: Location,
}

/// One service: its secret and config references, and every other key as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// The service's key under `services:`.
    pub name: String,
    /// Every key other than `secrets` and `configs`, interpolated, in document order.
    pub fields: IndexMap<String, Node>,
    /// Secret references in document order.
    pub secrets: Vec<FileReference>,
    /// Config references in document order.
    pub configs: Vec<FileReference>,
    /// Where the service's key was written.
    pub location: Location,
}

impl Service {
    /// The references of one kind.
    pub fn references(&self, kind: ObjectKind) -> &[FileReference] {
        match kind {
            ObjectKind::Secret => &self.secrets,
            ObjectKind::Config => &self.configs,
        }
    }
}

/// Where the project's name came from.
#[derive(Debug, Clone, PartialEq)]
pub enum NameOrigin {
    /// The command line (the stack argument).
    Argument,
    /// The `COMPOSE_PROJECT_NAME` variable.
    Environment,
    /// A top-level `name:` at this location.
    File(Location),
}

/// The project's name (the stack it deploys to when no stack is given) and its origin.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectName {
    /// The name.
    pub value: String,
    /// Where it came from.
    pub origin: NameOrigin,
}

impl fmt::Display for NameOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameOrigin::Argument => write!(f, "the command line"),
            NameOrigin::Environment => write!(f, "COMPOSE_PROJECT_NAME"),
            NameOrigin::File(location) => write!(f, "`name:` at {location}"),
        }
    }
}

/// Everything the Compose files describe.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Project {
    /// The project name: given on the command line, `COMPOSE_PROJECT_NAME` or top-level `name:`.
    pub name: Option<ProjectName>,
    /// Services by name, in document order.
    pub services: IndexMap<String, Service>,
    /// Top-level secrets by key.
    pub secrets: IndexMap<String, Definition>,
    /// Top-level configs by key.
    pub configs: IndexMap<String, Definition>,
    /// Top-level `networks:` as written.
    pub networks: Option<Node>,
    /// Top-level `volumes:` as written.
    pub volumes: Option<Node>,
    /// The process environment loading saw: conversion takes variables without a value and
    /// `HOME` from it, never from the live process.
    pub environment: ProcessEnvironment,
    /// The files services name under `env_file:`, read while loading.
    pub env_files: EnvFiles,
}

impl Project {
    /// The definitions of one kind.
    pub fn definitions(&self, kind: ObjectKind) -> &IndexMap<String, Definition> {
        match kind {
            ObjectKind::Secret => &self.secrets,
            ObjectKind::Config => &self.configs,
        }
    }
}

/// The process environment, as given to the loader. `Debug` shows only the names: values may
/// be secrets.
#[derive(Clone, PartialEq, Default)]
pub struct ProcessEnvironment(IndexMap<String, String>);

impl ProcessEnvironment {
    /// Wraps the variables.
    pub fn new(variables: IndexMap<String, String>) -> ProcessEnvironment {
        ProcessEnvironment(variables)
    }

    /// The value of `name`, if it is set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

impl Drop for ProcessEnvironment {
    /// Overwrites the values (they may be secrets) before the memory is freed.
    fn drop(&mut self) {
        for value in self.0.values_mut() {
            zeroize::Zeroize::zeroize(value);
        }
    }
}

impl fmt::Debug for ProcessEnvironment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ProcessEnvironment")
            .field(&self.0.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// What reading one env file gave.
#[derive(Debug, Clone, PartialEq)]
pub enum EnvFileRead {
    /// Its bytes (never shown: env files often hold secrets).
    Read(SensitiveBytes),
    /// It could not be read; `missing` when it does not exist (an optional file is skipped).
    Unreadable {
        /// Whether the file does not exist.
        missing: bool,
        /// The error, as the system said it.
        error: String,
    },
}

/// The env files services name, by the absolute path [`EnvFiles::path`] gives.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EnvFiles(IndexMap<PathBuf, EnvFileRead>);

impl EnvFiles {
    /// Where an `env_file:` path written in a file in `dir` points: relative paths start from
    /// the directory of the compose file that names them.
    pub fn path(written: &str, dir: &Path) -> PathBuf {
        if Path::new(written).is_absolute() {
            PathBuf::from(written)
        } else {
            dir.join(written)
        }
    }

    /// Records what reading `path` gave.
    pub fn insert(&mut self, path: PathBuf, read: EnvFileRead) {
        self.0.insert(path, read);
    }

    /// Whether `path` was read (or tried).
    pub fn contains(&self, path: &Path) -> bool {
        self.0.contains_key(path)
    }

    /// What reading `path` gave, if the loader tried.
    pub fn get(&self, path: &Path) -> Option<&EnvFileRead> {
        self.0.get(path)
    }
}
