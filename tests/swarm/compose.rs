//! The Compose features of issue 14 on the real swarm: profiles, merging several files by key,
//! the project name as the stack, `include:`/`extends:`, and fields gated by the engine's API
//! version. Fixtures are in `fixtures/e2e/compose/`.

use std::collections::BTreeSet;

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
