//! Plan and apply against the in-memory engine: versioning, reuse, prune rules, idempotence,
//! externals, adoption and failed rollouts, without a swarm.

use std::path::Path;
use std::time::Duration;

use indexmap::IndexMap;
use tempfile::TempDir;

use super::{apply, ApplyError, ApplyInput, ApplyOptions, Progress, Reporter};
use crate::compose::{load, LoadOptions};
use crate::contents::Contents;
use crate::convert::ConvertedProject;
use crate::engine::fake::FakeEngine;
use crate::engine::Engine;
use crate::model::ObjectKind;
use crate::observe::observe;
use crate::plan::fingerprint::Fingerprinter;
use crate::plan::images::ImageFacts;
use crate::plan::{plan, Action, Plan, PlanError, PlanInput, Resource};
use crate::swarm::namespace::Namespace;

struct Quiet;
impl Reporter for Quiet {
    fn report(&self, _: Progress<'_>) {}
}

struct Project {
    dir: TempDir,
    env: IndexMap<String, String>,
    prune: bool,
}

impl Project {
    fn new(compose: &str) -> Project {
        let dir = TempDir::new().unwrap();
        std::fs::write(dir.path().join("compose.yaml"), compose).unwrap();
        Project {
            dir,
            env: IndexMap::new(),
            prune: false,
        }
    }

    fn file(&self, name: &str, content: &str) -> &Project {
        std::fs::write(self.dir.path().join(name), content).unwrap();
        self
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// How far a test deploy goes.
#[derive(Clone, Copy, PartialEq)]
enum How {
    /// Plan only.
    PlanOnly,
    /// Apply and wait for rollouts (and prune).
    Wait,
    /// Apply without waiting (`--detach`).
    Detach,
}

/// Loads the project, plans against the engine and applies as `how` says, keeping `keep`.
fn attempt(
    engine: &FakeEngine,
    project: &Project,
    keep: usize,
    how: How,
) -> Result<(Plan, Result<(), ApplyError>), PlanError> {
    let options = ApplyOptions {
        detach: how == How::Detach,
        timeout: Duration::from_secs(5),
        poll: Duration::from_millis(1),
        settle: Duration::ZERO,
        kill_at: None,
    };
    attempt_on(&runtime(), engine, project, keep, how, &options)
}

/// [`attempt`] on `runtime` with `options`.
fn attempt_on(
    runtime: &tokio::runtime::Runtime,
    engine: &FakeEngine,
    project: &Project,
    keep: usize,
    how: How,
    options: &ApplyOptions,
) -> Result<(Plan, Result<(), ApplyError>), PlanError> {
    let load_options = LoadOptions {
        working_dir: project.path().to_path_buf(),
        process_env: project.env.clone(),
        ..LoadOptions::default()
    };
    let loaded =
        load(&load_options).unwrap_or_else(|d| panic!("{:?}", d.errors().collect::<Vec<_>>()));
    let contents = Contents::read(&loaded, project.path()).unwrap();
    let namespace = Namespace("demo".into());
    let fingerprinter =
        Fingerprinter::from_key(Some("test-key-0123456789abcdef0123456789".into())).unwrap();
    runtime.block_on(async {
        let observed = observe(engine, &namespace).await.unwrap();
        let input = PlanInput {
            namespace: &namespace,
            project: &loaded.project,
            contents: &contents,
            fingerprinter: &fingerprinter,
            keep,
            prune: project.prune,
            images: &ImageFacts::default(),
        };
        let converted = ConvertedProject::new(&namespace, &loaded.project);
        let plan = plan(&input, &converted, &observed)?;
        if how == How::PlanOnly {
            return Ok((plan, Ok(())));
        }
        let apply_input = ApplyInput {
            plan: &plan,
            namespace: &namespace,
            contents: &contents,
            fingerprinter: &fingerprinter,
            project: &loaded.project,
            keep,
        };
        let result = apply(engine, &apply_input, &Quiet, options)
            .await
            .map(|_| ());
        Ok((plan, result))
    })
}

/// [`attempt`] for a project that must plan.
fn deploy(
    engine: &FakeEngine,
    project: &Project,
    keep: usize,
    how: How,
) -> (Plan, Result<(), ApplyError>) {
    attempt(engine, project, keep, how).unwrap_or_else(|error| panic!("no plan: {error:?}"))
}

/// Deploys again and requires that nothing was planned or written.
fn assert_noop(engine: &FakeEngine, project: &Project) {
    engine.clear_writes();
    let (plan, result) = deploy(engine, project, 1, How::Wait);
    result.unwrap();
    assert!(plan.is_empty(), "{:?}", plan.changes);
    assert_eq!(engine.write_count(), 0, "{:?}", engine.writes());
}

/// Names of the things a plan does `action` to.
fn names(plan: &Plan, action: Action) -> Vec<&str> {
    plan.changes
        .iter()
        .filter(|c| c.action == action)
        .map(|c| c.name.as_str())
        .collect()
}

fn secret_names(engine: &FakeEngine) -> Vec<String> {
    engine
        .objects(ObjectKind::Secret)
        .iter()
        .map(|o| o.summary().name)
        .collect()
}

fn service_secret_names(engine: &FakeEngine, service: &str) -> Vec<String> {
    let services = engine.services();
    let service = services
        .iter()
        .find(|s| s.name == service)
        .expect("service exists");
    let (list, _, name_key) = ObjectKind::Secret.spec_keys();
    service.spec["TaskTemplate"]["ContainerSpec"][list]
        .as_array()
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r[name_key].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

const APP: &str = "services:
  app:
    image: local/busybox:1
    secrets:
      - db
      - source: db
        target: /etc/db
        mode: 0400
secrets:
  db:
    file: ./db.txt
";

#[test]
fn first_deploy_then_no_op_writes_nothing() {
    let engine = FakeEngine::new();
    let project = Project::new(APP);
    project.file("db.txt", "one");
    let (plan, result) = deploy(&engine, &project, 1, How::Wait);
    result.unwrap();
    assert_eq!(plan.summary.create, 3, "{:?}", plan.changes);
    assert_eq!(secret_names(&engine), vec!["demo_db_v1"]);
    assert_eq!(
        service_secret_names(&engine, "demo_app"),
        vec!["demo_db_v1", "demo_db_v1"]
    );

    assert_noop(&engine, &project);
}

#[test]
fn rotation_creates_the_next_version_at_the_same_targets_and_prunes_beyond_keep() {
    let engine = FakeEngine::new();
    let project = Project::new(APP);
    project.file("db.txt", "one");
    deploy(&engine, &project, 1, How::Wait).1.unwrap();
    let before = engine.services()[0]
        .spec
        .pointer("/TaskTemplate/ContainerSpec/Secrets")
        .cloned()
        .unwrap();

    project.file("db.txt", "two");
    let (plan, result) = deploy(&engine, &project, 1, How::Wait);
    result.unwrap();
    let created = names(&plan, Action::Create);
    assert_eq!(created, vec!["demo_db_v2"]);
    assert_eq!(
        secret_names(&engine),
        vec!["demo_db_v1", "demo_db_v2"],
        "v1 kept for rollback"
    );
    let after = engine.services()[0]
        .spec
        .pointer("/TaskTemplate/ContainerSpec/Secrets")
        .cloned()
        .unwrap();
    for (old, new) in before
        .as_array()
        .unwrap()
        .iter()
        .zip(after.as_array().unwrap())
    {
        assert_eq!(
            old["File"], new["File"],
            "target, uid, gid and mode never change"
        );
        assert_eq!(new["SecretName"], "demo_db_v2");
    }

    project.file("db.txt", "three");
    let (plan, result) = deploy(&engine, &project, 1, How::Wait);
    result.unwrap();
    let deleted = names(&plan, Action::Delete);
    assert_eq!(deleted, vec!["demo_db_v1"]);
    assert_eq!(secret_names(&engine), vec!["demo_db_v2", "demo_db_v3"]);
}

#[test]
fn content_equal_to_a_retained_version_reuses_it() {
    let engine = FakeEngine::new();
    let project = Project::new(APP);
    project.file("db.txt", "one");
    deploy(&engine, &project, 1, How::Wait).1.unwrap();
    project.file("db.txt", "two");
    deploy(&engine, &project, 1, How::Wait).1.unwrap();
    project.file("db.txt", "one");
    let (plan, result) = deploy(&engine, &project, 1, How::Wait);
    result.unwrap();
    assert_eq!(plan.summary.create, 0, "{:?}", plan.changes);
    assert_eq!(
        service_secret_names(&engine, "demo_app"),
        vec!["demo_db_v1", "demo_db_v1"]
    );
    assert!(
        plan.notes.iter().any(|n| n.contains("retained v1")),
        "{:?}",
        plan.notes
    );
}

#[test]
fn a_shared_secret_is_created_once_and_every_service_moves_to_it() {
    let engine = FakeEngine::new();
    let compose = "services:\n  a: {image: i, secrets: [db]}\n  b: {image: i, secrets: [db]}\n  c: {image: i, secrets: [db]}\nsecrets:\n  db: {file: ./db.txt}\n";
    let project = Project::new(compose);
    project.file("db.txt", "one");
    deploy(&engine, &project, 1, How::Wait).1.unwrap();
    project.file("db.txt", "two");
    let (plan, result) = deploy(&engine, &project, 1, How::Wait);
    result.unwrap();
    assert_eq!((plan.summary.create, plan.summary.update), (1, 3));
    for service in ["demo_a", "demo_b", "demo_c"] {
        assert_eq!(service_secret_names(&engine, service), vec!["demo_db_v2"]);
    }
}

#[test]
fn a_rotation_of_ten_services_takes_the_time_of_one_update_not_ten() {
    let engine = FakeEngine::new();
    let mut compose = String::from("services:\n");
    for n in 0..10 {
        compose.push_str(&format!("  app{n}: {{image: i, secrets: [token]}}\n"));
    }
    compose.push_str("secrets:\n  token: {file: ./token.txt}\n");
    let project = Project::new(&compose);
    project.file("token.txt", "one");
    deploy(&engine, &project, 1, How::Wait).1.unwrap();
    // From now on each of Swarm's updates takes 8 s (on the paused clock of this runtime);
    // rollouts are seen through events, polls come only every minute.
    let rollout = Duration::from_secs(8);
    engine.set_rollout_time(rollout);
    project.file("token.txt", "two");
    let paused = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let options = ApplyOptions {
        poll: Duration::from_secs(60),
        ..ApplyOptions::waiting(Duration::from_secs(600))
    };
    let started = paused.block_on(async { tokio::time::Instant::now() });
    let (plan, result) = attempt_on(&paused, &engine, &project, 1, How::Wait, &options).unwrap();
    let took = paused.block_on(async { started.elapsed() });
    result.unwrap();
    assert_eq!(plan.summary.update, 10);
    // Writing and waiting for one service after another would take 10 x 8 s.
    assert!(
        took >= rollout && took < rollout + Duration::from_millis(100),
        "took {took:?}"
    );
    for n in 0..10 {
        let service = format!("demo_app{n}");
        assert_eq!(
            service_secret_names(&engine, &service),
            vec!["demo_token_v2"]
        );
    }
}

#[test]
fn missing_externals_are_all_listed_and_nothing_is_written() {
    let engine = FakeEngine::new();
    let compose = "services:\n  app: {image: i, secrets: [a, b]}\nsecrets:\n  a: {external: true}\n  b: {external: true, name: other}\n";
    let project = Project::new(compose);
    match attempt(&engine, &project, 1, How::Wait) {
        Err(PlanError::MissingExternal(missing)) => {
            assert_eq!(missing, vec!["secret a", "secret other"])
        }
        other => panic!("expected missing externals, got {other:?}"),
    }
    assert_eq!(engine.write_count(), 0);

    engine.insert_object(ObjectKind::Secret, "a", &[]);
    engine.insert_object(ObjectKind::Secret, "other", &[]);
    let (plan, result) = deploy(&engine, &project, 1, How::Wait);
    result.unwrap();
    assert!(
        plan.changes.iter().all(|c| c.resource != Resource::Secret),
        "externals are never created"
    );
    assert_eq!(
        service_secret_names(&engine, "demo_app"),
        vec!["a", "other"]
    );
}

#[test]
fn a_rolled_back_update_fails_and_prunes_nothing() {
    let engine = FakeEngine::new();
    let project = Project::new(APP);
    project.file("db.txt", "one");
    deploy(&engine, &project, 0, How::Wait).1.unwrap();
    project.file("db.txt", "two");
    engine.fail_next_update(
        "demo_app",
        "rollback_completed",
        "update rolled back due to failure",
    );
    let (_, result) = deploy(&engine, &project, 0, How::Wait);
    match result {
        Err(ApplyError::Rollout(failures)) => {
            assert_eq!(failures[0].service, "demo_app");
            assert!(
                failures[0].reason.contains("rollback_completed"),
                "{failures:?}"
            );
        }
        other => panic!("expected a rollout failure, got {other:?}"),
    }
    assert_eq!(secret_names(&engine), vec!["demo_db_v1", "demo_db_v2"]);
    assert_eq!(
        service_secret_names(&engine, "demo_app"),
        vec!["demo_db_v1", "demo_db_v1"]
    );

    // Fixed content that equals the running version: nothing to create, nothing to update.
    project.file("db.txt", "one");
    let (plan, result) = deploy(&engine, &project, 0, How::PlanOnly);
    result.unwrap();
    assert_eq!(
        (plan.summary.create, plan.summary.update),
        (0, 0),
        "{:?}",
        plan.changes
    );
}

#[test]
fn adoption_moves_services_to_v1_and_leaves_unversioned_objects() {
    let engine = FakeEngine::new();
    engine.insert_object(
        ObjectKind::Secret,
        "demo_db",
        &[("com.docker.stack.namespace", "demo")],
    );
    engine.insert_object(
        ObjectKind::Secret,
        "demo_handmade_v1",
        &[
            ("com.docker.stack.namespace", "demo"),
            ("io.stackroll.key", "handmade"),
            ("io.stackroll.version", "1"),
        ],
    );
    let project = Project::new(APP);
    project.file("db.txt", "one");
    let (plan, result) = deploy(&engine, &project, 0, How::Wait);
    result.unwrap();
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("adopting secret demo_db") && n.contains("cannot be verified")),
        "{:?}",
        plan.notes
    );
    assert_eq!(
        secret_names(&engine),
        vec!["demo_db", "demo_db_v1", "demo_handmade_v1"]
    );
    project.file("db.txt", "two");
    deploy(&engine, &project, 0, How::Wait).1.unwrap();
    project.file("db.txt", "three");
    deploy(&engine, &project, 0, How::Wait).1.unwrap();
    let names = secret_names(&engine);
    assert!(
        names.contains(&"demo_db".to_string()) && names.contains(&"demo_handmade_v1".to_string()),
        "{names:?}"
    );
}

#[test]
fn a_removed_secret_is_deleted_once_nothing_references_it() {
    let engine = FakeEngine::new();
    let project = Project::new(APP);
    project.file("db.txt", "one");
    deploy(&engine, &project, 1, How::Wait).1.unwrap();
    std::fs::write(
        project.path().join("compose.yaml"),
        "services:\n  app:\n    image: local/busybox:1\n",
    )
    .unwrap();
    let (plan, result) = deploy(&engine, &project, 1, How::Wait);
    result.unwrap();
    // The service's previous spec still references v1 (a rollback needs it): kept.
    assert!(
        plan.changes.iter().all(|c| c.action != Action::Delete),
        "{:?}",
        plan.changes
    );
    assert_eq!(secret_names(&engine), vec!["demo_db_v1"]);
    std::fs::write(
        project.path().join("compose.yaml"),
        "services:\n  app:\n    image: local/busybox:1\n    environment: [A=1]\n",
    )
    .unwrap();
    let (plan, result) = deploy(&engine, &project, 1, How::Wait);
    result.unwrap();
    assert!(
        plan.changes
            .iter()
            .any(|c| c.action == Action::Delete && c.name == "demo_db_v1"),
        "{:?}",
        plan.changes
    );
    assert!(secret_names(&engine).is_empty());
}

#[test]
fn detach_writes_without_pruning() {
    let engine = FakeEngine::new();
    let project = Project::new(APP);
    for content in ["one", "two", "three"] {
        project.file("db.txt", content);
        deploy(&engine, &project, 0, How::Detach).1.unwrap();
    }
    assert_eq!(
        secret_names(&engine),
        vec!["demo_db_v1", "demo_db_v2", "demo_db_v3"]
    );
}

#[test]
fn prune_removes_services_and_networks_the_files_no_longer_have() {
    let engine = FakeEngine::new();
    let two = "services:\n  app: {image: i, networks: [front]}\n  old: {image: i, secrets: [db], networks: [back]}\nnetworks:\n  front: {}\n  back: {}\nsecrets:\n  db: {file: ./db.txt}\n";
    let mut project = Project::new(two);
    project.file("db.txt", "one");
    deploy(&engine, &project, 1, How::Wait).1.unwrap();
    std::fs::write(
        project.path().join("compose.yaml"),
        "services:\n  app: {image: i, networks: [front]}\nnetworks:\n  front: {}\n",
    )
    .unwrap();

    let (plan, result) = deploy(&engine, &project, 1, How::Wait);
    result.unwrap();
    assert!(
        plan.changes.iter().all(|c| c.resource != Resource::Service),
        "without --prune nothing is removed: {:?}",
        plan.changes
    );
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("demo_old") && n.contains("--prune")),
        "{:?}",
        plan.notes
    );
    assert_eq!(engine.services().len(), 2);

    project.prune = true;
    let (plan, result) = deploy(&engine, &project, 1, How::Wait);
    result.unwrap();
    let deleted: Vec<_> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .map(|c| (c.resource, c.name.as_str()))
        .collect();
    assert_eq!(
        deleted,
        vec![
            (Resource::Service, "demo_old"),
            (Resource::Network, "demo_back"),
            (Resource::Secret, "demo_db_v1")
        ]
    );
    let names: Vec<String> = engine.services().iter().map(|s| s.name.clone()).collect();
    assert_eq!(names, vec!["demo_app"]);
    assert!(engine.networks().iter().all(|n| n.name != "demo_back"));
    assert!(engine.networks().iter().any(|n| n.name == "demo_front"));
    assert!(secret_names(&engine).is_empty());
}

#[test]
fn version_numbers_are_never_reused_after_a_prune() {
    let engine = FakeEngine::new();
    let project = Project::new(APP);
    for content in ["one", "two", "one"] {
        project.file("db.txt", content);
        deploy(&engine, &project, 0, How::Wait).1.unwrap();
    }
    assert_eq!(
        service_secret_names(&engine, "demo_app"),
        vec!["demo_db_v1", "demo_db_v1"]
    );
    // A spec change moves the previous spec off v2: with --keep 0, v2 is unreferenced but it is
    // the highest version, so it stays.
    let with_env = APP.replace(
        "    image: local/busybox:1\n",
        "    image: local/busybox:1\n    environment: [A=1]\n",
    );
    std::fs::write(project.path().join("compose.yaml"), with_env).unwrap();
    let (plan, result) = deploy(&engine, &project, 0, How::Wait);
    result.unwrap();
    assert!(
        plan.changes.iter().all(|c| c.action != Action::Delete),
        "{:?}",
        plan.changes
    );
    project.file("db.txt", "three");
    let (plan, result) = deploy(&engine, &project, 0, How::Wait);
    result.unwrap();
    let created = names(&plan, Action::Create);
    assert_eq!(created, vec!["demo_db_v3"]);
}

#[test]
fn an_unsettled_update_is_awaited_and_judged_even_with_nothing_to_change() {
    let engine = FakeEngine::new();
    let project = Project::new(APP);
    project.file("db.txt", "one");
    deploy(&engine, &project, 0, How::Wait).1.unwrap();
    project.file("db.txt", "two");
    engine.fail_next_update("demo_app", "paused", "update paused due to failure");
    assert!(matches!(
        deploy(&engine, &project, 0, How::Wait).1,
        Err(ApplyError::Rollout(_))
    ));
    // The spec is the desired one, but Swarm paused the update: the next deploy has nothing to
    // change, still waits, and reports the failure instead of "No changes".
    let (plan, result) = deploy(&engine, &project, 0, How::Wait);
    assert!(plan.is_empty() && plan.needs_apply(), "{plan:?}");
    assert!(
        plan.notes.iter().any(|n| n.contains("paused")),
        "{:?}",
        plan.notes
    );
    match result {
        Err(ApplyError::Rollout(failures)) => {
            assert!(failures[0].reason.contains("paused"), "{failures:?}")
        }
        other => panic!("expected the paused update to fail the deploy, got {other:?}"),
    }
    assert_eq!(
        secret_names(&engine),
        vec!["demo_db_v1", "demo_db_v2"],
        "nothing pruned"
    );
}

fn config_names(engine: &FakeEngine) -> Vec<String> {
    engine
        .objects(ObjectKind::Config)
        .iter()
        .map(|o| o.summary().name)
        .collect()
}

/// Makes every per-version fingerprint of the stack unusable, so only the content seal can
/// tell that contents are unchanged.
fn spoil_version_fingerprints(engine: &FakeEngine) {
    for kind in [ObjectKind::Secret, ObjectKind::Config] {
        for object in engine.objects(kind) {
            if object.labels.contains_key(crate::swarm::labels::KEY_LABEL) {
                engine.set_object_label(
                    kind,
                    &object.name,
                    crate::swarm::labels::FINGERPRINT_LABEL,
                    "spoiled",
                );
            }
        }
    }
}

const TWO_SECRETS: &str = "services:
  app:
    image: local/busybox:1
    secrets: [db, api]
secrets:
  db:
    file: ./db.txt
  api:
    file: ./api.txt
";

#[test]
fn a_deploy_records_a_seal_that_vouches_for_unchanged_contents_alone() {
    let engine = FakeEngine::new();
    let project = Project::new(TWO_SECRETS);
    project.file("db.txt", "one").file("api.txt", "key");
    deploy(&engine, &project, 1, How::Wait).1.unwrap();
    assert_eq!(config_names(&engine), vec!["demo_stackroll-seal_1"]);

    // With every per-version fingerprint spoiled, the seal alone shows nothing changed.
    spoil_version_fingerprints(&engine);
    engine.clear_writes();
    let (plan, result) = deploy(&engine, &project, 1, How::Wait);
    result.unwrap();
    assert!(plan.is_empty(), "{:?}", plan.changes);
    assert!(plan.seal.is_none());
    assert_eq!(engine.write_count(), 0, "{:?}", engine.writes());

    // Without the seal, the spoiled fingerprints match nothing: every key would rotate.
    let seal_id = engine.objects(ObjectKind::Config)[0].id.clone();
    runtime()
        .block_on(engine.remove_object(ObjectKind::Config, &seal_id))
        .unwrap();
    let (plan, _) = deploy(&engine, &project, 1, How::PlanOnly);
    assert_eq!(plan.summary.create, 2, "{:?}", plan.changes);
}

#[test]
fn a_changed_content_voids_the_seal_and_only_that_key_rotates() {
    let engine = FakeEngine::new();
    let project = Project::new(TWO_SECRETS);
    project.file("db.txt", "one").file("api.txt", "key");
    deploy(&engine, &project, 1, How::Wait).1.unwrap();

    project.file("db.txt", "two");
    let (plan, result) = deploy(&engine, &project, 1, How::Wait);
    result.unwrap();
    let created = names(&plan, Action::Create);
    assert_eq!(created, vec!["demo_db_v2"], "the per-version checks decide");
    // A new seal replaced the old one, naming the new version.
    let configs = engine.objects(ObjectKind::Config);
    assert_eq!(config_names(&engine), vec!["demo_stackroll-seal_2"]);
    let db_v2 = engine
        .objects(ObjectKind::Secret)
        .into_iter()
        .find(|o| o.name == "demo_db_v2")
        .unwrap();
    assert!(configs[0].labels[crate::swarm::labels::SEAL_OBJECTS_LABEL].contains(&db_v2.id));

    spoil_version_fingerprints(&engine);
    assert_noop(&engine, &project);
}

#[test]
fn a_seal_covers_the_keys_it_names_when_a_key_is_added() {
    let engine = FakeEngine::new();
    let project = Project::new(APP);
    project.file("db.txt", "one").file("api.txt", "key");
    deploy(&engine, &project, 1, How::Wait).1.unwrap();
    spoil_version_fingerprints(&engine);

    std::fs::write(project.path().join("compose.yaml"), TWO_SECRETS).unwrap();
    let (plan, result) = deploy(&engine, &project, 1, How::Wait);
    result.unwrap();
    let created = names(&plan, Action::Create);
    assert_eq!(
        created,
        vec!["demo_api_v1"],
        "db stays on v1: the seal vouches"
    );
    assert_eq!(config_names(&engine), vec!["demo_stackroll-seal_2"]);
}

/// A stack of 40 secrets (keys s00..s39, one service using them all): its seal has five
/// level 1 parts (s00..s07, s08..s15, ..., s32..s39).
fn forty_secrets() -> Project {
    let keys: Vec<String> = (0..40).map(|i| format!("s{i:02}")).collect();
    let mut compose = format!(
        "services:\n  app:\n    image: local/busybox:1\n    secrets: [{}]\nsecrets:\n",
        keys.join(", ")
    );
    for key in &keys {
        compose.push_str(&format!("  {key}:\n    file: ./{key}.txt\n"));
    }
    let project = Project::new(&compose);
    for key in &keys {
        project.file(&format!("{key}.txt"), key);
    }
    project
}

/// The seal's part fingerprints (level 1) as stored.
fn seal_parts(engine: &FakeEngine) -> Vec<Vec<String>> {
    let configs = engine.objects(ObjectKind::Config);
    let seal = configs
        .iter()
        .find(|c| c.labels.contains_key(crate::swarm::labels::SEAL_LABEL))
        .expect("a seal");
    serde_json::from_str(&seal.labels[crate::swarm::labels::SEAL_PARTS_LABEL]).unwrap()
}

/// Spoils the per-version fingerprints of the keys `spoil` accepts.
fn spoil_fingerprints_of(engine: &FakeEngine, spoil: impl Fn(&str) -> bool) {
    for object in engine.objects(ObjectKind::Secret) {
        if object
            .labels
            .get(crate::swarm::labels::KEY_LABEL)
            .is_some_and(|key| spoil(key))
        {
            engine.set_object_label(
                ObjectKind::Secret,
                &object.name,
                crate::swarm::labels::FINGERPRINT_LABEL,
                "spoiled",
            );
        }
    }
}

#[test]
fn a_changed_key_among_many_is_found_through_the_seal_parts() {
    let engine = FakeEngine::new();
    let project = forty_secrets();
    deploy(&engine, &project, 1, How::Wait).1.unwrap();
    let before = seal_parts(&engine);
    assert_eq!(before.len(), 1, "one level of parts: {before:?}");
    assert_eq!(before[0].len(), 5);

    // s05 changes. Every key outside s05's part can be vouched for by its part alone: their
    // own fingerprints are spoiled, so a key the parts did not vouch for would rotate.
    project.file("s05.txt", "changed");
    spoil_fingerprints_of(&engine, |key| key >= "s16");
    let (plan, result) = deploy(&engine, &project, 1, How::Wait);
    result.unwrap();
    assert_eq!(names(&plan, Action::Create), vec!["demo_s05_v2"]);

    // The new seal reuses the fingerprints of the four parts that cover the same versions
    // (Argon2id is salted: a fingerprint made again would differ) and makes the third anew.
    let after = seal_parts(&engine);
    assert_eq!(after[0][1..], before[0][1..]);
    assert_ne!(after[0][0], before[0][0]);
    assert_noop(&engine, &project);
}

#[test]
fn without_its_parts_a_seal_that_does_not_verify_vouches_for_nothing() {
    let engine = FakeEngine::new();
    let project = forty_secrets();
    deploy(&engine, &project, 1, How::Wait).1.unwrap();
    let seal = engine
        .objects(ObjectKind::Config)
        .into_iter()
        .find(|c| c.labels.contains_key(crate::swarm::labels::SEAL_LABEL))
        .unwrap();
    engine.set_object_label(
        ObjectKind::Config,
        &seal.name,
        crate::swarm::labels::SEAL_PARTS_LABEL,
        "[]",
    );
    project.file("s05.txt", "changed");
    spoil_fingerprints_of(&engine, |key| key >= "s16");
    let (plan, _) = deploy(&engine, &project, 1, How::PlanOnly);
    assert_eq!(
        plan.summary.create,
        25,
        "s05 and the 24 spoiled keys: {:?}",
        names(&plan, Action::Create)
    );
}

#[test]
fn a_seal_does_not_verify_with_another_content_or_without_every_key() {
    use crate::plan::seal::{material, SealedVersion};
    let project = Project::new(TWO_SECRETS);
    project.file("db.txt", "one").file("api.txt", "key");
    let options = LoadOptions {
        working_dir: project.path().to_path_buf(),
        ..LoadOptions::default()
    };
    let loaded = load(&options).unwrap_or_else(|_| panic!("loads"));
    let contents = Contents::read(&loaded, project.path()).unwrap();
    let versions = |keys: &[&str]| -> Vec<SealedVersion> {
        keys.iter()
            .map(|key| SealedVersion {
                kind: ObjectKind::Secret,
                key: key.to_string(),
                id: format!("id-{key}"),
            })
            .collect()
    };
    let both = versions(&["db", "api"]);
    let demo = Namespace("demo".into());
    let fingerprinter = Fingerprinter::Argon2id;
    let seal = fingerprinter
        .fingerprint_bytes(&material(&demo, &both, &loaded.project, &contents).unwrap());
    assert!(fingerprinter.matches_bytes(
        &seal,
        &material(&demo, &both, &loaded.project, &contents).unwrap()
    ));
    // Built at its final size: no reallocation left a copy of the data in freed memory.
    let built = material(&demo, &both, &loaded.project, &contents).unwrap();
    assert_eq!(built.len(), built.capacity());
    // One key's data alone does not reproduce it.
    let db_only = material(&demo, &versions(&["db"]), &loaded.project, &contents).unwrap();
    assert!(!fingerprinter.matches_bytes(&seal, &db_only));
    // Other data for one key does not either.
    project.file("api.txt", "other");
    let changed = Contents::read(&loaded, project.path()).unwrap();
    assert!(!fingerprinter.matches_bytes(
        &seal,
        &material(&demo, &both, &loaded.project, &changed).unwrap()
    ));
    // Nor do other version IDs.
    let mut moved = both.clone();
    moved[0].id = "id-other".into();
    assert!(!fingerprinter.matches_bytes(
        &seal,
        &material(&demo, &moved, &loaded.project, &contents).unwrap()
    ));
}

/// `db` holds the password (`pw`), `app` uses it; apply and finalize run in `db`.
const ROTATING: &str = "services:
  db:
    image: local/busybox:1
    secrets: [pw]
  app:
    image: local/busybox:1
    secrets:
      - source: pw
        target: /etc/app/pw
  other:
    image: local/busybox:1
secrets:
  pw:
    file: ./pw.txt
    x-stackroll-rotation:
      owners:
        - service: db
          previous_target: old_pw
      apply:
        exec: { service: db, command: [sh, /apply.sh] }
      finalize:
        exec: { service: db, command: [sh, /finalize.sh] }
";

/// The writes of the last deploy, without the lock and seal bookkeeping.
fn stage_writes(engine: &FakeEngine) -> Vec<String> {
    engine
        .writes()
        .into_iter()
        .filter(|write| !write.contains("stackroll-seal") && !write.contains("stackroll-lock"))
        .collect()
}

fn rotation_stage(engine: &FakeEngine, name: &str) -> Option<String> {
    engine
        .objects(ObjectKind::Secret)
        .into_iter()
        .find(|object| object.name == name)
        .and_then(|object| {
            object
                .labels
                .get(crate::plan::rotation::STAGE_LABEL)
                .cloned()
        })
}

/// Deploys ROTATING with `old`, then changes the password to `new`.
fn rotating_project(engine: &FakeEngine, old: &str, new: &str) -> Project {
    let project = Project::new(ROTATING);
    project.file("pw.txt", old);
    let (plan, result) = deploy(engine, &project, 1, How::Wait);
    result.unwrap();
    assert!(
        plan.rotations.is_empty(),
        "a first deploy has nothing to rotate"
    );
    project.file("pw.txt", new);
    engine.clear_writes();
    project
}

#[test]
fn a_staged_rotation_runs_its_stages_in_order() {
    let engine = FakeEngine::new();
    let project = rotating_project(&engine, "old-password", "new-password");
    let (plan, result) = deploy(&engine, &project, 1, How::Wait);
    result.unwrap();
    assert_eq!(plan.rotations.len(), 1);
    let stages: Vec<&str> = plan.rotations[0]
        .stages
        .iter()
        .map(|s| s.action.as_str())
        .collect();
    assert_eq!(stages.len(), 6, "{stages:?}");
    assert_eq!(
        stage_writes(&engine),
        [
            "create secret demo_pw_v2",
            "update service demo_db",
            "label secret demo_pw_v2",
            "exec demo_db [sh /apply.sh] mounts [demo_pw_v2@pw, demo_pw_v1@old_pw]",
            "label secret demo_pw_v2",
            "update service demo_app",
            "label secret demo_pw_v2",
            "exec demo_db [sh /finalize.sh] mounts [demo_pw_v2@pw, demo_pw_v1@old_pw]",
            "label secret demo_pw_v2",
            "update service demo_db",
            "label secret demo_pw_v2",
        ]
    );
    assert_eq!(service_secret_names(&engine, "demo_db"), ["demo_pw_v2"]);
    assert_eq!(service_secret_names(&engine, "demo_app"), ["demo_pw_v2"]);
    assert_eq!(
        rotation_stage(&engine, "demo_pw_v2").as_deref(),
        Some("done")
    );
    assert_noop(&engine, &project);
}

#[test]
fn a_failing_apply_stops_before_any_consumer_moves_and_shows_no_value() {
    let engine = FakeEngine::new();
    let project = rotating_project(&engine, "old-password\n", "new-password\n");
    engine.script_exec(
        "demo_db",
        1,
        "login with old-password failed\nwanted new-password\n",
    );
    // The old value for redaction is read back with `cat` from where the owner mounts it.
    engine.script_exec("demo_db", 0, "old-password\n");
    let (_, result) = deploy(&engine, &project, 1, How::Wait);
    let Err(ApplyError::RotationStep(failure)) = result else {
        panic!("the failed apply must stop the deploy: {result:?}");
    };
    assert_eq!((failure.step, failure.exit_code), ("apply", Some(1)));
    assert_eq!(
        failure.output,
        ["login with [redacted] failed", "wanted [redacted]"]
    );
    assert_eq!(
        service_secret_names(&engine, "demo_app"),
        ["demo_pw_v1"],
        "no consumer moved"
    );
    assert_eq!(
        rotation_stage(&engine, "demo_pw_v2").as_deref(),
        Some("holding")
    );
    assert!(
        secret_names(&engine).contains(&"demo_pw_v1".to_string()),
        "nothing pruned"
    );

    // The next deploy resumes at apply: no new version, apply again, then the rest.
    engine.clear_writes();
    let (plan, result) = deploy(&engine, &project, 1, How::Wait);
    result.unwrap();
    assert_eq!(
        plan.rotations[0].done,
        Some(crate::plan::rotation::Stage::Holding)
    );
    let writes = stage_writes(&engine);
    assert!(
        !writes.iter().any(|w| w.starts_with("create secret")),
        "{writes:?}"
    );
    assert!(
        writes[0].starts_with("label secret demo_pw_v2")
            || writes[0].starts_with("exec demo_db [sh /apply.sh]"),
        "{writes:?}"
    );
    assert_eq!(service_secret_names(&engine, "demo_app"), ["demo_pw_v2"]);
    assert_eq!(
        rotation_stage(&engine, "demo_pw_v2").as_deref(),
        Some("done")
    );
}

#[test]
fn a_rotation_stopped_after_apply_resumes_without_applying_again() {
    let engine = FakeEngine::new();
    let project = rotating_project(&engine, "old", "new");
    engine.fail_next_update("demo_app", "rollback_completed", "update rolled back");
    let (_, result) = deploy(&engine, &project, 1, How::Wait);
    assert!(matches!(result, Err(ApplyError::Rollout(_))), "{result:?}");
    assert_eq!(
        rotation_stage(&engine, "demo_pw_v2").as_deref(),
        Some("applied")
    );

    engine.clear_writes();
    let (plan, result) = deploy(&engine, &project, 1, How::Wait);
    result.unwrap();
    let resumed = &plan.rotations[0];
    assert_eq!(resumed.done, Some(crate::plan::rotation::Stage::Applied));
    assert!(resumed.stages[..3].iter().all(|stage| stage.done));
    let writes = stage_writes(&engine);
    assert!(
        !writes.iter().any(|w| w.contains("/apply.sh")),
        "apply ran again: {writes:?}"
    );
    assert!(
        writes.iter().any(|w| w.contains("/finalize.sh")),
        "{writes:?}"
    );
    assert_eq!(service_secret_names(&engine, "demo_db"), ["demo_pw_v2"]);
}

#[test]
fn reverting_the_file_before_apply_abandons_the_rotation() {
    let engine = FakeEngine::new();
    let project = rotating_project(&engine, "old", "new");
    engine.script_exec("demo_db", 1, "");
    engine.script_exec("demo_db", 0, "old");
    let (_, result) = deploy(&engine, &project, 1, How::Wait);
    assert!(
        matches!(result, Err(ApplyError::RotationStep(_))),
        "{result:?}"
    );
    project.file("pw.txt", "old");
    let (plan, result) = deploy(&engine, &project, 1, How::Wait);
    result.unwrap();
    assert!(plan.rotations.is_empty(), "{:?}", plan.rotations);
    assert_eq!(service_secret_names(&engine, "demo_db"), ["demo_pw_v1"]);
    assert_eq!(service_secret_names(&engine, "demo_app"), ["demo_pw_v1"]);
}

#[test]
fn the_plan_lists_the_stages_of_a_rotation() {
    let engine = FakeEngine::new();
    let project = rotating_project(&engine, "old", "new");
    let (plan, _) = deploy(&engine, &project, 1, How::PlanOnly);
    let report = crate::render::plan::Report {
        target: &crate::engine::fake::TARGET,
        plan: &plan,
        outcome: crate::render::plan::Outcome::Planned,
        deleted: Vec::new(),
        failures: Vec::new(),
        measured_seconds: None,
    };
    insta::assert_snapshot!(crate::render::plan::render(
        &report,
        crate::render::format::OutputFormat::Text
    ));
}

#[test]
fn two_keys_rotating_together_share_their_stages() {
    let compose = ROTATING.to_string()
        + "  api:
    file: ./api.txt
    x-stackroll-rotation:
      owners:
        - service: db
          previous_target: old_api
";
    let compose = compose.replace("    secrets: [pw]\n", "    secrets: [pw, api]\n");
    let engine = FakeEngine::new();
    let project = Project::new(&compose);
    project.file("pw.txt", "old").file("api.txt", "old-api");
    deploy(&engine, &project, 1, How::Wait).1.unwrap();
    project.file("pw.txt", "new").file("api.txt", "new-api");
    engine.clear_writes();
    let (plan, result) = deploy(&engine, &project, 1, How::Wait);
    result.unwrap();
    assert_eq!(plan.rotations.len(), 2);
    let owner_updates = stage_writes(&engine)
        .iter()
        .filter(|w| *w == "update service demo_db")
        .count();
    assert_eq!(
        owner_updates,
        2,
        "the owner is written once to hold both old versions and once to drop them: {:?}",
        engine.writes()
    );
    let apply = stage_writes(&engine)
        .into_iter()
        .find(|w| w.starts_with("exec demo_db [sh /apply.sh]"))
        .expect("apply ran");
    assert!(
        apply.contains("demo_api_v1@old_api") && apply.contains("demo_pw_v1@old_pw"),
        "{apply}"
    );
    assert_eq!(
        service_secret_names(&engine, "demo_db"),
        ["demo_api_v2", "demo_pw_v2"]
    );
}

const MIGRATION_JOB: &str = "services:
  migrate:
    image: busybox
    deploy: {mode: replicated-job}
    secrets: [db]
secrets:
  db: {file: ./db.txt}
";

#[test]
fn a_job_that_completes_is_a_successful_deploy_and_a_rotation_runs_it_again() {
    let engine = FakeEngine::new();
    let project = Project::new(MIGRATION_JOB);
    project.file("db.txt", "one");
    deploy(&engine, &project, 1, How::Wait).1.unwrap();
    project.file("db.txt", "two");
    deploy(&engine, &project, 1, How::Wait).1.unwrap();
    assert_eq!(
        service_secret_names(&engine, "demo_migrate"),
        vec!["demo_db_v2"]
    );
}

#[test]
fn a_job_whose_task_fails_fails_the_deploy_with_the_task_error() {
    let engine = FakeEngine::new();
    let project = Project::new(MIGRATION_JOB);
    project.file("db.txt", "one");
    engine.fail_job("demo_migrate", "task: non-zero exit (1)");
    match deploy(&engine, &project, 1, How::Wait).1 {
        Err(ApplyError::Rollout(failures)) => {
            assert_eq!(failures[0].service, "demo_migrate");
            assert!(
                failures[0].reason.contains("task: non-zero exit (1)"),
                "{failures:?}"
            );
        }
        other => panic!("expected the failed job to fail the deploy, got {other:?}"),
    }
}

#[test]
fn a_version_another_stack_or_a_loose_service_uses_is_not_pruned() {
    let engine = FakeEngine::new();
    let mut project = Project::new(APP);
    project.prune = true;
    project.file("db.txt", "one");
    deploy(&engine, &project, 0, How::Wait).1.unwrap();
    project.file("db.txt", "two");
    deploy(&engine, &project, 0, How::Wait).1.unwrap();
    let v1 = engine
        .objects(ObjectKind::Secret)
        .into_iter()
        .find(|o| o.name == "demo_db_v1")
        .expect("v1");
    for (name, labels) in [
        (
            "other_app",
            serde_json::json!({"com.docker.stack.namespace": "other"}),
        ),
        ("loose", serde_json::json!({})),
    ] {
        engine
            .insert_service(&serde_json::json!({
                "Name": name,
                "Labels": labels,
                "TaskTemplate": {"ContainerSpec": {
                    "Image": "local/busybox:1",
                    "Secrets": [{"SecretID": v1.id, "SecretName": v1.name,
                        "File": {"Name": "db", "UID": "0", "GID": "0", "Mode": 292}}]
                }},
                "Mode": {"Replicated": {"Replicas": 1}}
            }))
            .unwrap();
    }
    // v1 is neither the stack's current nor its previous version any more.
    project.file("db.txt", "three");
    let (plan, result) = deploy(&engine, &project, 0, How::Wait);
    result.unwrap();
    assert!(
        !names(&plan, Action::Delete).contains(&"demo_db_v1"),
        "nothing another service uses is planned for deletion: {:?}",
        plan.changes
    );
    assert!(secret_names(&engine).contains(&"demo_db_v1".to_string()));
}

#[test]
fn a_network_with_the_stack_s_name_but_another_stack_s_label_is_not_adopted() {
    let engine = FakeEngine::new();
    // Stack `demo_b`'s network `default` is named `demo_b_default`, like stack `demo`'s `b_default`.
    engine
        .insert_network(&serde_json::json!({
            "Name": "demo_b_default",
            "Driver": "overlay",
            "Labels": {"com.docker.stack.namespace": "demo_b"}
        }))
        .unwrap();
    let project = Project::new(
        "services:\n  app:\n    image: local/busybox:1\n    networks: [b_default]\nnetworks:\n  b_default: {}\n",
    );
    match attempt(&engine, &project, 1, How::PlanOnly) {
        Err(PlanError::NetworkTaken(taken)) => {
            assert_eq!(taken, vec!["demo_b_default (stack demo_b)".to_string()])
        }
        Ok((plan, _)) => panic!("planned onto another stack's network: {:?}", plan.changes),
        Err(other) => panic!("unexpected error: {other:?}"),
    }
    assert_eq!(engine.write_count(), 0);
}

/// A build without the `test-kill-points` feature (every release build) never kills itself,
/// whatever `kill_at` says (with the feature, this would end the test process).
#[cfg(not(feature = "test-kill-points"))]
#[test]
fn without_the_fault_injection_feature_kill_points_do_nothing() {
    let options = ApplyOptions {
        detach: false,
        timeout: Duration::from_secs(1),
        poll: Duration::from_millis(1),
        settle: Duration::ZERO,
        kill_at: Some("after-objects".to_string()),
    };
    super::kill_point(&options, "after-objects");
}

#[test]
fn a_version_a_task_still_running_uses_is_not_pruned() {
    let engine = FakeEngine::new();
    let project = Project::new(APP);
    project.file("db.txt", "one");
    deploy(&engine, &project, 0, How::Wait).1.unwrap();
    let v1_template = engine
        .services()
        .into_iter()
        .find(|s| s.name == "demo_app")
        .expect("demo_app")
        .spec["TaskTemplate"]
        .clone();
    project.file("db.txt", "two");
    deploy(&engine, &project, 0, How::Wait).1.unwrap();
    project.file("db.txt", "three");
    deploy(&engine, &project, 0, How::Wait).1.unwrap();
    // A task of the v1 spec still runs (its container has v1 mounted); no spec names v1.
    engine.insert_task("demo_app", &v1_template, "running", "shutdown");
    let namespace = Namespace("demo".into());
    let specs = runtime().block_on(async {
        let observed = observe(&engine, &namespace).await.unwrap();
        super::versions::live_references(&engine, &observed)
            .await
            .unwrap()
    });
    // v1 itself was pruned with --keep 0: the reference is checked by name and ID.
    let v1 = crate::engine::SwarmObject {
        id: v1_template["ContainerSpec"]["Secrets"][0]["SecretID"]
            .as_str()
            .expect("a secret ID")
            .to_string(),
        name: "demo_db_v1".into(),
        labels: IndexMap::new(),
        created_at: String::new(),
        updated_at: String::new(),
    };
    assert!(
        !engine
            .services()
            .iter()
            .any(
                |s| crate::plan::prune::references(&s.spec, ObjectKind::Secret, &v1)
                    || s.previous_spec.as_ref().is_some_and(|p| {
                        crate::plan::prune::references(p, ObjectKind::Secret, &v1)
                    })
            ),
        "no service spec names v1 any more"
    );
    assert!(
        specs.iter().any(|specs| crate::plan::prune::references(
            &specs.current,
            ObjectKind::Secret,
            &v1
        )),
        "the running task's reference to demo_db_v1 counts"
    );
}

#[test]
fn a_versioned_name_another_stack_holds_is_refused_before_any_write() {
    let engine = FakeEngine::new();
    // Stack `demo_x`'s key `db` and stack `demo`'s key `x_db` both version as `demo_x_db_v<N>`.
    engine.insert_object(
        ObjectKind::Secret,
        "demo_x_db_v1",
        &[
            ("com.docker.stack.namespace", "demo_x"),
            ("io.stackroll.managed", "true"),
            ("io.stackroll.key", "db"),
            ("io.stackroll.version", "1"),
        ],
    );
    let project = Project::new(
        "services:\n  app:\n    image: local/busybox:1\n    secrets: [x_db]\nsecrets:\n  x_db:\n    file: ./db.txt\n",
    );
    project.file("db.txt", "one");
    match attempt(&engine, &project, 1, How::Wait) {
        Err(PlanError::NameTaken(taken)) => {
            assert_eq!(
                taken,
                vec!["secret demo_x_db_v1 (stack demo_x)".to_string()]
            )
        }
        Ok((plan, _)) => panic!(
            "planned a create that the engine refuses: {:?}",
            plan.changes
        ),
        Err(other) => panic!("unexpected error: {other:?}"),
    }
    assert_eq!(engine.write_count(), 0);
}

/// Swarm paused the rollback of a failed update (a task failed or was cut short while rolling
/// back): the spec is the old one again, and Swarm will not move until the service is written.
/// Content equal to that old version is then no spec change, yet waiting would only judge the
/// paused rollback a failure on every deploy, for ever. The deploy writes the spec again (its
/// rollback target, the failed spec, is replaced), which clears the pause, and converges.
#[test]
fn a_paused_rollback_of_the_spec_the_files_want_is_written_again_and_converges() {
    let engine = FakeEngine::new();
    let project = Project::new(APP);
    project.file("db.txt", "one");
    deploy(&engine, &project, 0, How::Wait).1.unwrap();
    project.file("db.txt", "two");
    engine.fail_next_update(
        "demo_app",
        "rollback_paused",
        "update paused due to failure or early termination of task x",
    );
    let (_, result) = deploy(&engine, &project, 1, How::Wait);
    assert!(matches!(result, Err(ApplyError::Rollout(_))), "{result:?}");

    project.file("db.txt", "one");
    let (plan, result) = deploy(&engine, &project, 1, How::Wait);
    result.unwrap_or_else(|error| panic!("the fixed deploy converges: {error:?}"));
    let update = plan
        .changes
        .iter()
        .find(|change| change.name == "demo_app")
        .unwrap_or_else(|| panic!("the service is written again: {:?}", plan.changes));
    assert!(update.reason.contains("rollback"), "{}", update.reason);
    assert_eq!(plan.summary.create, 0, "content equal to v1 reuses it");
    let service = engine
        .services()
        .into_iter()
        .find(|service| service.name == "demo_app")
        .unwrap();
    assert_eq!(service.update_status, None, "the pause is cleared");
    assert_eq!(
        service_secret_names(&engine, "demo_app"),
        vec!["demo_db_v1", "demo_db_v1"]
    );
    assert_noop(&engine, &project);
}
