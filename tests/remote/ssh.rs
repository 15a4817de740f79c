//! `ssh://` end to end: stackroll runs `ssh ... -- HOST docker system dial-stdio` (the `ssh` on
//! PATH, here the sshd script's wrapper with its keys and known hosts) and plans, deploys,
//! rotates and removes a stack on the dev swarm behind the sshd, through a context made with
//! `docker context create` and chosen with `docker context use`, as a pipeline would. A refused
//! key or an unreachable host exits 1 with ssh's own message, in bounded time.

use std::time::{Duration, Instant};

use crate::command::stackroll_command;
use crate::docker::{docker_ok, object_exists, read_in_service};
use crate::leaks::strip_ansi;
use crate::remote::{ssh_path, DockerConfig, SSH_HOST, SSH_STRANGER};
use crate::stack::{assert_same_value, Stack};

/// The dev swarm's ID (the one the sshd's `docker` reaches).
fn dev_swarm_id() -> String {
    docker_ok(&["info", "--format", "{{.Swarm.Cluster.ID}}"])
        .trim()
        .to_string()
}

#[test]
fn plan_deploy_rotate_and_rm_over_ssh_through_the_current_context() {
    let config = DockerConfig::new();
    config.create_context("swarmssh", &format!("host=ssh://{SSH_HOST}"));
    config.docker_ok(&["context", "use", "swarmssh"]);
    let stack = Stack::new("ssh");
    stack.set_env("PATH", ssh_path());
    stack.set_env("DOCKER_CONFIG", config.path());
    stack.use_compose("basic/compose.yaml");
    stack.write_secret("db.txt", "db1");
    stack.write_secret("api.txt", "api");

    let target = format!(
        "Target: context swarmssh, ssh://{SSH_HOST}, swarm {}, manager ",
        dev_swarm_id()
    );
    let plan = stack.plan(&[]);
    plan.expect_code(0);
    assert!(
        strip_ansi(&plan.stdout).starts_with(&target),
        "the plan names where it goes first\n{}",
        plan.context()
    );
    let json = stack.plan(&["--output", "json"]);
    json.expect_code(0);
    let report = json.json();
    assert_eq!(report["target"]["context"], "swarmssh");
    assert_eq!(
        report["target"]["endpoint"],
        format!("ssh://{SSH_HOST}").as_str()
    );
    assert_eq!(report["target"]["cluster_id"], dev_swarm_id().as_str());

    let deployed = stack.deploy_ok(&[]);
    assert!(
        strip_ansi(&deployed.stdout).starts_with(&target),
        "{}",
        deployed.context()
    );
    let db2 = stack.write_secret("db.txt", "db2");
    stack.deploy_ok(&[]);
    assert!(
        object_exists("secret", &stack.scoped("db_v2")),
        "db_v2 exists"
    );
    assert_same_value(
        &read_in_service(&stack.scoped("app"), "/run/secrets/db"),
        &db2,
        "/run/secrets/db after a rotation over ssh",
    );

    let removed = stack.stackroll(&["rm", &stack.name]);
    removed.expect_code(0);
    assert!(
        strip_ansi(&removed.stdout).starts_with(&target),
        "{}",
        removed.context()
    );
    assert!(stack.objects("service").is_empty(), "services removed");
    assert!(stack.objects("secret").is_empty(), "secrets removed");
}

/// `stackroll plan` against `host`, in a fresh directory with a compose file; exit code,
/// stderr, and how long it took.
fn plan_against(host: &str) -> (Option<i32>, String, Duration) {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  app:\n    image: local/busybox:1\n",
    )
    .expect("write compose file");
    let started = Instant::now();
    let out = assert_cmd::Command::from_std(stackroll_command(dir.path()))
        .env("PATH", ssh_path())
        .args(["-H", host, "plan", "sshfail"])
        .timeout(Duration::from_secs(90))
        .output()
        .expect("run stackroll");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn a_refused_key_exits_1_with_ssh_s_message() {
    let (code, stderr, took) = plan_against(&format!("ssh://{SSH_STRANGER}"));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("Permission denied (publickey)"), "{stderr}");
    assert!(
        stderr.contains(&format!("ssh://{SSH_STRANGER}")),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: check that `ssh HOST docker version` works"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(20), "took {took:?}: not retried");
}

#[test]
fn an_unreachable_host_exits_1_with_ssh_s_message() {
    let (code, stderr, took) = plan_against("ssh://root@127.0.0.1:1");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("port 1: Connection refused"), "{stderr}");
    assert!(took < Duration::from_secs(20), "took {took:?}");
}
