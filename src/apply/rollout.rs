//! Watching services converge after a write: Swarm's UpdateStatus and the service's tasks,
//! polled until every service runs its new spec, fails, or the timeout passes. A rollback or a
//! paused update is a failure, whatever `docker stack deploy` would have said.

use std::time::{Duration, Instant};

use super::{Progress, Reporter};
use crate::engine::{Engine, EngineError};
use crate::swarm::rollout::{rollout_state, RolloutState, PAUSED, ROLLBACK_PAUSED};

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
