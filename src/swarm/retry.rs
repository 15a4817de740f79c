//! The retries every writer shares: removing an object while the tasks of removed services
//! still use it (the engine answers "in use" until they stop), and updating a service that
//! another writer updated since it was read ("update out of sequence").

use std::future::Future;
use std::time::{Duration, Instant};

use crate::engine::{Engine, EngineError, Spec};

/// How long to wait before asking again while an object is in use.
const IN_USE_POLL: Duration = Duration::from_millis(250);

/// How many times a service update is retried after "update out of sequence".
const SEQUENCE_RETRIES: usize = 3;

/// Runs a removal until it succeeds or finds the object gone, trying again while the engine
/// says the object is in use (a conflict) and `budget` has not passed.
pub async fn remove_when_free<F, Fut>(budget: Duration, mut remove: F) -> Result<(), EngineError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), EngineError>>,
{
    let started = Instant::now();
    loop {
        match remove().await {
            Ok(()) | Err(EngineError::NotFound(_)) => return Ok(()),
            Err(EngineError::Conflict(_)) if started.elapsed() < budget => {
                tokio::time::sleep(IN_USE_POLL).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Updates a service with the Version.Index it was read at. When another writer got there
/// first ("update out of sequence"), reads it again: if `already_written(spec, live)` says
/// the live spec already is the desired one nothing is written, otherwise the update is sent
/// again with the new index (a few times). `already_written` may adjust `spec` to the live
/// one first (as for fields a writer must carry over).
pub async fn update_in_sequence<E: Engine>(
    engine: &E,
    id: &str,
    mut version: u64,
    mut spec: Spec,
    already_written: impl Fn(&mut Spec, &Spec) -> bool,
) -> Result<(), EngineError> {
    let mut attempt = 0;
    loop {
        match engine.update_service(id, version, &spec).await {
            Err(EngineError::OutOfSequence(_)) if attempt < SEQUENCE_RETRIES => {
                attempt += 1;
                tracing::info!(
                    service = id,
                    attempt,
                    "update out of sequence; reading the service again"
                );
                let live = engine.inspect_service(id).await?;
                if already_written(&mut spec, &live.spec) {
                    return Ok(());
                }
                version = live.version;
            }
            other => return other,
        }
    }
}
