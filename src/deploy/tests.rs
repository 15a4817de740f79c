//! The deploy workflow against the in-memory engine: the lock around every write, the
//! second read and plan under the lock, the seal-only path, dry runs and no-ops, and how each
//! failure reaches the user.

use std::sync::Mutex;
use std::time::Duration;

use indexmap::IndexMap;
use tempfile::TempDir;

use super::prepare::{self, Prepared};
use super::{
    manager_lost, run, run_failing_over, DeployError, DeployOptions, DeployOutcome, Failover,
    ImageOptions, Outcome, StateDigest,
};
use crate::apply::lock::LockError;
use crate::apply::{ApplyError, ApplyOptions};
use crate::compose::LoadOptions;
use crate::engine::fake::FakeEngine;
use crate::engine::{
    Engine, EngineError, EngineInfo, EventStream, ExecOutcome, ExecRequest, NetworkState,
    NewObject, NodeState, ServiceState, Spec, SwarmObject, TaskState,
};
use crate::error::{CliError, ErrorKind};
use crate::model::ObjectKind;
use crate::observe::observe;
use crate::plan::fingerprint::Fingerprinter;
use crate::progress::Recorder;

const APP: &str = "services:
  app:
    image: local/busybox:1
    secrets: [db]
secrets:
  db:
    file: ./db.txt
";

const LOCK: &str = "demo_stackroll-lock";

/// A compose project in a temporary directory.
struct Project {
    dir: TempDir,
}

impl Project {
    /// A project with `compose` as compose.yaml and db.txt holding `db`.
    fn new(compose: &str, db: &str) -> Project {
        let dir = TempDir::new().unwrap();
        std::fs::write(dir.path().join("compose.yaml"), compose).unwrap();
        let project = Project { dir };
        project.db(db);
        project
    }

    /// Writes db.txt.
    fn db(&self, content: &str) {
        std::fs::write(self.dir.path().join("db.txt"), content).unwrap();
    }

    /// Loads and prepares the project as stack `demo`.
    fn prepare(&self) -> Prepared {
        let options = LoadOptions {
            working_dir: self.dir.path().to_path_buf(),
            process_env: IndexMap::new(),
            ..LoadOptions::default()
        };
        let namespace = prepare::namespace("demo").unwrap();
        let stack = prepare::load(&options, &namespace).unwrap();
        let fingerprinter =
            Fingerprinter::from_key(Some("test-key-0123456789abcdef0123456789".into())).unwrap();
        prepare::prepare(namespace, stack, self.dir.path(), fingerprinter).unwrap()
    }
}

/// Keep 1, wait for rollouts, do not wait for the lock.
fn options() -> DeployOptions {
    DeployOptions {
        keep: 1,
        prune: false,
        dry_run: false,
        lock_wait: Duration::ZERO,
        lock_poll: Duration::from_millis(1),
        images: ImageOptions::default(),
        apply: ApplyOptions {
            detach: false,
            timeout: Duration::from_secs(5),
            poll: Duration::from_millis(1),
            settle: Duration::ZERO,
            kill_at: None,
        },
    }
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// Deploys the project once with `options`, reporting to `recorder`.
fn deploy_with(
    engine: &impl Engine,
    project: &Project,
    options: &DeployOptions,
    recorder: &Recorder,
) -> Result<DeployOutcome, DeployError> {
    block_on(run(engine, &project.prepare(), options, recorder))
}

/// Deploys the project once with the default options; it must succeed.
fn deploy(engine: &impl Engine, project: &Project) -> DeployOutcome {
    deploy_with(engine, project, &options(), &Recorder::default()).unwrap()
}

fn names(engine: &FakeEngine, kind: ObjectKind) -> Vec<String> {
    engine.objects(kind).into_iter().map(|o| o.name).collect()
}

#[test]
fn a_deploy_takes_the_lock_around_its_writes_and_shows_the_plan_first() {
    let engine = FakeEngine::new();
    let project = Project::new(APP, "one");
    let recorder = Recorder::default();
    let deployed = deploy_with(&engine, &project, &options(), &recorder).unwrap();
    assert_eq!(deployed.outcome, Outcome::Applied);
    assert!(deployed.executed);
    assert_eq!(recorder.applying_count(), 1);
    let writes = engine.writes();
    assert_eq!(writes.first().unwrap(), &format!("create config {LOCK}"));
    assert_eq!(writes.last().unwrap(), &format!("remove config {LOCK}"));
    assert!(writes.contains(&"create secret demo_db_v1".to_string()));
    assert!(!names(&engine, ObjectKind::Config).contains(&LOCK.to_string()));
}

#[test]
fn a_deploy_with_nothing_to_do_writes_nothing_not_even_the_lock() {
    let engine = FakeEngine::new();
    let project = Project::new(APP, "one");
    deploy(&engine, &project);
    engine.clear_writes();
    let recorder = Recorder::default();
    let deployed = deploy_with(&engine, &project, &options(), &recorder).unwrap();
    assert_eq!(deployed.outcome, Outcome::NoChanges);
    assert!(!deployed.executed);
    assert!(deployed.plan.is_empty());
    assert_eq!(engine.write_count(), 0, "{:?}", engine.writes());
    assert_eq!(recorder.applying_count(), 0);
}

#[test]
fn a_dry_run_plans_and_writes_nothing() {
    let engine = FakeEngine::new();
    let project = Project::new(APP, "one");
    let recorder = Recorder::default();
    let dry_run = DeployOptions {
        dry_run: true,
        ..options()
    };
    let deployed = deploy_with(&engine, &project, &dry_run, &recorder).unwrap();
    assert_eq!(deployed.outcome, Outcome::Planned);
    assert!(!deployed.executed);
    assert_eq!(
        deployed.plan.summary.create, 3,
        "{:?}",
        deployed.plan.changes
    );
    assert_eq!(engine.write_count(), 0, "{:?}", engine.writes());
    assert_eq!(recorder.applying_count(), 0);
}

#[test]
fn a_missing_seal_alone_is_recorded_under_the_lock() {
    let engine = FakeEngine::new();
    let project = Project::new(APP, "one");
    deploy(&engine, &project);
    let seal = engine.objects(ObjectKind::Config).remove(0);
    assert!(
        seal.name.starts_with("demo_stackroll-seal_"),
        "{}",
        seal.name
    );
    block_on(engine.remove_object(ObjectKind::Config, &seal.id)).unwrap();
    engine.clear_writes();

    let recorder = Recorder::default();
    let deployed = deploy_with(&engine, &project, &options(), &recorder).unwrap();
    assert_eq!(deployed.outcome, Outcome::NoChanges);
    assert!(!deployed.executed, "nothing was applied");
    assert!(deployed.plan.is_empty() && deployed.plan.seal.is_some());
    assert_eq!(recorder.applying_count(), 0);
    let writes = engine.writes();
    assert_eq!(writes.len(), 3, "{writes:?}");
    assert_eq!(writes[0], format!("create config {LOCK}"));
    assert!(
        writes[1].starts_with("create config demo_stackroll-seal_"),
        "{writes:?}"
    );
    assert_eq!(writes[2], format!("remove config {LOCK}"));

    // The seal is current now: the next deploy writes nothing.
    engine.clear_writes();
    let again = deploy(&engine, &project);
    assert_eq!(again.outcome, Outcome::NoChanges);
    assert_eq!(engine.write_count(), 0, "{:?}", engine.writes());
}

/// The in-memory engine, with a rival deploy that runs to the end just before this deploy's
/// first attempt at the lock, and optionally a lock that cannot be given back.
struct Contended<'a> {
    inner: &'a FakeEngine,
    /// The project the rival deploys, until it has.
    rival: Mutex<Option<&'a Prepared>>,
    /// Whether removing the lock fails.
    stuck_lock: bool,
    /// Whether the lock is taken from this deploy (removed, and another holder's created) at
    /// its first read of a service's tasks, i.e. while it waits for the rollout.
    steal_lock: Mutex<bool>,
}

impl<'a> Contended<'a> {
    fn new(inner: &'a FakeEngine) -> Contended<'a> {
        Contended {
            inner,
            rival: Mutex::new(None),
            stuck_lock: false,
            steal_lock: Mutex::new(false),
        }
    }
}

impl Engine for Contended<'_> {
    async fn info(&self) -> Result<EngineInfo, EngineError> {
        self.inner.info().await
    }
    fn api_version(&self) -> String {
        self.inner.api_version()
    }
    async fn list_objects(
        &self,
        kind: ObjectKind,
        label: Option<&str>,
    ) -> Result<Vec<SwarmObject>, EngineError> {
        self.inner.list_objects(kind, label).await
    }
    async fn create_object(&self, object: &NewObject) -> Result<String, EngineError> {
        let rival = self.rival.lock().unwrap().take();
        if let (Some(rival), true) = (rival, object.name == LOCK) {
            let deployed = run(self.inner, rival, &options(), &Recorder::default())
                .await
                .expect("the rival deploys");
            assert_eq!(deployed.outcome, Outcome::Applied);
        }
        self.inner.create_object(object).await
    }
    async fn remove_object(&self, kind: ObjectKind, id: &str) -> Result<(), EngineError> {
        let is_lock = self
            .inner
            .objects(kind)
            .iter()
            .any(|o| o.id == id && o.name == LOCK);
        if self.stuck_lock && is_lock {
            return Err(EngineError::Api {
                status: 500,
                message: "the lock is stuck".into(),
            });
        }
        self.inner.remove_object(kind, id).await
    }
    async fn list_services(&self, label: Option<&str>) -> Result<Vec<ServiceState>, EngineError> {
        self.inner.list_services(label).await
    }
    async fn inspect_service(&self, id: &str) -> Result<ServiceState, EngineError> {
        self.inner.inspect_service(id).await
    }
    async fn create_service(&self, spec: &Spec) -> Result<String, EngineError> {
        self.inner.create_service(spec).await
    }
    async fn update_service(&self, id: &str, version: u64, spec: &Spec) -> Result<(), EngineError> {
        self.inner.update_service(id, version, spec).await
    }
    async fn remove_service(&self, id: &str) -> Result<(), EngineError> {
        self.inner.remove_service(id).await
    }
    async fn list_tasks(&self, service_id: &str) -> Result<Vec<TaskState>, EngineError> {
        if std::mem::take(&mut *self.steal_lock.lock().unwrap()) {
            let namespace = prepare::namespace("demo").unwrap();
            crate::apply::lock::force_unlock(self.inner, &namespace)
                .await
                .unwrap()
                .expect("the deploy held the lock");
            self.inner.insert_object(
                ObjectKind::Config,
                LOCK,
                &[(crate::swarm::labels::HOLDER_LABEL, "thief@elsewhere pid 5")],
            );
        }
        self.inner.list_tasks(service_id).await
    }
    async fn list_all_tasks(&self) -> Result<Vec<TaskState>, EngineError> {
        self.inner.list_all_tasks().await
    }
    async fn list_networks(&self, label: Option<&str>) -> Result<Vec<NetworkState>, EngineError> {
        self.inner.list_networks(label).await
    }
    async fn create_network(&self, spec: &Spec) -> Result<String, EngineError> {
        self.inner.create_network(spec).await
    }
    async fn remove_network(&self, id: &str) -> Result<(), EngineError> {
        self.inner.remove_network(id).await
    }
    async fn list_nodes(&self) -> Result<Vec<NodeState>, EngineError> {
        self.inner.list_nodes().await
    }
    fn watch_events(&self) -> EventStream {
        self.inner.watch_events()
    }
    async fn config_data(&self, id: &str) -> Result<Vec<u8>, EngineError> {
        self.inner.config_data(id).await
    }
    async fn set_object_labels(
        &self,
        kind: ObjectKind,
        id: &str,
        labels: &IndexMap<String, String>,
    ) -> Result<(), EngineError> {
        self.inner.set_object_labels(kind, id, labels).await
    }
    async fn exec(&self, request: &ExecRequest) -> Result<ExecOutcome, EngineError> {
        self.inner.exec(request).await
    }
    async fn inspect_distribution(
        &self,
        image: &str,
    ) -> Result<crate::engine::Distribution, EngineError> {
        self.inner.inspect_distribution(image).await
    }
}

#[test]
fn a_deploy_plans_again_when_another_wrote_before_it_got_the_lock() {
    let engine = FakeEngine::new();
    let project = Project::new(APP, "one");
    let rival = project.prepare();
    let contended = Contended::new(&engine);
    *contended.rival.lock().unwrap() = Some(&rival);

    let recorder = Recorder::default();
    let deployed = deploy_with(&contended, &project, &options(), &recorder).unwrap();
    assert!(contended.rival.lock().unwrap().is_none(), "the rival ran");
    // The first plan (create everything) would now collide with what the rival created; the
    // plan made under the lock finds nothing left to do.
    assert_eq!(deployed.outcome, Outcome::NoChanges);
    assert!(deployed.plan.is_empty(), "{:?}", deployed.plan.changes);
    assert!(!deployed.executed);
    assert_eq!(recorder.applying_count(), 0);
    assert_eq!(names(&engine, ObjectKind::Secret), vec!["demo_db_v1"]);
    assert_eq!(engine.services().len(), 1);
    let writes = engine.writes();
    assert_eq!(writes.last().unwrap(), &format!("remove config {LOCK}"));
}

#[test]
fn the_first_plan_stands_when_only_the_lock_changed() {
    let engine = FakeEngine::new();
    let project = Project::new(APP, "one");
    deploy(&engine, &project);
    let namespace = prepare::namespace("demo").unwrap();
    let before = block_on(observe(&engine, &namespace)).unwrap();
    engine.insert_object(ObjectKind::Config, LOCK, &[]);
    let locked = block_on(observe(&engine, &namespace)).unwrap();
    assert_eq!(
        StateDigest::of(&before, LOCK),
        StateDigest::of(&locked, LOCK)
    );
    engine.insert_object(ObjectKind::Config, "demo_other", &[]);
    let changed = block_on(observe(&engine, &namespace)).unwrap();
    assert_ne!(
        StateDigest::of(&before, LOCK),
        StateDigest::of(&changed, LOCK)
    );
}

#[test]
fn a_lock_that_cannot_be_given_back_is_reported_with_the_way_out() {
    let engine = FakeEngine::new();
    let project = Project::new(APP, "one");
    let contended = Contended {
        stuck_lock: true,
        ..Contended::new(&engine)
    };
    let recorder = Recorder::default();
    let deployed = deploy_with(&contended, &project, &options(), &recorder).unwrap();
    assert_eq!(deployed.outcome, Outcome::Applied);
    let warning = "warning: could not release the deploy lock: the engine refused the request (500): the lock is stuck; run `stackroll unlock demo`";
    assert_eq!(recorder.lines().last().unwrap(), warning);
    assert!(names(&engine, ObjectKind::Config).contains(&LOCK.to_string()));
}

#[test]
fn a_held_lock_stops_the_deploy_before_any_write() {
    let engine = FakeEngine::new();
    let project = Project::new(APP, "one");
    let future = (std::time::SystemTime::now() + Duration::from_secs(600))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    engine.insert_object(
        ObjectKind::Config,
        LOCK,
        &[
            (
                crate::swarm::labels::HOLDER_LABEL,
                "ghost@elsewhere pid 4243",
            ),
            (crate::swarm::labels::SINCE_LABEL, "1000"),
            (crate::swarm::labels::EXPIRES_LABEL, &future),
        ],
    );
    let taken_at = engine.objects(ObjectKind::Config)[0].created_at.clone();
    let error = deploy_with(&engine, &project, &options(), &Recorder::default()).unwrap_err();
    assert!(
        matches!(&error, DeployError::Lock(LockError::Held { holder, .. }) if holder == "ghost@elsewhere pid 4243"),
        "{error:?}"
    );
    assert!(names(&engine, ObjectKind::Secret).is_empty());
    assert!(engine.services().is_empty());
    let error = CliError::from(error);
    assert_eq!(error.kind, ErrorKind::User);
    assert_eq!(
        error.message,
        format!("another deploy of stack demo holds the lock: ghost@elsewhere pid 4243, taken at {taken_at} (engine time); nothing was done")
    );
    assert!(
        error.hints[0].contains("`stackroll unlock demo`"),
        "{error}"
    );
}

#[test]
fn a_failed_rollout_is_an_outcome_that_exits_3() {
    let engine = FakeEngine::new();
    let project = Project::new(APP, "one");
    deploy(&engine, &project);
    project.db("two");
    engine.fail_next_update("demo_app", "rollback_completed", "rolled back");
    let deployed = deploy(&engine, &project);
    assert_eq!(deployed.outcome, Outcome::RolloutFailed);
    assert!(deployed.executed);
    assert_eq!(deployed.failures.len(), 1);
    assert_eq!(deployed.failures[0].service, "demo_app");
    assert!(deployed.deleted.is_empty());
    assert!(!names(&engine, ObjectKind::Config).contains(&LOCK.to_string()));
    let error = CliError::from(ApplyError::Rollout(deployed.failures));
    assert_eq!(error.exit_code(), 3);
    assert!(
        error
            .message
            .starts_with("rollout failed for demo_app (Swarm rolled the service back")
            && error.message.ends_with("; nothing was pruned"),
        "{error}"
    );
}

#[test]
fn missing_externals_fail_the_deploy_with_a_hint_and_no_write() {
    let engine = FakeEngine::new();
    let compose = "services:\n  app: {image: i, secrets: [a]}\nsecrets:\n  a: {external: true}\n";
    let project = Project::new(compose, "unused");
    let error = deploy_with(&engine, &project, &options(), &Recorder::default()).unwrap_err();
    assert_eq!(engine.write_count(), 0);
    let error = CliError::from(error);
    assert_eq!(
        error.message,
        "external objects do not exist: secret a; nothing was done"
    );
    assert!(error.hints[0].starts_with("create them first"), "{error}");
}

#[test]
fn an_engine_failure_while_applying_lists_what_was_written() {
    let engine = FakeEngine::new();
    let project = Project::new(APP, "one");
    let error = CliError::from(ApplyError::Engine {
        during: "creating service demo_app".into(),
        error: EngineError::Other("boom".into()),
        done: vec!["demo_db_v1".into()],
    });
    assert_eq!(error.kind, ErrorKind::Engine);
    assert_eq!(error.message, "creating service demo_app failed: boom");
    assert!(error.hints[0].starts_with("already written: demo_db_v1; run the same deploy again"));
    // And through a deploy: an unreachable engine fails the first read, before any write.
    engine.set_unreachable(true);
    let error = deploy_with(&engine, &project, &options(), &Recorder::default()).unwrap_err();
    let error = CliError::from(error);
    assert!(error.hints[0].starts_with("start Docker"), "{error}");
}

/// A deploy with nothing to do while another deploy holds the lock does not trust what it saw:
/// it waits for the lock like any deploy (here it gives up, naming the holder, and writes
/// nothing), and once the lock is free it plans again under it and finds nothing to do.
#[test]
fn a_noop_deploy_waits_for_a_held_lock_then_plans_again() {
    let engine = FakeEngine::new();
    let project = Project::new(APP, "one");
    deploy(&engine, &project);
    engine.insert_object(
        ObjectKind::Config,
        LOCK,
        &[
            (
                crate::swarm::labels::HOLDER_LABEL,
                "ghost@elsewhere pid 4244",
            ),
            (crate::swarm::labels::LEASE_LABEL, "600"),
        ],
    );
    engine.clear_writes();
    let mut waiting = options();
    waiting.lock_wait = Duration::from_millis(30);
    let error = deploy_with(&engine, &project, &waiting, &Recorder::default()).unwrap_err();
    assert!(
        matches!(&error, DeployError::Lock(LockError::Held { holder, .. }) if holder == "ghost@elsewhere pid 4244"),
        "{error:?}"
    );
    let writes = engine.writes();
    assert!(
        !writes.is_empty() && writes.iter().all(|w| w == &format!("create config {LOCK}")),
        "it tried for the lock and wrote nothing else: {writes:?}"
    );
    block_on(crate::apply::lock::force_unlock(
        &engine,
        &project.prepare().namespace,
    ))
    .unwrap();
    engine.clear_writes();
    let deployed = deploy_with(&engine, &project, &waiting, &Recorder::default()).unwrap();
    assert_eq!(deployed.outcome, Outcome::NoChanges);
    assert_eq!(engine.write_count(), 0, "no lock held: reads only");
}

/// A deploy whose lock is removed and taken by another while it waits for its rollout stops
/// writing: it prunes nothing, fails naming what it wrote, and leaves the other's lock alone.
#[test]
fn a_deploy_that_lost_its_lock_prunes_nothing() {
    let engine = FakeEngine::new();
    let project = Project::new(APP, "one");
    deploy(&engine, &project);
    project.db("two");
    deploy(&engine, &project);
    project.db("three");
    let contended = Contended::new(&engine);
    *contended.steal_lock.lock().unwrap() = true;
    let result = deploy_with(&contended, &project, &options(), &Recorder::default());
    assert!(
        !*contended.steal_lock.lock().unwrap(),
        "the lock was stolen"
    );
    assert_eq!(
        names(&engine, ObjectKind::Secret),
        vec!["demo_db_v1", "demo_db_v2", "demo_db_v3"],
        "nothing pruned after the lock was lost"
    );
    match result {
        Err(DeployError::Lock(LockError::Lost { written, .. })) => {
            assert!(
                written.contains(&"secret demo_db_v3".to_string()),
                "{written:?}"
            )
        }
        other => panic!("expected a lost lock, got {other:?}"),
    }
    let holders: Vec<_> = engine
        .objects(ObjectKind::Config)
        .into_iter()
        .filter(|o| o.name == LOCK)
        .map(|o| o.labels[crate::swarm::labels::HOLDER_LABEL].clone())
        .collect();
    assert_eq!(holders, vec!["thief@elsewhere pid 5".to_string()]);
}

/// Loads and prepares `compose` (with db.txt) as stack `stack`; the error when it is refused.
fn refusal(stack: &str, compose: &str) -> Option<CliError> {
    let project = Project::new(compose, "db");
    let options = LoadOptions {
        working_dir: project.dir.path().to_path_buf(),
        process_env: IndexMap::new(),
        ..LoadOptions::default()
    };
    let namespace = match prepare::namespace(stack) {
        Ok(namespace) => namespace,
        Err(error) => return Some(error.into()),
    };
    let stack = prepare::load(&options, &namespace).ok()?;
    let fingerprinter =
        Fingerprinter::from_key(Some("test-key-0123456789abcdef0123456789".into())).unwrap();
    prepare::prepare(namespace, stack, project.dir.path(), fingerprinter)
        .err()
        .map(CliError::from)
}

#[test]
fn names_swarm_refuses_are_refused_before_anything_is_read() {
    let refused = refusal("my.app", APP).expect("a dot in a stack name is refused");
    assert!(refused.to_string().contains("\"my.app\""), "{refused}");
    let cases = [
        (
            "services:\n  web.v2: {image: i}\n",
            "demo_web.v2",
            "services.web.v2",
        ),
        (
            "services:\n  app: {image: i, networks: [front.end]}\nnetworks:\n  front.end: {}\n",
            "demo_front.end",
            "networks.front.end",
        ),
        (
            "services:\n  app: {image: i, networks: [front]}\nnetworks:\n  front: {name: my.front}\n",
            "my.front",
            "networks.front",
        ),
    ];
    for (compose, name, field) in cases {
        let refused = refusal("demo", compose).unwrap_or_else(|| panic!("{name} is refused"));
        let text = refused.to_string();
        assert!(text.contains(name) && text.contains(field), "{text}");
        assert!(text.contains("compose.yaml:"), "names the location: {text}");
    }
}

#[test]
fn two_definitions_with_one_versioned_name_are_refused() {
    let cases = [
        "services:\n  app: {image: i, secrets: [a, b]}\nsecrets:\n  a: {file: ./db.txt, name: shared}\n  b: {file: ./db.txt, name: shared}\n",
        "services:\n  app: {image: i, secrets: [a, b]}\nsecrets:\n  a: {file: ./db.txt, name: demo_b}\n  b: {file: ./db.txt}\n",
    ];
    for compose in cases {
        let refused = refusal("demo", compose).expect("a clash is refused");
        let text = refused.to_string();
        assert!(
            text.contains("secrets.b") && text.contains("secrets.a"),
            "names both definitions: {text}"
        );
    }
    // A secret and a config may share a name: Swarm keeps them apart.
    let apart = "services:\n  app: {image: i, secrets: [a], configs: [a]}\nsecrets:\n  a: {file: ./db.txt}\nconfigs:\n  a: {file: ./db.txt}\n";
    assert!(refusal("demo", apart).is_none());
}

/// Registry lookups (`--resolve-image`) against the fake's scripted registry.
mod images {
    use super::*;
    use std::sync::Arc;

    use crate::registry::direct::{DigestFuture, DirectError, TagDigests};
    use crate::registry::reference::ImageReference;
    use crate::registry::ResolveImage;

    const APP_MAIN: &str = "services:
  app:
    image: reg.example:5000/app:main
  web:
    image: local/busybox:1
";
    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn resolving(resolve: ResolveImage) -> DeployOptions {
        DeployOptions {
            images: ImageOptions {
                resolve,
                ..ImageOptions::default()
            },
            ..options()
        }
    }

    fn spec_of(engine: &FakeEngine, name: &str) -> Spec {
        engine
            .services()
            .into_iter()
            .find(|service| service.name == name)
            .map(|service| service.spec)
            .unwrap_or_else(|| panic!("service {name} exists"))
    }

    fn image_of(engine: &FakeEngine, name: &str) -> String {
        spec_of(engine, name)["TaskTemplate"]["ContainerSpec"]["Image"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    #[test]
    fn a_found_tag_is_pinned_with_its_platforms_and_a_moved_tag_rolls_only_its_service() {
        let engine = FakeEngine::new();
        let project = Project::new(APP_MAIN, "one");
        engine.push_image(
            "reg.example:5000/app:main",
            A,
            &["linux/amd64", "linux/arm", "unknown/unknown", "linux/amd64"],
        );
        let first = deploy_with(
            &engine,
            &project,
            &resolving(ResolveImage::Always),
            &Recorder::default(),
        )
        .unwrap();
        assert_eq!(
            image_of(&engine, "demo_app"),
            format!("reg.example:5000/app:main@{A}")
        );
        assert_eq!(
            spec_of(&engine, "demo_app")["TaskTemplate"]["Placement"]["Platforms"],
            serde_json::json!([{"Architecture": "amd64", "OS": "linux"}, {"OS": "linux"}])
        );
        // local/busybox:1 has no registry: unpinned, with docker/cli's warning.
        assert_eq!(image_of(&engine, "demo_web"), "local/busybox:1");
        let warning = first
            .plan
            .notes
            .iter()
            .find(|note| note.contains("local/busybox:1"))
            .expect("a warning for the unreachable image");
        assert!(
            warning.contains("could not be accessed on a registry to record its digest"),
            "{warning}"
        );

        engine.clear_writes();
        let again = deploy_with(
            &engine,
            &project,
            &resolving(ResolveImage::Always),
            &Recorder::default(),
        )
        .unwrap();
        assert_eq!(again.outcome, Outcome::NoChanges);
        assert_eq!(
            engine.write_count(),
            0,
            "an unchanged digest is no change: {:?}",
            engine.writes()
        );

        engine.push_image("reg.example:5000/app:main", B, &["linux/amd64"]);
        let moved = deploy_with(
            &engine,
            &project,
            &resolving(ResolveImage::Always),
            &Recorder::default(),
        )
        .unwrap();
        let changes: Vec<(&str, Vec<String>)> = moved
            .plan
            .changes
            .iter()
            .map(|c| {
                let lines = c
                    .details
                    .iter()
                    .map(|d| format!("{}: {}", d.label(), d.summary()));
                (c.name.as_str(), lines.collect())
            })
            .collect();
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].0, "demo_app");
        assert_eq!(
            changes[0].1[0],
            format!("image: reg.example:5000/app:main digest {A} -> {B}")
        );
        assert_eq!(
            image_of(&engine, "demo_app"),
            format!("reg.example:5000/app:main@{B}")
        );
    }

    #[test]
    fn never_and_changed_leave_an_unchanged_image_as_it_runs() {
        let engine = FakeEngine::new();
        let project = Project::new(APP_MAIN, "one");
        engine.push_image("reg.example:5000/app:main", A, &["linux/amd64"]);
        deploy_with(
            &engine,
            &project,
            &resolving(ResolveImage::Always),
            &Recorder::default(),
        )
        .unwrap();
        engine.push_image("reg.example:5000/app:main", B, &["linux/amd64"]);
        let lookups = engine.lookups().len();
        for mode in [ResolveImage::Never, ResolveImage::Changed] {
            engine.clear_writes();
            let run =
                deploy_with(&engine, &project, &resolving(mode), &Recorder::default()).unwrap();
            assert_eq!(
                run.outcome,
                Outcome::NoChanges,
                "{mode:?}: {:?}",
                run.plan.changes
            );
            assert_eq!(engine.write_count(), 0, "{mode:?}");
        }
        assert_eq!(
            engine.lookups().len(),
            lookups,
            "neither mode looks an unchanged image up"
        );
        assert_eq!(
            image_of(&engine, "demo_app"),
            format!("reg.example:5000/app:main@{A}")
        );

        // `changed` looks up a service whose image: changed; `never` sends the tag as written.
        let changed = Project::new(&APP_MAIN.replace("app:main", "app:v2"), "one");
        engine.push_image("reg.example:5000/app:v2", B, &["linux/amd64"]);
        let never = deploy_with(
            &engine,
            &changed,
            &resolving(ResolveImage::Never),
            &Recorder::default(),
        )
        .unwrap();
        assert_eq!(never.plan.changes.len(), 1);
        assert_eq!(image_of(&engine, "demo_app"), "reg.example:5000/app:v2");
        let back = Project::new(APP_MAIN, "one");
        deploy_with(
            &engine,
            &back,
            &resolving(ResolveImage::Changed),
            &Recorder::default(),
        )
        .unwrap();
        assert_eq!(
            image_of(&engine, "demo_app"),
            format!("reg.example:5000/app:main@{B}")
        );
        assert_eq!(
            engine.lookups().last().map(String::as_str),
            Some("reg.example:5000/app:main")
        );
    }

    /// A registry asked directly: answers a digest (or fails) per tagged reference, and
    /// records what it was asked.
    #[derive(Debug, Default)]
    struct Direct {
        answers: Mutex<std::collections::HashMap<String, Result<String, String>>>,
        asked: Mutex<Vec<String>>,
    }

    impl Direct {
        fn answer(&self, image: &str, answer: Result<&str, &str>) {
            let answer = answer.map(str::to_string).map_err(str::to_string);
            self.answers
                .lock()
                .unwrap()
                .insert(image.to_string(), answer);
        }

        fn asked(&self) -> Vec<String> {
            self.asked.lock().unwrap().clone()
        }
    }

    impl TagDigests for Direct {
        fn digest<'a>(&'a self, reference: &'a ImageReference) -> DigestFuture<'a> {
            let image = reference.familiar();
            self.asked.lock().unwrap().push(image.clone());
            let answer = self.answers.lock().unwrap().get(&image).cloned();
            Box::pin(async move {
                answer
                    .unwrap_or_else(|| Err("not known".into()))
                    .map_err(DirectError)
            })
        }
    }

    fn resolving_directly(direct: &Arc<Direct>) -> DeployOptions {
        let mut options = resolving(ResolveImage::Always);
        options.images.direct = Some(direct.clone() as Arc<dyn TagDigests>);
        options
    }

    fn app_lookups(engine: &FakeEngine) -> usize {
        engine
            .lookups()
            .iter()
            .filter(|image| *image == "reg.example:5000/app:main")
            .count()
    }

    #[test]
    fn a_pinned_tag_the_registry_confirms_keeps_its_platforms_without_the_engine() {
        let engine = FakeEngine::new();
        let project = Project::new(APP_MAIN, "one");
        let direct = Arc::new(Direct::default());
        engine.push_image(
            "reg.example:5000/app:main",
            A,
            &["linux/amd64", "linux/arm", "unknown/unknown"],
        );
        let options = resolving_directly(&direct);
        deploy_with(&engine, &project, &options, &Recorder::default()).unwrap();
        assert_eq!(
            app_lookups(&engine),
            1,
            "a tag no service runs is asked of the engine"
        );
        assert!(direct.asked().is_empty(), "{:?}", direct.asked());
        let platforms = spec_of(&engine, "demo_app")["TaskTemplate"]["Placement"].clone();

        direct.answer("reg.example:5000/app:main", Ok(A));
        engine.clear_writes();
        let again = deploy_with(&engine, &project, &options, &Recorder::default()).unwrap();
        assert_eq!(
            again.outcome,
            Outcome::NoChanges,
            "{:?}",
            again.plan.changes
        );
        assert_eq!(engine.write_count(), 0, "{:?}", engine.writes());
        assert_eq!(app_lookups(&engine), 1, "the engine was not asked again");
        assert_eq!(
            direct.asked(),
            vec!["reg.example:5000/app:main".to_string()]
        );
        assert_eq!(
            spec_of(&engine, "demo_app")["TaskTemplate"]["Placement"],
            platforms
        );

        // The tag moved: the engine is asked, for the digest and platforms it now gives.
        engine.push_image("reg.example:5000/app:main", B, &["linux/arm64"]);
        direct.answer("reg.example:5000/app:main", Ok(B));
        let moved = deploy_with(&engine, &project, &options, &Recorder::default()).unwrap();
        assert_eq!(moved.plan.changes.len(), 1, "{:?}", moved.plan.changes);
        assert_eq!(app_lookups(&engine), 2);
        assert_eq!(
            image_of(&engine, "demo_app"),
            format!("reg.example:5000/app:main@{B}")
        );
        assert_eq!(
            spec_of(&engine, "demo_app")["TaskTemplate"]["Placement"]["Platforms"],
            serde_json::json!([{"Architecture": "arm64", "OS": "linux"}])
        );
    }

    #[test]
    fn a_registry_that_cannot_be_asked_directly_is_asked_through_the_engine() {
        let engine = FakeEngine::new();
        let project = Project::new(APP_MAIN, "one");
        let direct = Arc::new(Direct::default());
        engine.push_image("reg.example:5000/app:main", A, &["linux/amd64"]);
        let options = resolving_directly(&direct);
        deploy_with(&engine, &project, &options, &Recorder::default()).unwrap();

        // Unreachable, untrusted, refused: the engine answers, and nothing changes.
        direct.answer("reg.example:5000/app:main", Err("certificate not trusted"));
        engine.clear_writes();
        let run = deploy_with(&engine, &project, &options, &Recorder::default()).unwrap();
        assert_eq!(run.outcome, Outcome::NoChanges, "{:?}", run.plan.changes);
        assert_eq!(engine.write_count(), 0);
        assert_eq!(app_lookups(&engine), 2, "the engine was asked instead");

        // The registry answers an older digest than the engine: the engine's answer stands.
        engine.push_image("reg.example:5000/app:main", B, &["linux/amd64"]);
        direct.answer("reg.example:5000/app:main", Ok(A));
        let stale = deploy_with(&engine, &project, &options, &Recorder::default()).unwrap();
        assert_eq!(
            stale.outcome,
            Outcome::NoChanges,
            "the direct answer matched the pin"
        );
        direct.answer("reg.example:5000/app:main", Ok(B));
        let moved = deploy_with(&engine, &project, &options, &Recorder::default()).unwrap();
        assert_eq!(moved.plan.changes.len(), 1);
        assert_eq!(
            image_of(&engine, "demo_app"),
            format!("reg.example:5000/app:main@{B}")
        );
    }

    /// A service pinned without platforms (by hand, or by a lookup that found none) is not
    /// confirmed directly: the engine's platforms are not known.
    #[test]
    fn a_pin_without_platforms_is_asked_through_the_engine() {
        let engine = FakeEngine::new();
        let project = Project::new(APP_MAIN, "one");
        let direct = Arc::new(Direct::default());
        engine.push_image("reg.example:5000/app:main", A, &["unknown/unknown"]);
        let options = resolving_directly(&direct);
        deploy_with(&engine, &project, &options, &Recorder::default()).unwrap();
        direct.answer("reg.example:5000/app:main", Ok(A));
        deploy_with(&engine, &project, &options, &Recorder::default()).unwrap();
        assert!(direct.asked().is_empty(), "{:?}", direct.asked());
        assert_eq!(app_lookups(&engine), 2);
    }

    #[test]
    fn a_failed_lookup_keeps_a_pinned_service_as_it_runs() {
        let engine = FakeEngine::new();
        let project = Project::new(APP_MAIN, "one");
        engine.push_image("reg.example:5000/app:main", A, &["linux/amd64"]);
        deploy_with(
            &engine,
            &project,
            &resolving(ResolveImage::Always),
            &Recorder::default(),
        )
        .unwrap();
        engine.remove_image("reg.example:5000/app:main");
        engine.clear_writes();
        let run = deploy_with(
            &engine,
            &project,
            &resolving(ResolveImage::Always),
            &Recorder::default(),
        )
        .unwrap();
        assert_eq!(run.outcome, Outcome::NoChanges, "{:?}", run.plan.changes);
        assert_eq!(engine.write_count(), 0);
        assert!(
            run.plan.notes.iter().any(|note| note.contains(&format!(
                "service demo_app keeps running reg.example:5000/app:main@{A}"
            ))),
            "{:?}",
            run.plan.notes
        );
    }
}
/// Each field a newer engine API brought, with the version it needs, the version below it,
/// and where its value lands in the ServiceSpec.
const GATED_FIELDS: &[(&str, &str, &str, &str)] = &[
    (
        "    healthcheck: {test: [CMD, 'true'], start_interval: 2s}\n",
        "1.44",
        "1.43",
        "/TaskTemplate/ContainerSpec/Healthcheck/StartInterval",
    ),
    (
        "    volumes:\n      - {type: volume, source: data, target: /d, volume: {subpath: sub}}\n",
        "1.45",
        "1.44",
        "/TaskTemplate/ContainerSpec/Mounts/0/VolumeOptions/Subpath",
    ),
    (
        "    oom_score_adj: 500\n",
        "1.46",
        "1.45",
        "/TaskTemplate/ContainerSpec/OomScoreAdj",
    ),
    (
        "    volumes:\n      - {type: image, source: 'local/busybox:1', target: /img, image: {subpath: bin}}\n",
        "1.48",
        "1.47",
        "/TaskTemplate/ContainerSpec/Mounts/0/ImageOptions/Subpath",
    ),
];

/// A project whose one service uses `field` (written under the service).
fn gated_project(field: &str) -> Project {
    let compose =
        format!("services:\n  app:\n    image: local/busybox:1\n{field}volumes:\n  data: {{}}\n");
    Project::new(&compose, "unused")
}

#[test]
fn fields_a_newer_engine_api_brought_are_refused_below_it_before_any_write() {
    for (field, needs, below, _) in GATED_FIELDS {
        let engine = FakeEngine::new();
        engine.set_api_version(below);
        let project = gated_project(field);
        let error =
            deploy_with(&engine, &project, &options(), &Recorder::default()).expect_err("refused");
        assert_eq!(engine.write_count(), 0, "{field}");
        let text = CliError::from(error).to_string();
        assert!(
            text.contains(&format!("needs Docker Engine API {needs}"))
                && text.contains(&format!("this engine speaks API {below}")),
            "{text}"
        );
        assert!(text.contains("compose.yaml:"), "names the location: {text}");
        // `plan` refuses the same way.
        let prepared = project.prepare();
        let planned = block_on(super::preview(
            &engine,
            &prepared,
            1,
            false,
            &ImageOptions::default(),
        ));
        assert!(planned.is_err(), "plan refuses {field}");
    }
}

#[test]
fn fields_a_newer_engine_api_brought_are_deployed_from_that_version_on() {
    for (field, needs, _, pointer) in GATED_FIELDS {
        let engine = FakeEngine::new();
        engine.set_api_version(needs);
        deploy(&engine, &gated_project(field));
        let services = engine.services();
        let spec = &services[0].spec;
        assert!(spec.pointer(pointer).is_some(), "{field}: {spec:#}");
    }
    // A newer engine takes them all.
    let engine = FakeEngine::new();
    engine.set_api_version("1.50");
    deploy(&engine, &gated_project(GATED_FIELDS[2].0));
    assert_eq!(
        engine.services()[0]
            .spec
            .pointer("/TaskTemplate/ContainerSpec/OomScoreAdj"),
        Some(&serde_json::json!(500))
    );
}

/// The managers a test deploy may go on with, in order.
struct Spares(Vec<FakeEngine>);

impl Failover<FakeEngine> for Spares {
    async fn next_manager(&mut self) -> Option<(FakeEngine, String)> {
        (!self.0.is_empty()).then(|| (self.0.remove(0), "fake://spare".to_string()))
    }
}

#[test]
fn a_deploy_that_loses_its_manager_goes_on_with_the_next_and_converges() {
    let project = Project::new(APP, "one");
    let lost = FakeEngine::new();
    deploy(&lost, &project);
    project.db("two");
    let spare = lost.another_manager();
    // Lost after the lock and the new secret version, before the service is updated.
    lost.lose_after_writes(lost.write_count() + 2);
    let recorder = Recorder::default();
    let mut spares = Spares(vec![spare]);
    let deployed = block_on(run_failing_over(
        &lost,
        &mut spares,
        &project.prepare(),
        &options(),
        &recorder,
        std::future::pending(),
    ))
    .unwrap();
    assert_eq!(deployed.outcome, Outcome::Applied);
    let swarm = lost.another_manager();
    let secrets = names(&swarm, ObjectKind::Secret);
    assert_eq!(
        secrets,
        ["demo_db_v1", "demo_db_v2"],
        "one new version (not made twice), v1 kept by --keep 1"
    );
    let service = &swarm.services()[0];
    assert_eq!(
        service.spec["TaskTemplate"]["ContainerSpec"]["Secrets"][0]["SecretName"],
        "demo_db_v2"
    );
    assert!(!names(&swarm, ObjectKind::Config).iter().any(|n| n == LOCK));
    let events = recorder.lines();
    let lost_at = events
        .iter()
        .position(|e| e.contains("lost the swarm manager"));
    assert!(lost_at.is_some(), "{events:#?}");
    assert!(
        events.iter().all(|e| !e.contains("taking over")),
        "{events:#?}"
    );
}

#[test]
fn a_deploy_without_another_manager_reports_the_lost_one_and_what_it_wrote() {
    let project = Project::new(APP, "one");
    let lost = FakeEngine::new();
    deploy(&lost, &project);
    project.db("two");
    lost.lose_after_writes(lost.write_count() + 2);
    let error = deploy_with(&lost, &project, &options(), &Recorder::default()).unwrap_err();
    assert!(manager_lost(&error), "{error}");
    let error = CliError::from(error);
    assert!(
        error.hints[0].starts_with("already written: "),
        "{:?}",
        error.hints
    );
}

#[test]
fn only_an_unreachable_manager_is_failed_over_never_a_refusal() {
    let unreachable = EngineError::Unreachable {
        endpoint: "tcp://m1:2375".into(),
        message: "connection refused".into(),
    };
    let refused = EngineError::Api {
        status: 500,
        message: "rpc error: code = Unknown".into(),
    };
    assert!(manager_lost(&DeployError::Engine(unreachable.clone())));
    assert!(manager_lost(&DeployError::Lock(LockError::Engine(
        unreachable.clone()
    ))));
    assert!(manager_lost(&DeployError::Apply(ApplyError::Engine {
        during: "updating service demo_app".into(),
        error: unreachable,
        done: Vec::new(),
    })));
    assert!(!manager_lost(&DeployError::Engine(refused.clone())));
    assert!(!manager_lost(&DeployError::Apply(ApplyError::Engine {
        during: "creating secret demo_db_v2".into(),
        error: refused,
        done: Vec::new(),
    })));
    assert!(!manager_lost(&DeployError::Lock(LockError::Lost {
        stack: "demo".into(),
        written: Vec::new(),
    })));
}
