//! Reading the swarm state a plan is made against (`plan::Observed`): four list calls, made
//! together. The planner itself never talks to the engine.

use crate::engine::{Engine, EngineError};
use crate::model::ObjectKind;
use crate::plan::Observed;
use crate::swarm::namespace::Namespace;

/// Lists every secret, config and network, and the stack's services.
pub async fn observe<E: Engine>(
    engine: &E,
    namespace: &Namespace,
) -> Result<Observed, EngineError> {
    let label = namespace.label_filter();
    let (secrets, configs, services, networks) = futures_util::try_join!(
        engine.list_objects(ObjectKind::Secret, None),
        engine.list_objects(ObjectKind::Config, None),
        engine.list_services(Some(&label)),
        engine.list_networks(None),
    )?;
    Ok(Observed {
        secrets,
        configs,
        services,
        networks,
    })
}
