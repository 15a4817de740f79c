//! The deploy workflow, from a prepared project to a converged stack: read the swarm, plan,
//! take the stack's lock, read again and plan again if another deploy wrote meanwhile, apply,
//! and record the content seal when nothing else needs writing. A deploy with nothing to do
//! writes nothing at all (not even the lock). The command line only resolves flags into
//! [`DeployOptions`], calls [`run`] (or [`preview`]) and renders the [`DeployOutcome`].

pub mod prepare;
#[cfg(test)]
mod tests;

use std::time::Duration;

use serde::Serialize;

use crate::apply::lock::{self, LockError, LockTiming};
use crate::apply::rollout::RolloutFailure;
use crate::apply::{apply, record_seal, ApplyError, ApplyInput, ApplyOptions, CreatedVersions};
use crate::engine::{Engine, EngineError};
use crate::observe::observe;
use crate::plan::{plan, Observed, Plan, PlanError, PlanInput};
use crate::progress::{Progress, Reporter};
pub use prepare::{PrepareError, Prepared};

/// How long the lock outlives a deploy's rollout timeout, should the process die holding it.
const LOCK_MARGIN: Duration = Duration::from_secs(300);

/// How to deploy, resolved from flags.
#[derive(Debug, Clone)]
pub struct DeployOptions {
    /// Superseded versions of each secret and config to keep for rollbacks.
    pub keep: usize,
    /// Also remove the stack's services and networks the compose files no longer have.
    pub prune: bool,
    /// Only plan; write nothing.
    pub dry_run: bool,
    /// How long to wait for another deploy of the stack to give the lock back.
    pub lock_wait: Duration,
    /// How often to try the lock again while waiting.
    pub lock_poll: Duration,
    /// How to apply the plan.
    pub apply: ApplyOptions,
}

/// How a plan or deploy ended, as reported in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// `plan` or `deploy --dry-run`: nothing was written.
    Planned,
    /// Nothing needed doing.
    NoChanges,
    /// Everything was applied and converged (or `--detach`: written, not awaited).
    Applied,
    /// A rollout failed or was rolled back.
    RolloutFailed,
}

/// What a deploy did.
#[derive(Debug)]
pub struct DeployOutcome {
    /// The plan the deploy went by (made again under the lock if the swarm had changed).
    pub plan: Plan,
    /// How it ended.
    pub outcome: Outcome,
    /// Whether the plan was carried out: the reporter was shown it (`Reporter::applying`)
    /// and the executor ran. False for dry runs and deploys with nothing to apply.
    pub executed: bool,
    /// Objects deleted after convergence.
    pub deleted: Vec<String>,
    /// Services whose rollout failed (`outcome` is then `RolloutFailed`; nothing was pruned).
    pub failures: Vec<RolloutFailure>,
}

impl DeployOutcome {
    /// A deploy that carried nothing out.
    fn not_executed(plan: Plan, outcome: Outcome) -> DeployOutcome {
        DeployOutcome {
            plan,
            outcome,
            executed: false,
            deleted: Vec::new(),
            failures: Vec::new(),
        }
    }
}

/// Why a deploy stopped before it could report an outcome.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// Reading the swarm failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// No plan could be made.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The stack's lock could not be taken.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// An engine call failed while applying.
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

/// What `stackroll plan` shows: the plan against the swarm as it is now. Writes nothing.
pub async fn preview<E: Engine>(
    engine: &E,
    prepared: &Prepared,
    keep: usize,
    prune: bool,
) -> Result<Plan, DeployError> {
    let observed = observe(engine, &prepared.namespace).await?;
    Ok(plan_against(&observed, prepared, keep, prune)?)
}

/// Deploys the prepared project (see the module docs). A failed rollout is an outcome, not
/// an error, so its report still shows the plan.
pub async fn run<E: Engine>(
    engine: &E,
    prepared: &Prepared,
    options: &DeployOptions,
    reporter: &dyn Reporter,
) -> Result<DeployOutcome, DeployError> {
    let observed = observe(engine, &prepared.namespace).await?;
    let plan = plan_against(&observed, prepared, options.keep, options.prune)?;
    if options.dry_run {
        return Ok(DeployOutcome::not_executed(plan, Outcome::Planned));
    }
    if !plan.needs_apply() && plan.seal.is_none() {
        // Nothing to write: no lock either, so a deploy with nothing to do makes no write call.
        return Ok(DeployOutcome::not_executed(plan, Outcome::NoChanges));
    }
    let timing = LockTiming {
        ttl: options.apply.timeout + LOCK_MARGIN,
        wait: options.lock_wait,
        poll: options.lock_poll,
    };
    let lock = lock::acquire(engine, &prepared.namespace, &timing, reporter).await?;
    let result = run_locked(engine, prepared, options, reporter, &observed, plan).await;
    if let Err(error) = lock.release(engine).await {
        reporter.report(Progress::LockNotReleased {
            stack: &prepared.namespace.0,
            error: &error.to_string(),
        });
    }
    result
}

/// The part of a deploy done under the lock. `observed` and `plan` are the first read and
/// plan: they stand only if the swarm is still as it was, since another deploy may have
/// written before this one got the lock.
async fn run_locked<E: Engine>(
    engine: &E,
    prepared: &Prepared,
    options: &DeployOptions,
    reporter: &dyn Reporter,
    observed: &Observed,
    plan: Plan,
) -> Result<DeployOutcome, DeployError> {
    let again = observe(engine, &prepared.namespace).await?;
    let plan = if same_state(observed, &again, &lock::lock_name(&prepared.namespace)) {
        plan
    } else {
        tracing::debug!("the swarm changed before the lock was taken; planning again");
        plan_against(&again, prepared, options.keep, options.prune)?
    };
    if !plan.needs_apply() {
        // Nothing to change, but no current content seal yet (a stack deployed before seals
        // existed, or adopted): record one so the next check is cheap.
        record_seal(
            engine,
            &apply_input(&plan, prepared, options),
            &CreatedVersions::default(),
        )
        .await;
        return Ok(DeployOutcome::not_executed(plan, Outcome::NoChanges));
    }
    reporter.applying(&plan);
    let result = apply(
        engine,
        &apply_input(&plan, prepared, options),
        reporter,
        &options.apply,
    )
    .await;
    let mut deployed = DeployOutcome {
        executed: true,
        ..DeployOutcome::not_executed(plan, Outcome::Applied)
    };
    match result {
        Ok(applied) => {
            if deployed.plan.is_empty() {
                deployed.outcome = Outcome::NoChanges;
            }
            deployed.deleted = applied.deleted;
        }
        Err(ApplyError::Rollout(failures)) => {
            deployed.outcome = Outcome::RolloutFailed;
            deployed.failures = failures;
        }
        Err(error) => return Err(error.into()),
    }
    Ok(deployed)
}

/// What the executor needs to carry out `plan` for the prepared project.
fn apply_input<'a>(
    plan: &'a Plan,
    prepared: &'a Prepared,
    options: &DeployOptions,
) -> ApplyInput<'a> {
    ApplyInput {
        plan,
        namespace: &prepared.namespace,
        contents: &prepared.contents,
        fingerprinter: &prepared.fingerprinter,
        project: &prepared.loaded.project,
        keep: options.keep,
    }
}

/// Plans the prepared project against an observed state.
fn plan_against(
    observed: &Observed,
    prepared: &Prepared,
    keep: usize,
    prune: bool,
) -> Result<Plan, PlanError> {
    let input = PlanInput {
        namespace: &prepared.namespace,
        project: &prepared.loaded.project,
        contents: &prepared.contents,
        fingerprinter: &prepared.fingerprinter,
        keep,
        prune,
    };
    plan(&input, &prepared.converted, observed)
}

/// Whether two reads of the swarm saw the same state, the deploy lock (named `lock`) set
/// aside.
fn same_state(a: &Observed, b: &Observed, lock: &str) -> bool {
    let configs = |observed: &Observed| -> Vec<_> {
        observed
            .configs
            .iter()
            .filter(|config| config.name != lock)
            .cloned()
            .collect()
    };
    a.secrets == b.secrets
        && a.services == b.services
        && a.networks == b.networks
        && configs(a) == configs(b)
}
