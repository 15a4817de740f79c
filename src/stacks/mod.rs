//! Whole-stack commands: `ls` (stacks and what stackroll manages in each), `ps` (tasks),
//! `status` (versions per secret/config, rollout state per service, and the stack's state as a
//! whole), `rm`, `wait` ([`wait`]) and `rollback` ([`rollback`]). Each returns a value the
//! printers in `render::stacks` show as text or JSON. `rm` and `rollback` write, so they take
//! the stack's deploy lock like a deploy (and renew it while they work).

pub mod rollback;
pub mod wait;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::apply::lock::{self, Guarded, LockError, LockTiming};
use crate::engine::{Engine, EngineError, NodeState, ServiceState, TaskState};
use crate::model::ObjectKind;
use crate::plan::prune::references;
use crate::plan::Resource;
use crate::progress::{Progress, Reporter};
use crate::signal::Signal;
use crate::swarm::labels::{KEY_LABEL, MANAGED_LABEL, STACK_NAMESPACE_LABEL};
use crate::swarm::namespace::is_managed_by;
use crate::swarm::namespace::Namespace;
use crate::swarm::retry::remove_when_free;
use crate::swarm::rollout::{rollout_state, RolloutState, UPDATING};
use crate::swarm::versions::{versions_by_key, Version};

/// One stack in `stackroll ls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StackSummary {
    /// The stack name.
    pub name: String,
    /// How many services it has.
    pub services: usize,
    /// How many secret versions stackroll manages in it.
    pub secrets: usize,
    /// How many config versions stackroll manages in it.
    pub configs: usize,
}

/// Every stack on the swarm (any object with the stack label), sorted by name.
pub async fn list_stacks<E: Engine>(engine: &E) -> Result<Vec<StackSummary>, EngineError> {
    let (services, secrets, configs) = futures_util::try_join!(
        engine.list_services(None),
        engine.list_objects(ObjectKind::Secret, None),
        engine.list_objects(ObjectKind::Config, None),
    )?;
    let mut stacks: BTreeMap<String, StackSummary> = BTreeMap::new();
    let bump =
        |stacks: &mut BTreeMap<String, StackSummary>, name: &str, field: fn(&mut StackSummary)| {
            let summary = stacks
                .entry(name.to_string())
                .or_insert_with(|| StackSummary {
                    name: name.to_string(),
                    services: 0,
                    secrets: 0,
                    configs: 0,
                });
            field(summary);
        };
    for service in &services {
        if let Some(stack) = service
            .spec
            .pointer("/Labels")
            .and_then(|l| l.get(STACK_NAMESPACE_LABEL))
            .and_then(|v| v.as_str())
        {
            bump(&mut stacks, stack, |s| s.services += 1);
        }
    }
    for (objects, field) in [
        (
            &secrets,
            (|s: &mut StackSummary| s.secrets += 1) as fn(&mut StackSummary),
        ),
        (&configs, |s: &mut StackSummary| s.configs += 1),
    ] {
        for object in objects {
            // Versions only: a stack's content seal is stackroll's bookkeeping.
            if object.labels.get(MANAGED_LABEL).map(String::as_str) != Some("true")
                || !object.labels.contains_key(KEY_LABEL)
            {
                continue;
            }
            if let Some(stack) = object.labels.get(STACK_NAMESPACE_LABEL) {
                bump(&mut stacks, stack, field);
            }
        }
    }
    Ok(stacks.into_values().collect())
}

/// One task in `stackroll ps`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskRow {
    /// Task ID.
    pub id: String,
    /// `<service>.<slot>` (or the node for global services).
    pub name: String,
    /// The node's hostname (or ID when unknown).
    pub node: String,
    /// Desired state.
    pub desired_state: String,
    /// Current state.
    pub current_state: String,
    /// The task's error, if any.
    pub error: String,
}

/// The tasks of the stack's services.
pub async fn stack_tasks<E: Engine>(
    engine: &E,
    namespace: &Namespace,
) -> Result<Vec<TaskRow>, EngineError> {
    let label = namespace.label_filter();
    let (services, nodes) =
        futures_util::try_join!(engine.list_services(Some(&label)), engine.list_nodes())?;
    let mut rows = Vec::new();
    for service in &services {
        for task in engine.list_tasks(&service.id).await? {
            let node = nodes
                .iter()
                .find(|node| node.id == task.node_id)
                .map_or_else(|| task.node_id.clone(), |node| node.hostname.clone());
            let name = match task.slot {
                Some(slot) => format!("{}.{slot}", service.name),
                None => format!("{}.{}", service.name, task.node_id),
            };
            rows.push(TaskRow {
                id: task.id,
                name,
                node,
                desired_state: task.desired_state,
                current_state: task.state,
                error: task.error.unwrap_or_default(),
            });
        }
    }
    Ok(rows)
}

/// One secret or config key in `stackroll status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectStatus {
    /// Secret or config.
    pub kind: Resource,
    /// The Compose key.
    pub key: String,
    /// The newest version a service's current spec references.
    pub live: Option<String>,
    /// Every version that exists, newest first.
    pub versions: Vec<String>,
    /// Which service references which version (current specs).
    pub references: Vec<Reference>,
}

/// A service's reference to a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reference {
    /// Service name.
    pub service: String,
    /// Version name.
    pub version: String,
}

/// One service in `stackroll status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceStatus {
    /// Service name.
    pub name: String,
    /// `converged`, `updating`, `rolled_back`, `paused` or `starting`; for a job service
    /// `job_running`, `job_completed` or `job_failed`.
    pub state: String,
    /// Running tasks (for a job: tasks of its current run that completed).
    pub running: usize,
    /// Tasks wanted (for a job: completions wanted).
    pub desired: usize,
    /// Swarm's update message or the latest task error.
    pub message: String,
}

/// Where a stack stands as a whole, which `stackroll status` exits with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackState {
    /// Every service converged (jobs: completed). Exit 0.
    Converged,
    /// A service was rolled back or its update paused, or a job failed. Exit 3.
    Failed,
    /// A service is still updating or starting (a job still running). Exit 4.
    Updating,
}

impl StackState {
    /// The exit code `stackroll status` gives.
    pub fn exit_code(self) -> i32 {
        match self {
            StackState::Converged => 0,
            StackState::Failed => 3,
            StackState::Updating => 4,
        }
    }
}

/// `stackroll status`: versions and rollout states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StackStatus {
    /// The stack.
    pub stack: String,
    /// Per secret and config key.
    pub objects: Vec<ObjectStatus>,
    /// Per service.
    pub services: Vec<ServiceStatus>,
}

impl StackStatus {
    /// The stack's state: failed when any service failed, else updating when any is not done,
    /// else converged.
    pub fn state(&self) -> StackState {
        let states = || self.services.iter().map(|service| service.state.as_str());
        if states().any(|state| matches!(state, "rolled_back" | "paused" | "job_failed")) {
            StackState::Failed
        } else if states().any(|state| !matches!(state, "converged" | "job_completed")) {
            StackState::Updating
        } else {
            StackState::Converged
        }
    }
}

/// Reads the stack's versions and the state of its services.
pub async fn stack_status<E: Engine>(
    engine: &E,
    namespace: &Namespace,
) -> Result<StackStatus, EngineError> {
    let label = namespace.label_filter();
    let (services, secrets, configs, nodes) = futures_util::try_join!(
        engine.list_services(Some(&label)),
        engine.list_objects(ObjectKind::Secret, Some(&label)),
        engine.list_objects(ObjectKind::Config, Some(&label)),
        engine.list_nodes(),
    )?;
    let mut objects = Vec::new();
    for (kind, list) in [
        (ObjectKind::Secret, &secrets),
        (ObjectKind::Config, &configs),
    ] {
        for (key, versions) in versions_by_key(list, namespace) {
            objects.push(object_status(kind, key, &versions, &services));
        }
    }
    let mut service_states = Vec::new();
    for service in &services {
        let tasks = engine.list_tasks(&service.id).await?;
        service_states.push(service_status(service, &tasks, &nodes));
    }
    Ok(StackStatus {
        stack: namespace.0.clone(),
        objects,
        services: service_states,
    })
}

/// One key's versions, newest first, and which service references which.
fn object_status(
    kind: ObjectKind,
    key: &str,
    versions: &[Version<'_>],
    services: &[ServiceState],
) -> ObjectStatus {
    let mut references_found = Vec::new();
    for service in services {
        for version in versions {
            let object = version.object;
            if references(&service.spec, kind, object) {
                references_found.push(Reference {
                    service: service.name.clone(),
                    version: object.name.clone(),
                });
            }
        }
    }
    let live = versions
        .iter()
        .map(|version| version.object)
        .find(|object| references_found.iter().any(|r| r.version == object.name))
        .map(|object| object.name.clone());
    ObjectStatus {
        kind: Resource::of(kind),
        key: key.to_string(),
        live,
        versions: versions.iter().map(|v| v.object.name.clone()).collect(),
        references: references_found,
    }
}

/// One service's rollout state, in the words `stackroll status` uses.
fn service_status(
    service: &ServiceState,
    tasks: &[TaskState],
    nodes: &[NodeState],
) -> ServiceStatus {
    let state = rollout_state(service, tasks, nodes, false, Duration::MAX);
    let status_message = service
        .update_status
        .as_ref()
        .map(|s| s.message.clone())
        .unwrap_or_default();
    let (state, running, desired, message) = match state {
        RolloutState::Stranded { note } => {
            let desired = tasks
                .iter()
                .filter(|t| t.desired_state == "running" && t.state == "running")
                .count();
            ("converged".to_string(), desired, desired, note)
        }
        RolloutState::Converged => {
            let desired = tasks
                .iter()
                .filter(|t| t.desired_state == "running")
                .count();
            ("converged".to_string(), desired, desired, status_message)
        }
        RolloutState::Failed { state, message } => {
            let word = if state.starts_with("rollback") {
                "rolled_back"
            } else {
                "paused"
            };
            let running = tasks
                .iter()
                .filter(|t| t.desired_state == "running" && t.state == "running")
                .count();
            (word.to_string(), running, running, message)
        }
        RolloutState::JobRunning { completed, total } => {
            ("job_running".to_string(), completed, total, status_message)
        }
        RolloutState::JobCompleted { total } => {
            ("job_completed".to_string(), total, total, status_message)
        }
        RolloutState::JobFailed { error } => {
            let completed = tasks.iter().filter(|t| t.state == "complete").count();
            ("job_failed".to_string(), completed, completed.max(1), error)
        }
        RolloutState::Pending {
            running,
            desired,
            last_error,
            ..
        } => {
            let updating = service
                .update_status
                .as_ref()
                .is_some_and(|s| s.state == UPDATING);
            let word = if updating { "updating" } else { "starting" };
            (
                word.to_string(),
                running,
                desired,
                last_error.unwrap_or(status_message),
            )
        }
    };
    ServiceStatus {
        name: service.name.clone(),
        state,
        running,
        desired,
        message,
    }
}

/// What `stackroll rm` removed and left.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Removed {
    /// Services removed.
    pub services: Vec<String>,
    /// Networks removed.
    pub networks: Vec<String>,
    /// Secrets and configs stackroll had created, removed.
    pub objects: Vec<String>,
    /// Objects of the stack stackroll did not create, left in place.
    pub left: Vec<String>,
}

/// Why `stackroll rm` stopped.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    /// An engine call failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The stack's deploy lock could not be taken, or was lost.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// A signal stopped the removal; the lock was given back.
    #[error("interrupted by {}: stopped removing and gave the deploy lock back{}", .signal.name(), lock::written_note(.written))]
    Interrupted {
        /// The signal.
        signal: Signal,
        /// What was removed before it came.
        written: Vec<String>,
    },
}

/// Takes the stack's deploy lock (waiting as `lock_timing` says), removes the stack
/// ([`remove_unlocked`]) while renewing the lock, and gives it back. When `stop` yields a
/// signal first, the removal stops there, the lock is given back, and the error names what
/// was removed.
pub async fn remove_stack<E: Engine>(
    engine: &E,
    namespace: &Namespace,
    timeout: Duration,
    lock_timing: &LockTiming,
    reporter: &dyn Reporter,
    stop: impl Future<Output = Signal>,
) -> Result<Removed, RemoveError> {
    let mut stop = std::pin::pin!(stop);
    let lock = tokio::select! {
        lock = lock::acquire(engine, namespace, lock_timing, reporter) => lock?,
        signal = &mut stop => {
            // The lock may have been created as the signal came.
            lock::release_if_ours(engine, namespace).await;
            return Err(RemoveError::Interrupted { signal, written: Vec::new() });
        }
    };
    let guarded = Guarded::new(engine, &lock);
    let result = tokio::select! {
        removed = remove_unlocked(&guarded, namespace, timeout, reporter) => match removed {
            Err(_) if guarded.lost() => Err(guarded.lost_error().into()),
            other => other.map_err(RemoveError::from),
        },
        lost = lock.keep_alive(engine) => Err(lost.into()),
        signal = &mut stop => Err(RemoveError::Interrupted { signal, written: guarded.written() }),
    };
    if let Err(error) = lock.release(engine).await {
        reporter.report(Progress::LockNotReleased {
            stack: &namespace.0,
            error: &error.to_string(),
        });
    }
    result
}

/// Removes the stack's services, waits until they are gone, then its networks and the secrets
/// and configs stackroll created for it. Objects it did not create are left and listed.
async fn remove_unlocked<E: Engine>(
    engine: &E,
    namespace: &Namespace,
    timeout: Duration,
    reporter: &dyn Reporter,
) -> Result<Removed, EngineError> {
    let label = namespace.label_filter();
    let started = Instant::now();
    let mut removed = Removed::default();
    for service in engine.list_services(Some(&label)).await? {
        match engine.remove_service(&service.id).await {
            Ok(()) | Err(EngineError::NotFound(_)) => {}
            Err(error) => return Err(error),
        }
        reporter.report(Progress::Deleted {
            resource: Resource::Service,
            name: &service.name,
        });
        removed.services.push(service.name);
    }
    while !engine.list_services(Some(&label)).await?.is_empty() {
        if started.elapsed() > timeout {
            return Err(EngineError::Other(
                "services of the stack are still being removed; run `stackroll rm` again".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Networks and secrets stay in use until the tasks have stopped: retry until the timeout.
    for network in engine.list_networks(Some(&label)).await? {
        remove_when_free(timeout.saturating_sub(started.elapsed()), || {
            engine.remove_network(&network.id)
        })
        .await?;
        reporter.report(Progress::Deleted {
            resource: Resource::Network,
            name: &network.name,
        });
        removed.networks.push(network.name);
    }
    // The engine lists a removed swarm network for a moment after removing it.
    while !engine.list_networks(Some(&label)).await?.is_empty() && started.elapsed() < timeout {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for kind in [ObjectKind::Secret, ObjectKind::Config] {
        for object in engine.list_objects(kind, Some(&label)).await? {
            if !is_managed_by(&object, namespace) {
                removed
                    .left
                    .push(format!("{} {}", kind.noun(), object.name));
                continue;
            }
            remove_when_free(timeout.saturating_sub(started.elapsed()), || {
                engine.remove_object(kind, &object.id)
            })
            .await?;
            reporter.report(Progress::Deleted {
                resource: Resource::of(kind),
                name: &object.name,
            });
            removed.objects.push(object.name);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fake::FakeEngine;
    use crate::progress::Recorder;
    use crate::swarm::labels::{HOLDER_LABEL, LEASE_LABEL};

    /// A service in `state`.
    fn service(state: &str) -> ServiceStatus {
        ServiceStatus {
            name: format!("demo_{state}"),
            state: state.to_string(),
            running: 1,
            desired: 1,
            message: String::new(),
        }
    }

    #[test]
    fn a_stack_is_failed_if_any_service_failed_else_updating_if_any_is_not_done() {
        let status = |states: &[&str]| StackStatus {
            stack: "demo".into(),
            objects: Vec::new(),
            services: states.iter().map(|state| service(state)).collect(),
        };
        assert_eq!(
            status(&["converged", "job_completed"]).state(),
            StackState::Converged
        );
        assert_eq!(
            status(&["converged", "starting"]).state(),
            StackState::Updating
        );
        assert_eq!(status(&["job_running"]).state(), StackState::Updating);
        for failed in ["rolled_back", "paused", "job_failed"] {
            assert_eq!(status(&["updating", failed]).state(), StackState::Failed);
        }
        assert_eq!(
            [
                StackState::Converged,
                StackState::Failed,
                StackState::Updating
            ]
            .map(StackState::exit_code),
            [0, 3, 4]
        );
    }

    /// `rm` waits for the deploy lock another holds, then fails naming it and removes nothing;
    /// once the lock is free it removes the stack and gives the lock back.
    #[test]
    fn rm_takes_the_deploy_lock() {
        let engine = FakeEngine::new();
        let ns = Namespace("demo".into());
        let spec = serde_json::json!({
            "Name": "demo_app",
            "Labels": {STACK_NAMESPACE_LABEL: "demo"},
            "TaskTemplate": {"ContainerSpec": {"Image": "local/busybox:1"}},
        });
        engine.insert_service(&spec).unwrap();
        engine.insert_object(
            ObjectKind::Config,
            "demo_stackroll-lock",
            &[
                (HOLDER_LABEL, "ghost@elsewhere pid 9"),
                (LEASE_LABEL, "600"),
            ],
        );
        let timing = LockTiming::waiting(Duration::from_millis(30), Duration::from_millis(5));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let held = remove_stack(
                &engine,
                &ns,
                Duration::from_secs(1),
                &timing,
                &Recorder::default(),
                std::future::pending(),
            )
            .await;
            match held {
                Err(RemoveError::Lock(LockError::Held { holder, .. })) => {
                    assert_eq!(holder, "ghost@elsewhere pid 9")
                }
                other => panic!("expected the lock to be held, got {other:?}"),
            }
            assert_eq!(engine.services().len(), 1, "rm removed a service");
            lock::force_unlock(&engine, &ns).await.unwrap();
            let removed = remove_stack(
                &engine,
                &ns,
                Duration::from_secs(1),
                &timing,
                &Recorder::default(),
                std::future::pending(),
            )
            .await
            .unwrap();
            assert_eq!(removed.services, vec!["demo_app".to_string()]);
            assert_eq!(
                lock::force_unlock(&engine, &ns).await.unwrap(),
                None,
                "the lock was given back"
            );
        });
    }
}
