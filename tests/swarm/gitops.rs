//! Commands a pipeline gates on, against the real swarm: `status` exits with the stack's state
//! (0 converged, 3 failed, 4 still updating), `wait` waits for a rollout whoever started it
//! (exit 3 on a rollback), `rollback` returns services to their previous spec and secret
//! versions (`--dry-run` first), and is refused when there is nothing to return to; the
//! example pipeline (`examples/gitops/pipeline.sh`) runs as a pipeline would.

use std::collections::BTreeSet;

use crate::command::{age_encrypt, age_key};
use crate::docker::{read_in_service, referenced_names, service_inspect};
use crate::leaks::{leaks_in, redact, secret_value};
use crate::stack::Stack;

#[test]
fn e2e_status_wait_and_rollback() {
    let stack = Stack::new("gate");
    stack.use_compose("healthcheck/compose.yaml");
    let good = stack.write_secret("db.txt", "good");
    stack.deploy_ok(&[]);
    let app = stack.scoped("app");
    let (v1, v2) = (stack.scoped("db_v1"), stack.scoped("db_v2"));
    stack.stackroll(&["status", &stack.name]).expect_code(0);

    // Nothing to go back to yet: refused, nothing written.
    stack
        .stackroll(&["rollback", &stack.name])
        .expect_code(1)
        .expect_contains("has no previous state to roll back to");

    // An update still running is 4; `wait` sees it through.
    stack.write_secret("db.txt", "good2");
    stack.deploy_ok(&["--detach"]);
    stack
        .stackroll(&["status", &stack.name])
        .expect_code(4)
        .expect_contains("updating");
    stack
        .stackroll(&["wait", "--timeout", "120s", &stack.name])
        .expect_code(0)
        .expect_contains("1 services converged");
    stack.stackroll(&["status", &stack.name]).expect_code(0);
    let secrets = || referenced_names(&service_inspect(&app)["Spec"], "secret");
    assert_eq!(secrets(), BTreeSet::from([v2.clone()]));

    // The plan of a rollback writes nothing.
    stack
        .stackroll(&["rollback", "--dry-run", &stack.name])
        .expect_code(0)
        .expect_contains(&format!("secret {v1} back"))
        .expect_contains(&format!("secret {v2} removed"));
    assert_eq!(secrets(), BTreeSet::from([v2.clone()]));

    stack
        .stackroll(&["rollback", "--timeout", "120s", &stack.name])
        .expect_code(0)
        .expect_contains("Rolled back 1 services");
    assert_eq!(secrets(), BTreeSet::from([v1.clone()]));
    assert_eq!(read_in_service(&app, "/run/secrets/db"), good.as_bytes());
    stack.stackroll(&["status", &stack.name]).expect_code(0);

    // A failing update: `wait` judges Swarm's rollback a failure, and so does `status`.
    stack.write_secret("db.txt", "bad");
    stack.deploy_ok(&["--detach"]);
    stack
        .stackroll(&["wait", "--timeout", "120s", &stack.name])
        .expect_code(3)
        .expect_contains(&app);
    stack
        .stackroll(&["status", "--output", "json", &stack.name])
        .expect_code(3);
}

#[test]
fn e2e_wait_for_a_stack_docker_deployed() {
    let stack = Stack::new("dwait");
    stack.use_compose("adopt/compose.yaml");
    stack.write_secret("db.txt", "db");
    let output = std::process::Command::new(crate::docker::docker_binary())
        .current_dir(stack.dir.path())
        .args([
            "stack",
            "deploy",
            "--resolve-image",
            "never",
            "-c",
            "compose.yaml",
        ])
        .arg(&stack.name)
        .output()
        .expect("docker stack deploy");
    assert!(output.status.success(), "docker stack deploy failed");
    stack
        .stackroll(&["wait", "--timeout", "120s", &stack.name])
        .expect_code(0)
        .expect_contains("1 services converged");
}

/// `examples/gitops/pipeline.sh` as a pipeline runs it: a plan for the pull request (Markdown,
/// exit status of `--detailed-exitcode`), then the deploy on merge, gated on `status`.
#[test]
fn e2e_gitops_example_pipeline() {
    let stack = Stack::new("gitx");
    let example = crate::command::fixtures("../examples/gitops");
    for file in ["compose.yaml", "pipeline.sh"] {
        std::fs::copy(example.join(file), stack.path(file)).unwrap();
    }
    std::fs::create_dir(stack.path("secrets")).unwrap();
    let write_db = |prefix: &str| {
        let value = secret_value(prefix, &format!("{} gitops example db", stack.name));
        std::fs::write(
            stack.path("secrets/db.age"),
            age_encrypt(value.as_bytes(), true),
        )
        .unwrap();
        value
    };
    let pipeline = |step: &str| {
        let output = std::process::Command::new("sh")
            .arg(stack.path("pipeline.sh"))
            .args([step, stack.name.as_str()])
            .env("STACKROLL", env!("CARGO_BIN_EXE_stackroll"))
            .env("SOPS_AGE_KEY_FILE", age_key("sops-test.txt"))
            .env_remove("SOPS_AGE_KEY")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(leaks_in(&text).is_empty(), "{}", redact(&text));
        (output.status.code(), text)
    };
    let plan_md = || {
        let text = std::fs::read_to_string(stack.path("plan.md")).unwrap();
        assert!(leaks_in(&text).is_empty(), "{}", redact(&text));
        text
    };

    write_db("gitdb");
    let (code, text) = pipeline("plan");
    assert_eq!(code, Some(0), "{}", redact(&text));
    assert!(text.contains("changes: see plan.md"), "{}", redact(&text));
    let md = plan_md();
    assert!(
        md.contains(&format!(
            "| secret | `{}` | ➕ create |",
            stack.scoped("db_v1")
        )),
        "{md}"
    );
    assert!(md.contains("age file ./secrets/db.age"), "{md}");

    let (code, text) = pipeline("deploy");
    assert_eq!(code, Some(0), "{}", redact(&text));
    let (code, text) = pipeline("plan");
    assert_eq!(
        (code, text.contains("no changes")),
        (Some(0), true),
        "{}",
        redact(&text)
    );
    assert!(plan_md().contains(": no changes"));

    // A new plaintext: a rotation for the pull request to show, then deployed.
    write_db("gitdb2");
    pipeline("plan");
    let md = plan_md();
    assert!(
        md.contains(&format!(
            "| secret | `{}` | ➕ create |",
            stack.scoped("db_v2")
        )),
        "{md}"
    );
    assert!(md.contains("🔄 update"), "{md}");
    let (code, text) = pipeline("deploy");
    assert_eq!(code, Some(0), "{}", redact(&text));
}
