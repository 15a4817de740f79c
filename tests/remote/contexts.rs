//! Which engine stackroll picks, checked against the docker CLI 28 on the same context store,
//! flags and environment: every combination of `--context`, `-H`, `DOCKER_HOST`,
//! `DOCKER_CONTEXT` and `docker context use`; the TLS settings of the default context; the
//! contexts `docker context create` makes (unix, tcp with TLS material, skip-tls-verify, ssh).
//! The docker CLI's answer is `docker context inspect` of the context it would use;
//! stackroll's is `stackroll context --output json`.

use serde_json::Value;

use crate::command::stackroll_command;
use crate::remote::{tls_engine, DockerConfig, SSH_HOST, TLS_HOST};

/// Contexts of the store every case runs against.
const FLAG_CONTEXT: &str = "tlsctx";
const ENV_CONTEXT: &str = "sshctx";
const CURRENT_CONTEXT: &str = "skipctx";
const HOST_FLAG: &str = "tcp://127.0.0.1:12375";
const HOST_ENV: &str = "unix:///run/stackroll-test-none.sock";

/// A store with the contexts the cases name, made by the docker CLI.
fn store() -> DockerConfig {
    let engine = tls_engine();
    let config = DockerConfig::new();
    let tls = format!(
        "host={TLS_HOST},ca={},cert={},key={}",
        engine.file("client", "ca.pem"),
        engine.file("client", "cert.pem"),
        engine.file("client", "key.pem")
    );
    config.create_context(FLAG_CONTEXT, &tls);
    config.create_context(ENV_CONTEXT, &format!("host=ssh://{SSH_HOST}"));
    config.create_context(
        CURRENT_CONTEXT,
        &format!("host={TLS_HOST},skip-tls-verify=true"),
    );
    config.create_context("unixctx", "host=unix:///var/run/docker.sock");
    config.create_context(
        "caonly",
        &format!("host={TLS_HOST},ca={}", engine.file("client", "ca.pem")),
    );
    config
}

/// What a CLI picked: context, address, whether TLS skips verification, which TLS files.
#[derive(Debug, PartialEq)]
struct Picked {
    context: String,
    host: String,
    skip_verify: bool,
    material: Vec<String>,
}

/// The docker CLI's pick, or its error.
fn docker_pick(
    config: &DockerConfig,
    flags: &[&str],
    env: &[(&str, &str)],
) -> Result<Picked, String> {
    let mut args = flags.to_vec();
    args.extend(["context", "inspect", "--format", "{{json .}}"]);
    let out = config.docker(&args, env);
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let value: Value = serde_json::from_slice(&out.stdout).expect("docker context inspect JSON");
    let mut material: Vec<String> = value["TLSMaterial"]["docker"]
        .as_array()
        .map(|files| {
            files
                .iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    material.sort();
    Ok(Picked {
        context: value["Name"].as_str().unwrap_or_default().to_string(),
        host: value["Endpoints"]["docker"]["Host"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        skip_verify: value["Endpoints"]["docker"]["SkipTLSVerify"] == Value::Bool(true),
        material,
    })
}

/// stackroll's pick, or its error.
fn stackroll_pick(
    config: &DockerConfig,
    flags: &[&str],
    env: &[(&str, &str)],
) -> Result<Picked, String> {
    let mut command = stackroll_command(config.dir.path());
    command
        .env("DOCKER_CONFIG", config.path())
        .args(flags)
        .args(["context", "--output", "json"])
        .envs(env.iter().copied());
    let out = command.output().expect("run stackroll");
    if !out.status.success() {
        assert_eq!(out.status.code(), Some(1), "stackroll context exit code");
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let value: Value = serde_json::from_slice(&out.stdout).expect("stackroll context JSON");
    let tls = &value["tls"];
    let mut material: Vec<String> = [("ca", "ca.pem"), ("cert", "cert.pem"), ("key", "key.pem")]
        .iter()
        .filter(|(member, _)| tls[*member].is_string())
        .map(|(_, file)| file.to_string())
        .collect();
    material.sort();
    Ok(Picked {
        context: value["context"].as_str().unwrap_or_default().to_string(),
        host: value["endpoint"].as_str().unwrap_or_default().to_string(),
        skip_verify: tls["skip_verify"] == Value::Bool(true),
        material,
    })
}

/// Both CLIs on one case: the same pick, or both refuse (with the docker CLI's conflict
/// message when it gives that one). Returns a line describing the case.
fn compare(
    config: &DockerConfig,
    flags: &[&str],
    env: &[(&str, &str)],
    tls_matters: bool,
) -> String {
    let docker = docker_pick(config, flags, env);
    let stackroll = stackroll_pick(config, flags, env);
    let case = format!("flags {flags:?}, env {env:?}");
    match (&docker, &stackroll) {
        (Ok(docker), Ok(ours)) if tls_matters => assert_eq!(ours, docker, "{case}"),
        (Ok(docker), Ok(ours)) => assert_eq!(
            (&ours.context, &ours.host),
            (&docker.context, &docker.host),
            "{case}"
        ),
        (Err(docker), Err(ours)) => {
            if docker.contains("conflicting options") {
                assert!(ours.contains("conflicting options"), "{case}: {ours}");
            }
        }
        _ => panic!("{case}: docker {docker:?}, stackroll {stackroll:?}"),
    }
    format!("{case} -> {docker:?}")
}

#[test]
fn every_precedence_combination_picks_the_engine_the_docker_cli_picks() {
    let config = store();
    let mut seen = Vec::new();
    for current in [false, true] {
        let used = if current { CURRENT_CONTEXT } else { "default" };
        config.docker_ok(&["context", "use", used]);
        for bits in 0..16u8 {
            let mut flags = Vec::new();
            let mut env = Vec::new();
            if bits & 1 != 0 {
                flags.extend(["--context", FLAG_CONTEXT]);
            }
            if bits & 2 != 0 {
                flags.extend(["-H", HOST_FLAG]);
            }
            if bits & 4 != 0 {
                env.push(("DOCKER_HOST", HOST_ENV));
            }
            if bits & 8 != 0 {
                env.push(("DOCKER_CONTEXT", ENV_CONTEXT));
            }
            seen.push(compare(&config, &flags, &env, true));
        }
    }
    assert_eq!(seen.len(), 32);
    // The table is not trivial: every source wins somewhere, and the conflict is met.
    for winner in [
        FLAG_CONTEXT,
        ENV_CONTEXT,
        CURRENT_CONTEXT,
        HOST_FLAG,
        HOST_ENV,
        "conflicting",
    ] {
        assert!(
            seen.iter().any(|line| line.contains(winner)),
            "{winner} never picked:\n{}",
            seen.join("\n")
        );
    }
}

#[test]
fn every_context_docker_creates_is_read_as_the_docker_cli_reads_it() {
    let config = store();
    for context in [
        FLAG_CONTEXT,
        ENV_CONTEXT,
        CURRENT_CONTEXT,
        "unixctx",
        "caonly",
        "default",
    ] {
        compare(&config, &["--context", context], &[], true);
    }
}

/// Flags and environment variables of one case.
type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>);

#[test]
fn tls_of_the_default_context_is_what_the_docker_cli_uses() {
    let config = store();
    let engine = tls_engine();
    let client = engine.certs.join("client").display().to_string();
    let ca = engine.file("client", "ca.pem");
    let empty = tempfile::tempdir().expect("temporary directory");
    let empty = empty.path().to_str().expect("UTF-8 temp path");
    let host = ("DOCKER_HOST", TLS_HOST);
    let cases: Vec<Case> = vec![
        (
            vec![],
            vec![
                host,
                ("DOCKER_TLS_VERIFY", "1"),
                ("DOCKER_CERT_PATH", &client),
            ],
        ),
        (
            vec![],
            vec![
                host,
                ("DOCKER_TLS_VERIFY", "0"),
                ("DOCKER_CERT_PATH", &client),
            ],
        ),
        (
            vec![],
            vec![host, ("DOCKER_TLS", "1"), ("DOCKER_CERT_PATH", &client)],
        ),
        (vec![], vec![host, ("DOCKER_CERT_PATH", &client)]),
        (vec!["--tls"], vec![host, ("DOCKER_CERT_PATH", &client)]),
        (
            vec!["--tlsverify=false"],
            vec![
                host,
                ("DOCKER_TLS_VERIFY", "1"),
                ("DOCKER_CERT_PATH", &client),
            ],
        ),
        (vec!["--tlsverify", "--tlscacert", &ca], vec![host]),
        (vec!["--tlsverify"], vec![("DOCKER_CERT_PATH", &client)]),
        (
            vec![],
            vec![
                host,
                ("DOCKER_TLS_VERIFY", "1"),
                ("DOCKER_CERT_PATH", empty),
            ],
        ),
    ];
    for (flags, env) in cases {
        compare(&config, &flags, &env, true);
    }
}

#[test]
fn an_unknown_context_exits_1_naming_it_and_the_ones_that_exist() {
    let config = store();
    for (flags, env) in [
        (vec!["--context", "prd"], vec![]),
        (vec![], vec![("DOCKER_CONTEXT", "prd")]),
    ] {
        let docker = docker_pick(&config, &flags, &env);
        assert!(docker.is_err(), "the docker CLI refuses it too: {docker:?}");
        let error = stackroll_pick(&config, &flags, &env).unwrap_err();
        assert!(error.contains("context \"prd\""), "{error}");
        for known in [
            "default",
            FLAG_CONTEXT,
            ENV_CONTEXT,
            CURRENT_CONTEXT,
            "unixctx",
        ] {
            assert!(error.contains(known), "{known} not listed: {error}");
        }
    }
}
