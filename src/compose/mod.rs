//! Loading Compose files into a validated [`Project`]: finding the files, reading `.env` and
//! `--env-file`s, parsing YAML (`yaml`), interpolating (`interpolate`, `environment`), merging
//! several files (`merge`), building the model (`normalize`) and checking it (`validate`),
//! then reading what conversion needs besides the files (`env_files`, the process
//! environment), so later stages read nothing. Nothing here talks to the engine.

pub mod casts;
pub mod differences;
pub mod dotenv;
pub mod env_files;
pub mod environment;
pub mod extends;
pub mod include;
pub mod interpolate;
pub mod merge;
pub mod normalize;
pub mod profiles;
pub mod project_name;
pub mod read;
pub mod rotation;
pub mod scalars;
pub mod validate;
pub mod yaml;

#[cfg(test)]
mod containment_tests;
#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod input_tests;
#[cfg(test)]
mod leak_tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;

use crate::decrypt::{decrypt_file, AgeKeys};
use crate::diagnostic::{Diagnostic, Diagnostics, Location, SourceFile};
use crate::model::{ProcessEnvironment, Project};
use environment::Environment;

/// File names looked for, in order, when no `-c` is given.
pub const DEFAULT_FILE_NAMES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// Override files looked for next to a discovered file, in order; the first found is merged
/// over it (compose-go `cli.DefaultOverrideFileNames`).
pub const DEFAULT_OVERRIDE_FILE_NAMES: &[&str] = &[
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
];

/// The variable naming the compose files when no `-c` is given.
pub const COMPOSE_FILE_VARIABLE: &str = "COMPOSE_FILE";
/// The variable holding the separator of `COMPOSE_FILE` (default `:`).
pub const PATH_SEPARATOR_VARIABLE: &str = "COMPOSE_PATH_SEPARATOR";

/// What to load. `Debug` leaves out environment values and standard input: they may hold
/// secrets.
#[derive(Clone, Default)]
pub struct LoadOptions {
    /// Compose files in order (`-` is standard input); empty means discover one.
    pub files: Vec<String>,
    /// Env files replacing `.env`, in order (later wins).
    pub env_files: Vec<String>,
    /// The directory relative paths start from.
    pub working_dir: PathBuf,
    /// The process environment; it wins over every env file.
    pub process_env: IndexMap<String, String>,
    /// What standard input holds, when a file is `-`.
    pub stdin: Option<String>,
    /// Whether secret and config files may be symlinks leading out of the project directory.
    pub allow_external_files: bool,
    /// `--profile` names; empty means `COMPOSE_PROFILES` decides.
    pub profiles: Vec<String>,
    /// The project (stack) name given on the command line, if any.
    pub project_name: Option<String>,
    /// The age identities encrypted secret, config and env files are decrypted with.
    pub age_keys: AgeKeys,
}

impl std::fmt::Debug for LoadOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadOptions")
            .field("files", &self.files)
            .field("env_files", &self.env_files)
            .field("working_dir", &self.working_dir)
            .field("process_env", &self.process_env.keys().collect::<Vec<_>>())
            .field(
                "stdin",
                &self
                    .stdin
                    .as_ref()
                    .map(|text| format!("{} bytes", text.len())),
            )
            .field("allow_external_files", &self.allow_external_files)
            .field("profiles", &self.profiles)
            .field("project_name", &self.project_name)
            .field("age_keys", &self.age_keys)
            .finish()
    }
}

/// A loaded project and the warnings found on the way.
#[derive(Debug)]
pub struct Loaded {
    /// The validated model.
    pub project: Project,
    /// Warnings only (errors make loading fail).
    pub warnings: Diagnostics,
    /// Where the project's secret, config and env files may be read from.
    pub files: validate::FilePolicy,
    /// The age identities its encrypted secret and config files are decrypted with.
    pub age_keys: AgeKeys,
}

/// Loads, merges, interpolates, normalizes and validates the Compose files. On failure the
/// diagnostics hold every error found (and the warnings).
pub fn load(options: &LoadOptions) -> Result<Loaded, Diagnostics> {
    let mut diagnostics = Diagnostics::default();
    let sources = read_compose_files(options, &mut diagnostics);
    let Some(project_dir) = sources.first().map(|(file, _)| file.dir.clone()) else {
        return Err(diagnostics);
    };
    let mut environment = read_environment(options, &project_dir, &mut diagnostics);
    if diagnostics.has_errors() {
        return Err(diagnostics);
    }

    let mut documents = Vec::new();
    for (file, text) in &sources {
        let (document, errors) = yaml::parse(text, file);
        errors.into_iter().for_each(|error| diagnostics.push(error));
        documents.extend(document);
    }
    let name = project_name::resolve(options.project_name.as_deref(), &environment, &documents);
    if let Some(name) = &name {
        environment.set(project_name::PROJECT_NAME_VARIABLE, &name.value);
    }
    let mut interpolator = environment::TreeInterpolator::new(&environment);
    let mut includer = include::Includer { options, count: 0 };
    let mut merged = None;
    for mut document in documents {
        interpolator.interpolate(&mut document, &mut diagnostics);
        let path = normalize::absolute_path(
            &options.working_dir,
            Path::new(&document.location.file.display),
        );
        includer.apply(&mut document, std::slice::from_ref(&path), &mut diagnostics);
        let mut reader = |base: &Path, at: &Location| {
            let dir = base.parent().unwrap_or(base);
            let file = SourceFile::new(display_path(base, &options.working_dir), dir);
            include::read_base(base, at, &file, &mut interpolator)
        };
        extends::apply(&mut document, &path, &mut reader, &mut diagnostics);
        merged = Some(match merged {
            None => document,
            Some(earlier) => merge::merge_documents(earlier, document),
        });
    }
    // Go on to the model even after errors so that every problem is reported together; a
    // value that failed to interpolate reports only its first error.
    let Some(document) = merged else {
        return Err(diagnostics);
    };
    differences::check(&document, &mut diagnostics);
    let (mut project, rejected) = normalize::normalize(&document, &environment, &mut diagnostics);
    project.name = name;
    let active = profiles::ActiveProfiles::resolve(&options.profiles, &environment);
    profiles::apply(&mut project, &active, &mut diagnostics);
    let policy = validate::FilePolicy {
        project_dir: project_dir.clone(),
        allow_external: options.allow_external_files,
    };
    validate::validate(&project, &rejected, &policy, &mut diagnostics);
    rotation::validate(&project, &mut diagnostics);
    if diagnostics.has_errors() {
        return Err(diagnostics.first_error_per_location());
    }
    project.environment = ProcessEnvironment::new(options.process_env.clone());
    project.env_files = env_files::read(&project, &policy, &options.age_keys);
    Ok(Loaded {
        project,
        warnings: diagnostics,
        files: policy,
        age_keys: options.age_keys.clone(),
    })
}

/// Reads every compose file (or discovers one), reporting each that cannot be read.
fn read_compose_files(
    options: &LoadOptions,
    diagnostics: &mut Diagnostics,
) -> Vec<(Arc<SourceFile>, String)> {
    let names = if !options.files.is_empty() {
        options.files.clone()
    } else if let Some(names) = compose_file_variable(options) {
        names
    } else {
        let found = discover(&options.working_dir);
        if found.is_empty() {
            diagnostics.push(
                Diagnostic::error(
                    None,
                    format!(
                        "no compose file found in {} (looked for {})",
                        options.working_dir.display(),
                        DEFAULT_FILE_NAMES.join(", ")
                    ),
                )
                .hint("pass one with -c FILE, or name them in COMPOSE_FILE"),
            );
            return Vec::new();
        }
        found
    };
    let mut sources = Vec::new();
    for name in names {
        if name == "-" {
            let file = SourceFile::new("<stdin>", &options.working_dir);
            let text = options.stdin.clone().unwrap_or_default();
            if text.len() as u64 > MAX_FILE_BYTES {
                diagnostics.push(Diagnostic::error(
                    Some(Location::file_only(&file)),
                    too_large(text.len() as u64),
                ));
                continue;
            }
            sources.push((file, text));
            continue;
        }
        let path = normalize::absolute_path(&options.working_dir, Path::new(&name));
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| options.working_dir.clone());
        let file = SourceFile::new(name.clone(), dir);
        match read_text(&path) {
            Ok(text) => sources.push((file, text)),
            Err(problem) => diagnostics.push(
                Diagnostic::error(Some(Location::file_only(&file)), problem)
                    .hint("check the path given with -c"),
            ),
        }
    }
    sources
}

/// The files a discovery in `dir` finds: the first default file that exists, and the first
/// override file next to it, as docker compose does.
fn discover(dir: &Path) -> Vec<String> {
    // Whatever exists is read, so a FIFO or device gets a clear error.
    let first = |names: &[&str]| {
        names
            .iter()
            .find(|name| dir.join(name).exists())
            .map(|name| name.to_string())
    };
    let Some(main) = first(DEFAULT_FILE_NAMES) else {
        return Vec::new();
    };
    std::iter::once(main)
        .chain(first(DEFAULT_OVERRIDE_FILE_NAMES))
        .collect()
}

/// The files `COMPOSE_FILE` names (split on `COMPOSE_PATH_SEPARATOR`, default `:`), from the
/// process environment, else from the env files (`--env-file`, else `.env` in the working
/// directory).
fn compose_file_variable(options: &LoadOptions) -> Option<Vec<String>> {
    let from_files = || {
        let names: Vec<PathBuf> = if options.env_files.is_empty() {
            vec![options.working_dir.join(".env")]
        } else {
            options
                .env_files
                .iter()
                .map(|name| normalize::absolute_path(&options.working_dir, Path::new(name)))
                .collect()
        };
        let mut values = IndexMap::new();
        for path in names.iter().filter(|path| path.is_file()) {
            // Problems in these files are reported when the environment is read.
            let Ok(text) = read_text(path) else { continue };
            let lookup = |name: &str| options.process_env.get(name).cloned();
            if let Ok(parsed) = dotenv::parse(&text, &lookup) {
                values.extend(parsed);
            }
        }
        values
    };
    let variable = |name: &str, files: &mut Option<IndexMap<String, String>>| {
        options
            .process_env
            .get(name)
            .cloned()
            .or_else(|| files.get_or_insert_with(from_files).get(name).cloned())
    };
    let mut files = None;
    let value = variable(COMPOSE_FILE_VARIABLE, &mut files).filter(|v| !v.is_empty())?;
    let separator = variable(PATH_SEPARATOR_VARIABLE, &mut files)
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| ":".into());
    Some(
        value
            .split(separator.as_str())
            .filter(|name| !name.is_empty())
            .map(str::to_string)
            .collect(),
    )
}

/// How a file found through `include` or `extends` is named in messages: relative to the
/// working directory when it is below it, else absolute.
fn display_path(path: &Path, working_dir: &Path) -> String {
    path.strip_prefix(working_dir)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Builds the environment: `--env-file`s (or `.env` in the project directory) under the
/// process environment.
fn read_environment(
    options: &LoadOptions,
    project_dir: &Path,
    diagnostics: &mut Diagnostics,
) -> Environment {
    let env_files: Vec<(String, PathBuf)> = if options.env_files.is_empty() {
        let default = project_dir.join(".env");
        // Whatever exists is read, so a FIFO or device gets a clear error.
        if default.exists() {
            vec![(".env".to_string(), default)]
        } else {
            Vec::new()
        }
    } else {
        options
            .env_files
            .iter()
            .map(|name| {
                (
                    name.clone(),
                    normalize::absolute_path(&options.working_dir, Path::new(name)),
                )
            })
            .collect()
    };
    read_environment_files(options, env_files, project_dir, diagnostics)
}

/// Builds an environment from `env_files` (name for messages, path) under the process
/// environment; relative names in messages are shown against `project_dir`.
fn read_environment_files(
    options: &LoadOptions,
    env_files: Vec<(String, PathBuf)>,
    project_dir: &Path,
    diagnostics: &mut Diagnostics,
) -> Environment {
    let mut files = IndexMap::new();
    for (name, path) in env_files {
        let file = SourceFile::new(name, project_dir);
        let text = match read_env_text(&path, &options.age_keys) {
            Ok(text) => text,
            Err(problem) => {
                diagnostics.push(
                    Diagnostic::error(Some(Location::file_only(&file)), problem)
                        .hint("check the path given with --env-file"),
                );
                continue;
            }
        };
        let lookup = |name: &str| {
            options
                .process_env
                .get(name)
                .or_else(|| files.get(name))
                .cloned()
        };
        match dotenv::parse(&text, &lookup) {
            Ok(values) => files.extend(values),
            Err(error) => {
                let mut diagnostic = Diagnostic::error(
                    Some(Location {
                        file: file.clone(),
                        line: error.line,
                        column: error.column,
                    }),
                    format!("invalid env file: {}", error.message),
                )
                .hint("env files hold `KEY=VALUE` lines");
                if let Some(key) = error.key {
                    diagnostic = diagnostic.field(key);
                }
                diagnostics.push(diagnostic);
            }
        }
    }
    Environment::new(options.process_env.clone(), files)
}

/// Largest compose or env file read (bytes); larger ones are refused before parsing.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

fn too_large(len: u64) -> String {
    format!("file is too large ({len} bytes; at most {MAX_FILE_BYTES} are read)")
}

/// Reads an env file named by the user as [`read_text`] does, decrypted in memory when it is a
/// SOPS or age file; the text is zeroed when dropped.
fn read_env_text(path: &Path, keys: &AgeKeys) -> Result<zeroize::Zeroizing<String>, String> {
    let bytes = read::read_file(path, MAX_FILE_BYTES, read::Containment::Anywhere)
        .map_err(|error| error.to_string())?;
    let decrypted = decrypt_file(path, bytes, keys).map_err(|error| {
        format!(
            "{} (hint: {})",
            error.without_file(),
            crate::decrypt::DECRYPT_HINT
        )
    })?;
    match std::str::from_utf8(decrypted.bytes.expose()) {
        Ok(text) => Ok(zeroize::Zeroizing::new(text.to_string())),
        Err(_) => Err("file is not valid UTF-8".to_string()),
    }
}

/// Reads a compose or env file named by the user: a regular file (devices and FIFOs are
/// refused, never read or waited on) of at most [`MAX_FILE_BYTES`], in UTF-8.
pub(crate) fn read_text(path: &Path) -> Result<String, String> {
    let bytes = read::read_file(path, MAX_FILE_BYTES, read::Containment::Anywhere)
        .map_err(|error| error.to_string())?;
    String::from_utf8(bytes).map_err(|_| "file is not valid UTF-8".to_string())
}

/// Loads `text` as the only compose file (standard input, no readable project directory) and
/// panics if the loader breaks its promises: a failed load reports at least one error and every
/// error has a location. The fuzzers (`fuzz/`, `fuzz_tests`) call this; it never panics on
/// its own otherwise.
#[doc(hidden)]
pub fn check_loader_invariants(text: &str) {
    let options = LoadOptions {
        files: vec!["-".into()],
        working_dir: PathBuf::from("/nonexistent-stackroll-fuzz"),
        stdin: Some(text.to_string()),
        ..LoadOptions::default()
    };
    if let Err(diagnostics) = load(&options) {
        assert!(diagnostics.has_errors(), "a failed load reports an error");
        for error in diagnostics.errors() {
            assert!(
                error.location.is_some(),
                "error without a location: {error}"
            );
        }
    }
}
