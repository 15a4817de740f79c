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
//!
//! The wait only reads, so it rides out a raft election (server errors such as
//! `DeadlineExceeded` or "no leader") until the timeout; a manager that cannot be reached at
//! all is given up after a short grace (see [`read_through_election`]).

use std::time::{Duration, Instant};

use super::{ApplyOptions, Progress, Reporter};
use crate::engine::{Engine, EngineError};
use crate::swarm::retry::read_through_election;
use crate::swarm::rollout::{
    current_error, rollout_state, running_ids, settle_period, RolloutState, JOB_FAILED, PAUSED,
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
        let observations = read_through_election(timeout.saturating_sub(elapsed), || {
            read_states(engine, &pending, elapsed, settle)
        })
        .await?;
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
        let converged = matches!(
            self.state,
            RolloutState::Converged | RolloutState::Stranded { .. }
        );
        if converged && unsettled {
            return RolloutState::Pending {
                running: self.running.len(),
                desired: self.running.len(),
                last_error: self.last_error,
                update_state: None,
                lost_nodes: Vec::new(),
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
    let nodes = engine.list_nodes().await?;
    let nodes = &nodes;
    futures_util::future::try_join_all(pending.iter().map(|w| async move {
        let (service, tasks) =
            futures_util::try_join!(engine.inspect_service(&w.id), engine.list_tasks(&w.id))?;
        Ok::<_, EngineError>(Observation {
            state: rollout_state(&service, &tasks, nodes, w.replaces_tasks, elapsed),
            running: running_ids(&tasks),
            settle: settle_period(&service, settle),
            last_error: current_error(&service, &tasks),
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
        RolloutState::Converged | RolloutState::JobCompleted { .. } => {
            reporter.report(Progress::Converged {
                service: &w.name,
                elapsed,
            });
            None
        }
        RolloutState::Stranded { note } => {
            reporter.report(Progress::ConvergedStranded {
                service: &w.name,
                elapsed,
                note,
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
            ..
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
            update_state,
            lost_nodes,
        }) => {
            let mut detail = format!("{running}/{desired} tasks running");
            if let Some(state) = update_state {
                detail.push_str(&format!("; Swarm's update state: {state}"));
            }
            if !lost_nodes.is_empty() {
                detail.push_str(&format!(
                    "; tasks stuck on lost node(s) {} (not Ready)",
                    lost_nodes.join(", ")
                ));
            }
            if let Some(error) = last_error {
                detail.push_str(&format!("; last task error: {error}"));
            }
            detail
        }
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
    use crate::engine::fake::FakeEngine;
    use crate::engine::{NodeState, ServiceState, TaskState, UpdateStatus};
    use crate::progress::Recorder;
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

    /// The one node the tasks below run on (`n`), Ready.
    fn ready_node() -> Vec<NodeState> {
        vec![NodeState {
            id: "n".into(),
            hostname: "node-n".into(),
            state: "ready".into(),
        }]
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
            rollout_state(&service, &overlapping, &ready_node(), true, NO_STATUS_GRACE),
            RolloutState::Pending { .. }
        ));
        let stopped = [
            task_of("app:1", "shutdown", "shutdown"),
            task_of("app:2", "running", "running"),
        ];
        assert_eq!(
            rollout_state(&service, &stopped, &ready_node(), true, NO_STATUS_GRACE),
            RolloutState::Converged
        );
    }

    #[test]
    fn a_task_of_an_older_spec_does_not_count_as_running_the_new_one() {
        let service = with_image(service(1, None), "app:2");
        let old = [task_of("app:1", "running", "running")];
        assert!(matches!(
            rollout_state(&service, &old, &ready_node(), true, NO_STATUS_GRACE),
            RolloutState::Pending { running: 0, .. }
        ));
        let mut secrets = service.clone();
        secrets.spec["TaskTemplate"]["ContainerSpec"]["Secrets"] =
            json!([{"SecretName": "demo_db_v2"}]);
        let without = [task_of("app:2", "running", "running")];
        assert!(matches!(
            rollout_state(&secrets, &without, &ready_node(), true, NO_STATUS_GRACE),
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
            rollout_state(&job(None, 2), &tasks, &ready_node(), true, NO_STATUS_GRACE),
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
            rollout_state(&job(None, 2), &done, &ready_node(), true, Duration::ZERO),
            RolloutState::JobCompleted { total: 2 }
        );
    }

    #[test]
    fn a_failed_job_task_fails_the_job_with_its_error() {
        let mut failed = job_task(2, "shutdown", "failed");
        failed.error = Some("task: non-zero exit (1)".into());
        let tasks = [failed, job_task(2, "complete", "ready")];
        assert_eq!(
            rollout_state(&job(None, 1), &tasks, &ready_node(), true, Duration::ZERO),
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
                    &ready_node(),
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
            rollout_state(
                &service(1, None),
                &running,
                &ready_node(),
                true,
                Duration::ZERO
            ),
            RolloutState::Pending { .. }
        ));
        assert!(matches!(
            rollout_state(
                &service(1, Some("updating")),
                &running,
                &ready_node(),
                true,
                Duration::ZERO
            ),
            RolloutState::Pending { .. }
        ));
        assert_eq!(
            rollout_state(
                &service(1, Some("completed")),
                &running,
                &ready_node(),
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
                &ready_node(),
                true,
                Duration::ZERO
            ),
            RolloutState::Pending { .. }
        ));
        assert_eq!(
            rollout_state(
                &service(1, None),
                &running,
                &ready_node(),
                false,
                Duration::ZERO
            ),
            RolloutState::Converged
        );
        assert_eq!(
            rollout_state(
                &service(1, None),
                &running,
                &ready_node(),
                true,
                NO_STATUS_GRACE
            ),
            RolloutState::Converged
        );
    }

    #[test]
    fn replica_count_must_match() {
        let one = [task("running", "running")];
        assert!(matches!(
            rollout_state(
                &service(2, None),
                &one,
                &ready_node(),
                false,
                Duration::ZERO
            ),
            RolloutState::Pending {
                running: 1,
                desired: 2,
                ..
            }
        ));
    }

    /// A node `d` that is down, besides the Ready node `n`.
    fn with_down_node() -> Vec<NodeState> {
        let mut nodes = ready_node();
        nodes.push(NodeState {
            id: "d".into(),
            hostname: "worker-d".into(),
            state: "down".into(),
        });
        nodes
    }

    fn on(node: &str, mut task: TaskState) -> TaskState {
        task.node_id = node.into();
        task
    }

    /// The tasks after a worker was lost midway through an update to `app:2`: the new spec
    /// runs twice on `n`; on `d` the old task never confirmed its shutdown and the new task
    /// Swarm had assigned there never started.
    fn stranded_tasks() -> Vec<TaskState> {
        vec![
            on("n", task_of("app:2", "running", "running")),
            on("n", task_of("app:2", "running", "running")),
            on("d", task_of("app:1", "shutdown", "running")),
            on("d", task_of("app:2", "shutdown", "assigned")),
        ]
    }

    #[test]
    fn an_update_stuck_on_a_lost_node_counts_as_converged_once_live_nodes_run_the_new_spec() {
        let service = with_image(service(2, Some("updating")), "app:2");
        let state = rollout_state(
            &service,
            &stranded_tasks(),
            &with_down_node(),
            true,
            NO_STATUS_GRACE,
        );
        let RolloutState::Stranded { note } = state else {
            panic!("expected Stranded, got {state:?}");
        };
        assert!(
            note.contains("updating") && note.contains("worker-d"),
            "{note}"
        );
        // The same tasks with the node Ready: the old task really still runs.
        let mut nodes = with_down_node();
        nodes[1].state = "ready".into();
        assert!(matches!(
            rollout_state(&service, &stranded_tasks(), &nodes, true, NO_STATUS_GRACE),
            RolloutState::Pending { .. }
        ));
    }

    #[test]
    fn a_wanted_task_missing_on_live_nodes_keeps_it_pending_and_names_the_lost_node() {
        let service = with_image(service(3, Some("updating")), "app:2");
        let state = rollout_state(
            &service,
            &stranded_tasks(),
            &with_down_node(),
            true,
            NO_STATUS_GRACE,
        );
        assert_eq!(
            state,
            RolloutState::Pending {
                running: 2,
                desired: 3,
                last_error: None,
                update_state: Some("updating".into()),
                lost_nodes: vec!["worker-d".into()],
            }
        );
        let failure = timed_out(
            &Watched {
                id: "s".into(),
                name: "demo_app".into(),
                replaces_tasks: true,
            },
            Some(&state),
            Duration::from_secs(45),
        );
        assert_eq!(
            failure.reason,
            "did not converge within 45s (2/3 tasks running; Swarm's update state: updating; tasks stuck on lost node(s) worker-d (not Ready))"
        );
    }

    #[test]
    fn a_pause_caused_by_a_task_swarm_shut_down_is_not_a_failure_but_one_by_a_crash_is() {
        let mut tasks = stranded_tasks();
        tasks[3].id = "t-assigned".into();
        tasks[3].state = "shutdown".into();
        tasks[2].state = "failed".into();
        let paused = |message: &str| {
            let mut service = with_image(service(2, Some("paused")), "app:2");
            service.update_status.as_mut().unwrap().message = message.into();
            service
        };
        let by_shutdown =
            paused("update paused due to failure or early termination of task t-assigned");
        assert!(matches!(
            rollout_state(&by_shutdown, &tasks, &ready_node(), false, Duration::MAX),
            RolloutState::Stranded { .. }
        ));
        tasks[3].error = Some("task: non-zero exit (1)".into());
        tasks[3].state = "failed".into();
        assert!(matches!(
            rollout_state(&by_shutdown, &tasks, &ready_node(), false, Duration::MAX),
            RolloutState::Failed { .. }
        ));
        let unknown = paused("update paused due to failure or early termination of task gone");
        assert!(matches!(
            rollout_state(&unknown, &tasks, &ready_node(), false, Duration::MAX),
            RolloutState::Failed { .. }
        ));
    }

    #[test]
    fn the_last_task_error_comes_only_from_tasks_of_the_current_spec() {
        let service = with_image(service(1, Some("updating")), "app:2");
        let mut earlier = task_of("app:1", "shutdown", "failed");
        earlier.error = Some("task: non-zero exit (137)".into());
        earlier.created_at = "2030-01-01T00:00:00Z".into();
        let tasks = vec![earlier.clone(), task_of("app:2", "running", "starting")];
        assert!(matches!(
            rollout_state(&service, &tasks, &ready_node(), true, Duration::ZERO),
            RolloutState::Pending {
                last_error: None,
                ..
            }
        ));
        let mut current = task_of("app:2", "shutdown", "failed");
        current.error = Some("task: non-zero exit (2)".into());
        let tasks = vec![earlier, current];
        assert!(matches!(
            rollout_state(&service, &tasks, &ready_node(), true, Duration::ZERO),
            RolloutState::Pending { last_error: Some(e), .. } if e == "task: non-zero exit (2)"
        ));
    }

    fn options() -> ApplyOptions {
        ApplyOptions {
            detach: false,
            timeout: Duration::from_secs(5),
            poll: Duration::from_millis(10),
            settle: Duration::from_millis(20),
            kill_at: None,
        }
    }

    #[tokio::test]
    async fn the_watcher_accepts_a_rotation_stranded_on_a_lost_worker_and_its_later_pause() {
        let engine = FakeEngine::new();
        let spec = json!({
            "Name": "demo_app",
            "TaskTemplate": {"ContainerSpec": {"Image": "app:1"}},
            "Mode": {"Replicated": {"Replicas": 2}},
        });
        let id = engine.insert_service(&spec).expect("service");
        engine.lose_node_in_next_update("demo_app", "worker-2");
        let mut new = spec.clone();
        new["TaskTemplate"]["ContainerSpec"]["Image"] = json!("app:2");
        let live = engine.services()[0].clone();
        engine
            .update_service(&id, live.version, &new)
            .await
            .expect("update");
        let watched = [Watched {
            id: id.clone(),
            name: "demo_app".into(),
            replaces_tasks: true,
        }];
        let recorder = Recorder::default();
        let failures = wait_for_rollouts(&engine, &watched, &options(), &recorder)
            .await
            .expect("wait");
        assert_eq!(failures, Vec::new(), "{:?}", recorder.lines());
        assert!(
            recorder
                .lines()
                .iter()
                .any(|l| l.contains("converged") && l.contains("worker-2")),
            "{:?}",
            recorder.lines()
        );
        // The worker comes back: Swarm pauses the update on the shutdown of its task; a rerun
        // that waits for it is not a failure, and writes nothing.
        engine.recover_node("worker-2");
        assert_eq!(
            engine.services()[0].update_status.as_ref().unwrap().state,
            "paused"
        );
        engine.clear_writes();
        let recorder = Recorder::default();
        let failures = wait_for_rollouts(&engine, &watched, &options(), &recorder)
            .await
            .expect("wait");
        assert_eq!(failures, Vec::new(), "{:?}", recorder.lines());
        assert_eq!(engine.write_count(), 0);
        assert!(engine.services()[0].previous_spec.is_some());
    }
}
