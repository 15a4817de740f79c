//! Carrying out a [`Plan`]: create secret and config versions, networks, then create and
//! update services (independent writes run concurrently), wait for every written service to
//! converge, and only then delete what the plan said may go, checked again against the live
//! swarm. Progress goes to a [`Reporter`], so the terminal stays at the edge.
//!
//! [`apply`] runs the steps in order; each step lives with its kind of object: `versions`
//! (secret and config versions, the content seal, pruning), `networks`, `services`.

pub mod lock;
mod networks;
pub mod rollout;
pub mod rotation;
mod services;
#[cfg(test)]
mod tests;
mod versions;

use std::time::Duration;

use crate::contents::Contents;
use crate::engine::{Engine, EngineError};
use crate::plan::fingerprint::Fingerprinter;
use crate::plan::Plan;
use crate::progress::{Progress, Reporter};
use crate::swarm::namespace::Namespace;
use rollout::{RolloutFailure, Watched};
pub use versions::{record_seal, CreatedVersions};

/// How many writes run at once.
const CONCURRENT_WRITES: usize = 8;

/// How to apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Do not wait for rollouts (and so do not prune).
    pub detach: bool,
    /// How long to wait for rollouts.
    pub timeout: Duration,
    /// How often to poll rollouts.
    pub poll: Duration,
    /// How long the tasks of a service Swarm did not monitor (a new one, an update without an
    /// UpdateStatus) must keep running unchanged before it counts as converged, unless its
    /// `update_config.monitor` says otherwise (a crash-looping service never settles).
    pub settle: Duration,
    /// Test-only fault injection: the step after which the process kills itself with
    /// SIGKILL (`after-objects`, `after-service-update`, `during-rollout`, `during-prune`).
    /// Read from `STACKROLL_TEST_KILL_AT`, and acted on, only in builds with the
    /// `test-kill-points` feature.
    pub kill_at: Option<String>,
}

impl ApplyOptions {
    /// Waiting for rollouts up to `timeout` at the command line's pace: a poll every 500 ms,
    /// 5 s for unmonitored tasks to prove they keep running, no fault injection.
    pub fn waiting(timeout: Duration) -> ApplyOptions {
        ApplyOptions {
            detach: false,
            timeout,
            poll: Duration::from_millis(500),
            settle: Duration::from_secs(5),
            kill_at: None,
        }
    }
}

/// Kills this process with SIGKILL when `point` is the configured fault point (tests of crash
/// safety only). Compiled in only with the `test-kill-points` feature; otherwise it does
/// nothing.
fn kill_point(options: &ApplyOptions, point: &str) {
    #[cfg(feature = "test-kill-points")]
    if options.kill_at.as_deref() == Some(point) {
        tracing::warn!(point, "fault injection: killing this process");
        // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
    #[cfg(not(feature = "test-kill-points"))]
    let _ = (options, point);
}

/// What was done.
#[derive(Debug, Default)]
pub struct Applied {
    /// Names of things created or updated.
    pub written: Vec<String>,
    /// Names of objects deleted.
    pub deleted: Vec<String>,
}

impl Applied {
    /// The error for an engine call that failed after what was written so far.
    fn failed(&self, write: FailedWrite) -> ApplyError {
        ApplyError::Engine {
            during: write.during,
            error: write.error,
            done: self.written.clone(),
        }
    }

    /// The error for a staged rotation that stopped.
    fn rotation_failed(&self, error: rotation::RotationError) -> ApplyError {
        match error {
            rotation::RotationError::Engine { during, error } => {
                self.failed(FailedWrite { during, error })
            }
            rotation::RotationError::Step(failure) => ApplyError::RotationStep(Box::new(failure)),
            rotation::RotationError::Rollout(failures) => ApplyError::Rollout(failures),
        }
    }

    /// Records the results of concurrent writes (each success under the name `name_of` gives
    /// it) and returns the successes, or the first failure once every write has finished.
    fn settle<T>(
        &mut self,
        results: Vec<Result<T, FailedWrite>>,
        name_of: impl Fn(&T) -> &str,
    ) -> Result<Vec<T>, ApplyError> {
        let mut done = Vec::with_capacity(results.len());
        let mut first_error = None;
        for result in results {
            match result {
                Ok(value) => {
                    self.written.push(name_of(&value).to_string());
                    done.push(value);
                }
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            Some(error) => Err(self.failed(error)),
            None => Ok(done),
        }
    }
}

/// An engine call that failed, and what it was doing (`creating secret demo_db_v2`).
#[derive(Debug)]
struct FailedWrite {
    /// What was being done.
    during: String,
    /// The engine's error.
    error: EngineError,
}

impl FailedWrite {
    /// A failure of the call that was doing `during`.
    fn new(during: impl Into<String>, error: EngineError) -> FailedWrite {
        FailedWrite {
            during: during.into(),
            error,
        }
    }
}

/// Why applying stopped.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// An engine call failed; `done` lists what was already written.
    #[error("{during} failed: {error}")]
    Engine {
        /// What was being done.
        during: String,
        /// The engine's error.
        error: EngineError,
        /// What was written before it.
        done: Vec<String>,
    },
    /// Services did not converge (rolled back, paused, or timed out). Nothing was pruned.
    #[error("rollout failed for {}; nothing was pruned", rollout::describe_failures(.0))]
    Rollout(Vec<RolloutFailure>),
    /// A staged rotation's `apply` or `finalize` command failed: the stages after it did not
    /// run, and nothing was pruned.
    #[error("{0}; the rotation stopped there and nothing was pruned")]
    RotationStep(Box<rotation::StepFailure>),
}

/// Everything the executor needs besides the engine.
pub struct ApplyInput<'a> {
    /// The plan to carry out.
    pub plan: &'a Plan,
    /// The stack.
    pub namespace: &'a Namespace,
    /// Data for new versions.
    pub contents: &'a Contents,
    /// Makes fingerprints for new versions.
    pub fingerprinter: &'a Fingerprinter,
    /// Re-checks prunes after convergence.
    pub project: &'a crate::model::Project,
    /// Superseded versions to keep.
    pub keep: usize,
}

/// Carries out the plan, step by step (see the module docs).
pub async fn apply<E: Engine>(
    engine: &E,
    input: &ApplyInput<'_>,
    reporter: &dyn Reporter,
    options: &ApplyOptions,
) -> Result<Applied, ApplyError> {
    let mut applied = Applied::default();
    let created = versions::create_versions(engine, input, reporter, &mut applied).await?;
    let stages = rotation::Stages {
        rotations: &input.plan.rotations,
        services: &input.plan.staged,
        created: &created,
        contents: input.contents,
    };
    rotation::begin(engine, &stages)
        .await
        .map_err(|error| applied.rotation_failed(error))?;
    record_seal(engine, input, &created).await;
    kill_point(options, "after-objects");
    networks::create_networks(engine, input.plan, reporter, &mut applied).await?;
    // Services the files no longer have (--prune) go first: they may hold published ports
    // that new services need, as with `docker stack deploy --prune`.
    services::remove_services(engine, input.plan, reporter, &mut applied).await?;
    let mut watched = services::write_services(
        engine,
        input.plan,
        &created,
        reporter,
        options,
        &mut applied,
    )
    .await?;
    // Networks the files no longer have (--prune): in use until removed services' tasks stop.
    networks::remove_networks(engine, input.plan, reporter, options, &mut applied).await?;
    if options.detach {
        return Ok(applied);
    }
    // Services this run did not write whose earlier rolling update is still going.
    watched.extend(input.plan.unsettled.iter().map(|service| Watched {
        id: service.id.clone(),
        name: service.name.clone(),
        replaces_tasks: true,
    }));
    kill_point(options, "during-rollout");
    wait_for_services(engine, &watched, reporter, options, &applied).await?;
    rotation::run(engine, &stages, reporter, options)
        .await
        .map_err(|error| applied.rotation_failed(error))?;
    versions::prune_versions(engine, input, reporter, options, &mut applied).await?;
    Ok(applied)
}

/// Waits for every written (or unsettled) service together; a service that does not converge
/// fails the deploy before anything is pruned.
async fn wait_for_services<E: Engine>(
    engine: &E,
    watched: &[Watched],
    reporter: &dyn Reporter,
    options: &ApplyOptions,
    applied: &Applied,
) -> Result<(), ApplyError> {
    let failures = rollout::wait_for_rollouts(engine, watched, options, reporter)
        .await
        .map_err(|error| {
            applied.failed(FailedWrite::new("waiting for services to converge", error))
        })?;
    if failures.is_empty() {
        Ok(())
    } else {
        Err(ApplyError::Rollout(failures))
    }
}
