//! The Docker Engine as stackroll sees it: a small trait over the Swarm API calls we make,
//! with a real implementation over bollard (`docker`, the only file that imports it) and an
//! in-memory one for unit tests (`fake`, compiled only under `cfg(test)`, so never into the
//! binary). Specs travel as Docker Engine API JSON (`Spec`), exactly what `docker service
//! inspect` shows, so both implementations and the planner agree on one shape. Which engine to
//! talk to is resolved in `endpoint` (pure, as the docker CLI resolves it); `transport` makes the
//! TLS and `ssh://` connections; [`Target`] is what outputs say they talked to. Registry
//! credentials (`--with-registry-auth`) are given to the real engine when it is built: it sends
//! them on service creates and updates and on distribution lookups for the image's registry.

pub mod docker;
pub mod endpoint;
#[cfg(test)]
pub mod fake;
pub mod transport;

use std::pin::Pin;

use futures_util::Stream;
use indexmap::IndexMap;

use crate::model::{ObjectKind, SensitiveBytes};

/// A spec in the Docker Engine API's JSON shape (ServiceSpec, NetworkCreateRequest, ...).
pub type Spec = serde_json::Value;

/// Facts about the engine and the node it runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineInfo {
    /// The API version both sides speak after negotiation, e.g. "1.41".
    pub api_version: String,
    /// Swarm's LocalNodeState: "active", "inactive", "pending", "error", "locked".
    pub swarm_state: String,
    /// Whether this node is a swarm manager (can deploy).
    pub is_manager: bool,
    /// This node's swarm ID (Swarm.NodeID): commands run in containers only reach tasks on it.
    pub node_id: String,
    /// This node's name (Name: its hostname).
    pub node_name: String,
    /// The swarm's ID (Swarm.Cluster.ID; empty when this node is not a manager).
    pub cluster_id: String,
    /// The engine's clock at the time of the call (SystemTime), RFC 3339: what object
    /// timestamps (`created_at`, `updated_at`) compare against.
    pub system_time: String,
}

/// The engine a command talks to, as its output names it: the context and address it was
/// reached by, and the swarm and manager node that answered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Target {
    /// The docker context (`default` for `-H`, `DOCKER_HOST` or the local socket).
    pub context: String,
    /// The engine's address, e.g. `ssh://deploy@manager1` or `unix:///var/run/docker.sock`.
    pub endpoint: String,
    /// The swarm's ID.
    pub cluster_id: String,
    /// The manager node that answered (its name).
    pub node: String,
}

/// A secret or config as listed by the engine (data is never readable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmObject {
    /// Swarm's ID.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its labels.
    pub labels: IndexMap<String, String>,
    /// Creation time, RFC 3339, as the engine reports it.
    pub created_at: String,
    /// Time of the last change (a relabel), RFC 3339, on the engine's clock.
    pub updated_at: String,
}

/// A secret or config to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewObject {
    /// Secret or config.
    pub kind: ObjectKind,
    /// Its name.
    pub name: String,
    /// Its labels.
    pub labels: IndexMap<String, String>,
    /// Its data (empty for driver-backed secrets).
    pub data: SensitiveBytes,
    /// Secret driver plugin, for driver-backed secrets.
    pub driver: Option<String>,
    /// Options for the secret driver.
    pub driver_opts: IndexMap<String, String>,
    /// Templating driver (e.g. "golang").
    pub template_driver: Option<String>,
}

/// Where a service's rolling update stands (Swarm's UpdateStatus).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateStatus {
    /// "updating", "paused", "completed", "rollback_started", "rollback_paused",
    /// "rollback_completed".
    pub state: String,
    /// Swarm's message, e.g. "update paused due to failure or early termination of task ...".
    pub message: String,
}

/// A service as the engine reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceState {
    /// Swarm's ID.
    pub id: String,
    /// The service name (Spec.Name).
    pub name: String,
    /// Version.Index, sent back with an update.
    pub version: u64,
    /// The current ServiceSpec.
    pub spec: Spec,
    /// The ServiceSpec before the last update, which a rollback returns to.
    pub previous_spec: Option<Spec>,
    /// The rolling update's status, if an update ever ran.
    pub update_status: Option<UpdateStatus>,
    /// For a job service, the run it is on (JobStatus.JobIteration.Index): every update
    /// starts a new one. `None` for replicated and global services.
    pub job_iteration: Option<u64>,
}

/// A task (one container slot) of a service.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskState {
    /// Swarm's ID.
    pub id: String,
    /// The service it belongs to.
    pub service_id: String,
    /// The node it was scheduled on, if any.
    pub node_id: String,
    /// The replica slot (replicated services).
    pub slot: Option<u64>,
    /// "running", "shutdown", ...
    pub desired_state: String,
    /// Status.State: "new", "pending", "assigned", "accepted", "preparing", "starting",
    /// "running", "complete", "shutdown", "failed", "rejected", "orphaned", "remove".
    pub state: String,
    /// Status.Message.
    pub message: String,
    /// Status.Err, if the task failed.
    pub error: Option<String>,
    /// The task's TaskSpec (what it was started from).
    pub spec: Spec,
    /// The container running it (Status.ContainerStatus.ContainerID), once there is one.
    pub container_id: Option<String>,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// For a job's task, the job run it belongs to (JobIteration.Index); `None` otherwise.
    pub job_iteration: Option<u64>,
}

/// A command to run inside a running container (`docker exec`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    /// The container.
    pub container_id: String,
    /// The command and its arguments.
    pub command: Vec<String>,
    /// The user to run it as; the container's own when `None`.
    pub user: Option<String>,
}

/// What a command run in a container did.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecOutcome {
    /// Its exit code.
    pub exit_code: i64,
    /// The end of what it printed (stdout and stderr interleaved), at most [`EXEC_OUTPUT_MAX`]
    /// bytes. It may hold secret values: callers redact before showing any of it.
    pub output: SensitiveBytes,
}

/// How much of a command's output is kept (its last bytes).
pub const EXEC_OUTPUT_MAX: usize = 64 * 1024;

/// A network as the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkState {
    /// Swarm's ID.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its driver ("overlay", ...).
    pub driver: String,
    /// Its labels.
    pub labels: IndexMap<String, String>,
}

/// What a registry says an image reference points at (`GET /distribution/{name}/json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Distribution {
    /// The manifest's digest, `sha256:<hex>`.
    pub digest: String,
    /// The platforms the image (or its index) offers, in the registry's order.
    pub platforms: Vec<Platform>,
}

/// One platform of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `amd64`, `arm64`, `arm`, ... (`unknown` for attestations).
    pub architecture: String,
    /// `linux`, `windows`, ... (`unknown` for attestations).
    pub os: String,
}

/// A swarm node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeState {
    /// Swarm's ID.
    pub id: String,
    /// Its hostname (Description.Hostname).
    pub hostname: String,
    /// Status.State: "ready", "down", "unknown" or "disconnected".
    pub state: String,
}

/// Something that changed in the swarm, as the engine's event stream (`GET /events`) tells it.
/// Only a hint that a rollout may have moved: the rollout watcher reads the service again and
/// judges what it reads, never the event itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineEvent {
    /// A service changed (its spec, or Swarm's UpdateStatus: `updating`, `completed`, a pause
    /// or a rollback) or was removed.
    Service {
        /// The service's ID.
        id: String,
    },
    /// A task's container started or ended. The engine reports only its own node's containers,
    /// so tasks on other nodes send none.
    Task {
        /// The ID of the service the task belongs to.
        service_id: String,
    },
    /// A node changed (its state or availability), joined or left.
    Node,
}

/// The engine's events from the moment of the call on ([`Engine::watch_events`]). It ends, or
/// yields an error, when the engine drops the connection; nothing relies on it never ending.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<EngineEvent, EngineError>>>>;

/// Why an engine call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The engine could not be reached at all.
    #[error("cannot reach the Docker engine at {endpoint}: {message}")]
    Unreachable {
        /// The address tried.
        endpoint: String,
        /// What went wrong.
        message: String,
    },
    /// The engine speaks an API older than stackroll needs.
    #[error("the Docker engine speaks API {found}, stackroll needs at least {needed}")]
    TooOld {
        /// The engine's API version.
        found: String,
        /// The minimum.
        needed: String,
    },
    /// The object does not exist (404).
    #[error("not found: {0}")]
    NotFound(String),
    /// The name is taken, or the object is in use (409).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A service update raced another one ("update out of sequence").
    #[error("update out of sequence: {0}")]
    OutOfSequence(String),
    /// Any other refusal, with the HTTP status and the engine's message.
    #[error("the engine refused the request ({status}): {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The engine's message.
        message: String,
    },
    /// A transport or decoding failure.
    #[error("{0}")]
    Other(String),
}

/// The Swarm API calls stackroll makes. Lists filter by one label (`key=value`) when given;
/// callers compare names exactly themselves (the engine's name filter is a prefix match).
#[allow(async_fn_in_trait)]
pub trait Engine {
    /// Engine, API and swarm facts.
    async fn info(&self) -> Result<EngineInfo, EngineError>;
    /// The API version negotiated when connecting (`EngineInfo::api_version`, without a
    /// request: `/info` makes dockerd gather facts about the whole host).
    fn api_version(&self) -> String;
    /// Secrets or configs, optionally only those with `label` (`key=value`).
    async fn list_objects(
        &self,
        kind: ObjectKind,
        label: Option<&str>,
    ) -> Result<Vec<SwarmObject>, EngineError>;
    /// Creates a secret or config; returns its ID.
    async fn create_object(&self, object: &NewObject) -> Result<String, EngineError>;
    /// Removes a secret or config by ID.
    async fn remove_object(&self, kind: ObjectKind, id: &str) -> Result<(), EngineError>;
    /// Services, optionally only those with `label` (`key=value`).
    async fn list_services(&self, label: Option<&str>) -> Result<Vec<ServiceState>, EngineError>;
    /// One service by ID or name.
    async fn inspect_service(&self, id: &str) -> Result<ServiceState, EngineError>;
    /// Creates a service from a ServiceSpec; returns its ID.
    async fn create_service(&self, spec: &Spec) -> Result<String, EngineError>;
    /// Replaces a service's spec; `version` is the Version.Index it was read at.
    async fn update_service(&self, id: &str, version: u64, spec: &Spec) -> Result<(), EngineError>;
    /// Removes a service.
    async fn remove_service(&self, id: &str) -> Result<(), EngineError>;
    /// The tasks of one service.
    async fn list_tasks(&self, service_id: &str) -> Result<Vec<TaskState>, EngineError>;
    /// Every task of the swarm, of every service, in one read.
    async fn list_all_tasks(&self) -> Result<Vec<TaskState>, EngineError>;
    /// Networks, optionally only those with `label` (`key=value`).
    async fn list_networks(&self, label: Option<&str>) -> Result<Vec<NetworkState>, EngineError>;
    /// Creates a network from a NetworkCreateRequest JSON; returns its ID.
    async fn create_network(&self, spec: &Spec) -> Result<String, EngineError>;
    /// Removes a network.
    async fn remove_network(&self, id: &str) -> Result<(), EngineError>;
    /// The swarm's nodes.
    async fn list_nodes(&self) -> Result<Vec<NodeState>, EngineError>;
    /// Subscribes to the engine's events about services, tasks' containers and nodes
    /// ([`EngineEvent`]). The request is sent when the stream is first polled.
    fn watch_events(&self) -> EventStream;
    /// Replaces a secret's or config's labels (the only part of one Swarm lets change).
    async fn set_object_labels(
        &self,
        kind: ObjectKind,
        id: &str,
        labels: &IndexMap<String, String>,
    ) -> Result<(), EngineError>;
    /// Runs a command in a running container on this engine's node and waits for it to end.
    async fn exec(&self, request: &ExecRequest) -> Result<ExecOutcome, EngineError>;
    /// Looks `image` up in its registry through the engine (`GET /distribution/{image}/json`):
    /// the digest its tag points at and the platforms it offers. The engine sends the
    /// registry credentials it was given for the image's registry, if any.
    async fn inspect_distribution(&self, image: &str) -> Result<Distribution, EngineError>;
    /// A config's data (configs are not secret: the engine returns it; secrets' data it never
    /// does, so there is no such call for them).
    async fn config_data(&self, id: &str) -> Result<Vec<u8>, EngineError>;
}
