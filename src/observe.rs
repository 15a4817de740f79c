//! Reading the swarm state a plan is made against (`plan::Observed`): four list calls, made
//! together. The planner itself never talks to the engine.

use crate::engine::{Engine, EngineError, ServiceState};
use crate::model::ObjectKind;
use crate::plan::Observed;
use crate::swarm::labels::STACK_NAMESPACE_LABEL;
use crate::swarm::namespace::Namespace;

/// Lists every secret, config, network and service; the services are split into the stack's
/// and the others (whose references keep objects from being pruned).
pub async fn observe<E: Engine>(
    engine: &E,
    namespace: &Namespace,
) -> Result<Observed, EngineError> {
    let (secrets, configs, all_services, networks) = futures_util::try_join!(
        engine.list_objects(ObjectKind::Secret, None),
        engine.list_objects(ObjectKind::Config, None),
        engine.list_services(None),
        engine.list_networks(None),
    )?;
    let (services, others) = all_services
        .into_iter()
        .partition(|service| in_stack(service, namespace));
    Ok(Observed {
        secrets,
        configs,
        services,
        others,
        networks,
    })
}

/// Whether the service carries the stack label of `namespace`.
fn in_stack(service: &ServiceState, namespace: &Namespace) -> bool {
    service
        .spec
        .pointer("/Labels")
        .and_then(|labels| labels.get(STACK_NAMESPACE_LABEL))
        .and_then(|value| value.as_str())
        == Some(namespace.0.as_str())
}
