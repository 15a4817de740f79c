//! Reading the swarm state a plan is made against (`plan::Observed`): five list calls, made
//! together (and the node count); and, once a plan is made, the data of the config versions it replaces, for its
//! content diffs (`plan::content_diff`). The planner itself never talks to the engine.

use std::collections::HashMap;

use crate::contents::Contents;
use crate::engine::{Engine, EngineError, ServiceState};
use crate::model::ObjectKind;
use crate::plan::{content_diff, Observed, Plan};
use crate::swarm::labels::STACK_NAMESPACE_LABEL;
use crate::swarm::namespace::Namespace;

/// Lists every secret, config, network, service and node; the services are split into the stack's
/// and the others (whose references keep objects from being pruned).
pub async fn observe<E: Engine>(
    engine: &E,
    namespace: &Namespace,
) -> Result<Observed, EngineError> {
    let (secrets, configs, all_services, networks, nodes) = futures_util::try_join!(
        engine.list_objects(ObjectKind::Secret, None),
        engine.list_objects(ObjectKind::Config, None),
        engine.list_services(None),
        engine.list_networks(None),
        engine.list_nodes(),
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
        nodes: nodes.len() as u64,
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

/// Reads the data of the config versions `plan` replaces (configs only: the engine never
/// returns a secret's data) and gives their changes content diffs against the new contents.
/// A version that cannot be read gets a diff marked unavailable: a diff never stops a plan.
pub async fn add_content_diffs<E: Engine>(engine: &E, plan: &mut Plan, contents: &Contents) {
    let mut old = HashMap::new();
    for id in content_diff::replaced_configs(plan) {
        match engine.config_data(&id).await {
            Ok(data) => {
                old.insert(id, data);
            }
            Err(error) => {
                tracing::warn!(config = %id, %error, "cannot read a replaced config's data; its diff is left out")
            }
        }
    }
    content_diff::attach(plan, &old, contents);
}
