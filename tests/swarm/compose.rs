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
