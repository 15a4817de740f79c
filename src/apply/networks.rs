//! The network writes of a plan: creating new networks before the services that use them,
//! and removing networks the files no longer have (`--prune`) once nothing uses them.

use super::{Applied, ApplyError, ApplyOptions, FailedWrite, Progress, Reporter};
use crate::engine::Engine;
use crate::plan::{Operation, Plan, Resource};
use crate::swarm::retry::remove_when_free;

/// Creates the plan's networks, in order.
pub(super) async fn create_networks<E: Engine>(
    engine: &E,
    plan: &Plan,
    reporter: &dyn Reporter,
    applied: &mut Applied,
) -> Result<(), ApplyError> {
    for change in &plan.changes {
        let Operation::CreateNetwork(spec) = &change.operation else {
            continue;
        };
        engine.create_network(spec).await.map_err(|error| {
            let during = format!("creating network {}", change.name);
            applied.failed(FailedWrite::new(during, error))
        })?;
        reporter.report(Progress::Created {
            resource: Resource::Network,
            name: &change.name,
        });
        applied.written.push(change.name.clone());
    }
    Ok(())
}

/// Removes the networks the plan deletes, waiting while removed services' tasks still use
/// them (up to the rollout timeout).
pub(super) async fn remove_networks<E: Engine>(
    engine: &E,
    plan: &Plan,
    reporter: &dyn Reporter,
    options: &ApplyOptions,
    applied: &mut Applied,
) -> Result<(), ApplyError> {
    for change in &plan.changes {
        let Operation::DeleteNetwork { id } = &change.operation else {
            continue;
        };
        remove_when_free(options.timeout, || engine.remove_network(id))
            .await
            .map_err(|error| {
                let during = format!("removing network {}", change.name);
                applied.failed(FailedWrite::new(during, error))
            })?;
        reporter.report(Progress::Deleted {
            resource: Resource::Network,
            name: &change.name,
        });
        applied.deleted.push(change.name.clone());
    }
    Ok(())
}
