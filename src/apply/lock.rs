//! The deploy lock: a config named `<stack>_stackroll-lock` that the engine refuses to create
//! twice, so two deploys of one stack never plan or write at the same time. It records who
//! holds it and until when; a lock past its expiry (its holder died) is taken over, and
//! `stackroll unlock` removes one by hand. The lock carries no stack label, so `docker stack`
//! commands and pruning never touch it. A lock whose holder was a process on this host that no
//! longer exists (a deploy killed with SIGKILL) is taken over at once.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use indexmap::IndexMap;

use crate::engine::{Engine, EngineError, NewObject};
use crate::model::{ObjectKind, SensitiveBytes};
use crate::swarm::labels::{EXPIRES_LABEL, HOLDER_LABEL, SINCE_LABEL};
use crate::swarm::namespace::Namespace;

use super::{Progress, Reporter};

/// The lock's name for a stack.
pub fn lock_name(namespace: &Namespace) -> String {
    namespace.scope("stackroll-lock")
}

/// How long a lock lives and how long to wait for one.
#[derive(Debug, Clone, Copy)]
pub struct LockTiming {
    /// How long the lock stays valid if this process dies without giving it back.
    pub ttl: Duration,
    /// How long to wait for another holder to give it back.
    pub wait: Duration,
    /// How often to try again while waiting.
    pub poll: Duration,
}

/// A lock this process holds.
#[derive(Debug)]
pub struct Lock {
    id: String,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another deploy holds it.
    #[error("another deploy of stack {stack} holds the lock: {holder}, since {since} (seconds since 1970); nothing was done")]
    Held {
        /// The stack.
        stack: String,
        /// Who.
        holder: String,
        /// Since when (seconds since the epoch).
        since: u64,
    },
    /// The engine failed.
    #[error(transparent)]
    Engine(EngineError),
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Who this process is, for the holder label.
pub fn holder() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    format!("{user}@{host} pid {}", std::process::id())
}

/// Whether `holder` (as [`holder`] writes it) names a process on this host that no longer
/// exists. A holder on another host, or one that cannot be read, is never judged dead.
fn holder_is_dead_here(holder: &str) -> bool {
    let Some((who, pid)) = holder.rsplit_once(" pid ") else {
        return false;
    };
    let Ok(pid) = pid.trim().parse::<i32>() else {
        return false;
    };
    let this = self::holder();
    let host_of = |text: &str| {
        text.split(" pid ")
            .next()
            .and_then(|w| w.split_once('@'))
            .map(|(_, h)| h.to_string())
    };
    if pid <= 0 || host_of(who) != host_of(&this) || pid == std::process::id() as i32 {
        return false;
    }
    // SAFETY: kill(2) with signal 0 only checks whether the process exists.
    let result = unsafe { libc::kill(pid, 0) };
    result != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// Takes the lock, waiting up to `wait` for another holder; a lock past its expiry is taken
/// over (and `reporter` told). `ttl` is how long this lock stays valid if this process dies.
pub async fn acquire<E: Engine>(
    engine: &E,
    namespace: &Namespace,
    timing: &LockTiming,
    reporter: &dyn Reporter,
) -> Result<Lock, LockError> {
    let name = lock_name(namespace);
    let started = std::time::Instant::now();
    loop {
        let since = now();
        let mut labels = IndexMap::new();
        labels.insert(HOLDER_LABEL.to_string(), holder());
        labels.insert(SINCE_LABEL.to_string(), since.to_string());
        labels.insert(
            EXPIRES_LABEL.to_string(),
            (since + timing.ttl.as_secs()).to_string(),
        );
        let object = NewObject {
            kind: ObjectKind::Config,
            name: name.clone(),
            labels,
            data: SensitiveBytes::new(b"stackroll deploy lock".to_vec()),
            driver: None,
            driver_opts: IndexMap::new(),
            template_driver: None,
        };
        match engine.create_object(&object).await {
            Ok(id) => return Ok(Lock { id }),
            Err(EngineError::Conflict(_)) => {}
            Err(error) => return Err(LockError::Engine(error)),
        }
        let existing = engine
            .list_objects(ObjectKind::Config, None)
            .await
            .map_err(LockError::Engine)?
            .into_iter()
            .find(|object| object.name == name);
        let Some(existing) = existing else { continue };
        let label = |key: &str| existing.labels.get(key).cloned().unwrap_or_default();
        let expires: u64 = label(EXPIRES_LABEL).parse().unwrap_or(0);
        let dead = holder_is_dead_here(&label(HOLDER_LABEL));
        if expires <= now() || dead {
            let why = if dead {
                "its process on this host is gone"
            } else {
                "it expired"
            };
            tracing::warn!(holder = %label(HOLDER_LABEL), "taking over the deploy lock: {why}");
            reporter.report(Progress::LockTakenOver {
                holder: &label(HOLDER_LABEL),
                why,
            });
            match engine.remove_object(ObjectKind::Config, &existing.id).await {
                Ok(()) | Err(EngineError::NotFound(_)) => continue,
                Err(error) => return Err(LockError::Engine(error)),
            }
        }
        if started.elapsed() >= timing.wait {
            return Err(LockError::Held {
                stack: namespace.0.clone(),
                holder: label(HOLDER_LABEL),
                since: label(SINCE_LABEL).parse().unwrap_or(0),
            });
        }
        tokio::time::sleep(timing.poll).await;
    }
}

impl Lock {
    /// Gives the lock back.
    pub async fn release<E: Engine>(self, engine: &E) -> Result<(), EngineError> {
        match engine.remove_object(ObjectKind::Config, &self.id).await {
            Ok(()) | Err(EngineError::NotFound(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }
}

/// Removes a stack's lock whoever holds it; returns whether there was one.
pub async fn force_unlock<E: Engine>(
    engine: &E,
    namespace: &Namespace,
) -> Result<Option<String>, EngineError> {
    let name = lock_name(namespace);
    let existing = engine
        .list_objects(ObjectKind::Config, None)
        .await?
        .into_iter()
        .find(|o| o.name == name);
    match existing {
        Some(lock) => {
            engine.remove_object(ObjectKind::Config, &lock.id).await?;
            Ok(Some(
                lock.labels.get(HOLDER_LABEL).cloned().unwrap_or_default(),
            ))
        }
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fake::FakeEngine;
    use crate::progress::Recorder;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// Lives 10 minutes; waits `wait`, trying every `poll`.
    fn timing(wait: Duration, poll: Duration) -> LockTiming {
        LockTiming {
            ttl: Duration::from_secs(600),
            wait,
            poll,
        }
    }

    /// Takes the lock without waiting (it must be free or takeable).
    async fn take_at_once(engine: &FakeEngine, ns: &Namespace) -> Lock {
        let timing = timing(Duration::ZERO, Duration::from_millis(1));
        acquire(engine, ns, &timing, &Recorder::default())
            .await
            .unwrap()
    }

    #[test]
    fn a_second_holder_waits_then_fails_naming_the_first() {
        let engine = FakeEngine::new();
        let ns = Namespace("demo".into());
        runtime().block_on(async {
            let first = take_at_once(&engine, &ns).await;
            let timing = timing(Duration::from_millis(20), Duration::from_millis(5));
            match acquire(&engine, &ns, &timing, &Recorder::default()).await {
                Err(LockError::Held { holder, .. }) => {
                    assert!(holder.contains(&format!("pid {}", std::process::id())))
                }
                other => panic!("expected the lock to be held, got {other:?}"),
            }
            first.release(&engine).await.unwrap();
            let again = take_at_once(&engine, &ns).await;
            again.release(&engine).await.unwrap();
        });
    }

    #[test]
    fn a_lock_of_a_dead_process_on_this_host_is_taken_over() {
        let engine = FakeEngine::new();
        let ns = Namespace("demo".into());
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();
        let here = holder();
        let (who, _) = here.rsplit_once(" pid ").unwrap();
        let dead = format!("{who} pid {dead_pid}");
        assert!(holder_is_dead_here(&dead));
        assert!(!holder_is_dead_here(&here), "this process is alive");
        assert!(
            !holder_is_dead_here(&format!("x@elsewhere pid {dead_pid}")),
            "other hosts are never judged"
        );
        engine.insert_object(
            ObjectKind::Config,
            "demo_stackroll-lock",
            &[(HOLDER_LABEL, &dead), (EXPIRES_LABEL, "99999999999")],
        );
        runtime().block_on(async {
            let lock = take_at_once(&engine, &ns).await;
            lock.release(&engine).await.unwrap();
        });
    }

    #[test]
    fn an_expired_lock_is_taken_over_and_unlock_removes_one() {
        let engine = FakeEngine::new();
        let ns = Namespace("demo".into());
        engine.insert_object(
            ObjectKind::Config,
            "demo_stackroll-lock",
            &[(HOLDER_LABEL, "dead@host pid 1"), (EXPIRES_LABEL, "1")],
        );
        runtime().block_on(async {
            let lock = take_at_once(&engine, &ns).await;
            drop(lock);
            assert!(force_unlock(&engine, &ns).await.unwrap().is_some());
            assert!(force_unlock(&engine, &ns).await.unwrap().is_none());
        });
    }

    #[test]
    fn taking_over_a_lock_is_reported() {
        let engine = FakeEngine::new();
        let ns = Namespace("demo".into());
        engine.insert_object(
            ObjectKind::Config,
            "demo_stackroll-lock",
            &[
                (HOLDER_LABEL, "ghost@elsewhere pid 7"),
                (EXPIRES_LABEL, "1"),
            ],
        );
        let recorder = Recorder::default();
        let timing = timing(Duration::ZERO, Duration::from_millis(1));
        runtime().block_on(async {
            let lock = acquire(&engine, &ns, &timing, &recorder).await.unwrap();
            lock.release(&engine).await.unwrap();
        });
        assert_eq!(
            recorder.lines(),
            vec!["warning: taking over the deploy lock held by ghost@elsewhere pid 7: it expired"]
        );
    }
}
