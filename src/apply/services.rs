//! The service writes of a plan: removing services the files no longer have, then creating
//! and updating services concurrently, with the IDs of new versions filled into their
//! references and updates retried when another writer got there first.

use futures_util::stream::{self, StreamExt};
use serde_json::Value;

use super::rollout::Watched;
use super::{
    kill_point, Applied, ApplyError, ApplyOptions, CreatedVersions, FailedWrite, Progress,
    Reporter, CONCURRENT_WRITES,
};
use crate::engine::{Engine, EngineError, Spec};
use crate::model::ObjectKind;
use crate::plan::{Change, Operation, Plan, Resource};
use crate::swarm::retry::update_in_sequence;

/// Removes the services the plan deletes (`--prune`), one after another.
pub(super) async fn remove_services<E: Engine>(
    engine: &E,
    plan: &Plan,
    reporter: &dyn Reporter,
    applied: &mut Applied,
) -> Result<(), ApplyError> {
    for change in &plan.changes {
        let Operation::DeleteService { id } = &change.operation else {
            continue;
        };
        match engine.remove_service(id).await {
            Ok(()) | Err(EngineError::NotFound(_)) => {}
            Err(error) => {
                let during = format!("removing service {}", change.name);
                return Err(applied.failed(FailedWrite::new(during, error)));
            }
        }
        reporter.report(Progress::Deleted {
            resource: Resource::Service,
            name: &change.name,
        });
        applied.deleted.push(change.name.clone());
    }
    Ok(())
}

/// Creates and updates the plan's services, concurrently; returns the services to wait for.
pub(super) async fn write_services<E: Engine>(
    engine: &E,
    plan: &Plan,
    created: &CreatedVersions,
    reporter: &dyn Reporter,
    options: &ApplyOptions,
    applied: &mut Applied,
) -> Result<Vec<Watched>, ApplyError> {
    let writes = plan.changes.iter().filter(|change| {
        matches!(
            change.operation,
            Operation::CreateService(_) | Operation::UpdateService { .. }
        )
    });
    let results = stream::iter(
        writes.map(|change| write_service(engine, change, created, reporter, options)),
    )
    .buffer_unordered(CONCURRENT_WRITES)
    .collect::<Vec<_>>()
    .await;
    applied.settle(results, |service| &service.name)
}

/// Creates or updates one service.
async fn write_service<E: Engine>(
    engine: &E,
    change: &Change,
    created: &CreatedVersions,
    reporter: &dyn Reporter,
    options: &ApplyOptions,
) -> Result<Watched, FailedWrite> {
    match &change.operation {
        Operation::CreateService(spec) => {
            let spec = with_object_ids(spec, created);
            let id = engine.create_service(&spec).await.map_err(|error| {
                FailedWrite::new(format!("creating service {}", change.name), error)
            })?;
            reporter.report(Progress::Created {
                resource: Resource::Service,
                name: &change.name,
            });
            Ok(Watched {
                id,
                name: change.name.clone(),
                replaces_tasks: false,
            })
        }
        Operation::UpdateService {
            id,
            version,
            spec,
            replaces_tasks,
        } => {
            let spec = with_object_ids(spec, created);
            update_service_in_sequence(engine, id, *version, spec)
                .await
                .map_err(|error| {
                    FailedWrite::new(format!("updating service {}", change.name), error)
                })?;
            reporter.report(Progress::Updated { name: &change.name });
            kill_point(options, "after-service-update");
            Ok(Watched {
                id: id.clone(),
                name: change.name.clone(),
                replaces_tasks: *replaces_tasks,
            })
        }
        _ => unreachable!("filtered to service writes"),
    }
}

/// Updates a service with the Version.Index it was read at, retrying "update out of
/// sequence" unless the live spec already is `spec` ([`update_in_sequence`]).
pub(super) async fn update_service_in_sequence<E: Engine>(
    engine: &E,
    id: &str,
    version: u64,
    spec: Spec,
) -> Result<(), EngineError> {
    update_in_sequence(engine, id, version, spec, already_written).await
}

/// Whether the live spec already is `spec` (after carrying over its ForceUpdate counter).
fn already_written(spec: &mut Spec, live: &Spec) -> bool {
    crate::plan::canonical::keep_force_update(spec, live);
    crate::plan::canonical::differences(live, spec).is_empty()
}

/// The spec with the IDs of versions created in this run filled into its references.
pub(super) fn with_object_ids(spec: &Spec, created: &CreatedVersions) -> Spec {
    let mut spec = spec.clone();
    for kind in [ObjectKind::Secret, ObjectKind::Config] {
        let (list, id_key, name_key) = kind.spec_keys();
        let Some(refs) = spec
            .pointer_mut(&format!("/TaskTemplate/ContainerSpec/{list}"))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for reference in refs {
            let name = reference[name_key].as_str().unwrap_or_default();
            if reference[id_key].as_str().is_none_or(str::is_empty) {
                if let Some(id) = created.id(kind, name) {
                    reference[id_key] = Value::from(id);
                }
            }
        }
    }
    fill_credential_spec_config(&mut spec);
    spec
}

/// A credential spec read from a config names that config's ID, as the runtime config
/// reference docker/cli adds for it does.
fn fill_credential_spec_config(spec: &mut Spec) {
    let runtime_config = spec
        .pointer("/TaskTemplate/ContainerSpec/Configs")
        .and_then(Value::as_array)
        .and_then(|refs| refs.iter().find(|r| r.get("Runtime").is_some()))
        .and_then(|r| r["ConfigID"].as_str())
        .map(str::to_string);
    if let (Some(id), Some(config)) = (
        runtime_config,
        spec.pointer_mut("/TaskTemplate/ContainerSpec/Privileges/CredentialSpec/Config"),
    ) {
        if config.as_str() == Some("") {
            *config = Value::from(id);
        }
    }
}
