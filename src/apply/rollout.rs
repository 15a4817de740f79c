//! Watching services converge after a write: Swarm's UpdateStatus and the service's tasks,
//! read until every service runs its new spec, fails, or the timeout passes. A rollback or a
//! paused update is a failure, whatever `docker stack deploy` would have said.
//!
//! Tasks are judged against the service's current task template, not only counted: a task
//! still running an older spec (an old replica a `start-first` update has not stopped yet)
//! means the rollout is not over. Tasks Swarm did not watch itself (a new service, an update
//! without an UpdateStatus) must keep running, unchanged, for the service's update monitor
//! period (by default 5 s, as `docker service create` waits), so a crash-looping service is not taken for converged.
//! Job services (`replicated-job`, `global-job`) are judged by completion instead.
//!
//! Every service is waited for at once, and read again as soon as something may have moved
//! it ([`Wakeups`]): an engine event about it (its UpdateStatus changed, a task's container
//! started or ended) or about a node, a deadline of its judgement (the end of its settle
//! period, of [`NO_STATUS_GRACE`]), and at the latest every `poll` (tasks on other nodes send
//! no events to this manager). The events only say when to read; what is read is judged.
//!
//! The wait only reads, so it rides out a raft election (server errors such as
//! `DeadlineExceeded` or "no leader") until the timeout; a manager that cannot be reached at
//! all is given up after a short grace (see [`read_through_election`]).

use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use tokio::time::Instant;

use super::{ApplyOptions, Progress, Reporter};
use crate::engine::{Engine, EngineError, EngineEvent, EventStream};
use crate::swarm::retry::read_through_election;
use crate::swarm::rollout::{
    current_error, rollout_state, running_ids, settle_period, RolloutState, JOB_FAILED,
    NO_STATUS_GRACE, PAUSED, ROLLBACK_PAUSED,
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

/// Waits for every watched service together; returns those that failed or timed out. Each is
/// read again when [`Wakeups`] says it may have moved (see the module docs).
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
    if watched.is_empty() {
        return Ok(Vec::new());
    }
    let mut wakeups = Wakeups::new(engine.watch_events());
    let started = Instant::now();
    let mut polled = started;
    let mut tracks = vec![Track::default(); watched.len()];
    let mut failures = Vec::new();
    let mut due: Vec<usize> = (0..watched.len()).collect();
    loop {
        let elapsed = started.elapsed();
        let reading: Vec<&Watched> = due.iter().map(|&index| &watched[index]).collect();
        let observations = read_through_election(timeout.saturating_sub(elapsed), || {
            read_states(engine, &reading, elapsed, settle)
        })
        .await?;
        for (&index, observation) in due.iter().zip(observations) {
            let judged = tracks[index].judge(&watched[index], observation, elapsed, reporter);
            failures.extend(judged);
        }
        let pending: Vec<usize> = (0..watched.len())
            .filter(|&index| tracks[index].is_pending())
            .collect();
        if pending.is_empty() {
            break;
        }
        if started.elapsed() >= timeout {
            failures.extend(
                pending
                    .iter()
                    .map(|&index| timed_out(&watched[index], tracks[index].last.as_ref(), timeout)),
            );
            break;
        }
        let deadlines = [polled + poll, started + timeout]
            .into_iter()
            .chain((elapsed < NO_STATUS_GRACE).then(|| started + NO_STATUS_GRACE))
            .chain(pending.iter().filter_map(|&index| tracks[index].settles_at));
        let deadline = deadlines.min().expect("the poll deadline is always there");
        due = match wakeups.next(deadline, watched, &pending).await {
            Wake::All => {
                polled = Instant::now();
                pending
            }
            Wake::Services(services) => services,
        };
    }
    Ok(failures)
}

/// What the watcher knows of one service between reads.
#[derive(Debug, Clone, Default)]
struct Track {
    /// Its state at the last read (`None` before the first).
    last: Option<RolloutState>,
    /// Since when its running tasks have been the same ones.
    steady: Option<Steady>,
    /// When its running tasks will have kept running for its settle period, while that is
    /// all that keeps it pending.
    settles_at: Option<Instant>,
}

impl Track {
    /// Whether the service is still to wait for.
    fn is_pending(&self) -> bool {
        matches!(
            self.last,
            None | Some(RolloutState::Pending { .. } | RolloutState::JobRunning { .. })
        )
    }

    /// Judges a new observation of the service, tells the reporter, and returns the failure
    /// if its rollout failed.
    fn judge(
        &mut self,
        w: &Watched,
        observation: Observation,
        elapsed: Duration,
        reporter: &dyn Reporter,
    ) -> Option<RolloutFailure> {
        let settled = observation.settled(&mut self.steady);
        self.settles_at = settled.settles_at;
        let failure = report_state(w, &settled.state, self.last.as_ref(), elapsed, reporter);
        self.last = Some(settled.state);
        failure
    }
}

/// Why the watcher reads again.
#[derive(Debug, PartialEq, Eq)]
enum Wake {
    /// A deadline passed, a node changed, or events are not available: every pending service.
    All,
    /// Events about these services (indexes into the watched list), and nothing else yet.
    Services(Vec<usize>),
}

/// Tells the watcher when to read again: at a deadline, or as soon as the engine's event
/// stream says a pending service or a node moved. A stream that fails or ends is dropped and
/// the watcher polls.
struct Wakeups {
    /// The engine's events, while they flow.
    events: Option<EventStream>,
}

impl Wakeups {
    /// Wakes up with `events`.
    fn new(events: EventStream) -> Wakeups {
        Wakeups {
            events: Some(events),
        }
    }

    /// Waits for `deadline` or for events about the `pending` services (indexes into
    /// `watched`) or a node, whichever comes first; events already received are taken too.
    async fn next(&mut self, deadline: Instant, watched: &[Watched], pending: &[usize]) -> Wake {
        loop {
            let Some(events) = self.events.as_mut() else {
                tokio::time::sleep_until(deadline).await;
                return Wake::All;
            };
            let first = tokio::select! {
                () = tokio::time::sleep_until(deadline) => return Wake::All,
                event = events.next() => event,
            };
            let mut woken = Woken::default();
            let mut received = Some(first);
            while let Some(event) = received {
                match event {
                    Some(Ok(event)) => woken.note(&event, watched, pending),
                    Some(Err(error)) => {
                        tracing::debug!(%error, "the engine's event stream failed; polling instead");
                        self.events = None;
                        break;
                    }
                    None => {
                        tracing::debug!("the engine's event stream ended; polling instead");
                        self.events = None;
                        break;
                    }
                }
                received = self.events.as_mut().and_then(|e| e.next().now_or_never());
            }
            if let Some(wake) = woken.wake() {
                tracing::debug!(?wake, "the engine's events woke the rollout watcher");
                return wake;
            }
        }
    }
}

/// The services (and whether a node) a batch of events concerned.
#[derive(Debug, Default)]
struct Woken {
    /// Pending services named by an event, in order, each once.
    services: Vec<usize>,
    /// Whether a node changed (every service may have moved).
    node: bool,
}

impl Woken {
    /// Notes what `event` concerns among the `pending` services of `watched`.
    fn note(&mut self, event: &EngineEvent, watched: &[Watched], pending: &[usize]) {
        let id = match event {
            EngineEvent::Node => {
                self.node = true;
                return;
            }
            EngineEvent::Service { id } => id,
            EngineEvent::Task { service_id } => service_id,
        };
        let found = pending.iter().find(|&&index| watched[index].id == *id);
        if let Some(&index) = found {
            if !self.services.contains(&index) {
                self.services.push(index);
            }
        }
    }

    /// What to read, if anything.
    fn wake(self) -> Option<Wake> {
        if self.node {
            Some(Wake::All)
        } else if self.services.is_empty() {
            None
        } else {
            Some(Wake::Services(self.services))
        }
    }
}

/// Since when a service's running tasks have been the same ones.
#[derive(Debug, Clone)]
struct Steady {
    /// The running task IDs.
    running: Vec<String>,
    /// When they were first seen.
    since: Instant,
}

/// One read of one service.
struct Observation {
    /// Its state judged from this read alone.
    state: RolloutState,
    /// Its running tasks.
    running: Vec<String>,
    /// How long they must stay unchanged (see [`settle_period`]).
    settle: Duration,
    /// The newest task error.
    last_error: Option<String>,
}

/// A service's state once steadiness is taken into account.
#[derive(Debug)]
struct Settled {
    /// The state.
    state: RolloutState,
    /// When the service's running tasks will have kept running for its settle period, if
    /// that is all that keeps it pending.
    settles_at: Option<Instant>,
}

impl Observation {
    /// The state once steadiness is taken into account: a service whose running tasks have
    /// not stayed the same for its settle period is still pending.
    fn settled(self, steady: &mut Option<Steady>) -> Settled {
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
            return Settled {
                state: RolloutState::Pending {
                    running: self.running.len(),
                    desired: self.running.len(),
                    last_error: self.last_error,
                    update_state: None,
                    lost_nodes: Vec::new(),
                },
                settles_at: Some(since + self.settle),
            };
        }
        Settled {
            state: self.state,
            settles_at: None,
        }
    }
}

/// Reads where each of `services` stands, `elapsed` after the writes: the nodes, and each
/// service with its tasks, all at once.
async fn read_states<E: Engine>(
    engine: &E,
    services: &[&Watched],
    elapsed: Duration,
    settle: Duration,
) -> Result<Vec<Observation>, EngineError> {
    let reads = futures_util::future::try_join_all(services.iter().map(|w| async move {
        futures_util::try_join!(engine.inspect_service(&w.id), engine.list_tasks(&w.id))
    }));
    let (nodes, reads) = futures_util::try_join!(engine.list_nodes(), reads)?;
    Ok(services
        .iter()
        .zip(reads)
        .map(|(w, (service, tasks))| Observation {
            state: rollout_state(&service, &tasks, &nodes, w.replaces_tasks, elapsed),
            running: running_ids(&tasks),
            settle: settle_period(&service, settle),
            last_error: current_error(&service, &tasks),
        })
        .collect())
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
        assert!(first.settles_at.is_some(), "{first:?}");
        let first = first.state;
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
        let restarted = observation(RolloutState::Converged, &["t2"], settle)
            .settled(&mut steady)
            .state;
        assert!(
            matches!(restarted, RolloutState::Pending { .. }),
            "{restarted:?}"
        );
        std::thread::sleep(settle);
        let stable = observation(RolloutState::Converged, &["t2"], settle).settled(&mut steady);
        assert_eq!(stable.settles_at, None);
        let stable = stable.state;
        assert_eq!(stable, RolloutState::Converged);
        let monitored = observation(RolloutState::Converged, &["t3"], Duration::ZERO)
            .settled(&mut None)
            .state;
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

    /// `count` services `demo_app0..` of one replica each, running `app:1`.
    fn services(engine: &FakeEngine, count: usize) -> Vec<Watched> {
        (0..count)
            .map(|n| {
                let name = format!("demo_app{n}");
                let spec = json!({
                    "Name": name,
                    "TaskTemplate": {"ContainerSpec": {"Image": "app:1"}},
                    "Mode": {"Replicated": {"Replicas": 1}},
                });
                let id = engine.insert_service(&spec).expect("service");
                Watched {
                    id,
                    name,
                    replaces_tasks: true,
                }
            })
            .collect()
    }

    /// Moves every service to `app:2` (the writes take no time; Swarm's updates do).
    async fn update_all(engine: &FakeEngine, watched: &[Watched]) {
        for w in watched {
            let live = engine.inspect_service(&w.id).await.expect("inspect");
            let mut spec = live.spec.clone();
            spec["TaskTemplate"]["ContainerSpec"]["Image"] = json!("app:2");
            engine
                .update_service(&w.id, live.version, &spec)
                .await
                .expect("update");
        }
    }

    /// Waiting at the command line's pace, except that a poll comes only every minute: a wait
    /// that ends sooner was woken by an event or a deadline.
    fn rare_polls() -> ApplyOptions {
        ApplyOptions {
            poll: Duration::from_secs(60),
            ..ApplyOptions::waiting(Duration::from_secs(600))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn ten_updates_taking_t_each_are_seen_converged_at_t_through_events() {
        let engine = FakeEngine::new();
        let rollout = Duration::from_secs(8);
        engine.set_rollout_time(rollout);
        let watched = services(&engine, 10);
        let started = Instant::now();
        update_all(&engine, &watched).await;
        let recorder = Recorder::default();
        let failures = wait_for_rollouts(&engine, &watched, &rare_polls(), &recorder)
            .await
            .expect("wait");
        let took = started.elapsed();
        assert_eq!(failures, Vec::new(), "{:?}", recorder.lines());
        // Serial waits would take 10 x 8 s; a wait that missed Swarm's `completed` events
        // would end at the first poll, after a minute.
        assert!(
            took >= rollout && took < rollout + Duration::from_millis(100),
            "took {took:?}"
        );
        let converged = recorder
            .lines()
            .iter()
            .filter(|l| l.contains("converged"))
            .count();
        assert_eq!(converged, 10, "{:?}", recorder.lines());
        for service in engine.services() {
            assert_eq!(service.update_status.expect("status").state, "completed");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn ten_new_services_settle_together_at_their_deadline() {
        let engine = FakeEngine::new();
        // New services: Swarm watches nothing, each must keep running for the settle period.
        let watched: Vec<Watched> = services(&engine, 10)
            .into_iter()
            .map(|w| Watched {
                replaces_tasks: false,
                ..w
            })
            .collect();
        // A settle period other than NO_STATUS_GRACE, so that only its own deadline ends it.
        let options = ApplyOptions {
            settle: Duration::from_secs(7),
            ..rare_polls()
        };
        let started = Instant::now();
        let recorder = Recorder::default();
        let failures = wait_for_rollouts(&engine, &watched, &options, &recorder)
            .await
            .expect("wait");
        let took = started.elapsed();
        assert_eq!(failures, Vec::new(), "{:?}", recorder.lines());
        // Waiting for one service after another would take 10 settle periods.
        assert!(
            took >= options.settle && took < options.settle + Duration::from_millis(100),
            "took {took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn without_events_the_watcher_polls() {
        let engine = FakeEngine::new();
        engine.close_events();
        let rollout = Duration::from_secs(8);
        engine.set_rollout_time(rollout);
        let watched = services(&engine, 3);
        let started = Instant::now();
        update_all(&engine, &watched).await;
        let options = ApplyOptions {
            poll: Duration::from_millis(500),
            ..rare_polls()
        };
        let recorder = Recorder::default();
        let failures = wait_for_rollouts(&engine, &watched, &options, &recorder)
            .await
            .expect("wait");
        let took = started.elapsed();
        assert_eq!(failures, Vec::new(), "{:?}", recorder.lines());
        assert!(
            took >= rollout && took <= rollout + options.poll,
            "took {took:?}"
        );
    }

    #[test]
    fn events_wake_the_watcher_only_for_pending_services_or_nodes() {
        let watched: Vec<Watched> = ["a", "b", "c"]
            .iter()
            .map(|id| Watched {
                id: id.to_string(),
                name: format!("demo_{id}"),
                replaces_tasks: true,
            })
            .collect();
        let pending = [0, 2];
        let woken = |events: &[EngineEvent]| {
            let mut woken = Woken::default();
            for event in events {
                woken.note(event, &watched, &pending);
            }
            woken.wake()
        };
        let service = |id: &str| EngineEvent::Service { id: id.into() };
        let task = |id: &str| EngineEvent::Task {
            service_id: id.into(),
        };
        assert_eq!(woken(&[service("b"), task("other")]), None);
        assert_eq!(
            woken(&[task("c"), service("a"), service("c")]),
            Some(Wake::Services(vec![2, 0]))
        );
        assert_eq!(woken(&[service("b"), EngineEvent::Node]), Some(Wake::All));
    }
}
