//! Staged rotation of credentials held by a service, with real servers: the two examples
//! (`examples/rotate-redis`, `examples/rotate-mariadb`) deployed by stackroll, a client logging
//! in all the time, then one `stackroll deploy` after the password file changed. The images
//! come from `scripts/images.sh` (Debian's packages, cached), run here so the test needs
//! nothing else.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::docker::{docker_binary, docker_ok, running_container};
use crate::stack::Stack;

/// Builds (or finds cached) the example's server image.
fn ensure_image(which: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/images.sh");
    let output = Command::new(script)
        .arg(which)
        .output()
        .expect("run scripts/images.sh");
    assert!(
        output.status.success(),
        "scripts/images.sh {which} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Copies every file of `examples/<example>` into the stack's directory.
fn use_example(stack: &Stack, example: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(example);
    for entry in std::fs::read_dir(&dir).expect("example directory") {
        let path = entry.expect("entry").path();
        std::fs::copy(
            &path,
            stack.path(path.file_name().unwrap().to_str().unwrap()),
        )
        .expect("copy example file");
    }
}

/// Writes a fresh registered password to `file` (mode 0600) and returns it.
fn new_password(stack: &Stack, file: &str) -> String {
    let value = stack.write_secret(file, "pw");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(stack.path(file), std::fs::Permissions::from_mode(0o600)).unwrap();
    value
}

/// The engine's clock now, for `docker service logs --since`.
fn engine_now() -> String {
    docker_ok(&["info", "--format", "{{.SystemTime}}"])
        .trim()
        .to_string()
}

/// `(ok, failed)` login lines `service` printed since `since`.
fn logins(service: &str, since: &str) -> (usize, usize, Vec<String>) {
    let logs = docker_ok(&["service", "logs", "--raw", "--since", since, service]);
    let ok = logs.lines().filter(|l| l.ends_with(" ok")).count();
    let failed: Vec<String> = logs
        .lines()
        .filter(|l| l.contains(" fail "))
        .map(str::to_string)
        .collect();
    (ok, failed.len(), failed)
}

/// Waits until `service` has printed a successful login.
fn wait_for_login(service: &str) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(180) {
        let logs = docker_ok(&["service", "logs", "--raw", "--tail", "5", service]);
        if logs.lines().any(|l| l.ends_with(" ok")) {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("{service} never logged in");
}

/// Runs `script` with `stdin` in the running container of `service`; returns its stdout.
fn exec_with_stdin(service: &str, script: &str, stdin: &str) -> String {
    let container = running_container(service);
    let mut child = Command::new(docker_binary())
        .args(["exec", "-i", &container, "sh", "-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker exec");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().expect("docker exec output");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Whether Redis accepts `password` for user app (sent on stdin, never as an argument).
fn redis_accepts(service: &str, password: &str) -> bool {
    let commands = format!("AUTH app \"{password}\"\nPING\n");
    exec_with_stdin(service, "redis-cli -h 127.0.0.1", &commands) == "OK\nPONG\n"
}

/// Whether MariaDB accepts `password` for user app (through an option file, never an argument).
fn mariadb_accepts(service: &str, password: &str) -> bool {
    let script = "umask 077; cat > /tmp/check.cnf; \
                  mariadb --defaults-extra-file=/tmp/check.cnf -h 127.0.0.1 -N -e 'SELECT 1'; \
                  rm -f /tmp/check.cnf";
    let options = format!("[client]\nuser=app\npassword=\"{password}\"\n");
    exec_with_stdin(service, script, &options).trim() == "1"
}

#[test]
fn redis_password_rotates_in_stages_with_zero_failed_logins() {
    ensure_image("redis");
    let stack = Stack::new("rr");
    use_example(&stack, "rotate-redis");
    let old = new_password(&stack, "redis_password.txt");
    stack.deploy_ok(&[]);
    let (redis, client) = (stack.scoped("redis"), stack.scoped("client"));
    wait_for_login(&client);
    assert!(redis_accepts(&redis, &old));

    let new = new_password(&stack, "redis_password.txt");
    let plan = stack.plan(&["--output", "json"]);
    plan.expect_code(0);
    let stages = &plan.json()["rotations"][0]["stages"];
    assert_eq!(
        stages.as_array().map(Vec::len),
        Some(6),
        "{}",
        plan.context()
    );
    let since = engine_now();
    let run = stack.deploy_ok(&[]);
    run.expect_contains("staged rotation of secret redis_password")
        .expect_contains("running the apply step")
        .expect_contains("running the finalize step");
    // The client keeps logging in after the rotation, with the new password.
    std::thread::sleep(Duration::from_secs(2));
    let (ok, failed, lines) = logins(&client, &since);
    eprintln!("redis rotation: {ok} logins ok, {failed} failed");
    assert_eq!(failed, 0, "failed logins during the rotation: {lines:?}");
    assert!(ok > 20, "the client hardly logged in ({ok})");
    assert!(redis_accepts(&redis, &new), "the new password works");
    assert!(!redis_accepts(&redis, &old), "the old password is revoked");
    stack.plan(&[]).expect_code(0).expect_contains("No changes");
}

#[test]
fn mariadb_password_rotates_as_dockers_guide_does_by_hand() {
    ensure_image("mariadb");
    // Declared before the stack, so dropped after it: the volume goes once the stack is gone.
    let mut volume = VolumeGuard(String::new());
    let stack = Stack::new("rm");
    volume.0 = stack.scoped("db_data");
    use_example(&stack, "rotate-mariadb");
    let old = new_password(&stack, "db_password.txt");
    stack.deploy_ok(&[]);
    let (db, client) = (stack.scoped("db"), stack.scoped("client"));
    wait_for_login(&client);
    assert!(mariadb_accepts(&db, &old));

    let new = new_password(&stack, "db_password.txt");
    let since = engine_now();
    stack
        .deploy_ok(&[])
        .expect_contains("staged rotation of secret db_password");
    std::thread::sleep(Duration::from_secs(2));
    let (ok, failed, _) = logins(&client, &since);
    eprintln!("mariadb rotation: {ok} logins ok, {failed} failed (the guide's own procedure loses logins between apply and the client's move)");
    assert!(mariadb_accepts(&db, &new), "the new password works");
    assert!(
        !mariadb_accepts(&db, &old),
        "the old password no longer works"
    );
    // From now on the client logs in with the new password, every time.
    let after = engine_now();
    std::thread::sleep(Duration::from_secs(3));
    let (ok, failed, lines) = logins(&client, &after);
    assert!(
        ok > 0 && failed == 0,
        "after the rotation: {ok} ok, {lines:?}"
    );
}

/// Removes a named volume (the MariaDB example's datadir outlives its stack) once no container
/// uses it any more.
struct VolumeGuard(String);

impl Drop for VolumeGuard {
    fn drop(&mut self) {
        for _ in 0..60 {
            let removed = Command::new(docker_binary())
                .args(["volume", "rm", "-f", &self.0])
                .output()
                .is_ok_and(|output| output.status.success());
            if removed {
                return;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// The secrets `service`'s spec references, by name.
fn spec_secrets(stack: &Stack, service: &str) -> Vec<String> {
    let spec = crate::docker::service_inspect(&stack.scoped(service));
    crate::docker::referenced_names(&spec["Spec"], "secret")
        .into_iter()
        .collect()
}

/// Deploys the rotation fixture, changes the password, kills the deploy right after `stage`
/// was recorded, checks where it stopped, and requires the next deploy to finish the job.
fn killed_after_stage_then_resumed(tag: &str, stage: &str) {
    let stack = Stack::new(tag);
    stack.use_compose("rotation/compose.yaml");
    new_password(&stack, "pw.txt");
    stack.deploy_ok(&[]);
    new_password(&stack, "pw.txt");
    let (v1, v2) = (stack.scoped("pw_v1"), stack.scoped("pw_v2"));
    let killed = stack.stackroll_env(
        &stack.deploy_args(&[]),
        &[("STACKROLL_TEST_KILL_AT", &format!("rotation-{stage}"))],
    );
    assert_eq!(
        (killed.code, killed.signal),
        (None, Some(9)),
        "{}",
        killed.context()
    );
    let labels = crate::docker::labels_of("secret", &v2);
    assert_eq!(
        labels
            .get("io.stackroll.rotation.stage")
            .map(String::as_str),
        Some(stage)
    );
    let owner_mounts = spec_secrets(&stack, "db");
    assert_eq!(
        owner_mounts,
        [v1.clone(), v2.clone()],
        "the owner holds both after {stage}"
    );
    for name in &owner_mounts {
        assert!(
            crate::docker::object_exists("secret", name),
            "{name} exists after the kill"
        );
    }

    let resumed = stack.deploy_ok(&["--lock-timeout", "1s"]);
    resumed.expect_contains("[done]");
    if stage != "holding" {
        assert!(
            !resumed.all().contains("running the apply step"),
            "apply ran again after {stage}\n{}",
            resumed.context()
        );
    }
    assert_eq!(spec_secrets(&stack, "db"), std::slice::from_ref(&v2));
    assert_eq!(spec_secrets(&stack, "app"), std::slice::from_ref(&v2));
    let labels = crate::docker::labels_of("secret", &v2);
    assert_eq!(
        labels
            .get("io.stackroll.rotation.stage")
            .map(String::as_str),
        Some("done")
    );
    stack.plan(&[]).expect_code(0).expect_contains("No changes");
}

#[test]
#[cfg_attr(
    not(feature = "test-kill-points"),
    ignore = "needs a binary built with --features test-kill-points (scripts/test.sh does)"
)]
fn rotation_killed_after_holding_resumes() {
    killed_after_stage_then_resumed("rkh", "holding");
}

#[test]
#[cfg_attr(
    not(feature = "test-kill-points"),
    ignore = "needs a binary built with --features test-kill-points (scripts/test.sh does)"
)]
fn rotation_killed_after_apply_resumes_without_applying_again() {
    killed_after_stage_then_resumed("rka", "applied");
}

#[test]
#[cfg_attr(
    not(feature = "test-kill-points"),
    ignore = "needs a binary built with --features test-kill-points (scripts/test.sh does)"
)]
fn rotation_killed_after_consumers_moved_resumes() {
    killed_after_stage_then_resumed("rkm", "moved");
}

#[test]
#[cfg_attr(
    not(feature = "test-kill-points"),
    ignore = "needs a binary built with --features test-kill-points (scripts/test.sh does)"
)]
fn rotation_killed_after_finalize_resumes() {
    killed_after_stage_then_resumed("rkf", "finalized");
}

#[test]
fn a_failing_apply_exits_3_before_any_consumer_moves() {
    let stack = Stack::new("raf");
    stack.use_compose("rotation/compose.yaml");
    new_password(&stack, "pw.txt");
    stack.deploy_ok(&[]);
    // The fixture's apply step refuses a new password containing FAIL.
    stack.write_secret("pw.txt", "FAIL");
    let run = stack.deploy(&[]);
    run.expect_code(3)
        .expect_contains("the apply step of the rotation of secret pw in service")
        .expect_contains("no consumer moved");
    assert_eq!(spec_secrets(&stack, "app"), [stack.scoped("pw_v1")]);
}
