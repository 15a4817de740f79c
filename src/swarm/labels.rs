//! Every label stackroll writes or reads on swarm objects. `com.docker.stack.*` are docker/cli's
//! own (so `docker stack ls/ps/rm` see stackroll's stacks); `io.stackroll.*` are stackroll's.

/// The label every object of a stack carries (what `docker stack ls/ps/rm` rely on).
pub const STACK_NAMESPACE_LABEL: &str = "com.docker.stack.namespace";
/// The label docker/cli puts on a service: the image as the Compose file names it.
pub const IMAGE_LABEL: &str = "com.docker.stack.image";

/// Label marking an object stackroll created (and so may delete).
pub const MANAGED_LABEL: &str = "io.stackroll.managed";
/// Label holding the Compose key a version belongs to.
pub const KEY_LABEL: &str = "io.stackroll.key";
/// Label holding a version's number.
pub const VERSION_LABEL: &str = "io.stackroll.version";
/// Label holding a version's content fingerprint (see `plan::fingerprint`).
pub const FINGERPRINT_LABEL: &str = "io.stackroll.fingerprint";

/// Label holding the content seal's fingerprint.
pub const SEAL_LABEL: &str = "io.stackroll.seal";
/// Label listing the versions a seal covers, as JSON `[["secret", key, id], ...]`.
pub const SEAL_OBJECTS_LABEL: &str = "io.stackroll.seal.objects";
/// Label holding the fingerprints of the seal's parts (see `plan::seal`), as JSON
/// `[[level 1 fingerprints], [level 2 fingerprints], ...]`.
pub const SEAL_PARTS_LABEL: &str = "io.stackroll.seal.parts";
/// Label holding the seal's serial number (the newest seal is the one that counts).
pub const SEAL_SERIAL_LABEL: &str = "io.stackroll.seal.serial";

/// Deploy lock label: who holds the lock (`user@host pid N`).
pub const HOLDER_LABEL: &str = "io.stackroll.lock.holder";
/// Deploy lock label: when it was taken, seconds since the epoch.
pub const SINCE_LABEL: &str = "io.stackroll.lock.since";
/// Deploy lock label: when it expires, seconds since the epoch.
pub const EXPIRES_LABEL: &str = "io.stackroll.lock.expires";
/// Label on the deploy lock: who holds it, precisely (host, machine, boot, PID namespace, pid,
/// start time; see `apply::lock::Identity`).
pub const IDENTITY_LABEL: &str = "io.stackroll.lock.identity";
/// Label on the deploy lock: the lease in seconds, counted from the lock's last change on the
/// engine's clock.
pub const LEASE_LABEL: &str = "io.stackroll.lock.lease";
