//! `stackroll rollback`: every service of a stack that has a previous spec (Swarm's
//! `PreviousSpec`, the spec before its last update) is updated back to it, with the secret and
//! config versions that spec references (they exist as long as `--keep` kept them), under the
//! stack's deploy lock; then the rollout is waited for with `deploy`'s judgement. A plan of it
//! ([`plan_rollback`]) names each service and what changes, and refuses when there is nothing to
//! return to or a version the previous spec needs is gone.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use crate::apply::lock::{self, Guarded, LockError, LockTiming};
use crate::apply::rollout::{wait_for_rollouts, RolloutFailure, Watched};
use crate::apply::ApplyOptions;
use crate::engine::{Engine, EngineError, ServiceState, Spec};
use crate::model::ObjectKind;
use crate::progress::{Progress, Reporter};
use crate::swarm::namespace::Namespace;

/// One service going back to its previous spec.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceRollback {
    /// Service name.
    pub service: String,
    /// What changes, e.g. `image a -> b`, `secret demo_db_v2 -> demo_db_v1`.
    pub changes: Vec<String>,
    /// Service ID.
    #[serde(skip)]
    pub id: String,
    /// Version.Index the plan was made at.
    #[serde(skip)]
    pub version: u64,
    /// The spec it returns to.
    #[serde(skip)]
    pub previous: Spec,
}

/// What `stackroll rollback` does (or, with `--dry-run`, would do).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RollbackPlan {
    /// The stack.
    pub stack: String,
    /// The services that go back.
    pub services: Vec<ServiceRollback>,
    /// Services left as they are: no previous spec, or it equals the current one.
    pub unchanged: Vec<String>,
}

/// Why a rollback was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    /// An engine call failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The deploy lock could not be taken, or was lost.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// No service has a previous spec to return to.
    #[error("stack {stack} has no previous state to roll back to: {reason}")]
    NothingToRollBack {
        /// The stack.
        stack: String,
        /// Why, in words.
        reason: String,
    },
    /// A previous spec references versions that no longer exist.
    #[error("cannot roll back {service}: its previous spec uses {}, which no longer exist", missing.join(", "))]
    MissingVersions {
        /// The service.
        service: String,
        /// The secrets and configs that are gone.
        missing: Vec<String>,
    },
    /// Services did not converge on their previous spec.
    #[error("the rollback did not converge: {}", crate::apply::rollout::describe_failures(.0))]
    Rollout(Vec<RolloutFailure>),
}

/// Plans the rollback: each service with a previous spec that differs from its spec goes back;
/// refused when none does, or when a version a previous spec needs was pruned.
pub async fn plan_rollback<E: Engine>(
    engine: &E,
    namespace: &Namespace,
) -> Result<RollbackPlan, RollbackError> {
    let label = namespace.label_filter();
    let (services, secrets, configs) = futures_util::try_join!(
        engine.list_services(Some(&label)),
        engine.list_objects(ObjectKind::Secret, None),
        engine.list_objects(ObjectKind::Config, None),
    )?;
    let existing: BTreeSet<&str> = secrets
        .iter()
        .chain(configs.iter())
        .map(|object| object.id.as_str())
        .collect();
    let mut plan = RollbackPlan {
        stack: namespace.0.clone(),
        services: Vec::new(),
        unchanged: Vec::new(),
    };
    for service in &services {
        match service.previous_spec.as_ref() {
            Some(previous) if *previous != service.spec => {
                let missing = missing_versions(previous, &existing);
                if !missing.is_empty() {
                    return Err(RollbackError::MissingVersions {
                        service: service.name.clone(),
                        missing,
                    });
                }
                plan.services.push(service_rollback(service, previous));
            }
            _ => plan.unchanged.push(service.name.clone()),
        }
    }
    if plan.services.is_empty() {
        let reason = if services.is_empty() {
            "it has no services".to_string()
        } else {
            "no service has a previous spec (Swarm keeps one per service, from before its last update)".to_string()
        };
        return Err(RollbackError::NothingToRollBack {
            stack: namespace.0.clone(),
            reason,
        });
    }
    Ok(plan)
}

/// The secrets and configs `spec` references whose IDs are not in `existing`, by name.
fn missing_versions(spec: &Spec, existing: &BTreeSet<&str>) -> Vec<String> {
    let mut missing = Vec::new();
    for (list, id_key, name_key, noun) in [
        ("Secrets", "SecretID", "SecretName", "secret"),
        ("Configs", "ConfigID", "ConfigName", "config"),
    ] {
        for reference in references(spec, list) {
            let id = reference.get(id_key).and_then(Value::as_str).unwrap_or("");
            if !existing.contains(id) {
                let name = reference
                    .get(name_key)
                    .and_then(Value::as_str)
                    .unwrap_or(id);
                missing.push(format!("{noun} {name}"));
            }
        }
    }
    missing
}

/// The entries of `/TaskTemplate/ContainerSpec/<list>`.
fn references<'s>(spec: &'s Spec, list: &str) -> &'s [Value] {
    spec.pointer(&format!("/TaskTemplate/ContainerSpec/{list}"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// One service's rollback, with what changes in words.
fn service_rollback(service: &ServiceState, previous: &Spec) -> ServiceRollback {
    let current = &service.spec;
    let mut changes = Vec::new();
    let image = |spec: &Spec| {
        spec.pointer("/TaskTemplate/ContainerSpec/Image")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    if image(current) != image(previous) {
        changes.push(format!("image {} -> {}", image(current), image(previous)));
    }
    for (list, name_key, noun) in [
        ("Secrets", "SecretName", "secret"),
        ("Configs", "ConfigName", "config"),
    ] {
        let names = |spec: &Spec| -> BTreeSet<String> {
            references(spec, list)
                .iter()
                .filter_map(|r| r.get(name_key).and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        };
        let (now, before) = (names(current), names(previous));
        for gone in now.difference(&before) {
            changes.push(format!("{noun} {gone} removed"));
        }
        for back in before.difference(&now) {
            changes.push(format!("{noun} {back} back"));
        }
    }
    if changes.is_empty() || !same_besides_image_and_references(current, previous) {
        changes.push("other settings back to the previous spec".to_string());
    }
    ServiceRollback {
        service: service.name.clone(),
        changes,
        id: service.id.clone(),
        version: service.version,
        previous: previous.clone(),
    }
}

/// Whether the two specs are equal once image, secrets and configs are left out.
fn same_besides_image_and_references(a: &Spec, b: &Spec) -> bool {
    let strip = |spec: &Spec| {
        let mut spec = spec.clone();
        if let Some(container) = spec
            .pointer_mut("/TaskTemplate/ContainerSpec")
            .and_then(Value::as_object_mut)
        {
            for key in ["Image", "Secrets", "Configs"] {
                container.remove(key);
            }
        }
        spec
    };
    strip(a) == strip(b)
}

/// Takes the deploy lock, plans the rollback again under it, updates each service back to its
/// previous spec (each write checked against the lock), and waits for them with `options`.
pub async fn rollback_stack<E: Engine>(
    engine: &E,
    namespace: &Namespace,
    options: &ApplyOptions,
    lock_timing: &LockTiming,
    reporter: &dyn Reporter,
) -> Result<RollbackPlan, RollbackError> {
    let lock = lock::acquire(engine, namespace, lock_timing, reporter).await?;
    let guarded = Guarded::new(engine, &lock);
    let result = tokio::select! {
        done = roll_back_locked(&guarded, namespace, options, reporter) => match done {
            Err(RollbackError::Engine(_)) if guarded.lost() => Err(guarded.lost_error().into()),
            other => other,
        },
        lost = lock.keep_alive(engine) => Err(lost.into()),
    };
    if let Err(error) = lock.release(engine).await {
        reporter.report(Progress::LockNotReleased {
            stack: &namespace.0,
            error: &error.to_string(),
        });
    }
    result
}

/// The rollback once the lock is held.
async fn roll_back_locked<E: Engine>(
    engine: &E,
    namespace: &Namespace,
    options: &ApplyOptions,
    reporter: &dyn Reporter,
) -> Result<RollbackPlan, RollbackError> {
    let plan = plan_rollback(engine, namespace).await?;
    let mut watched = Vec::new();
    for service in &plan.services {
        engine
            .update_service(&service.id, service.version, &service.previous)
            .await?;
        watched.push(Watched {
            id: service.id.clone(),
            name: service.service.clone(),
            replaces_tasks: true,
        });
    }
    let failures = wait_for_rollouts(engine, &watched, options, reporter).await?;
    if !failures.is_empty() {
        return Err(RollbackError::Rollout(failures));
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::engine::fake::FakeEngine;
    use crate::swarm::labels::STACK_NAMESPACE_LABEL;

    /// A service spec of stack `demo` using secret version `name` (ID `id`).
    fn spec(image: &str, id: &str, name: &str) -> Spec {
        json!({
            "Name": "demo_app",
            "Labels": {STACK_NAMESPACE_LABEL: "demo"},
            "TaskTemplate": {"ContainerSpec": {
                "Image": image,
                "Secrets": [{"SecretID": id, "SecretName": name, "File": {"Name": "db"}}],
            }},
        })
    }

    fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn a_rollback_plan_names_what_goes_back_and_needs_a_previous_spec() {
        let engine = FakeEngine::new();
        let namespace = Namespace("demo".into());
        let v1 = engine.insert_object(ObjectKind::Secret, "demo_db_v1", &[]);
        let v2 = engine.insert_object(ObjectKind::Secret, "demo_db_v2", &[]);
        let id = engine
            .insert_service(&spec("app:1", &v1, "demo_db_v1"))
            .unwrap();
        let refused = block_on(plan_rollback(&engine, &namespace));
        assert!(
            matches!(refused, Err(RollbackError::NothingToRollBack { .. })),
            "{refused:?}"
        );

        let version = engine.services()[0].version;
        block_on(engine.update_service(&id, version, &spec("app:2", &v2, "demo_db_v2"))).unwrap();
        let plan = block_on(plan_rollback(&engine, &namespace)).unwrap();
        assert_eq!(plan.services.len(), 1);
        assert_eq!(
            plan.services[0].changes,
            vec![
                "image app:2 -> app:1".to_string(),
                "secret demo_db_v2 removed".to_string(),
                "secret demo_db_v1 back".to_string(),
            ]
        );
        assert_eq!(
            Some(&plan.services[0].previous),
            engine.services()[0].previous_spec.as_ref()
        );
    }

    #[test]
    fn a_rollback_to_a_version_that_is_gone_is_refused_naming_it() {
        let engine = FakeEngine::new();
        let namespace = Namespace("demo".into());
        let v1 = engine.insert_object(ObjectKind::Secret, "demo_db_v1", &[]);
        let v2 = engine.insert_object(ObjectKind::Secret, "demo_db_v2", &[]);
        let id = engine
            .insert_service(&spec("app:1", &v1, "demo_db_v1"))
            .unwrap();
        let version = engine.services()[0].version;
        block_on(engine.update_service(&id, version, &spec("app:1", &v2, "demo_db_v2"))).unwrap();
        block_on(engine.remove_object(ObjectKind::Secret, &v1)).unwrap();
        let refused = block_on(plan_rollback(&engine, &namespace)).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "cannot roll back demo_app: its previous spec uses secret demo_db_v1, which no longer exist"
        );
    }
}
