//! How a service's rollout is judged from Swarm's UpdateStatus and its tasks, and the update
//! states Swarm reports. The executor's watcher and `stackroll status` both judge by
//! `rollout_state`; the planner waits for the `UNSETTLED_STATES`.

use std::time::Duration;

use serde_json::Value;

use crate::engine::{ServiceState, TaskState};

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
        /// A task's latest error, if any.
        last_error: Option<String>,
    },
    /// Every task runs the new spec.
    Converged,
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

/// Judges one service from its state and tasks. `since_write` is how long ago it was written.
pub fn rollout_state(
    service: &ServiceState,
    tasks: &[TaskState],
    replaces_tasks: bool,
    since_write: Duration,
) -> RolloutState {
    let status = service.update_status.as_ref();
    if let Some(status) = status {
        if matches!(
            status.state.as_str(),
            PAUSED | ROLLBACK_STARTED | ROLLBACK_PAUSED | ROLLBACK_COMPLETED
        ) {
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
    let active: Vec<&TaskState> = tasks
        .iter()
        .filter(|task| task.desired_state == "running")
        .collect();
    let running = active
        .iter()
        .filter(|task| task.state == "running" && runs_template(task, template))
        .count();
    // An old task still running (desired shutdown, or desired running on an older spec).
    let stale_running = tasks.iter().any(|task| {
        task.state == "running"
            && !(task.desired_state == "running" && runs_template(task, template))
    });
    let desired = match service.spec.pointer("/Mode/Replicated") {
        Some(replicated) => replicated
            .get("Replicas")
            .and_then(Value::as_u64)
            .unwrap_or(1) as usize,
        None => active.len().max(1),
    };
    let pending = RolloutState::Pending {
        running,
        desired,
        last_error: latest_error(tasks.iter()),
    };
    let update_done = match status.map(|s| s.state.as_str()) {
        Some(COMPLETED) => true,
        Some(_) => false,
        None => !replaces_tasks || since_write >= NO_STATUS_GRACE,
    };
    if update_done && running == desired && active.len() == desired && !stale_running {
        RolloutState::Converged
    } else {
        pending
    }
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

/// The error of the newest task that has one.
pub(crate) fn latest_error<'t>(tasks: impl Iterator<Item = &'t TaskState>) -> Option<String> {
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
