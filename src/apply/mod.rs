//! Carrying out a [`Plan`]: create secret and config versions, networks, then create and
//! update services (independent writes run concurrently), wait for every written service to
//! converge, and only then delete what the plan said may go, checked again against the live
//! swarm. Progress goes to a [`Reporter`], so the terminal stays at the edge.

pub mod lock;
pub mod rollout;
pub mod rotation;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use serde_json::Value;

use crate::convert::Namespace;
use crate::engine::{Engine, EngineError, NewObject, Spec};
use crate::model::{ObjectKind, SensitiveBytes};
use crate::plan::contents::Contents;
use crate::plan::fingerprint::{Fingerprinter, Material};
use crate::plan::seal::{self, SealedVersion};
use crate::plan::{observe, prune, Operation, Plan, Resource, FINGERPRINT_LABEL};
use rollout::{RolloutFailure, Watched};

/// How many writes run at once.
const CONCURRENT_WRITES: usize = 8;

/// Something that happened while applying, for the user to see.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// A secret, config, network or service was created.
    Created {
        /// What kind.
        resource: Resource,
        /// Its name.
        name: &'a str,
    },
    /// A service's spec was replaced.
    Updated {
        /// Service name.
        name: &'a str,
    },
    /// A service's rollout moved on.
    Rolling {
        /// Service name.
        service: &'a str,
        /// Tasks running.
        running: usize,
        /// Tasks wanted.
        desired: usize,
        /// Time since the writes.
        elapsed: Duration,
        /// A task's latest error.
        last_error: Option<&'a str>,
    },
    /// A service runs its new spec.
    Converged {
        /// Service name.
        service: &'a str,
        /// Time since the writes.
        elapsed: Duration,
    },
    /// Swarm paused or rolled back a service's update.
    RolloutFailed {
        /// Service name.
        service: &'a str,
        /// UpdateStatus.State.
        state: &'a str,
        /// Swarm's message.
        message: &'a str,
    },
    /// An old version was deleted.
    Deleted {
        /// Secret or config.
        resource: Resource,
        /// Its name.
        name: &'a str,
    },
    /// A staged rotation's command starts in a task of an owner.
    RotationStep {
        /// `apply` or `finalize`.
        step: &'a str,
        /// The key rotated.
        key: &'a str,
        /// The owner service.
        service: &'a str,
    },
    /// A deletion was skipped (something started using it meanwhile).
    KeptInUse {
        /// Secret or config.
        resource: Resource,
        /// Its name.
        name: &'a str,
        /// The engine's refusal.
        reason: &'a str,
    },
}

/// Receives progress while a plan is applied.
pub trait Reporter: Sync {
    /// Called for each event, in order.
    fn report(&self, event: Progress<'_>);
}

/// How to apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Do not wait for rollouts (and so do not prune).
    pub detach: bool,
    /// How long to wait for rollouts.
    pub timeout: Duration,
    /// How often to poll rollouts.
    pub poll: Duration,
    /// Test-only fault injection: the step after which the process kills itself with
    /// SIGKILL (`after-objects`, `after-service-update`, `during-rollout`, `during-prune`).
    pub kill_at: Option<String>,
}

/// Kills this process with SIGKILL when `point` is the configured fault point (tests of crash
/// safety only; never set in normal use).
fn kill_point(options: &ApplyOptions, point: &str) {
    if options.kill_at.as_deref() == Some(point) {
        tracing::warn!(point, "fault injection: killing this process");
        // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

/// How many times a service update is retried after "update out of sequence".
const SEQUENCE_RETRIES: usize = 3;

/// Updates a service with the Version.Index it was read at. When another writer got there
/// first ("update out of sequence"), reads it again: if it already has the desired spec
/// nothing is written, otherwise the update is sent again with the new index (a few times).
async fn update_service_in_sequence<E: Engine>(
    engine: &E,
    id: &str,
    mut version: u64,
    mut spec: Spec,
) -> Result<(), EngineError> {
    let mut attempt = 0;
    loop {
        match engine.update_service(id, version, &spec).await {
            Err(EngineError::OutOfSequence(message)) if attempt < SEQUENCE_RETRIES => {
                attempt += 1;
                tracing::info!(
                    service = id,
                    attempt,
                    "update out of sequence; reading the service again"
                );
                let live = engine.inspect_service(id).await?;
                crate::plan::canonical::keep_force_update(&mut spec, &live.spec);
                if crate::plan::canonical::differences(&live.spec, &spec).is_empty() {
                    return Ok(());
                }
                version = live.version;
                let _ = message;
            }
            other => return other,
        }
    }
}

/// What was done.
#[derive(Debug, Default)]
pub struct Applied {
    /// Names of things created or updated.
    pub written: Vec<String>,
    /// Names of objects deleted.
    pub deleted: Vec<String>,
}

/// Why applying stopped.
#[derive(Debug)]
pub enum ApplyError {
    /// An engine call failed; `done` lists what was already written.
    Engine {
        /// What was being done.
        during: String,
        /// The engine's error.
        error: EngineError,
        /// What was written before it.
        done: Vec<String>,
    },
    /// Services did not converge (rolled back, paused, or timed out). Nothing was pruned.
    Rollout(Vec<RolloutFailure>),
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

/// Records the plan's new content seal, if it has one (`plan::seal`), then deletes the seals
/// it replaces. `created` gives the IDs of versions this run created, by (kind, name). The
/// seal only makes later checks cheaper, so a failure is a warning: the next deploy checks
/// each version on its own and records a seal again.
pub async fn record_seal<E: Engine>(
    engine: &E,
    input: &ApplyInput<'_>,
    created: &HashMap<(ObjectKind, String), String>,
) {
    let Some(write) = &input.plan.seal else {
        return;
    };
    if !write.versions.is_empty() {
        let mut versions = Vec::with_capacity(write.versions.len());
        for (kind, key, name, id) in &write.versions {
            let id = match created.get(&(*kind, name.clone())) {
                Some(id) => id.clone(),
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
        let Some(material) = seal::material(&versions, input.project, input.contents) else {
            tracing::warn!("a key the seal should cover has no data; not recording a seal");
            return;
        };
        let fingerprinter = input.fingerprinter.clone();
        let fingerprint =
            tokio::task::spawn_blocking(move || fingerprinter.fingerprint_bytes(&material))
                .await
                .expect("fingerprinting does not panic");
        let object = NewObject {
            kind: ObjectKind::Config,
            name: seal::seal_name(input.namespace, write.serial),
            labels: seal::labels(input.namespace, write.serial, fingerprint, &versions),
            data: SensitiveBytes::new(seal::SEAL_DATA.to_vec()),
            driver: None,
            driver_opts: Default::default(),
            template_driver: None,
        };
        if let Err(error) = engine.create_object(&object).await {
            tracing::warn!(%error, name = %object.name, "could not record the content seal");
            return;
        }
        tracing::info!(name = %object.name, versions = versions.len(), "recorded the content seal");
    }
    for id in &write.replaces {
        match engine.remove_object(ObjectKind::Config, id).await {
            Ok(()) | Err(EngineError::NotFound(_)) => {}
            Err(error) => tracing::warn!(%error, id, "could not delete a replaced content seal"),
        }
    }
}

/// Carries out the plan.
pub async fn apply<E: Engine>(
    engine: &E,
    input: &ApplyInput<'_>,
    reporter: &dyn Reporter,
    options: &ApplyOptions,
) -> Result<Applied, ApplyError> {
    let mut applied = Applied::default();
    let fail = |during: String, error: EngineError, applied: &Applied| ApplyError::Engine {
        during,
        error,
        done: applied.written.clone(),
    };

    // 1. New secret and config versions, concurrently.
    let creations: Vec<_> = input
        .plan
        .changes
        .iter()
        .filter_map(|change| match &change.operation {
            Operation::CreateObject(creation) => Some(creation),
            _ => None,
        })
        .collect();
    // Fingerprints are CPU-bound: at most one per core at a time, however many creations are
    // in flight (more would only make each slower and thrash the cache).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let fingerprinting = tokio::sync::Semaphore::new(cores);
    let fingerprinting = &fingerprinting;
    let created = stream::iter(creations.into_iter().map(|creation| async move {
        let data = input
            .contents
            .get(creation.kind, &creation.key)
            .cloned()
            .unwrap_or_else(|| SensitiveBytes::new(Vec::new()));
        let mut labels = creation.labels.clone();
        if creation.driver.is_none() {
            let fingerprinter = input.fingerprinter.clone();
            let for_hash = data.clone();
            let template_driver = creation.template_driver.clone();
            let _core = fingerprinting
                .acquire()
                .await
                .expect("the semaphore is never closed");
            let fingerprint = tokio::task::spawn_blocking(move || {
                fingerprinter.fingerprint(Material {
                    data: for_hash.expose(),
                    driver: None,
                    template_driver: template_driver.as_deref(),
                })
            })
            .await
            .expect("fingerprinting does not panic");
            labels.insert(FINGERPRINT_LABEL.into(), fingerprint);
        }
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
            (
                format!("creating {} {}", creation.kind.noun(), creation.name),
                error,
            )
        })?;
        reporter.report(Progress::Created {
            resource: Resource::of(creation.kind),
            name: &creation.name,
        });
        Ok::<_, (String, EngineError)>((creation.kind, creation.name.clone(), id))
    }))
    .buffer_unordered(CONCURRENT_WRITES)
    .collect::<Vec<_>>()
    .await;
    let mut ids: HashMap<(ObjectKind, String), String> = HashMap::new();
    let mut first_error = None;
    for result in created {
        match result {
            Ok((kind, name, id)) => {
                applied.written.push(name.clone());
                ids.insert((kind, name), id);
            }
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    if let Some((during, error)) = first_error {
        return Err(fail(during, error, &applied));
    }

    record_seal(engine, input, &ids).await;

    kill_point(options, "after-objects");

    // 2. Networks, in order.
    for change in &input.plan.changes {
        if let Operation::CreateNetwork(spec) = &change.operation {
            engine.create_network(spec).await.map_err(|error| {
                fail(format!("creating network {}", change.name), error, &applied)
            })?;
            reporter.report(Progress::Created {
                resource: Resource::Network,
                name: &change.name,
            });
            applied.written.push(change.name.clone());
        }
    }

    // 3. Services the files no longer have (--prune) go first: they may hold published ports
    // that new services need, as with `docker stack deploy --prune`.
    for change in &input.plan.changes {
        if let Operation::DeleteService { id } = &change.operation {
            match engine.remove_service(id).await {
                Ok(()) | Err(EngineError::NotFound(_)) => {}
                Err(error) => {
                    return Err(fail(
                        format!("removing service {}", change.name),
                        error,
                        &applied,
                    ))
                }
            }
            reporter.report(Progress::Deleted {
                resource: Resource::Service,
                name: &change.name,
            });
            applied.deleted.push(change.name.clone());
        }
    }

    // 4. Services, concurrently.
    let writes: Vec<_> = input
        .plan
        .changes
        .iter()
        .filter(|change| {
            matches!(
                change.operation,
                Operation::CreateService(_) | Operation::UpdateService { .. }
            )
        })
        .collect();
    let ids = &ids;
    let written = stream::iter(writes.into_iter().map(|change| async move {
        match &change.operation {
            Operation::CreateService(spec) => {
                let spec = with_object_ids(spec, ids);
                let id = engine
                    .create_service(&spec)
                    .await
                    .map_err(|error| (format!("creating service {}", change.name), error))?;
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
                let spec = with_object_ids(spec, ids);
                update_service_in_sequence(engine, id, *version, spec)
                    .await
                    .map_err(|error| (format!("updating service {}", change.name), error))?;
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
    }))
    .buffer_unordered(CONCURRENT_WRITES)
    .collect::<Vec<Result<Watched, (String, EngineError)>>>()
    .await;
    let mut watched = Vec::new();
    let mut first_error = None;
    for result in written {
        match result {
            Ok(service) => {
                applied.written.push(service.name.clone());
                watched.push(service);
            }
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    if let Some((during, error)) = first_error {
        return Err(fail(during, error, &applied));
    }

    // Networks the files no longer have (--prune): in use until removed services' tasks stop.
    for change in &input.plan.changes {
        if let Operation::DeleteNetwork { id } = &change.operation {
            remove_network_when_free(engine, id, options.timeout)
                .await
                .map_err(|error| {
                    fail(format!("removing network {}", change.name), error, &applied)
                })?;
            reporter.report(Progress::Deleted {
                resource: Resource::Network,
                name: &change.name,
            });
            applied.deleted.push(change.name.clone());
        }
    }

    if options.detach {
        return Ok(applied);
    }
    // Services this run did not write whose earlier rolling update is still going.
    watched.extend(input.plan.unsettled.iter().map(|(id, name)| Watched {
        id: id.clone(),
        name: name.clone(),
        replaces_tasks: true,
    }));

    kill_point(options, "during-rollout");

    // 4. Wait for every written service together.
    let failures =
        rollout::wait_for_rollouts(engine, &watched, options.timeout, options.poll, reporter)
            .await
            .map_err(|error| fail("waiting for services to converge".into(), error, &applied))?;
    if !failures.is_empty() {
        return Err(ApplyError::Rollout(failures));
    }

    // 5. Delete what the plan said may go, if it still may now that services converged.
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
        return Ok(applied);
    }
    let observed = observe::observe(engine, input.namespace)
        .await
        .map_err(|error| fail("reading the swarm before pruning".into(), error, &applied))?;
    let services: Vec<(Spec, Option<Spec>)> = observed
        .services
        .iter()
        .map(|s| (s.spec.clone(), s.previous_spec.clone()))
        .collect();
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
            let name = &candidate.object.name;
            match engine.remove_object(kind, &candidate.object.id).await {
                Ok(()) => {
                    reporter.report(Progress::Deleted {
                        resource: Resource::of(kind),
                        name,
                    });
                    applied.deleted.push(name.clone());
                    kill_point(options, "during-prune");
                }
                Err(EngineError::Conflict(reason)) => {
                    reporter.report(Progress::KeptInUse {
                        resource: Resource::of(kind),
                        name,
                        reason: &reason,
                    });
                }
                Err(EngineError::NotFound(_)) => {}
                Err(error) => {
                    return Err(fail(
                        format!("deleting {} {name}", kind.noun()),
                        error,
                        &applied,
                    ))
                }
            }
        }
    }
    Ok(applied)
}

/// Removes a network, retrying while the tasks of removed services still use it.
async fn remove_network_when_free<E: Engine>(
    engine: &E,
    id: &str,
    timeout: Duration,
) -> Result<(), EngineError> {
    let started = std::time::Instant::now();
    loop {
        match engine.remove_network(id).await {
            Ok(()) | Err(EngineError::NotFound(_)) => return Ok(()),
            Err(EngineError::Conflict(_)) if started.elapsed() < timeout => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// The spec with the IDs of versions created in this run filled into its references.
fn with_object_ids(spec: &Spec, ids: &HashMap<(ObjectKind, String), String>) -> Spec {
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
            let name = reference[name_key].as_str().unwrap_or_default().to_string();
            if reference[id_key].as_str().is_none_or(str::is_empty) {
                if let Some(id) = ids.get(&(kind, name)) {
                    reference[id_key] = Value::from(id.clone());
                }
            }
        }
    }
    // A credential spec read from a config names that config's ID, as the runtime config
    // reference docker/cli adds for it does.
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
    spec
}
