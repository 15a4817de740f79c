//! End-to-end tests: stackroll against the real local swarm (`scripts/dev-swarm.sh up`), with
//! the `docker` CLI as the oracle. The harness (stacks, leak-checked runs, docker helpers) is in
//! `tests/support/`; the fault tests (crashes, locks, engine failures) are in `faults.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command as StdCommand;

use base64::Engine as _;
use serde_json::Value;

use crate::docker::*;
use crate::leaks::*;
use crate::stack::*;

// ---------------------------------------------------------------------------------------------
// The tests.

/// 1. A first deploy creates `<stack>_<key>_v1` with stackroll's labels, and the container
///    reads the secret at its default target and at custom absolute targets, with the mode,
///    owner and group asked for.
#[test]
fn e2e_first_deploy() {
    let stack = Stack::new("first");
    stack.use_compose("basic/compose.yaml");
    let db = stack.write_secret("db.txt", "db");
    let api = stack.write_secret("api.txt", "api");

    let run = stack.deploy_ok(&[]);
    run.expect_contains(&format!("{}_db_v1", stack.name));

    let app = stack.scoped("app");
    let secrets = stack.objects("secret");
    let expected: BTreeSet<String> = [stack.scoped("api_v1"), stack.scoped("db_v1")].into();
    assert_eq!(secrets, expected, "the stack's secrets");
    assert_version_labels(&stack, "secret", "db", 1);
    assert_version_labels(&stack, "secret", "api", 1);
    for name in &secrets {
        let fingerprint = labels_of("secret", name)["io.stackroll.fingerprint"].clone();
        assert!(
            leaks_in(&fingerprint).is_empty(),
            "{name}: the fingerprint label contains the value or a plain digest of it"
        );
    }

    let spec = &service_inspect(&app)["Spec"];
    let refs = references(spec, "secret");
    let files: Vec<(String, String, String, String, u64)> = refs
        .iter()
        .map(|(name, file)| {
            (
                name.clone(),
                file["Name"].as_str().unwrap_or_default().to_string(),
                file["UID"].as_str().unwrap_or_default().to_string(),
                file["GID"].as_str().unwrap_or_default().to_string(),
                file["Mode"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        files,
        vec![
            (
                stack.scoped("api_v1"),
                "/etc/app/api.key".into(),
                "1000".into(),
                "1000".into(),
                0o400
            ),
            (
                stack.scoped("db_v1"),
                "/etc/app/db.conf".into(),
                "0".into(),
                "0".into(),
                0o440
            ),
            (
                stack.scoped("db_v1"),
                "db".into(),
                "0".into(),
                "0".into(),
                0o444
            ),
        ],
        "secret references of {app}"
    );

    assert_same_value(
        &read_in_service(&app, "/run/secrets/db"),
        &db,
        "/run/secrets/db",
    );
    assert_same_value(
        &read_in_service(&app, "/etc/app/db.conf"),
        &db,
        "/etc/app/db.conf",
    );
    assert_same_value(
        &read_in_service(&app, "/etc/app/api.key"),
        &api,
        "/etc/app/api.key",
    );
    // Swarm writes one file per secret ID, so the mode of a secret mounted at two targets is
    // not well defined; api is mounted once.
    assert_eq!(stat_in_service(&app, "/etc/app/api.key"), "400 1000 1000");
}

/// 2. Rotation: new content gives `<stack>_db_v2`, the service moves to it at the same
///    targets, and the running container reads the new value.
#[test]
fn e2e_rotation() {
    let stack = Stack::new("rot");
    stack.use_compose("basic/compose.yaml");
    stack.write_secret("db.txt", "db1");
    stack.write_secret("api.txt", "api");
    stack.deploy_ok(&[]);
    let app = stack.scoped("app");
    let before = references(&service_inspect(&app)["Spec"], "secret");

    let db2 = stack.write_secret("db.txt", "db2");
    let run = stack.deploy_ok(&[]);
    run.expect_contains(&stack.scoped("db_v2"));
    eprintln!(
        "e2e_rotation: deploy rotating 1 service took {:.1}s",
        run.elapsed.as_secs_f64()
    );

    assert!(
        object_exists("secret", &stack.scoped("db_v2")),
        "db_v2 exists"
    );
    assert_version_labels(&stack, "secret", "db", 2);
    let after = references(&service_inspect(&app)["Spec"], "secret");
    assert_eq!(before.len(), after.len(), "same number of references");
    for ((old_name, old_file), (new_name, new_file)) in before.iter().zip(&after) {
        assert_eq!(
            old_file, new_file,
            "File (Name, UID, GID, Mode) of a reference"
        );
        let expected = if old_name == &stack.scoped("db_v1") {
            stack.scoped("db_v2")
        } else {
            old_name.clone()
        };
        assert_eq!(new_name, &expected, "reference at {}", new_file["Name"]);
    }
    assert_same_value(
        &read_in_service(&app, "/run/secrets/db"),
        &db2,
        "/run/secrets/db after rotation",
    );
    assert_same_value(
        &read_in_service(&app, "/etc/app/db.conf"),
        &db2,
        "/etc/app/db.conf after rotation",
    );
}

/// The rollout wait follows dockerd's event stream: the subscription's filters are accepted
/// and its events wake the watcher (it would still converge by polling, so only the log
/// tells).
#[test]
fn e2e_rollout_wait_is_woken_by_the_engines_events() {
    let stack = Stack::new("evw");
    stack.use_compose("basic/compose.yaml");
    stack.write_secret("db.txt", "db1");
    stack.write_secret("api.txt", "api");
    stack.deploy_ok(&[]);
    stack.write_secret("db.txt", "db2");
    let run = stack.deploy_ok(&[]);
    run.expect_contains(&stack.scoped("db_v2"));
    assert!(
        run.stderr
            .contains("the engine's events woke the rollout watcher"),
        "no wake-up by events in:\n{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("polling instead"),
        "the event stream failed:\n{}",
        run.stderr
    );
}

/// 3. Deploying again with nothing changed changes nothing.
#[test]
fn e2e_noop_redeploy() {
    let stack = Stack::new("noop");
    stack.use_compose("basic/compose.yaml");
    stack.write_secret("db.txt", "db");
    stack.write_secret("api.txt", "api");
    stack.deploy_ok(&[]);
    let app = stack.scoped("app");
    let secrets_before = docker_ok(&["secret", "ls", "--format", "{{.ID}} {{.Name}}"]);
    let stack_secrets_before = stack.objects("secret");
    let index_before = version_index(&app);

    let configs_before = stack.objects("config");
    let run = stack.deploy_ok(&[]);
    assert!(
        strip_ansi(&run.stdout).contains("No changes"),
        "stdout should say No changes\n{}",
        run.context()
    );
    // One check of the content seal stood in for the per-secret fingerprint checks, and the
    // seal was kept as it was.
    run.expect_contains("content seal verified");
    assert_eq!(
        stack.objects("config"),
        configs_before,
        "the content seal is unchanged"
    );
    assert_eq!(
        configs_before,
        BTreeSet::from([stack.scoped("stackroll-seal_1")])
    );
    assert_eq!(
        version_index(&app),
        index_before,
        "the service's Version.Index"
    );
    assert_eq!(
        stack.objects("secret"),
        stack_secrets_before,
        "the stack's secrets"
    );
    let secrets_after = docker_ok(&["secret", "ls", "--format", "{{.ID}} {{.Name}}"]);
    let mine = |text: &str| -> BTreeSet<String> {
        text.lines()
            .filter(|l| l.contains(&stack.name))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        mine(&secrets_after),
        mine(&secrets_before),
        "secret IDs and names"
    );
}

/// 4. `plan` and `deploy --dry-run` write nothing; `--detailed-exitcode` says 2 with changes
///    pending and 0 once they are deployed.
#[test]
fn e2e_plan_writes_nothing() {
    let stack = Stack::new("plan");
    stack.use_compose("basic/compose.yaml");
    stack.write_secret("db.txt", "db1");
    stack.write_secret("api.txt", "api");

    // Before anything exists.
    stack.plan(&["--detailed-exitcode"]).expect_code(2);
    assert!(stack.objects("secret").is_empty(), "plan created secrets");
    assert!(stack.objects("service").is_empty(), "plan created services");
    assert!(stack.objects("network").is_empty(), "plan created networks");

    stack.deploy_ok(&[]);
    stack.plan(&["--detailed-exitcode"]).expect_code(0);
    let app = stack.scoped("app");
    let secrets_before = stack.objects("secret");
    let index_before = version_index(&app);

    stack.write_secret("db.txt", "db2");
    let run = stack.plan(&[]);
    run.expect_code(0).expect_contains(&stack.scoped("db_v2"));
    stack.plan(&["--detailed-exitcode"]).expect_code(2);
    stack
        .deploy(&["--dry-run"])
        .expect_code(0)
        .expect_contains(&stack.scoped("db_v2"));
    assert_eq!(
        stack.objects("secret"),
        secrets_before,
        "secrets after plan"
    );
    assert_eq!(
        version_index(&app),
        index_before,
        "Version.Index after plan"
    );

    stack.deploy_ok(&[]);
    assert!(stack.objects("secret").contains(&stack.scoped("db_v2")));
    stack.plan(&["--detailed-exitcode"]).expect_code(0);
}

/// 5. One secret used by three services: rotating it moves all three in one deploy.
#[test]
fn e2e_shared_secret_rotation() {
    let stack = Stack::new("shared");
    stack.use_compose("shared/compose.yaml");
    stack.write_secret("db.txt", "db1");
    stack.deploy_ok(&[]);

    let db2 = stack.write_secret("db.txt", "db2");
    let run = stack.deploy_ok(&[]);
    let services = ["web", "worker", "cron"];
    for service in services {
        let name = stack.scoped(service);
        run.expect_contains(&format!("{name}: converged"));
        let spec = &service_inspect(&name)["Spec"];
        assert_eq!(
            referenced_names(spec, "secret"),
            BTreeSet::from([stack.scoped("db_v2")]),
            "{name} references v2"
        );
        assert_eq!(
            update_state(&name),
            "completed",
            "{name} UpdateStatus.State"
        );
    }
    assert_same_value(
        &read_in_service(&stack.scoped("web"), "/run/secrets/db"),
        &db2,
        "web",
    );
    assert_same_value(
        &read_in_service(&stack.scoped("worker"), "/run/secrets/db"),
        &db2,
        "worker",
    );
    assert_same_value(
        &read_in_service(&stack.scoped("cron"), "/etc/cron/db"),
        &db2,
        "cron",
    );
    let converged: Vec<String> = strip_ansi(&run.stderr)
        .lines()
        .filter(|l| l.contains(": converged ("))
        .map(str::to_string)
        .collect();
    eprintln!(
        "e2e_shared_secret_rotation: deploy rotating 3 services took {:.1}s ({})",
        run.elapsed.as_secs_f64(),
        converged.join("; ")
    );
}

/// 6. A rollout that fails its healthcheck: exit 3, the service rolls back to v1, and v1 is
///    kept.
#[test]
fn e2e_failing_rollout() {
    let stack = Stack::new("fail");
    stack.use_compose("healthcheck/compose.yaml");
    let good = stack.write_secret("db.txt", "good");
    stack.deploy_ok(&[]);
    let app = stack.scoped("app");
    assert_same_value(
        &read_in_service(&app, "/run/secrets/db"),
        &good,
        "first deploy",
    );

    stack.write_secret("db.txt", "bad");
    let run = stack.deploy(&[]);
    run.expect_code(3);
    let all = run.all();
    assert!(
        all.contains(&app),
        "the output names the service\n{}",
        run.context()
    );
    let lower = all.to_lowercase();
    assert!(
        ["rolled back", "roll back", "rollback", "paused"]
            .iter()
            .any(|word| lower.contains(word)),
        "the output says the update was rolled back or paused\n{}",
        run.context()
    );

    let v1 = stack.scoped("db_v1");
    let state = wait_for("the rollback to finish", WAIT, || {
        let state = update_state(&app);
        (state != "rollback_started" && state != "updating").then_some(state)
    });
    assert!(
        state == "rollback_completed" || state == "paused" || state == "rollback_paused",
        "UpdateStatus.State after a failed update: {state}"
    );
    let service = service_inspect(&app);
    let in_spec = referenced_names(&service["Spec"], "secret").contains(&v1);
    let in_previous = referenced_names(&service["PreviousSpec"], "secret").contains(&v1);
    assert!(
        in_spec || in_previous,
        "Spec or PreviousSpec references {v1}"
    );
    assert!(object_exists("secret", &v1), "{v1} still exists");
    if state == "rollback_completed" {
        assert!(in_spec, "after the rollback the Spec references {v1}");
        wait_for_content(&app, "/run/secrets/db", &good);
    }
    eprintln!("e2e_failing_rollout: UpdateStatus.State after the failed deploy: {state}");

    // The same bad content again, reported as JSON: v2 is reused, the rollout fails again.
    let run = stack.deploy(&["--output", "json"]);
    run.expect_code(3);
    let report = run.json();
    assert!(
        plan_schema().is_valid(&report),
        "the failure report matches the schema\n{}",
        run.context()
    );
    assert_eq!(report["outcome"], "rollout_failed", "{}", run.context());
    assert!(
        report["failures"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["service"] == app.as_str())),
        "failures name {app}\n{}",
        run.context()
    );
    assert!(
        !object_exists("secret", &stack.scoped("db_v3")),
        "the bad content reuses v2"
    );
    wait_for("the second rollback to finish", WAIT, || {
        let state = update_state(&app);
        (state != "rollback_started" && state != "updating").then_some(())
    });

    // Back to the good content: it equals v1, which the service runs after the rollback.
    std::fs::write(stack.path("db.txt"), &good).expect("write db.txt");
    if update_state(&app) == "rollback_completed" {
        let run = stack.deploy_ok(&[]);
        assert!(
            strip_ansi(&run.stdout).contains("No changes"),
            "the rolled-back service already runs v1\n{}",
            run.context()
        );
    } else {
        stack.deploy_ok(&[]);
    }
    assert_eq!(
        referenced_names(&service_inspect(&app)["Spec"], "secret"),
        BTreeSet::from([v1.clone()]),
        "good content again uses {v1}"
    );
    assert!(!object_exists("secret", &stack.scoped("db_v3")));
    wait_for_content(&app, "/run/secrets/db", &good);
}

/// 7. Adoption: a stack first deployed by `docker stack deploy` gets a `_v1` secret; the old
///    unversioned secret stays.
#[test]
fn e2e_adoption() {
    let stack = Stack::new("adopt");
    stack.use_compose("adopt/compose.yaml");
    let db = stack.write_secret("db.txt", "db");
    let output = StdCommand::new("docker")
        .current_dir(stack.dir.path())
        .args([
            "stack",
            "deploy",
            "--resolve-image",
            "never",
            "-c",
            "compose.yaml",
            &stack.name,
        ])
        .output()
        .expect("docker stack deploy");
    assert!(
        output.status.success(),
        "docker stack deploy failed: {}",
        redact(&String::from_utf8_lossy(&output.stderr))
    );
    let legacy = stack.scoped("db");
    let app = stack.scoped("app");
    assert!(
        object_exists("secret", &legacy),
        "docker stack deploy made {legacy}"
    );
    wait_for_content(&app, "/run/secrets/db", &db);

    let run = stack.plan(&[]);
    run.expect_code(0);
    let lower = run.all().to_lowercase();
    assert!(
        lower.contains("cannot be verified") || lower.contains("adopting"),
        "plan says the content cannot be verified / is adopted\n{}",
        run.context()
    );

    stack.deploy_ok(&[]);
    let v1 = stack.scoped("db_v1");
    assert_version_labels(&stack, "secret", "db", 1);
    let refs = references(&service_inspect(&app)["Spec"], "secret");
    assert_eq!(refs.len(), 1, "one secret reference");
    assert_eq!(refs[0].0, v1, "the service uses {v1}");
    assert_eq!(refs[0].1["Name"], "db", "at the same target");
    assert!(
        object_exists("secret", &legacy),
        "{legacy} is left in place"
    );
    wait_for_content(&app, "/run/secrets/db", &db);

    stack.plan(&["--detailed-exitcode"]).expect_code(0);

    // Rotating and pruning never touch the adopted secret: it is not stackroll's.
    let db2 = stack.write_secret("db.txt", "db2");
    stack.deploy_ok(&[]);
    assert_eq!(
        referenced_names(&service_inspect(&app)["Spec"], "secret"),
        BTreeSet::from([stack.scoped("db_v2")]),
        "after rotation"
    );
    assert!(
        object_exists("secret", &legacy),
        "{legacy} survives a rotation"
    );
    wait_for_content(&app, "/run/secrets/db", &db2);
}

/// 8. Missing external secrets: exit 1, both named, nothing created.
#[test]
fn e2e_missing_external() {
    let stack = Stack::new("ext");
    stack.use_compose("missing-external/compose.yaml");
    stack.write_secret("local.txt", "local");
    let missing_a = format!("{}-missing-a", stack.name);
    let missing_b = format!("{}-missing-b", stack.name);
    stack.set_env("E2E_MISSING_A", &missing_a);
    stack.set_env("E2E_MISSING_B", &missing_b);

    let run = stack.deploy(&[]);
    run.expect_code(1)
        .expect_contains(&missing_a)
        .expect_contains(&missing_b);
    for kind in ["service", "secret", "config", "network"] {
        assert!(
            stack.objects(kind).is_empty(),
            "a failed deploy created {kind}s: {:?}",
            stack.objects(kind)
        );
    }
    assert!(!object_exists("secret", &stack.scoped("local_v1")));
    stack
        .plan(&[])
        .expect_code(1)
        .expect_contains(&missing_a)
        .expect_contains(&missing_b);
}

/// 9. A secret from stackroll's environment reaches the container.
#[test]
fn e2e_environment_secret() {
    let stack = Stack::new("env");
    stack.use_compose("env-secret/compose.yaml");
    let token = secret_value("token", &format!("{} E2E_TOKEN", stack.name));
    stack.set_env("E2E_TOKEN", &token);
    // `config` prints the resolved model: the variable's name, never its value.
    stack
        .stackroll(&["config"])
        .expect_code(0)
        .expect_contains("E2E_TOKEN");
    stack
        .stackroll(&["config", "--format", "json"])
        .expect_code(0);
    stack.deploy_ok(&[]);
    assert_version_labels(&stack, "secret", "token", 1);
    let app = stack.scoped("app");
    assert_same_value(
        &read_in_service(&app, "/run/secrets/token"),
        &token,
        "/run/secrets/token",
    );
    let run = stack.deploy_ok(&[]);
    assert!(
        strip_ansi(&run.stdout).contains("No changes"),
        "{}",
        run.context()
    );

    // A new value in the environment rotates the secret.
    let token2 = secret_value("token2", &format!("{} E2E_TOKEN 2", stack.name));
    stack.set_env("E2E_TOKEN", &token2);
    stack
        .deploy_ok(&[])
        .expect_contains(&stack.scoped("token_v2"));
    assert_version_labels(&stack, "secret", "token", 2);
    wait_for_content(&app, "/run/secrets/token", &token2);
}

/// 10. Configs rotate like secrets; a relative config target lands under `/`.
#[test]
fn e2e_configs_rotate() {
    let stack = Stack::new("cfg");
    stack.use_compose("configs/compose.yaml");
    let conf1 = stack.write_config("app.conf", "conf1");
    let inline = secret_value("inline", &format!("{} E2E_INLINE", stack.name));
    stack.set_env("E2E_INLINE", &inline);
    stack.deploy_ok(&[]);
    let app = stack.scoped("app");
    let configs = stack.objects("config");
    let seal = |serial: u64| stack.scoped(&format!("stackroll-seal_{serial}"));
    assert_eq!(
        configs,
        BTreeSet::from([
            stack.scoped("appconf_v1"),
            stack.scoped("inline_v1"),
            seal(1)
        ]),
        "the stack's configs: two versions and the content seal"
    );
    assert_version_labels(&stack, "config", "appconf", 1);
    assert_version_labels(&stack, "config", "inline", 1);
    assert_same_value(
        &read_in_service(&app, "/etc/app.conf"),
        &conf1,
        "/etc/app.conf",
    );
    assert_same_value(
        &read_in_service(&app, "/inline"),
        &format!("inline {inline}"),
        "/inline",
    );

    let conf2 = stack.write_config("app.conf", "conf2");
    stack
        .deploy_ok(&[])
        .expect_contains(&stack.scoped("appconf_v2"));
    assert_version_labels(&stack, "config", "appconf", 2);
    // The rotation replaced the content seal with one naming the new version.
    assert!(!object_exists("config", &seal(1)), "seal 1 replaced");
    let sealed = labels_of("config", &seal(2))["io.stackroll.seal.objects"].clone();
    for version in ["appconf_v2", "inline_v1"] {
        let id = inspect("config", &stack.scoped(version))["ID"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(sealed.contains(&id), "seal 2 names {version}: {sealed}");
    }
    assert_eq!(
        referenced_names(&service_inspect(&app)["Spec"], "config"),
        BTreeSet::from([stack.scoped("appconf_v2"), stack.scoped("inline_v1")]),
        "the service's configs after rotation"
    );
    assert_same_value(
        &read_in_service(&app, "/etc/app.conf"),
        &conf2,
        "/etc/app.conf after rotation",
    );
    assert_same_value(
        &read_in_service(&app, "/inline"),
        &format!("inline {inline}"),
        "/inline after rotation",
    );
}

/// Checks the shape every JSON report has; returns it.
fn check_report(run: &Run, stack: &Stack, outcome: &str) -> Value {
    let report = run.json();
    let context = || format!("{}\n{}", redact(&report.to_string()), run.context());
    assert_eq!(report["stack"], stack.name.as_str(), "stack\n{}", context());
    assert_eq!(report["outcome"], outcome, "outcome\n{}", context());
    let swarm = docker_ok(&["info", "--format", "{{.Swarm.Cluster.ID}} {{.Name}}"]);
    let target = &report["target"];
    assert_eq!(
        format!(
            "{} {}",
            target["cluster_id"].as_str().unwrap_or_default(),
            target["node"].as_str().unwrap_or_default()
        ),
        swarm.trim(),
        "target names the swarm and the manager\n{}",
        context()
    );
    assert_eq!(target["context"], "default", "{}", context());
    assert_eq!(
        target["endpoint"],
        "unix:///var/run/docker.sock",
        "{}",
        context()
    );
    let changes = report["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("changes\n{}", context()));
    let mut counts = BTreeMap::from([("create", 0u64), ("update", 0), ("delete", 0)]);
    for change in changes {
        for key in ["kind", "action", "name", "reason"] {
            assert!(
                change[key].is_string(),
                "change.{key} is a string\n{}",
                context()
            );
        }
        assert!(
            change["details"].is_array(),
            "change.details is an array\n{}",
            context()
        );
        assert!(
            ["secret", "config", "service", "network"].contains(&change["kind"].as_str().unwrap()),
            "change.kind\n{}",
            context()
        );
        let action = change["action"].as_str().unwrap();
        *counts
            .get_mut(action)
            .unwrap_or_else(|| panic!("change.action {action}\n{}", context())) += 1;
    }
    for (action, count) in counts {
        assert_eq!(
            report["summary"][action].as_u64(),
            Some(count),
            "summary.{action}\n{}",
            context()
        );
    }
    let errors: Vec<String> = plan_schema()
        .iter_errors(&report)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "report does not match schema/plan.schema.json: {errors:?}\n{}",
        context()
    );
    report
}

/// The validator for schema/plan.schema.json, the contract of `--output json`.
fn plan_schema() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/plan.schema.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let schema: Value = serde_json::from_str(&text).expect("schema/plan.schema.json is JSON");
    jsonschema::validator_for(&schema).expect("schema/plan.schema.json compiles")
}

/// The schema check can fail: reports missing required keys or with unknown values are
/// rejected. Needs no swarm.
#[test]
fn e2e_schema_rejects_bad_reports() {
    let schema = plan_schema();
    let good = serde_json::json!({
        "schema_version": 2,
        "target": {"context": "default", "endpoint": "unix:///var/run/docker.sock",
                   "cluster_id": "abc", "node": "manager1"},
        "stack": "demo",
        "changes": [{"kind": "secret", "action": "create", "name": "demo_db_v1",
                     "reason": "first version", "details": []},
                    {"kind": "service", "action": "update", "name": "demo_app",
                     "reason": "spec changed", "details": [
                        {"field": "deploy.replicas", "source": "compose",
                         "api_field": "Mode.Replicated.Replicas", "location": "compose.yaml:9:17",
                         "change": "changed", "old": 1, "new": 2, "redacted": false},
                        {"field": "environment.TOKEN", "source": "compose",
                         "api_field": "TaskTemplate.ContainerSpec.Env.TOKEN",
                         "location": "compose.yaml:5:7", "change": "changed",
                         "old": null, "new": null, "redacted": true}]}],
        "rotations": [],
        "notes": [],
        "summary": {"create": 1, "update": 0, "delete": 0},
        "impact": {"services_restarted": 0, "tasks_replaced": 0, "tasks_started": 0,
                   "estimate_seconds": 0},
        "outcome": "planned"
    });
    assert!(schema.is_valid(&good), "a well-formed report is valid");
    let mut no_outcome = good.clone();
    no_outcome.as_object_mut().unwrap().remove("outcome");
    let mut bad_kind = good.clone();
    bad_kind["changes"][0]["kind"] = "volume".into();
    let mut no_summary_key = good.clone();
    no_summary_key["summary"]
        .as_object_mut()
        .unwrap()
        .remove("delete");
    let mut no_target = good.clone();
    no_target.as_object_mut().unwrap().remove("target");
    let mut no_endpoint = good.clone();
    no_endpoint["target"]
        .as_object_mut()
        .unwrap()
        .remove("endpoint");
    let mut version_1 = good.clone();
    version_1.as_object_mut().unwrap().remove("schema_version");
    let mut text_details = good.clone();
    text_details["changes"][1]["details"] = serde_json::json!(["Mode.Replicated.Replicas: 1 -> 2"]);
    let mut redacted_with_values = good.clone();
    redacted_with_values["changes"][1]["details"][1]["new"] = "a-value".into();
    for bad in [
        no_outcome,
        bad_kind,
        no_summary_key,
        version_1,
        text_details,
        redacted_with_values,
        no_target,
        no_endpoint,
    ] {
        assert!(!schema.is_valid(&bad), "accepted {bad}");
    }
}

fn has_change(report: &Value, kind: &str, action: &str, name: &str) -> bool {
    report["changes"].as_array().is_some_and(|changes| {
        changes
            .iter()
            .any(|c| c["kind"] == kind && c["action"] == action && c["name"] == name)
    })
}

/// 11. `--output json` of plan and deploy.
#[test]
fn e2e_json_output() {
    let stack = Stack::new("json");
    stack.use_compose("basic/compose.yaml");
    stack.write_secret("db.txt", "db1");
    stack.write_secret("api.txt", "api");
    let app = stack.scoped("app");

    let run = stack.plan(&["--output", "json"]);
    run.expect_code(0);
    let report = check_report(&run, &stack, "planned");
    assert!(
        has_change(&report, "secret", "create", &stack.scoped("db_v1")),
        "{}",
        run.context()
    );
    assert!(
        has_change(&report, "service", "create", &app),
        "{}",
        run.context()
    );
    assert!(
        has_change(&report, "network", "create", &stack.scoped("default")),
        "{}",
        run.context()
    );

    let run = stack.deploy(&["--output", "json"]);
    run.expect_code(0);
    let report = check_report(&run, &stack, "applied");
    assert!(
        has_change(&report, "secret", "create", &stack.scoped("api_v1")),
        "{}",
        run.context()
    );

    let run = stack.deploy(&["--output", "json"]);
    run.expect_code(0);
    let report = check_report(&run, &stack, "no_changes");
    assert_eq!(
        report["changes"].as_array().map(Vec::len),
        Some(0),
        "{}",
        run.context()
    );

    stack.write_secret("db.txt", "db2");
    let run = stack.plan(&["--output", "json"]);
    run.expect_code(0);
    let report = check_report(&run, &stack, "planned");
    assert!(
        has_change(&report, "secret", "create", &stack.scoped("db_v2")),
        "{}",
        run.context()
    );
    assert!(
        has_change(&report, "service", "update", &app),
        "{}",
        run.context()
    );
    let run = stack.deploy(&["--output", "json"]);
    run.expect_code(0);
    check_report(&run, &stack, "applied");
}

/// 12. Pruning: with --keep 1 the oldest versions go; a removed secret's versions go once no
///     Spec or PreviousSpec references them; hand-made objects with the stack label stay.
#[test]
fn e2e_prune() {
    let stack = Stack::new("prune");
    stack.use_compose("prune/compose.yaml");
    stack.write_secret("db.txt", "db1");
    stack.write_secret("extra.txt", "extra");
    // Hand-made objects in the stack's namespace, without io.stackroll.managed.
    let handmade_secret = stack.scoped("db_v0");
    let handmade_config = stack.scoped("handmade");
    stack.write_secret("handmade.txt", "handmade");
    let handmade_file = stack.path("handmade.txt");
    let handmade_file = handmade_file.to_str().unwrap();
    let namespace = format!("{NAMESPACE_LABEL}={}", stack.name);
    docker_ok(&[
        "secret",
        "create",
        "--label",
        &namespace,
        "--label",
        "io.stackroll.key=db",
        "--label",
        "io.stackroll.version=0",
        &handmade_secret,
        handmade_file,
    ]);
    docker_ok(&[
        "config",
        "create",
        "--label",
        &namespace,
        &handmade_config,
        handmade_file,
    ]);
    let app = stack.scoped("app");
    let v = |key: &str, n: u64| stack.scoped(&format!("{key}_v{n}"));
    let assert_secrets = |expected: &[String], step: &str| {
        let mut expected: BTreeSet<String> = expected.iter().cloned().collect();
        expected.insert(handmade_secret.clone());
        assert_eq!(stack.objects("secret"), expected, "secrets after {step}");
        assert!(
            stack.objects("config").contains(&handmade_config),
            "{handmade_config} after {step}"
        );
    };

    stack.deploy_ok(&["--keep", "1"]);
    assert_secrets(&[v("db", 1), v("extra", 1)], "the first deploy");

    stack.write_secret("db.txt", "db2");
    stack.deploy_ok(&["--keep", "1"]);
    assert_secrets(
        &[v("db", 1), v("db", 2), v("extra", 1)],
        "the first rotation",
    );

    stack.write_secret("db.txt", "db3");
    let run = stack.deploy_ok(&["--keep", "1"]);
    run.expect_contains(&format!("deleted secret {}", v("db", 1)));
    assert_secrets(
        &[v("db", 2), v("db", 3), v("extra", 1)],
        "the second rotation",
    );

    // Drop `extra`: the service's PreviousSpec still references it, so it stays for rollback.
    stack.use_compose("prune/compose.without-extra.yaml");
    stack.deploy_ok(&["--keep", "1"]);
    let service = service_inspect(&app);
    assert_eq!(
        referenced_names(&service["Spec"], "secret"),
        BTreeSet::from([v("db", 3)]),
        "Spec after dropping extra"
    );
    assert!(
        referenced_names(&service["PreviousSpec"], "secret").contains(&v("extra", 1)),
        "PreviousSpec references extra_v1"
    );
    assert_secrets(&[v("db", 2), v("db", 3), v("extra", 1)], "dropping extra");

    // Another service change: now nothing references extra_v1.
    stack.set_env("E2E_STEP", "1");
    let run = stack.deploy_ok(&["--keep", "1"]);
    run.expect_contains(&format!("deleted secret {}", v("extra", 1)));
    assert_secrets(&[v("db", 2), v("db", 3)], "the next service change");
}

/// The leak search itself: a registered value is found raw, split by colour codes, and as
/// digests and encodings, and redaction hides it. Needs no swarm.
#[test]
fn e2e_harness_finds_leaks() {
    use sha1::Digest as _;
    let value = secret_value("probe", "harness probe");
    let bytes = value.as_bytes();
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    let leaking = [
        format!("value={value}\n"),
        format!("{}\u{1b}[0m{}", &value[..10], &value[10..]),
        hex(&sha2::Sha256::digest(bytes)),
        hex(&sha2::Sha256::digest(bytes)).to_uppercase(),
        hex(&sha1::Sha1::digest(bytes)),
        hex(&md5::Md5::digest(bytes)),
        format!("{{\"Data\":\"{b64}\"}}"),
        hex(bytes),
        format!("data: {bytes:?}"),
    ];
    for text in &leaking {
        let leaks = leaks_in(text);
        assert!(!leaks.is_empty(), "not found: {}", redact(text));
        assert!(
            leaks.iter().all(|l| l.contains("harness probe")),
            "{leaks:?}"
        );
        assert!(
            !strip_ansi(&redact(text)).contains(&value),
            "redaction left the value"
        );
    }
    assert!(leaks_in("Stack demo:\n  + secret demo_db_v1 (file ./db.txt, 37 bytes)").is_empty());
    assert_eq!(
        describe_value(bytes),
        "the value registered as \"harness probe\""
    );
    assert_eq!(
        describe_value(b"something else"),
        "an unregistered value of 14 bytes"
    );
}

/// 13. A job service (`replicated-job`) that reads its secret: the deploy succeeds once the
///     job completed (Swarm gives job tasks desired state `complete`, never `running`), a
///     rotation runs it again with the new version, and `status` shows the job's progress.
#[test]
fn e2e_job_reads_its_secret_and_completes() {
    let stack = Stack::new("job");
    stack.use_compose("jobs/compose.yaml");
    stack.write_secret("db.txt", "migrate");
    let started = std::time::Instant::now();
    let run = stack.stackroll(&["deploy", "--timeout", "60s", &stack.name]);
    run.expect_code(0);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(50),
        "the deploy returned when the job completed, not at the timeout\n{}",
        run.context()
    );
    let status = stack.stackroll(&["status", "--output", "json", &stack.name]);
    status.expect_code(0);
    let services = status.json()["services"].clone();
    let migrate = services
        .as_array()
        .and_then(|s| {
            s.iter()
                .find(|s| s["name"] == stack.scoped("migrate").as_str())
        })
        .cloned()
        .unwrap_or_else(|| panic!("status lists the job\n{}", status.context()));
    assert_eq!(migrate["state"], "job_completed", "{}", status.context());
    assert_eq!(
        (migrate["running"].as_u64(), migrate["desired"].as_u64()),
        (Some(1), Some(1))
    );

    stack.write_secret("db.txt", "migrate");
    let run = stack.stackroll(&["deploy", "--timeout", "60s", &stack.name]);
    run.expect_code(0);
    run.expect_contains(&stack.scoped("db_v2"));
    stack.assert_no_leak_in_swarm();
}

/// 14. A job whose task exits 1: exit 3 at once, naming the job and the task's error.
#[test]
fn e2e_failing_job_exits_3_with_the_task_error() {
    let stack = Stack::new("jobfail");
    stack.use_compose("jobs/compose.yaml");
    stack.write_secret("db.txt", "migrate");
    stack.set_env("JOB_EXIT", "1");
    let started = std::time::Instant::now();
    let run = stack.stackroll(&["deploy", "--timeout", "60s", &stack.name]);
    run.expect_code(3);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(50),
        "the failure is reported when the task fails, not at the timeout\n{}",
        run.context()
    );
    let all = run.all();
    assert!(all.contains(&stack.scoped("migrate")), "{}", run.context());
    assert!(
        all.contains("non-zero exit (1)"),
        "the output carries the task's error\n{}",
        run.context()
    );
}

/// 15. A new service that crash-loops (runs a second, exits 1, is restarted) is not taken for
///     converged on the first poll that sees it running: the deploy exits 3.
#[test]
fn e2e_crash_looping_new_service_does_not_converge() {
    let stack = Stack::new("crash");
    stack.use_compose("crashloop/compose.yaml");
    let run = stack.stackroll(&["deploy", "--timeout", "20s", &stack.name]);
    run.expect_code(3);
    assert!(
        run.all().contains(&stack.scoped("app")),
        "{}",
        run.context()
    );
}

/// 16. `plan --keep N` plans the deletions `deploy --keep N` would make (`plan` used to plan
///     with 1 whatever it was told, disagreeing with `deploy --dry-run --keep N`).
#[test]
fn e2e_plan_honours_keep() {
    let stack = Stack::new("keep");
    stack.use_compose("basic/compose.yaml");
    stack.write_secret("api.txt", "api");
    for round in ["db1", "db2", "db3"] {
        stack.write_secret("db.txt", round);
        stack.deploy_ok(&["--keep", "3"]);
    }
    let v1 = stack.scoped("db_v1");
    let deletes_v1 = |run: &Run| has_change(&run.json(), "secret", "delete", &v1);
    let kept = stack.plan(&["--keep", "3", "--output", "json"]);
    kept.expect_code(0);
    assert!(
        !deletes_v1(&kept),
        "plan --keep 3 keeps {v1}\n{}",
        kept.context()
    );
    let dry = stack.deploy(&["--dry-run", "--keep", "3", "--output", "json"]);
    dry.expect_code(0);
    assert!(
        !deletes_v1(&dry),
        "deploy --dry-run --keep 3 agrees\n{}",
        dry.context()
    );
    let one = stack.plan(&["--keep", "1", "--output", "json"]);
    one.expect_code(0);
    assert!(
        deletes_v1(&one),
        "plan --keep 1 deletes {v1}\n{}",
        one.context()
    );
}

/// 17. Networks are the stack's by its label, not by name: stack `s_b`'s `default` network is
///     named `s_b_default` like stack `s`'s `b_default`, and `s` must not attach to it.
#[test]
fn e2e_network_of_another_stack_with_our_name_is_refused() {
    let stack = Stack::new("netown");
    stack.use_compose("network-owner/compose.yaml");
    let name = stack.scoped("b_default");
    let created = StdCommand::new("docker")
        .args(["network", "create", "--driver", "overlay", "--label"])
        .arg(format!("com.docker.stack.namespace={}", stack.scoped("b")))
        .arg(&name)
        .output()
        .expect("docker network create");
    assert!(created.status.success(), "{created:?}");
    let run = stack.deploy(&[]);
    let _ = StdCommand::new("docker")
        .args(["network", "rm", &name])
        .output();
    run.expect_code(1);
    assert!(
        run.all()
            .contains(&format!("{name} (stack {})", stack.scoped("b"))),
        "the error names the network and its stack\n{}",
        run.context()
    );
    assert!(stack.objects("service").is_empty(), "nothing was written");
}

/// A new version whose name a version of another stack already holds (stack `S` key `x_db`
/// and stack `S_x` key `db` both make `S_x_db_v1`) is refused by the plan, naming the holder,
/// before anything is written; it is not a create conflict on every deploy.
#[test]
fn e2e_versioned_name_of_another_stack_is_refused() {
    let stack = Stack::new("clash");
    stack.use_compose("name-clash/compose.yaml");
    stack.write_secret("db.txt", "clash");
    let name = stack.scoped("x_db_v1");
    let labels = [
        format!("com.docker.stack.namespace={}", stack.scoped("x")),
        "io.stackroll.managed=true".to_string(),
        "io.stackroll.key=db".to_string(),
        "io.stackroll.version=1".to_string(),
    ];
    let mut create = StdCommand::new("docker");
    create.args(["secret", "create"]);
    for label in &labels {
        create.args(["--label", label]);
    }
    let created = create
        .arg(&name)
        .arg(stack.path("compose.yaml"))
        .output()
        .expect("docker secret create");
    assert!(created.status.success(), "{created:?}");
    let run = stack.deploy(&[]);
    let _ = StdCommand::new("docker")
        .args(["secret", "rm", &name])
        .output();
    run.expect_code(1);
    assert!(
        run.all()
            .contains(&format!("secret {name} (stack {})", stack.scoped("x"))),
        "the error names the secret and its stack\n{}",
        run.context()
    );
    assert!(stack.objects("service").is_empty(), "nothing was written");
}

/// With `STACKROLL_FINGERPRINT_KEY`, a secret and a config with equal contents carry different
/// fingerprint labels (a per-version nonce, kind and key bound into the material), so the
/// config, whose data anyone with read access fetches, discloses nothing about the secret; a
/// redeploy still recognises both contents.
#[test]
fn e2e_equal_contents_never_give_equal_labels() {
    let stack = Stack::new("equal");
    stack.use_compose("equal-contents/compose.yaml");
    stack.write_secret("same.txt", "same");
    stack.set_env(
        "STACKROLL_FINGERPRINT_KEY",
        "e2e-fingerprint-key-0123456789abcdef",
    );
    stack.deploy_ok(&[]);
    let name = stack.scoped("same_v1");
    let secret = labels_of("secret", &name)["io.stackroll.fingerprint"].clone();
    let config = labels_of("config", &name)["io.stackroll.fingerprint"].clone();
    assert!(secret.starts_with("hmac-sha256$"), "{secret}");
    assert_ne!(secret, config, "equal contents, different labels");
    let again = stack.deploy_ok(&[]);
    again.expect_contains("No changes");
    assert_eq!(stack.objects("secret").len(), 1, "nothing rotated");
}

/// Issue 18: a plan a reviewer reads in Compose terms, against the real swarm. After a
/// pull-request-sized change (replicas, an environment variable, a config's content, update
/// settings), the JSON plan names each service change by its Compose field with
/// `compose.yaml:line:col`, withholds the environment value, shows the config's old content
/// (read back from the engine) against the new one as a unified diff, and gives each service
/// its impact; the deploy then reports the measured rollout time beside the estimate.
#[test]
fn e2e_review_plan_in_compose_terms() {
    let stack = Stack::new("review");
    let compose = |replicas: u32, level: &str| {
        format!(
            "services:\n  api:\n    image: local/busybox:1\n    command: [\"sleep\", \"3600\"]\n    stop_grace_period: 1s\n    environment:\n      LOG_LEVEL: {level}\n    configs:\n      - source: app_conf\n        target: /etc/app.conf\n    deploy:\n      replicas: {replicas}\n      update_config:\n        parallelism: 1\n        delay: 1s\n        monitor: 1s\nconfigs:\n  app_conf:\n    file: ./app.conf\n"
        )
    };
    std::fs::write(stack.path("compose.yaml"), compose(1, "info")).unwrap();
    std::fs::write(stack.path("app.conf"), "listen 8080\nworkers 2\n").unwrap();
    stack.deploy_ok(&[]);

    std::fs::write(stack.path("compose.yaml"), compose(2, "debug")).unwrap();
    std::fs::write(stack.path("app.conf"), "listen 9090\nworkers 2\n").unwrap();
    let run = stack.plan(&["--output", "json"]);
    run.expect_code(0);
    let report = check_report(&run, &stack, "planned");
    let changes = report["changes"].as_array().unwrap();
    let config = changes
        .iter()
        .find(|c| c["kind"] == "config" && c["action"] == "create")
        .unwrap_or_else(|| panic!("no new config version\n{}", run.context()));
    let diff: Vec<&str> = config["diff"]["lines"]
        .as_array()
        .unwrap_or_else(|| panic!("no diff\n{}", run.context()))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        diff.contains(&"-listen 8080")
            && diff.contains(&"+listen 9090")
            && diff.contains(&" workers 2"),
        "the diff reads the old content back from the engine\n{}",
        run.context()
    );
    let api = changes
        .iter()
        .find(|c| c["kind"] == "service" && c["name"] == stack.scoped("api"))
        .unwrap_or_else(|| panic!("no service change\n{}", run.context()));
    let detail = |field: &str| {
        api["details"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["field"] == field)
            .cloned()
            .unwrap_or_else(|| panic!("no detail {field}\n{}", run.context()))
    };
    let replicas = detail("deploy.replicas");
    assert_eq!(
        (
            &replicas["location"],
            &replicas["old"],
            &replicas["new"],
            &replicas["api_field"]
        ),
        (
            &Value::from("compose.yaml:12:17"),
            &Value::from(1),
            &Value::from(2),
            &Value::from("Mode.Replicated.Replicas")
        ),
        "{}",
        run.context()
    );
    let level = detail("environment.LOG_LEVEL");
    assert_eq!(
        (
            &level["location"],
            &level["redacted"],
            &level["old"],
            &level["new"]
        ),
        (
            &Value::from("compose.yaml:7:7"),
            &Value::from(true),
            &Value::Null,
            &Value::Null
        ),
        "{}",
        run.context()
    );
    let conf = detail("configs[app_conf]");
    assert_eq!(
        conf["new"],
        Value::from(stack.scoped("app_conf_v2")),
        "{}",
        run.context()
    );
    // 2 tasks replaced one at a time: 2 × 2 s, a 1 s delay, a 1 s monitor.
    assert_eq!(
        api["impact"],
        serde_json::json!({"restarts": true, "tasks": 2, "estimate_seconds": 6}),
        "{}",
        run.context()
    );
    assert_eq!(
        report["impact"]["services_restarted"],
        1,
        "{}",
        run.context()
    );

    let text = stack.plan(&[]);
    text.expect_code(0);
    text.expect_contains("deploy.replicas: 1 -> 2  (compose.yaml:12:17)");
    text.expect_contains("+listen 9090");
    text.expect_contains("Impact: 1 service restarts (2 tasks)");

    let deployed = stack.deploy(&["--output", "json"]);
    deployed.expect_code(0);
    let report = check_report(&deployed, &stack, "applied");
    let measured = report["measured_seconds"]
        .as_u64()
        .unwrap_or_else(|| panic!("no measured time\n{}", deployed.context()));
    assert!(
        measured >= 1,
        "a rolling update takes time\n{}",
        deployed.context()
    );
}

/// The content seal's parts (issue 16 §1): with 20 secrets the seal has three level 1 parts
/// (s00..s07, s08..s15, s16..s19). One changed secret voids the whole seal and its own part;
/// the two other parts still vouch for their 12 versions, only the changed key rotates, and
/// the new seal reuses the fingerprints of the parts whose versions did not change.
#[test]
fn e2e_one_changed_secret_among_many_is_found_through_the_seal_parts() {
    let stack = Stack::new("parts");
    let keys: Vec<String> = (0..20).map(|i| format!("s{i:02}")).collect();
    let mut compose = String::from(
        "services:\n  app:\n    image: local/busybox:1\n    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; sleep 3600 & wait\"]\n    secrets:\n",
    );
    for key in &keys {
        compose.push_str(&format!("      - {key}\n"));
    }
    compose.push_str("secrets:\n");
    for key in &keys {
        compose.push_str(&format!("  {key}:\n    file: ./{key}.txt\n"));
        stack.write_secret(&format!("{key}.txt"), key);
    }
    std::fs::write(stack.path("compose.yaml"), compose).unwrap();
    stack.deploy_ok(&[]);
    let parts = |serial: u64| -> Vec<Vec<String>> {
        let labels = labels_of("config", &stack.scoped(&format!("stackroll-seal_{serial}")));
        serde_json::from_str(&labels["io.stackroll.seal.parts"]).unwrap()
    };
    let before = parts(1);
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0].len(), 3, "{before:?}");

    stack.write_secret("s05.txt", "s05-changed");
    let run = stack.deploy_ok(&[]);
    run.expect_contains("its verified parts vouch for 12 of 20 versions");
    let created: Vec<String> = stack
        .objects("secret")
        .into_iter()
        .filter(|name| !name.ends_with("_v1"))
        .collect();
    assert_eq!(created, vec![stack.scoped("s05_v2")], "{}", run.context());
    assert_eq!(
        stack.objects("config"),
        BTreeSet::from([stack.scoped("stackroll-seal_2")])
    );
    let after = parts(2);
    assert_eq!(
        after[0][1..],
        before[0][1..],
        "parts without s05 are reused"
    );
    assert_ne!(after[0][0], before[0][0], "the part with s05 is made anew");

    let again = stack.deploy_ok(&[]);
    again.expect_contains("content seal verified");
}
