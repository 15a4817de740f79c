//! The remote parts these tests talk to, brought up once per test binary: the sshd of
//! `scripts/sshd.sh`, the TLS engine of `scripts/tls-engine.sh`, and the docker CLI 28 with a
//! configuration directory of the test's own.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use tempfile::TempDir;

/// The ssh alias (in the sshd script's ssh_config) that logs in with the accepted key.
pub(crate) const SSH_HOST: &str = "stackroll-sshd";
/// The alias that offers a key sshd does not accept.
pub(crate) const SSH_STRANGER: &str = "stackroll-sshd-stranger";
/// The TLS engine's address.
pub(crate) const TLS_HOST: &str = "tcp://10.214.0.2:2376";

/// Runs `scripts/NAME up` and returns what `scripts/NAME env` prints, as `KEY=VALUE` pairs.
fn script_up(name: &str) -> Vec<(String, String)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name);
    let up = Command::new(&script)
        .arg("up")
        .output()
        .expect("run script");
    assert!(
        up.status.success(),
        "{name} up failed:\n{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let env = Command::new(&script)
        .arg("env")
        .output()
        .expect("run script");
    String::from_utf8_lossy(&env.stdout)
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

/// The value of `key` among `pairs`.
fn value(pairs: &[(String, String)], key: &str) -> String {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no {key} in {pairs:?}"))
}

/// PATH with the sshd script's `ssh` wrapper first (its ssh_config: keys, known hosts).
pub(crate) fn ssh_path() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        let bin = value(&script_up("sshd.sh"), "SSHD_BIN");
        format!("{bin}:{}", std::env::var("PATH").unwrap_or_default())
    })
}

/// The TLS engine: up, with its certificate directories.
pub(crate) struct TlsEngine {
    /// The CA, server and client certificates (`client/` and `rogue/` hold ca.pem, cert.pem
    /// and key.pem as DOCKER_CERT_PATH wants them).
    pub(crate) certs: PathBuf,
    /// Its Unix socket, to ask it things without TLS.
    pub(crate) socket: String,
}

impl TlsEngine {
    /// `certs/<dir>/<file>` as a string.
    pub(crate) fn file(&self, dir: &str, file: &str) -> String {
        self.certs.join(dir).join(file).display().to_string()
    }

    /// The engine's swarm ID, asked over its Unix socket.
    pub(crate) fn cluster_id(&self) -> String {
        let out = Command::new(docker_cli())
            .args([
                "-H",
                &self.socket,
                "info",
                "--format",
                "{{.Swarm.Cluster.ID}}",
            ])
            .env_remove("DOCKER_CONTEXT")
            .output()
            .expect("docker info");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

/// The TLS engine, started once.
pub(crate) fn tls_engine() -> &'static TlsEngine {
    static ENGINE: OnceLock<TlsEngine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let env = script_up("tls-engine.sh");
        assert_eq!(value(&env, "TLS_ENGINE_HOST"), TLS_HOST);
        TlsEngine {
            certs: PathBuf::from(value(&env, "TLS_ENGINE_CERTS")),
            socket: format!("unix://{}", value(&env, "TLS_ENGINE_SOCK")),
        }
    })
}

/// The docker CLI 28 (`/usr/local/bin/docker` on these machines), else `docker` on PATH.
pub(crate) fn docker_cli() -> &'static str {
    if Path::new("/usr/local/bin/docker").exists() {
        "/usr/local/bin/docker"
    } else {
        "docker"
    }
}

/// A docker configuration directory of the test's own (contexts, `docker context use`).
pub(crate) struct DockerConfig {
    pub(crate) dir: TempDir,
}

impl DockerConfig {
    pub(crate) fn new() -> DockerConfig {
        DockerConfig {
            dir: tempfile::Builder::new()
                .prefix("stackroll-docker-config-")
                .tempdir()
                .expect("temporary directory"),
        }
    }

    pub(crate) fn path(&self) -> &str {
        self.dir.path().to_str().expect("UTF-8 temp path")
    }

    /// The docker CLI with this configuration and `env`, and nothing of the test's
    /// environment that picks an engine.
    pub(crate) fn docker(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = Command::new(docker_cli());
        for variable in [
            "DOCKER_HOST",
            "DOCKER_CONTEXT",
            "DOCKER_TLS",
            "DOCKER_TLS_VERIFY",
            "DOCKER_CERT_PATH",
        ] {
            command.env_remove(variable);
        }
        command
            .env("DOCKER_CONFIG", self.path())
            .env("PATH", ssh_path());
        command.args(args).envs(env.iter().copied());
        command.output().expect("run docker")
    }

    /// [`DockerConfig::docker`] that must succeed; its stdout.
    pub(crate) fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args, &[]);
        assert!(
            out.status.success(),
            "docker {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `docker context create NAME --docker DOCKER`.
    pub(crate) fn create_context(&self, name: &str, docker: &str) {
        self.docker_ok(&["context", "create", name, "--docker", docker]);
    }
}
