//! Registry credentials read the way the docker CLI reads them: `$DOCKER_CONFIG/config.json`
//! (default `~/.docker/config.json`), its `auths` (base64 `auth` = `user:password`,
//! `identitytoken`, `registrytoken`), and the credential helpers it names (`credHelpers` per
//! registry, else `credsStore`), run as `docker-credential-<helper> get` with the server
//! address on standard input. Credentials are secrets: held in zeroized buffers, never shown
//! by `Debug`, never in an error, never on a command line; they leave only as the
//! `X-Registry-Auth` header value ([`Credentials::header`]), encoded as docker/cli encodes it.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::reference::key_hostname;

/// What a credential helper prints when it has nothing for the address.
const HELPER_NOT_FOUND: &str = "credentials not found in native keychain";
/// The user name a credential helper gives for an identity token.
const TOKEN_USER: &str = "<token>";

/// One registry's credentials.
#[derive(Default)]
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
        })
    }

    /// The file this configuration was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether credentials for the registry with config key `key` are kept locally: an
    /// `auths` entry for it (`docker login` writes one, empty when a helper holds the secret)
    /// or a `credHelpers` entry. Runs no helper.
    pub fn has_credentials(&self, key: &str) -> bool {
        self.entry(key).is_some() || self.file.cred_helpers.contains_key(key)
    }

    /// The credentials for the registry with config key `key` (see
    /// [`super::reference::config_key`]): from its credential helper (`credHelpers`, else
    /// `credsStore`) when one is configured, else from `auths`. `None` when there are none.
    pub fn credentials(&self, key: &str) -> Result<Option<Credentials>, CredentialError> {
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
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(entry.auth.as_bytes())
                .map(Zeroizing::new)
                .map_err(|_| self.invalid_auth(key))?;
            let text = std::str::from_utf8(&decoded).map_err(|_| self.invalid_auth(key))?;
            let (user, password) = text.split_once(':').ok_or_else(|| self.invalid_auth(key))?;
            if user.is_empty() {
                return Err(self.invalid_auth(key));
            }
            credentials.username = Zeroizing::new(user.to_string());
            credentials.password = Zeroizing::new(password.trim_matches('\0').to_string());
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

/// Runs `docker-credential-<helper> get` with `server` on standard input.
fn run_helper(helper: &str, server: &str) -> Result<Option<Credentials>, CredentialError> {
    let failed = |message: String| CredentialError::Helper {
        helper: helper.to_string(),
        server: server.to_string(),
        message,
    };
    let mut child = Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|error| failed(format!("cannot run it: {error}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .map_err(|error| failed(format!("cannot write to it: {error}")))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|error| failed(format!("cannot read its answer: {error}")))?;
    let stdout = Zeroizing::new(output.stdout);
    if !output.status.success() {
        if String::from_utf8_lossy(&stdout).trim() == HELPER_NOT_FOUND {
            return Ok(None);
        }
        return Err(failed(format!("it exited with {}", output.status)));
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

    #[test]
    fn a_missing_file_has_no_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let config = DockerConfig::load(&dir.path().join("config.json")).unwrap();
        assert!(config.credentials("r:1").unwrap().is_none());
    }
}
