//! The deploy workflow, from a prepared project to a converged stack: read the swarm, plan,
//! take the stack's lock, read again and plan again if another deploy wrote meanwhile, apply,
//! and record the content seal when nothing else needs writing. A deploy with nothing to do
//! writes nothing at all (not even the lock), unless another deploy holds the lock: then what
//! it saw may be about to change, so it waits for the lock and plans again like any deploy.
//! Under the lock the lease is renewed while the deploy works, every write goes through
//! [`Guarded`] (no write once the lock is lost; the lock checked before every removal), and a
//! signal ([`run_until`]) stops the writes, gives the lock back and reports what was written.
//! Given other managers of the swarm ([`Failover`], several `-H`), a deploy that loses the
//! one it talks to ([`manager_lost`]: unreachable, never a refusal) goes on with the next,
//! under the same lock, reading the swarm and planning again there first
//! ([`run_failing_over`]).
//! The command line only resolves flags into [`DeployOptions`], calls [`run_failing_over`]
//! (or [`preview`]) and renders the [`DeployOutcome`].

pub mod prepare;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::apply::lock::{self, Guarded, Lock, LockError, LockTiming};
use crate::apply::rollout::RolloutFailure;
use crate::apply::{apply, record_seal, ApplyError, ApplyInput, ApplyOptions, CreatedVersions};
use crate::engine::{Engine, EngineError};
use crate::observe::{add_content_diffs, look_up_images, observe};
use crate::plan::images::ImageFacts;
use crate::plan::{plan, Observed, Plan, PlanError, PlanInput};
use crate::progress::{Progress, Reporter};
use crate::registry::direct::TagDigests;
use crate::registry::{CredentialFacts, ResolveImage};
use crate::signal::Signal;
pub use prepare::{PrepareError, Prepared};

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
    /// How images are looked up, and what is known about registry credentials.
    pub images: ImageOptions,
    /// How to apply the plan.
    pub apply: ApplyOptions,
}

/// How a plan treats images: when tags are looked up (`--resolve-image`) and what the docker
/// configuration holds for their registries (`--with-registry-auth`).
#[derive(Debug, Clone, Default)]
pub struct ImageOptions {
    /// When tags are looked up to pin digests.
    pub resolve: ResolveImage,
    /// Which registries' credentials are (not) sent, for the plan's notes.
    pub credentials: CredentialFacts,
    /// Asks registries directly whether a pinned tag moved (`observe::look_up_images`);
    /// `None`: every lookup goes through the engine.
    pub direct: Option<Arc<dyn TagDigests>>,
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
    /// How long the plan took from its first write until every service converged (or
    /// failed); None when it was not carried out or not waited for (`--detach`).
    pub rollout: Option<Duration>,
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
            rollout: None,
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
    /// A signal stopped the deploy; the lock was given back.
    #[error("interrupted by {}: stopped writing and gave the deploy lock back{}", .signal.name(), lock::written_note(.written))]
    Interrupted {
        /// The signal.
        signal: Signal,
        /// What was written before it came.
        written: Vec<String>,
    },
}

/// What `stackroll plan` shows: the plan against the swarm as it is now. Writes nothing.
pub async fn preview<E: Engine>(
    engine: &E,
    prepared: &Prepared,
    keep: usize,
    prune: bool,
    images: &ImageOptions,
) -> Result<Plan, DeployError> {
    check_engine_api(engine, prepared)?;
    let observed = observe(engine, &prepared.namespace).await?;
    let facts = image_facts(engine, prepared, &observed, images).await;
    let mut plan = plan_against(&observed, &facts, prepared, keep, prune)?;
    add_content_diffs(engine, &mut plan, &prepared.contents).await;
    Ok(plan)
}

/// Looks up the images the plan against `observed` pins (see `plan::images`).
async fn image_facts<E: Engine>(
    engine: &E,
    prepared: &Prepared,
    observed: &Observed,
    images: &ImageOptions,
) -> ImageFacts {
    let lookups = look_up_images(
        engine,
        images.direct.as_deref(),
        &prepared.converted,
        &prepared.namespace,
        observed,
        images.resolve,
    )
    .await;
    ImageFacts {
        mode: images.resolve,
        lookups,
        credentials: images.credentials.clone(),
    }
}

/// Deploys the prepared project (see the module docs), with no signal to stop it.
pub async fn run<E: Engine>(
    engine: &E,
    prepared: &Prepared,
    options: &DeployOptions,
    reporter: &dyn Reporter,
) -> Result<DeployOutcome, DeployError> {
    run_until(engine, prepared, options, reporter, std::future::pending()).await
}

/// Deploys the prepared project until `stop` yields a signal: then the deploy stops writing,
/// gives the lock back and fails with [`DeployError::Interrupted`] naming what it wrote. A
/// failed rollout is an outcome, not an error, so its report still shows the plan.
pub async fn run_until<E: Engine>(
    engine: &E,
    prepared: &Prepared,
    options: &DeployOptions,
    reporter: &dyn Reporter,
    stop: impl Future<Output = Signal>,
) -> Result<DeployOutcome, DeployError> {
    run_failing_over(engine, &mut NoFailover, prepared, options, reporter, stop).await
}

/// Other managers of the swarm a deploy may go on with when it loses the one it talks to.
#[allow(async_fn_in_trait)]
pub trait Failover<E> {
    /// The next manager of the same swarm that answers, and how to name it; `None` when no
    /// other one is left.
    async fn next_manager(&mut self) -> Option<(E, String)>;
}

/// No other manager: a lost manager ends the deploy.
pub struct NoFailover;

impl<E> Failover<E> for NoFailover {
    async fn next_manager(&mut self) -> Option<(E, String)> {
        None
    }
}

/// Whether a deploy failed because the manager it talks to could not be reached (a transport
/// failure, never a refusal): only then may it go on against another manager.
pub fn manager_lost(error: &DeployError) -> bool {
    let unreachable = |error: &EngineError| matches!(error, EngineError::Unreachable { .. });
    match error {
        DeployError::Engine(error) | DeployError::Lock(LockError::Engine(error)) => {
            unreachable(error)
        }
        DeployError::Apply(ApplyError::Engine { error, .. }) => unreachable(error),
        _ => false,
    }
}

/// [`run_until`], going on against the next manager `failover` gives whenever the one in use
/// is lost ([`manager_lost`]): the deploy reads the swarm and plans again there before
/// writing anything more, under the same lock (the lock lives in the swarm, and this process
/// recognises it as its own).
pub async fn run_failing_over<E: Engine>(
    first: &E,
    failover: &mut impl Failover<E>,
    prepared: &Prepared,
    options: &DeployOptions,
    reporter: &dyn Reporter,
    stop: impl Future<Output = Signal>,
) -> Result<DeployOutcome, DeployError> {
    let mut stop = std::pin::pin!(stop);
    let mut replaced: Option<E> = None;
    let first_look = loop {
        let engine = replaced.as_ref().unwrap_or(first);
        let look = tokio::select! {
            look = plan_and_lock(engine, prepared, options, reporter, replaced.is_some()) => look,
            signal = &mut stop => {
                // The lock may have been created as the signal came.
                lock::release_if_ours(engine, &prepared.namespace).await;
                return Err(DeployError::Interrupted { signal, written: Vec::new() });
            }
        };
        match look {
            Err(error) if manager_lost(&error) => {
                replaced = Some(go_on_with(failover, reporter, error).await?);
            }
            other => break other?,
        }
    };
    let (observed, plan, lock) = match first_look {
        FirstLook::Done(outcome) => return Ok(*outcome),
        FirstLook::Locked(locked) => (locked.observed, locked.plan, locked.lock),
    };
    let mut first_plan = Some((observed, plan));
    let mut written = Vec::new();
    let result = loop {
        let engine = replaced.as_ref().unwrap_or(first);
        let guarded = Guarded::new(engine, &lock);
        let result = tokio::select! {
            result = run_locked(&guarded, prepared, options, reporter, first_plan.take()) => result,
            lost = lock.keep_alive(engine) => Err(lost.into()),
            signal = &mut stop => Err(DeployError::Interrupted { signal, written: Vec::new() }),
        };
        written.extend(guarded.written());
        match result {
            Err(error) if manager_lost(&error) && !guarded.lost() => {
                match go_on_with(failover, reporter, error).await {
                    Ok(next) => replaced = Some(next),
                    Err(error) => break Err(with_written(error, &written)),
                }
                let engine = replaced.as_ref().unwrap_or(first);
                // Still ours? (Not taken over while no manager answered.) Then renewed at once.
                if let Err(error) = lock.check(engine).await {
                    break Err(with_written(error.into(), &written));
                }
                if let Err(error) = lock.renew(engine).await {
                    break Err(with_written(error.into(), &written));
                }
            }
            Err(DeployError::Apply(ApplyError::Engine { .. })) if guarded.lost() => {
                break Err(LockError::Lost {
                    stack: prepared.namespace.0.clone(),
                    written,
                }
                .into())
            }
            other => break other.map_err(|error| with_written(error, &written)),
        }
    };
    let engine = replaced.as_ref().unwrap_or(first);
    if let Err(error) = lock.release(engine).await {
        reporter.report(Progress::LockNotReleased {
            stack: &prepared.namespace.0,
            error: &error.to_string(),
        });
    }
    result
}

/// The next manager after `lost` (reported), or the error when there is none.
async fn go_on_with<E>(
    failover: &mut impl Failover<E>,
    reporter: &dyn Reporter,
    lost: DeployError,
) -> Result<E, DeployError> {
    let Some((engine, address)) = failover.next_manager().await else {
        return Err(lost);
    };
    reporter.report(Progress::ManagerLost {
        error: &lost.to_string(),
        next: &address,
    });
    Ok(engine)
}

/// `error` naming everything this deploy wrote (on every manager it talked to), where it
/// names what was written.
fn with_written(error: DeployError, written: &[String]) -> DeployError {
    match error {
        DeployError::Interrupted { signal, .. } => DeployError::Interrupted {
            signal,
            written: written.to_vec(),
        },
        DeployError::Lock(LockError::Lost { stack, .. }) => LockError::Lost {
            stack,
            written: written.to_vec(),
        }
        .into(),
        other => other,
    }
}

/// Refuses, before anything is read or written, the fields the engine's negotiated API
/// version does not know (`healthcheck.start_interval` below 1.44, ...).
fn check_engine_api<E: Engine>(engine: &E, prepared: &Prepared) -> Result<(), DeployError> {
    let problems = prepared.converted.unsupported_by(&engine.api_version());
    if problems.has_errors() {
        return Err(PlanError::Invalid(problems).into());
    }
    Ok(())
}

/// How a deploy's first read and plan ended.
enum FirstLook {
    /// Nothing (more) to do: a dry run, or no change and no other deploy holding the lock.
    Done(Box<DeployOutcome>),
    /// The lock is taken; the first read and plan, to be checked under it.
    Locked(Box<LockedLook>),
}

/// The first read and plan of a deploy that took the lock.
struct LockedLook {
    /// The first read, as a digest: a large swarm's read is tens of megabytes, and a deploy
    /// only needs to know whether the read under the lock found the same.
    observed: StateDigest,
    /// The plan made from it.
    plan: Plan,
    /// The lock.
    lock: Lock,
}

/// Reads the swarm and plans; when there is something to write, or another deploy holds the
/// lock, takes the lock. `failed_over`: this deploy lost the manager it talked to, maybe as
/// it created the lock; a lock with exactly this process's identity is then its own.
async fn plan_and_lock<E: Engine>(
    engine: &E,
    prepared: &Prepared,
    options: &DeployOptions,
    reporter: &dyn Reporter,
    failed_over: bool,
) -> Result<FirstLook, DeployError> {
    check_engine_api(engine, prepared)?;
    let observed = observe(engine, &prepared.namespace).await?;
    let facts = image_facts(engine, prepared, &observed, &options.images).await;
    let mut plan = plan_against(&observed, &facts, prepared, options.keep, options.prune)?;
    add_content_diffs(engine, &mut plan, &prepared.contents).await;
    if options.dry_run {
        return Ok(FirstLook::Done(Box::new(DeployOutcome::not_executed(
            plan,
            Outcome::Planned,
        ))));
    }
    let lock_name = lock::lock_name(&prepared.namespace);
    if !plan.needs_apply() && plan.seal.is_none() {
        if !observed.configs.iter().any(|c| c.name == lock_name) {
            // Nothing to write: no lock either, so a deploy with nothing to do makes no write.
            return Ok(FirstLook::Done(Box::new(DeployOutcome::not_executed(
                plan,
                Outcome::NoChanges,
            ))));
        }
        tracing::info!("nothing to change as seen now, but another deploy holds the lock: waiting for it, then planning again");
    }
    let timing = LockTiming {
        reclaim_own: failed_over,
        ..LockTiming::waiting(options.lock_wait, options.lock_poll)
    };
    let lock = lock::acquire(engine, &prepared.namespace, &timing, reporter).await?;
    Ok(FirstLook::Locked(Box::new(LockedLook {
        observed: StateDigest::of(&observed, &lock_name),
        plan,
        lock,
    })))
}

/// The part of a deploy done under the lock. `first` is the first read and plan: it stands
/// only if the swarm is still as it was, since another deploy may have written before this
/// one got the lock; without it (on another manager after a lost one) the plan is made anew.
async fn run_locked<E: Engine>(
    engine: &E,
    prepared: &Prepared,
    options: &DeployOptions,
    reporter: &dyn Reporter,
    first: Option<(StateDigest, Plan)>,
) -> Result<DeployOutcome, DeployError> {
    let again = observe(engine, &prepared.namespace).await?;
    let lock_name = lock::lock_name(&prepared.namespace);
    let plan = match first {
        Some((observed, plan)) if observed == StateDigest::of(&again, &lock_name) => plan,
        _ => {
            tracing::debug!("the swarm changed before the lock was taken, or this is another manager; planning again");
            let facts = image_facts(engine, prepared, &again, &options.images).await;
            let mut plan = plan_against(&again, &facts, prepared, options.keep, options.prune)?;
            add_content_diffs(engine, &mut plan, &prepared.contents).await;
            plan
        }
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
    let started = std::time::Instant::now();
    let result = apply(
        engine,
        &apply_input(&plan, prepared, options),
        reporter,
        &options.apply,
    )
    .await;
    let mut deployed = DeployOutcome {
        executed: true,
        rollout: (!options.apply.detach).then(|| started.elapsed()),
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

/// Plans the prepared project against an observed state and the image lookups made for it.
fn plan_against(
    observed: &Observed,
    images: &ImageFacts,
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
        images,
    };
    plan(&input, &prepared.converted, observed)
}

/// A SHA-256 of everything of a read of the swarm that a plan depends on: secrets,
/// services, networks and configs, the deploy lock's config left out (taking the lock changes
/// only that). Two reads with equal digests found the same swarm. What is hashed is what the
/// engine lists (names, IDs, labels, specs), never secret data, which the engine never gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StateDigest([u8; 32]);

impl StateDigest {
    /// The digest of `observed`, leaving out the config named `lock`.
    pub(crate) fn of(observed: &Observed, lock: &str) -> StateDigest {
        use sha2::{Digest, Sha256};
        use std::fmt::Write as _;
        /// Feeds what is written into the hash, with no string of the whole read in memory.
        struct Hashing(Sha256);
        impl std::fmt::Write for Hashing {
            fn write_str(&mut self, text: &str) -> std::fmt::Result {
                self.0.update(text.as_bytes());
                Ok(())
            }
        }
        /// Writes a section's name, then each item on its own line.
        fn section<T: std::fmt::Debug>(
            hashing: &mut Hashing,
            name: &str,
            items: impl Iterator<Item = T>,
        ) {
            let _ = writeln!(hashing, "{name}");
            for item in items {
                let _ = writeln!(hashing, "{item:?}");
            }
        }
        let mut hashing = Hashing(Sha256::new());
        section(&mut hashing, "secrets", observed.secrets.iter());
        section(&mut hashing, "services", observed.services.iter());
        section(&mut hashing, "networks", observed.networks.iter());
        let configs = observed.configs.iter().filter(|config| config.name != lock);
        section(&mut hashing, "configs", configs);
        StateDigest(hashing.0.finalize().into())
    }
}
