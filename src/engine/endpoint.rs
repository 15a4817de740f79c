//! Which Docker engine to talk to, and how: resolved exactly as the docker CLI 28 resolves it
//! (`cli/command/cli.go`, `opts/hosts.go`, `cli/flags/options.go`, `cli/context/docker`).
//!
//! Precedence, first match wins: `--context`, `-H/--host` (the `default` context),
//! `DOCKER_HOST` (the `default` context), `DOCKER_CONTEXT`, `currentContext` of
//! `$DOCKER_CONFIG/config.json`, else `default`. `--context` together with `--host` is refused.
//! The `default` context is `-H`, else `DOCKER_HOST`, else the local socket, with TLS from
//! `--tls`/`--tlsverify`/`DOCKER_TLS`/`DOCKER_TLS_VERIFY` and the files of `--tlscacert`,
//! `--tlscert`, `--tlskey` or `DOCKER_CERT_PATH`. Any other context is read from the context
//! store as `docker context create` writes it: `contexts/meta/<sha256 of name>/meta.json` and
//! `contexts/tls/<sha256 of name>/docker/{ca,cert,key}.pem`.
//!
//! Pure: the process environment comes in as [`DockerEnv`], the filesystem through [`Files`];
//! nothing is connected to. Key files are only located here, never read.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The name of the context made of the flags and environment rather than the context store.
pub const DEFAULT_CONTEXT: &str = "default";

/// The engine's local socket, the docker CLI's default host.
const DEFAULT_UNIX_HOST: &str = "unix:///var/run/docker.sock";

/// The default host when TLS is on and no host is given.
const DEFAULT_TLS_HOST: &str = "tcp://localhost:2376";

/// Host and port of a `tcp://` address that leaves them out.
const DEFAULT_TCP_HOST: &str = "localhost";
/// See [`DEFAULT_TCP_HOST`]; the docker CLI fills in 2375 even when TLS is on.
const DEFAULT_TCP_PORT: &str = "2375";

/// The docker CLI's connect timeout for `ssh://` hosts (`-o ConnectTimeout=30`).
const SSH_CONNECT_TIMEOUT_SECS: u32 = 30;

/// What the command line asked for: the docker CLI's global engine flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineFlags {
    /// `--context NAME`.
    pub context: Option<String>,
    /// `-H/--host ADDRESS`, in the order given. The docker CLI takes one; stackroll takes
    /// several addresses of one swarm's managers and uses the first that answers as a manager
    /// (see [`resolve_all`]).
    pub hosts: Vec<String>,
    /// `--tls[=BOOL]`, when given.
    pub tls: Option<bool>,
    /// `--tlsverify[=BOOL]`, when given (given at all, even `=false`, turns TLS on).
    pub tls_verify: Option<bool>,
    /// `--tlscacert PATH`.
    pub tls_ca_cert: Option<PathBuf>,
    /// `--tlscert PATH`.
    pub tls_cert: Option<PathBuf>,
    /// `--tlskey PATH`.
    pub tls_key: Option<PathBuf>,
    /// The docker configuration directory (the docker CLI's `--config`), over `DOCKER_CONFIG`.
    pub docker_config: Option<PathBuf>,
}

/// The environment variables the docker CLI reads to pick an engine. An empty value counts as
/// unset, as it does for the docker CLI.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerEnv {
    /// `DOCKER_HOST`.
    pub host: Option<String>,
    /// `DOCKER_CONTEXT`.
    pub context: Option<String>,
    /// `DOCKER_TLS_VERIFY`: any value, `0` too, means TLS with verification.
    pub tls_verify: Option<String>,
    /// `DOCKER_TLS`: any value means TLS.
    pub tls: Option<String>,
    /// `DOCKER_CERT_PATH`: where `ca.pem`, `cert.pem` and `key.pem` are (default: the config
    /// directory).
    pub cert_path: Option<PathBuf>,
    /// `DOCKER_CONFIG`: the configuration directory (default `~/.docker`).
    pub config: Option<PathBuf>,
    /// `HOME`.
    pub home: Option<PathBuf>,
}

impl DockerEnv {
    /// Reads the variables from this process's environment.
    pub fn from_process() -> DockerEnv {
        let text = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        let path = |name: &str| {
            std::env::var_os(name)
                .filter(|value| !value.is_empty())
                .map(PathBuf::from)
        };
        DockerEnv {
            host: text("DOCKER_HOST"),
            context: text("DOCKER_CONTEXT"),
            tls_verify: text("DOCKER_TLS_VERIFY"),
            tls: text("DOCKER_TLS"),
            cert_path: path("DOCKER_CERT_PATH"),
            config: path("DOCKER_CONFIG"),
            home: path("HOME"),
        }
    }

    /// The docker configuration directory, if it can be known.
    pub fn config_dir(&self) -> Option<PathBuf> {
        self.config
            .clone()
            .or_else(|| self.home.as_ref().map(|home| home.join(".docker")))
    }
}

/// The parts of the filesystem resolution reads (the context store, `config.json`, whether
/// certificate files exist).
pub trait Files {
    /// A file's bytes.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Whether `path` is an existing file.
    fn is_file(&self, path: &Path) -> bool;
    /// The names of the entries of a directory.
    fn list(&self, path: &Path) -> io::Result<Vec<String>>;
}

/// The real filesystem.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealFiles;

impl Files for RealFiles {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn is_file(&self, path: &Path) -> bool {
        path.is_file()
    }

    fn list(&self, path: &Path) -> io::Result<Vec<String>> {
        std::fs::read_dir(path)?
            .map(|entry| Ok(entry?.file_name().to_string_lossy().into_owned()))
            .collect()
    }
}

/// What chose the context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChosenBy {
    /// `--context`.
    ContextFlag,
    /// `-H/--host` (the default context).
    HostFlag,
    /// `DOCKER_HOST` (the default context).
    HostEnv,
    /// `DOCKER_CONTEXT`.
    ContextEnv,
    /// `currentContext` in `config.json` (`docker context use`).
    ConfigFile,
    /// Nothing: the default context.
    Default,
}

impl ChosenBy {
    /// How the user would name it.
    pub fn describe(self) -> &'static str {
        match self {
            ChosenBy::ContextFlag => "--context",
            ChosenBy::HostFlag => "-H/--host",
            ChosenBy::HostEnv => "DOCKER_HOST",
            ChosenBy::ContextEnv => "DOCKER_CONTEXT",
            ChosenBy::ConfigFile => "config.json (docker context use)",
            ChosenBy::Default => "nothing set",
        }
    }
}

/// The engine to talk to and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The context's name (`default` for flags and environment).
    pub context: String,
    /// What chose the context.
    pub chosen_by: ChosenBy,
    /// The address as the docker CLI shows it (`docker context inspect`), e.g.
    /// `tcp://10.0.0.5:2376` or `ssh://deploy@manager1`.
    pub address: String,
    /// How to reach it.
    pub transport: Transport,
    /// What the user should know before anything is sent (plain HTTP to another host, ...).
    pub warnings: Vec<String>,
}

/// How to reach the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// A Unix socket.
    Unix {
        /// The socket's path.
        path: PathBuf,
    },
    /// TCP, plain HTTP or TLS.
    Tcp {
        /// Host name or IP address (IPv6 without brackets).
        host: String,
        /// Port.
        port: u16,
        /// TLS settings; `None` is plain HTTP.
        tls: Option<TlsSettings>,
    },
    /// `ssh ... -- HOST docker system dial-stdio`, HTTP over its standard input and output.
    Ssh(SshTarget),
}

/// TLS as the docker CLI sets it up: trust only `ca` (the system's roots when there is none),
/// present `cert` and `key` when both are there, and verify the engine unless `skip_verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsSettings {
    /// The CA certificate(s) to trust.
    pub ca: Option<PathBuf>,
    /// The client certificate.
    pub cert: Option<PathBuf>,
    /// The client key (a secret: only its path is known here).
    pub key: Option<PathBuf>,
    /// Whether the engine's certificate goes unverified (`--tls` without `--tlsverify`,
    /// `SkipTLSVerify` of a context).
    pub skip_verify: bool,
}

/// An `ssh://[user@]host[:port][/socket-path]` address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    /// `-l USER`, when given.
    pub user: Option<String>,
    /// The host (or an alias of `~/.ssh/config`).
    pub host: String,
    /// `-p PORT`, when given.
    pub port: Option<String>,
    /// The remote engine socket, when the address has a path.
    pub socket: Option<String>,
}

impl SshTarget {
    /// The arguments of `ssh`, as the docker CLI passes them: a bounded connect time, no
    /// pseudo-terminal, then `docker [--host unix://PATH] system dial-stdio` on the remote.
    pub fn ssh_args(&self) -> Vec<String> {
        let mut args = vec![
            "-o".to_string(),
            format!("ConnectTimeout={SSH_CONNECT_TIMEOUT_SECS}"),
            "-T".to_string(),
        ];
        if let Some(user) = &self.user {
            args.extend(["-l".to_string(), user.clone()]);
        }
        if let Some(port) = &self.port {
            args.extend(["-p".to_string(), port.clone()]);
        }
        args.extend(["--".to_string(), self.host.clone(), "docker".to_string()]);
        if let Some(socket) = &self.socket {
            args.extend(["--host".to_string(), format!("unix://{socket}")]);
        }
        args.extend(["system".to_string(), "dial-stdio".to_string()]);
        args
    }
}

/// Why no endpoint could be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// `--context` and `--host` together.
    #[error("conflicting options: cannot specify both --host and --context")]
    Conflict,
    /// No context of that name in the store.
    #[error(
        "context \"{name}\" (chosen by {}) does not exist; known contexts: {}",
        .chosen_by.describe(),
        known_list(.known)
    )]
    UnknownContext {
        /// The name asked for.
        name: String,
        /// What chose it.
        chosen_by: ChosenBy,
        /// The contexts that do exist, `default` first.
        known: Vec<String>,
    },
    /// An address the docker CLI would refuse too, or one stackroll cannot reach.
    #[error("invalid engine address {address:?}: {reason}")]
    InvalidAddress {
        /// The address.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file of the configuration, context store or TLS material that cannot be used.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Neither `DOCKER_CONFIG` nor `HOME` says where the configuration is.
    #[error(
        "cannot find the docker configuration directory: neither DOCKER_CONFIG nor HOME is set"
    )]
    NoConfigDir,
}

/// `default, a, b`.
fn known_list(known: &[String]) -> String {
    known.join(", ")
}

/// Resolves the engine to talk to from the flags, the environment and the files, as the
/// docker CLI does.
pub fn resolve(
    flags: &EngineFlags,
    env: &DockerEnv,
    files: &dyn Files,
) -> Result<Endpoint, EndpointError> {
    let flags = EngineFlags {
        context: flags.context.clone().filter(|name| !name.is_empty()),
        ..flags.clone()
    };
    if flags.context.is_some() && !flags.hosts.is_empty() {
        return Err(EndpointError::Conflict);
    }
    let env = &DockerEnv {
        config: flags.docker_config.clone().or_else(|| env.config.clone()),
        ..env.clone()
    };
    let (name, chosen_by) = context_name(&flags, env, files)?;
    let mut endpoint = if name == DEFAULT_CONTEXT {
        default_endpoint(&flags, env, files, chosen_by)?
    } else {
        stored_endpoint(&name, chosen_by, env, files)?
    };
    endpoint
        .warnings
        .extend(overridden_context(chosen_by, env, files));
    endpoint.warnings.extend(transport_warnings(&endpoint));
    Ok(endpoint)
}

/// Every engine the flags name, in order: one for a context, `DOCKER_HOST` or a single `-H`
/// (exactly [`resolve`]); one per address when `-H` is given several times, each resolved as
/// the `default` context with that one address and the same TLS settings. Several `-H` are
/// stackroll's extension (the docker CLI refuses them): the addresses of one swarm's managers,
/// tried in order until one answers as a manager, and the next taken when it is lost.
pub fn resolve_all(
    flags: &EngineFlags,
    env: &DockerEnv,
    files: &dyn Files,
) -> Result<Vec<Endpoint>, EndpointError> {
    if flags.hosts.len() < 2 {
        return Ok(vec![resolve(flags, env, files)?]);
    }
    flags
        .hosts
        .iter()
        .map(|host| {
            let one = EngineFlags {
                hosts: vec![host.clone()],
                ..flags.clone()
            };
            resolve(&one, env, files)
        })
        .collect()
}

/// The context's name and what chose it (the docker CLI's `resolveContextName`).
fn context_name(
    flags: &EngineFlags,
    env: &DockerEnv,
    files: &dyn Files,
) -> Result<(String, ChosenBy), EndpointError> {
    if let Some(name) = &flags.context {
        return Ok((name.clone(), ChosenBy::ContextFlag));
    }
    if !flags.hosts.is_empty() {
        return Ok((DEFAULT_CONTEXT.to_string(), ChosenBy::HostFlag));
    }
    if env.host.is_some() {
        return Ok((DEFAULT_CONTEXT.to_string(), ChosenBy::HostEnv));
    }
    if let Some(name) = &env.context {
        return Ok((name.clone(), ChosenBy::ContextEnv));
    }
    match current_context(env, files)? {
        Some(name) => Ok((name, ChosenBy::ConfigFile)),
        None => Ok((DEFAULT_CONTEXT.to_string(), ChosenBy::Default)),
    }
}

/// `currentContext` of `config.json`, when it names one.
fn current_context(env: &DockerEnv, files: &dyn Files) -> Result<Option<String>, EndpointError> {
    #[derive(Deserialize)]
    struct ConfigFile {
        #[serde(rename = "currentContext", default)]
        current_context: Option<String>,
    }
    let Some(dir) = env.config_dir() else {
        return Ok(None);
    };
    let path = dir.join("config.json");
    let bytes = match files.read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(file_error(&path, error.to_string())),
    };
    let config: ConfigFile = serde_json::from_slice(&bytes)
        .map_err(|error| file_error(&path, format!("not a docker config file: {error}")))?;
    Ok(config.current_context.filter(|name| !name.is_empty()))
}

/// The `default` context: `-H`, else `DOCKER_HOST`, else the local socket, TLS from the flags
/// and environment (the docker CLI's `resolveDefaultDockerEndpoint`).
fn default_endpoint(
    flags: &EngineFlags,
    env: &DockerEnv,
    files: &dyn Files,
    chosen_by: ChosenBy,
) -> Result<Endpoint, EndpointError> {
    let tls = default_tls(flags, env, files)?;
    let given = flags
        .hosts
        .first()
        .map(String::as_str)
        .or(env.host.as_deref())
        .unwrap_or("");
    let address = normalize_host(given, tls.is_some())?;
    let transport = transport(&address, tls)?;
    Ok(Endpoint {
        context: DEFAULT_CONTEXT.to_string(),
        chosen_by,
        address,
        transport,
        warnings: Vec::new(),
    })
}

/// TLS settings of the default context (the docker CLI's `SetDefaultOptions` and
/// `TLSDataFromFiles`): `None` when TLS is off.
fn default_tls(
    flags: &EngineFlags,
    env: &DockerEnv,
    files: &dyn Files,
) -> Result<Option<TlsSettings>, EndpointError> {
    let verify = flags.tls_verify.unwrap_or(env.tls_verify.is_some());
    let tls = flags.tls.unwrap_or(env.tls.is_some());
    if !(flags.tls_verify.is_some() || verify || tls) {
        return Ok(None);
    }
    let cert_dir = env
        .cert_path
        .clone()
        .or_else(|| env.config_dir())
        .ok_or(EndpointError::NoConfigDir)?;
    let ca = flags
        .tls_ca_cert
        .clone()
        .unwrap_or_else(|| cert_dir.join("ca.pem"));
    let given_or_found = |flag: &Option<PathBuf>, file: &str| match flag {
        Some(path) => Some(path.clone()),
        None => Some(cert_dir.join(file)).filter(|path| files.is_file(path)),
    };
    let cert = given_or_found(&flags.tls_cert, "cert.pem");
    let key = given_or_found(&flags.tls_key, "key.pem");
    for path in [Some(&ca), cert.as_ref(), key.as_ref()]
        .into_iter()
        .flatten()
    {
        if !files.is_file(path) {
            return Err(file_error(
                path,
                "TLS is on, but this file does not exist (set DOCKER_CERT_PATH or \
                 --tlscacert/--tlscert/--tlskey)"
                    .to_string(),
            ));
        }
    }
    Ok(Some(TlsSettings {
        ca: Some(ca),
        cert,
        key,
        skip_verify: !verify,
    }))
}

/// The docker endpoint of a context of the store.
#[derive(Deserialize)]
struct StoredDockerEndpoint {
    #[serde(rename = "Host", default)]
    host: Option<String>,
    #[serde(rename = "SkipTLSVerify", default)]
    skip_tls_verify: bool,
}

/// A context's `meta.json`, as far as stackroll needs it.
#[derive(Deserialize)]
struct StoredContext {
    #[serde(rename = "Name", default)]
    name: String,
    #[serde(rename = "Endpoints", default)]
    endpoints: BTreeMap<String, serde_json::Value>,
}

/// A context of the store (the docker CLI's `resolveDockerEndpoint`).
fn stored_endpoint(
    name: &str,
    chosen_by: ChosenBy,
    env: &DockerEnv,
    files: &dyn Files,
) -> Result<Endpoint, EndpointError> {
    let store = env.config_dir().ok_or(EndpointError::NoConfigDir)?;
    let id = context_id(name);
    let meta_path = store.join("contexts/meta").join(&id).join("meta.json");
    let bytes = match files.read(&meta_path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Err(EndpointError::UnknownContext {
                name: name.to_string(),
                chosen_by,
                known: known_contexts(&store, files),
            })
        }
        Err(error) => return Err(file_error(&meta_path, error.to_string())),
    };
    let context: StoredContext = serde_json::from_slice(&bytes)
        .map_err(|error| file_error(&meta_path, format!("not a context's meta.json: {error}")))?;
    let docker = context
        .endpoints
        .get("docker")
        .cloned()
        .ok_or_else(|| file_error(&meta_path, "the context has no docker endpoint".into()))?;
    let docker: StoredDockerEndpoint = serde_json::from_value(docker)
        .map_err(|error| file_error(&meta_path, format!("unreadable docker endpoint: {error}")))?;
    let tls_dir = store.join("contexts/tls").join(&id).join("docker");
    let material = |file: &str| Some(tls_dir.join(file)).filter(|path| files.is_file(path));
    let (ca, cert, key) = (
        material("ca.pem"),
        material("cert.pem"),
        material("key.pem"),
    );
    let any_tls = ca.is_some() || cert.is_some() || key.is_some() || docker.skip_tls_verify;
    let tls = any_tls.then_some(TlsSettings {
        ca,
        cert,
        key,
        skip_verify: docker.skip_tls_verify,
    });
    let address = docker
        .host
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| DEFAULT_UNIX_HOST.to_string());
    let transport = transport(&address, tls)?;
    Ok(Endpoint {
        context: name.to_string(),
        chosen_by,
        address,
        transport,
        warnings: Vec::new(),
    })
}

/// The directory name of a context in the store: the hex SHA-256 of its name.
fn context_id(name: &str) -> String {
    Sha256::digest(name.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The names of the contexts in the store, `default` first, the others sorted.
fn known_contexts(store: &Path, files: &dyn Files) -> Vec<String> {
    let meta = store.join("contexts/meta");
    let mut names: Vec<String> = files
        .list(&meta)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|id| {
            let bytes = files.read(&meta.join(id).join("meta.json")).ok()?;
            let context: StoredContext = serde_json::from_slice(&bytes).ok()?;
            Some(context.name).filter(|name| !name.is_empty())
        })
        .collect();
    names.sort();
    names.insert(0, DEFAULT_CONTEXT.to_string());
    names
}

/// The docker CLI's `ParseHost`: an empty host is the local socket (or
/// `tcp://localhost:2376` with TLS), `HOST[:PORT]` is `tcp://`, and `tcp://` addresses get
/// the default host and port they leave out.
pub fn normalize_host(given: &str, tls: bool) -> Result<String, EndpointError> {
    let host = given.trim();
    if host.is_empty() {
        return Ok(if tls {
            DEFAULT_TLS_HOST
        } else {
            DEFAULT_UNIX_HOST
        }
        .to_string());
    }
    let invalid = |reason: &str| EndpointError::InvalidAddress {
        address: given.to_string(),
        reason: reason.to_string(),
    };
    let (scheme, rest) = match host.split_once("://") {
        Some((scheme, rest)) => (scheme, rest),
        None => ("tcp", host),
    };
    match scheme {
        "tcp" => normalize_tcp(rest).ok_or_else(|| invalid("invalid bind address format")),
        "unix" if rest.contains("://") => Err(invalid("invalid proto, expected unix")),
        "unix" if rest.is_empty() => Ok(DEFAULT_UNIX_HOST.to_string()),
        "unix" | "ssh" | "fd" | "npipe" => Ok(host.to_string()),
        _ => Err(invalid(
            "invalid bind address format (use unix://PATH, tcp://HOST:PORT or \
             ssh://[USER@]HOST[:PORT])",
        )),
    }
}

/// `HOST[:PORT][/PATH]` as `tcp://HOST:PORT[/PATH]`, defaults filled (`ParseTCPAddr`).
fn normalize_tcp(rest: &str) -> Option<String> {
    if rest.contains("://") {
        return None;
    }
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let (host, port) = split_host_port(authority)?;
    let host = if host.is_empty() {
        DEFAULT_TCP_HOST
    } else {
        host
    };
    let port = if port.is_empty() {
        DEFAULT_TCP_PORT
    } else {
        port
    };
    port.parse::<u16>().ok()?;
    Some(format!("tcp://{}{path}", join_host_port(host, port)))
}

/// `host:port`, `[v6]:port`, `host`, `[v6]` or a bare IPv6 address, split.
fn split_host_port(authority: &str) -> Option<(&str, &str)> {
    if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']')?;
        let port = match after {
            "" => "",
            after => after.strip_prefix(':')?,
        };
        return Some((host, port));
    }
    match authority.matches(':').count() {
        0 => Some((authority, "")),
        1 => authority.split_once(':'),
        _ => Some((authority, "")),
    }
}

/// `host:port`, with brackets around an IPv6 address.
pub(crate) fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// How to reach `address` (already as the docker CLI normalizes or stores it).
fn transport(address: &str, tls: Option<TlsSettings>) -> Result<Transport, EndpointError> {
    let invalid = |reason: String| EndpointError::InvalidAddress {
        address: address.to_string(),
        reason,
    };
    let Some((scheme, rest)) = address.split_once("://") else {
        return Err(invalid("no scheme (unix://, tcp:// or ssh://)".into()));
    };
    match scheme {
        "unix" if !rest.is_empty() => Ok(Transport::Unix {
            path: PathBuf::from(rest),
        }),
        "tcp" => {
            let (authority, path) = match rest.find('/') {
                Some(at) => rest.split_at(at),
                None => (rest, ""),
            };
            if !path.is_empty() && path != "/" {
                return Err(invalid("a path after the port is not supported".into()));
            }
            let (host, port) = split_host_port(authority)
                .filter(|(host, port)| !host.is_empty() && !port.is_empty())
                .ok_or_else(|| invalid("missing port in address".into()))?;
            let port = port
                .parse()
                .map_err(|_| invalid(format!("invalid port {port:?}")))?;
            Ok(Transport::Tcp {
                host: host.to_string(),
                port,
                tls,
            })
        }
        "ssh" => ssh_target(rest).map(Transport::Ssh).map_err(invalid),
        other => Err(invalid(format!(
            "stackroll reaches engines over unix://, tcp:// and ssh://, not {other}://"
        ))),
    }
}

/// `[user@]host[:port][/path]` of an `ssh://` address (the docker CLI's `ssh.NewSpec`).
fn ssh_target(rest: &str) -> Result<SshTarget, String> {
    if rest.contains('?') {
        return Err("invalid SSH URL: query parameters are not allowed".into());
    }
    if rest.contains('#') {
        return Err("invalid SSH URL: fragments are not allowed".into());
    }
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let (user, host_port) = match authority.rsplit_once('@') {
        Some((user, host_port)) => (Some(user), host_port),
        None => (None, authority),
    };
    if user.is_some_and(|user| user.contains(':')) {
        return Err("invalid SSH URL: plain-text password is not supported".into());
    }
    let (host, port) = split_host_port(host_port)
        .ok_or_else(|| "invalid SSH URL: unreadable host and port".to_string())?;
    if host.is_empty() {
        return Err("invalid SSH URL: hostname is empty".into());
    }
    if !port.is_empty() && port.parse::<u16>().is_err() {
        return Err(format!("invalid SSH URL: invalid port {port:?}"));
    }
    Ok(SshTarget {
        user: user.filter(|user| !user.is_empty()).map(str::to_string),
        host: host.to_string(),
        port: Some(port)
            .filter(|port| !port.is_empty())
            .map(str::to_string),
        socket: Some(path)
            .filter(|path| !path.is_empty())
            .map(str::to_string),
    })
}

/// The docker CLI's warning when `DOCKER_HOST` hides the context `docker context use` (or
/// `DOCKER_CONTEXT`) picked.
fn overridden_context(chosen_by: ChosenBy, env: &DockerEnv, files: &dyn Files) -> Vec<String> {
    if chosen_by != ChosenBy::HostEnv {
        return Vec::new();
    }
    let hidden = env
        .context
        .clone()
        .or_else(|| current_context(env, files).ok().flatten())
        .filter(|name| name != DEFAULT_CONTEXT);
    hidden
        .map(|name| {
            format!(
                "DOCKER_HOST overrides the active context \"{name}\"; to use the context, set \
                 --context or unset DOCKER_HOST"
            )
        })
        .into_iter()
        .collect()
}

/// Warnings about how the engine is reached: secrets in the clear, an engine nobody verifies.
fn transport_warnings(endpoint: &Endpoint) -> Vec<String> {
    match &endpoint.transport {
        Transport::Tcp {
            host, tls: None, ..
        } if !is_loopback(host) => vec![format!(
            "{} is plain HTTP to another host: secrets travel unencrypted; use TLS \
             (--tlsverify, DOCKER_TLS_VERIFY=1, a context with ca, cert and key) or ssh://",
            endpoint.address
        )],
        Transport::Tcp { tls: Some(tls), .. } if tls.skip_verify => vec![format!(
            "TLS to {} does not verify the engine's certificate (--tls or DOCKER_TLS without \
             --tlsverify, or a context with skip-tls-verify): anyone on the way can pose as it",
            endpoint.address
        )],
        _ => Vec::new(),
    }
}

/// `localhost`, `127.0.0.0/8` or `::1`.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// An error about `path`.
fn file_error(path: &Path, reason: String) -> EndpointError {
    EndpointError::File {
        path: path.display().to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests;
