//! The retries every writer shares: removing an object while the tasks of removed services
//! still use it (the engine answers "in use" until they stop), and updating a service that
//! another writer updated since it was read ("update out of sequence"); and the one readers
//! share: riding out a raft election ([`read_through_election`]).

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

/// How long a read keeps trying while the manager cannot be reached at all: long enough for a
/// hiccup, short enough that a lost manager is reported promptly (its deploy is run again
/// against another manager).
pub const UNREACHABLE_GRACE: Duration = Duration::from_secs(10);

/// How long to wait before reading again after a transient failure.
const ELECTION_POLL: Duration = Duration::from_millis(500);

/// Whether a failed read may succeed if asked again: a server error (5xx: the manager has no
/// raft leader, "rpc error: code = DeadlineExceeded" while one is elected, "Unavailable") or
/// a transport failure.
pub fn is_transient(error: &EngineError) -> bool {
    match error {
        EngineError::Api { status, .. } => *status >= 500,
        EngineError::Unreachable { .. } => true,
        _ => false,
    }
}

/// Runs a read until it succeeds, trying again while it fails transiently ([`is_transient`]):
/// server errors for up to `budget` (a raft election can take tens of seconds on a busy
/// swarm), an unreachable manager for at most [`UNREACHABLE_GRACE`] in a row. Only for reads:
/// asking again changes nothing.
pub async fn read_through_election<T, F, Fut>(
    budget: Duration,
    mut read: F,
) -> Result<T, EngineError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, EngineError>>,
{
    use tokio::time::Instant;
    let deadline = Instant::now() + budget;
    let mut unreachable_since: Option<Instant> = None;
    loop {
        let error = match read().await {
            Ok(value) => return Ok(value),
            Err(error) if is_transient(&error) => error,
            Err(error) => return Err(error),
        };
        let now = Instant::now();
        let unreachable = matches!(error, EngineError::Unreachable { .. });
        let since = if unreachable {
            *unreachable_since.get_or_insert(now)
        } else {
            unreachable_since = None;
            now
        };
        if now >= deadline || (unreachable && now.duration_since(since) >= UNREACHABLE_GRACE) {
            return Err(error);
        }
        tracing::info!(%error, "the swarm did not answer; asking again (an election may be under way)");
        tokio::time::sleep(ELECTION_POLL.min(deadline - now)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn server_error() -> EngineError {
        EngineError::Api {
            status: 500,
            message: "rpc error: code = DeadlineExceeded desc = context deadline exceeded".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_rides_out_server_errors_until_it_answers() {
        let calls = Cell::new(0);
        let answer = read_through_election(Duration::from_secs(60), || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n < 40 {
                    Err(server_error())
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(answer, Ok(40), "20 s of DeadlineExceeded is ridden out");
    }

    #[tokio::test(start_paused = true)]
    async fn server_errors_end_at_the_deadline_and_refusals_at_once() {
        let deadline = Duration::from_secs(5);
        let started = tokio::time::Instant::now();
        let answer: Result<(), _> =
            read_through_election(deadline, || async { Err(server_error()) }).await;
        assert_eq!(answer, Err(server_error()));
        assert!(started.elapsed() >= Duration::from_secs(5));
        let calls = Cell::new(0);
        let refused: Result<(), _> = read_through_election(deadline, || {
            calls.set(calls.get() + 1);
            async { Err(EngineError::NotFound("service x".into())) }
        })
        .await;
        assert!(refused.is_err());
        assert_eq!(calls.get(), 1, "a 404 is not asked again");
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_manager_is_given_up_after_the_grace() {
        let deadline = Duration::from_secs(600);
        let started = tokio::time::Instant::now();
        let answer: Result<(), _> = read_through_election(deadline, || async {
            Err(EngineError::Unreachable {
                endpoint: "unix:///gone.sock".into(),
                message: "connection refused".into(),
            })
        })
        .await;
        assert!(matches!(answer, Err(EngineError::Unreachable { .. })));
        let waited = started.elapsed();
        assert!(
            waited >= UNREACHABLE_GRACE && waited < UNREACHABLE_GRACE + Duration::from_secs(1),
            "{waited:?}"
        );
    }
}
