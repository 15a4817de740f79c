//! TLS as the docker CLI does it, no weaker, against a real dockerd listening with
//! `--tlsverify` (scripts/tls-engine.sh): mutual TLS works (through a context made by
//! `docker context create` and through DOCKER_TLS_VERIFY/DOCKER_CERT_PATH, `=0` included); a
//! client certificate from another CA is refused; an engine whose certificate comes from another
//! CA than the one given is refused even when the system trusts its CA; plain HTTP to the TLS
//! port fails clearly, after a warning that secrets would travel unencrypted.

use std::process::Output;

use crate::command::stackroll_command;
use crate::remote::{tls_engine, DockerConfig, TLS_HOST};

/// `stackroll ARGS` in a fresh directory with a small compose file, with `env`.
fn stackroll(config: &DockerConfig, args: &[&str], env: &[(&str, &str)]) -> Output {
    std::fs::write(
        config.dir.path().join("compose.yaml"),
        "services:\n  app:\n    image: local/busybox:1\n    secrets: [s]\nsecrets:\n  s:\n    environment: S\n",
    )
    .expect("write compose file");
    stackroll_command(config.dir.path())
        .env("DOCKER_CONFIG", config.path())
        .env("S", "tls-test-value")
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run stackroll")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn mutual_tls_works_through_a_context_and_through_the_environment() {
    let engine = tls_engine();
    let config = DockerConfig::new();
    config.create_context(
        "tlsctx",
        &format!(
            "host={TLS_HOST},ca={},cert={},key={}",
            engine.file("client", "ca.pem"),
            engine.file("client", "cert.pem"),
            engine.file("client", "key.pem")
        ),
    );
    let target = format!(
        "Target: context tlsctx, {TLS_HOST}, swarm {}, manager ",
        engine.cluster_id()
    );
    let plan = stackroll(&config, &["--context", "tlsctx", "plan", "tlsstack"], &[]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan.stderr));
    assert!(
        text(&plan.stdout).starts_with(&target),
        "{}",
        text(&plan.stdout)
    );
    assert!(
        !text(&plan.stderr).contains("warning"),
        "{}",
        text(&plan.stderr)
    );
    let ls = stackroll(&config, &["--context", "tlsctx", "ls"], &[]);
    assert_eq!(ls.status.code(), Some(0), "{}", text(&ls.stderr));

    let client = engine.certs.join("client").display().to_string();
    for verify in ["1", "0"] {
        let env = [
            ("DOCKER_HOST", TLS_HOST),
            ("DOCKER_TLS_VERIFY", verify),
            ("DOCKER_CERT_PATH", &client),
        ];
        let plan = stackroll(&config, &["plan", "tlsstack"], &env);
        assert_eq!(
            plan.status.code(),
            Some(0),
            "DOCKER_TLS_VERIFY={verify}: {}",
            text(&plan.stderr)
        );
        assert!(text(&plan.stdout).contains(&engine.cluster_id()));
    }
}

#[test]
fn a_client_certificate_from_another_ca_is_refused() {
    let engine = tls_engine();
    let config = DockerConfig::new();
    let flags = [
        "-H",
        TLS_HOST,
        "--tlsverify",
        "--tlscacert",
        &engine.file("client", "ca.pem"),
        "--tlscert",
        &engine.file("rogue", "cert.pem"),
        "--tlskey",
        &engine.file("rogue", "key.pem"),
    ];
    let mut args = flags.to_vec();
    args.extend(["plan", "tlsstack"]);
    let out = stackroll(&config, &args, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the engine refused the TLS connection"),
        "{stderr}"
    );
    assert!(stderr.contains("client certificate"), "{stderr}");
    // The docker CLI is refused too.
    let mut docker_args = flags.to_vec();
    docker_args.push("info");
    assert!(!config.docker(&docker_args, &[]).status.success());
}

#[test]
fn an_engine_certificate_from_another_ca_is_refused_even_if_the_system_trusts_it() {
    let engine = tls_engine();
    let config = DockerConfig::new();
    let args = [
        "-H",
        TLS_HOST,
        "--tlsverify",
        "--tlscacert",
        &engine.file("rogue", "ca.pem"),
        "--tlscert",
        &engine.file("client", "cert.pem"),
        "--tlskey",
        &engine.file("client", "key.pem"),
        "plan",
        "tlsstack",
    ];
    // SSL_CERT_FILE makes the engine's real CA a system root: trusting the system's roots
    // besides --tlscacert would let the connection through.
    let system_roots = engine.file("ca", "ca.pem");
    let out = stackroll(&config, &args, &[("SSL_CERT_FILE", &system_roots)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the engine's certificate is not signed by the trusted CA"),
        "{stderr}"
    );
}

#[test]
fn plain_http_to_the_tls_port_fails_clearly_after_a_warning() {
    tls_engine();
    let config = DockerConfig::new();
    let out = stackroll(&config, &["-H", TLS_HOST, "plan", "tlsstack"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("secrets travel unencrypted"), "{stderr}");
    assert!(
        stderr.contains("the engine speaks TLS and stackroll sent plain HTTP"),
        "{stderr}"
    );
}
