//! Command-line behaviour that needs no swarm: exit codes and messages for bad input and an
//! unreachable engine, and that bad input never reaches the engine.

use assert_cmd::assert::Assert;
use assert_cmd::Command;
use predicates::prelude::*;
use tempfile::TempDir;

use crate::leaks::{leaks_in, redact, secret_value};

/// A directory with `compose.yaml` and `db.txt`, which holds a fresh registered secret value.
fn project(compose: &str) -> TempDir {
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("compose.yaml"), compose).unwrap();
    let value = secret_value("cli-db", "db.txt of a cli test");
    std::fs::write(dir.path().join("db.txt"), value).unwrap();
    dir
}

fn stackroll(dir: &TempDir) -> Command {
    crate::command::stackroll(dir.path())
}

/// Fails when a run printed a registered secret value, in any encoding.
fn assert_no_leak(assert: &Assert) {
    let output = assert.get_output();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let leaks = leaks_in(&text);
    assert!(
        leaks.is_empty(),
        "stackroll printed secret values: {leaks:?}\n{}",
        redact(&text)
    );
}

const VALID: &str = "services:\n  app:\n    image: local/busybox:1\n    secrets: [db]\nsecrets:\n  db:\n    file: ./db.txt\n";

#[test]
fn unreachable_engine_exits_1_with_a_hint() {
    let dir = project(VALID);
    for command in ["plan", "deploy"] {
        let run = stackroll(&dir)
            .args([command, "-H", "unix:///nonexistent/docker.sock", "demo"])
            .assert()
            .code(1)
            .stderr(predicate::str::contains(
                "cannot reach the Docker engine at unix:///nonexistent/docker.sock",
            ))
            .stderr(predicate::str::contains("hint:"));
        assert_no_leak(&run);
    }
}

#[test]
fn several_engines_none_answering_are_each_named() {
    let dir = project(VALID);
    stackroll(&dir)
        .args(["plan", "-H", "unix:///nonexistent/a.sock"])
        .args(["-H", "unix:///nonexistent/b.sock", "demo"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "none of the engines given answers as a swarm manager",
        ))
        .stderr(predicate::str::contains(
            "unix:///nonexistent/a.sock: cannot reach",
        ))
        .stderr(predicate::str::contains(
            "unix:///nonexistent/b.sock: cannot reach",
        ));
}

#[test]
fn bad_input_is_reported_before_the_engine_is_contacted() {
    let dir = project("services:\n  app:\n    image: local/busybox:1\n    secrets: [missing]\n");
    stackroll(&dir)
        .args(["deploy", "-H", "unix:///nonexistent/docker.sock", "demo"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "compose.yaml:4:15: services.app.secrets[0].source: secret \"missing\" is not defined",
        ))
        .stderr(predicate::str::contains("cannot reach").not());
}

#[test]
fn names_swarm_would_refuse_are_errors_with_the_stack_name_known() {
    let long_key = "k".repeat(60);
    let compose = format!("services:\n  app:\n    image: i\n    secrets: [{long_key}]\nsecrets:\n  {long_key}:\n    file: ./db.txt\n");
    let dir = project(&compose);
    stackroll(&dir)
        .args(["plan", "-H", "unix:///nonexistent/docker.sock", "demo"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("compose.yaml:6:3"))
        .stderr(predicate::str::contains("invalid swarm name"));
    stackroll(&dir)
        .args(["plan", "-H", "unix:///nonexistent/docker.sock", "bad stack"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("invalid stack name"));
}

#[test]
fn invalid_timeout_is_a_usage_error() {
    let dir = project(VALID);
    stackroll(&dir)
        .args(["deploy", "--timeout", "soon", "demo"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("invalid --timeout"));
}

#[test]
fn config_never_prints_secret_values() {
    let dir = project(
        "services:\n  app:\n    image: i\n    secrets: [db, tok]\nsecrets:\n  db:\n    file: ./db.txt\n  tok:\n    environment: TOKEN\n",
    );
    let token = secret_value("cli-tok", "TOKEN of a cli test");
    for format in ["yaml", "json"] {
        let run = stackroll(&dir)
            .args(["-vvv", "config", "--format", format])
            .env("TOKEN", &token)
            .env("RUST_LOG", "trace")
            .assert()
            .success()
            .stdout(predicate::str::contains("TOKEN"));
        assert_no_leak(&run);
    }
}

#[test]
fn unknown_service_fields_are_named_before_the_engine_is_contacted() {
    let dir = project("services:\n  app:\n    image: i\n    frobnicate: [\"80:80\"]\n    deploy:\n      frob: {}\n");
    stackroll(&dir)
        .args(["plan", "-H", "unix:///nonexistent/docker.sock", "demo"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("compose.yaml:4:17: services.app.frobnicate: service field \"frobnicate\" is not supported"))
        .stderr(predicate::str::contains("compose.yaml:6:7: services.app.deploy.frob: unknown key \"frob\""))
        .stderr(predicate::str::contains("cannot reach").not());
}

#[test]
fn secret_files_readable_by_others_get_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let dir = project(VALID);
    let file = dir.path().join("db.txt");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    stackroll(&dir)
        .args(["config"])
        .assert()
        .success()
        .stderr(predicate::str::contains("secret file"))
        .stderr(predicate::str::contains(
            "is readable by other users (mode 0644)",
        ))
        .stderr(predicate::str::contains("chmod 600"));
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    stackroll(&dir)
        .args(["config"])
        .assert()
        .success()
        .stderr(predicate::str::contains("readable by other users").not());
}

#[test]
fn hostile_files_are_refused_with_bounded_work() {
    let dir = project(VALID);
    let huge = "# padding\n".repeat(1_700_000);
    std::fs::write(dir.path().join("huge.yaml"), huge).unwrap();
    stackroll(&dir)
        .args(["config", "-c", "huge.yaml"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("huge.yaml: file is too large"));

    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..9 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    std::fs::write(dir.path().join("bomb.yaml"), bomb).unwrap();
    stackroll(&dir)
        .args(["config", "-c", "bomb.yaml"])
        .timeout(std::time::Duration::from_secs(20))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("document too large"));

    std::fs::write(dir.path().join("deep.yaml"), "[".repeat(100_000)).unwrap();
    stackroll(&dir)
        .args(["config", "-c", "deep.yaml"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "deep.yaml:1:129: document nested too deeply (more than 128 levels)",
        ));
}

#[test]
fn an_endless_standard_input_is_read_only_up_to_the_limit() {
    let dir = project("services: {}\n");
    stackroll(&dir)
        .args(["config", "-c", "-"])
        .write_stdin(vec![b'#'; 17 * 1024 * 1024])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "cannot read the compose file from standard input: file is too large",
        ));
}

/// A reader that goes away (`stackroll config | head -0`) is not a bug: no "cannot write
/// output" report and no exit 70.
#[test]
fn a_closed_stdout_is_not_reported_as_a_bug() {
    let dir = project(VALID);
    let mut child = crate::command::stackroll_command(dir.path())
        .args(["config"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(output.status.code(), Some(70), "{stderr}");
    assert!(!stderr.contains("cannot write output"), "{stderr}");
}

#[test]
fn a_stack_name_without_room_for_its_seal_is_refused_before_the_engine() {
    let dir = project(VALID);
    let long = "s".repeat(43);
    stackroll(&dir)
        .args(["plan", "-H", "tcp://127.0.0.1:9", &long])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "invalid stack name \"{long}\""
        )))
        .stderr(predicate::str::contains("`_stackroll-seal_N`"));
    // 42 characters leave room for `_stackroll-seal_<serial>`: only the engine is missing.
    stackroll(&dir)
        .args(["plan", "-H", "tcp://127.0.0.1:9", &"s".repeat(42)])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cannot reach the Docker engine"));
}

#[test]
fn the_stack_name_defaults_to_compose_project_name_then_the_files_name() {
    let unreachable = ["-H", "unix:///nonexistent/docker.sock"];
    // Neither a stack argument, nor COMPOSE_PROJECT_NAME, nor `name:`: refused before the engine.
    let dir = project(VALID);
    stackroll(&dir)
        .args(["plan"])
        .args(unreachable)
        .env_remove("COMPOSE_PROJECT_NAME")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no stack name"))
        .stderr(predicate::str::contains("cannot reach").not());
    // COMPOSE_PROJECT_NAME names the stack: loading gets as far as the engine.
    stackroll(&dir)
        .args(["plan"])
        .args(unreachable)
        .env("COMPOSE_PROJECT_NAME", "fromenv")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cannot reach"));
    // A `name:` Swarm refuses is refused with where it came from.
    let dir = project(&format!("name: \"bad name\"\n{VALID}"));
    stackroll(&dir)
        .args(["deploy"])
        .args(unreachable)
        .env_remove("COMPOSE_PROJECT_NAME")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("invalid stack name \"bad name\""))
        .stderr(predicate::str::contains(
            "the name comes from `name:` at compose.yaml:1:7",
        ))
        .stderr(predicate::str::contains("cannot reach").not());
}
