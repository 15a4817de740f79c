//! Fault tests against the real local swarm: a deploy killed at each fault-injection point
//! (`STACKROLL_TEST_KILL_AT`), concurrent deploys and the deploy lock, "update out of sequence",
//! the follow-up of a rolled-back deploy, and an engine that goes away in the middle of a deploy
//! (a TCP proxy in front of the engine's socket, cut on a chosen request).
//!
//! Every stackroll run goes through the harness (`tests/support/`): full verbosity, leak check on
//! stdout and stderr, and the swarm's names, labels and specs searched after every deploy.
//!
//! After every fault the same invariant is checked with the docker CLI: every secret and config
//! that any service's Spec or PreviousSpec references (by ID), and that any task meant to run
//! references, exists under the name the reference gives. Then the next deploy must exit 0 with
//! every service converged at that moment onto the newest version for the content, containers
//! must read the new values, no more versions may be left than `--keep` allows, no lock may be
//! left, and a plan must say "No changes".

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::docker::*;
use crate::stack::*;

/// The three-service fixture.
const TRIO: &str = "faults/compose.yaml";
/// Its services, with where each mounts the secret `db` and the config `conf`.
const TRIO_SERVICES: [(&str, &str, &str); 3] = [
    ("web", "/run/secrets/db", "/conf"),
    ("worker", "/run/secrets/db", "/etc/worker.conf"),
    ("cron", "/etc/cron/db", "/conf"),
];
/// The engine's socket, behind the proxy.
const DOCKER_SOCKET: &str = "/var/run/docker.sock";

// ---------------------------------------------------------------------------------------------
// Checks.

/// Problems found by one test, reported together at the end (so one failed expectation does
/// not hide the others).
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn check(&mut self, ok: bool, problem: impl FnOnce() -> String) {
        if !ok {
            self.0.push(problem());
        }
    }

    /// Fails listing every problem; `what` is a title, then optionally context lines.
    fn assert_none(self, what: &str) {
        let (title, context) = what.split_once('\n').unwrap_or((what, ""));
        assert!(
            self.0.is_empty(),
            "{title}: {} problem(s):\n  - {}\n{context}",
            self.0.len(),
            self.0.join("\n  - ")
        );
    }
}

/// The `(kind, list, id key, name key)` of secret and config references in a ContainerSpec.
const REFERENCE_KINDS: [(&str, &str, &str, &str); 2] = [
    ("secret", "Secrets", "SecretID", "SecretName"),
    ("config", "Configs", "ConfigID", "ConfigName"),
];

/// Checks that every reference of `container_spec` names an object that exists with that name;
/// returns how many references were checked.
fn check_references(container_spec: &Value, owner: &str, problems: &mut Problems) -> usize {
    let mut checked = 0;
    for (kind, list, id_key, name_key) in REFERENCE_KINDS {
        for reference in container_spec[list].as_array().into_iter().flatten() {
            checked += 1;
            let id = reference[id_key].as_str().unwrap_or_default();
            let name = reference[name_key].as_str().unwrap_or_default();
            if id.is_empty() {
                problems
                    .0
                    .push(format!("{owner}: {kind} {name} has no {id_key}"));
                continue;
            }
            let output = docker(&[kind, "inspect", id]);
            if !output.status.success() {
                problems.0.push(format!(
                    "{owner} references {kind} {name} ({id}), which does not exist"
                ));
                continue;
            }
            let value: Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
            let actual = value[0]["Spec"]["Name"].as_str().unwrap_or_default();
            if actual != name {
                problems.0.push(format!(
                    "{owner} references {kind} {name} by ID {id}, which is named {actual}"
                ));
            }
        }
    }
    checked
}

/// IDs of the tasks of `service` that the swarm wants running.
fn running_task_ids(service: &str) -> Vec<String> {
    docker_lines(&[
        "service",
        "ps",
        "--filter",
        "desired-state=running",
        "--no-trunc",
        "-q",
        service,
    ])
}

fn task_inspect(id: &str) -> Value {
    let text = docker_ok(&["inspect", "--type", "task", id]);
    let value: Value = serde_json::from_str(&text).expect("docker inspect prints JSON");
    value[0].clone()
}

/// The invariant after any fault: every secret and config referenced by any service's Spec or
/// PreviousSpec, or by a task meant to run, exists under the referenced name. Returns how many
/// references were checked.
fn assert_references_exist(stack: &Stack, when: &str) -> usize {
    let mut problems = Problems::default();
    let mut checked = 0;
    for service in stack.objects("service") {
        let value = service_inspect(&service);
        for which in ["Spec", "PreviousSpec"] {
            checked += check_references(
                &value[which]["TaskTemplate"]["ContainerSpec"],
                &format!("service {service} {which}"),
                &mut problems,
            );
        }
        for task in running_task_ids(&service) {
            checked += check_references(
                &task_inspect(&task)["Spec"]["ContainerSpec"],
                &format!("task {task} of {service}"),
                &mut problems,
            );
        }
    }
    problems.assert_none(&format!(
        "{when}: references to secrets and configs that do not exist"
    ));
    assert!(checked > 0, "{when}: no references found at all");
    checked
}

/// The ID of a secret or config, by exact name.
fn object_id(kind: &str, name: &str) -> Option<String> {
    let output = docker(&[kind, "inspect", name]);
    if !output.status.success() {
        return None;
    }
    let value: Value = serde_json::from_slice(&output.stdout).ok()?;
    value[0]["ID"].as_str().map(str::to_string)
}

/// `(name, id)` of the references of `kind` in a ContainerSpec.
fn reference_ids(container_spec: &Value, kind: &str) -> BTreeSet<(String, String)> {
    let (_, list, id_key, name_key) = REFERENCE_KINDS
        .into_iter()
        .find(|k| k.0 == kind)
        .expect("secret or config");
    container_spec[list]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r[name_key].as_str().unwrap_or_default().to_string(),
                r[id_key].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Why `service` has not converged onto secret `secret` and config `config` (names) right now,
/// or `None` when it has: its Spec references exactly them (by their current IDs), no update is
/// in progress or failed (UpdateStatus.State completed, or no UpdateStatus), and exactly one
/// task is meant to run, runs, and its spec references exactly them.
fn not_converged(service: &str, secret: &str, config: &str) -> Option<String> {
    let value = service_inspect(service);
    let wanted = |kind: &str, name: &str| -> BTreeSet<(String, String)> {
        BTreeSet::from([(
            name.to_string(),
            object_id(kind, name).unwrap_or_else(|| "<missing>".into()),
        )])
    };
    let wanted_secret = wanted("secret", secret);
    let wanted_config = wanted("config", config);
    let spec = &value["Spec"]["TaskTemplate"]["ContainerSpec"];
    let refs = (reference_ids(spec, "secret"), reference_ids(spec, "config"));
    if refs != (wanted_secret.clone(), wanted_config.clone()) {
        return Some(format!(
            "{service}: Spec references {refs:?}, expected {wanted_secret:?} and {wanted_config:?}"
        ));
    }
    let state = value["UpdateStatus"]["State"].as_str().unwrap_or_default();
    if !(state.is_empty() || state == "completed") {
        return Some(format!(
            "{service}: UpdateStatus.State is {state:?} ({})",
            value["UpdateStatus"]["Message"]
                .as_str()
                .unwrap_or_default()
        ));
    }
    let tasks = running_task_ids(service);
    let [task] = tasks.as_slice() else {
        return Some(format!(
            "{service}: {} tasks meant to run, expected 1",
            tasks.len()
        ));
    };
    let task = task_inspect(task);
    let task_state = task["Status"]["State"].as_str().unwrap_or_default();
    if task_state != "running" {
        return Some(format!(
            "{service}: its task is {task_state:?}, not running"
        ));
    }
    let spec = &task["Spec"]["ContainerSpec"];
    let refs = (reference_ids(spec, "secret"), reference_ids(spec, "config"));
    if refs != (wanted_secret, wanted_config) {
        return Some(format!(
            "{service}: the running task references {refs:?}, not {secret} and {config}"
        ));
    }
    None
}

/// Versioned name `<stack>_<key>_v<n>`.
fn versioned(stack: &Stack, key: &str, n: u64) -> String {
    stack.scoped(&format!("{key}_v{n}"))
}

/// The contents of one round of the three-service stack.
struct Round {
    db: String,
    conf: String,
}

/// Writes fresh registered contents for `db.txt` and `app.conf`.
fn write_round(stack: &Stack, n: u64) -> Round {
    Round {
        db: stack.write_secret("db.txt", &format!("db{n}")),
        conf: stack.write_config("app.conf", &format!("conf{n}")),
    }
}

/// Checks the three-service stack right after a deploy reported success: every service
/// converged at this moment onto `db_v<db>` and `conf_v<conf>`, and (waiting for it) every
/// container reads the round's values at every target.
fn check_trio_on(stack: &Stack, version: u64, round: &Round, problems: &mut Problems) {
    let secret = versioned(stack, "db", version);
    let config = versioned(stack, "conf", version);
    // First, all at once, the state at the moment the deploy returned.
    let states: Vec<Option<String>> = TRIO_SERVICES
        .iter()
        .map(|(service, _, _)| not_converged(&stack.scoped(service), &secret, &config))
        .collect();
    for state in states.into_iter().flatten() {
        problems.0.push(format!(
            "not converged when the deploy reported success: {state}"
        ));
    }
    for (service, db_path, conf_path) in TRIO_SERVICES {
        let name = stack.scoped(service);
        wait_for_content(&name, db_path, &round.db);
        wait_for_content(&name, conf_path, &round.conf);
    }
}

/// Asserts the stack's secrets and configs: `db_v<n>` and `conf_v<n>` for each n in `versions`,
/// besides at most one content seal.
fn check_versions(stack: &Stack, versions: &[u64], problems: &mut Problems) {
    let is_seal = |name: &String| name.contains("_stackroll-seal_");
    for (kind, key) in [("secret", "db"), ("config", "conf")] {
        let expected: BTreeSet<String> =
            versions.iter().map(|n| versioned(stack, key, *n)).collect();
        let actual: BTreeSet<String> = stack
            .objects(kind)
            .into_iter()
            .filter(|name| !is_seal(name))
            .collect();
        problems.check(actual == expected, || {
            format!("the stack's {kind}s are {actual:?}, expected {expected:?}")
        });
    }
    let seals: Vec<String> = stack
        .objects("config")
        .into_iter()
        .filter(is_seal)
        .collect();
    problems.check(seals.len() <= 1, || {
        format!("more than one content seal is left: {seals:?}")
    });
}

fn check_no_lock(stack: &Stack, problems: &mut Problems) {
    let lock = lock_name(stack);
    problems.check(!object_exists("config", &lock), || {
        format!("the deploy lock {lock} is left")
    });
}

/// A plan right now says there is nothing to do (exit 0 with --detailed-exitcode, "No changes").
fn check_plan_empty(stack: &Stack, problems: &mut Problems) {
    let run = stack.plan(&["--detailed-exitcode"]);
    problems.check(
        run.code == Some(0) && run.all().contains("No changes"),
        || format!("the plan afterwards is not empty\n{}", run.context()),
    );
}

// ---------------------------------------------------------------------------------------------
// The deploy lock.

fn lock_name(stack: &Stack) -> String {
    stack.scoped("stackroll-lock")
}

/// The holder label of the stack's lock, if there is a lock.
fn lock_holder(stack: &Stack) -> Option<String> {
    let name = lock_name(stack);
    object_exists("config", &name).then(|| {
        labels_of("config", &name)
            .get("io.stackroll.lock.holder")
            .cloned()
            .unwrap_or_default()
    })
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// Creates the stack's lock by hand, as a deploy that died would leave it.
fn make_lock(stack: &Stack, holder: &str, expires_in_secs: i64) {
    let file = stack.path("lock.txt");
    std::fs::write(&file, "stackroll deploy lock").expect("write lock.txt");
    let now = now_secs();
    docker_ok(&[
        "config",
        "create",
        "--label",
        &format!("io.stackroll.lock.holder={holder}"),
        "--label",
        &format!("io.stackroll.lock.since={}", now - 60),
        "--label",
        &format!("io.stackroll.lock.expires={}", now + expires_in_secs),
        &lock_name(stack),
        file.to_str().expect("UTF-8 path"),
    ]);
}

// ---------------------------------------------------------------------------------------------
// 1. Crash safety: a deploy killed with SIGKILL at each fault-injection point.

/// Deploys rounds 1 and 2 of the three-service stack with `--keep 1`, so that the deploy of
/// round 3 creates v3, updates all three services and prunes v1 (both the secret and the config).
fn trio_at_round_2(stack: &Stack) -> Round {
    stack.use_compose(TRIO);
    write_round(stack, 1);
    stack.deploy_ok(&["--keep", "1"]);
    let round = write_round(stack, 2);
    stack.deploy_ok(&["--keep", "1"]);
    let mut problems = Problems::default();
    check_versions(stack, &[1, 2], &mut problems);
    problems.assert_none("setup: rounds 1 and 2");
    round
}

/// The checks after the recovering deploy of round 3 (v3 live, v2 kept, v1 pruned).
fn check_recovered_at_round_3(stack: &Stack, run: &Run, round: &Round, problems: &mut Problems) {
    problems.check(run.code == Some(0), || {
        format!("the recovering deploy failed\n{}", run.context())
    });
    check_trio_on(stack, 3, round, problems);
    // The content of round 3 got exactly one version: v3, never v4.
    check_versions(stack, &[2, 3], problems);
    check_no_lock(stack, problems);
    check_plan_empty(stack, problems);
    assert_references_exist(stack, "after the recovering deploy");
}

/// Kills the deploy of round 3 at `point`, checks the state it left, then recovers. `monitor`
/// is the services' `update_config.monitor` from round 3 on: a long one keeps them "updating"
/// well past the start of the recovering deploy.
fn crash_and_recover(tag: &str, point: &str, monitor: &str) {
    let stack = Stack::new(tag);
    let v = |key: &str, n: u64| versioned(&stack, key, n);
    trio_at_round_2(&stack);
    stack.set_env("E2E_MONITOR", monitor);
    let round = write_round(&stack, 3);
    let plan = stack.plan(&[]);
    for line in [
        format!("+ secret {}", v("db", 3)),
        format!("+ config {}", v("conf", 3)),
        format!("- secret {}", v("db", 1)),
        format!("- config {}", v("conf", 1)),
    ] {
        plan.expect_contains(&line);
    }

    // The deploy that dies.
    let killed = stack.stackroll_env(
        &stack.deploy_args(&["--keep", "1"]),
        &[("STACKROLL_TEST_KILL_AT", point)],
    );
    assert_eq!(
        (killed.code, killed.signal),
        (None, Some(9)),
        "the deploy should have been killed at {point}\n{}",
        killed.context()
    );
    killed.expect_contains(&format!("point=\"{point}\""));
    stack.assert_no_leak_in_swarm();

    // Where it died.
    let mut problems = Problems::default();
    let spec_secrets = |service: &str| {
        referenced_names(&service_inspect(&stack.scoped(service))["Spec"], "secret")
    };
    let on_v3: Vec<&str> = TRIO_SERVICES
        .iter()
        .map(|(s, _, _)| *s)
        .filter(|s| spec_secrets(s).contains(&v("db", 3)))
        .collect();
    for name in [v("db", 3), v("conf", 3)] {
        let kind = if name.contains("_db_") {
            "secret"
        } else {
            "config"
        };
        problems.check(object_exists(kind, &name), || {
            format!("{kind} {name} does not exist after the crash at {point}")
        });
    }
    let v1_left: Vec<String> = [("secret", v("db", 1)), ("config", v("conf", 1))]
        .into_iter()
        .filter(|(kind, name)| object_exists(kind, name))
        .map(|(_, name)| name)
        .collect();
    match point {
        "after-objects" => {
            problems.check(on_v3.is_empty(), || {
                format!("killed after the objects, yet {on_v3:?} use v3")
            });
            problems.check(v1_left.len() == 2, || format!("v1 left: {v1_left:?}"));
        }
        "after-service-update" => {
            problems.check(!on_v3.is_empty(), || {
                "killed after a service update, yet no service uses v3".into()
            });
            problems.check(v1_left.len() == 2, || format!("v1 left: {v1_left:?}"));
        }
        "during-rollout" => {
            problems.check(on_v3.len() == 3, || {
                format!("killed during the rollout, yet only {on_v3:?} use v3")
            });
            problems.check(v1_left.len() == 2, || format!("v1 left: {v1_left:?}"));
        }
        "during-prune" => {
            problems.check(on_v3.len() == 3, || {
                format!("killed while pruning, yet only {on_v3:?} use v3")
            });
            problems.check(v1_left.len() == 1, || {
                format!("killed after the first deletion, yet v1 left: {v1_left:?}")
            });
        }
        other => panic!("unknown kill point {other}"),
    }
    problems.assert_none(&format!("the state after the crash at {point}"));
    let checked = assert_references_exist(&stack, &format!("after the crash at {point}"));
    eprintln!("crash at {point}: services on v3: {on_v3:?}; v1 left: {v1_left:?}; {checked} references exist");

    // The dead deploy's lock is left and names it; the next deploy on this host sees that the
    // process is gone and takes the lock over at once (a short --lock-timeout proves no wait).
    let holder = lock_holder(&stack).unwrap_or_default();
    assert!(
        holder.ends_with(&format!(" pid {}", killed.pid)),
        "the lock left by the killed deploy (pid {}) names {holder:?}",
        killed.pid
    );

    // The same deploy again finishes the job.
    let rerun = stack.deploy(&["--keep", "1", "--lock-timeout", "1s"]);
    rerun.expect_contains(&format!(
        "taking over the deploy lock held by {holder}: its process on this host is gone"
    ));
    let mut problems = Problems::default();
    check_recovered_at_round_3(&stack, &rerun, &round, &mut problems);
    problems.assert_none(&format!(
        "the deploy after the crash at {point}\n{}",
        rerun.context()
    ));
}

/// Killed right after the new secret and config versions were created.
#[test]
#[cfg_attr(
    not(feature = "test-kill-points"),
    ignore = "needs the fault-injection build: cargo test --features test-kill-points"
)]
fn faults_kill_after_objects() {
    crash_and_recover("kobj", "after-objects", "5s");
}

/// Killed right after the first of three concurrent service updates was answered (Swarm
/// monitors these updates for 25 s, so they are still going when the next deploy runs).
#[test]
#[cfg_attr(
    not(feature = "test-kill-points"),
    ignore = "needs the fault-injection build: cargo test --features test-kill-points"
)]
fn faults_kill_after_service_update() {
    crash_and_recover("kupd", "after-service-update", "25s");
}

/// Killed after every write, before waiting for the rollout (Swarm monitors these updates for
/// 25 s, so they are still going when the next deploy runs).
#[test]
#[cfg_attr(
    not(feature = "test-kill-points"),
    ignore = "needs the fault-injection build: cargo test --features test-kill-points"
)]
fn faults_kill_during_rollout() {
    crash_and_recover("kroll", "during-rollout", "25s");
}

/// Killed right after the first old version was deleted.
#[test]
#[cfg_attr(
    not(feature = "test-kill-points"),
    ignore = "needs the fault-injection build: cargo test --features test-kill-points"
)]
fn faults_kill_during_prune() {
    crash_and_recover("kprune", "during-prune", "5s");
}

/// Killed during the rollout of content that fails its healthcheck (slowly): the next deploy,
/// started while Swarm still updates, must not report success for an update Swarm then rolls
/// back. Expected: it waits and exits 3 (or, if Swarm already rolled back when it looked, it
/// writes again and exits 3).
#[test]
#[cfg_attr(
    not(feature = "test-kill-points"),
    ignore = "needs the fault-injection build: cargo test --features test-kill-points"
)]
fn faults_kill_during_a_failing_rollout() {
    let stack = Stack::new("kfail");
    stack.use_compose("faults/slow-health.yaml");
    let app = stack.scoped("app");
    stack.write_secret("db.txt", "good");
    stack.deploy_ok(&[]);
    stack.write_secret("db.txt", "bad");
    let killed = stack.stackroll_env(
        &stack.deploy_args(&[]),
        &[("STACKROLL_TEST_KILL_AT", "during-rollout")],
    );
    assert_eq!(
        (killed.code, killed.signal),
        (None, Some(9)),
        "{}",
        killed.context()
    );
    stack
        .stackroll(&["unlock", &stack.name])
        .expect_code(0)
        .expect_contains(&format!("pid {}", killed.pid));
    let before = update_state(&app);
    let rerun = stack.deploy(&[]);
    let at_exit = update_state(&app);
    let settled = wait_for("the update to settle", WAIT, || {
        let state = update_state(&app);
        (state != "updating" && state != "rollback_started").then_some(state)
    });
    eprintln!(
        "faults_kill_during_a_failing_rollout: UpdateStatus.State {before:?} before the rerun, {at_exit:?} when it exited {:?}, then {settled:?}",
        rerun.code
    );
    assert_eq!(
        settled, "rollback_completed",
        "Swarm rolls the bad content back"
    );
    assert_eq!(
        rerun.code,
        Some(3),
        "the deploy after the crash must report the failed rollout (UpdateStatus.State was {before:?} when it started, {at_exit:?} when it exited, then {settled:?})\n{}",
        rerun.context()
    );
    assert_references_exist(&stack, "after the rollback");
}

// ---------------------------------------------------------------------------------------------
// 2. Concurrency and the deploy lock.

/// For each round, `processes` deploys of the same new content start at the same time.
/// `lock_timeout` None: all wait for the lock; exactly one applies, the others find nothing to
/// do. Some(short): exactly one applies, the others exit 1 naming its pid. Either way exactly
/// one new version exists per content and the services converge. Returns the number of
/// deploys run.
fn contend(stack: &Stack, rounds: &[(u64, usize)], lock_timeout: Option<&str>) -> usize {
    let mut runs = 0;
    for &(n, processes) in rounds {
        let round = write_round(stack, n);
        let mut extra = vec!["--keep", "1"];
        if let Some(timeout) = lock_timeout {
            extra.extend(["--lock-timeout", timeout]);
        }
        let args = stack.deploy_args(&extra);
        let running: Vec<Running> = (0..processes).map(|_| stack.spawn(&args, &[])).collect();
        let finished: Vec<Run> = running.into_iter().map(Running::finish).collect();
        runs += finished.len();
        stack.assert_no_leak_in_swarm();
        let contexts = || {
            finished
                .iter()
                .map(Run::context)
                .collect::<Vec<_>>()
                .join("\n\n")
        };
        let applied: Vec<&Run> = finished
            .iter()
            .filter(|r| r.code == Some(0) && r.stdout.contains("Applied."))
            .collect();
        assert_eq!(
            applied.len(),
            1,
            "round {n}: exactly one of {processes} concurrent deploys applies\n{}",
            contexts()
        );
        let winner = applied[0].pid;
        for run in finished.iter().filter(|r| r.pid != winner) {
            match lock_timeout {
                None => assert!(
                    run.code == Some(0) && run.stdout.contains("No changes"),
                    "round {n}: a deploy that waited for the lock should find no changes\n{}",
                    contexts()
                ),
                Some(_) => {
                    assert_eq!(run.code, Some(1), "round {n}: loser's exit\n{}", contexts());
                    run.expect_contains(&format!("pid {winner}"))
                        .expect_contains("holds the lock")
                        .expect_contains("nothing was done");
                }
            }
        }
        let mut problems = Problems::default();
        let kept: Vec<u64> = if n == 1 { vec![1] } else { vec![n - 1, n] };
        check_versions(stack, &kept, &mut problems);
        check_trio_on(stack, n, &round, &mut problems);
        check_no_lock(stack, &mut problems);
        problems.assert_none(&format!("round {n} of concurrent deploys\n{}", contexts()));
        assert_references_exist(stack, &format!("round {n} of concurrent deploys"));
    }
    runs
}

/// Two, then three deploys of the same content at once: all exit 0, one applies.
#[test]
fn faults_concurrent_deploys_wait_for_the_lock() {
    let stack = Stack::new("cwait");
    stack.use_compose(TRIO);
    let runs = contend(&stack, &[(1, 2), (2, 2), (3, 3)], None);
    eprintln!("faults_concurrent_deploys_wait_for_the_lock: {runs} concurrent deploys in 3 rounds");
    let mut problems = Problems::default();
    check_plan_empty(&stack, &mut problems);
    problems.assert_none("after the concurrent deploys");
}

/// Two deploys of the same content at once with `--lock-timeout 2s`: one applies, the other
/// exits 1 naming the first's pid.
#[test]
fn faults_concurrent_deploys_short_lock_timeout() {
    let stack = Stack::new("cshort");
    stack.use_compose(TRIO);
    write_round(&stack, 1);
    stack.deploy_ok(&["--keep", "1"]);
    let runs = contend(&stack, &[(2, 2), (3, 2)], Some("2s"));
    eprintln!(
        "faults_concurrent_deploys_short_lock_timeout: {runs} concurrent deploys in 2 rounds"
    );
    let mut problems = Problems::default();
    check_plan_empty(&stack, &mut problems);
    problems.assert_none("after the concurrent deploys");
}

/// While a deploy waits for a slow rollout it holds the lock: another deploy with
/// `--lock-timeout 2s` exits 1 after about 2 s, names the holder's pid and writes nothing.
#[test]
fn faults_lock_held_during_slow_rollout() {
    let stack = Stack::new("lslow");
    stack.use_compose("faults/slow.yaml");
    stack.write_secret("db.txt", "db1");
    stack.deploy_ok(&[]);
    let app = stack.scoped("app");
    let db2 = stack.write_secret("db.txt", "db2");

    let mut holder = stack.spawn(&stack.deploy_args(&[]), &[]);
    holder.wait_for_output(&format!("updated service {app}"), Duration::from_secs(60));
    let label = lock_holder(&stack).unwrap_or_default();
    assert!(
        label.ends_with(&format!(" pid {}", holder.pid())),
        "the lock of a running deploy (pid {}) names {label:?}",
        holder.pid()
    );
    let secrets = stack.objects("secret");
    let index = version_index(&app);
    let blocked = stack.deploy(&["--lock-timeout", "2s"]);
    assert!(
        !holder.has_exited(),
        "the slow deploy finished before the contending one: the test proves nothing"
    );
    blocked
        .expect_code(1)
        .expect_contains(&format!("pid {}", holder.pid()))
        .expect_contains("nothing was done");
    assert!(
        blocked.elapsed >= Duration::from_secs(2) && blocked.elapsed < Duration::from_secs(15),
        "the blocked deploy gave up after {:?}, expected about 2s",
        blocked.elapsed
    );
    assert_eq!(
        stack.objects("secret"),
        secrets,
        "the blocked deploy wrote secrets"
    );
    assert_eq!(
        version_index(&app),
        index,
        "the blocked deploy updated the service"
    );

    let held = holder.finish();
    held.expect_code(0);
    let mut problems = Problems::default();
    check_no_lock(&stack, &mut problems);
    problems.assert_none("after the slow deploy");
    wait_for_content(&app, "/run/secrets/db", &db2);
    let again = stack.deploy_ok(&[]);
    again.expect_contains("No changes");
}

/// A lock whose expiry is in the future (its holder died): a deploy waits `--lock-timeout`,
/// exits 1 naming the holder and writes nothing; `stackroll unlock` removes it, then the deploy
/// proceeds; a second unlock says there is none.
#[test]
fn faults_stale_lock_and_unlock() {
    let stack = Stack::new("lstale");
    stack.use_compose(TRIO);
    let round = write_round(&stack, 1);
    let ghost = "ghost@elsewhere pid 4242";
    make_lock(&stack, ghost, 3600);

    let blocked = stack.deploy(&["--lock-timeout", "2s"]);
    blocked
        .expect_code(1)
        .expect_contains(ghost)
        .expect_contains(&format!("stackroll unlock {}", stack.name));
    assert!(
        stack.objects("secret").is_empty(),
        "a blocked deploy created secrets"
    );
    assert!(
        stack.objects("service").is_empty(),
        "a blocked deploy created services"
    );
    assert_eq!(
        lock_holder(&stack).as_deref(),
        Some(ghost),
        "the lock is untouched"
    );

    stack
        .stackroll(&["unlock", &stack.name])
        .expect_code(0)
        .expect_contains(&format!("held by {ghost}"));
    assert_eq!(lock_holder(&stack), None, "unlock removed the lock");
    let run = stack.deploy(&["--lock-timeout", "2s"]);
    let mut problems = Problems::default();
    problems.check(run.code == Some(0), || {
        format!("deploy after unlock\n{}", run.context())
    });
    check_trio_on(&stack, 1, &round, &mut problems);
    check_no_lock(&stack, &mut problems);
    problems.assert_none("after unlock");
    stack
        .stackroll(&["unlock", &stack.name])
        .expect_code(0)
        .expect_contains("has no deploy lock");
}

/// A lock whose expiry has passed is taken over without waiting.
#[test]
fn faults_expired_lock_is_taken_over() {
    let stack = Stack::new("lexp");
    stack.use_compose(TRIO);
    let round = write_round(&stack, 1);
    make_lock(&stack, "ghost@elsewhere pid 4243", -30);
    // With --lock-timeout 1s it cannot have waited for the lock to go away by itself.
    let run = stack.deploy(&["--lock-timeout", "1s"]);
    let mut problems = Problems::default();
    problems.check(run.code == Some(0), || {
        format!("deploy over an expired lock\n{}", run.context())
    });
    problems.check(
        run.all()
            .contains("taking over the deploy lock held by ghost@elsewhere pid 4243: it expired"),
        || {
            format!(
                "the deploy does not say it took over the lock\n{}",
                run.context()
            )
        },
    );
    check_trio_on(&stack, 1, &round, &mut problems);
    check_no_lock(&stack, &mut problems);
    problems.assert_none("deploy over an expired lock");
}

// ---------------------------------------------------------------------------------------------
// A TCP proxy in front of the engine's socket, with faults on chosen requests.

/// One HTTP request that went through the proxy.
struct Request {
    /// `POST /v1.41/services/ID/update?version=12`
    line: String,
    /// The whole request: head and body.
    raw: Vec<u8>,
}

impl Request {
    fn method(&self) -> &str {
        self.line.split(' ').next().unwrap_or_default()
    }

    fn path(&self) -> &str {
        self.line.split(' ').nth(1).unwrap_or_default()
    }

    fn body_contains(&self, text: &str) -> bool {
        let body_start = find(&self.raw, b"\r\n\r\n").map_or(self.raw.len(), |i| i + 4);
        find(&self.raw[body_start..], text.as_bytes()).is_some()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// The length of the first complete request in `buffer`, if it holds one (Content-Length or
/// chunked bodies).
fn complete_request(buffer: &[u8]) -> Option<usize> {
    let head_end = find(buffer, b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_lowercase();
    let header = |name: &str| {
        head.lines().find_map(|line| {
            line.strip_prefix(&format!("{name}:"))
                .map(|v| v.trim().to_string())
        })
    };
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut at = head_end;
        loop {
            let line_end = at + find(&buffer[at..], b"\r\n")?;
            let size_text = String::from_utf8_lossy(&buffer[at..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            at = line_end + 2;
            if size == 0 {
                // Trailers, then an empty line.
                loop {
                    let end = at + find(&buffer[at..], b"\r\n")?;
                    let empty = end == at;
                    at = end + 2;
                    if empty {
                        return Some(at);
                    }
                }
            }
            at += size + 2;
            if at > buffer.len() {
                return None;
            }
        }
    }
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (buffer.len() >= head_end + length).then_some(head_end + length)
}

/// What the proxy does to a request a rule matches.
#[derive(Clone)]
enum Fault {
    /// The engine goes away: the request is not forwarded, every connection is closed and the
    /// proxy stops listening (later connections are refused).
    Cut,
    /// This connection is closed without forwarding the request (a transient failure).
    Drop,
    /// `hook` runs with the request, then the request is forwarded.
    Before(Arc<dyn Fn(&Request) + Send + Sync>),
}

struct Rule {
    matches: Box<dyn Fn(&Request) -> bool + Send + Sync>,
    fault: Fault,
    /// How many more matching requests it applies to.
    times: usize,
}

#[derive(Default)]
struct ProxyState {
    rules: Mutex<Vec<Rule>>,
    /// Request lines, in order (never bodies: those hold secret data).
    log: Mutex<Vec<String>>,
    cut: AtomicBool,
    black_hole: bool,
    clients: Mutex<Vec<TcpStream>>,
    engines: Mutex<Vec<UnixStream>>,
}

impl ProxyState {
    fn fault_for(&self, request: &Request) -> Option<Fault> {
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        let rule = rules
            .iter_mut()
            .find(|rule| rule.times > 0 && (rule.matches)(request))?;
        rule.times -= 1;
        Some(rule.fault.clone())
    }

    fn cut_all(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for stream in self
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = stream.shutdown(Shutdown::Both);
        }
        for stream in self
            .engines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// A proxy from 127.0.0.1:<port> to the engine's socket (also used by `registry` to count
/// the engine's distribution lookups).
pub(crate) struct Proxy {
    port: u16,
    state: Arc<ProxyState>,
    accepter: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    pub(crate) fn start() -> Proxy {
        Proxy::with_state(ProxyState::default())
    }

    /// A proxy that accepts connections and never answers.
    fn black_hole() -> Proxy {
        Proxy::with_state(ProxyState {
            black_hole: true,
            ..ProxyState::default()
        })
    }

    fn with_state(state: ProxyState) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let port = listener.local_addr().expect("local address").port();
        let state = Arc::new(state);
        let shared = state.clone();
        let accepter = std::thread::spawn(move || {
            // Dropping the listener when cut refuses every later connection.
            while !shared.cut.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let shared = shared.clone();
                        std::thread::spawn(move || serve(client, &shared));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Proxy {
            port,
            state,
            accepter: Some(accepter),
        }
    }

    /// `tcp://127.0.0.1:<port>`, for `-H`.
    pub(crate) fn host(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    /// Applies `fault` to the next `times` requests that `matches`.
    fn on(
        &self,
        times: usize,
        matches: impl Fn(&Request) -> bool + Send + Sync + 'static,
        fault: Fault,
    ) {
        self.state
            .rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Rule {
                matches: Box::new(matches),
                fault,
                times,
            });
    }

    /// The request lines seen so far.
    pub(crate) fn requests(&self) -> Vec<String> {
        self.state
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn was_cut(&self) -> bool {
        self.state.cut.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.cut_all();
        if let Some(accepter) = self.accepter.take() {
            let _ = accepter.join();
        }
    }
}

/// Serves one client connection: requests are read whole, logged, checked against the rules
/// and forwarded; answers are copied back as they come.
fn serve(client: TcpStream, state: &ProxyState) {
    let _ = client.set_nonblocking(false);
    if state.cut.load(Ordering::SeqCst) {
        let _ = client.shutdown(Shutdown::Both);
        return;
    }
    if let Ok(clone) = client.try_clone() {
        state
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(clone);
    }
    let mut client_read = client;
    if state.black_hole {
        let mut sink = [0u8; 4096];
        while !state.cut.load(Ordering::SeqCst) {
            match client_read.read(&mut sink) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        return;
    }
    let Ok(mut engine) = UnixStream::connect(DOCKER_SOCKET) else {
        let _ = client_read.shutdown(Shutdown::Both);
        return;
    };
    if let Ok(clone) = engine.try_clone() {
        state
            .engines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(clone);
    }
    let (Ok(mut engine_read), Ok(mut client_write)) = (engine.try_clone(), client_read.try_clone())
    else {
        return;
    };
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut engine_read, &mut client_write);
        let _ = client_write.shutdown(Shutdown::Write);
    });
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        while let Some(length) = complete_request(&buffer) {
            let raw: Vec<u8> = buffer.drain(..length).collect();
            let head_end = find(&raw, b"\r\n").unwrap_or(raw.len());
            let line = String::from_utf8_lossy(&raw[..head_end])
                .trim_end_matches(" HTTP/1.1")
                .to_string();
            let request = Request { line, raw };
            state
                .log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(request.line.clone());
            if state.cut.load(Ordering::SeqCst) {
                let _ = client_read.shutdown(Shutdown::Both);
                let _ = engine.shutdown(Shutdown::Both);
                return;
            }
            match state.fault_for(&request) {
                None => {}
                Some(Fault::Cut) => {
                    state.cut_all();
                    return;
                }
                Some(Fault::Drop) => {
                    let _ = client_read.shutdown(Shutdown::Both);
                    let _ = engine.shutdown(Shutdown::Both);
                    return;
                }
                Some(Fault::Before(hook)) => hook(&request),
            }
            if engine.write_all(&request.raw).is_err() {
                let _ = client_read.shutdown(Shutdown::Both);
                return;
            }
        }
        match client_read.read(&mut chunk) {
            Ok(0) | Err(_) => {
                let _ = engine.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Sends `request` to the engine on a connection of its own and returns the status line.
fn send_to_engine(request: &Request) -> String {
    let head_end = find(&request.raw, b"\r\n\r\n").expect("a complete request") + 4;
    let head = String::from_utf8_lossy(&request.raw[..head_end - 4]).into_owned();
    let mut lines: Vec<&str> = head
        .split("\r\n")
        .filter(|line| !line.to_lowercase().starts_with("connection:"))
        .collect();
    lines.push("Connection: close");
    let mut bytes = lines.join("\r\n").into_bytes();
    bytes.extend_from_slice(b"\r\n\r\n");
    bytes.extend_from_slice(&request.raw[head_end..]);
    let mut engine = UnixStream::connect(DOCKER_SOCKET).expect("connect to the engine");
    engine.write_all(&bytes).expect("send to the engine");
    let mut answer = Vec::new();
    let _ = engine.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    answer.lines().next().unwrap_or_default().to_string()
}

/// Whether `request` is the update of the service with ID `id`.
fn is_update_of(request: &Request, id: &str) -> bool {
    request.method() == "POST" && request.path().contains(&format!("/services/{id}/update"))
}

/// The `version=` of a service update request line.
fn update_version(line: &str) -> Option<u64> {
    line.split("version=")
        .nth(1)?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// The names listed after "already written:" in an engine failure's hint.
fn already_written(run: &Run) -> Vec<String> {
    let all = run.all();
    let Some(start) = all.find("already written: ") else {
        return Vec::new();
    };
    let rest = &all[start + "already written: ".len()..];
    let end = rest
        .find("; run the same deploy again")
        .unwrap_or(rest.len());
    let list = &rest[..end];
    if list == "nothing" {
        return Vec::new();
    }
    list.split(", ").map(str::to_string).collect()
}

/// A hook that changes the service (a label) behind stackroll's back, so the request it holds
/// is out of sequence.
fn interloper(service: String) -> Arc<dyn Fn(&Request) + Send + Sync> {
    let count = AtomicUsize::new(0);
    Arc::new(move |_request: &Request| {
        let n = count.fetch_add(1, Ordering::SeqCst);
        docker_ok(&[
            "service",
            "update",
            "--detach",
            "--label-add",
            &format!("io.stackroll.test.interloper={n}"),
            &service,
        ]);
    })
}

// ---------------------------------------------------------------------------------------------
// 3. Update out of sequence.

/// Another writer changes `web` between stackroll's read and its update (deterministically: the
/// proxy holds the update until `docker service update` went through). stackroll reads the
/// service again, sends its spec with the new index once, exits 0, and the services converge.
#[test]
fn faults_out_of_sequence_is_retried() {
    let stack = Stack::new("oseq");
    stack.use_compose(TRIO);
    write_round(&stack, 1);
    stack.deploy_ok(&[]);
    let web = stack.scoped("web");
    let web_id = service_inspect(&web)["ID"]
        .as_str()
        .expect("ID")
        .to_string();
    let round = write_round(&stack, 2);

    let proxy = Proxy::start();
    let id = web_id.clone();
    proxy.on(
        1,
        move |r| is_update_of(r, &id),
        Fault::Before(interloper(web.clone())),
    );
    let run = stack.deploy(&["-H", &proxy.host()]);
    let updates: Vec<String> = proxy
        .requests()
        .into_iter()
        .filter(|line| line.contains(&format!("/services/{web_id}/update")))
        .collect();
    let mut problems = Problems::default();
    problems.check(run.code == Some(0), || format!("exit\n{}", run.context()));
    problems.check(run.all().contains("update out of sequence"), || {
        "stackroll does not say the update was out of sequence".into()
    });
    problems.check(updates.len() == 2, || {
        format!("expected 2 updates of web (out of sequence, then again): {updates:?}")
    });
    let versions: Vec<Option<u64>> = updates.iter().map(|l| update_version(l)).collect();
    problems.check(
        versions.len() == 2 && versions[0].is_some() && versions[1] > versions[0],
        || format!("the second update should carry a newer index: {versions:?}"),
    );
    check_trio_on(&stack, 2, &round, &mut problems);
    check_no_lock(&stack, &mut problems);
    check_plan_empty(&stack, &mut problems);
    problems.assert_none(&format!("out of sequence once\n{}", run.context()));
    assert_references_exist(&stack, "after an out-of-sequence update");
}

/// The other writer made exactly stackroll's change (the proxy sends stackroll's own request
/// first): after "out of sequence" stackroll reads the service, sees the desired spec and does
/// not write again.
#[test]
fn faults_out_of_sequence_with_the_desired_spec_is_not_rewritten() {
    let stack = Stack::new("osame");
    stack.use_compose(TRIO);
    write_round(&stack, 1);
    stack.deploy_ok(&[]);
    let web = stack.scoped("web");
    let web_id = service_inspect(&web)["ID"]
        .as_str()
        .expect("ID")
        .to_string();
    let round = write_round(&stack, 2);

    let proxy = Proxy::start();
    let id = web_id.clone();
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let seen = statuses.clone();
    proxy.on(
        1,
        move |r| is_update_of(r, &id),
        Fault::Before(Arc::new(move |request: &Request| {
            let status = send_to_engine(request);
            seen.lock().unwrap_or_else(|e| e.into_inner()).push(status);
        })),
    );
    let run = stack.deploy(&["-H", &proxy.host()]);
    let updates: Vec<String> = proxy
        .requests()
        .into_iter()
        .filter(|line| line.contains(&format!("/services/{web_id}/update")))
        .collect();
    let statuses = statuses.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(
        statuses.len() == 1 && statuses[0].contains(" 200"),
        "the proxy's own copy of the update: {statuses:?}"
    );
    let mut problems = Problems::default();
    problems.check(run.code == Some(0), || format!("exit\n{}", run.context()));
    problems.check(run.all().contains("update out of sequence"), || {
        "stackroll does not say the update was out of sequence".into()
    });
    problems.check(updates.len() == 1, || {
        format!("stackroll should not update web again, it has the desired spec: {updates:?}")
    });
    check_trio_on(&stack, 2, &round, &mut problems);
    check_plan_empty(&stack, &mut problems);
    problems.assert_none(&format!(
        "out of sequence with the desired spec\n{}",
        run.context()
    ));
    assert_references_exist(&stack, "after an out-of-sequence update");
}

/// Every update of `web` is out of sequence: stackroll gives up after 3 retries (4 requests)
/// with exit 1 naming the service and listing what it already wrote; the next deploy finishes.
#[test]
fn faults_out_of_sequence_gives_up_after_three_retries() {
    let stack = Stack::new("ogive");
    stack.use_compose(TRIO);
    write_round(&stack, 1);
    stack.deploy_ok(&[]);
    let web = stack.scoped("web");
    let web_id = service_inspect(&web)["ID"]
        .as_str()
        .expect("ID")
        .to_string();
    let round = write_round(&stack, 2);

    let proxy = Proxy::start();
    let id = web_id.clone();
    proxy.on(
        usize::MAX,
        move |r| is_update_of(r, &id),
        Fault::Before(interloper(web.clone())),
    );
    let run = stack.deploy(&["-H", &proxy.host()]);
    let updates = proxy
        .requests()
        .into_iter()
        .filter(|line| line.contains(&format!("/services/{web_id}/update")))
        .count();
    drop(proxy);
    run.expect_code(1)
        .expect_contains(&format!(
            "updating service {web} failed: update out of sequence"
        ))
        .expect_contains("run the same deploy again");
    assert_eq!(
        updates,
        4,
        "one update and three retries\n{}",
        run.context()
    );
    let written: BTreeSet<String> = already_written(&run).into_iter().collect();
    let expected: BTreeSet<String> = [
        versioned(&stack, "db", 2),
        versioned(&stack, "conf", 2),
        stack.scoped("worker"),
        stack.scoped("cron"),
    ]
    .into();
    assert_eq!(written, expected, "\"already written\"\n{}", run.context());
    assert_eq!(
        referenced_names(&service_inspect(&web)["Spec"], "secret"),
        BTreeSet::from([versioned(&stack, "db", 1)]),
        "web was never updated"
    );
    assert_references_exist(&stack, "after giving up");
    let mut problems = Problems::default();
    check_no_lock(&stack, &mut problems);

    let rerun = stack.deploy(&[]);
    problems.check(rerun.code == Some(0), || {
        format!("rerun\n{}", rerun.context())
    });
    check_trio_on(&stack, 2, &round, &mut problems);
    check_plan_empty(&stack, &mut problems);
    problems.assert_none("after the rerun");
}

/// Best effort, the race as it happens: `docker service update --label-add` on `web` in a tight
/// loop while stackroll rotates the secret. stackroll must exit 0 and every service must run
/// the new version when it says so, whether or not the race hit this time.
#[test]
fn faults_out_of_sequence_tight_loop() {
    let stack = Stack::new("oloop");
    stack.use_compose(TRIO);
    write_round(&stack, 1);
    stack.deploy_ok(&[]);
    let web = stack.scoped("web");
    let round = write_round(&stack, 2);

    let stop = Arc::new(AtomicBool::new(false));
    let (done, refused) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let looper = {
        let (stop, done, refused, web) = (stop.clone(), done.clone(), refused.clone(), web.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let output = docker(&[
                    "service",
                    "update",
                    "--detach",
                    "--label-add",
                    &format!("io.stackroll.test.loop={n}"),
                    &web,
                ]);
                if output.status.success() {
                    done.fetch_add(1, Ordering::SeqCst);
                } else {
                    refused.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
    };
    // Let the loop get going, then deploy while it runs; stop it as soon as stackroll returns.
    wait_for("the label loop to start", WAIT, || {
        (done.load(Ordering::SeqCst) > 0).then_some(())
    });
    let run = stack.deploy(&[]);
    stop.store(true, Ordering::SeqCst);
    looper.join().expect("label loop");
    let hit = run
        .all()
        .matches("update out of sequence; reading the service again")
        .count();
    eprintln!(
        "faults_out_of_sequence_tight_loop: {} label updates went through, {} were refused; stackroll retried {hit} time(s)",
        done.load(Ordering::SeqCst),
        refused.load(Ordering::SeqCst)
    );
    let mut problems = Problems::default();
    problems.check(run.code == Some(0), || format!("exit\n{}", run.context()));
    check_trio_on(&stack, 2, &round, &mut problems);
    check_no_lock(&stack, &mut problems);
    problems.assert_none(&format!("deploy racing a label loop\n{}", run.context()));
    assert_references_exist(&stack, "after racing a label loop");
}

// ---------------------------------------------------------------------------------------------
// 4. After a rolled-back deploy.

/// With `--keep 0`: a deploy whose new content fails the healthcheck exits 3 and prunes nothing
/// (v1, which a successful deploy would delete, stays); the old content again reuses v2 with no
/// new object; a third, good content gets a new version and converges.
#[test]
fn faults_failed_rollout_follow_up() {
    let stack = Stack::new("frb");
    stack.use_compose("healthcheck/compose.yaml");
    let app = stack.scoped("app");
    let v = |n: u64| versioned(&stack, "db", n);
    let keep = ["--keep", "0"];
    stack.write_secret("db.txt", "good1");
    stack.deploy_ok(&keep);
    let good2 = stack.write_secret("db.txt", "good2");
    stack.deploy_ok(&keep);
    // v1 stays only because PreviousSpec references it.
    assert_eq!(stack.objects("secret"), BTreeSet::from([v(1), v(2)]));

    stack.write_secret("db.txt", "bad");
    let plan = stack.plan(&[]);
    plan.expect_contains(&format!("+ secret {}", v(3)));
    let failed = stack.deploy(&keep);
    failed.expect_code(3).expect_contains("nothing was pruned");
    // A successful deploy with --keep 0 would have deleted v1 (unreferenced once v3 runs and v2
    // is the previous spec).
    assert_eq!(
        stack.objects("secret"),
        BTreeSet::from([v(1), v(2), v(3)]),
        "after the failed rollout nothing is pruned"
    );
    let state = wait_for("the rollback to finish", WAIT, || {
        let state = update_state(&app);
        (state != "rollback_started" && state != "updating").then_some(state)
    });
    assert_eq!(
        state, "rollback_completed",
        "UpdateStatus.State after the failed deploy"
    );
    assert_references_exist(&stack, "after the rollback");
    let mut problems = Problems::default();
    check_no_lock(&stack, &mut problems);
    problems.assert_none("after the failed rollout");

    // Back to good2: v2 again, nothing created.
    let ids_before = object_ids(&stack, "secret");
    std::fs::write(stack.path("db.txt"), &good2).expect("write db.txt");
    let revert = stack.deploy(&keep);
    revert.expect_code(0);
    let ids_after = object_ids(&stack, "secret");
    let created: Vec<&String> = ids_after
        .values()
        .filter(|id| !ids_before.values().any(|old| old == *id))
        .collect();
    assert!(
        created.is_empty(),
        "reverting the content created a new object\n{}",
        revert.context()
    );
    assert_eq!(
        referenced_names(&service_inspect(&app)["Spec"], "secret"),
        BTreeSet::from([v(2)]),
        "the reverted content uses v2\n{}",
        revert.context()
    );
    wait_for_content(&app, "/run/secrets/db", &good2);
    assert_references_exist(&stack, "after reverting");
    eprintln!(
        "faults_failed_rollout_follow_up: after reverting with --keep 0 the secrets are {:?}",
        ids_after.keys().collect::<Vec<_>>()
    );

    // A third, good content: a new object, used and converged.
    let seen: BTreeSet<String> = ids_before.values().cloned().collect();
    let good3 = stack.write_secret("db.txt", "good3");
    let run = stack.deploy(&keep);
    run.expect_code(0);
    let refs = reference_ids(
        &service_inspect(&app)["Spec"]["TaskTemplate"]["ContainerSpec"],
        "secret",
    );
    let [(name, id)] = refs.iter().collect::<Vec<_>>()[..] else {
        panic!("one secret reference expected: {refs:?}");
    };
    assert!(
        !seen.contains(id) && run.all().contains(&format!("created secret {name}")),
        "the third content should get a new object, not {name} ({id})\n{}",
        run.context()
    );
    let version: u64 = labels_of("secret", name)["io.stackroll.version"]
        .parse()
        .expect("a version label");
    assert_version_labels(&stack, "secret", "db", version);
    wait_for_content(&app, "/run/secrets/db", &good3);
    let mut problems = Problems::default();
    let state = not_converged_secret_only(&app, name);
    problems.check(state.is_none(), || format!("{state:?}"));
    check_no_lock(&stack, &mut problems);
    check_plan_empty(&stack, &mut problems);
    problems.assert_none(&format!("after the third content\n{}", run.context()));
    assert_references_exist(&stack, "after the third content");
}

/// Name → ID of the stack's secrets or configs.
fn object_ids(stack: &Stack, kind: &str) -> std::collections::BTreeMap<String, String> {
    stack
        .objects(kind)
        .into_iter()
        .filter_map(|name| object_id(kind, &name).map(|id| (name, id)))
        .collect()
}

/// "N starts at 1 and grows by one per new content" (README): a version number is never given
/// to a second content. db: A (v1), B (v2), A again (v1 reused), a service change with --keep 0
/// (v2 is unreferenced, but it is the highest version, so it stays: it is what the next number
/// counts from), then C must be v3.
#[test]
fn faults_version_numbers_are_not_reused_after_a_prune() {
    let stack = Stack::new("vnum");
    stack.use_compose("prune/compose.without-extra.yaml");
    let app = stack.scoped("app");
    let v = |n: u64| versioned(&stack, "db", n);
    let a = stack.write_secret("db.txt", "a");
    stack.deploy_ok(&[]);
    stack.write_secret("db.txt", "b");
    stack.deploy_ok(&["--detach"]);
    std::fs::write(stack.path("db.txt"), &a).expect("write db.txt");
    stack
        .deploy_ok(&["--detach"])
        .expect_contains(&format!("switching back to {}", v(1)));
    stack.set_env("E2E_STEP", "1");
    stack.deploy_ok(&["--keep", "0"]);
    assert_eq!(
        stack.objects("secret"),
        BTreeSet::from([v(1), v(2)]),
        "v1 in use; v2 unreferenced but the highest version, kept even with --keep 0"
    );
    let c = stack.write_secret("db.txt", "c");
    let run = stack.deploy_ok(&["--keep", "0"]);
    wait_for_content(&app, "/run/secrets/db", &c);
    assert_eq!(
        referenced_names(&service_inspect(&app)["Spec"], "secret"),
        BTreeSet::from([v(3)]),
        "a third content must get v3: v2 already named the content b\n{}",
        run.context()
    );
    // Now v3 is the highest and in use: v2 is an ordinary superseded version and goes; v1
    // stays while the previous spec references it.
    assert_eq!(
        stack.objects("secret"),
        BTreeSet::from([v(1), v(3)]),
        "after the third content with --keep 0"
    );
}

/// The references check itself can fail: Swarm lets a secret that only a PreviousSpec
/// references be deleted, and the check must then name it.
#[test]
fn faults_reference_check_finds_a_missing_secret() {
    let stack = Stack::new("vchk");
    stack.use_compose("prune/compose.without-extra.yaml");
    stack.write_secret("db.txt", "one");
    stack.deploy_ok(&[]);
    stack.write_secret("db.txt", "two");
    stack.deploy_ok(&[]);
    let v1 = versioned(&stack, "db", 1);
    assert_references_exist(&stack, "before deleting v1");
    docker_ok(&["secret", "rm", &v1]);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert_references_exist(&stack, "after deleting v1")
    }));
    let message = match outcome {
        Ok(_) => panic!("the check passed although {v1}, referenced by PreviousSpec, is gone"),
        Err(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default(),
    };
    assert!(
        message.contains(&format!("references secret {v1}")) && message.contains("PreviousSpec"),
        "the check's message: {message}"
    );
}

/// [`not_converged`] for a service with one secret and no config.
fn not_converged_secret_only(service: &str, secret: &str) -> Option<String> {
    let value = service_inspect(service);
    let state = value["UpdateStatus"]["State"].as_str().unwrap_or_default();
    if !(state.is_empty() || state == "completed") {
        return Some(format!("{service}: UpdateStatus.State is {state:?}"));
    }
    let tasks = running_task_ids(service);
    let [task] = tasks.as_slice() else {
        return Some(format!("{service}: {} tasks meant to run", tasks.len()));
    };
    let task = task_inspect(task);
    let names: BTreeSet<String> = reference_ids(&task["Spec"]["ContainerSpec"], "secret")
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    (task["Status"]["State"] != "running" || names != BTreeSet::from([secret.to_string()]))
        .then(|| format!("{service}: task {} with {names:?}", task["Status"]["State"]))
}

// ---------------------------------------------------------------------------------------------
// 5. The engine goes away.

/// Deploys round 3 through a proxy that is cut at the first request `matches` accepts: exit 1
/// with a message that names what failed, lists what was already written (all of which exists)
/// and says to run again; no value leaks; the references invariant holds. Then, through a new
/// proxy, `stackroll unlock` (the lock could not be released) and the same deploy finish.
fn engine_cut(
    tag: &str,
    during: &str,
    monitor: &str,
    matches: impl Fn(&Request) -> bool + Send + Sync + 'static,
) {
    let stack = Stack::new(tag);
    trio_at_round_2(&stack);
    stack.set_env("E2E_MONITOR", monitor);
    let round = write_round(&stack, 3);

    let proxy = Proxy::start();
    proxy.on(1, matches, Fault::Cut);
    let host = proxy.host();
    let run = stack.deploy(&["--keep", "1", "-H", &host]);
    assert!(
        proxy.was_cut(),
        "the proxy was never cut\n{}",
        run.context()
    );
    let requests = proxy.requests();
    drop(proxy);
    run.expect_code(1)
        .expect_contains(&format!("error: {during}"))
        .expect_contains(&format!("failed: cannot reach the Docker engine at {host}"))
        .expect_contains("run the same deploy again");
    let written = already_written(&run);
    let mut problems = Problems::default();
    let services = stack.objects("service");
    for name in &written {
        let exists = if services.contains(name) {
            referenced_names(&service_inspect(name)["Spec"], "secret")
                .contains(&versioned(&stack, "db", 3))
        } else {
            object_exists("secret", name) || object_exists("config", name)
        };
        problems.check(exists, || {
            format!("\"already written\" lists {name}, which is not there")
        });
    }
    problems.assert_none(&format!("after the engine went away\n{}", run.context()));
    let checked =
        assert_references_exist(&stack, &format!("after the engine went away ({during})"));
    eprintln!(
        "engine cut during {during:?} after {} requests: already written {written:?}; {checked} references exist",
        requests.len()
    );
    // The lock could not be released: stackroll says so and how to remove it, with the
    // engine flag the deploy was given.
    let lock_left = lock_holder(&stack).is_some();
    if lock_left {
        run.expect_contains(&format!("stackroll -H {host} unlock {}", stack.name));
    }

    // The engine is back (another port): unlock, then the same deploy finishes.
    let proxy = Proxy::start();
    let host = proxy.host();
    if lock_left {
        stack
            .stackroll(&["unlock", "-H", &host, &stack.name])
            .expect_code(0);
    }
    let rerun = stack.deploy(&["--keep", "1", "-H", &host]);
    let mut problems = Problems::default();
    check_recovered_at_round_3(&stack, &rerun, &round, &mut problems);
    problems.assert_none(&format!(
        "the deploy after the engine came back\n{}",
        rerun.context()
    ));
}

/// The engine goes away at the first secret or config creation (not the lock's).
#[test]
fn faults_engine_gone_while_creating_objects() {
    engine_cut("ecreate", "creating ", "5s", |r| {
        r.method() == "POST"
            && (r.path().contains("/secrets/create") || r.path().contains("/configs/create"))
            && !r.body_contains("stackroll-lock")
    });
}

/// The engine goes away at the first service update.
#[test]
fn faults_engine_gone_while_updating_services() {
    engine_cut("eupdate", "updating service ", "5s", |r| {
        r.method() == "POST" && r.path().contains("/services/") && r.path().contains("/update")
    });
}

/// The engine goes away while stackroll waits for the rollout (its first task list); Swarm
/// monitors these updates for 25 s, so they are still going when the next deploy runs.
#[test]
fn faults_engine_gone_while_waiting() {
    engine_cut("ewait", "waiting for services to converge", "25s", |r| {
        r.method() == "GET" && r.path().contains("/tasks")
    });
}

/// The engine goes away at the first deletion of an old version (a secret: prune deletes
/// secrets first; the replaced content seal, a config, goes earlier, right after the new
/// versions are created).
#[test]
fn faults_engine_gone_while_pruning() {
    engine_cut("eprune", "deleting ", "5s", |r| {
        r.method() == "DELETE" && r.path().contains("/secrets/")
    });
}

/// Reads are retried: the proxy drops the connection of the first two task lists of `web`
/// (stackroll tries a read three times), and the deploy still succeeds.
#[test]
fn faults_dropped_reads_are_retried() {
    let stack = Stack::new("eretry");
    stack.use_compose(TRIO);
    write_round(&stack, 1);
    stack.deploy_ok(&[]);
    let web_id = service_inspect(&stack.scoped("web"))["ID"]
        .as_str()
        .expect("ID")
        .to_string();
    let round = write_round(&stack, 2);
    let proxy = Proxy::start();
    let id = web_id.clone();
    proxy.on(
        2,
        move |r| r.method() == "GET" && r.path().contains("/tasks") && r.path().contains(&id),
        Fault::Drop,
    );
    let run = stack.deploy(&["-H", &proxy.host()]);
    let task_lists = proxy
        .requests()
        .into_iter()
        .filter(|l| l.starts_with("GET") && l.contains("/tasks") && l.contains(&web_id))
        .count();
    let mut problems = Problems::default();
    problems.check(run.code == Some(0), || format!("exit\n{}", run.context()));
    problems.check(task_lists >= 3, || {
        format!("expected the dropped task lists to be read again: {task_lists} requests")
    });
    check_trio_on(&stack, 2, &round, &mut problems);
    check_no_lock(&stack, &mut problems);
    problems.assert_none(&format!("dropped reads\n{}", run.context()));
}

/// Nothing listens: plan, deploy and unlock exit 1 within seconds, naming the address, with the
/// hint to start Docker; nothing is written.
#[test]
fn faults_unreachable_engine_at_start() {
    let stack = Stack::new("edown");
    stack.use_compose(TRIO);
    write_round(&stack, 1);
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let host = format!("tcp://127.0.0.1:{port}");
    let deploy = stack.deploy_args(&["-H", &host]);
    let plan: Vec<&str> = vec!["plan", "-H", &host, &stack.name];
    let unlock: Vec<&str> = vec!["unlock", "-H", &host, &stack.name];
    for args in [deploy, plan, unlock] {
        let run = stack.stackroll(&args);
        run.expect_code(1)
            .expect_contains(&format!("cannot reach the Docker engine at {host}"))
            .expect_contains("start Docker");
        assert!(
            run.elapsed < Duration::from_secs(10),
            "an unreachable engine took {:?} to report\n{}",
            run.elapsed,
            run.context()
        );
    }
    assert!(stack.objects("secret").is_empty(), "secrets were created");
    assert!(stack.objects("service").is_empty(), "services were created");
    assert_eq!(lock_holder(&stack), None, "a lock was created");
}

/// An engine that accepts connections and never answers: stackroll has no request-timeout
/// flag, but gives up after its per-request timeout (120 s) with exit 1 instead of hanging.
#[test]
fn faults_engine_that_never_answers() {
    let stack = Stack::new("ehang");
    stack.use_compose(TRIO);
    write_round(&stack, 1);
    let proxy = Proxy::black_hole();
    let host = proxy.host();
    let started = Instant::now();
    let run = stack.stackroll(&["plan", "-H", &host, &stack.name]);
    run.expect_code(1)
        .expect_contains(&format!("cannot reach the Docker engine at {host}"));
    assert!(
        started.elapsed() < Duration::from_secs(200),
        "took {:?}\n{}",
        started.elapsed(),
        run.context()
    );
    let error = run
        .all()
        .lines()
        .find(|line| line.starts_with("error:"))
        .unwrap_or_default()
        .to_string();
    eprintln!(
        "faults_engine_that_never_answers: gave up after {:.1}s: {error}",
        run.elapsed.as_secs_f64()
    );
}

/// A deploy with nothing to do sends the engine reads only: no create, update or delete, not
/// even of the deploy lock, and the content seal stands in for the per-secret checks. A
/// deploy with something to do takes the lock.
#[test]
fn faults_noop_deploy_sends_only_reads() {
    let stack = Stack::new("nowr");
    stack.use_compose(TRIO);
    write_round(&stack, 1);
    stack.deploy_ok(&[]);

    let proxy = Proxy::start();
    let run = stack.deploy(&["-H", &proxy.host()]);
    let requests = proxy.requests();
    let writes: Vec<&String> = requests
        .iter()
        .filter(|line| !line.starts_with("GET ") && !line.starts_with("HEAD "))
        .collect();
    let mut problems = Problems::default();
    problems.check(
        run.code == Some(0) && run.stdout.contains("No changes"),
        || format!("no-op deploy\n{}", run.context()),
    );
    problems.check(writes.is_empty(), || {
        format!("a no-op deploy wrote: {writes:?}")
    });
    problems.check(run.all().contains("content seal verified"), || {
        format!("the no-op did not use the content seal\n{}", run.context())
    });
    problems.assert_none("no-op deploy through the proxy");

    // With a change, the same path takes and releases the lock around its writes.
    write_round(&stack, 2);
    let proxy = Proxy::start();
    let run = stack.deploy(&["-H", &proxy.host()]);
    let requests = proxy.requests();
    let lock_create = requests
        .iter()
        .position(|line| line.starts_with("POST ") && line.contains("/configs/create"));
    let first_other_write = requests
        .iter()
        .position(|line| line.starts_with("POST ") && !line.contains("/configs/create"));
    let mut problems = Problems::default();
    problems.check(run.code == Some(0), || format!("deploy\n{}", run.context()));
    problems.check(
        matches!((lock_create, first_other_write), (Some(a), Some(b)) if a < b),
        || format!("the lock (a config) is created before any other write: {requests:?}"),
    );
    check_no_lock(&stack, &mut problems);
    problems.assert_none(&format!("deploy with changes\n{}", run.context()));
}

// ---------------------------------------------------------------------------------------------
// 6. Who holds the lock, for how long, and what a signal does to a deploy holding it.

/// Creates the stack's lock by hand with a lease: `lease_secs` of validity counted from the
/// engine's own UpdatedAt of the lock, `expires_in_secs` the legacy local-clock expiry, and
/// `identity` the machine-readable holder identity (none: written by an unknown holder).
fn make_lease_lock(
    stack: &Stack,
    holder: &str,
    identity: Option<&str>,
    lease_secs: u64,
    expires_in_secs: i64,
) {
    let file = stack.path("lock.txt");
    std::fs::write(&file, "stackroll deploy lock").expect("write lock.txt");
    let now = now_secs();
    let mut args = vec![
        "config".to_string(),
        "create".to_string(),
        "--label".to_string(),
        format!("io.stackroll.lock.holder={holder}"),
        "--label".to_string(),
        format!("io.stackroll.lock.since={}", now - 60),
        "--label".to_string(),
        format!("io.stackroll.lock.expires={}", now + expires_in_secs),
        "--label".to_string(),
        format!("io.stackroll.lock.lease={lease_secs}"),
    ];
    if let Some(identity) = identity {
        args.push("--label".to_string());
        args.push(format!("io.stackroll.lock.identity={identity}"));
    }
    args.push(lock_name(stack));
    args.push(file.to_str().expect("UTF-8 path").to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    docker_ok(&args);
}

/// The pid of a process that has just ended.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true")
        .spawn()
        .expect("spawn true");
    let pid = child.id();
    child.wait().expect("wait for true");
    pid
}

/// Sends `signal` (`TERM`, `INT`) to `pid`.
fn send_signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// A lock that names this host and a pid that is gone, but carries no identity a deploy can
/// check (another container or machine with the same hostname could hold it), is never judged
/// dead: a deploy waits `--lock-timeout` and exits 1 naming it, and writes nothing.
#[test]
fn faults_lock_of_unknown_identity_is_not_taken_over() {
    let stack = Stack::new("lident");
    stack.use_compose(TRIO);
    write_round(&stack, 1);
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let holder = format!("{user}@{} pid {}", host.trim(), dead_pid());
    make_lease_lock(&stack, &holder, None, 3600, 3600);

    let blocked = stack.deploy(&["--lock-timeout", "2s"]);
    blocked
        .expect_code(1)
        .expect_contains(&holder)
        .expect_contains("holds the lock");
    assert!(
        stack.objects("secret").is_empty(),
        "a deploy took over a lock whose holder it cannot identify\n{}",
        blocked.context()
    );
    assert_eq!(lock_holder(&stack).as_deref(), Some(holder.as_str()));
}

/// Expiry is judged on the engine's clock: a lock whose legacy local-clock expiry is long past
/// (written by a host whose clock runs slow) but whose lease, counted from the engine's
/// UpdatedAt, still runs is not taken over.
#[test]
fn faults_lease_is_judged_on_the_engine_clock() {
    let stack = Stack::new("lclock");
    stack.use_compose(TRIO);
    write_round(&stack, 1);
    let ghost = "ghost@slowclock pid 4244";
    make_lease_lock(&stack, ghost, None, 3600, -600);
    let blocked = stack.deploy(&["--lock-timeout", "2s"]);
    blocked.expect_code(1).expect_contains(ghost);
    assert!(stack.objects("secret").is_empty(), "the deploy wrote");
    assert_eq!(lock_holder(&stack).as_deref(), Some(ghost));
}

/// SIGTERM while a deploy holds the lock and waits for a slow rollout: it stops writing, gives
/// the lock back, says what it wrote and exits 143; the next deploy converges. SIGINT while a
/// deploy waits for another's lock: exit 130 at once, nothing written, the other lock kept.
#[test]
fn faults_sigterm_and_sigint_release_the_lock() {
    let stack = Stack::new("lsig");
    stack.use_compose("faults/slow.yaml");
    stack.write_secret("db.txt", "db1");
    stack.deploy_ok(&[]);
    let app = stack.scoped("app");
    let db2 = stack.write_secret("db.txt", "db2");

    let mut holder = stack.spawn(&stack.deploy_args(&[]), &[]);
    holder.wait_for_output(&format!("updated service {app}"), Duration::from_secs(60));
    assert!(lock_holder(&stack).is_some(), "the deploy holds the lock");
    send_signal(holder.pid(), "TERM");
    let stopped = holder.finish();
    stopped
        .expect_code(143)
        .expect_contains("interrupted by SIGTERM")
        .expect_contains(&format!("service {app}"));
    assert!(
        stopped.elapsed < Duration::from_secs(14),
        "SIGTERM did not stop the rollout wait ({:?})",
        stopped.elapsed
    );
    let mut problems = Problems::default();
    check_no_lock(&stack, &mut problems);
    problems.assert_none(&format!("after SIGTERM\n{}", stopped.context()));
    let next = stack.deploy_ok(&[]);
    next.expect_code(0);
    wait_for_content(&app, "/run/secrets/db", &db2);
    stack.deploy_ok(&[]).expect_contains("No changes");

    let ghost = "ghost@elsewhere pid 4245";
    make_lease_lock(&stack, ghost, None, 3600, 3600);
    stack.write_secret("db.txt", "db3");
    let secrets = stack.objects("secret");
    let mut waiting = stack.spawn(&stack.deploy_args(&["--lock-timeout", "60s"]), &[]);
    waiting.wait_for_output("waiting for the deploy lock", Duration::from_secs(30));
    send_signal(waiting.pid(), "INT");
    let stopped = waiting.finish();
    stopped
        .expect_code(130)
        .expect_contains("interrupted by SIGINT")
        .expect_contains("nothing was written");
    assert!(stopped.elapsed < Duration::from_secs(30));
    assert_eq!(
        stack.objects("secret"),
        secrets,
        "the interrupted deploy wrote"
    );
    assert_eq!(
        lock_holder(&stack).as_deref(),
        Some(ghost),
        "another's lock kept"
    );
}

/// A deploy with nothing to do while another deploy holds the lock does not answer "No
/// changes" from what it saw before that deploy writes: it waits for the lock like a deploy
/// with changes (exit 1 after `--lock-timeout`, naming the holder), and once the lock is given
/// back it plans again and only then reports.
#[test]
fn faults_noop_deploy_waits_for_a_held_lock() {
    let stack = Stack::new("lnoop");
    stack.use_compose(TRIO);
    write_round(&stack, 1);
    stack.deploy_ok(&[]);
    let ghost = "ghost@elsewhere pid 4247";
    make_lease_lock(&stack, ghost, None, 3600, 3600);

    let blocked = stack.deploy(&["--lock-timeout", "2s"]);
    blocked
        .expect_code(1)
        .expect_contains(ghost)
        .expect_contains("holds the lock");
    assert!(
        !blocked.stdout.contains("No changes"),
        "a no-op deploy answered while another held the lock\n{}",
        blocked.context()
    );

    let name = stack.name.clone();
    let unlocker = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(3));
        crate::command::stackroll_command(std::path::Path::new("/"))
            .args(["unlock", &name])
            .output()
            .expect("run stackroll unlock")
    });
    let waited = stack.deploy(&["--lock-timeout", "60s"]);
    let unlocked = unlocker.join().expect("unlock thread");
    assert!(unlocked.status.success(), "unlock failed");
    waited.expect_code(0).expect_contains("No changes");
    assert!(
        waited.elapsed >= Duration::from_secs(3),
        "the no-op deploy did not wait for the lock ({:?})\n{}",
        waited.elapsed,
        waited.context()
    );
    let mut problems = Problems::default();
    check_no_lock(&stack, &mut problems);
    problems.assert_none("after the no-op deploy");
}

/// `stackroll rm` takes the deploy lock too: while another holds it, rm waits `--lock-timeout`,
/// exits 1 naming the holder and removes nothing.
#[test]
fn faults_rm_waits_for_the_deploy_lock() {
    let stack = Stack::new("lrm");
    stack.use_compose(TRIO);
    write_round(&stack, 1);
    stack.deploy_ok(&[]);
    let services = stack.objects("service");
    let ghost = "ghost@elsewhere pid 4246";
    make_lease_lock(&stack, ghost, None, 3600, 3600);
    let blocked = stack.stackroll(&["rm", "--lock-timeout", "2s", &stack.name]);
    blocked
        .expect_code(1)
        .expect_contains(ghost)
        .expect_contains("holds the lock");
    assert_eq!(stack.objects("service"), services, "rm removed services");
    // SIGTERM while rm waits for the lock: exit 143 at once, nothing removed, the lock kept.
    let mut waiting = stack.spawn(&["rm", "--lock-timeout", "60s", &stack.name], &[]);
    waiting.wait_for_output("waiting for the deploy lock", Duration::from_secs(30));
    send_signal(waiting.pid(), "TERM");
    let stopped = waiting.finish();
    stopped
        .expect_code(143)
        .expect_contains("interrupted by SIGTERM")
        .expect_contains("nothing was written");
    assert!(stopped.elapsed < Duration::from_secs(30));
    assert_eq!(stack.objects("service"), services, "rm removed services");
    assert_eq!(
        lock_holder(&stack).as_deref(),
        Some(ghost),
        "another's lock kept"
    );
    stack.stackroll(&["unlock", &stack.name]).expect_code(0);
    stack
        .stackroll(&["rm", "--lock-timeout", "2s", &stack.name])
        .expect_code(0);
    assert!(stack.objects("service").is_empty(), "rm removed nothing");
    let mut problems = Problems::default();
    check_no_lock(&stack, &mut problems);
    problems.assert_none("after rm");
}

/// The lock's UpdatedAt, on the engine's clock (changes on every renewal).
fn lock_updated_at(stack: &Stack) -> String {
    let output = std::process::Command::new("docker")
        .args(["config", "inspect", "--format", "{{.UpdatedAt}}"])
        .arg(lock_name(stack))
        .output()
        .expect("docker config inspect");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A deploy that works longer than a third of its lock's 60 s lease renews the lease on the
/// real swarm (the lock config is relabelled, so its UpdatedAt moves) while it still holds it,
/// and releases the lock at the end.
#[test]
fn faults_a_long_deploy_renews_its_lease() {
    let stack = Stack::new("lrenew");
    stack.use_compose("faults/slower.yaml");
    stack.write_secret("db.txt", "db1");
    stack.deploy_ok(&["--detach"]);
    let app = stack.scoped("app");
    stack.write_secret("db.txt", "db2");

    let mut holder = stack.spawn(&stack.deploy_args(&[]), &[]);
    holder.wait_for_output(&format!("updated service {app}"), Duration::from_secs(60));
    let first = lock_updated_at(&stack);
    let taken = std::time::Instant::now();
    let mut renewed = None;
    while renewed.is_none() && taken.elapsed() < Duration::from_secs(40) && !holder.has_exited() {
        std::thread::sleep(Duration::from_millis(500));
        let now = lock_updated_at(&stack);
        if now != first {
            renewed = Some(now);
        }
    }
    assert!(
        renewed.is_some(),
        "the lock taken at {first} was not renewed within {:?} (holder exited: {})",
        taken.elapsed(),
        holder.has_exited()
    );
    assert!(
        lock_holder(&stack).is_some_and(|label| label.ends_with(&format!(" pid {}", holder.pid()))),
        "the renewed lock still names the deploy"
    );
    holder.finish().expect_code(0);
    let mut problems = Problems::default();
    check_no_lock(&stack, &mut problems);
    problems.assert_none("after the long deploy");
}

/// SIGINT while `stackroll rm` removes (its service takes 20 s to stop, so rm waits for the
/// stack's network to be free): rm stops, gives its lock back, names what it removed and exits
/// 130; the next rm finishes the job.
#[test]
fn faults_rm_interrupted_while_removing_releases_the_lock() {
    let stack = Stack::new("lrmint");
    stack.use_compose("faults/stubborn.yaml");
    stack.write_secret("db.txt", "db1");
    stack.deploy_ok(&[]);
    let app = stack.scoped("app");
    let mut removing = stack.spawn(&["rm", &stack.name], &[]);
    removing.wait_for_output(&format!("deleted service {app}"), Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !removing.has_exited(),
        "rm finished before the signal: the test proves nothing"
    );
    send_signal(removing.pid(), "INT");
    let stopped = removing.finish();
    stopped
        .expect_code(130)
        .expect_contains("interrupted by SIGINT")
        .expect_contains(&format!("service {app}"));
    assert!(
        stopped.elapsed < Duration::from_secs(15),
        "{:?}",
        stopped.elapsed
    );
    let mut problems = Problems::default();
    check_no_lock(&stack, &mut problems);
    problems.assert_none(&format!("after SIGINT\n{}", stopped.context()));
    stack.stackroll(&["rm", &stack.name]).expect_code(0);
    assert!(
        stack.objects("secret").is_empty(),
        "the second rm finished the job"
    );
}
