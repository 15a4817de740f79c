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
const NO_STATUS_GRACE: Duration = Duration::from_secs(5);

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
}

/// Judges one service from its state and tasks. `since_write` is how long ago it was written.
pub fn rollout_state(
    service: &ServiceState,
    tasks: &[TaskState],
    replaces_tasks: bool,
    since_write: Duration,
) -> RolloutState {
    let status = service.update_status.as_ref();
    if let Some(status) = status {
        if FAILED_STATES.contains(&status.state.as_str()) {
            return RolloutState::Failed {
                state: status.state.clone(),
                message: status.message.clone(),
            };
        }
    }
    let active: Vec<&TaskState> = tasks
        .iter()
        .filter(|task| task.desired_state == "running")
        .collect();
    let running = active.iter().filter(|task| task.state == "running").count();
    let desired = match service.spec.pointer("/Mode/Replicated") {
        Some(replicated) => replicated
            .get("Replicas")
            .and_then(Value::as_u64)
            .unwrap_or(1) as usize,
        None => active.len().max(1),
    };
    let mut newest: Vec<&TaskState> = tasks.iter().filter(|t| t.error.is_some()).collect();
    newest.sort_by(|a, b| b.created_at.cmp(&a.created_at));
    let last_error = newest.first().and_then(|task| task.error.clone());
    let pending = RolloutState::Pending {
        running,
        desired,
        last_error,
    };
    let update_done = match status.map(|s| s.state.as_str()) {
        Some(COMPLETED) => true,
        Some(_) => false,
        None => !replaces_tasks || since_write >= NO_STATUS_GRACE,
    };
    if update_done && running == desired && active.len() == desired {
        RolloutState::Converged
    } else {
        pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::UpdateStatus;
    use serde_json::json;

    fn service(replicas: u64, status: Option<&str>) -> ServiceState {
        ServiceState {
            id: "s".into(),
            name: "demo_app".into(),
            version: 3,
            spec: json!({"Mode": {"Replicated": {"Replicas": replicas}}}),
            previous_spec: None,
            update_status: status.map(|s| UpdateStatus {
                state: s.into(),
                message: "msg".into(),
            }),
        }
    }

    fn task(desired: &str, state: &str) -> TaskState {
        TaskState {
            container_id: None,
            id: "t".into(),
            service_id: "s".into(),
            node_id: "n".into(),
            slot: Some(1),
            desired_state: desired.into(),
            state: state.into(),
            message: String::new(),
            error: None,
            spec: json!({}),
            created_at: String::new(),
        }
    }

    #[test]
    fn rollbacks_and_pauses_fail() {
        for state in [
            "paused",
            "rollback_started",
            "rollback_completed",
            "rollback_paused",
        ] {
            assert!(matches!(
                rollout_state(
                    &service(1, Some(state)),
                    &[task("running", "running")],
                    true,
                    Duration::ZERO
                ),
                RolloutState::Failed { .. }
            ));
        }
    }

    #[test]
    fn an_update_converges_only_when_completed_and_tasks_run() {
        let running = [task("running", "running"), task("shutdown", "shutdown")];
        assert!(matches!(
            rollout_state(&service(1, None), &running, true, Duration::ZERO),
            RolloutState::Pending { .. }
        ));
        assert!(matches!(
            rollout_state(
                &service(1, Some("updating")),
                &running,
                true,
                Duration::ZERO
            ),
            RolloutState::Pending { .. }
        ));
        assert_eq!(
            rollout_state(
                &service(1, Some("completed")),
                &running,
                true,
                Duration::ZERO
            ),
            RolloutState::Converged
        );
        let starting = [task("running", "starting")];
        assert!(matches!(
            rollout_state(
                &service(1, Some("completed")),
                &starting,
                true,
                Duration::ZERO
            ),
            RolloutState::Pending { .. }
        ));
        assert_eq!(
            rollout_state(&service(1, None), &running, false, Duration::ZERO),
            RolloutState::Converged
        );
        assert_eq!(
            rollout_state(&service(1, None), &running, true, NO_STATUS_GRACE),
            RolloutState::Converged
        );
    }

    #[test]
    fn replica_count_must_match() {
        let one = [task("running", "running")];
        assert!(matches!(
            rollout_state(&service(2, None), &one, false, Duration::ZERO),
            RolloutState::Pending {
                running: 1,
                desired: 2,
                ..
            }
        ));
    }
}
