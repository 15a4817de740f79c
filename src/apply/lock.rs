//! The deploy lock: a config named `<stack>_stackroll-lock` that the engine refuses to create
//! twice, so two deploys (or a deploy and an `rm`) of one stack never plan or write at the same
//! time. The lock carries no stack label, so `docker stack` commands and pruning never touch it.
//!
//! - **Holder.** A lock records who holds it twice: readably (`user@host pid N`, shown in
//!   messages) and precisely ([`Identity`]: hostname, machine ID, boot ID, PID-namespace inode,
//!   pid and process start time). A holder is judged dead only when its machine, boot and PID
//!   namespace are this process's and its process is gone or started at another time (a
//!   deploy killed with SIGKILL): its lock is taken over at once. A lock whose holder cannot be
//!   identified this way (another machine or container, an older stackroll) is never judged
//!   dead: only the end of its lease or `stackroll unlock` frees it.
//! - **Lease.** A lock is valid for its lease (`io.stackroll.lock.lease`, seconds) counted
//!   from its last change on the engine's clock (the config's UpdatedAt against the engine's
//!   SystemTime), so local clocks never matter. The holder renews it ([`Lock::keep_alive`],
//!   every third of the lease) by relabelling the config, and checks before every destructive
//!   step that the lock is still its own ([`Guarded`]): a lock removed by `stackroll unlock`
//!   or taken over after a lapsed lease stops the deploy's writes with [`LockError::Lost`].
//!   Each lock is one config ID: a lock taken over is a new config, so relabelling or removing
//!   by ID never touches another holder's lock.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indexmap::IndexMap;

use crate::engine::{
    Engine, EngineError, EngineInfo, EventStream, ExecOutcome, ExecRequest, NetworkState,
    NewObject, NodeState, ServiceState, Spec, SwarmObject, TaskState,
};
use crate::model::{ObjectKind, SensitiveBytes};
use crate::swarm::labels::{EXPIRES_LABEL, HOLDER_LABEL, IDENTITY_LABEL, LEASE_LABEL, SINCE_LABEL};
use crate::swarm::namespace::Namespace;

use super::{Progress, Reporter};

/// The lease of a deploy's lock: renewed every third of it while the deploy works.
pub const LEASE: Duration = Duration::from_secs(60);

/// The lock's name for a stack.
pub fn lock_name(namespace: &Namespace) -> String {
    namespace.scope("stackroll-lock")
}

/// How long a lock lives and how long to wait for one.
#[derive(Debug, Clone, Copy)]
pub struct LockTiming {
    /// The lease: how long the lock stays valid after its last renewal.
    pub ttl: Duration,
    /// How long to wait for another holder to give it back.
    pub wait: Duration,
    /// How often to try again while waiting.
    pub poll: Duration,
    /// Whether a lock whose identity is exactly this process's is this caller's own, taken
    /// again as it is: true only for a deploy that went on with another manager after losing
    /// the one it talked to, which may have created the lock without answering.
    pub reclaim_own: bool,
}

impl LockTiming {
    /// The standard lease, waiting up to `wait` and trying every `poll`.
    pub fn waiting(wait: Duration, poll: Duration) -> LockTiming {
        LockTiming {
            ttl: LEASE,
            wait,
            poll,
            reclaim_own: false,
        }
    }
}

/// Why the lock could not be taken, or was lost.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another deploy holds it.
    #[error("another deploy of stack {stack} holds the lock: {holder}, taken at {since} (engine time); nothing was done")]
    Held {
        /// The stack.
        stack: String,
        /// Who, readably.
        holder: String,
        /// When it was taken (RFC 3339, engine time).
        since: String,
    },
    /// The lock this process held is gone (removed by `stackroll unlock`, or taken over after
    /// its lease lapsed): the deploy stopped writing.
    #[error("the deploy lock of stack {stack} is no longer held by this deploy (removed by `stackroll unlock`, or taken over after its lease lapsed); stopped writing{}", written_note(.written))]
    Lost {
        /// The stack.
        stack: String,
        /// What was written before the deploy stopped.
        written: Vec<String>,
    },
    /// The engine failed.
    #[error(transparent)]
    Engine(EngineError),
}

/// `; already written: a, b` or `; nothing was written`.
pub fn written_note(written: &[String]) -> String {
    if written.is_empty() {
        "; nothing was written".to_string()
    } else {
        format!("; already written: {}", written.join(", "))
    }
}

fn local_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Who a process is, precisely enough to tell whether it still runs: the label
/// `host=H machine=M boot=B pidns=N pid=P start=S`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// gethostname().
    pub host: String,
    /// /etc/machine-id (empty when unreadable).
    pub machine: String,
    /// /proc/sys/kernel/random/boot_id.
    pub boot: String,
    /// The inode of /proc/self/ns/pid (`pid:[N]`).
    pub pid_namespace: String,
    /// The process ID in that namespace.
    pub pid: u32,
    /// The process's start time, clock ticks after boot (/proc/PID/stat field 22).
    pub start: u64,
}

impl Identity {
    /// This process's identity, or `None` when part of it cannot be read (no /proc): such a
    /// process writes no identity label and judges no other holder dead.
    pub fn current() -> Option<Identity> {
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .ok()
                .map(|t| t.trim().to_string())
        };
        let pid = std::process::id();
        let identity = Identity {
            host: hostname()?,
            machine: read("/etc/machine-id").unwrap_or_default(),
            boot: read("/proc/sys/kernel/random/boot_id")?,
            pid_namespace: std::fs::read_link("/proc/self/ns/pid")
                .ok()?
                .to_string_lossy()
                .into_owned(),
            pid,
            start: start_time(pid)?,
        };
        let complete = [&identity.host, &identity.boot, &identity.pid_namespace]
            .iter()
            .all(|part| !part.is_empty() && !part.contains(char::is_whitespace));
        complete.then_some(identity)
    }

    /// The label text.
    pub fn label(&self) -> String {
        format!(
            "host={} machine={} boot={} pidns={} pid={} start={}",
            self.host, self.machine, self.boot, self.pid_namespace, self.pid, self.start
        )
    }

    /// Reads a label written by [`Identity::label`]; `None` for anything else.
    pub fn parse(label: &str) -> Option<Identity> {
        let fields: IndexMap<&str, &str> = label
            .split_whitespace()
            .filter_map(|field| field.split_once('='))
            .collect();
        let get = |key: &str| fields.get(key).map(|value| value.to_string());
        Some(Identity {
            host: get("host").filter(|h| !h.is_empty())?,
            machine: get("machine")?,
            boot: get("boot").filter(|b| !b.is_empty())?,
            pid_namespace: get("pidns").filter(|n| !n.is_empty())?,
            pid: get("pid")?.parse().ok().filter(|pid| *pid > 0)?,
            start: get("start")?.parse().ok()?,
        })
    }

    /// Whether the holder `self` names is certainly gone, judged by `here` (this process):
    /// same host, machine, boot and PID namespace, and no process with that pid, or one that
    /// started at another time.
    pub fn is_dead_seen_from(&self, here: &Identity) -> bool {
        let same_place = self.host == here.host
            && self.machine == here.machine
            && self.boot == here.boot
            && self.pid_namespace == here.pid_namespace;
        if !same_place || self == here {
            return false;
        }
        match std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) {
            Ok(stat) => stat_start_time(&stat) != Some(self.start),
            Err(error) => error.kind() == std::io::ErrorKind::NotFound,
        }
    }
}

/// gethostname(2).
fn hostname() -> Option<String> {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let result = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if result != 0 {
        return None;
    }
    let end = buffer.iter().position(|b| *b == 0).unwrap_or(buffer.len());
    Some(String::from_utf8_lossy(&buffer[..end]).into_owned())
}

/// A process's start time (/proc/PID/stat field 22).
fn start_time(pid: u32) -> Option<u64> {
    stat_start_time(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Field 22 of a /proc/PID/stat line; the command (field 2) may hold spaces and parentheses,
/// so fields are counted after its last `)`.
fn stat_start_time(stat: &str) -> Option<u64> {
    let (_, after_command) = stat.rsplit_once(')')?;
    after_command.split_whitespace().nth(19)?.parse().ok()
}

/// Who this process is, for the holder label (`user@host pid N`).
pub fn holder() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let host = hostname().unwrap_or_else(|| "unknown".into());
    format!("{user}@{host} pid {}", std::process::id())
}

/// Seconds since the epoch of an RFC 3339 time (`2026-11-30T01:57:00.123456789Z`, or with an
/// offset such as `+01:00`), as the engine writes them.
fn rfc3339_seconds(text: &str) -> Option<f64> {
    let (date, time) = text.split_once('T')?;
    let mut date_parts = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (
        date_parts.next()??,
        date_parts.next()??,
        date_parts.next()??,
    );
    let offset_at = time.rfind(['Z', 'z', '+', '-'])?;
    let (clock, zone) = time.split_at(offset_at);
    let offset = match zone {
        "Z" | "z" => 0,
        _ => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (hours, minutes) = zone[1..].split_once(':')?;
            sign * (hours.parse::<i64>().ok()? * 3600 + minutes.parse::<i64>().ok()? * 60)
        }
    };
    let mut clock_parts = clock.splitn(3, ':');
    let hours: i64 = clock_parts.next()?.parse().ok()?;
    let minutes: i64 = clock_parts.next()?.parse().ok()?;
    let seconds: f64 = clock_parts.next()?.parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let whole = days * 86_400 + hours * 3600 + minutes * 60 - offset;
    Some(whole as f64 + seconds)
}

/// The engine's clock now, in seconds since the epoch; this host's clock (with a warning) when
/// the engine does not say.
async fn engine_now<E: Engine>(engine: &E) -> Result<f64, EngineError> {
    let info: EngineInfo = engine.info().await?;
    Ok(rfc3339_seconds(&info.system_time).unwrap_or_else(|| {
        tracing::warn!(system_time = %info.system_time, "the engine's clock is unreadable; judging the lock's lease on this host's clock");
        local_now()
    }))
}

/// Whether `lock`'s lease has run out at engine time `now`: its lease from its last change
/// (UpdatedAt), or for a lock without a lease label its legacy expiry, or the standard lease.
fn lease_over(lock: &SwarmObject, now: f64) -> bool {
    let lease = lock
        .labels
        .get(LEASE_LABEL)
        .and_then(|l| l.parse::<u64>().ok());
    let changed = rfc3339_seconds(&lock.updated_at).or_else(|| rfc3339_seconds(&lock.created_at));
    match (lease, changed) {
        (Some(lease), Some(changed)) => now >= changed + lease as f64,
        (None, _) if lock.labels.contains_key(EXPIRES_LABEL) => {
            let expires: f64 = lock.labels[EXPIRES_LABEL].parse().unwrap_or(0.0);
            now >= expires
        }
        (_, Some(changed)) => now >= changed + LEASE.as_secs_f64(),
        (_, None) => false,
    }
}

/// Why a held lock may be taken over, if it may.
fn takeover_reason(lock: &SwarmObject, now: f64, here: Option<&Identity>) -> Option<&'static str> {
    let dead = match (
        lock.labels
            .get(IDENTITY_LABEL)
            .and_then(|l| Identity::parse(l)),
        here,
    ) {
        (Some(holder), Some(here)) => holder.is_dead_seen_from(here),
        _ => false,
    };
    if dead {
        Some("its process on this host is gone")
    } else if lease_over(lock, now) {
        Some("it expired")
    } else {
        None
    }
}

/// A lock this process holds.
#[derive(Debug)]
pub struct Lock {
    /// The config's ID: this acquisition's and no other's.
    id: String,
    /// The stack.
    stack: String,
    /// The labels it was created with.
    labels: IndexMap<String, String>,
    /// Its lease.
    lease: Duration,
    /// When it was last created or renewed (by this host's monotonic clock).
    renewed: Mutex<Instant>,
}

/// The labels of a new lock.
fn lock_labels(ttl: Duration) -> IndexMap<String, String> {
    let since = local_now() as u64;
    let mut labels = IndexMap::new();
    labels.insert(HOLDER_LABEL.to_string(), holder());
    if let Some(identity) = Identity::current() {
        labels.insert(IDENTITY_LABEL.to_string(), identity.label());
    }
    labels.insert(SINCE_LABEL.to_string(), since.to_string());
    labels.insert(LEASE_LABEL.to_string(), ttl.as_secs().max(1).to_string());
    labels.insert(
        EXPIRES_LABEL.to_string(),
        (since + ttl.as_secs()).to_string(),
    );
    labels
}

/// The stack's lock as the engine lists it, if there is one.
async fn find_lock<E: Engine>(engine: &E, name: &str) -> Result<Option<SwarmObject>, EngineError> {
    Ok(engine
        .list_objects(ObjectKind::Config, None)
        .await?
        .into_iter()
        .find(|object| object.name == name))
}

/// Takes the lock, waiting up to `wait` for another holder; a lock whose lease ran out, or
/// whose holder is a process here that is gone, is taken over (and `reporter` told).
pub async fn acquire<E: Engine>(
    engine: &E,
    namespace: &Namespace,
    timing: &LockTiming,
    reporter: &dyn Reporter,
) -> Result<Lock, LockError> {
    let name = lock_name(namespace);
    let started = Instant::now();
    let here = Identity::current();
    let mut said_waiting = false;
    loop {
        let labels = lock_labels(timing.ttl);
        let object = NewObject {
            kind: ObjectKind::Config,
            name: name.clone(),
            labels: labels.clone(),
            data: SensitiveBytes::new(b"stackroll deploy lock".to_vec()),
            driver: None,
            driver_opts: IndexMap::new(),
            template_driver: None,
        };
        match engine.create_object(&object).await {
            Ok(id) => {
                return Ok(Lock {
                    id,
                    stack: namespace.0.clone(),
                    labels,
                    lease: timing.ttl,
                    renewed: Mutex::new(Instant::now()),
                })
            }
            Err(EngineError::Conflict(_)) => {}
            Err(error) => return Err(LockError::Engine(error)),
        }
        let Some(existing) = find_lock(engine, &name).await.map_err(LockError::Engine)? else {
            continue;
        };
        let own = timing
            .reclaim_own
            .then(|| own_lock(&existing, namespace, timing, here.as_ref()));
        if let Some(lock) = own.flatten() {
            // Created by this very process through a manager lost before it answered.
            return Ok(lock);
        }
        let now = engine_now(engine).await.map_err(LockError::Engine)?;
        let holder = existing
            .labels
            .get(HOLDER_LABEL)
            .cloned()
            .unwrap_or_default();
        if let Some(why) = takeover_reason(&existing, now, here.as_ref()) {
            // Said once, through the reporter (a tracing warning would print it a second time).
            reporter.report(Progress::LockTakenOver {
                holder: &holder,
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
                holder,
                since: existing.created_at,
            });
        }
        if !said_waiting {
            said_waiting = true;
            tracing::info!(%holder, "waiting for the deploy lock of stack {}", namespace.0);
        }
        tokio::time::sleep(timing.poll).await;
    }
}

/// `existing` as this process's lock, when its identity is exactly this process's (the
/// lock was created by this process, through a manager lost before it answered); `None` for
/// any other holder, and when this process has no identity.
fn own_lock(
    existing: &SwarmObject,
    namespace: &Namespace,
    timing: &LockTiming,
    here: Option<&Identity>,
) -> Option<Lock> {
    let label = existing.labels.get(IDENTITY_LABEL)?;
    if Identity::parse(label)? != *here? {
        return None;
    }
    Some(Lock {
        id: existing.id.clone(),
        stack: namespace.0.clone(),
        labels: existing.labels.clone(),
        lease: timing.ttl,
        renewed: Mutex::new(Instant::now()),
    })
}

impl Lock {
    /// Gives the lock back (a lock already gone is fine: it is not this one any more).
    pub async fn release<E: Engine>(self, engine: &E) -> Result<(), EngineError> {
        match engine.remove_object(ObjectKind::Config, &self.id).await {
            Ok(()) | Err(EngineError::NotFound(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// The error for a lost lock.
    fn lost(&self, written: Vec<String>) -> LockError {
        LockError::Lost {
            stack: self.stack.clone(),
            written,
        }
    }

    /// Renews the lease: relabels the lock (the engine sends the Version.Index it read, and
    /// stamps UpdatedAt). A lock that no longer exists is lost.
    pub async fn renew<E: Engine>(&self, engine: &E) -> Result<(), LockError> {
        let mut labels = self.labels.clone();
        let until = local_now() as u64 + self.lease.as_secs();
        labels.insert(EXPIRES_LABEL.to_string(), until.to_string());
        match engine
            .set_object_labels(ObjectKind::Config, &self.id, &labels)
            .await
        {
            Ok(()) => {
                *self.renewed.lock().expect("lock renewal time") = Instant::now();
                Ok(())
            }
            Err(EngineError::NotFound(_)) => Err(self.lost(Vec::new())),
            Err(error) => Err(LockError::Engine(error)),
        }
    }

    /// Whether the lock is still this process's: it exists under its ID, and its lease was
    /// renewed within the lease (else another may take it over at any moment).
    pub async fn check<E: Engine>(&self, engine: &E) -> Result<(), LockError> {
        let lapsed = self.renewed.lock().expect("lock renewal time").elapsed() >= self.lease;
        let exists = engine
            .list_objects(ObjectKind::Config, None)
            .await
            .map_err(LockError::Engine)?
            .iter()
            .any(|object| object.id == self.id);
        if lapsed || !exists {
            return Err(self.lost(Vec::new()));
        }
        Ok(())
    }

    /// Renews the lease every third of it, for as long as it is polled; returns only when the
    /// lock is lost (gone, or not renewed for a whole lease because the engine failed).
    pub async fn keep_alive<E: Engine>(&self, engine: &E) -> LockError {
        loop {
            tokio::time::sleep(self.lease / 3).await;
            match self.renew(engine).await {
                Ok(()) => {}
                Err(LockError::Engine(error)) => {
                    tracing::warn!(%error, "could not renew the deploy lock; trying again");
                    if self.renewed.lock().expect("lock renewal time").elapsed() >= self.lease {
                        return self.lost(Vec::new());
                    }
                }
                Err(lost) => return lost,
            }
        }
    }
}

/// Removes the stack's lock if this process holds it (its identity is this process's): after
/// an interruption while the lock was being created, when its ID may not have come back.
pub async fn release_if_ours<E: Engine>(engine: &E, namespace: &Namespace) {
    let (Some(here), Ok(Some(lock))) = (
        Identity::current(),
        find_lock(engine, &lock_name(namespace)).await,
    ) else {
        return;
    };
    let label = lock.labels.get(IDENTITY_LABEL).map(String::as_str);
    if label == Some(here.label().as_str()) {
        if let Err(error) = engine.remove_object(ObjectKind::Config, &lock.id).await {
            tracing::warn!(%error, "could not give the deploy lock back");
        }
    }
}

/// Removes a stack's lock whoever holds it; returns its holder if there was one.
pub async fn force_unlock<E: Engine>(
    engine: &E,
    namespace: &Namespace,
) -> Result<Option<String>, EngineError> {
    match find_lock(engine, &lock_name(namespace)).await? {
        Some(lock) => {
            engine.remove_object(ObjectKind::Config, &lock.id).await?;
            Ok(Some(
                lock.labels.get(HOLDER_LABEL).cloned().unwrap_or_default(),
            ))
        }
        None => Ok(None),
    }
}

/// An engine that writes only while `lock` is this process's: every write is refused once the
/// lock is known lost, and before every removal (services, networks, secrets and configs:
/// `--prune`, superseded versions, replaced seals) the lock is checked on the engine. It keeps
/// a journal of the writes done, for reports after an interruption.
pub struct Guarded<'a, E> {
    /// The engine.
    engine: &'a E,
    /// The lock that must still be held.
    lock: &'a Lock,
    /// Whether the lock was found lost.
    lost: Mutex<bool>,
    /// What was written, in order (`secret demo_db_v2`, `removed service demo_old`).
    written: Mutex<Vec<String>>,
}

impl<'a, E: Engine> Guarded<'a, E> {
    /// Guards `engine` by `lock`.
    pub fn new(engine: &'a E, lock: &'a Lock) -> Guarded<'a, E> {
        Guarded {
            engine,
            lock,
            lost: Mutex::new(false),
            written: Mutex::new(Vec::new()),
        }
    }

    /// What was written so far.
    pub fn written(&self) -> Vec<String> {
        self.written.lock().expect("write journal").clone()
    }

    /// Whether a write was refused because the lock was lost.
    pub fn lost(&self) -> bool {
        *self.lost.lock().expect("lost flag")
    }

    /// The lost-lock error with what was written.
    pub fn lost_error(&self) -> LockError {
        self.lock.lost(self.written())
    }

    /// Refuses a write once the lock is known lost; `check` first asks the engine.
    async fn may_write(&self, check: bool) -> Result<(), EngineError> {
        let known_lost = self.lost();
        let lost = known_lost
            || (check
                && match self.lock.check(self.engine).await {
                    Ok(()) => false,
                    Err(LockError::Engine(error)) => return Err(error),
                    Err(_) => true,
                });
        if lost {
            *self.lost.lock().expect("lost flag") = true;
            return Err(EngineError::Other(self.lock.lost(Vec::new()).to_string()));
        }
        Ok(())
    }

    /// Records a write that succeeded.
    fn record<T>(
        &self,
        result: Result<T, EngineError>,
        what: impl FnOnce() -> String,
    ) -> Result<T, EngineError> {
        if result.is_ok() {
            self.written.lock().expect("write journal").push(what());
        }
        result
    }
}

/// A spec's `Name`.
fn spec_name(spec: &Spec) -> String {
    spec.get("Name")
        .and_then(|n| n.as_str())
        .unwrap_or_default()
        .to_string()
}

impl<E: Engine> Engine for Guarded<'_, E> {
    async fn info(&self) -> Result<EngineInfo, EngineError> {
        self.engine.info().await
    }
    fn api_version(&self) -> String {
        self.engine.api_version()
    }
    async fn list_objects(
        &self,
        kind: ObjectKind,
        label: Option<&str>,
    ) -> Result<Vec<SwarmObject>, EngineError> {
        self.engine.list_objects(kind, label).await
    }
    async fn create_object(&self, object: &NewObject) -> Result<String, EngineError> {
        self.may_write(false).await?;
        let result = self.engine.create_object(object).await;
        self.record(result, || format!("{} {}", object.kind.noun(), object.name))
    }
    async fn remove_object(&self, kind: ObjectKind, id: &str) -> Result<(), EngineError> {
        self.may_write(true).await?;
        let result = self.engine.remove_object(kind, id).await;
        self.record(result, || format!("removed {} {id}", kind.noun()))
    }
    async fn list_services(&self, label: Option<&str>) -> Result<Vec<ServiceState>, EngineError> {
        self.engine.list_services(label).await
    }
    async fn inspect_service(&self, id: &str) -> Result<ServiceState, EngineError> {
        self.engine.inspect_service(id).await
    }
    async fn create_service(&self, spec: &Spec) -> Result<String, EngineError> {
        self.may_write(false).await?;
        let result = self.engine.create_service(spec).await;
        self.record(result, || format!("service {} (created)", spec_name(spec)))
    }
    async fn update_service(&self, id: &str, version: u64, spec: &Spec) -> Result<(), EngineError> {
        self.may_write(false).await?;
        let result = self.engine.update_service(id, version, spec).await;
        self.record(result, || format!("service {} (updated)", spec_name(spec)))
    }
    async fn remove_service(&self, id: &str) -> Result<(), EngineError> {
        self.may_write(true).await?;
        let result = self.engine.remove_service(id).await;
        self.record(result, || format!("removed service {id}"))
    }
    async fn list_tasks(&self, service_id: &str) -> Result<Vec<TaskState>, EngineError> {
        self.engine.list_tasks(service_id).await
    }
    async fn list_all_tasks(&self) -> Result<Vec<TaskState>, EngineError> {
        self.engine.list_all_tasks().await
    }
    async fn list_networks(&self, label: Option<&str>) -> Result<Vec<NetworkState>, EngineError> {
        self.engine.list_networks(label).await
    }
    async fn create_network(&self, spec: &Spec) -> Result<String, EngineError> {
        self.may_write(false).await?;
        let result = self.engine.create_network(spec).await;
        self.record(result, || format!("network {}", spec_name(spec)))
    }
    async fn remove_network(&self, id: &str) -> Result<(), EngineError> {
        self.may_write(true).await?;
        let result = self.engine.remove_network(id).await;
        self.record(result, || format!("removed network {id}"))
    }
    async fn list_nodes(&self) -> Result<Vec<NodeState>, EngineError> {
        self.engine.list_nodes().await
    }
    fn watch_events(&self) -> EventStream {
        self.engine.watch_events()
    }
    async fn config_data(&self, id: &str) -> Result<Vec<u8>, EngineError> {
        self.engine.config_data(id).await
    }
    async fn set_object_labels(
        &self,
        kind: ObjectKind,
        id: &str,
        labels: &IndexMap<String, String>,
    ) -> Result<(), EngineError> {
        self.may_write(false).await?;
        let result = self.engine.set_object_labels(kind, id, labels).await;
        self.record(result, || format!("labels of {} {id}", kind.noun()))
    }
    /// A rotation's command changes a credential: it runs only while the lock is ours.
    async fn exec(&self, request: &ExecRequest) -> Result<ExecOutcome, EngineError> {
        self.may_write(false).await?;
        self.engine.exec(request).await
    }
    async fn inspect_distribution(
        &self,
        image: &str,
    ) -> Result<crate::engine::Distribution, EngineError> {
        self.engine.inspect_distribution(image).await
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

    /// The standard lease; waits `wait`, trying every `poll`.
    fn timing(wait: Duration, poll: Duration) -> LockTiming {
        LockTiming::waiting(wait, poll)
    }

    /// Takes the lock without waiting (it must be free or takeable).
    async fn take_at_once(engine: &FakeEngine, ns: &Namespace) -> Lock {
        let timing = timing(Duration::ZERO, Duration::from_millis(1));
        acquire(engine, ns, &timing, &Recorder::default())
            .await
            .unwrap()
    }

    /// Whether a rival that does not wait gets the lock (and gives it back at once).
    async fn rival_gets_it(engine: &FakeEngine, ns: &Namespace) -> bool {
        let timing = timing(Duration::ZERO, Duration::from_millis(1));
        match acquire(engine, ns, &timing, &Recorder::default()).await {
            Ok(lock) => {
                lock.release(engine).await.unwrap();
                true
            }
            Err(LockError::Held { .. }) => false,
            Err(other) => panic!("{other}"),
        }
    }

    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn only_a_deploy_that_failed_over_reclaims_a_lock_with_its_own_identity() {
        let ns = Namespace("demo".into());
        let engine = FakeEngine::new();
        runtime().block_on(async {
            let first = take_at_once(&engine, &ns).await;
            assert!(
                !rival_gets_it(&engine, &ns).await,
                "not without reclaim_own"
            );
            let timing = LockTiming {
                reclaim_own: true,
                ..timing(Duration::ZERO, Duration::from_millis(1))
            };
            let again = acquire(&engine, &ns, &timing, &Recorder::default())
                .await
                .unwrap();
            assert_eq!(again.id, first.id, "the same lock, not a new one");
            engine.insert_object(
                ObjectKind::Config,
                "other_stackroll-lock",
                &[(
                    IDENTITY_LABEL,
                    "host=elsewhere machine=m boot=b pidns=pid:[1] pid=7 start=1",
                )],
            );
            let other = Namespace("other".into());
            let refused = acquire(&engine, &other, &timing, &Recorder::default()).await;
            assert!(
                matches!(refused, Err(LockError::Held { .. })),
                "another holder's lock"
            );
            again.release(&engine).await.unwrap();
        });
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
    fn a_holder_is_judged_dead_only_in_this_machine_and_pid_namespace() {
        let here = Identity::current().expect("this process's identity");
        assert_eq!(Identity::parse(&here.label()), Some(here.clone()));
        assert_eq!(Identity::parse("user@host pid 12"), None);
        assert!(!here.is_dead_seen_from(&here), "this process is alive");
        let gone = Identity {
            pid: dead_pid(),
            ..here.clone()
        };
        assert!(gone.is_dead_seen_from(&here), "its process is gone");
        let restarted = Identity {
            start: here.start + 1,
            ..here.clone()
        };
        assert!(
            restarted.is_dead_seen_from(&here),
            "a pid now used by a process that started at another time"
        );
        for elsewhere in [
            Identity {
                host: "other".into(),
                ..gone.clone()
            },
            Identity {
                machine: "0123456789abcdef".into(),
                ..gone.clone()
            },
            Identity {
                boot: "another-boot".into(),
                ..gone.clone()
            },
            Identity {
                pid_namespace: "pid:[1]".into(),
                ..gone.clone()
            },
        ] {
            assert!(!elsewhere.is_dead_seen_from(&here), "{elsewhere:?}");
        }
    }

    #[test]
    fn a_gone_holder_with_this_hostname_but_another_identity_keeps_its_lock() {
        let engine = FakeEngine::new();
        let ns = Namespace("demo".into());
        let here = Identity::current().unwrap();
        let pid = dead_pid();
        let other_machine = Identity {
            machine: "another-machine".into(),
            pid,
            ..here.clone()
        };
        let readable = holder().replace(&std::process::id().to_string(), &pid.to_string());
        for identity in [Some(other_machine.label()), None] {
            let mut labels = vec![(HOLDER_LABEL, readable.as_str()), (LEASE_LABEL, "600")];
            if let Some(identity) = &identity {
                labels.push((IDENTITY_LABEL, identity));
            }
            engine.insert_object(ObjectKind::Config, "demo_stackroll-lock", &labels);
            runtime().block_on(async {
                assert!(!rival_gets_it(&engine, &ns).await, "{identity:?}");
                force_unlock(&engine, &ns).await.unwrap();
            });
        }
    }

    #[test]
    fn a_lock_of_a_dead_process_here_is_taken_over_at_once() {
        let engine = FakeEngine::new();
        let ns = Namespace("demo".into());
        let gone = Identity {
            pid: dead_pid(),
            ..Identity::current().unwrap()
        };
        engine.insert_object(
            ObjectKind::Config,
            "demo_stackroll-lock",
            &[
                (HOLDER_LABEL, "me@here pid 1"),
                (IDENTITY_LABEL, &gone.label()),
                (LEASE_LABEL, "600"),
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
            vec!["warning: taking over the deploy lock held by me@here pid 1: its process on this host is gone"]
        );
    }

    #[test]
    fn the_lease_is_judged_on_the_engine_clock() {
        let engine = FakeEngine::new();
        let ns = Namespace("demo".into());
        // Written by a host whose clock runs an hour slow: its own expiry is long past here.
        let expires = (local_now() as u64 - 3600).to_string();
        engine.insert_object(
            ObjectKind::Config,
            "demo_stackroll-lock",
            &[
                (HOLDER_LABEL, "ghost@slow pid 7"),
                (LEASE_LABEL, "60"),
                (EXPIRES_LABEL, &expires),
            ],
        );
        runtime().block_on(async {
            assert!(!rival_gets_it(&engine, &ns).await, "the lease still runs");
            engine.advance_clock(Duration::from_secs(59));
            assert!(!rival_gets_it(&engine, &ns).await, "the lease still runs");
            engine.advance_clock(Duration::from_secs(2));
            assert!(rival_gets_it(&engine, &ns).await, "the lease ran out");
        });
    }

    /// A holder that keeps its lease alive keeps the lock however long it works; one that does
    /// not loses it after the lease.
    #[test]
    fn a_renewed_lease_outlives_its_length() {
        let ns = Namespace("demo".into());
        for renewing in [true, false] {
            let engine = FakeEngine::new();
            runtime().block_on(async {
                let timing = LockTiming {
                    ttl: Duration::from_millis(300),
                    wait: Duration::ZERO,
                    poll: Duration::from_millis(1),
                    reclaim_own: false,
                };
                let lock = acquire(&engine, &ns, &timing, &Recorder::default())
                    .await
                    .unwrap();
                let work = async {
                    for _ in 0..5 {
                        engine.advance_clock(Duration::from_secs(1));
                        tokio::time::sleep(Duration::from_millis(150)).await;
                    }
                };
                if renewing {
                    tokio::select! {
                        () = work => {}
                        lost = lock.keep_alive(&engine) => panic!("{lost}"),
                    }
                } else {
                    work.await;
                }
                assert_eq!(rival_gets_it(&engine, &ns).await, !renewing);
            });
        }
    }

    #[test]
    fn a_lost_lock_stops_every_write_before_a_removal() {
        let engine = FakeEngine::new();
        let ns = Namespace("demo".into());
        let service = engine
            .insert_service(&serde_json::json!({"Name": "demo_old", "TaskTemplate": {"ContainerSpec": {"Image": "local/busybox:1"}}}))
            .unwrap();
        runtime().block_on(async {
            let lock = take_at_once(&engine, &ns).await;
            let guarded = Guarded::new(&engine, &lock);
            lock.check(&engine).await.unwrap();
            force_unlock(&engine, &ns).await.unwrap();
            assert!(matches!(
                lock.check(&engine).await,
                Err(LockError::Lost { .. })
            ));
            let error = guarded.remove_service(&service).await.unwrap_err();
            assert!(error.to_string().contains("no longer held"), "{error}");
            assert!(guarded.lost());
            let error = guarded
                .create_network(&serde_json::json!({"Name": "n"}))
                .await;
            assert!(error.is_err(), "no write after the lock was lost");
            assert!(guarded.written().is_empty());
        });
        assert_eq!(engine.services().len(), 1, "the service was not removed");
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

    #[test]
    fn engine_times_are_read_with_their_offset() {
        assert_eq!(rfc3339_seconds("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(
            rfc3339_seconds("2024-01-01T00:00:01.5Z"),
            Some(1_704_067_201.5)
        );
        assert_eq!(
            rfc3339_seconds("2024-01-01T01:00:00+01:00"),
            Some(1_704_067_200.0)
        );
        assert_eq!(rfc3339_seconds("yesterday"), None);
    }
}
