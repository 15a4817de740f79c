//! How a service's rollout is judged from Swarm's UpdateStatus, its tasks and the nodes they
//! sit on, and the update states Swarm reports. The executor's watcher and `stackroll status`
//! both judge by `rollout_state`; the planner waits for the `UNSETTLED_STATES`.
//!
//! On a multi-node swarm a node can be lost (its engine gone: Swarm marks it `down`) while an
//! update rolls. Swarm's orchestrator restarts the lost node's tasks on live nodes, but its
//! updater keeps waiting, without a timeout, for the task it had assigned to the lost node: the
//! UpdateStatus stays `updating`, and once the node is back the updater counts that task's
//! shutdown as a failure and marks the update `paused`. Neither is a failure of the new spec:
//! when every wanted task runs it on a Ready node and what is stuck sits only on lost nodes (or
//! the pause names a task Swarm shut down, not one that failed), the service counts as
//! converged ([`RolloutState::Stranded`]).

use std::time::Duration;

use serde_json::Value;

use crate::engine::{NodeState, ServiceState, TaskState};

/// UpdateStatus.State: an update is under way.
pub const UPDATING: &str = "updating";
/// UpdateStatus.State: Swarm paused the update (a task failed under `failure_action: pause`).
pub const PAUSED: &str = "paused";
/// UpdateStatus.State: the update finished.
pub const COMPLETED: &str = "completed";
/// UpdateStatus.State: Swarm is rolling the update back.
pub const ROLLBACK_STARTED: &str = "rollback_started";
/// UpdateStatus.State: Swarm paused the rollback.
pub const ROLLBACK_PAUSED: &str = "rollback_paused";
/// UpdateStatus.State: Swarm rolled the update back.
pub const ROLLBACK_COMPLETED: &str = "rollback_completed";

/// Update states of a service whose last update has not settled.
pub const UNSETTLED_STATES: &[&str] = &[UPDATING, PAUSED, ROLLBACK_STARTED, ROLLBACK_PAUSED];
/// Update states that mean the update failed: paused or rolled back (a rollback is a failure).
pub const FAILED_STATES: &[&str] = &[
    PAUSED,
    ROLLBACK_STARTED,
    ROLLBACK_PAUSED,
    ROLLBACK_COMPLETED,
];

/// How long an update may stay without an UpdateStatus before the service is judged by its
/// tasks alone (Swarm sets none when no task needs replacing).
pub(crate) const NO_STATUS_GRACE: Duration = Duration::from_secs(5);

/// Where one service's rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutState {
    /// Still going: `running` of `desired` tasks run.
    Pending {
        /// Running tasks.
        running: usize,
        /// Tasks wanted.
        desired: usize,
        /// The latest error of a task started from the current spec, if any.
        last_error: Option<String>,
        /// Swarm's UpdateStatus.State, if an update ran.
        update_state: Option<String>,
        /// Hostnames of the lost nodes (not Ready) that tasks of the service still sit on.
        lost_nodes: Vec<String>,
    },
    /// Every task runs the new spec.
    Converged,
    /// Every wanted task runs the new spec on a Ready node; Swarm's update state still waits on
    /// a task of a lost node, or is paused by the shutdown of one (see the module docs).
    Stranded {
        /// What Swarm's update is stuck on, in words.
        note: String,
    },
    /// Swarm paused or rolled back the update.
    Failed {
        /// UpdateStatus.State.
        state: String,
        /// Swarm's message.
        message: String,
    },
    /// A job's current run is still going: `completed` of `total` tasks completed.
    JobRunning {
        /// Tasks that completed.
        completed: usize,
        /// Completions wanted.
        total: usize,
    },
    /// Every task of a job's current run completed.
    JobCompleted {
        /// Tasks that completed.
        total: usize,
    },
    /// A task of a job's current run failed or was rejected.
    JobFailed {
        /// The task's error (or status message).
        error: String,
    },
}

/// The state word a failed job reports (`Progress::RolloutFailed`).
pub const JOB_FAILED: &str = "task failed";

/// Judges one service from its state, its tasks and the swarm's nodes. `since_write` is how
/// long ago it was written.
pub fn rollout_state(
    service: &ServiceState,
    tasks: &[TaskState],
    nodes: &[NodeState],
    replaces_tasks: bool,
    since_write: Duration,
) -> RolloutState {
    let status = service.update_status.as_ref();
    if let Some(status) = status {
        let failed = match status.state.as_str() {
            PAUSED => !pause_cause_gone(&status.message, tasks),
            ROLLBACK_STARTED | ROLLBACK_PAUSED | ROLLBACK_COMPLETED => true,
            _ => false,
        };
        if failed {
            return RolloutState::Failed {
                state: status.state.clone(),
                message: status.message.clone(),
            };
        }
    }
    if service.job_iteration.is_some() {
        return job_state(service, tasks);
    }
    let template = service.spec.get("TaskTemplate");
    let live = |task: &&TaskState| lost_node(nodes, &task.node_id).is_none();
    let active: Vec<&TaskState> = tasks
        .iter()
        .filter(|task| task.desired_state == "running")
        .collect();
    let running = active
        .iter()
        .filter(|task| task.state == "running" && runs_template(task, template) && live(task))
        .count();
    // An old task still running on a live node (desired shutdown, or desired running on an
    // older spec).
    let stale_running = tasks.iter().filter(live).any(|task| {
        task.state == "running"
            && !(task.desired_state == "running" && runs_template(task, template))
    });
    let stranded = stranded_on(tasks, nodes);
    let desired = match service.spec.pointer("/Mode/Replicated") {
        Some(replicated) => replicated
            .get("Replicas")
            .and_then(Value::as_u64)
            .unwrap_or(1) as usize,
        None => active.len().max(1),
    };
    let state = status.map(|s| s.state.as_str());
    let update_done = match state {
        Some(COMPLETED | PAUSED) => true,
        // Swarm's updater waits for a task it assigned to a lost node: it never will finish.
        Some(UPDATING) => !stranded.is_empty(),
        Some(_) => false,
        None => !replaces_tasks || since_write >= NO_STATUS_GRACE,
    };
    if update_done && running == desired && active.len() == desired && !stale_running {
        return match state {
            Some(UPDATING | PAUSED) => RolloutState::Stranded {
                note: stranded_note(state.unwrap_or_default(), &stranded),
            },
            _ => RolloutState::Converged,
        };
    }
    RolloutState::Pending {
        running,
        desired,
        last_error: current_error(service, tasks),
        update_state: state.map(str::to_string),
        lost_nodes: stranded,
    }
}

/// The node `node_id` if it is lost: known to the swarm but not Ready (`down`, `unknown`,
/// `disconnected`), or not listed at all (removed). `None` for a Ready node or no node.
fn lost_node<'n>(nodes: &'n [NodeState], node_id: &str) -> Option<Option<&'n NodeState>> {
    if node_id.is_empty() {
        return None;
    }
    match nodes.iter().find(|node| node.id == node_id) {
        Some(node) if node.state == "ready" => None,
        found => Some(found),
    }
}

/// Hostnames (IDs when unlisted) of the lost nodes holding tasks that have not ended: tasks
/// Swarm cannot stop or start because their node's engine is gone. Sorted, each once.
fn stranded_on(tasks: &[TaskState], nodes: &[NodeState]) -> Vec<String> {
    let mut names: Vec<String> = tasks
        .iter()
        .filter(|task| !is_terminal(&task.state))
        .filter_map(|task| {
            lost_node(nodes, &task.node_id)
                .map(|node| node.map_or_else(|| task.node_id.clone(), |node| node.hostname.clone()))
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Whether a task state is final (the task will not run again).
fn is_terminal(state: &str) -> bool {
    matches!(
        state,
        "complete" | "shutdown" | "failed" | "rejected" | "orphaned" | "remove"
    )
}

/// Says what Swarm's update waits on, for a service that converged on its live nodes.
fn stranded_note(state: &str, lost: &[String]) -> String {
    if state == PAUSED {
        return "Swarm paused its update after shutting down a task it could not start (a lost node's); every wanted task runs the new spec on a Ready node".to_string();
    }
    format!(
        "Swarm's update is still `{state}`, waiting on tasks of lost node(s) {}; every wanted task runs the new spec on a Ready node",
        lost.join(", ")
    )
}

/// Whether the task a paused update names ("... of task <ID>") ended as a plain `shutdown`
/// without an error: Swarm stopped it (its node was lost, or it was replaced), it did not
/// fail. A task that failed, was rejected or completed early, or is no longer listed, keeps
/// the pause a failure.
fn pause_cause_gone(message: &str, tasks: &[TaskState]) -> bool {
    let Some(id) = message
        .rsplit_once("of task ")
        .map(|(_, id)| id.trim())
        .filter(|id| !id.is_empty())
    else {
        return false;
    };
    tasks
        .iter()
        .find(|task| task.id == id)
        .is_some_and(|task| task.state == "shutdown" && task.error.is_none())
}

/// Whether `task` was started from the service's current task template (compared where a
/// rollout changes what a container sees: image, secrets, configs, and the force counter).
fn runs_template(task: &TaskState, template: Option<&Value>) -> bool {
    let Some(template) = template else {
        return true;
    };
    let container =
        |spec: &Value, key: &str| spec.pointer(&format!("/ContainerSpec/{key}")).cloned();
    ["Image", "Secrets", "Configs"]
        .iter()
        .all(|key| container(&task.spec, key) == container(template, key))
        && task.spec.get("ForceUpdate") == template.get("ForceUpdate")
}

/// The latest error of a task of the current rollout: started from the service's current
/// task template (an error of an earlier spec's task is history, not news).
pub(crate) fn current_error(service: &ServiceState, tasks: &[TaskState]) -> Option<String> {
    let template = service.spec.get("TaskTemplate");
    latest_error(tasks.iter().filter(|task| runs_template(task, template)))
}

/// The error of the newest task that has one.
fn latest_error<'t>(tasks: impl Iterator<Item = &'t TaskState>) -> Option<String> {
    tasks
        .filter(|task| task.error.is_some())
        .max_by(|a, b| a.created_at.cmp(&b.created_at))
        .and_then(|task| task.error.clone())
}

/// Judges a job service by its current run: every task complete is success, a failed or
/// rejected task is failure.
fn job_state(service: &ServiceState, tasks: &[TaskState]) -> RolloutState {
    let template = service.spec.get("TaskTemplate");
    let run: Vec<&TaskState> = tasks
        .iter()
        .filter(|task| task.job_iteration == service.job_iteration && runs_template(task, template))
        .collect();
    let failed = run
        .iter()
        .filter(|task| matches!(task.state.as_str(), "failed" | "rejected"))
        .max_by(|a, b| a.created_at.cmp(&b.created_at));
    if let Some(task) = failed {
        let error = task.error.clone().unwrap_or_else(|| task.message.clone());
        return RolloutState::JobFailed { error };
    }
    let completed = run.iter().filter(|task| task.state == "complete").count();
    let total = match service.spec.pointer("/Mode/ReplicatedJob") {
        Some(job) => job
            .get("TotalCompletions")
            .or_else(|| job.get("MaxConcurrent"))
            .and_then(Value::as_u64)
            .unwrap_or(1) as usize,
        None => run.len().max(1),
    };
    if completed >= total {
        RolloutState::JobCompleted { total }
    } else {
        RolloutState::JobRunning { completed, total }
    }
}

/// How long the service's running tasks must stay unchanged before it counts as converged:
/// nothing when Swarm's updater already monitored them (UpdateStatus `completed`), else the
/// service's `update_config.monitor`, or `default` when it sets none.
pub(crate) fn settle_period(service: &ServiceState, default: Duration) -> Duration {
    let monitored = service
        .update_status
        .as_ref()
        .is_some_and(|status| status.state == "completed");
    if monitored {
        return Duration::ZERO;
    }
    service
        .spec
        .pointer("/UpdateConfig/Monitor")
        .and_then(Value::as_u64)
        .filter(|nanos| *nanos > 0)
        .map(Duration::from_nanos)
        .unwrap_or(default)
}

/// The running tasks of a service, as a sorted list of IDs (what must stay unchanged).
pub(crate) fn running_ids(tasks: &[TaskState]) -> Vec<String> {
    let mut ids: Vec<String> = tasks
        .iter()
        .filter(|task| task.state == "running" && task.desired_state == "running")
        .map(|task| task.id.clone())
        .collect();
    ids.sort();
    ids
}
