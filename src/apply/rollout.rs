//! Watching services converge after a write: Swarm's UpdateStatus and the service's tasks,
//! polled until every service runs its new spec, fails, or the timeout passes. A rollback or a
//! paused update is a failure, whatever `docker stack deploy` would have said.
//!
//! Tasks are judged against the service's current task template, not only counted: a task
//! still running an older spec (an old replica a `start-first` update has not stopped yet)
//! means the rollout is not over. Tasks Swarm did not watch itself (a new service, an update
//! without an UpdateStatus) must keep running, unchanged, for the service's update monitor
//! period (by default 5 s, as `docker service create` waits), so a crash-looping service is not taken for converged.
//! Job services (`replicated-job`, `global-job`) are judged by completion instead.

use std::time::{Duration, Instant};

use super::{ApplyOptions, Progress, Reporter};
use crate::engine::{Engine, EngineError};
use crate::swarm::rollout::{
    latest_error, rollout_state, running_ids, settle_period, RolloutState, JOB_FAILED, PAUSED,
    ROLLBACK_PAUSED,
};

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

/// Says in words what Swarm did with a failed update.
fn failure_reason(state: &str, message: &str) -> String {
    let what = match state {
        PAUSED => "Swarm paused the update".to_string(),
        ROLLBACK_PAUSED => "Swarm paused the rollback".to_string(),
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
    options: &ApplyOptions,
    reporter: &dyn Reporter,
) -> Result<Vec<RolloutFailure>, EngineError> {
    let ApplyOptions {
        timeout,
        poll,
        settle,
        ..
    } = *options;
    let started = Instant::now();
    let mut pending: Vec<&Watched> = watched.iter().collect();
    let mut failures = Vec::new();
    let mut last_reported: Vec<Option<RolloutState>> = vec![None; watched.len()];
    let mut steady: Vec<Option<Steady>> = vec![None; watched.len()];
    let index_of = |w: &Watched| watched.iter().position(|x| x.id == w.id).expect("watched");
    while !pending.is_empty() {
        let elapsed = started.elapsed();
        let observations = read_states(engine, &pending, elapsed, settle).await?;
        let mut still = Vec::new();
        for (w, observation) in pending.into_iter().zip(observations) {
            let index = index_of(w);
            let state = observation.settled(&mut steady[index]);
            let last = last_reported[index].as_ref();
            failures.extend(report_state(w, &state, last, elapsed, reporter));
            if matches!(
                state,
                RolloutState::Pending { .. } | RolloutState::JobRunning { .. }
            ) {
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

/// Since when a service's running tasks have been the same ones.
#[derive(Debug, Clone)]
struct Steady {
    /// The running task IDs.
    running: Vec<String>,
    /// When they were first seen.
    since: Instant,
}

/// One poll of one service.
struct Observation {
    /// Its state judged from this poll alone.
    state: RolloutState,
    /// Its running tasks.
    running: Vec<String>,
    /// How long they must stay unchanged (see [`settle_period`]).
    settle: Duration,
    /// The newest task error.
    last_error: Option<String>,
}

impl Observation {
    /// The state once steadiness is taken into account: a service whose running tasks have
    /// not stayed the same for its settle period is still pending.
    fn settled(self, steady: &mut Option<Steady>) -> RolloutState {
        let now = Instant::now();
        let since = match steady {
            Some(seen) if seen.running == self.running => seen.since,
            _ => {
                *steady = Some(Steady {
                    running: self.running.clone(),
                    since: now,
                });
                now
            }
        };
        let unsettled = self.settle > Duration::ZERO && now.duration_since(since) < self.settle;
        if self.state == RolloutState::Converged && unsettled {
            return RolloutState::Pending {
                running: self.running.len(),
                desired: self.running.len(),
                last_error: self.last_error,
            };
        }
        self.state
    }
}

/// Reads where each pending service's rollout stands, `elapsed` after the writes.
async fn read_states<E: Engine>(
    engine: &E,
    pending: &[&Watched],
    elapsed: Duration,
    settle: Duration,
) -> Result<Vec<Observation>, EngineError> {
    futures_util::future::try_join_all(pending.iter().map(|w| async move {
        let (service, tasks) =
            futures_util::try_join!(engine.inspect_service(&w.id), engine.list_tasks(&w.id))?;
        Ok::<_, EngineError>(Observation {
            state: rollout_state(&service, &tasks, w.replaces_tasks, elapsed),
            running: running_ids(&tasks),
            settle: settle_period(&service, settle),
            last_error: latest_error(tasks.iter()),
        })
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
        RolloutState::JobCompleted { .. } => {
            reporter.report(Progress::Converged {
                service: &w.name,
                elapsed,
            });
            None
        }
        RolloutState::JobFailed { error } => {
            reporter.report(Progress::RolloutFailed {
                service: &w.name,
                state: JOB_FAILED,
                message: error,
            });
            Some(RolloutFailure {
                service: w.name.clone(),
                reason: format!("a task of the job failed: {error}"),
            })
        }
        RolloutState::JobRunning { completed, total } => {
            if last != Some(state) {
                reporter.report(Progress::JobRunning {
                    service: &w.name,
                    completed: *completed,
                    total: *total,
                    elapsed,
                });
            }
            None
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
        Some(RolloutState::JobRunning { completed, total }) => {
            format!("{completed}/{total} job tasks complete")
        }
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
    use crate::engine::{ServiceState, TaskState, UpdateStatus};
    use crate::swarm::rollout::NO_STATUS_GRACE;
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
            job_iteration: None,
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
            job_iteration: None,
        }
    }

    /// A service whose tasks run `image`, and a task started from `image`.
    fn with_image(mut service: ServiceState, image: &str) -> ServiceState {
        service.spec["TaskTemplate"] = json!({"ContainerSpec": {"Image": image}});
        service
    }

    fn task_of(image: &str, desired: &str, state: &str) -> TaskState {
        TaskState {
            spec: json!({"ContainerSpec": {"Image": image}}),
            ..task(desired, state)
        }
    }

    #[test]
    fn an_old_task_still_running_after_a_start_first_update_is_not_converged() {
        let service = with_image(service(1, Some("completed")), "app:2");
        let overlapping = [
            task_of("app:1", "shutdown", "running"),
            task_of("app:2", "running", "running"),
        ];
        assert!(matches!(
            rollout_state(&service, &overlapping, true, NO_STATUS_GRACE),
            RolloutState::Pending { .. }
        ));
        let stopped = [
            task_of("app:1", "shutdown", "shutdown"),
            task_of("app:2", "running", "running"),
        ];
        assert_eq!(
            rollout_state(&service, &stopped, true, NO_STATUS_GRACE),
            RolloutState::Converged
        );
    }

    #[test]
    fn a_task_of_an_older_spec_does_not_count_as_running_the_new_one() {
        let service = with_image(service(1, None), "app:2");
        let old = [task_of("app:1", "running", "running")];
        assert!(matches!(
            rollout_state(&service, &old, true, NO_STATUS_GRACE),
            RolloutState::Pending { running: 0, .. }
        ));
        let mut secrets = service.clone();
        secrets.spec["TaskTemplate"]["ContainerSpec"]["Secrets"] =
            json!([{"SecretName": "demo_db_v2"}]);
        let without = [task_of("app:2", "running", "running")];
        assert!(matches!(
            rollout_state(&secrets, &without, true, NO_STATUS_GRACE),
            RolloutState::Pending { running: 0, .. }
        ));
    }

    fn observation(state: RolloutState, running: &[&str], settle: Duration) -> Observation {
        Observation {
            state,
            running: running.iter().map(|id| id.to_string()).collect(),
            settle,
            last_error: Some("task: non-zero exit (1)".into()),
        }
    }

    #[test]
    fn a_new_service_converges_only_once_its_tasks_kept_running() {
        let settle = Duration::from_millis(50);
        let mut steady = None;
        let first = observation(RolloutState::Converged, &["t1"], settle).settled(&mut steady);
        assert!(
            matches!(
                first,
                RolloutState::Pending {
                    running: 1,
                    desired: 1,
                    ..
                }
            ),
            "first running poll of a new service: {first:?}"
        );
        std::thread::sleep(settle);
        // The task crashed and Swarm started another: the clock starts again.
        let restarted = observation(RolloutState::Converged, &["t2"], settle).settled(&mut steady);
        assert!(
            matches!(restarted, RolloutState::Pending { .. }),
            "{restarted:?}"
        );
        std::thread::sleep(settle);
        let stable = observation(RolloutState::Converged, &["t2"], settle).settled(&mut steady);
        assert_eq!(stable, RolloutState::Converged);
        let monitored =
            observation(RolloutState::Converged, &["t3"], Duration::ZERO).settled(&mut None);
        assert_eq!(monitored, RolloutState::Converged);
    }

    fn job(status: Option<&str>, completions: u64) -> ServiceState {
        ServiceState {
            spec: json!({"Mode": {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": completions}}}),
            job_iteration: Some(2),
            ..service(1, status)
        }
    }

    fn job_task(iteration: u64, desired: &str, state: &str) -> TaskState {
        TaskState {
            job_iteration: Some(iteration),
            ..task(desired, state)
        }
    }

    #[test]
    fn a_job_is_judged_by_the_completion_of_its_current_run() {
        let earlier_run = job_task(1, "complete", "complete");
        let tasks = [earlier_run.clone(), job_task(2, "complete", "running")];
        assert_eq!(
            rollout_state(&job(None, 2), &tasks, true, NO_STATUS_GRACE),
            RolloutState::JobRunning {
                completed: 0,
                total: 2
            }
        );
        let done = [
            earlier_run,
            job_task(2, "complete", "complete"),
            job_task(2, "complete", "complete"),
        ];
        assert_eq!(
            rollout_state(&job(None, 2), &done, true, Duration::ZERO),
            RolloutState::JobCompleted { total: 2 }
        );
    }

    #[test]
    fn a_failed_job_task_fails_the_job_with_its_error() {
        let mut failed = job_task(2, "shutdown", "failed");
        failed.error = Some("task: non-zero exit (1)".into());
        let tasks = [failed, job_task(2, "complete", "ready")];
        assert_eq!(
            rollout_state(&job(None, 1), &tasks, true, Duration::ZERO),
            RolloutState::JobFailed {
                error: "task: non-zero exit (1)".into()
            }
        );
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
