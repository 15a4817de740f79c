//! Watching services converge after a write: Swarm's UpdateStatus and the service's tasks,
//! polled until every service runs its new spec, fails, or the timeout passes. A rollback or a
//! paused update is a failure, whatever `docker stack deploy` would have said.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Progress, Reporter};
use crate::engine::{Engine, EngineError, ServiceState, TaskState};

/// How long an update may stay without an UpdateStatus before the service is judged by its
/// tasks alone (Swarm sets none when no task needs replacing).
const NO_STATUS_GRACE: Duration = Duration::from_secs(5);

/// A service to wait for.
#[derive(Debug, Clone)]
pub struct Watched {
    /// Service ID.
    pub id: String,
    /// Service name.
    pub name: String,
    /// Whether the write changed the task template (so Swarm replaces tasks).
    pub replaces_tasks: bool,
}

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
        if matches!(
            status.state.as_str(),
            "paused" | "rollback_started" | "rollback_paused" | "rollback_completed"
        ) {
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
        Some("completed") => true,
        Some(_) => false,
        None => !replaces_tasks || since_write >= NO_STATUS_GRACE,
    };
    if update_done && running == desired && active.len() == desired {
        RolloutState::Converged
    } else {
        pending
    }
}

/// Says in words what Swarm did with a failed update.
fn failure_reason(state: &str, message: &str) -> String {
    let what = match state {
        "paused" => "Swarm paused the update".to_string(),
        "rollback_paused" => "Swarm paused the rollback".to_string(),
        _ => format!("Swarm rolled the service back ({state})"),
    };
    if message.is_empty() {
        what
    } else {
        format!("{what}: {message}")
    }
}

/// A service that did not converge, as the executor returns it and plan/deploy output
/// reports it (`failures` in schema/plan.schema.json).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RolloutFailure {
    /// Service name.
    pub service: String,
    /// What happened: Swarm's state and message, or the timeout.
    pub reason: String,
}

/// The failures in one line: `demo_app (Swarm rolled the service back ...); demo_web (...)`.
pub fn describe_failures(failures: &[RolloutFailure]) -> String {
    let names: Vec<String> = failures
        .iter()
        .map(|failure| format!("{} ({})", failure.service, failure.reason))
        .collect();
    names.join("; ")
}

/// Waits for every watched service together; returns those that failed or timed out.
pub async fn wait_for_rollouts<E: Engine>(
    engine: &E,
    watched: &[Watched],
    timeout: Duration,
    poll: Duration,
    reporter: &dyn Reporter,
) -> Result<Vec<RolloutFailure>, EngineError> {
    let started = Instant::now();
    let mut pending: Vec<&Watched> = watched.iter().collect();
    let mut failures = Vec::new();
    let mut last_reported: Vec<Option<RolloutState>> = vec![None; watched.len()];
    let index_of = |w: &Watched| watched.iter().position(|x| x.id == w.id).expect("watched");
    while !pending.is_empty() {
        let elapsed = started.elapsed();
        let states = read_states(engine, &pending, elapsed).await?;
        let mut still = Vec::new();
        for (w, state) in pending.into_iter().zip(states) {
            let index = index_of(w);
            let last = last_reported[index].as_ref();
            failures.extend(report_state(w, &state, last, elapsed, reporter));
            if matches!(state, RolloutState::Pending { .. }) {
                still.push(w);
            }
            last_reported[index] = Some(state);
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if started.elapsed() >= timeout {
            failures.extend(
                pending
                    .into_iter()
                    .map(|w| timed_out(w, last_reported[index_of(w)].as_ref(), timeout)),
            );
            break;
        }
        tokio::time::sleep(poll).await;
    }
    Ok(failures)
}

/// Reads where each pending service's rollout stands, `elapsed` after the writes.
async fn read_states<E: Engine>(
    engine: &E,
    pending: &[&Watched],
    elapsed: Duration,
) -> Result<Vec<RolloutState>, EngineError> {
    futures_util::future::try_join_all(pending.iter().map(|w| async move {
        let (service, tasks) =
            futures_util::try_join!(engine.inspect_service(&w.id), engine.list_tasks(&w.id))?;
        Ok::<_, EngineError>(rollout_state(&service, &tasks, w.replaces_tasks, elapsed))
    }))
    .await
}

/// Tells the reporter where a service stands (a pending one only when that changed since
/// `last`); returns the failure if its rollout failed.
fn report_state(
    w: &Watched,
    state: &RolloutState,
    last: Option<&RolloutState>,
    elapsed: Duration,
    reporter: &dyn Reporter,
) -> Option<RolloutFailure> {
    match state {
        RolloutState::Converged => {
            reporter.report(Progress::Converged {
                service: &w.name,
                elapsed,
            });
            None
        }
        RolloutState::Failed { state, message } => {
            reporter.report(Progress::RolloutFailed {
                service: &w.name,
                state,
                message,
            });
            Some(RolloutFailure {
                service: w.name.clone(),
                reason: failure_reason(state, message),
            })
        }
        RolloutState::Pending {
            running,
            desired,
            last_error,
        } => {
            if last != Some(state) {
                reporter.report(Progress::Rolling {
                    service: &w.name,
                    running: *running,
                    desired: *desired,
                    elapsed,
                    last_error: last_error.as_deref(),
                });
            }
            None
        }
    }
}

/// The failure of a service still pending at the timeout, with where it was last seen.
fn timed_out(w: &Watched, last: Option<&RolloutState>, timeout: Duration) -> RolloutFailure {
    let detail = match last {
        Some(RolloutState::Pending {
            running,
            desired,
            last_error,
        }) => format!(
            "{running}/{desired} tasks running{}",
            last_error
                .as_ref()
                .map(|e| format!("; last task error: {e}"))
                .unwrap_or_default()
        ),
        _ => String::new(),
    };
    RolloutFailure {
        service: w.name.clone(),
        reason: format!("did not converge within {}s ({detail})", timeout.as_secs()),
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
