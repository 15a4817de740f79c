//! Registry credentials read the way the docker CLI reads them: `$DOCKER_CONFIG/config.json`
//! (default `~/.docker/config.json`), its `auths` (base64 `auth` = `user:password`,
//! `identitytoken`, `registrytoken`), and the credential helpers it names (`credHelpers` per
//! registry, else `credsStore`), run as `docker-credential-<helper> get` with the server
//! address on standard input. Credentials are secrets: held in zeroized buffers, never shown
//! by `Debug`, never in an error, never on a command line; they leave only as the
//! `X-Registry-Auth` header value ([`Credentials::header`]), encoded as docker/cli encodes it.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read as _, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::reference::key_hostname;

/// What a credential helper prints when it has nothing for the address.
const HELPER_NOT_FOUND: &str = "credentials not found in native keychain";
/// How long a credential helper may take to answer (`docker-credential-<name> get`).
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(30);
/// The user name a credential helper gives for an identity token.
const TOKEN_USER: &str = "<token>";

/// One registry's credentials.
#[derive(Default, Clone)]
pub struct Credentials {
    /// User name.
    username: Zeroizing<String>,
    /// Password.
    password: Zeroizing<String>,
    /// The address they are for, as docker/cli sends it.
    server_address: String,
    /// An OAuth identity token (instead of a password).
    identity_token: Zeroizing<String>,
    /// A bearer token for the registry.
    registry_token: Zeroizing<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}, redacted)", self.server_address)
    }
}

impl Credentials {
    /// Whether there is anything to send.
    pub fn is_empty(&self) -> bool {
        self.username.is_empty()
            && self.password.is_empty()
            && self.identity_token.is_empty()
            && self.registry_token.is_empty()
    }

    /// The `Authorization` value for a registry that asks for Basic authentication:
    /// `Basic base64(user:password)`; `None` without a user name and password.
    pub fn basic_authorization(&self) -> Option<Zeroizing<String>> {
        if self.username.is_empty() || self.password.is_empty() {
            return None;
        }
        let mut pair = Zeroizing::new(String::with_capacity(
            self.username.len() + self.password.len() + 1,
        ));
        pair.push_str(&self.username);
        pair.push(':');
        pair.push_str(&self.password);
        let mut header = Zeroizing::new(String::from("Basic "));
        base64::engine::general_purpose::STANDARD.encode_string(pair.as_bytes(), &mut header);
        Some(header)
    }

    /// The bearer token to send as it is (`registrytoken`), if there is one.
    pub fn registry_token(&self) -> Option<&str> {
        Some(self.registry_token.as_str()).filter(|token| !token.is_empty())
    }

    /// Whether these are an OAuth identity token (which is exchanged for a bearer token).
    pub fn has_identity_token(&self) -> bool {
        !self.identity_token.is_empty()
    }

    /// The `X-Registry-Auth` value: base64url (padded) of the AuthConfig JSON with empty
    /// members left out, as docker/cli's `authconfig.Encode` makes it.
    pub fn header(&self) -> Zeroizing<String> {
        let mut json = Zeroizing::new(String::from("{"));
        let members = [
            ("username", self.username.as_str()),
            ("password", self.password.as_str()),
            ("serveraddress", self.server_address.as_str()),
            ("identitytoken", self.identity_token.as_str()),
            ("registrytoken", self.registry_token.as_str()),
        ];
        for (name, value) in members.into_iter().filter(|(_, value)| !value.is_empty()) {
            if json.len() > 1 {
                json.push(',');
            }
            json.push('"');
            json.push_str(name);
            json.push_str("\":");
            push_json_string(&mut json, value);
        }
        json.push('}');
        Zeroizing::new(base64::engine::general_purpose::URL_SAFE.encode(json.as_bytes()))
    }
}

/// Appends `value` as a JSON string literal (no intermediate copies left behind unzeroized).
fn push_json_string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Why credentials could not be read. Never carries a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// config.json exists but cannot be read or parsed.
    #[error("cannot read {path}: {message}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong (never a value from it).
        message: String,
    },
    /// A credential helper failed.
    #[error("credential helper docker-credential-{helper} failed for {server}: {message}")]
    Helper {
        /// The helper's suffix.
        helper: String,
        /// The server address asked for.
        server: String,
        /// What went wrong (its exit status; never its output, which could hold a secret).
        message: String,
    },
}

/// One `auths` entry of config.json.
#[derive(Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Zeroizing<String>,
    #[serde(default)]
    username: Zeroizing<String>,
    #[serde(default)]
    password: Zeroizing<String>,
    #[serde(default)]
    identitytoken: Zeroizing<String>,
    #[serde(default)]
    registrytoken: Zeroizing<String>,
}

/// The parts of config.json that say where credentials are.
#[derive(Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: String,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

/// The docker CLI's configuration, as far as credentials go.
pub struct DockerConfig {
    /// The file read (it may not exist).
    path: PathBuf,
    /// Its contents; empty when there is no file.
    file: ConfigFile,
    /// Credentials from `DOCKER_AUTH_CONFIG`, by the exact key they were given under.
    env: BTreeMap<String, Credentials>,
    /// Why `DOCKER_AUTH_CONFIG` was ignored, if it was (never a value from it).
    warnings: Vec<String>,
}

/// The environment variable docker/cli (28.3.0 and later) reads credentials from before its
/// credential store: `{"auths": {"<key>": {"auth": "<base64 user:password>"}}}`.
pub const DOCKER_AUTH_CONFIG: &str = "DOCKER_AUTH_CONFIG";

/// `DOCKER_AUTH_CONFIG` as docker/cli reads it (`configEnv`: no other member allowed).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvConfig {
    #[serde(default)]
    auths: BTreeMap<String, EnvAuth>,
}

/// One registry's entry in `DOCKER_AUTH_CONFIG` (`configEnvAuth`: only `auth`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvAuth {
    #[serde(default)]
    auth: Zeroizing<String>,
}

impl fmt::Debug for DockerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DockerConfig({})", self.path.display())
    }
}

/// Where the docker CLI keeps config.json: `$DOCKER_CONFIG`, else `$HOME/.docker`.
pub fn default_config_path(docker_config: Option<&str>, home: Option<&str>) -> PathBuf {
    let dir = match (docker_config.filter(|dir| !dir.is_empty()), home) {
        (Some(dir), _) => PathBuf::from(dir),
        (None, Some(home)) => Path::new(home).join(".docker"),
        (None, None) => PathBuf::from(".docker"),
    };
    dir.join("config.json")
}

impl DockerConfig {
    /// Reads config.json at `path`; a missing file is an empty configuration, as for docker.
    pub fn load(path: &Path) -> Result<DockerConfig, CredentialError> {
        let refused = |message: String| CredentialError::Config {
            path: path.to_path_buf(),
            message,
        };
        let file = match std::fs::read(path) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                serde_json::from_slice(&bytes).map_err(|error| {
                    refused(format!(
                        "not a docker config file (JSON error at line {}, column {})",
                        error.line(),
                        error.column()
                    ))
                })?
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => ConfigFile::default(),
            Err(error) => return Err(refused(error.to_string())),
        };
        Ok(DockerConfig {
            path: path.to_path_buf(),
            file,
            env: BTreeMap::new(),
            warnings: Vec::new(),
        })
    }

    /// Adds the credentials of `DOCKER_AUTH_CONFIG` (its value, if set), read as docker/cli
    /// 28.3.0 and later reads them (`configfile.GetCredentialsStore`): they come before the
    /// credential helpers and `auths` of config.json, for the exact key they are given
    /// under. An empty value is no value; a value that is not exactly that JSON, or an entry
    /// without a usable `auth`, makes docker/cli ignore the whole variable with a warning,
    /// and so does stackroll ([`DockerConfig::warnings`]).
    pub fn with_env_auths(mut self, value: Option<&str>) -> DockerConfig {
        let Some(value) = value.filter(|value| !value.is_empty()) else {
            return self;
        };
        match parse_env_auths(value) {
            Ok(env) => self.env = env,
            Err(reason) => self.warnings.push(format!(
                "{DOCKER_AUTH_CONFIG} is ignored, as docker ignores it: {reason}"
            )),
        }
        self
    }

    /// What reading the configuration found wrong but went on without.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The file this configuration was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether credentials for the registry with config key `key` are kept locally: an
    /// `auths` entry for it (`docker login` writes one, empty when a helper holds the secret)
    /// or a `credHelpers` entry. Runs no helper.
    pub fn has_credentials(&self, key: &str) -> bool {
        self.env.contains_key(key)
            || self.entry(key).is_some()
            || self.file.cred_helpers.contains_key(key)
    }

    /// Whether the credentials for `key` come from `DOCKER_AUTH_CONFIG`.
    pub fn in_env(&self, key: &str) -> bool {
        self.env.contains_key(key)
    }

    /// The credentials for the registry with config key `key` (see
    /// [`super::reference::config_key`]): from its credential helper (`credHelpers`, else
    /// `credsStore`) when one is configured, else from `auths`. `None` when there are none.
    pub fn credentials(&self, key: &str) -> Result<Option<Credentials>, CredentialError> {
        if let Some(credentials) = self.env.get(key) {
            return Ok(Some(credentials.clone()));
        }
        let helper = self
            .file
            .cred_helpers
            .get(key)
            .filter(|helper| !helper.is_empty())
            .or(Some(&self.file.creds_store).filter(|store| !store.is_empty()));
        let credentials = match helper {
            Some(helper) => run_helper(helper, key)?,
            None => match self.entry(key) {
                Some(entry) => Some(self.entry_credentials(key, entry)?),
                None => None,
            },
        };
        Ok(credentials.filter(|credentials| !credentials.is_empty()))
    }

    /// The `auths` entry for `key`: exact, else one whose key has the same host (old files
    /// keep URLs such as `https://host/v1/`).
    fn entry(&self, key: &str) -> Option<&AuthEntry> {
        self.file.auths.get(key).or_else(|| {
            self.file
                .auths
                .iter()
                .find(|(stored, _)| key_hostname(stored) == key)
                .map(|(_, entry)| entry)
        })
    }

    /// Credentials from an `auths` entry: `auth` (base64 `user:password`) wins over the
    /// plain members, as docker/cli decodes it on load.
    fn entry_credentials(
        &self,
        key: &str,
        entry: &AuthEntry,
    ) -> Result<Credentials, CredentialError> {
        let mut credentials = Credentials {
            username: entry.username.clone(),
            password: entry.password.clone(),
            server_address: key.to_string(),
            identity_token: entry.identitytoken.clone(),
            registry_token: entry.registrytoken.clone(),
        };
        if !entry.auth.is_empty() {
            let (user, password) =
                decode_auth(&entry.auth).ok_or_else(|| self.invalid_auth(key))?;
            credentials.username = user;
            credentials.password = password;
        }
        Ok(credentials)
    }

    fn invalid_auth(&self, key: &str) -> CredentialError {
        CredentialError::Config {
            path: self.path.clone(),
            message: format!("auths.{key:?}.auth is not base64 of `user:password`"),
        }
    }
}

/// Parses `DOCKER_AUTH_CONFIG`; the error says why it is ignored (never a value from it).
fn parse_env_auths(value: &str) -> Result<BTreeMap<String, Credentials>, String> {
    let parsed: EnvConfig = serde_json::from_str(value).map_err(|error| {
        format!(
            "it is not {{\"auths\": {{\"<registry>\": {{\"auth\": \"<base64 user:password>\"}}}}}} (JSON error at line {}, column {})",
            error.line(),
            error.column()
        )
    })?;
    let mut found = BTreeMap::new();
    for (key, entry) in parsed.auths {
        if entry.auth.is_empty() {
            return Err(format!("the entry for {key} has no `auth`"));
        }
        let (username, password) = decode_auth(&entry.auth)
            .ok_or_else(|| format!("the `auth` of {key} is not base64 of `user:password`"))?;
        let credentials = Credentials {
            username,
            password,
            server_address: key.clone(),
            ..Credentials::default()
        };
        found.insert(key, credentials);
    }
    Ok(found)
}

/// Decodes an `auth` value (base64 of `user:password`, a non-empty user) as docker/cli's
/// `decodeAuth` does, the password's NUL padding trimmed.
fn decode_auth(auth: &str) -> Option<(Zeroizing<String>, Zeroizing<String>)> {
    let decoded = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(auth.as_bytes())
            .ok()?,
    );
    let text = std::str::from_utf8(&decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    if user.is_empty() {
        return None;
    }
    Some((
        Zeroizing::new(user.to_string()),
        Zeroizing::new(password.trim_matches('\0').to_string()),
    ))
}

/// What a credential helper prints for `get`.
#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: Zeroizing<String>,
    #[serde(rename = "Secret", default)]
    secret: Zeroizing<String>,
    #[serde(rename = "ServerURL", default)]
    server_url: String,
}

/// Runs `docker-credential-<helper> get` with `server` on standard input, within
/// [`HELPER_TIMEOUT`].
fn run_helper(helper: &str, server: &str) -> Result<Option<Credentials>, CredentialError> {
    let program = format!("docker-credential-{helper}");
    run_helper_program(helper, Path::new(&program), server, HELPER_TIMEOUT)
}

/// Runs `program get` (the helper named `helper`) with `server` on standard input and reads
/// its answer. A helper that has not answered and ended within `timeout` is killed, with the
/// processes it started (its own process group), and is an error naming it.
fn run_helper_program(
    helper: &str,
    program: &Path,
    server: &str,
    timeout: Duration,
) -> Result<Option<Credentials>, CredentialError> {
    let failed = |message: String| CredentialError::Helper {
        helper: helper.to_string(),
        server: server.to_string(),
        message,
    };
    let deadline = Instant::now() + timeout;
    let mut child = Command::new(program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|error| failed(format!("cannot run it: {error}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that does not read its input may end first: its exit status says more.
        let _ = stdin.write_all(server.as_bytes());
    }
    let mut stdout = child.stdout.take();
    let (send, answer) = mpsc::channel();
    std::thread::spawn(move || {
        let mut read = Zeroizing::new(Vec::new());
        let result = stdout.as_mut().map(|out| out.read_to_end(&mut read));
        let _ = send.send(result.map(|r| r.map(|_| read)));
    });
    let too_slow = || {
        failed(format!(
            "it did not answer within {} s and was stopped",
            timeout.as_secs_f64()
        ))
    };
    let stdout = match answer.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(Some(Ok(read))) => read,
        Ok(Some(Err(error))) => {
            stop(&mut child);
            return Err(failed(format!("cannot read its answer: {error}")));
        }
        Ok(None) | Err(_) => {
            stop(&mut child);
            return Err(too_slow());
        }
    };
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                stop(&mut child);
                return Err(too_slow());
            }
            Err(error) => return Err(failed(format!("cannot wait for it: {error}"))),
        }
    };
    if !status.success() {
        if String::from_utf8_lossy(&stdout).trim() == HELPER_NOT_FOUND {
            return Ok(None);
        }
        return Err(failed(format!("it exited with {status}")));
    }
    let answer: HelperAnswer = serde_json::from_slice(&stdout)
        .map_err(|_| failed("its answer is not the JSON a credential helper prints".into()))?;
    let server_address = match answer.server_url.is_empty() {
        true => server.to_string(),
        false => answer.server_url.clone(),
    };
    let mut credentials = Credentials {
        server_address,
        ..Credentials::default()
    };
    if answer.username.as_str() == TOKEN_USER {
        credentials.identity_token = answer.secret;
    } else {
        credentials.username = answer.username;
        credentials.password = answer.secret;
    }
    Ok(Some(credentials))
}

/// Kills a helper and every process in its group, and reaps it.
fn stop(child: &mut std::process::Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals the process group the helper leads
        // (spawned with process_group(0)); it touches no memory.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> (tempfile::TempDir, DockerConfig) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, json).unwrap();
        let config = DockerConfig::load(&path).unwrap();
        (dir, config)
    }

    fn decoded_header(credentials: &Credentials) -> String {
        let bytes = base64::engine::general_purpose::URL_SAFE
            .decode(credentials.header().as_bytes())
            .unwrap();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn auths_entries_decode_like_docker_cli() {
        let auth = base64::engine::general_purpose::STANDARD.encode("me:pa:ss");
        let (_dir, config) = config(&format!(
            r#"{{"auths": {{"reg.example:5000": {{"auth": "{auth}"}},
                "https://old.example/v1/": {{"identitytoken": "tok-1"}}}}}}"#
        ));
        let found = config.credentials("reg.example:5000").unwrap().unwrap();
        assert_eq!(
            decoded_header(&found),
            r#"{"username":"me","password":"pa:ss","serveraddress":"reg.example:5000"}"#
        );
        let legacy = config.credentials("old.example").unwrap().unwrap();
        assert_eq!(
            decoded_header(&legacy),
            r#"{"serveraddress":"old.example","identitytoken":"tok-1"}"#
        );
        assert!(config.credentials("other.example").unwrap().is_none());
        assert!(config.has_credentials("reg.example:5000"));
        assert!(!config.has_credentials("other.example"));
    }

    #[test]
    fn the_header_is_base64url_as_docker_sends_it() {
        // Bytes that standard base64 writes as '+' and '/' must come out as '-' and '_'.
        let credentials = Credentials {
            username: Zeroizing::new("u".into()),
            password: Zeroizing::new("\u{fbff}\u{fbff}?>?".into()),
            server_address: "r".into(),
            ..Credentials::default()
        };
        let header = credentials.header();
        assert!(
            !header.contains('+') && !header.contains('/'),
            "{}",
            *header
        );
        assert!(decoded_header(&credentials).contains("\"password\":\"\u{fbff}"));
    }

    #[test]
    fn a_broken_auth_is_an_error_that_names_the_key_not_the_value() {
        let bad = base64::engine::general_purpose::STANDARD.encode("no-colon-secret");
        let (_dir, config) = config(&format!(r#"{{"auths": {{"r:1": {{"auth": "{bad}"}}}}}}"#));
        let error = config.credentials("r:1").unwrap_err().to_string();
        assert!(
            error.contains("r:1") && error.contains("config.json"),
            "{error}"
        );
        assert!(
            !error.contains("no-colon-secret") && !error.contains(&bad),
            "{error}"
        );
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let credentials = Credentials {
            username: Zeroizing::new("user-x".into()),
            password: Zeroizing::new("password-x".into()),
            server_address: "r".into(),
            ..Credentials::default()
        };
        let shown = format!("{credentials:?}");
        assert!(
            !shown.contains("user-x") && !shown.contains("password-x"),
            "{shown}"
        );
    }

    #[test]
    fn the_config_path_follows_docker_config_then_home() {
        assert_eq!(
            default_config_path(Some("/d"), Some("/h")),
            Path::new("/d/config.json")
        );
        assert_eq!(
            default_config_path(None, Some("/h")),
            Path::new("/h/.docker/config.json")
        );
        assert_eq!(
            default_config_path(Some(""), Some("/h")),
            Path::new("/h/.docker/config.json")
        );
    }

    /// A helper script in a temporary directory.
    fn helper_script(body: &str) -> (tempfile::TempDir, PathBuf) {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker-credential-slow");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        (dir, path)
    }

    #[test]
    fn a_hung_helper_is_stopped_with_an_error_naming_it() {
        let (_dir, path) = helper_script("cat >/dev/null; sleep 30");
        let started = Instant::now();
        let error = run_helper_program("slow", &path, "r:1", Duration::from_millis(300))
            .unwrap_err()
            .to_string();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(
            error.contains("docker-credential-slow") && error.contains("r:1"),
            "{error}"
        );
        assert!(error.contains("did not answer within 0.3 s"), "{error}");

        // One that closes its output but does not end is stopped too.
        let (_dir, path) = helper_script("exec >/dev/null; sleep 30");
        let error = run_helper_program("slow", &path, "r:1", Duration::from_millis(300))
            .unwrap_err()
            .to_string();
        assert!(error.contains("did not answer"), "{error}");
    }

    #[test]
    fn a_helper_that_answers_in_time_gives_its_credentials() {
        let (_dir, path) = helper_script(
            r#"read server; printf '{"ServerURL":"%s","Username":"u","Secret":"s-1"}' "$server""#,
        );
        let found = run_helper_program("slow", &path, "r:1", Duration::from_secs(10))
            .unwrap()
            .unwrap();
        assert_eq!(
            found.basic_authorization().unwrap().as_str(),
            "Basic dTpzLTE="
        );
        let (_dir, path) = helper_script("echo 'credentials not found in native keychain'; exit 1");
        assert!(
            run_helper_program("slow", &path, "r:1", Duration::from_secs(10))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn docker_auth_config_comes_first_for_its_exact_key() {
        let file_auth = base64::engine::general_purpose::STANDARD.encode("file:pw-file");
        let env_auth = base64::engine::general_purpose::STANDARD.encode("env:pw-env");
        let (_dir, config) = config(&format!(
            r#"{{"auths": {{"r:1": {{"auth": "{file_auth}"}}, "r:2": {{"auth": "{file_auth}"}}}},
                "credHelpers": {{"r:1": "absent-helper"}}}}"#
        ));
        let config = config.with_env_auths(Some(&format!(
            r#"{{"auths": {{"r:1": {{"auth": "{env_auth}"}}, "r:3": {{"auth": "{env_auth}"}}}}}}"#
        )));
        assert!(config.warnings().is_empty(), "{:?}", config.warnings());
        // r:1's helper does not exist: the variable is read first, so it is never run.
        let first = config.credentials("r:1").unwrap().unwrap();
        assert_eq!(
            decoded_header(&first),
            r#"{"username":"env","password":"pw-env","serveraddress":"r:1"}"#
        );
        let from_file = config.credentials("r:2").unwrap().unwrap();
        assert!(decoded_header(&from_file).contains(r#""username":"file""#));
        assert!(config.has_credentials("r:3"));
        assert!(
            config.credentials("https://r:3/v1/").unwrap().is_none(),
            "exact keys only"
        );
    }

    #[test]
    fn a_docker_auth_config_docker_would_ignore_is_ignored_with_a_warning_and_no_value() {
        let good = base64::engine::general_purpose::STANDARD.encode("env:pw-secret-9");
        let bad = base64::engine::general_purpose::STANDARD.encode("no-colon-secret-9");
        let refused = [
            format!(r#"{{"auths": {{"r:1": {{"auth": "{good}", "identitytoken": "x"}}}}}}"#),
            format!(r#"{{"auths": {{"r:1": {{"auth": "{good}"}}}}, "credsStore": "x"}}"#),
            format!(r#"{{"auths": {{"r:1": {{"auth": "{good}"}}, "r:2": {{}}}}}}"#),
            format!(r#"{{"auths": {{"r:1": {{"auth": "{bad}"}}}}}}"#),
            r#"{"auths": {"r:1": "pw-secret-9"}}"#.to_string(),
            format!(r#"{{"auths": {{"r:1": {{"auth": "{good}"}}}}}} {{}}"#),
        ];
        for value in refused {
            let dir = tempfile::tempdir().unwrap();
            let config = DockerConfig::load(&dir.path().join("config.json"))
                .unwrap()
                .with_env_auths(Some(&value));
            assert!(config.credentials("r:1").unwrap().is_none(), "{value}");
            let warnings = config.warnings().join("\n");
            assert!(
                warnings.contains("DOCKER_AUTH_CONFIG is ignored"),
                "{value}: {warnings}"
            );
            assert!(
                !warnings.contains("secret-9")
                    && !warnings.contains(&good)
                    && !warnings.contains(&bad),
                "{warnings}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let empty = DockerConfig::load(&dir.path().join("config.json"))
            .unwrap()
            .with_env_auths(Some(""));
        assert!(empty.warnings().is_empty());
    }

    #[test]
    fn a_missing_file_has_no_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let config = DockerConfig::load(&dir.path().join("config.json")).unwrap();
        assert!(config.credentials("r:1").unwrap().is_none());
    }
}
