//! An in-memory [`Engine`] for unit tests of the planner and executor: [`FakeEngine`] keeps
//! secrets, configs, services, tasks and networks behind a mutex and follows Swarm's rules
//! wherever the planner or executor could notice the difference:
//!
//! - IDs are generated; names are unique per kind (a duplicate is a [`EngineError::Conflict`]).
//! - Secret/config names and data sizes are validated with swarmkit's limits and messages.
//! - A secret or config referenced by a service's current spec cannot be removed (Conflict,
//!   "secret 'x' is in use by the following service: y"); one referenced only by a
//!   `PreviousSpec` can, as in Swarm (which then cannot roll back to it).
//! - Service specs must reference secrets and configs by existing `SecretID` + matching
//!   `SecretName` (`ConfigID` + `ConfigName`), with distinct file targets.
//! - `Version.Index` grows on every write (one counter for the whole store, like raft's index);
//!   an update with another version fails with [`EngineError::OutOfSequence`].
//! - Renames and mode changes are refused; an update keeps the old spec as `previous_spec`.
//! - Stored specs are normalised the way dockerd 20.10 (API 1.41) does (checked on a real
//!   engine): defaults such as `TaskTemplate.Runtime`, `ContainerSpec.Isolation`,
//!   `RestartPolicy.MaxAttempts`, `UpdateConfig.Order`, `EndpointSpec.Mode` are filled in; empty
//!   lists, empty container strings and `false` flags, zero health-check durations are dropped
//!   (Go's `omitempty`); network targets become network IDs; `HealthCheck` is spelled
//!   `Healthcheck`. A planner that compares specs naively sees here what it would see for real.
//! - An update that changes the task template (or endpoint) completes at once
//!   (`UpdateStatus` "completed", old tasks shut down, one running task per replica); one that
//!   does not leaves `UpdateStatus` empty, as Swarm does. [`FakeEngine::fail_next_update`]
//!   scripts a failed or rolled-back update; a rollback restores the previous spec and clears
//!   `previous_spec`, as swarmkit's updater does. [`FakeEngine::set_rollout_time`] makes such
//!   updates take time instead, on tokio's clock (a paused clock in tests).
//! - Events ([`Engine::watch_events`]): a service event for every service update or removal
//!   (Swarm's UpdateStatus changes included), a node event for every node change.
//!
//! Secret and config data is kept (tests may check what was uploaded) in [`SensitiveBytes`],
//! whose `Debug` shows only the length.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::broadcast;

use indexmap::IndexMap;
use serde_json::{json, Map, Value};

use super::{
    Distribution, Engine, EngineError, EngineEvent, EngineInfo, EventStream, ExecOutcome,
    ExecRequest, NetworkState, NewObject, NodeState, Platform, ServiceState, Spec, SwarmObject,
    TaskState, UpdateStatus,
};
use crate::model::{ObjectKind, SensitiveBytes};

/// The node every fake task runs on.
const NODE_ID: &str = "fakenode0000000000000000a";

/// The fake engine's node name and swarm ID, as its `info` reports them.
const NODE_NAME: &str = "fake-manager";
const CLUSTER_ID: &str = "fakecluster0000000000000";

/// How outputs name the fake engine: the default context on the local socket.
pub static TARGET: std::sync::LazyLock<super::Target> =
    std::sync::LazyLock::new(|| super::Target {
        context: "default".to_string(),
        endpoint: "unix:///var/run/docker.sock".to_string(),
        cluster_id: CLUSTER_ID.to_string(),
        node: NODE_NAME.to_string(),
    });

/// How many events a subscriber that does not read may fall behind by before it misses some.
const EVENT_BUFFER: usize = 1024;

/// Networks every engine has; they cannot be removed.
const PREDEFINED_NETWORKS: [(&str, &str); 5] = [
    ("bridge", "bridge"),
    ("docker_gwbridge", "bridge"),
    ("host", "host"),
    ("ingress", "overlay"),
    ("none", "null"),
];

/// A secret or config held by the fake, with the data it was created with.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeObject {
    /// Secret or config.
    pub kind: ObjectKind,
    /// The generated ID.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its labels.
    pub labels: IndexMap<String, String>,
    /// Creation time (RFC 3339, increasing with every write).
    pub created_at: String,
    /// Time of the last change (creation or relabel), on the fake's clock.
    pub updated_at: String,
    /// The uploaded data (empty for driver-backed and seeded objects).
    pub data: SensitiveBytes,
    /// Secret driver, if any.
    pub driver: Option<String>,
    /// Secret driver options.
    pub driver_opts: IndexMap<String, String>,
    /// Templating driver, if any.
    pub template_driver: Option<String>,
}

impl FakeObject {
    /// What [`Engine::list_objects`] shows of it.
    pub fn summary(&self) -> SwarmObject {
        SwarmObject {
            id: self.id.clone(),
            name: self.name.clone(),
            labels: self.labels.clone(),
            created_at: self.created_at.clone(),
            updated_at: self.updated_at.clone(),
        }
    }
}

#[derive(Debug, Clone)]
struct FakeNetwork {
    state: NetworkState,
    predefined: bool,
}

#[derive(Debug)]
struct State {
    counter: u64,
    /// Seconds the clock was advanced by (`advance_clock`), under a day.
    clock: u64,
    info: EngineInfo,
    unreachable: bool,
    secrets: Vec<FakeObject>,
    configs: Vec<FakeObject>,
    services: Vec<ServiceState>,
    tasks: Vec<TaskState>,
    networks: Vec<FakeNetwork>,
    writes: Vec<String>,
    scripted_updates: HashMap<String, UpdateStatus>,
    scripted_execs: HashMap<String, Vec<ExecOutcome>>,
    scripted_job_failures: HashMap<String, String>,
    /// What distribution lookups answer, by image reference as asked.
    registry: HashMap<String, Distribution>,
    /// Distribution lookups made, in order.
    lookups: Vec<String>,
    /// The swarm's nodes (this manager first).
    nodes: Vec<NodeState>,
    /// Services whose next task-changing update loses a node midway, with its hostname.
    scripted_node_losses: HashMap<String, String>,
    /// How long an update that replaces tasks takes ([`FakeEngine::set_rollout_time`]); such
    /// updates complete at once when `None`.
    rollout_time: Option<Duration>,
    /// Services whose timed rollout the last update started, for the caller to complete later.
    started_rollouts: Vec<String>,
    /// Where events go to every [`Engine::watch_events`] subscriber.
    events: broadcast::Sender<EngineEvent>,
    /// Whether subscriptions end at once ([`FakeEngine::close_events`]).
    events_closed: bool,
}

/// An in-memory Swarm manager implementing [`Engine`], for tests. See the module docs for the
/// Swarm rules it follows.
#[derive(Debug)]
pub struct FakeEngine {
    /// The swarm, shared by every manager of it ([`FakeEngine::another_manager`]).
    state: Arc<Mutex<State>>,
    /// This manager is lost once the swarm has recorded this many writes.
    lost_at: Mutex<Option<usize>>,
}

impl Default for FakeEngine {
    fn default() -> Self {
        FakeEngine::new()
    }
}

impl FakeEngine {
    /// An empty engine on an active swarm manager (API 1.41, Docker 20.10.24), with the
    /// predefined networks (`bridge`, `host`, `ingress`, ...) and nothing else.
    pub fn new() -> FakeEngine {
        let mut state = State {
            counter: 0,
            clock: 0,
            info: EngineInfo {
                api_version: "1.41".to_string(),
                swarm_state: "active".to_string(),
                is_manager: true,
                node_id: NODE_ID.to_string(),
                node_name: NODE_NAME.to_string(),
                cluster_id: CLUSTER_ID.to_string(),
                system_time: String::new(),
            },
            unreachable: false,
            secrets: Vec::new(),
            configs: Vec::new(),
            services: Vec::new(),
            tasks: Vec::new(),
            networks: Vec::new(),
            writes: Vec::new(),
            scripted_updates: HashMap::new(),
            scripted_execs: HashMap::new(),
            scripted_job_failures: HashMap::new(),
            registry: HashMap::new(),
            lookups: Vec::new(),
            nodes: vec![NodeState {
                id: NODE_ID.to_string(),
                hostname: "fake-node".to_string(),
                state: "ready".to_string(),
            }],
            scripted_node_losses: HashMap::new(),
            rollout_time: None,
            started_rollouts: Vec::new(),
            events: broadcast::channel(EVENT_BUFFER).0,
            events_closed: false,
        };
        for (name, driver) in PREDEFINED_NETWORKS {
            let id = state.next_id();
            state.networks.push(FakeNetwork {
                state: NetworkState {
                    id,
                    name: name.to_string(),
                    driver: driver.to_string(),
                    labels: IndexMap::new(),
                },
                predefined: true,
            });
        }
        FakeEngine {
            state: Arc::new(Mutex::new(state)),
            lost_at: Mutex::new(None),
        }
    }

    /// How many create/update/remove calls of any kind reached the engine, whether they
    /// succeeded or were refused (calls made while unreachable do not count).
    pub fn write_count(&self) -> usize {
        self.lock().writes.len()
    }

    /// Those calls in order, e.g. `"create secret demo_db_v1"`, `"update service demo_app"`,
    /// `"remove secret demo_db_v1"` (objects are named by name when they exist, else by the ID
    /// given).
    pub fn writes(&self) -> Vec<String> {
        self.lock().writes.clone()
    }

    /// Forgets the calls recorded so far (e.g. after setting a scene up through the trait).
    pub fn clear_writes(&self) {
        self.lock().writes.clear();
    }

    /// Makes the next update of `service_name` that changes its task template end in `state`
    /// ("paused", "rollback_completed", ...) with `message`. Rollback states restore the
    /// previous spec and clear `previous_spec`, as Swarm's automatic rollback does; the new task
    /// is recorded as failed with `message` as its error.
    pub fn fail_next_update(&self, service_name: &str, state: &str, message: &str) {
        self.lock().scripted_updates.insert(
            service_name.to_string(),
            UpdateStatus {
                state: state.to_string(),
                message: message.to_string(),
            },
        );
    }

    /// Makes `image` (as it will be asked for, e.g. `app:main`) point at `digest` in its
    /// registry, for an image offering `platforms` (`os/architecture` each). Images never
    /// pushed are not found, as for a registry that cannot be reached.
    pub fn push_image(&self, image: &str, digest: &str, platforms: &[&str]) {
        let platforms = platforms
            .iter()
            .map(|platform| {
                let (os, architecture) = platform.split_once('/').unwrap_or((platform, ""));
                Platform {
                    architecture: architecture.to_string(),
                    os: os.to_string(),
                }
            })
            .collect();
        self.lock().registry.insert(
            image.to_string(),
            Distribution {
                digest: digest.to_string(),
                platforms,
            },
        );
    }

    /// Makes `image` unknown to its registry again (lookups of it fail).
    pub fn remove_image(&self, image: &str) {
        self.lock().registry.remove(image);
    }

    /// The distribution lookups made so far, in order.
    pub fn lookups(&self) -> Vec<String> {
        self.lock().lookups.clone()
    }

    /// Makes the next update of `service_name` that changes its task template lose the
    /// worker `hostname` midway, as a real swarm does when a node's engine dies while the
    /// update rolls: the node turns `down` (added if new); the old task it ran stays `running`
    /// (desired `shutdown`, never confirmed), the new task Swarm had assigned to it stays
    /// `assigned` (desired `shutdown`, restarted elsewhere), every replica of the new spec runs
    /// on this node, and the UpdateStatus stays `updating`, the updater waiting for that task.
    pub fn lose_node_in_next_update(&self, service_name: &str, hostname: &str) {
        self.lock()
            .scripted_node_losses
            .insert(service_name.to_string(), hostname.to_string());
    }

    /// Makes every later update that replaces tasks take `time` on tokio's clock, as Swarm's
    /// updater does: the UpdateStatus is `updating` and the old tasks are shut down at once
    /// (`stop-first`); after `time` the new tasks run, the status is `completed` and a service
    /// event is sent. Needs a tokio runtime (the completion is a spawned task).
    pub fn set_rollout_time(&self, time: Duration) {
        self.lock().rollout_time = Some(time);
    }

    /// Makes every later [`Engine::watch_events`] subscription end at once, as an engine (or
    /// a proxy in front of it) that closes `GET /events`.
    pub fn close_events(&self) {
        self.lock().events_closed = true;
    }

    /// Sets the state of node `hostname` ("ready", "down", ...), adding it if new.
    pub fn set_node_state(&self, hostname: &str, node_state: &str) {
        self.lock().set_node_state(hostname, node_state);
    }

    /// Brings node `hostname` back after [`FakeEngine::lose_node_in_next_update`], as Swarm
    /// does: the node is `ready`, its stuck tasks end (the old one failed with exit 137, the
    /// one assigned during the update `shutdown` without an error) and the updater, counting
    /// that shutdown as a failure, marks the update `paused`, naming that task.
    pub fn recover_node(&self, hostname: &str) {
        let mut state = self.lock();
        let node_id = state.set_node_state(hostname, "ready");
        let mut paused_by = Vec::new();
        for task in state.tasks.iter_mut().filter(|t| t.node_id == node_id) {
            match task.state.as_str() {
                "running" => {
                    task.state = "failed".to_string();
                    task.error = Some("task: non-zero exit (137)".to_string());
                }
                "assigned" => {
                    task.state = "shutdown".to_string();
                    paused_by.push((task.service_id.clone(), task.id.clone()));
                }
                _ => {}
            }
        }
        for (service_id, task_id) in paused_by {
            if let Some(service) = state.services.iter_mut().find(|s| s.id == service_id) {
                service.update_status = Some(UpdateStatus {
                    state: "paused".to_string(),
                    message: format!(
                        "update paused due to failure or early termination of task {task_id}"
                    ),
                });
                state.emit(EngineEvent::Service { id: service_id });
            }
        }
    }

    /// Another manager of the same swarm: the same state, reachable on its own.
    pub fn another_manager(&self) -> FakeEngine {
        FakeEngine {
            state: Arc::clone(&self.state),
            lost_at: Mutex::new(None),
        }
    }

    /// Loses this manager (every call unreachable) once the swarm has recorded `writes`
    /// writes; other managers of the swarm go on answering.
    pub fn lose_after_writes(&self, writes: usize) {
        *self.lost_at.lock().expect("lost_at") = Some(writes);
    }

    /// While `true`, every call fails with [`EngineError::Unreachable`].
    pub fn set_unreachable(&self, unreachable: bool) {
        self.lock().unreachable = unreachable;
    }

    /// Sets what [`Engine::info`] reports about the swarm: LocalNodeState ("active",
    /// "inactive", ...) and whether this node is a manager.
    pub fn set_swarm(&self, swarm_state: &str, is_manager: bool) {
        let mut state = self.lock();
        state.info.swarm_state = swarm_state.to_string();
        state.info.is_manager = is_manager;
    }

    /// Sets the API version [`Engine::info`] reports as negotiated, e.g. "1.44".
    pub fn set_api_version(&self, api_version: &str) {
        self.lock().info.api_version = api_version.to_string();
    }

    /// The secrets or configs held now, data included, sorted by name.
    pub fn objects(&self, kind: ObjectKind) -> Vec<FakeObject> {
        let state = self.lock();
        let mut objects = state.objects(kind).clone();
        objects.sort_by(|a, b| a.name.cmp(&b.name));
        objects
    }

    /// The services held now, sorted by name.
    pub fn services(&self) -> Vec<ServiceState> {
        let mut services = self.lock().services.clone();
        services.sort_by(|a, b| a.name.cmp(&b.name));
        services
    }

    /// The networks held now (predefined ones included), sorted by name.
    pub fn networks(&self) -> Vec<NetworkState> {
        let mut networks: Vec<NetworkState> = self
            .lock()
            .networks
            .iter()
            .map(|network| network.state.clone())
            .collect();
        networks.sort_by(|a, b| a.name.cmp(&b.name));
        networks
    }

    /// Sets a label of an existing secret or config, as `POST /secrets/{id}/update` would
    /// (labels are the one mutable part); not counted as a write.
    ///
    /// # Panics
    /// If no object of that kind has that name.
    pub fn set_object_label(&self, kind: ObjectKind, name: &str, key: &str, value: &str) {
        let mut state = self.lock();
        let object = state
            .objects_mut(kind)
            .iter_mut()
            .find(|object| object.name == name)
            .unwrap_or_else(|| panic!("no {} {name}", kind.noun()));
        object.labels.insert(key.to_string(), value.to_string());
    }

    /// Moves the fake's clock (what `info` reports and later writes are stamped with) forward.
    ///
    /// # Panics
    /// If the clock would pass a day.
    pub fn advance_clock(&self, by: std::time::Duration) {
        let mut state = self.lock();
        state.clock += by.as_secs();
        assert!(state.clock < 86_400, "the fake's clock runs for a day");
    }

    /// Seeds a pre-existing secret or config (an external one, or one `docker stack deploy`
    /// made) with no data; not counted as a write. Returns its ID.
    ///
    /// # Panics
    /// If an object of that kind and name already exists.
    pub fn insert_object(&self, kind: ObjectKind, name: &str, labels: &[(&str, &str)]) -> String {
        let mut state = self.lock();
        assert!(
            state.find_object(kind, name).is_none(),
            "{} {name} already exists",
            kind.noun()
        );
        let id = state.next_id();
        let created_at = state.timestamp();
        state.objects_mut(kind).push(FakeObject {
            kind,
            id: id.clone(),
            name: name.to_string(),
            labels: labels
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
            updated_at: created_at.clone(),
            created_at,
            data: SensitiveBytes::new(Vec::new()),
            driver: None,
            driver_opts: IndexMap::new(),
            template_driver: None,
        });
        id
    }

    /// Seeds a pre-existing service from a ServiceSpec, with the same checks as
    /// [`Engine::create_service`]; not counted as a write. Returns its ID.
    pub fn insert_service(&self, spec: &Spec) -> Result<String, EngineError> {
        self.lock().create_service(spec)
    }

    /// Seeds a task of `service_name` started from `template` (a TaskSpec) in `state`, with
    /// `desired` state, e.g. an old task a `start-first` update has not stopped yet
    /// ("running", desired "shutdown"); not counted as a write.
    pub fn insert_task(&self, service_name: &str, template: &Spec, state: &str, desired: &str) {
        let mut engine = self.lock();
        let index = engine
            .find_service(service_name)
            .expect("the service exists");
        let service_id = engine.services[index].id.clone();
        let mut task = engine.new_task(
            &service_id,
            &json!({ "TaskTemplate": template }),
            Some(1),
            state,
        );
        task.desired_state = desired.to_string();
        engine.tasks.push(task);
    }

    /// Seeds a pre-existing network from a NetworkCreateRequest JSON; not counted as a write.
    /// Returns its ID.
    pub fn insert_network(&self, spec: &Spec) -> Result<String, EngineError> {
        self.lock().create_network(spec)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock leaves consistent data behind.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes the next command run in a task of `service_name` end with `exit_code` after
    /// printing `output` (queued: one per command). Unscripted commands exit 0, printing nothing.
    pub fn script_exec(&self, service_name: &str, exit_code: i64, output: &str) {
        self.lock()
            .scripted_execs
            .entry(service_name.to_string())
            .or_default()
            .push(ExecOutcome {
                exit_code,
                output: SensitiveBytes::new(output.as_bytes().to_vec()),
            });
    }

    /// Makes the tasks of the job service `service_name` fail with `error` (every later run
    /// too) instead of completing.
    pub fn fail_job(&self, service_name: &str, error: &str) {
        self.lock()
            .scripted_job_failures
            .insert(service_name.to_string(), error.to_string());
    }

    /// The state, or `Unreachable` when [`FakeEngine::set_unreachable`] is on.
    fn reach(&self) -> Result<MutexGuard<'_, State>, EngineError> {
        let state = self.lock();
        let lost_at = *self.lost_at.lock().expect("lost_at");
        if state.unreachable || lost_at.is_some_and(|writes| state.writes.len() >= writes) {
            return Err(EngineError::Unreachable {
                endpoint: "fake://engine".to_string(),
                message: "the fake engine is set unreachable".to_string(),
            });
        }
        Ok(state)
    }
}

impl Engine for FakeEngine {
    fn api_version(&self) -> String {
        self.lock().info.api_version.clone()
    }
    async fn info(&self) -> Result<EngineInfo, EngineError> {
        let state = self.reach()?;
        Ok(EngineInfo {
            system_time: state.time_now(),
            ..state.info.clone()
        })
    }

    async fn list_objects(
        &self,
        kind: ObjectKind,
        label: Option<&str>,
    ) -> Result<Vec<SwarmObject>, EngineError> {
        let state = self.reach()?;
        let mut objects: Vec<SwarmObject> = state
            .objects(kind)
            .iter()
            .filter(|object| label_matches(&object.labels, label))
            .map(FakeObject::summary)
            .collect();
        objects.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        Ok(objects)
    }

    async fn create_object(&self, object: &NewObject) -> Result<String, EngineError> {
        let mut state = self.reach()?;
        state
            .writes
            .push(format!("create {} {}", object.kind.noun(), object.name));
        state.create_object(object)
    }

    async fn remove_object(&self, kind: ObjectKind, id: &str) -> Result<(), EngineError> {
        let mut state = self.reach()?;
        let shown = state.find_object(kind, id).map_or(id.to_string(), |index| {
            state.objects(kind)[index].name.clone()
        });
        state.writes.push(format!("remove {} {shown}", kind.noun()));
        state.remove_object(kind, id)
    }

    async fn list_services(&self, label: Option<&str>) -> Result<Vec<ServiceState>, EngineError> {
        let state = self.reach()?;
        let mut services: Vec<ServiceState> = state
            .services
            .iter()
            .filter(|service| label_matches(&spec_labels(&service.spec), label))
            .cloned()
            .collect();
        services.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        Ok(services)
    }

    async fn inspect_service(&self, id: &str) -> Result<ServiceState, EngineError> {
        let state = self.reach()?;
        let index = state.find_service(id)?;
        Ok(state.services[index].clone())
    }

    async fn create_service(&self, spec: &Spec) -> Result<String, EngineError> {
        let mut state = self.reach()?;
        state
            .writes
            .push(format!("create service {}", text(spec, "/Name")));
        state.create_service(spec)
    }

    async fn update_service(&self, id: &str, version: u64, spec: &Spec) -> Result<(), EngineError> {
        let mut state = self.reach()?;
        let shown = state
            .find_service(id)
            .map_or(id.to_string(), |index| state.services[index].name.clone());
        state.writes.push(format!("update service {shown}"));
        let result = state.update_service(id, version, spec);
        let started = std::mem::take(&mut state.started_rollouts);
        let time = state.rollout_time.unwrap_or_default();
        drop(state);
        for service_id in started {
            let shared = Arc::clone(&self.state);
            tokio::spawn(async move {
                tokio::time::sleep(time).await;
                let mut state = shared
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                state.complete_rollout(&service_id);
            });
        }
        result
    }

    async fn remove_service(&self, id: &str) -> Result<(), EngineError> {
        let mut state = self.reach()?;
        let shown = state
            .find_service(id)
            .map_or(id.to_string(), |index| state.services[index].name.clone());
        state.writes.push(format!("remove service {shown}"));
        let index = state.find_service(id)?;
        let service = state.services.remove(index);
        state.tasks.retain(|task| task.service_id != service.id);
        state.emit(EngineEvent::Service { id: service.id });
        Ok(())
    }

    async fn list_tasks(&self, service_id: &str) -> Result<Vec<TaskState>, EngineError> {
        let state = self.reach()?;
        let index = state.find_service(service_id)?;
        let id = &state.services[index].id;
        Ok(state
            .tasks
            .iter()
            .filter(|task| &task.service_id == id)
            .cloned()
            .collect())
    }

    async fn list_all_tasks(&self) -> Result<Vec<TaskState>, EngineError> {
        Ok(self.reach()?.tasks.clone())
    }

    async fn list_networks(&self, label: Option<&str>) -> Result<Vec<NetworkState>, EngineError> {
        let state = self.reach()?;
        let mut networks: Vec<NetworkState> = state
            .networks
            .iter()
            .filter(|network| label_matches(&network.state.labels, label))
            .map(|network| network.state.clone())
            .collect();
        networks.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        Ok(networks)
    }

    async fn create_network(&self, spec: &Spec) -> Result<String, EngineError> {
        let mut state = self.reach()?;
        state
            .writes
            .push(format!("create network {}", text(spec, "/Name")));
        state.create_network(spec)
    }

    async fn remove_network(&self, id: &str) -> Result<(), EngineError> {
        let mut state = self.reach()?;
        let found = state.find_network(id);
        let shown = found.map_or(id.to_string(), |index| {
            state.networks[index].state.name.clone()
        });
        state.writes.push(format!("remove network {shown}"));
        let index =
            found.ok_or_else(|| EngineError::NotFound(format!("network {id} not found")))?;
        let network = state.networks[index].clone();
        if network.predefined {
            return Err(EngineError::Api {
                status: 403,
                message: format!(
                    "{} is a pre-defined network and cannot be removed",
                    network.state.name
                ),
            });
        }
        if let Some(service) = state
            .services
            .iter()
            .find(|service| network_targets(&service.spec).contains(&network.state.id))
        {
            return Err(EngineError::Conflict(format!(
                "rpc error: code = FailedPrecondition desc = network {} is in use by service {}",
                network.state.id, service.id
            )));
        }
        state.networks.remove(index);
        Ok(())
    }

    async fn set_object_labels(
        &self,
        kind: ObjectKind,
        id: &str,
        labels: &IndexMap<String, String>,
    ) -> Result<(), EngineError> {
        let mut state = self.reach()?;
        let index = state
            .find_object(kind, id)
            .ok_or_else(|| EngineError::NotFound(format!("{} {id} not found", kind.noun())))?;
        let name = state.objects(kind)[index].name.clone();
        state.writes.push(format!("label {} {name}", kind.noun()));
        let updated_at = state.timestamp();
        let object = &mut state.objects_mut(kind)[index];
        object.labels = labels.clone();
        object.updated_at = updated_at;
        Ok(())
    }

    /// Records `exec SERVICE [COMMAND] mounts [NAME@TARGET, ...]` (the secrets the task has,
    /// so tests see what the command could read), then answers as scripted.
    async fn exec(&self, request: &ExecRequest) -> Result<ExecOutcome, EngineError> {
        let mut state = self.reach()?;
        let task = state
            .tasks
            .iter()
            .find(|task| task.container_id.as_deref() == Some(request.container_id.as_str()))
            .filter(|task| task.state == "running")
            .cloned()
            .ok_or_else(|| {
                EngineError::Conflict(format!("container {} is not running", request.container_id))
            })?;
        let service = state
            .services
            .iter()
            .find(|service| service.id == task.service_id)
            .map_or_else(String::new, |service| service.name.clone());
        let mounts: Vec<String> = task.spec["ContainerSpec"]["Secrets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|secret| {
                format!(
                    "{}@{}",
                    text(secret, "/SecretName"),
                    text(secret, "/File/Name")
                )
            })
            .collect();
        state.writes.push(format!(
            "exec {service} [{}] mounts [{}]",
            request.command.join(" "),
            mounts.join(", ")
        ));
        let scripted = state
            .scripted_execs
            .get_mut(&service)
            .and_then(|queue| (!queue.is_empty()).then(|| queue.remove(0)));
        Ok(scripted.unwrap_or(ExecOutcome {
            exit_code: 0,
            output: SensitiveBytes::new(Vec::new()),
        }))
    }

    /// Answers from the images [`FakeEngine::push_image`] pushed; any other image fails as
    /// dockerd does when its registry cannot be reached (500).
    async fn inspect_distribution(&self, image: &str) -> Result<Distribution, EngineError> {
        let mut state = self.reach()?;
        state.lookups.push(image.to_string());
        state
            .registry
            .get(image)
            .cloned()
            .ok_or_else(|| EngineError::Api {
                status: 500,
                message: format!("Get \"https://registry.invalid/v2/\": no such host ({image})"),
            })
    }

    async fn config_data(&self, id: &str) -> Result<Vec<u8>, EngineError> {
        let state = self.reach()?;
        let index = state
            .find_object(ObjectKind::Config, id)
            .ok_or_else(|| EngineError::NotFound(format!("config {id}")))?;
        Ok(state.configs[index].data.expose().to_vec())
    }

    async fn list_nodes(&self) -> Result<Vec<NodeState>, EngineError> {
        let state = self.reach()?;
        Ok(state.nodes.clone())
    }

    /// The events sent from now on; one error and the end when the engine is unreachable.
    fn watch_events(&self) -> EventStream {
        let receiver = match self.reach() {
            Ok(state) if state.events_closed => return Box::pin(futures_util::stream::empty()),
            Ok(state) => state.events.subscribe(),
            Err(error) => return Box::pin(futures_util::stream::iter([Err(error)])),
        };
        Box::pin(futures_util::stream::unfold(
            receiver,
            |mut receiver| async move {
                loop {
                    match receiver.recv().await {
                        Ok(event) => return Some((Ok(event), receiver)),
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            },
        ))
    }
}

impl State {
    /// A fresh 25-character ID, like swarm's.
    fn next_id(&mut self) -> String {
        self.counter += 1;
        format!("{:016x}{:09}", mix(self.counter), self.counter)
    }

    /// The next store index, for `Version.Index`.
    fn next_version(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    /// An RFC 3339 time that grows with every call.
    fn timestamp(&mut self) -> String {
        self.counter += 1;
        self.time_now()
    }

    /// The fake's clock: 2024-01-01T00:00:00 plus the seconds it was advanced, with the write
    /// counter as nanoseconds (so every write is later than the one before).
    fn time_now(&self) -> String {
        let (hours, minutes, seconds) = (self.clock / 3600, self.clock / 60 % 60, self.clock % 60);
        format!(
            "2024-01-01T{hours:02}:{minutes:02}:{seconds:02}.{:09}Z",
            self.counter
        )
    }

    fn objects(&self, kind: ObjectKind) -> &Vec<FakeObject> {
        match kind {
            ObjectKind::Secret => &self.secrets,
            ObjectKind::Config => &self.configs,
        }
    }

    fn objects_mut(&mut self, kind: ObjectKind) -> &mut Vec<FakeObject> {
        match kind {
            ObjectKind::Secret => &mut self.secrets,
            ObjectKind::Config => &mut self.configs,
        }
    }

    /// By exact ID or exact name, as the daemon resolves them.
    fn find_object(&self, kind: ObjectKind, key: &str) -> Option<usize> {
        let objects = self.objects(kind);
        objects
            .iter()
            .position(|object| object.id == key)
            .or_else(|| objects.iter().position(|object| object.name == key))
    }

    fn find_service(&self, key: &str) -> Result<usize, EngineError> {
        self.services
            .iter()
            .position(|service| service.id == key)
            .or_else(|| self.services.iter().position(|service| service.name == key))
            .ok_or_else(|| EngineError::NotFound(format!("service {key} not found")))
    }

    fn find_network(&self, key: &str) -> Option<usize> {
        self.networks
            .iter()
            .position(|network| network.state.id == key)
            .or_else(|| {
                self.networks
                    .iter()
                    .position(|network| network.state.name == key)
            })
    }

    fn create_object(&mut self, object: &NewObject) -> Result<String, EngineError> {
        let noun = object.kind.noun();
        validate_object_name(&object.name)?;
        match object.kind {
            ObjectKind::Secret if object.driver.as_deref() == Some("") => {
                return Err(invalid_argument("secret driver must have a name"));
            }
            ObjectKind::Secret if object.driver.is_some() => {}
            ObjectKind::Config if object.driver.is_some() => {
                return Err(EngineError::Other(format!(
                    "config '{}' cannot use a secret driver: Swarm configs have none",
                    object.name
                )));
            }
            kind => {
                let limit = kind.max_bytes() + 1;
                if object.data.is_empty() || object.data.len() as u64 >= limit {
                    return Err(invalid_argument(&format!(
                        "{noun} data must be larger than 0 and less than {limit} bytes"
                    )));
                }
            }
        }
        if self.find_object(object.kind, &object.name).is_some() {
            return Err(EngineError::Conflict(format!(
                "rpc error: code = AlreadyExists desc = {noun} {} already exists",
                object.name
            )));
        }
        let id = self.next_id();
        let created_at = self.timestamp();
        let data = match object.driver {
            Some(_) => SensitiveBytes::new(Vec::new()),
            None => object.data.clone(),
        };
        self.objects_mut(object.kind).push(FakeObject {
            kind: object.kind,
            id: id.clone(),
            name: object.name.clone(),
            labels: object.labels.clone(),
            updated_at: created_at.clone(),
            created_at,
            data,
            driver: object.driver.clone(),
            driver_opts: object.driver_opts.clone(),
            template_driver: object.template_driver.clone(),
        });
        Ok(id)
    }

    fn remove_object(&mut self, kind: ObjectKind, key: &str) -> Result<(), EngineError> {
        let noun = kind.noun();
        let index = self
            .find_object(kind, key)
            .ok_or_else(|| EngineError::NotFound(format!("{noun} {key} not found")))?;
        let object = &self.objects(kind)[index];
        let users: Vec<&str> = self
            .services
            .iter()
            .filter(|service| {
                references(&service.spec, kind)
                    .iter()
                    .any(|reference| reference.id == object.id || reference.name == object.name)
            })
            .map(|service| service.name.as_str())
            .collect();
        if !users.is_empty() {
            let services = if users.len() == 1 {
                "service"
            } else {
                "services"
            };
            return Err(EngineError::Conflict(format!(
                "rpc error: code = InvalidArgument desc = {noun} '{}' is in use by the following \
                 {services}: {}",
                object.name,
                users.join(", ")
            )));
        }
        self.objects_mut(kind).remove(index);
        Ok(())
    }

    /// Checks a ServiceSpec as dockerd and swarmkit do, and returns it normalised as dockerd
    /// stores it (network targets resolved to IDs).
    fn accept_service_spec(&self, spec: &Spec) -> Result<Spec, EngineError> {
        if !spec.is_object() {
            return Err(EngineError::Api {
                status: 400,
                message: "a service spec must be a JSON object".to_string(),
            });
        }
        validate_service_name(&text(spec, "/Name"))?;
        if text(spec, "/TaskTemplate/ContainerSpec/Image").is_empty() {
            return Err(invalid_argument(
                "ContainerSpec: image reference must be provided",
            ));
        }
        for kind in [ObjectKind::Secret, ObjectKind::Config] {
            self.check_references(spec, kind)?;
        }
        let mut spec = normalize_service_spec(spec);
        for pointer in ["/TaskTemplate/Networks", "/Networks"] {
            if let Some(Value::Array(attachments)) = spec.pointer_mut(pointer) {
                for attachment in attachments {
                    let target = text(attachment, "/Target");
                    let network = self
                        .find_network(&target)
                        .map(|index| &self.networks[index])
                        .ok_or_else(|| EngineError::Api {
                            status: 500,
                            message: format!("network {target} not found"),
                        })?;
                    if network.state.driver != "overlay" {
                        return Err(EngineError::Api {
                            status: 403,
                            message: format!(
                                "The network {} cannot be used with services. Only networks \
                                 scoped to the swarm can be used, such as those created with the \
                                 overlay driver.",
                                network.state.name
                            ),
                        });
                    }
                    attachment["Target"] = Value::String(network.state.id.clone());
                }
            }
        }
        Ok(spec)
    }

    /// swarmkit's reference rules: ID and name given, distinct file targets, and the object
    /// exists with that ID and that name.
    fn check_references(&self, spec: &Spec, kind: ObjectKind) -> Result<(), EngineError> {
        let noun = kind.noun();
        let mut targets: HashMap<String, String> = HashMap::new();
        let mut missing = Vec::new();
        for reference in references(spec, kind) {
            if reference.id.is_empty() || reference.name.is_empty() {
                return Err(invalid_argument(&format!("malformed {noun} reference")));
            }
            if let Some(file) = reference.file {
                if file.is_empty() {
                    return Err(invalid_argument(&format!(
                        "malformed file {noun} reference, invalid target file name provided"
                    )));
                }
                if let Some(previous) = targets.insert(file.clone(), reference.name.clone()) {
                    return Err(invalid_argument(&format!(
                        "{noun} references '{previous}' and '{}' have a conflicting target: \
                         '{file}'",
                        reference.name
                    )));
                }
            } else if kind == ObjectKind::Secret {
                return Err(invalid_argument(
                    "malformed secret reference, no target provided",
                ));
            }
            let exists = self
                .objects(kind)
                .iter()
                .any(|object| object.id == reference.id && object.name == reference.name);
            if !exists {
                missing.push(reference.name);
            }
        }
        if !missing.is_empty() {
            let nouns = if missing.len() == 1 {
                noun.to_string()
            } else {
                format!("{noun}s")
            };
            return Err(invalid_argument(&format!(
                "{nouns} not found: {}",
                missing.join(", ")
            )));
        }
        Ok(())
    }

    fn create_service(&mut self, spec: &Spec) -> Result<String, EngineError> {
        let spec = self.accept_service_spec(spec)?;
        let name = text(&spec, "/Name");
        if self.services.iter().any(|service| service.name == name) {
            return Err(EngineError::Conflict(format!(
                "rpc error: code = AlreadyExists desc = name conflicts with an existing object: \
                 service {name} already exists"
            )));
        }
        let id = self.next_id();
        let version = self.next_version();
        let job_iteration = is_job(&spec).then_some(0);
        self.start_tasks(&id, &name, &spec, job_iteration);
        self.services.push(ServiceState {
            id: id.clone(),
            name,
            version,
            spec,
            previous_spec: None,
            update_status: None,
            job_iteration,
        });
        Ok(id)
    }

    fn update_service(&mut self, key: &str, version: u64, spec: &Spec) -> Result<(), EngineError> {
        let spec = self.accept_service_spec(spec)?;
        let index = self.find_service(key)?;
        let current = self.services[index].clone();
        if mode_kind(&current.spec) != mode_kind(&spec) {
            return Err(unimplemented("service mode change is not allowed"));
        }
        if current.name != text(&spec, "/Name") {
            return Err(unimplemented("renaming services is not supported"));
        }
        if version != current.version {
            return Err(EngineError::OutOfSequence(
                "rpc error: code = Unknown desc = update out of sequence".to_string(),
            ));
        }
        let tasks_dirty = current.spec.get("TaskTemplate") != spec.get("TaskTemplate")
            || current.spec.get("EndpointSpec") != spec.get("EndpointSpec");
        let new_version = self.next_version();
        let mut service = ServiceState {
            version: new_version,
            spec: spec.clone(),
            previous_spec: Some(current.spec.clone()),
            update_status: None,
            ..current
        };
        if let Some(iteration) = current.job_iteration {
            // Swarm runs a job again after every update of its service, in a new iteration;
            // the tasks of earlier runs stay listed.
            service.job_iteration = Some(iteration + 1);
            let name = service.name.clone();
            self.start_tasks(&service.id, &name, &spec, service.job_iteration);
        } else if tasks_dirty {
            if let Some(hostname) = self.scripted_node_losses.remove(&service.name) {
                self.lose_node_during_update(&service.id, &hostname, &spec);
                service.update_status = Some(UpdateStatus {
                    state: "updating".to_string(),
                    message: "update in progress".to_string(),
                });
                self.services[index] = service;
                return Ok(());
            }
            match self.scripted_updates.remove(&service.name) {
                None if self.rollout_time.is_some() => {
                    self.stop_tasks(&service.id);
                    service.update_status = Some(UpdateStatus {
                        state: "updating".to_string(),
                        message: "update in progress".to_string(),
                    });
                    self.started_rollouts.push(service.id.clone());
                }
                None => {
                    self.stop_tasks(&service.id);
                    let name = service.name.clone();
                    self.start_tasks(&service.id, &name, &spec, None);
                    service.update_status = Some(UpdateStatus {
                        state: "completed".to_string(),
                        message: "update completed".to_string(),
                    });
                }
                Some(status) => {
                    self.fail_task(&service.id, &spec, &status.message);
                    if status.state.starts_with("rollback") {
                        // swarmkit's updater: Spec = PreviousSpec, PreviousSpec = nil.
                        service.spec = current.spec;
                        service.previous_spec = None;
                        service.version = self.next_version();
                    }
                    service.update_status = Some(status);
                }
            }
        } else {
            self.scale_tasks(&service.id, &spec);
        }
        let id = service.id.clone();
        self.services[index] = service;
        self.emit(EngineEvent::Service { id });
        Ok(())
    }

    /// Ends the timed rollout [`FakeEngine::set_rollout_time`] started, if the service is still
    /// updating: its tasks run the current spec, the update is `completed`, a service event goes.
    fn complete_rollout(&mut self, service_id: &str) {
        let Some(index) = self.services.iter().position(|s| s.id == service_id) else {
            return;
        };
        let service = self.services[index].clone();
        if service.update_status.as_ref().map(|s| s.state.as_str()) != Some("updating") {
            return;
        }
        self.start_tasks(&service.id, &service.name, &service.spec, None);
        self.services[index].update_status = Some(UpdateStatus {
            state: "completed".to_string(),
            message: "update completed".to_string(),
        });
        self.emit(EngineEvent::Service {
            id: service.id.clone(),
        });
    }

    /// Sends `event` to every subscriber (none listening is fine).
    fn emit(&self, event: EngineEvent) {
        let _ = self.events.send(event);
    }

    fn create_network(&mut self, spec: &Spec) -> Result<String, EngineError> {
        let name = text(spec, "/Name");
        if name.is_empty() {
            return Err(EngineError::Api {
                status: 400,
                message: "network name must be provided".to_string(),
            });
        }
        if let Some(network) = self
            .networks
            .iter()
            .find(|network| network.state.name == name)
        {
            if network.predefined {
                return Err(EngineError::Api {
                    status: 403,
                    message: format!("{name} is a pre-defined network and cannot be created"),
                });
            }
            return Err(EngineError::Conflict(format!(
                "network with name {name} already exists"
            )));
        }
        let driver = match text(spec, "/Driver") {
            driver if driver.is_empty() => "bridge".to_string(),
            driver => driver,
        };
        let mut labels: IndexMap<String, String> = spec
            .get("Labels")
            .and_then(Value::as_object)
            .map(|labels| {
                labels
                    .iter()
                    .map(|(key, value)| (key.clone(), value.as_str().unwrap_or_default().into()))
                    .collect()
            })
            .unwrap_or_default();
        labels.sort_keys();
        let id = self.next_id();
        self.networks.push(FakeNetwork {
            state: NetworkState {
                id: id.clone(),
                name,
                driver,
                labels,
            },
            predefined: false,
        });
        Ok(id)
    }

    /// One running task per replica, started from the spec's task template; for a job, one
    /// task per completion of `job_iteration`, completed at once (desired state `complete`,
    /// as Swarm gives job tasks) or failed as [`FakeEngine::fail_job`] scripted.
    fn start_tasks(
        &mut self,
        service_id: &str,
        name: &str,
        spec: &Spec,
        job_iteration: Option<u64>,
    ) {
        let global = mode_kind(spec).starts_with("Global");
        let failure = self.scripted_job_failures.get(name).cloned();
        for slot in 1..=replicas(spec) {
            let status = match (job_iteration, &failure) {
                (None, _) => "running",
                (Some(_), None) => "complete",
                (Some(_), Some(_)) => "failed",
            };
            let mut task = self.new_task(service_id, spec, (!global).then_some(slot), status);
            if job_iteration.is_some() {
                task.job_iteration = job_iteration;
                task.desired_state = "complete".to_string();
                if let Some(error) = &failure {
                    task.desired_state = "shutdown".to_string();
                    task.error = Some(error.clone());
                }
            }
            self.tasks.push(task);
        }
    }

    /// Shuts every live task of the service down.
    fn stop_tasks(&mut self, service_id: &str) {
        for task in &mut self.tasks {
            if task.service_id == service_id && task.desired_state == "running" {
                task.desired_state = "shutdown".to_string();
                task.state = "shutdown".to_string();
                task.message = "shutdown".to_string();
            }
        }
    }

    /// Follows a replica count change without replacing tasks.
    fn scale_tasks(&mut self, service_id: &str, spec: &Spec) {
        let live = self
            .tasks
            .iter()
            .filter(|task| task.service_id == service_id && task.desired_state == "running")
            .count() as u64;
        let wanted = replicas(spec);
        if live == wanted {
            return;
        }
        self.stop_tasks(service_id);
        self.start_tasks(service_id, "", spec, None);
    }

    /// Sets the state of node `hostname`, adding it if new; returns its ID.
    fn set_node_state(&mut self, hostname: &str, node_state: &str) -> String {
        self.emit(EngineEvent::Node);
        if let Some(node) = self.nodes.iter_mut().find(|n| n.hostname == hostname) {
            node.state = node_state.to_string();
            return node.id.clone();
        }
        let id = self.next_id();
        self.nodes.push(NodeState {
            id: id.clone(),
            hostname: hostname.to_string(),
            state: node_state.to_string(),
        });
        id
    }

    /// An update during which node `hostname` is lost (see
    /// [`FakeEngine::lose_node_in_next_update`]).
    fn lose_node_during_update(&mut self, service_id: &str, hostname: &str, spec: &Spec) {
        let node_id = self.set_node_state(hostname, "down");
        let old = self
            .tasks
            .iter()
            .find(|t| t.service_id == service_id && t.desired_state == "running")
            .cloned();
        self.stop_tasks(service_id);
        if let Some(mut old) = old {
            // The lost node never confirmed the shutdown of its old task.
            let id = self.next_id();
            old.id = id;
            old.node_id = node_id.clone();
            old.desired_state = "shutdown".to_string();
            old.state = "running".to_string();
            self.tasks.push(old);
        }
        let mut assigned = self.new_task(service_id, spec, Some(1), "assigned");
        assigned.node_id = node_id;
        assigned.desired_state = "shutdown".to_string();
        self.tasks.push(assigned);
        self.start_tasks(service_id, "", spec, None);
    }

    /// Records a task of the new spec that failed with `message`.
    fn fail_task(&mut self, service_id: &str, spec: &Spec, message: &str) {
        let global = mode_kind(spec).starts_with("Global");
        let mut task = self.new_task(service_id, spec, (!global).then_some(1), "failed");
        task.desired_state = "shutdown".to_string();
        task.error = Some(message.to_string());
        self.tasks.push(task);
    }

    fn new_task(
        &mut self,
        service_id: &str,
        spec: &Spec,
        slot: Option<u64>,
        status: &str,
    ) -> TaskState {
        let id = self.next_id();
        let created_at = self.timestamp();
        TaskState {
            id: id.clone(),
            service_id: service_id.to_string(),
            node_id: NODE_ID.to_string(),
            slot,
            desired_state: "running".to_string(),
            state: status.to_string(),
            message: if status == "running" {
                "started".to_string()
            } else {
                status.to_string()
            },
            error: None,
            spec: spec
                .get("TaskTemplate")
                .cloned()
                .unwrap_or_else(|| json!({})),
            container_id: (status == "running").then(|| format!("container-{id}")),
            created_at,
            job_iteration: None,
        }
    }
}

/// A secret or config reference in a ServiceSpec.
struct Reference {
    id: String,
    name: String,
    /// `File.Name`, when the reference is a file.
    file: Option<String>,
}

/// The references of one kind in a spec's `TaskTemplate.ContainerSpec`.
fn references(spec: &Spec, kind: ObjectKind) -> Vec<Reference> {
    let (list, id, name) = match kind {
        ObjectKind::Secret => ("Secrets", "/SecretID", "/SecretName"),
        ObjectKind::Config => ("Configs", "/ConfigID", "/ConfigName"),
    };
    spec.pointer(&format!("/TaskTemplate/ContainerSpec/{list}"))
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|item| Reference {
                    id: text(item, id),
                    name: text(item, name),
                    file: item.get("File").map(|file| text(file, "/Name")),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The network targets a spec attaches to.
fn network_targets(spec: &Spec) -> Vec<String> {
    ["/TaskTemplate/Networks", "/Networks"]
        .iter()
        .filter_map(|pointer| spec.pointer(pointer).and_then(Value::as_array))
        .flatten()
        .map(|attachment| text(attachment, "/Target"))
        .collect()
}

/// "Replicated", "Global", "ReplicatedJob" or "GlobalJob".
fn mode_kind(spec: &Spec) -> String {
    spec.get("Mode")
        .and_then(Value::as_object)
        .and_then(|mode| mode.keys().next().cloned())
        .unwrap_or_else(|| "Replicated".to_string())
}

/// Whether the spec is a job's (`ReplicatedJob` or `GlobalJob`).
fn is_job(spec: &Spec) -> bool {
    mode_kind(spec).ends_with("Job")
}

/// How many tasks the spec asks for on this one-node swarm (for a replicated job, its
/// completions: TotalCompletions, which defaults to MaxConcurrent, which defaults to 1).
fn replicas(spec: &Spec) -> u64 {
    if mode_kind(spec).starts_with("Global") {
        return 1;
    }
    spec.pointer("/Mode/Replicated/Replicas")
        .or_else(|| spec.pointer("/Mode/ReplicatedJob/TotalCompletions"))
        .or_else(|| spec.pointer("/Mode/ReplicatedJob/MaxConcurrent"))
        .and_then(Value::as_u64)
        .unwrap_or(1)
}

/// The spec as dockerd 20.10 stores and shows it (all of this seen on a real engine).
fn normalize_service_spec(spec: &Spec) -> Spec {
    let mut spec = spec.clone();
    strip_nulls_and_empty_lists(&mut spec);
    let Some(root) = spec.as_object_mut() else {
        return spec;
    };
    root.entry("Labels").or_insert_with(|| json!({}));
    let mode = root
        .entry("Mode")
        .or_insert_with(|| json!({"Replicated": {}}));
    if let Some(Value::Object(replicated)) = mode.get_mut("Replicated") {
        replicated.entry("Replicas").or_insert(json!(1));
    }
    if let Some(Value::Object(task)) = root.get_mut("TaskTemplate") {
        if let Some(Value::Object(container)) = task.get_mut("ContainerSpec") {
            if let Some(health) = container.remove("HealthCheck") {
                container.entry("Healthcheck").or_insert(health);
            }
            // Go's omitempty on non-pointer fields: empty strings, `false` (but `Init` is a
            // pointer and kept), empty maps.
            container.retain(|key, member| match member {
                Value::String(text) => !text.is_empty(),
                Value::Bool(flag) => *flag || key == "Init",
                Value::Object(map) => {
                    !(map.is_empty() && matches!(key.as_str(), "Labels" | "Sysctls"))
                }
                _ => true,
            });
            if let Some(Value::Object(health)) = container.get_mut("Healthcheck") {
                health.retain(|_, member| member.as_f64() != Some(0.0));
            }
            container
                .entry("Isolation")
                .or_insert_with(|| json!("default"));
        }
        if let Some(Value::Object(log_driver)) = task.get_mut("LogDriver") {
            if log_driver
                .get("Options")
                .and_then(Value::as_object)
                .is_some_and(Map::is_empty)
            {
                log_driver.remove("Options");
            }
        }
        if let Some(Value::Object(restart)) = task.get_mut("RestartPolicy") {
            restart.entry("Condition").or_insert_with(|| json!("any"));
            restart.entry("MaxAttempts").or_insert(json!(0));
        }
        task.entry("ForceUpdate").or_insert(json!(0));
        task.entry("Runtime").or_insert_with(|| json!("container"));
    }
    for key in ["UpdateConfig", "RollbackConfig"] {
        if let Some(Value::Object(config)) = root.get_mut(key) {
            config.entry("Parallelism").or_insert(json!(0));
            config
                .entry("FailureAction")
                .or_insert_with(|| json!("pause"));
            config.entry("MaxFailureRatio").or_insert(json!(0));
            config.entry("Order").or_insert_with(|| json!("stop-first"));
        }
    }
    if let Some(Value::Object(endpoint)) = root.get_mut("EndpointSpec") {
        endpoint.entry("Mode").or_insert_with(|| json!("vip"));
        if let Some(Value::Array(ports)) = endpoint.get_mut("Ports") {
            for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                port.entry("Protocol").or_insert_with(|| json!("tcp"));
                port.entry("PublishMode")
                    .or_insert_with(|| json!("ingress"));
            }
        }
    }
    spec
}

/// Drops `null` members and empty lists (Go's `omitempty`), recursively.
fn strip_nulls_and_empty_lists(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, member| {
                !member.is_null() && !matches!(member, Value::Array(items) if items.is_empty())
            });
            map.values_mut().for_each(strip_nulls_and_empty_lists);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls_and_empty_lists),
        _ => {}
    }
}

/// A spec's top-level `Labels` as a map.
fn spec_labels(spec: &Spec) -> IndexMap<String, String> {
    spec.get("Labels")
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .map(|(key, value)| (key.clone(), value.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Docker's `label` filter: `key=value` matches that value, `key` matches any value.
fn label_matches(labels: &IndexMap<String, String>, filter: Option<&str>) -> bool {
    match filter {
        None => true,
        Some(filter) => match filter.split_once('=') {
            Some((key, value)) => labels.get(key).is_some_and(|found| found == value),
            None => labels.contains_key(filter),
        },
    }
}

/// The string at `pointer`, or empty.
fn text(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// swarmkit's rule for secret and config names.
fn validate_object_name(name: &str) -> Result<(), EngineError> {
    if name.is_empty() {
        return Err(invalid_argument("name must be provided"));
    }
    let bytes = name.as_bytes();
    let valid = bytes.len() <= 64
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric();
    if !valid {
        return Err(invalid_argument(
            "invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end \
             character must be [a-zA-Z0-9]",
        ));
    }
    Ok(())
}

/// swarmkit's rule for service names (a DNS label: `^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$`).
fn validate_service_name(name: &str) -> Result<(), EngineError> {
    if name.is_empty() {
        return Err(invalid_argument("meta: name must be provided"));
    }
    let bytes = name.as_bytes();
    let valid = bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric();
    if !valid {
        return Err(invalid_argument(
            "name must be valid as a DNS name component",
        ));
    }
    if name.len() > 63 {
        return Err(invalid_argument("name must be 63 characters or fewer"));
    }
    Ok(())
}

/// A refusal the way the daemon relays swarmkit's InvalidArgument (HTTP 400).
fn invalid_argument(message: &str) -> EngineError {
    EngineError::Api {
        status: 400,
        message: format!("rpc error: code = InvalidArgument desc = {message}"),
    }
}

/// A refusal the way the daemon relays swarmkit's Unimplemented (HTTP 501).
fn unimplemented(message: &str) -> EngineError {
    EngineError::Api {
        status: 501,
        message: format!("rpc error: code = Unimplemented desc = {message}"),
    }
}

/// splitmix64, to make IDs look random while staying deterministic.
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a tokio runtime")
            .block_on(future)
    }

    fn secret(name: &str, data: &[u8]) -> NewObject {
        NewObject {
            kind: ObjectKind::Secret,
            name: name.to_string(),
            labels: IndexMap::from([(
                "com.docker.stack.namespace".to_string(),
                "demo".to_string(),
            )]),
            data: SensitiveBytes::new(data.to_vec()),
            driver: None,
            driver_opts: IndexMap::new(),
            template_driver: None,
        }
    }

    fn app_spec(secret_id: &str, secret_name: &str) -> Spec {
        json!({
            "Name": "demo_app",
            "Labels": {"com.docker.stack.namespace": "demo"},
            "TaskTemplate": {
                "ContainerSpec": {
                    "Image": "local/busybox:1",
                    "Secrets": [{
                        "File": {"Name": "db", "UID": "0", "GID": "0", "Mode": 292},
                        "SecretID": secret_id,
                        "SecretName": secret_name
                    }]
                }
            },
            "Mode": {"Replicated": {"Replicas": 2}}
        })
    }

    /// An engine with secret demo_db_v1 used by service demo_app (2 replicas).
    fn scene() -> (FakeEngine, String, String) {
        let engine = FakeEngine::new();
        let secret_id = block_on(engine.create_object(&secret("demo_db_v1", b"one"))).unwrap();
        let service_id =
            block_on(engine.create_service(&app_spec(&secret_id, "demo_db_v1"))).unwrap();
        (engine, secret_id, service_id)
    }

    #[test]
    fn starts_as_a_reachable_active_manager() {
        let engine = FakeEngine::new();
        let info = block_on(engine.info()).unwrap();
        assert_eq!(info.swarm_state, "active");
        assert!(info.is_manager);
        engine.set_swarm("inactive", false);
        let info = block_on(engine.info()).unwrap();
        assert_eq!(
            (info.swarm_state.as_str(), info.is_manager),
            ("inactive", false)
        );
    }

    #[test]
    fn names_are_unique_per_kind_and_ids_are_generated() {
        let engine = FakeEngine::new();
        let a = block_on(engine.create_object(&secret("demo_db_v1", b"x"))).unwrap();
        assert_eq!(a.len(), 25);
        let again = block_on(engine.create_object(&secret("demo_db_v1", b"y")));
        assert!(matches!(again, Err(EngineError::Conflict(m)) if m.contains("already exists")));
        let config = NewObject {
            kind: ObjectKind::Config,
            ..secret("demo_db_v1", b"x")
        };
        let b = block_on(engine.create_object(&config)).unwrap();
        assert_ne!(a, b);
        assert_eq!(engine.objects(ObjectKind::Secret)[0].data.expose(), b"x");
        assert_eq!(engine.write_count(), 3);
    }

    #[test]
    fn object_names_and_sizes_follow_swarmkit() {
        let engine = FakeEngine::new();
        for bad in ["", "-x", "x-", "a/b", &"a".repeat(65)] {
            let err = block_on(engine.create_object(&secret(bad, b"x"))).unwrap_err();
            assert!(
                matches!(err, EngineError::Api { status: 400, .. }),
                "{bad}: {err}"
            );
        }
        let empty = block_on(engine.create_object(&secret("empty", b""))).unwrap_err();
        assert!(empty
            .to_string()
            .contains("larger than 0 and less than 512000"));
        let big = vec![b'x'; 512_000];
        assert!(block_on(engine.create_object(&secret("big", &big))).is_err());
        let max = vec![b'x'; 511_999];
        block_on(engine.create_object(&secret("max", &max)))
            .expect("511999 bytes is within the limit");
        let driven = NewObject {
            driver: Some("vault".to_string()),
            ..secret("driven", b"")
        };
        block_on(engine.create_object(&driven)).expect("a driver-backed secret may be empty");
    }

    #[test]
    fn secret_in_use_by_current_spec_cannot_be_removed() {
        let (engine, secret_id, _) = scene();
        let err = block_on(engine.remove_object(ObjectKind::Secret, &secret_id)).unwrap_err();
        assert_eq!(
            err,
            EngineError::Conflict(
                "rpc error: code = InvalidArgument desc = secret 'demo_db_v1' is in use by the \
                 following service: demo_app"
                    .to_string()
            )
        );
        assert_eq!(engine.objects(ObjectKind::Secret).len(), 1);
        assert_eq!(engine.writes().last().unwrap(), "remove secret demo_db_v1");
    }

    #[test]
    fn secret_only_in_previous_spec_can_be_removed() {
        let (engine, v1, service_id) = scene();
        let v2 = block_on(engine.create_object(&secret("demo_db_v2", b"two"))).unwrap();
        let current = block_on(engine.inspect_service(&service_id)).unwrap();
        block_on(engine.update_service(&service_id, current.version, &app_spec(&v2, "demo_db_v2")))
            .unwrap();
        let updated = block_on(engine.inspect_service("demo_app")).unwrap();
        let previous = updated.previous_spec.as_ref().unwrap();
        assert_eq!(
            previous.pointer("/TaskTemplate/ContainerSpec/Secrets/0/SecretName"),
            Some(&json!("demo_db_v1"))
        );
        block_on(engine.remove_object(ObjectKind::Secret, &v1)).unwrap();
        assert!(block_on(engine.remove_object(ObjectKind::Secret, &v2)).is_err());
        assert_eq!(
            engine.writes(),
            [
                "create secret demo_db_v1",
                "create service demo_app",
                "create secret demo_db_v2",
                "update service demo_app",
                "remove secret demo_db_v1",
                "remove secret demo_db_v2",
            ]
        );
    }

    #[test]
    fn versions_grow_and_stale_updates_are_out_of_sequence() {
        let (engine, secret_id, service_id) = scene();
        let before = block_on(engine.inspect_service(&service_id)).unwrap();
        assert!(before.update_status.is_none());
        assert!(before.previous_spec.is_none());
        let spec = app_spec(&secret_id, "demo_db_v1");
        let mut changed = spec.clone();
        changed["TaskTemplate"]["ContainerSpec"]["Env"] = json!(["A=1"]);
        block_on(engine.update_service(&service_id, before.version, &changed)).unwrap();
        let after = block_on(engine.inspect_service(&service_id)).unwrap();
        assert!(after.version > before.version);
        let stale = block_on(engine.update_service(&service_id, before.version, &spec));
        assert!(matches!(stale, Err(EngineError::OutOfSequence(_))));
        assert_eq!(
            after.update_status,
            Some(UpdateStatus {
                state: "completed".to_string(),
                message: "update completed".to_string()
            })
        );
    }

    #[test]
    fn updates_that_leave_tasks_alone_have_no_update_status() {
        let (engine, secret_id, service_id) = scene();
        let before = block_on(engine.inspect_service(&service_id)).unwrap();
        let mut relabelled = app_spec(&secret_id, "demo_db_v1");
        relabelled["Labels"]["extra"] = json!("1");
        block_on(engine.update_service(&service_id, before.version, &relabelled)).unwrap();
        let after = block_on(engine.inspect_service(&service_id)).unwrap();
        assert!(after.version > before.version);
        assert!(after.update_status.is_none());
        assert!(after.previous_spec.is_some());
    }

    #[test]
    fn one_running_task_per_replica_from_the_task_template() {
        let (engine, _, service_id) = scene();
        let tasks = block_on(engine.list_tasks(&service_id)).unwrap();
        assert_eq!(tasks.len(), 2);
        assert!(tasks.iter().all(|task| task.state == "running"));
        assert_eq!(
            tasks.iter().map(|task| task.slot).collect::<Vec<_>>(),
            [Some(1), Some(2)]
        );
        let service = block_on(engine.inspect_service(&service_id)).unwrap();
        assert_eq!(tasks[0].spec, service.spec["TaskTemplate"]);

        let v2 = block_on(engine.create_object(&secret("demo_db_v2", b"two"))).unwrap();
        let mut spec = app_spec(&v2, "demo_db_v2");
        spec["Mode"] = json!({"Replicated": {}});
        block_on(engine.update_service(&service_id, service.version, &spec)).unwrap();
        let tasks = block_on(engine.list_tasks("demo_app")).unwrap();
        let running: Vec<_> = tasks
            .iter()
            .filter(|task| task.desired_state == "running")
            .collect();
        assert_eq!(running.len(), 1, "Replicated without Replicas means 1");
        assert_eq!(
            running[0].spec["ContainerSpec"]["Secrets"][0]["SecretName"],
            "demo_db_v2"
        );
        assert_eq!(
            tasks.iter().filter(|task| task.state == "shutdown").count(),
            2
        );

        let global = json!({
            "Name": "demo_agent",
            "TaskTemplate": {"ContainerSpec": {"Image": "local/busybox:1"}},
            "Mode": {"Global": {}}
        });
        let agent = block_on(engine.create_service(&global)).unwrap();
        let tasks = block_on(engine.list_tasks(&agent)).unwrap();
        assert_eq!(tasks.len(), 1);
        assert_eq!(tasks[0].slot, None);
    }

    #[test]
    fn scripted_rollback_restores_the_previous_spec() {
        let (engine, v1, service_id) = scene();
        let v2 = block_on(engine.create_object(&secret("demo_db_v2", b"two"))).unwrap();
        engine.fail_next_update(
            "demo_app",
            "rollback_completed",
            "update rolled back due to failure or early termination of task x",
        );
        let before = block_on(engine.inspect_service(&service_id)).unwrap();
        block_on(engine.update_service(&service_id, before.version, &app_spec(&v2, "demo_db_v2")))
            .unwrap();
        let after = block_on(engine.inspect_service(&service_id)).unwrap();
        assert_eq!(
            after.update_status.as_ref().unwrap().state,
            "rollback_completed"
        );
        assert_eq!(after.spec, before.spec);
        assert!(after.previous_spec.is_none());
        assert!(after.version > before.version);
        // v1 is current again and v2 unused.
        assert!(block_on(engine.remove_object(ObjectKind::Secret, &v1)).is_err());
        block_on(engine.remove_object(ObjectKind::Secret, &v2)).unwrap();
        let tasks = block_on(engine.list_tasks(&service_id)).unwrap();
        assert!(tasks
            .iter()
            .any(|task| task.state == "failed" && task.error.is_some()));
        assert_eq!(
            tasks.iter().filter(|task| task.state == "running").count(),
            2
        );

        // The script is used once.
        let current = block_on(engine.inspect_service(&service_id)).unwrap();
        let v3 = block_on(engine.create_object(&secret("demo_db_v3", b"three"))).unwrap();
        block_on(engine.update_service(&service_id, current.version, &app_spec(&v3, "demo_db_v3")))
            .unwrap();
        let last = block_on(engine.inspect_service(&service_id)).unwrap();
        assert_eq!(last.update_status.unwrap().state, "completed");
    }

    #[test]
    fn scripted_pause_keeps_the_new_spec() {
        let (engine, _, service_id) = scene();
        let v2 = block_on(engine.create_object(&secret("demo_db_v2", b"two"))).unwrap();
        engine.fail_next_update("demo_app", "paused", "update paused due to failure");
        let before = block_on(engine.inspect_service(&service_id)).unwrap();
        let spec = app_spec(&v2, "demo_db_v2");
        block_on(engine.update_service(&service_id, before.version, &spec)).unwrap();
        let after = block_on(engine.inspect_service(&service_id)).unwrap();
        assert_eq!(after.update_status.unwrap().state, "paused");
        assert_eq!(
            after.spec["TaskTemplate"]["ContainerSpec"]["Secrets"][0]["SecretName"],
            "demo_db_v2"
        );
        assert_eq!(after.previous_spec, Some(before.spec));
    }

    #[test]
    fn references_must_name_existing_objects() {
        let engine = FakeEngine::new();
        let id = block_on(engine.create_object(&secret("demo_db_v1", b"x"))).unwrap();
        let wrong_name = block_on(engine.create_service(&app_spec(&id, "demo_db_v9")));
        assert_eq!(
            wrong_name.unwrap_err().to_string(),
            "the engine refused the request (400): rpc error: code = InvalidArgument desc = \
             secret not found: demo_db_v9"
        );
        let no_id = block_on(engine.create_service(&app_spec("", "demo_db_v1")));
        assert!(no_id
            .unwrap_err()
            .to_string()
            .contains("malformed secret reference"));
        let mut twice = app_spec(&id, "demo_db_v1");
        let reference = twice["TaskTemplate"]["ContainerSpec"]["Secrets"][0].clone();
        twice["TaskTemplate"]["ContainerSpec"]["Secrets"]
            .as_array_mut()
            .unwrap()
            .push(reference);
        let err = block_on(engine.create_service(&twice)).unwrap_err();
        assert!(
            err.to_string().contains("conflicting target: 'db'"),
            "{err}"
        );
        assert!(engine.services().is_empty());
    }

    #[test]
    fn service_names_are_unique_and_cannot_change() {
        let (engine, secret_id, service_id) = scene();
        let spec = app_spec(&secret_id, "demo_db_v1");
        let again = block_on(engine.create_service(&spec));
        assert!(matches!(again, Err(EngineError::Conflict(m)) if m.contains("demo_app")));
        let current = block_on(engine.inspect_service(&service_id)).unwrap();
        let mut renamed = spec.clone();
        renamed["Name"] = json!("demo_other");
        let err = block_on(engine.update_service(&service_id, current.version, &renamed));
        assert!(matches!(err, Err(EngineError::Api { status: 501, .. })));
        let mut global = spec;
        global["Mode"] = json!({"Global": {}});
        let err = block_on(engine.update_service(&service_id, current.version, &global));
        assert!(matches!(err, Err(EngineError::Api { status: 501, .. })));
        assert!(matches!(
            block_on(engine.inspect_service("nope")),
            Err(EngineError::NotFound(_))
        ));
    }

    #[test]
    fn specs_are_stored_as_dockerd_shows_them() {
        let engine = FakeEngine::new();
        let network = block_on(engine.create_network(&json!({
            "Name": "demo_default", "Driver": "overlay", "Labels": {"com.docker.stack.namespace": "demo"}
        })))
        .unwrap();
        let spec = json!({
            "Name": "demo_web",
            "TaskTemplate": {
                "ContainerSpec": {
                    "Image": "local/busybox:1", "Env": [], "Labels": {}, "Hostname": "",
                    "ReadOnly": false, "Init": false, "StopGracePeriod": 0,
                    "HealthCheck": {"Test": ["CMD", "true"], "StartPeriod": 0, "Retries": 0}
                },
                "LogDriver": {"Name": "json-file", "Options": {}},
                "Placement": {"Constraints": []},
                "RestartPolicy": {},
                "Networks": [{"Target": "demo_default", "Aliases": ["web"]}]
            },
            "UpdateConfig": {"Parallelism": 1},
            "EndpointSpec": {"Ports": [{"TargetPort": 80, "PublishedPort": 8080}]}
        });
        block_on(engine.create_service(&spec)).unwrap();
        let stored = block_on(engine.inspect_service("demo_web")).unwrap().spec;
        assert_eq!(
            stored,
            json!({
                "Name": "demo_web",
                "Labels": {},
                "TaskTemplate": {
                    "ContainerSpec": {
                        "Image": "local/busybox:1",
                        "Init": false,
                        "StopGracePeriod": 0,
                        "Healthcheck": {"Test": ["CMD", "true"]},
                        "Isolation": "default"
                    },
                    "LogDriver": {"Name": "json-file"},
                    "Placement": {},
                    "RestartPolicy": {"Condition": "any", "MaxAttempts": 0},
                    "Networks": [{"Target": network, "Aliases": ["web"]}],
                    "ForceUpdate": 0,
                    "Runtime": "container"
                },
                "Mode": {"Replicated": {"Replicas": 1}},
                "UpdateConfig": {
                    "Parallelism": 1, "FailureAction": "pause", "MaxFailureRatio": 0,
                    "Order": "stop-first"
                },
                "EndpointSpec": {
                    "Mode": "vip",
                    "Ports": [{
                        "TargetPort": 80, "PublishedPort": 8080, "Protocol": "tcp",
                        "PublishMode": "ingress"
                    }]
                }
            })
        );
        // Storing the stored spec again changes nothing (normalisation is idempotent).
        let state = block_on(engine.inspect_service("demo_web")).unwrap();
        block_on(engine.update_service(&state.id, state.version, &state.spec)).unwrap();
        let again = block_on(engine.inspect_service("demo_web")).unwrap();
        assert_eq!(again.spec, state.spec);
        assert!(again.update_status.is_none());
    }

    #[test]
    fn networks_resolve_and_guard_their_services() {
        let engine = FakeEngine::new();
        let spec = json!({
            "Name": "demo_web",
            "TaskTemplate": {
                "ContainerSpec": {"Image": "local/busybox:1"},
                "Networks": [{"Target": "demo_default"}]
            }
        });
        let missing = block_on(engine.create_service(&spec)).unwrap_err();
        assert_eq!(
            missing,
            EngineError::Api {
                status: 500,
                message: "network demo_default not found".to_string()
            }
        );
        let local = block_on(engine.create_network(&json!({"Name": "demo_default"}))).unwrap();
        assert!(matches!(
            block_on(engine.create_service(&spec)),
            Err(EngineError::Api { status: 403, .. })
        ));
        block_on(engine.remove_network(&local)).unwrap();
        let overlay = block_on(engine.create_network(&json!({
            "Name": "demo_default", "Driver": "overlay", "Attachable": true,
            "Labels": {"com.docker.stack.namespace": "demo"}
        })))
        .unwrap();
        assert!(matches!(
            block_on(engine.create_network(&json!({"Name": "demo_default", "Driver": "overlay"}))),
            Err(EngineError::Conflict(_))
        ));
        let service = block_on(engine.create_service(&spec)).unwrap();
        let in_use = block_on(engine.remove_network("demo_default")).unwrap_err();
        assert!(matches!(in_use, EngineError::Conflict(m) if m.contains("is in use by service")));
        block_on(engine.remove_service(&service)).unwrap();
        block_on(engine.remove_network(&overlay)).unwrap();
        assert!(matches!(
            block_on(engine.remove_network("ingress")),
            Err(EngineError::Api { status: 403, .. })
        ));
        assert!(matches!(
            block_on(engine.remove_network("nope")),
            Err(EngineError::NotFound(_))
        ));
    }

    #[test]
    fn lists_filter_by_label() {
        let (engine, _, _) = scene();
        engine.insert_object(
            ObjectKind::Secret,
            "other_db",
            &[("com.docker.stack.namespace", "other")],
        );
        engine.insert_object(ObjectKind::Secret, "external_key", &[]);
        let label = Some("com.docker.stack.namespace=demo");
        let names = |objects: Vec<SwarmObject>| -> Vec<String> {
            objects.into_iter().map(|object| object.name).collect()
        };
        assert_eq!(
            names(block_on(engine.list_objects(ObjectKind::Secret, label)).unwrap()),
            ["demo_db_v1"]
        );
        assert_eq!(
            names(
                block_on(
                    engine.list_objects(ObjectKind::Secret, Some("com.docker.stack.namespace"))
                )
                .unwrap()
            ),
            ["demo_db_v1", "other_db"]
        );
        assert_eq!(
            names(block_on(engine.list_objects(ObjectKind::Secret, None)).unwrap()),
            ["demo_db_v1", "external_key", "other_db"]
        );
        assert_eq!(block_on(engine.list_services(label)).unwrap().len(), 1);
        assert!(
            block_on(engine.list_services(Some("com.docker.stack.namespace=x")))
                .unwrap()
                .is_empty()
        );
        assert!(block_on(engine.list_networks(label)).unwrap().is_empty());
        assert!(block_on(engine.list_networks(None))
            .unwrap()
            .iter()
            .any(|network| network.name == "ingress"));
        // Seeding is not a write.
        assert_eq!(engine.write_count(), 2);
    }

    #[test]
    fn unreachable_engine_refuses_everything_and_records_nothing() {
        let (engine, secret_id, _) = scene();
        engine.clear_writes();
        engine.set_unreachable(true);
        assert!(matches!(
            block_on(engine.info()),
            Err(EngineError::Unreachable { .. })
        ));
        assert!(matches!(
            block_on(engine.remove_object(ObjectKind::Secret, &secret_id)),
            Err(EngineError::Unreachable { .. })
        ));
        assert_eq!(engine.write_count(), 0);
        engine.set_unreachable(false);
        block_on(engine.list_services(None)).expect("reachable again");
    }

    #[test]
    fn removing_a_service_frees_its_secrets_and_tasks() {
        let (engine, secret_id, service_id) = scene();
        block_on(engine.remove_service("demo_app")).unwrap();
        assert!(matches!(
            block_on(engine.list_tasks(&service_id)),
            Err(EngineError::NotFound(_))
        ));
        block_on(engine.remove_object(ObjectKind::Secret, &secret_id)).unwrap();
        assert!(matches!(
            block_on(engine.remove_object(ObjectKind::Secret, &secret_id)),
            Err(EngineError::NotFound(_))
        ));
        assert!(matches!(
            block_on(engine.remove_service(&service_id)),
            Err(EngineError::NotFound(_))
        ));
    }

    #[test]
    fn debug_output_never_shows_secret_data() {
        let engine = FakeEngine::new();
        block_on(engine.create_object(&secret("demo_db_v1", b"hunter2-password"))).unwrap();
        let shown = format!("{engine:?} {:?}", engine.objects(ObjectKind::Secret));
        assert!(!shown.contains("hunter2"));
        assert!(shown.contains("SensitiveBytes(16 bytes)"));
    }
}
