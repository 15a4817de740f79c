//! Asking a registry itself which digest a tag points at, without the engine:
//! `HEAD /v2/<repository>/manifests/<tag>` with the Accept headers of OCI indexes, manifest
//! lists, v2 and OCI manifests, answered by `Docker-Content-Digest`. [`TagDigests`] is the
//! interface; [`RegistryClient`] the real one.
//!
//! It asks as dockerd would for the engine's `/distribution` lookup: with the same credentials
//! (`--with-registry-auth`: Basic when the registry asks for it; the Bearer flow its
//! `WWW-Authenticate` challenge names, one token per repository scope, reused; a
//! `registrytoken` sent as it is), over TLS that trusts what dockerd trusts for a secure
//! registry (the system's roots plus `/etc/docker/certs.d/<host:port>/*.crt`, client
//! certificates `*.cert` with their `*.key`, moby's `ReadCertsDirectory` rules), on pooled
//! connections, each request bounded by [`REQUEST_TIMEOUT`]. Stricter than dockerd where
//! dockerd would go insecure: it never skips verification and never speaks plain HTTP, so an
//! insecure registry, an untrusted certificate, a refused connection or an unexpected answer
//! is a [`DirectError`] and the caller asks the engine instead (`crate::observe`). Identity
//! tokens (OAuth refresh tokens) are not exchanged here: those registries are asked through
//! the engine too.
//!
//! Credentials go only to the registry they are for and to the token realm it names (HTTPS
//! only); they appear in no error and no log.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use hyper_util::client::legacy::Client;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::credentials::Credentials;
use super::reference::ImageReference;
use super::RegistryAuth;
use crate::engine::transport::{certificates, private_key, Connector};

/// Where dockerd reads a registry's CA and client certificates: `<dir>/<host:port>/`.
pub const DOCKER_CERTS_DIR: &str = "/etc/docker/certs.d";
/// How long one direct request (with its token request) may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long a TCP connection to a registry may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// The manifest types asked for, as dockerd accepts them (lists and indexes first).
const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json";
/// Docker Hub's registry host (its domain in references is `docker.io`).
const DOCKER_HUB_REGISTRY: &str = "registry-1.docker.io";
/// The most of a token answer that is read.
const TOKEN_ANSWER_MAX: usize = 64 * 1024;

/// Why a registry could not be asked directly (the engine is asked instead). Never holds a
/// credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DirectError(pub String);

/// A future a [`TagDigests`] returns.
pub type DigestFuture<'a> = Pin<Box<dyn Future<Output = Result<String, DirectError>> + Send + 'a>>;

/// Asks registries which digest a tag points at.
pub trait TagDigests: Send + Sync + fmt::Debug {
    /// The digest (`sha256:<hex>`) `reference` (with a tag) points at now.
    fn digest<'a>(&'a self, reference: &'a ImageReference) -> DigestFuture<'a>;
}

/// The real [`TagDigests`]: HTTPS to the registries, with the credentials a deploy sends.
pub struct RegistryClient {
    /// The credentials `--with-registry-auth` loaded (none without the flag, as for the
    /// engine's lookups).
    auth: RegistryAuth,
    /// dockerd's certificate directory ([`DOCKER_CERTS_DIR`]).
    certs_dir: PathBuf,
    /// Whether registries on a loopback address are asked: only when the engine runs on this
    /// host, where they are the same registries it would ask.
    loopback: bool,
    /// One HTTP client per `host:port`, its connections reused.
    hosts: Mutex<HashMap<String, Arc<HostClient>>>,
    /// Bearer tokens by registry and repository scope.
    tokens: Mutex<HashMap<TokenScope, Arc<Zeroizing<String>>>>,
    /// Registries that asked for Basic authentication.
    basic: Mutex<HashSet<String>>,
    /// The system's root certificates, read once.
    system_roots: OnceLock<Vec<CertificateDer<'static>>>,
}

impl fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryClient")
            .field("credentials_for", &self.auth)
            .field("certs_dir", &self.certs_dir)
            .finish_non_exhaustive()
    }
}

/// What a bearer token is good for: one repository scope on one registry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TokenScope {
    /// The registry's `host:port`.
    registry: String,
    /// `repository:<path>:pull`.
    scope: String,
}

/// A client for one registry host, or the error that keeps it from being made.
type HostClient = Result<Client<Connector, String>, DirectError>;

/// What one request to a registry answered.
struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Option<Vec<u8>>,
}

/// How a registry wants to be authenticated (its `WWW-Authenticate` challenge).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Challenge {
    /// `Basic realm=...`.
    Basic,
    /// `Bearer realm=...,service=...`: a token from `realm`.
    Bearer {
        /// The token server's URL.
        realm: String,
        /// The service to ask a token for.
        service: Option<String>,
    },
}

/// A token server's answer.
#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: Zeroizing<String>,
    #[serde(default)]
    access_token: Zeroizing<String>,
}

impl RegistryClient {
    /// A client sending `auth`'s credentials, trusting what dockerd trusts under `certs_dir`;
    /// `loopback`: whether registries on a loopback address may be asked.
    pub fn new(auth: RegistryAuth, certs_dir: &Path, loopback: bool) -> RegistryClient {
        RegistryClient {
            auth,
            certs_dir: certs_dir.to_path_buf(),
            loopback,
            hosts: Mutex::default(),
            tokens: Mutex::default(),
            basic: Mutex::default(),
            system_roots: OnceLock::new(),
        }
    }

    /// Asks the registry of `reference` for the digest its tag points at.
    async fn ask(&self, reference: &ImageReference) -> Result<String, DirectError> {
        let tag = reference
            .tag
            .as_deref()
            .ok_or_else(|| DirectError("the reference has no tag".into()))?;
        let authority = registry_authority(&reference.domain);
        if !self.loopback && is_loopback(&authority) {
            return Err(DirectError(
                "a registry on a loopback address is asked through the engine, which runs on another host".into(),
            ));
        }
        let credentials = self.auth.credentials_for(reference);
        if credentials.is_some_and(Credentials::has_identity_token) {
            return Err(DirectError(
                "identity tokens are exchanged by the engine".into(),
            ));
        }
        let url = format!("https://{authority}/v2/{}/manifests/{tag}", reference.path);
        let scope = format!("repository:{}:pull", reference.path);
        let first = self
            .authorization(&authority, &scope, credentials)
            .map(|value| value.to_string());
        let answer = self.head(&authority, &url, first.as_deref()).await?;
        let answer = match answer.status {
            StatusCode::UNAUTHORIZED => {
                let challenge = challenge(&answer.headers).ok_or_else(|| {
                    DirectError("401 without a challenge stackroll can answer".into())
                })?;
                let retry = self
                    .answer_challenge(&authority, &scope, credentials, &challenge)
                    .await?;
                self.head(&authority, &url, Some(&retry)).await?
            }
            _ => answer,
        };
        if answer.status != StatusCode::OK {
            return Err(DirectError(format!(
                "the registry answered {}",
                answer.status
            )));
        }
        answer
            .headers
            .get("docker-content-digest")
            .and_then(|value| value.to_str().ok())
            .filter(|digest| digest.starts_with("sha256:"))
            .map(str::to_string)
            .ok_or_else(|| DirectError("the registry sent no Docker-Content-Digest".into()))
    }

    /// The Authorization a request for `scope` on `authority` can carry from the start: a
    /// token already held, or Basic credentials for a registry known to ask for them.
    fn authorization(
        &self,
        authority: &str,
        scope: &str,
        credentials: Option<&Credentials>,
    ) -> Option<Zeroizing<String>> {
        if let Some(token) = credentials.and_then(Credentials::registry_token) {
            return Some(Zeroizing::new(format!("Bearer {token}")));
        }
        let key = TokenScope {
            registry: authority.to_string(),
            scope: scope.to_string(),
        };
        if let Some(token) = lock(&self.tokens).get(&key) {
            return Some(Zeroizing::new(format!("Bearer {}", token.as_str())));
        }
        if lock(&self.basic).contains(authority) {
            return credentials.and_then(Credentials::basic_authorization);
        }
        None
    }

    /// The Authorization that answers `challenge`: Basic credentials, or a token for `scope`
    /// from the realm (kept for later requests).
    async fn answer_challenge(
        &self,
        authority: &str,
        scope: &str,
        credentials: Option<&Credentials>,
        challenge: &Challenge,
    ) -> Result<String, DirectError> {
        match challenge {
            Challenge::Basic => {
                lock(&self.basic).insert(authority.to_string());
                let basic = credentials
                    .and_then(Credentials::basic_authorization)
                    .ok_or_else(|| DirectError("the registry wants credentials".into()))?;
                Ok(basic.to_string())
            }
            Challenge::Bearer { realm, service } => {
                let token = self
                    .token(realm, service.as_deref(), scope, credentials)
                    .await?;
                let value = format!("Bearer {}", token.as_str());
                let key = TokenScope {
                    registry: authority.to_string(),
                    scope: scope.to_string(),
                };
                lock(&self.tokens).insert(key, token);
                Ok(value)
            }
        }
    }

    /// A bearer token for `scope` from the token server at `realm` (HTTPS only), asked with
    /// Basic credentials when there are some, anonymously otherwise.
    async fn token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        credentials: Option<&Credentials>,
    ) -> Result<Arc<Zeroizing<String>>, DirectError> {
        let rest = realm
            .strip_prefix("https://")
            .ok_or_else(|| DirectError("the token realm is not HTTPS".into()))?;
        let authority = rest
            .split(['/', '?'])
            .next()
            .unwrap_or_default()
            .to_string();
        let mut url = realm.to_string();
        let mut separator = if realm.contains('?') { '&' } else { '?' };
        for (name, value) in [("service", service), ("scope", Some(scope))] {
            if let Some(value) = value {
                url.push(separator);
                url.push_str(name);
                url.push('=');
                url.push_str(&percent_encode(value));
                separator = '&';
            }
        }
        let basic = credentials.and_then(Credentials::basic_authorization);
        let answer = self
            .send(
                &authority,
                Method::GET,
                &url,
                basic.as_deref().map(String::as_str),
            )
            .await?;
        if answer.status != StatusCode::OK {
            return Err(DirectError(format!(
                "the token server answered {}",
                answer.status
            )));
        }
        let body = Zeroizing::new(answer.body.unwrap_or_default());
        let parsed: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|_| DirectError("the token server's answer is not a token".into()))?;
        let token = match parsed.token.is_empty() {
            true => parsed.access_token,
            false => parsed.token,
        };
        if token.is_empty() {
            return Err(DirectError("the token server sent an empty token".into()));
        }
        Ok(Arc::new(token))
    }

    /// `HEAD url` on `authority` for the manifest types dockerd accepts.
    async fn head(
        &self,
        authority: &str,
        url: &str,
        authorization: Option<&str>,
    ) -> Result<Answer, DirectError> {
        self.send(authority, Method::HEAD, url, authorization).await
    }

    /// Sends one request to `authority` (pooled connection); reads a GET's body.
    async fn send(
        &self,
        authority: &str,
        method: Method,
        url: &str,
        authorization: Option<&str>,
    ) -> Result<Answer, DirectError> {
        let client = self.host(authority)?;
        let mut request = Request::builder()
            .method(method.clone())
            .uri(url)
            .header(header::ACCEPT, MANIFEST_TYPES)
            .header(
                header::USER_AGENT,
                concat!("stackroll/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(value) = authorization {
            let mut value = header::HeaderValue::from_str(value)
                .map_err(|_| DirectError("the credentials cannot be sent in a header".into()))?;
            value.set_sensitive(true);
            request = request.header(header::AUTHORIZATION, value);
        }
        let request = request
            .body(String::new())
            .map_err(|_| DirectError(format!("{url:?} is not a URL stackroll can ask")))?;
        let response = client
            .request(request)
            .await
            .map_err(|error| DirectError(describe(&error)))?;
        let (parts, body) = response.into_parts();
        let body = match method {
            Method::GET => {
                let limited = http_body_util::Limited::new(body, TOKEN_ANSWER_MAX);
                let collected = limited
                    .collect()
                    .await
                    .map_err(|_| DirectError("the answer could not be read".into()))?;
                Some(collected.to_bytes().to_vec())
            }
            _ => None,
        };
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// The client for `authority` (made once, with dockerd's trust for it).
    fn host(&self, authority: &str) -> Result<Client<Connector, String>, DirectError> {
        let mut hosts = lock(&self.hosts);
        let made = hosts
            .entry(authority.to_string())
            .or_insert_with(|| Arc::new(self.make_host(authority)));
        (**made).clone()
    }

    /// Makes the client for `authority`: TLS with dockerd's trust, short connect timeout.
    fn make_host(&self, authority: &str) -> HostClient {
        let (host, port) = split_authority(authority)?;
        let config = self.tls_config(authority)?;
        let connector = Connector::tls_with(&host, port, Arc::new(config), CONNECT_TIMEOUT)
            .map_err(DirectError)?;
        Ok(Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector))
    }

    /// dockerd's TLS configuration for a secure registry at `authority`: the system's roots,
    /// the CAs (`*.crt`) and client certificates (`*.cert` + `*.key`) of its certs.d directory
    /// (none for Docker Hub).
    fn tls_config(&self, authority: &str) -> Result<ClientConfig, DirectError> {
        let mut roots = RootCertStore::empty();
        let system = self
            .system_roots
            .get_or_init(|| rustls_native_certs::load_native_certs().certs);
        roots.add_parsable_certificates(system.iter().cloned());
        let dir = self.certs_dir.join(authority);
        let material = match authority == DOCKER_HUB_REGISTRY {
            true => CertsDirectory::default(),
            false => read_certs_directory(&dir)?,
        };
        roots.add_parsable_certificates(material.authorities);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| DirectError(format!("cannot set up TLS: {error}")))?
            .with_root_certificates(roots);
        match material.client {
            Some((cert, key)) => {
                let chain = certificates(&cert).map_err(DirectError)?;
                let key = private_key(&key).map_err(DirectError)?;
                builder.with_client_auth_cert(chain, key).map_err(|error| {
                    DirectError(format!(
                        "{}: not a client certificate: {error}",
                        cert.display()
                    ))
                })
            }
            None => Ok(builder.with_no_client_auth()),
        }
    }
}

impl TagDigests for RegistryClient {
    fn digest<'a>(&'a self, reference: &'a ImageReference) -> DigestFuture<'a> {
        Box::pin(async move {
            tokio::time::timeout(REQUEST_TIMEOUT, self.ask(reference))
                .await
                .unwrap_or_else(|_| {
                    Err(DirectError(format!(
                        "no answer within {} ms",
                        REQUEST_TIMEOUT.as_millis()
                    )))
                })
        })
    }
}

/// What a registry's certs.d directory holds.
#[derive(Default)]
struct CertsDirectory {
    /// CA certificates (`*.crt`).
    authorities: Vec<CertificateDer<'static>>,
    /// The first client certificate and its key (`name.cert`, `name.key`).
    client: Option<(PathBuf, PathBuf)>,
}

/// Reads `dir` as moby's `ReadCertsDirectory` does: every `*.crt` is a CA; every `*.cert`
/// needs its `*.key` and every `*.key` its `*.cert` (else an error, as for dockerd). A missing
/// directory holds nothing.
fn read_certs_directory(dir: &Path) -> Result<CertsDirectory, DirectError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(CertsDirectory::default())
        }
        Err(error) => return Err(DirectError(format!("{}: {error}", dir.display()))),
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut found = CertsDirectory::default();
    for name in &names {
        if name.ends_with(".crt") {
            let certs = certificates(&dir.join(name)).map_err(DirectError)?;
            found.authorities.extend(certs);
        } else if let Some(base) = name.strip_suffix(".cert") {
            let key = format!("{base}.key");
            if !names.contains(&key) {
                return Err(DirectError(format!(
                    "{}: missing key {key} for client certificate {name}",
                    dir.display()
                )));
            }
            found.client.get_or_insert((dir.join(name), dir.join(key)));
        } else if let Some(base) = name.strip_suffix(".key") {
            let cert = format!("{base}.cert");
            if !names.contains(&cert) {
                return Err(DirectError(format!(
                    "{}: missing client certificate {cert} for key {name}",
                    dir.display()
                )));
            }
        }
    }
    Ok(found)
}

/// The `host:port` a registry domain is reached at (Docker Hub's registry for `docker.io`).
fn registry_authority(domain: &str) -> String {
    match domain {
        "docker.io" | "index.docker.io" => DOCKER_HUB_REGISTRY.to_string(),
        other => other.to_string(),
    }
}

/// The host (IPv6 without brackets) and port (443 by default) of `authority`.
fn split_authority(authority: &str) -> Result<(String, u16), DirectError> {
    let bad = || DirectError(format!("{authority:?} is not a registry address"));
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, port) = rest.split_once(']').ok_or_else(bad)?;
        let port = match port.strip_prefix(':') {
            Some(port) => port.parse().map_err(|_| bad())?,
            None => 443,
        };
        return Ok((host.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Ok((host.to_string(), port.parse().map_err(|_| bad())?)),
        None => Ok((authority.to_string(), 443)),
    }
}

/// Whether `authority` names this host: `localhost`, 127.0.0.0/8 or `::1`.
fn is_loopback(authority: &str) -> bool {
    let Ok((host, _)) = split_authority(authority) else {
        return false;
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The challenge a 401 answer carries that stackroll can answer: Bearer first, then Basic.
fn challenge(headers: &http::HeaderMap) -> Option<Challenge> {
    let challenges: Vec<Challenge> = headers
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(parse_challenge)
        .collect();
    challenges
        .iter()
        .find(|challenge| matches!(challenge, Challenge::Bearer { .. }))
        .or_else(|| challenges.first())
        .cloned()
}

/// Parses one `WWW-Authenticate` value: `Basic realm="..."` or
/// `Bearer realm="...",service="...",scope="..."`.
fn parse_challenge(value: &str) -> Option<Challenge> {
    let (scheme, params) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    let params = parse_params(params);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
        }),
        _ => None,
    }
}

/// The `name=value` / `name="quoted value"` parameters of a challenge, names lowercased.
fn parse_params(text: &str) -> HashMap<String, String> {
    let mut params = HashMap::new();
    let mut rest = text.trim_start();
    while let Some(equals) = rest.find('=') {
        let name = rest[..equals]
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        rest = &rest[equals + 1..];
        let mut value = String::new();
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((at, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => {
                        end = at + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            rest = &quoted[end.min(quoted.len())..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        params.insert(name, value);
        rest = rest.trim_start().trim_start_matches(',').trim_start();
    }
    params
}

/// `text` percent-encoded for a query (unreserved characters kept).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// A hyper-util error with its causes (the TLS or connect failure), never a header.
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let shown = inner.to_string();
        if !text.contains(&shown) {
            text.push_str(": ");
            text.push_str(&shown);
        }
        cause = inner.source();
    }
    text
}

/// Locks `mutex`, also after a panic elsewhere (the maps stay usable).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_read_as_the_distribution_client_reads_them() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="stackroll-test""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(r#"bearer realm="https://a/t?x=1", service=reg"#),
            Some(Challenge::Bearer {
                realm: "https://a/t?x=1".into(),
                service: Some("reg".into()),
            })
        );
        assert_eq!(parse_challenge("Bearer service=x"), None);
        assert_eq!(parse_challenge("Negotiate abc"), None);
        let params = parse_params(r#"realm="a \"q\", b", service=s"#);
        assert_eq!(params["realm"], r#"a "q", b"#);
        assert_eq!(params["service"], "s");
    }

    #[test]
    fn addresses_and_loopback() {
        assert_eq!(registry_authority("docker.io"), DOCKER_HUB_REGISTRY);
        assert_eq!(
            split_authority("127.0.0.1:5055").unwrap(),
            ("127.0.0.1".into(), 5055)
        );
        assert_eq!(split_authority("ghcr.io").unwrap(), ("ghcr.io".into(), 443));
        assert_eq!(split_authority("[::1]:5000").unwrap(), ("::1".into(), 5000));
        assert!(
            is_loopback("127.0.0.1:5055") && is_loopback("localhost:1") && is_loopback("[::1]:5")
        );
        assert!(!is_loopback("ghcr.io") && !is_loopback("10.0.0.1:5000"));
        assert_eq!(
            percent_encode("repository:a/b:pull"),
            "repository%3Aa%2Fb%3Apull"
        );
    }

    #[test]
    fn a_certs_directory_follows_moby_rules() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_certs_directory(&dir.path().join("absent"))
            .unwrap()
            .authorities
            .is_empty());
        std::fs::write(dir.path().join("client.cert"), "x").unwrap();
        let error = read_certs_directory(dir.path()).err().unwrap();
        assert!(error.0.contains("missing key client.key"), "{error}");
        std::fs::remove_file(dir.path().join("client.cert")).unwrap();
        std::fs::write(dir.path().join("client.key"), "x").unwrap();
        let error = read_certs_directory(dir.path()).err().unwrap();
        assert!(
            error.0.contains("missing client certificate client.cert"),
            "{error}"
        );
        std::fs::write(dir.path().join("client.cert"), "x").unwrap();
        let found = read_certs_directory(dir.path()).unwrap();
        assert_eq!(
            found.client,
            Some((
                dir.path().join("client.cert"),
                dir.path().join("client.key")
            ))
        );
    }

    #[tokio::test]
    async fn loopback_registries_are_left_to_a_remote_engine() {
        let client = RegistryClient::new(RegistryAuth::default(), Path::new("/nonexistent"), false);
        let reference = ImageReference::parse("127.0.0.1:5055/app:main").unwrap();
        let error = client.digest(&reference).await.unwrap_err();
        assert!(error.0.contains("loopback"), "{error}");
        let untagged = ImageReference::parse(
            "ghcr.io/a/b@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        )
        .unwrap();
        assert!(client.digest(&untagged).await.is_err());
    }

    /// An in-process registry over TLS on 127.0.0.1 that wants a bearer token from its own
    /// `/token` realm (Basic credentials `u:p` there), as Docker Hub or GHCR do.
    mod in_process_registry {
        use super::*;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        const DIGEST: &str =
            "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

        fn fixture(name: &str) -> PathBuf {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/registry-tls")
                .join(name)
        }

        /// Serves until dropped; counts token requests and records the request lines.
        struct Server {
            port: u16,
            tokens: Arc<AtomicUsize>,
            lines: Arc<Mutex<Vec<String>>>,
        }

        async fn start() -> Server {
            start_with(false).await
        }

        /// With `client_auth`, the server wants a client certificate from `client-ca.crt`.
        async fn start_with(client_auth: bool) -> Server {
            let chain = certificates(&fixture("server.crt")).unwrap();
            let key = private_key(&fixture("server.key")).unwrap();
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .unwrap();
            let builder = match client_auth {
                true => {
                    let mut roots = RootCertStore::empty();
                    roots.add_parsable_certificates(
                        certificates(&fixture("client-ca.crt")).unwrap(),
                    );
                    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                        Arc::new(roots),
                        provider,
                    )
                    .build()
                    .unwrap();
                    builder.with_client_cert_verifier(verifier)
                }
                false => builder.with_no_client_auth(),
            };
            let config = builder.with_single_cert(chain, key).unwrap();
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = Server {
                port,
                tokens: Arc::default(),
                lines: Arc::default(),
            };
            let (tokens, lines) = (server.tokens.clone(), server.lines.clone());
            tokio::spawn(async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    let (acceptor, tokens, lines) =
                        (acceptor.clone(), tokens.clone(), lines.clone());
                    tokio::spawn(async move {
                        let Ok(mut tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let mut buffer = Vec::new();
                        loop {
                            let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                                let mut chunk = [0u8; 4096];
                                match tls.read(&mut chunk).await {
                                    Ok(0) | Err(_) => return,
                                    Ok(read) => buffer.extend_from_slice(&chunk[..read]),
                                }
                                continue;
                            };
                            let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
                            buffer.drain(..end + 4);
                            let answer = respond(&head, port, &tokens);
                            lines
                                .lock()
                                .unwrap()
                                .push(head.lines().next().unwrap_or_default().to_string());
                            if tls.write_all(answer.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    });
                }
            });
            server
        }

        /// The answer to one request.
        fn respond(head: &str, port: u16, tokens: &AtomicUsize) -> String {
            let line = head.lines().next().unwrap_or_default();
            let authorization = head
                .lines()
                .find_map(|h| {
                    h.strip_prefix("authorization: ")
                        .or_else(|| h.strip_prefix("Authorization: "))
                })
                .unwrap_or_default();
            let basic = format!(
                "Basic {}",
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "u:p")
            );
            if line.starts_with("GET /token?service=reg&scope=repository%3Ateam%2Fapp%3Apull ") {
                if authorization != basic {
                    return "HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n".into();
                }
                tokens.fetch_add(1, Ordering::SeqCst);
                let body = r#"{"token":"t-1"}"#;
                return format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
            }
            if line.starts_with("HEAD /v2/team/app/manifests/") {
                if !head.contains("application/vnd.oci.image.index.v1+json") {
                    return "HTTP/1.1 406 Not Acceptable\r\ncontent-length: 0\r\n\r\n".into();
                }
                if authorization == "Bearer t-1" {
                    return format!("HTTP/1.1 200 OK\r\ndocker-content-digest: {DIGEST}\r\ncontent-length: 0\r\n\r\n");
                }
                return format!(
                    "HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Bearer realm=\"https://127.0.0.1:{port}/token\",service=\"reg\",scope=\"repository:team/app:pull\"\r\ncontent-length: 0\r\n\r\n"
                );
            }
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".into()
        }

        /// A client with `u:p` for the server, trusting its CA through a certs.d directory.
        fn client(port: u16, certs: &Path) -> RegistryClient {
            let authority = format!("127.0.0.1:{port}");
            std::fs::create_dir_all(certs.join(&authority)).unwrap();
            std::fs::copy(fixture("ca.crt"), certs.join(&authority).join("ca.crt")).unwrap();
            let config_dir = tempfile::tempdir().unwrap();
            let path = config_dir.path().join("config.json");
            let auth = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "u:p");
            std::fs::write(
                &path,
                format!(r#"{{"auths": {{"{authority}": {{"auth": "{auth}"}}}}}}"#),
            )
            .unwrap();
            let config = crate::registry::credentials::DockerConfig::load(&path).unwrap();
            let image = format!("{authority}/team/app:x");
            let local =
                crate::registry::local_credentials(&config, &[image.as_str()], true).unwrap();
            RegistryClient::new(local.auth, certs, true)
        }

        #[tokio::test]
        async fn a_bearer_token_is_fetched_once_per_repository_and_reused() {
            let server = start().await;
            let certs = tempfile::tempdir().unwrap();
            let client = client(server.port, certs.path());
            for tag in ["main", "v2", "v3"] {
                let reference =
                    ImageReference::parse(&format!("127.0.0.1:{}/team/app:{tag}", server.port))
                        .unwrap();
                assert_eq!(client.digest(&reference).await.unwrap(), DIGEST);
            }
            assert_eq!(
                server.tokens.load(Ordering::SeqCst),
                1,
                "{:?}",
                server.lines.lock().unwrap()
            );
            let heads = server
                .lines
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.starts_with("HEAD"))
                .count();
            assert_eq!(
                heads, 4,
                "one challenge, then the token is sent from the start"
            );
        }

        #[tokio::test]
        async fn an_untrusted_certificate_is_an_error_not_an_answer() {
            let server = start().await;
            let certs = tempfile::tempdir().unwrap();
            let client = client(server.port, certs.path());
            std::fs::remove_file(
                certs
                    .path()
                    .join(format!("127.0.0.1:{}", server.port))
                    .join("ca.crt"),
            )
            .unwrap();
            let untrusting = RegistryClient::new(client.auth.clone(), certs.path(), true);
            let reference =
                ImageReference::parse(&format!("127.0.0.1:{}/team/app:main", server.port)).unwrap();
            let error = untrusting.digest(&reference).await.unwrap_err();
            assert!(error.0.to_lowercase().contains("certificate"), "{error}");
            assert!(
                server.lines.lock().unwrap().is_empty(),
                "no request was sent"
            );
        }

        #[tokio::test]
        async fn refused_plain_http_and_wrong_credentials_are_errors_without_values() {
            // Connection refused: a port that was just freed.
            let freed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = freed.local_addr().unwrap().port();
            drop(freed);
            let certs = tempfile::tempdir().unwrap();
            let refused = client(port, certs.path());
            let reference =
                ImageReference::parse(&format!("127.0.0.1:{port}/team/app:main")).unwrap();
            let started = std::time::Instant::now();
            assert!(refused.digest(&reference).await.is_err());
            assert!(started.elapsed() < REQUEST_TIMEOUT);

            // A registry that speaks plain HTTP (an insecure registry).
            let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = plain.local_addr().unwrap().port();
            tokio::spawn(async move {
                while let Ok((mut tcp, _)) = plain.accept().await {
                    let mut chunk = [0u8; 1024];
                    let _ = tcp.read(&mut chunk).await;
                    let _ = tcp
                        .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                        .await;
                }
            });
            let insecure = client(port, certs.path());
            let reference =
                ImageReference::parse(&format!("127.0.0.1:{port}/team/app:main")).unwrap();
            assert!(insecure.digest(&reference).await.is_err());

            // Credentials the token server refuses: an error that shows no credential.
            let server = start().await;
            let authority = format!("127.0.0.1:{}", server.port);
            std::fs::create_dir_all(certs.path().join(&authority)).unwrap();
            std::fs::copy(
                fixture("ca.crt"),
                certs.path().join(&authority).join("ca.crt"),
            )
            .unwrap();
            let config_dir = tempfile::tempdir().unwrap();
            let path = config_dir.path().join("config.json");
            let auth = base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                "u:wrong-secret-7",
            );
            std::fs::write(
                &path,
                format!(r#"{{"auths": {{"{authority}": {{"auth": "{auth}"}}}}}}"#),
            )
            .unwrap();
            let config = crate::registry::credentials::DockerConfig::load(&path).unwrap();
            let image = format!("{authority}/team/app:main");
            let local =
                crate::registry::local_credentials(&config, &[image.as_str()], true).unwrap();
            let wrong = RegistryClient::new(local.auth, certs.path(), true);
            let reference = ImageReference::parse(&image).unwrap();
            let error = wrong.digest(&reference).await.unwrap_err();
            assert!(error.0.contains("token server answered 401"), "{error}");
            let shown = format!("{error} {error:?} {wrong:?}");
            assert!(
                !shown.contains("wrong-secret-7") && !shown.contains(&auth),
                "{shown}"
            );
        }

        /// A registry that wants a client certificate gets the `*.cert`/`*.key` pair of its
        /// certs.d directory, as dockerd presents it; without the pair it cannot be asked.
        #[tokio::test]
        async fn the_client_certificate_of_the_certs_directory_is_presented() {
            let server = start_with(true).await;
            let certs = tempfile::tempdir().unwrap();
            let without = client(server.port, certs.path());
            let reference =
                ImageReference::parse(&format!("127.0.0.1:{}/team/app:main", server.port)).unwrap();
            assert!(without.digest(&reference).await.is_err());
            let dir = certs.path().join(format!("127.0.0.1:{}", server.port));
            std::fs::copy(fixture("client.cert"), dir.join("client.cert")).unwrap();
            std::fs::copy(fixture("client.key"), dir.join("client.key")).unwrap();
            let with = client(server.port, certs.path());
            assert_eq!(with.digest(&reference).await.unwrap(), DIGEST);
        }
    }
}
