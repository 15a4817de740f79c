//! The secret and config versions a plan writes: creating the new ones (fingerprinted, at
//! most one fingerprint per core at a time), recording the content seal that vouches for
//! them, and after convergence deleting the superseded ones the plan said may go.

use std::collections::HashMap;

use futures_util::stream::{self, StreamExt};
use indexmap::IndexMap;
use tokio::sync::Semaphore;

use super::{
    kill_point, Applied, ApplyError, ApplyInput, ApplyOptions, FailedWrite, Progress, Reporter,
    CONCURRENT_WRITES,
};
use crate::engine::{Engine, EngineError, NewObject, ServiceState, SwarmObject};
use crate::model::{ObjectKind, SensitiveBytes};
use crate::observe;
use crate::plan::fingerprint::Material;
use crate::plan::prune::{self, ServiceSpecs};
use crate::plan::seal::{self, SealedVersion};
use crate::plan::{ObjectCreation, Observed, Operation, Resource, SealWrite, VersionToSeal};
use crate::swarm::labels::FINGERPRINT_LABEL;

/// A secret or config by kind and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ObjectName {
    /// Secret or config.
    kind: ObjectKind,
    /// Its name.
    name: String,
}

/// The IDs of the secret and config versions this run created, by kind and name.
#[derive(Debug, Default)]
pub struct CreatedVersions {
    /// ID by object.
    ids: HashMap<ObjectName, String>,
}

impl CreatedVersions {
    /// The ID of the `kind` named `name`, if this run created it.
    pub fn id(&self, kind: ObjectKind, name: &str) -> Option<&str> {
        let key = ObjectName {
            kind,
            name: name.to_string(),
        };
        self.ids.get(&key).map(String::as_str)
    }
}

/// One version this run created.
#[derive(Debug)]
struct CreatedVersion {
    /// Which object.
    object: ObjectName,
    /// Its new ID.
    id: String,
}

/// Creates the plan's new secret and config versions, concurrently.
pub(super) async fn create_versions<E: Engine>(
    engine: &E,
    input: &ApplyInput<'_>,
    reporter: &dyn Reporter,
    applied: &mut Applied,
) -> Result<CreatedVersions, ApplyError> {
    let creations = input
        .plan
        .changes
        .iter()
        .filter_map(|change| match &change.operation {
            Operation::CreateObject(creation) => Some(creation),
            _ => None,
        });
    // Fingerprints are CPU-bound: at most one per core at a time, however many creations are
    // in flight (more would only make each slower and thrash the cache).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let fingerprinting = Semaphore::new(cores);
    let results = stream::iter(
        creations
            .map(|creation| create_version(engine, input, creation, &fingerprinting, reporter)),
    )
    .buffer_unordered(CONCURRENT_WRITES)
    .collect::<Vec<_>>()
    .await;
    let created = applied.settle(results, |version| &version.object.name)?;
    Ok(CreatedVersions {
        ids: created
            .into_iter()
            .map(|version| (version.object, version.id))
            .collect(),
    })
}

/// Creates one version with its data and fingerprint.
async fn create_version<E: Engine>(
    engine: &E,
    input: &ApplyInput<'_>,
    creation: &ObjectCreation,
    fingerprinting: &Semaphore,
    reporter: &dyn Reporter,
) -> Result<CreatedVersion, FailedWrite> {
    let data = input
        .contents
        .get(creation.kind, &creation.key)
        .cloned()
        .unwrap_or_else(|| SensitiveBytes::new(Vec::new()));
    let labels = version_labels(input, creation, &data, fingerprinting).await;
    let object = NewObject {
        kind: creation.kind,
        name: creation.name.clone(),
        labels,
        data,
        driver: creation.driver.clone(),
        driver_opts: creation.driver_opts.clone(),
        template_driver: creation.template_driver.clone(),
    };
    let id = engine.create_object(&object).await.map_err(|error| {
        let during = format!("creating {} {}", creation.kind.noun(), creation.name);
        FailedWrite::new(during, error)
    })?;
    reporter.report(Progress::Created {
        resource: Resource::of(creation.kind),
        name: &creation.name,
    });
    Ok(CreatedVersion {
        object: ObjectName {
            kind: creation.kind,
            name: creation.name.clone(),
        },
        id,
    })
}

/// The planned labels of a new version, plus the fingerprint of its data unless a driver
/// holds the data.
async fn version_labels(
    input: &ApplyInput<'_>,
    creation: &ObjectCreation,
    data: &SensitiveBytes,
    fingerprinting: &Semaphore,
) -> IndexMap<String, String> {
    let mut labels = creation.labels.clone();
    if creation.driver.is_some() {
        return labels;
    }
    let fingerprinter = input.fingerprinter.clone();
    let for_hash = data.clone();
    let template_driver = creation.template_driver.clone();
    let stack = input.namespace.0.clone();
    let (kind, key) = (creation.kind, creation.key.clone());
    let _core = fingerprinting
        .acquire()
        .await
        .expect("the semaphore is never closed");
    let fingerprint = tokio::task::spawn_blocking(move || {
        fingerprinter.fingerprint(Material {
            stack: &stack,
            kind,
            key: &key,
            data: for_hash.expose(),
            template_driver: template_driver.as_deref(),
        })
    })
    .await
    .expect("fingerprinting does not panic");
    labels.insert(FINGERPRINT_LABEL.into(), fingerprint);
    labels
}

/// Records the plan's new content seal, if it has one (`plan::seal`), then deletes the seals
/// it replaces. `created` gives the IDs of versions this run created. The seal only makes
/// later checks cheaper, so a failure is a warning: the next deploy checks each version on
/// its own and records a seal again.
pub async fn record_seal<E: Engine>(engine: &E, input: &ApplyInput<'_>, created: &CreatedVersions) {
    let Some(write) = &input.plan.seal else {
        return;
    };
    if !write.versions.is_empty() {
        let mut versions = Vec::with_capacity(write.versions.len());
        for VersionToSeal {
            kind,
            key,
            name,
            id,
        } in &write.versions
        {
            let id = match created.id(*kind, name) {
                Some(id) => id.to_string(),
                None if !id.is_empty() => id.clone(),
                None => {
                    tracing::warn!(%name, "no ID for a version the seal should cover; not recording a seal");
                    return;
                }
            };
            versions.push(SealedVersion {
                kind: *kind,
                key: key.clone(),
                id,
            });
        }
        if !create_seal(engine, input, write, &versions).await {
            return;
        }
    }
    for id in &write.replaces {
        match engine.remove_object(ObjectKind::Config, id).await {
            Ok(()) | Err(EngineError::NotFound(_)) => {}
            Err(error) => tracing::warn!(%error, id, "could not delete a replaced content seal"),
        }
    }
}

/// Creates the seal config `write` numbers over `versions`, reusing the fingerprints of the
/// stored seal's parts that cover the same versions; says whether it exists now.
async fn create_seal<E: Engine>(
    engine: &E,
    input: &ApplyInput<'_>,
    write: &SealWrite,
    versions: &[SealedVersion],
) -> bool {
    let serial = write.serial;
    let Some(inputs) = seal::inputs(
        input.namespace,
        versions,
        input.project,
        input.contents,
        &write.reusable,
    ) else {
        tracing::warn!("a key the seal should cover has no data; not recording a seal");
        return false;
    };
    tracing::debug!(
        to_compute = inputs.to_compute(),
        "fingerprinting the content seal and its parts"
    );
    let fingerprinter = input.fingerprinter.clone();
    let fingerprint = tokio::task::spawn_blocking(move || inputs.fingerprints(&fingerprinter))
        .await
        .expect("fingerprinting does not panic");
    let object = NewObject {
        kind: ObjectKind::Config,
        name: seal::seal_name(input.namespace, serial),
        labels: seal::labels(input.namespace, serial, fingerprint, versions),
        data: SensitiveBytes::new(seal::SEAL_DATA.to_vec()),
        driver: None,
        driver_opts: Default::default(),
        template_driver: None,
    };
    if let Err(error) = engine.create_object(&object).await {
        tracing::warn!(%error, name = %object.name, "could not record the content seal");
        return false;
    }
    tracing::info!(name = %object.name, versions = versions.len(), "recorded the content seal");
    true
}

/// Deletes what the plan said may go, if it still may now that services converged: the
/// prune rules run again against a fresh read of the swarm, counting the references of every
/// service in it (any stack's or none) and of every task still running.
pub(super) async fn prune_versions<E: Engine>(
    engine: &E,
    input: &ApplyInput<'_>,
    reporter: &dyn Reporter,
    options: &ApplyOptions,
    applied: &mut Applied,
) -> Result<(), ApplyError> {
    let deletions: Vec<&str> = input
        .plan
        .changes
        .iter()
        .filter_map(|change| match &change.operation {
            Operation::DeleteObject { id, .. } => Some(id.as_str()),
            _ => None,
        })
        .collect();
    if deletions.is_empty() {
        return Ok(());
    }
    let observed = observe::observe(engine, input.namespace)
        .await
        .map_err(|error| {
            applied.failed(FailedWrite::new("reading the swarm before pruning", error))
        })?;
    let services = live_references(engine, &observed).await.map_err(|error| {
        applied.failed(FailedWrite::new("reading the swarm before pruning", error))
    })?;
    let current: Vec<&String> = input.plan.current_objects.iter().collect();
    for kind in [ObjectKind::Secret, ObjectKind::Config] {
        let candidates = prune::prunable(
            kind,
            observed.objects(kind),
            input.namespace,
            input.project,
            &current,
            &services,
            input.keep,
        );
        for candidate in candidates
            .iter()
            .filter(|c| deletions.contains(&c.object.id.as_str()))
        {
            delete_version(engine, kind, candidate.object, reporter, options, applied).await?;
        }
    }
    Ok(())
}

/// What keeps objects from being pruned, as service specs: every service's current and
/// previous spec, and the spec of every task of the swarm that is not shut down yet (an old
/// task of a `start-first` update, a job still running), as a task template. The tasks come
/// in one read: one per service would be a thousand on a swarm of a thousand services.
pub(super) async fn live_references<E: Engine>(
    engine: &E,
    observed: &Observed,
) -> Result<Vec<ServiceSpecs>, EngineError> {
    let all: Vec<&ServiceState> = observed.services.iter().chain(&observed.others).collect();
    let tasks = engine.list_all_tasks().await?;
    let mut specs: Vec<ServiceSpecs> = all
        .iter()
        .map(|s| ServiceSpecs {
            current: s.spec.clone(),
            previous: s.previous_spec.clone(),
        })
        .collect();
    specs.extend(
        tasks
            .iter()
            .filter(|task| !TASK_ENDED.contains(&task.state.as_str()))
            .map(|task| ServiceSpecs {
                current: serde_json::json!({ "TaskTemplate": task.spec }),
                previous: None,
            }),
    );
    Ok(specs)
}

/// Task states after which a task's container is gone (or never was).
const TASK_ENDED: [&str; 6] = [
    "complete", "shutdown", "failed", "rejected", "orphaned", "remove",
];

/// Deletes one superseded version; one that something started using meanwhile is kept.
async fn delete_version<E: Engine>(
    engine: &E,
    kind: ObjectKind,
    object: &SwarmObject,
    reporter: &dyn Reporter,
    options: &ApplyOptions,
    applied: &mut Applied,
) -> Result<(), ApplyError> {
    let name = &object.name;
    match engine.remove_object(kind, &object.id).await {
        Ok(()) => {
            reporter.report(Progress::Deleted {
                resource: Resource::of(kind),
                name,
            });
            applied.deleted.push(name.clone());
            kill_point(options, "during-prune");
            Ok(())
        }
        Err(EngineError::Conflict(reason)) => {
            reporter.report(Progress::KeptInUse {
                resource: Resource::of(kind),
                name,
                reason: &reason,
            });
            Ok(())
        }
        Err(EngineError::NotFound(_)) => Ok(()),
        Err(error) => {
            let during = format!("deleting {} {name}", kind.noun());
            Err(applied.failed(FailedWrite::new(during, error)))
        }
    }
}
