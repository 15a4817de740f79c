//! `stackroll wait`: waits for every service of a stack, whoever deployed it (stackroll, `docker
//! stack deploy`, an interrupted deploy), with the same judgement as `deploy`
//! ([`wait_for_rollouts`]): converged, or failed (a rollback or a paused update), or timed out.

use crate::apply::rollout::{wait_for_rollouts, RolloutFailure, Watched};
use crate::apply::ApplyOptions;
use crate::engine::{Engine, EngineError};
use crate::progress::Reporter;
use crate::swarm::namespace::Namespace;

/// What `stackroll wait` found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WaitOutcome {
    /// The stack.
    pub stack: String,
    /// The services waited for.
    pub services: Vec<String>,
    /// Those that failed or did not converge in time.
    pub failures: Vec<RolloutFailure>,
}

/// Waits until every service of the stack has converged, failed, or `options.timeout` passed.
/// An update Swarm is still running is waited for; a service without one is judged by its
/// tasks, which must keep running unchanged for its settle period.
pub async fn wait_for_stack<E: Engine>(
    engine: &E,
    namespace: &Namespace,
    options: &ApplyOptions,
    reporter: &dyn Reporter,
) -> Result<WaitOutcome, EngineError> {
    let services = engine
        .list_services(Some(&namespace.label_filter()))
        .await?;
    let watched: Vec<Watched> = services
        .iter()
        .map(|service| Watched {
            id: service.id.clone(),
            name: service.name.clone(),
            replaces_tasks: false,
        })
        .collect();
    let failures = wait_for_rollouts(engine, &watched, options, reporter).await?;
    Ok(WaitOutcome {
        stack: namespace.0.clone(),
        services: watched.into_iter().map(|w| w.name).collect(),
        failures,
    })
}
