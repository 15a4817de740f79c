//! The Compose features of issue 14 on the real swarm: profiles, merging several files by key,
//! the project name as the stack, `include:`/`extends:`, and fields gated by the engine's API
//! version. Fixtures are in `fixtures/e2e/compose/`.

use std::collections::BTreeSet;

use crate::docker::*;
use crate::stack::*;

/// Profiles: a service whose profiles are all inactive is not created, nor the secret only it
/// uses; `--profile` (or `COMPOSE_PROFILES`) brings both in.
#[test]
fn e2e_profiles_choose_services_and_their_secrets() {
    let stack = Stack::new("prof");
    stack.use_compose("compose/profiles.yaml");
    stack.write_secret("db.txt", "db");
    stack.write_secret("token.txt", "token");

    stack.deploy_ok(&["--detach"]);
    assert_eq!(
        stack.objects("service"),
        BTreeSet::from([stack.scoped("web")])
    );
    assert_eq!(
        stack.objects("secret"),
        BTreeSet::from([stack.scoped("db_v1")])
    );

    stack.set_env("COMPOSE_PROFILES", "debug");
    stack.deploy_ok(&["--detach"]);
    assert_eq!(
        stack.objects("service"),
        BTreeSet::from([stack.scoped("web"), stack.scoped("debug")])
    );
    assert_eq!(
        stack.objects("secret"),
        BTreeSet::from([stack.scoped("db_v1"), stack.scoped("token_v1")])
    );
}

/// Several `-c` files merge ports and volumes by key: an override that re-declares a port or
/// mounts another directory at the same target does not duplicate them.
#[test]
fn e2e_override_files_merge_ports_and_volumes_by_key() {
    let stack = Stack::new("merge");
    for (fixture, name) in [
        ("merge-base.yaml", "base.yaml"),
        ("merge-override.yaml", "override.yaml"),
    ] {
        let source = crate::command::fixtures("e2e")
            .join("compose")
            .join(fixture);
        std::fs::copy(source, stack.path(name)).expect("copy fixture");
    }
    stack.deploy_ok(&["--detach", "-c", "base.yaml", "-c", "override.yaml"]);
    let spec = &service_inspect(&stack.scoped("app"))["Spec"];
    let ports = spec["EndpointSpec"]["Ports"].as_array().expect("ports");
    assert_eq!(ports.len(), 1, "{ports:?}");
    assert_eq!(ports[0]["PublishedPort"], 38991);
    let mounts = spec["TaskTemplate"]["ContainerSpec"]["Mounts"]
        .as_array()
        .expect("mounts");
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    assert_eq!(mounts[0]["Source"], "/var/tmp");
    assert_eq!(mounts[0]["Target"], "/data");
}

/// Without a stack argument, the top-level `name:` names the stack, and `${COMPOSE_PROJECT_NAME}`
/// reads it.
#[test]
fn e2e_the_files_name_is_the_stack() {
    let stack = Stack::new("named");
    stack.use_compose("compose/named.yaml");
    stack.set_env("E2E_STACK", &stack.name);
    stack.stackroll(&["deploy", "--detach"]).expect_code(0);
    let app = stack.scoped("app");
    assert_eq!(stack.objects("service"), BTreeSet::from([app.clone()]));
    let spec = &service_inspect(&app)["Spec"];
    let labels = &spec["TaskTemplate"]["ContainerSpec"]["Labels"];
    assert_eq!(labels["project"], stack.name.as_str());
}

/// `include:` brings in another project's services and secrets (its `file:` relative to its own
/// directory) and `extends:` takes a service from another file as a base.
#[test]
fn e2e_include_and_extends() {
    let stack = Stack::new("incl");
    let source = crate::command::fixtures("e2e")
        .join("compose")
        .join("include");
    std::fs::create_dir(stack.path("db")).expect("mkdir db");
    for file in ["compose.yaml", "db/compose.yaml", "db/base.yaml"] {
        std::fs::copy(source.join(file), stack.path(file)).expect("copy fixture");
    }
    let password = stack.write_secret("db/password.txt", "db");
    stack.deploy_ok(&[]);
    assert_eq!(
        stack.objects("service"),
        BTreeSet::from([stack.scoped("web"), stack.scoped("db")])
    );
    for service in ["web", "db"] {
        let spec = &service_inspect(&stack.scoped(service))["Spec"];
        let image = spec["TaskTemplate"]["ContainerSpec"]["Image"]
            .as_str()
            .unwrap_or_default();
        assert!(image.starts_with("local/busybox:1"), "{service}: {image}");
    }
    assert_same_value(
        &read_in_service(&stack.scoped("web"), "/run/secrets/db_password"),
        &password,
        "/run/secrets/db_password",
    );
}

/// `group_add`, `platform`, service-level `tmpfs` and `pids_limit` reach the ServiceSpec, the
/// task runs with them (the groups, the tmpfs with its mode), and a plan right after is empty.
#[test]
fn e2e_fields_swarm_has_beyond_docker_stack_deploy() {
    let stack = Stack::new("beyond");
    stack.use_compose("compose/beyond-stack-deploy.yaml");
    stack.deploy_ok(&[]);
    let app = stack.scoped("app");
    let spec = &service_inspect(&app)["Spec"];
    let task = &spec["TaskTemplate"];
    assert_eq!(task["ContainerSpec"]["Groups"], serde_json::json!(["1001"]));
    assert_eq!(
        task["Placement"]["Platforms"],
        serde_json::json!([{"Architecture": "amd64", "OS": "linux"}])
    );
    assert_eq!(task["Resources"]["Limits"]["Pids"], 64);
    assert_eq!(
        task["ContainerSpec"]["Mounts"],
        serde_json::json!([{"Type": "tmpfs", "Target": "/run/cache",
            "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 0o1777}}])
    );
    let groups = String::from_utf8_lossy(&exec_in_service(&app, &["id", "-G"])).into_owned();
    assert!(groups.split_whitespace().any(|g| g == "1001"), "{groups}");
    let mounts = String::from_utf8_lossy(&read_in_service(&app, "/proc/mounts")).into_owned();
    assert!(
        mounts
            .lines()
            .any(|l| l.starts_with("tmpfs /run/cache tmpfs") && l.contains("size=1024k")),
        "{mounts}"
    );
    stack
        .plan(&["--detailed-exitcode"])
        .expect_code(0)
        .expect_contains("No changes");
}

/// On the 20.10 engine (API 1.41), fields a newer API brought are refused by plan and deploy,
/// each at its place with the version it needs and the one the engine speaks; nothing is
/// written.
#[test]
fn e2e_fields_a_newer_engine_api_brought_are_refused_at_api_1_41() {
    let stack = Stack::new("newapi");
    stack.use_compose("compose/newer-api.yaml");
    for run in [stack.plan(&[]), stack.deploy(&[])] {
        run.expect_code(1)
            .expect_contains("compose.yaml:7:20: services.app.oom_score_adj: oom_score_adj needs Docker Engine API 1.46 (Docker 27.0); this engine speaks API 1.41")
            .expect_contains("services.app.healthcheck.start_interval: healthcheck.start_interval needs Docker Engine API 1.44")
            .expect_contains("services.app.volumes[0].volume.subpath: a volume subpath needs Docker Engine API 1.45");
    }
    assert!(stack.objects("service").is_empty());
    assert!(stack.objects("config").is_empty());
}
