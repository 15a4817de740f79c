//! The stack commands (`ls`, `ps`, `status`, `rm`, `unlock`) and `deploy --prune` against the
//! real swarm, with `docker` as the oracle.

use crate::docker::{docker_lines, docker_ok, stack_objects, wait_for, WAIT};
use crate::stack::Stack;

/// Names of the stack's objects of one kind (`service`, `network`), sorted.
fn names_of(kind: &str, stack: &Stack) -> Vec<String> {
    let mut names = docker_lines(&[
        kind,
        "ls",
        "--filter",
        &format!("label=com.docker.stack.namespace={}", stack.name),
        "--format",
        "{{.Name}}",
    ]);
    names.sort();
    names
}

fn services_of(stack: &Stack) -> Vec<String> {
    names_of("service", stack)
}

fn networks_of(stack: &Stack) -> Vec<String> {
    names_of("network", stack)
}

#[test]
fn stack_ls_ps_status_and_rm() {
    let stack = Stack::new("stk");
    stack.use_compose("stacks/compose.yaml");
    stack.write_secret("db.txt", "stk1");
    stack.deploy_ok(&[]);
    stack.write_secret("db.txt", "stk2");
    stack.deploy_ok(&[]);

    // ls: this stack with 2 services, 2 secret versions (v1 kept for rollback), 1 config.
    let ls = stack.stackroll(&["ls", "--output", "json"]);
    ls.expect_code(0);
    let row = ls
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == stack.name.as_str())
        .cloned();
    let row = row.unwrap_or_else(|| panic!("ls lists the stack\n{}", ls.context()));
    assert_eq!(
        (
            row["services"].as_u64(),
            row["secrets"].as_u64(),
            row["configs"].as_u64()
        ),
        (Some(2), Some(2), Some(1)),
        "{row}"
    );
    stack
        .stackroll(&["ls"])
        .expect_code(0)
        .expect_contains(&stack.name);

    // ps: one running task per service, on this node.
    let ps = stack.stackroll(&["ps", "--output", "json", &stack.name]);
    ps.expect_code(0);
    let hostname = docker_ok(&["info", "--format", "{{.Name}}"])
        .trim()
        .to_string();
    let running: Vec<String> = ps
        .json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["desired_state"] == "running" && t["current_state"] == "running")
        .map(|t| {
            assert_eq!(
                t["node"].as_str(),
                Some(hostname.as_str()),
                "node hostname: {t}"
            );
            t["name"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(running.len(), 2, "{}", ps.context());
    assert!(
        running.contains(&format!("{}.1", stack.scoped("web"))),
        "{running:?}"
    );

    // status: db's live version is v2, v1 retained; every service converged.
    let status = stack.stackroll(&["status", "--output", "json", &stack.name]);
    status.expect_code(0);
    let status = status.json();
    let db = status["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["key"] == "db")
        .cloned()
        .expect("db in status");
    assert_eq!(
        db["live"].as_str(),
        Some(stack.scoped("db_v2").as_str()),
        "{db}"
    );
    assert_eq!(db["versions"].as_array().unwrap().len(), 2, "{db}");
    assert_eq!(
        db["references"].as_array().unwrap().len(),
        2,
        "both services use db: {db}"
    );
    for service in status["services"].as_array().unwrap() {
        assert_eq!(service["state"], "converged", "{service}");
    }
    stack
        .stackroll(&["status", &stack.name])
        .expect_code(0)
        .expect_contains("converged");

    // rm: services, networks and stackroll's objects go; a hand-made stack object stays.
    let handmade = stack.scoped("handmade");
    docker_ok(&[
        "config",
        "create",
        "--label",
        &format!("com.docker.stack.namespace={}", stack.name),
        &handmade,
        stack.path("compose.yaml").to_str().unwrap(),
    ]);
    let rm = stack.stackroll(&["rm", "--output", "json", &stack.name]);
    rm.expect_code(0);
    let removed = rm.json();
    assert_eq!(
        removed["services"].as_array().unwrap().len(),
        2,
        "{removed}"
    );
    assert_eq!(
        removed["networks"].as_array().unwrap().len(),
        2,
        "{removed}"
    );
    assert_eq!(
        removed["objects"].as_array().unwrap().len(),
        4,
        "db v1, db v2, conf v1 and the content seal: {removed}"
    );
    assert!(
        removed["objects"]
            .as_array()
            .unwrap()
            .contains(&serde_json::Value::from(stack.scoped("stackroll-seal_2"))),
        "{removed}"
    );
    assert!(services_of(&stack).is_empty() && networks_of(&stack).is_empty());
    assert!(stack_objects("secret", &stack.name).is_empty());
    assert_eq!(
        stack_objects("config", &stack.name)
            .into_iter()
            .collect::<Vec<_>>(),
        vec![handmade.clone()]
    );
    docker_ok(&["config", "rm", &handmade]);
}

#[test]
fn deploy_prune_removes_services_and_networks_no_longer_in_the_files() {
    let stack = Stack::new("prn");
    stack.use_compose("stacks/compose.yaml");
    stack.write_secret("db.txt", "prn1");
    stack.deploy_ok(&[]);
    assert_eq!(
        services_of(&stack),
        vec![stack.scoped("web"), stack.scoped("worker")]
    );

    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/e2e/stacks/web-only.yaml"),
        stack.path("compose.yaml"),
    )
    .unwrap();
    // Without --prune the worker is left running and the plan says so.
    let plan = stack.plan(&["--detailed-exitcode"]);
    plan.expect_code(0).expect_contains("--prune");
    stack.deploy_ok(&[]);
    assert_eq!(services_of(&stack).len(), 2);

    let plan = stack.plan(&["--prune", "--output", "json"]);
    plan.expect_code(0);
    let changes: Vec<(String, String, String)> = plan.json()["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().unwrap().into(),
                c["action"].as_str().unwrap().into(),
                c["name"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        changes.contains(&("service".into(), "delete".into(), stack.scoped("worker"))),
        "{changes:?}"
    );
    assert!(
        changes.contains(&("network".into(), "delete".into(), stack.scoped("back"))),
        "{changes:?}"
    );

    stack.deploy_ok(&["--prune"]);
    assert_eq!(services_of(&stack), vec![stack.scoped("web")]);
    wait_for("the pruned network to go", WAIT, || {
        (networks_of(&stack) == vec![stack.scoped("front")]).then_some(())
    });
    stack
        .plan(&["--prune", "--detailed-exitcode"])
        .expect_code(0);
}

#[test]
fn unlock_removes_a_lock_left_behind() {
    let stack = Stack::new("unl");
    stack.use_compose("stacks/web-only.yaml");
    stack.write_secret("db.txt", "unl1");
    let lock = format!("{}_stackroll-lock", stack.name);
    let far_future = "99999999999";
    docker_ok(&[
        "config",
        "create",
        "--label",
        "io.stackroll.lock.holder=ghost@nowhere pid 1",
        "--label",
        &format!("io.stackroll.lock.expires={far_future}"),
        &lock,
        stack.path("compose.yaml").to_str().unwrap(),
    ]);
    stack
        .deploy(&["--lock-timeout", "1s"])
        .expect_code(1)
        .expect_contains("ghost@nowhere pid 1");
    stack
        .stackroll(&["unlock", &stack.name])
        .expect_code(0)
        .expect_contains("ghost@nowhere pid 1");
    stack
        .stackroll(&["unlock", &stack.name])
        .expect_code(0)
        .expect_contains("has no deploy lock");
    stack.deploy_ok(&[]);
    assert!(
        docker_lines(&["config", "ls", "--format", "{{.Name}}"])
            .iter()
            .all(|name| name != &lock),
        "the deploy released its lock"
    );
}
