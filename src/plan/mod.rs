//! Planning: comparing what the Compose files want with what the swarm has, as a pure
//! function `plan(input, observed) -> Plan`. The plan says what would change and why
//! (rendered by `render::plan`) and carries the operations the executor (`apply`) performs.
//! Nothing here talks to the engine or reads files: `crate::observe` gathers the [`Observed`]
//! state and `crate::contents` reads secret and config data beforehand.

pub mod canonical;
pub mod content_diff;
pub mod detail;
pub mod fingerprint;
pub mod images;
pub mod impact;
pub mod prune;
pub mod rotation;
pub mod seal;

use std::collections::{BTreeMap, HashMap};

use indexmap::IndexMap;
use serde::Serialize;

use crate::contents::Contents;
use crate::convert::{ConvertedProject, Provenance, ResolvedObject, ResolvedObjects};
use crate::diagnostic::Diagnostics;
use crate::engine::{NetworkState, ServiceState, Spec, SwarmObject};
use crate::model::{Definition, ObjectKey, ObjectKind, Project, Source};
use crate::swarm::labels::{
    FINGERPRINT_LABEL, KEY_LABEL, MANAGED_LABEL, SEAL_SERIAL_LABEL, STACK_NAMESPACE_LABEL,
    VERSION_LABEL,
};
use crate::swarm::namespace::Namespace;
use crate::swarm::rollout::{PAUSED, ROLLBACK_PAUSED, UNSETTLED_STATES};
use crate::swarm::versions::{versioned_name, versions_by_key, Version};
use detail::Detail;
use fingerprint::{on_every_core, Fingerprinter, Material};
use prune::ServiceSpecs;

/// What the swarm holds, as far as planning a stack needs.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Every secret in the swarm (external ones are looked up by exact name).
    pub secrets: Vec<SwarmObject>,
    /// Every config in the swarm.
    pub configs: Vec<SwarmObject>,
    /// The stack's services.
    pub services: Vec<ServiceState>,
    /// Every other service in the swarm (other stacks', and those in no stack): what they
    /// reference is never pruned.
    pub others: Vec<ServiceState>,
    /// Every network.
    pub networks: Vec<NetworkState>,
    /// How many nodes the swarm has (a global service runs a task on each).
    pub nodes: u64,
}

impl Observed {
    /// The objects of one kind.
    pub fn objects(&self, kind: ObjectKind) -> &[SwarmObject] {
        match kind {
            ObjectKind::Secret => &self.secrets,
            ObjectKind::Config => &self.configs,
        }
    }
}

/// Everything the planner needs besides the observed state.
pub struct PlanInput<'a> {
    /// The stack.
    pub namespace: &'a Namespace,
    /// The loaded Compose project.
    pub project: &'a Project,
    /// The data of every non-external secret and config.
    pub contents: &'a Contents,
    /// How fingerprints are checked.
    pub fingerprinter: &'a Fingerprinter,
    /// How many superseded versions of each object to keep.
    pub keep: usize,
    /// Remove the stack's services and networks that the Compose files no longer have.
    pub prune: bool,
    /// Registry lookups of the services' images and what to say about credentials.
    pub images: &'a images::ImageFacts,
}

/// What kind of thing a change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Resource {
    /// A Swarm secret.
    Secret,
    /// A Swarm config.
    Config,
    /// A service.
    Service,
    /// A network.
    Network,
}

impl Resource {
    /// The resource for an object kind.
    pub fn of(kind: ObjectKind) -> Resource {
        match kind {
            ObjectKind::Secret => Resource::Secret,
            ObjectKind::Config => Resource::Config,
        }
    }

    /// Lower-case name.
    pub fn noun(self) -> &'static str {
        match self {
            Resource::Secret => "secret",
            Resource::Config => "config",
            Resource::Service => "service",
            Resource::Network => "network",
        }
    }
}

/// What happens to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// It is created.
    Create,
    /// It is changed in place.
    Update,
    /// It is deleted (after every service converged).
    Delete,
}

/// A secret or config version to create.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectCreation {
    /// Secret or config.
    pub kind: ObjectKind,
    /// Its Compose key.
    pub key: String,
    /// Its version number.
    pub version: u64,
    /// Its swarm name, `<base>_v<version>`.
    pub name: String,
    /// Its labels, without the fingerprint (computed when it is created).
    pub labels: IndexMap<String, String>,
    /// Secret driver, for driver-backed secrets.
    pub driver: Option<String>,
    /// Secret driver options.
    pub driver_opts: IndexMap<String, String>,
    /// Templating driver.
    pub template_driver: Option<String>,
    /// The newest existing version it replaces, if any.
    pub replaces: Option<ReplacedVersion>,
}

/// A version a new one replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplacedVersion {
    /// Its ID.
    pub id: String,
    /// Its name.
    pub name: String,
}

/// The engine call a change makes.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// Create a secret or config version.
    CreateObject(ObjectCreation),
    /// Create a network from a NetworkCreateRequest.
    CreateNetwork(Spec),
    /// Create a service from a ServiceSpec (object IDs of new versions filled in later).
    CreateService(Spec),
    /// Replace a service's spec.
    UpdateService {
        /// Service ID.
        id: String,
        /// Version.Index it was read at.
        version: u64,
        /// The new ServiceSpec.
        spec: Spec,
        /// Whether Swarm will replace tasks (the task template or endpoint changed), so the
        /// rollout watcher waits for its rolling update.
        replaces_tasks: bool,
    },
    /// Remove a service of the stack that the Compose files no longer have (`--prune`).
    DeleteService {
        /// Its ID.
        id: String,
    },
    /// Remove a network of the stack that the Compose files no longer have (`--prune`).
    DeleteNetwork {
        /// Its ID.
        id: String,
    },
    /// Delete a secret or config that stackroll created and nothing references.
    DeleteObject {
        /// Secret or config.
        kind: ObjectKind,
        /// Its ID.
        id: String,
    },
}

/// One change the plan makes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// What kind of thing.
    #[serde(rename = "kind")]
    pub resource: Resource,
    /// What happens.
    pub action: Action,
    /// Its swarm name.
    pub name: String,
    /// Why, in a few words.
    pub reason: String,
    /// What changes in it, field by field, in Compose terms (never a secret value).
    pub details: Vec<Detail>,
    /// For a config version replacing another: how the content changes.
    #[serde(rename = "diff", skip_serializing_if = "Option::is_none")]
    pub content_diff: Option<content_diff::ContentDiff>,
    /// For a service created or updated: what happens to its tasks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impact: Option<impact::Impact>,
    /// The engine call.
    #[serde(skip)]
    pub operation: Operation,
}

/// Counts of changes by action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Things created.
    pub create: usize,
    /// Things updated.
    pub update: usize,
    /// Things deleted.
    pub delete: usize,
}

/// Everything a deploy would do to a stack.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// The stack.
    pub stack: String,
    /// The changes, in the order they are carried out (deletes last).
    pub changes: Vec<Change>,
    /// Things the user should know that change nothing (adoption, unverifiable content).
    pub notes: Vec<String>,
    /// Counts by action.
    pub summary: Summary,
    /// What the service changes do to running tasks, and about how long they take.
    pub impact: impact::ImpactSummary,
    /// Names of the secret and config versions services will use (never pruned).
    #[serde(skip)]
    pub current_objects: Vec<String>,
    /// Services the plan does not write whose rolling update is still going or paused: a
    /// deploy waits for them (and judges them) before pruning.
    #[serde(skip)]
    pub unsettled: Vec<UnsettledService>,
    /// A new content seal for a deploy to record, when the stored one is missing, cannot be
    /// verified, or names other versions than the plan uses (see `seal`). Not a change: it
    /// only makes the next check of unchanged contents cheap.
    #[serde(skip)]
    pub seal: Option<SealWrite>,
    /// Staged rotations of credentials held by services (`rotation`), carried out after the
    /// changes above converged.
    pub rotations: Vec<rotation::Rotation>,
    /// The specs, stage by stage, of every service a rotation touches.
    #[serde(skip)]
    pub staged: Vec<rotation::StagedService>,
}

/// A service the plan leaves as it is whose rolling update has not settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsettledService {
    /// Swarm's service ID.
    pub id: String,
    /// The service name.
    pub name: String,
}

/// One version a new content seal covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionToSeal {
    /// Secret or config.
    pub kind: ObjectKind,
    /// The Compose key.
    pub key: String,
    /// The version's name.
    pub name: String,
    /// The version's ID; empty for a version the plan creates (the executor knows it once it
    /// exists).
    pub id: String,
}

/// A content seal to record (see `seal`).
#[derive(Debug, Clone, PartialEq)]
pub struct SealWrite {
    /// Its serial number, above every seal of the stack.
    pub serial: u64,
    /// The version each key with data uses.
    pub versions: Vec<VersionToSeal>,
    /// IDs of the stack's older seals, deleted once the new one exists.
    pub replaces: Vec<String>,
    /// The fingerprints of the stored seal and its parts, by the versions each covers
    /// (`seal::reusable`): the new seal's parts that cover the same versions reuse them.
    pub reusable: HashMap<String, String>,
}

impl Plan {
    /// Whether the plan changes nothing.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.rotations.is_empty()
    }

    /// Whether a deploy has anything to do: changes to make, rotation stages to run, or
    /// rollouts to wait for.
    pub fn needs_apply(&self) -> bool {
        !self.is_empty() || !self.unsettled.is_empty()
    }
}

/// Why no plan could be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// External secrets, configs or networks that do not exist, all of them.
    #[error("external objects do not exist: {}; nothing was done", .0.join(", "))]
    MissingExternal(Vec<String>),
    /// Services that cannot be converted (unsupported fields, bad values).
    #[error("the services cannot be converted ({} errors)", .0.errors().count())]
    Invalid(Diagnostics),
    /// Networks this stack would create whose names another stack (or no stack) holds, each
    /// as `name (stack other)` or `name (no stack)`.
    #[error("networks with this stack's network names belong to another stack or to none: {}; nothing was done", .0.join(", "))]
    NetworkTaken(Vec<String>),
    /// New versions this stack would create whose names an object of another stack (or of
    /// another key) already holds, each as `secret NAME (stack other)`.
    #[error("objects with the names of this stack's new versions already exist: {}; nothing was done", .0.join(", "))]
    NameTaken(Vec<String>),
}

/// The stack's versions of every secret and config key (`swarm::versions`), found once per
/// plan: finding them key by key would read every object once per key (quadratic in the
/// size of the stack).
struct KeyVersions<'o> {
    secrets: BTreeMap<&'o str, Vec<Version<'o>>>,
    configs: BTreeMap<&'o str, Vec<Version<'o>>>,
}

impl<'o> KeyVersions<'o> {
    /// Indexes the observed secrets and configs of `namespace`'s stack.
    fn new(observed: &'o Observed, namespace: &Namespace) -> KeyVersions<'o> {
        KeyVersions {
            secrets: versions_by_key(&observed.secrets, namespace),
            configs: versions_by_key(&observed.configs, namespace),
        }
    }

    /// The versions of one key that carry the name this deploy gives its versions
    /// (`<base>_v<N>`), newest first: after a `name:` change, versions under the old name are
    /// not reused, and numbering starts again under the new one.
    fn of(&self, kind: ObjectKind, key: &str, base: &str) -> Vec<Version<'o>> {
        let by_key = match kind {
            ObjectKind::Secret => &self.secrets,
            ObjectKind::Config => &self.configs,
        };
        by_key
            .get(key)
            .map(|versions| {
                versions
                    .iter()
                    .filter(|version| version.object.name == versioned_name(base, version.number))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The unversioned name of a definition: `name:` or `<stack>_<key>`.
pub fn base_name(namespace: &Namespace, definition: &Definition) -> String {
    match &definition.name {
        Some(name) => name.value.clone(),
        None => namespace.scope(&definition.key),
    }
}

/// The swarm name an external definition refers to: `name:` or the key itself.
pub fn external_name(definition: &Definition) -> String {
    definition
        .name
        .as_ref()
        .map_or_else(|| definition.key.clone(), |name| name.value.clone())
}

/// Works out every change a deploy makes, from `converted` (the project of `input`, converted
/// for its namespace). Pure: the same inputs give the same plan. In order: secret and config
/// versions, the content seal, networks, services, removals (`--prune`), superseded versions.
pub fn plan(
    input: &PlanInput<'_>,
    converted: &ConvertedProject,
    observed: &Observed,
) -> Result<Plan, PlanError> {
    let mut draft = Draft::default();
    let stored_seal = seal::newest(&observed.configs, input.namespace);
    let index = KeyVersions::new(observed, input.namespace);
    let sealed = verified_seal(input, &index, stored_seal.as_ref());
    let objects = plan_objects(input, observed, &index, &sealed.vouched, &mut draft);
    if !objects.taken.is_empty() {
        return Err(PlanError::NameTaken(objects.taken));
    }
    let seal = seal_write(
        input,
        observed,
        &objects.resolved,
        stored_seal.as_ref(),
        sealed.whole,
    );
    let rotations = plan_rotations(input, observed, &index, &objects.resolved, &mut draft);
    let desired_networks = plan_networks(
        input.namespace,
        converted,
        observed,
        objects.missing,
        &mut draft,
    )?;
    let mut services = plan_services(
        input,
        converted,
        observed,
        &objects.resolved,
        &rotations,
        &mut draft,
    )?;
    draft
        .notes
        .extend(images::notes(&services.unresolved, input.images));
    plan_removals(
        input,
        observed,
        &desired_networks,
        &mut services,
        &mut draft,
    );
    plan_superseded(
        input,
        observed,
        &objects.resolved,
        &services.running,
        &mut draft,
    );
    Ok(Plan {
        stack: input.namespace.0.clone(),
        summary: Summary::of(&draft.changes),
        impact: impact::ImpactSummary::of(draft.changes.iter().filter_map(|c| c.impact.as_ref())),
        changes: draft.changes,
        notes: draft.notes,
        current_objects: objects.resolved.names().cloned().collect(),
        unsettled: services.unsettled,
        seal,
        rotations,
        staged: services.staged,
    })
}

impl Summary {
    /// The counts of `changes`.
    fn of(changes: &[Change]) -> Summary {
        let mut summary = Summary::default();
        for change in changes {
            match change.action {
                Action::Create => summary.create += 1,
                Action::Update => summary.update += 1,
                Action::Delete => summary.delete += 1,
            }
        }
        summary
    }
}

/// The changes and notes of a plan being worked out, in the order they are found.
#[derive(Default)]
struct Draft {
    changes: Vec<Change>,
    notes: Vec<String>,
}

/// What the secret and config step found.
struct Objects {
    /// The object each definition uses.
    resolved: ResolvedObjects,
    /// External objects that do not exist (`secret NAME`, `config NAME`).
    missing: Vec<String>,
    /// New versions whose names another object holds (`secret NAME (stack other)`).
    taken: Vec<String>,
}

/// What the services step leaves for the later ones.
struct Services {
    /// Which observed services the Compose files have, by index.
    touched: Vec<bool>,
    /// Each service's spec once the plan is carried out, and its previous one (what the
    /// pruning of superseded versions must keep).
    running: Vec<ServiceSpecs>,
    /// Services left as they are whose rolling update has not settled.
    unsettled: Vec<UnsettledService>,
    /// The stage specs of the services rotations touch.
    staged: Vec<rotation::StagedService>,
    /// Services whose image lookup failed.
    unresolved: std::collections::BTreeSet<images::Unresolved>,
}

/// The versions the stored content seal vouches for: all when it verifies as a whole, else
/// those its verified parts cover.
fn verified_seal(
    input: &PlanInput<'_>,
    index: &KeyVersions<'_>,
    stored: Option<&seal::StoredSeal<'_>>,
) -> seal::SealCheck {
    let Some(stored) = stored else {
        tracing::debug!("no content seal: checking each version's fingerprint");
        return seal::SealCheck::default();
    };
    let check = seal::verified(
        input.namespace,
        stored,
        |kind, key, id| existing_version(input, index, kind, key, id),
        input.project,
        input.contents,
        input.fingerprinter,
    );
    if check.whole {
        tracing::debug!(
            serial = stored.serial,
            versions = check.vouched.len(),
            "content seal verified: its versions need no check of their own"
        );
    } else {
        tracing::debug!(
            serial = stored.serial,
            "content seal does not apply as a whole: its verified parts vouch for {} of {} versions; checking the others' own fingerprints",
            check.vouched.len(),
            stored.versions.len()
        );
    }
    check
}

/// Resolves every secret and config: an external one to the object of its name, one with
/// data to the version whose content matches, or to a new version (a change).
fn plan_objects(
    input: &PlanInput<'_>,
    observed: &Observed,
    index: &KeyVersions<'_>,
    sealed: &HashMap<ObjectKey, String>,
    draft: &mut Draft,
) -> Objects {
    let matches = matching_versions(input, index, sealed);
    let mut objects = Objects {
        resolved: ResolvedObjects::new(),
        missing: Vec::new(),
        taken: Vec::new(),
    };
    for kind in [ObjectKind::Secret, ObjectKind::Config] {
        let live = observed.objects(kind);
        for definition in input.project.definitions(kind).values() {
            let key = ObjectKey::new(kind, &definition.key);
            if !definition.is_external() {
                let version = plan_version(input, definition, live, index, &matches, draft);
                if let Some(holder) = name_holder(input.namespace, kind, &version, live) {
                    objects.taken.push(holder);
                }
                objects.resolved.insert(key, version);
                continue;
            }
            let name = external_name(definition);
            match live.iter().find(|object| object.name == name) {
                Some(object) => {
                    let id = object.id.clone();
                    objects.resolved.insert(key, ResolvedObject { name, id });
                }
                None => objects.missing.push(format!("{} {name}", kind.noun())),
            }
        }
    }
    objects
}

/// For a version the plan creates, the object that already holds its name: a version of
/// another stack whose stack name and key join to the same name, or one of another key.
fn name_holder(
    namespace: &Namespace,
    kind: ObjectKind,
    version: &ResolvedObject,
    live: &[SwarmObject],
) -> Option<String> {
    if !version.id.is_empty() {
        return None;
    }
    let holder = live.iter().find(|object| object.name == version.name)?;
    let owner = match holder.labels.get(STACK_NAMESPACE_LABEL) {
        Some(stack) if *stack == namespace.0 => match holder.labels.get(KEY_LABEL) {
            Some(key) => format!("this stack, key {key}"),
            None => "this stack".to_string(),
        },
        Some(stack) => format!("stack {stack}"),
        None => "no stack".to_string(),
    };
    Some(format!("{} {} ({owner})", kind.noun(), holder.name))
}

/// The version a definition with data uses: an existing one whose content matches, or a new
/// one, which the plan creates.
fn plan_version(
    input: &PlanInput<'_>,
    definition: &Definition,
    live: &[SwarmObject],
    index: &KeyVersions<'_>,
    matches: &HashMap<ObjectKey, Option<usize>>,
    draft: &mut Draft,
) -> ResolvedObject {
    let base = base_name(input.namespace, definition);
    let versions = index.of(definition.kind, &definition.key, &base);
    let reason = match choose_version(matches, definition, &versions, &mut draft.notes) {
        Chosen::Existing(object) => {
            return ResolvedObject {
                name: object.name.clone(),
                id: object.id.clone(),
            }
        }
        Chosen::New { reason } => reason,
    };
    let version = versions.first().map_or(1, |newest| newest.number + 1);
    let name = versioned_name(&base, version);
    if versions.is_empty() {
        if let Some(legacy) = live.iter().find(|object| object.name == base) {
            draft.notes.push(format!(
                "adopting {} {}: its content cannot be verified; {name} is created and services are moved to it; {} is left in place",
                definition.kind.noun(), legacy.name, legacy.name
            ));
        }
    }
    let reason = format!(
        "{}; {reason}",
        input.contents.describe(definition.kind, &definition.key)
    );
    let replaces = versions.first().map(|newest| ReplacedVersion {
        id: newest.object.id.clone(),
        name: newest.object.name.clone(),
    });
    draft.changes.push(object_creation(
        input.namespace,
        definition,
        NewVersion {
            number: version,
            name: &name,
            replaces,
        },
        reason,
    ));
    ResolvedObject {
        name,
        id: String::new(),
    }
}

/// A version of a definition the plan creates.
struct NewVersion<'a> {
    /// Its number.
    number: u64,
    /// Its name.
    name: &'a str,
    /// The newest existing version, which it replaces.
    replaces: Option<ReplacedVersion>,
}

/// The change creating `version` of `definition`.
fn object_creation(
    namespace: &Namespace,
    definition: &Definition,
    version: NewVersion<'_>,
    reason: String,
) -> Change {
    let NewVersion {
        number: version,
        name,
        replaces,
    } = version;
    let mut labels = namespace.add_label(&definition.labels);
    labels.insert(MANAGED_LABEL.into(), "true".into());
    labels.insert(KEY_LABEL.into(), definition.key.clone());
    labels.insert(VERSION_LABEL.into(), version.to_string());
    let driver = match &definition.source {
        Source::Driver(driver) => Some(driver.clone()),
        _ => None,
    };
    Change {
        resource: Resource::of(definition.kind),
        action: Action::Create,
        name: name.to_string(),
        reason,
        details: Vec::new(),
        content_diff: None,
        impact: None,
        operation: Operation::CreateObject(ObjectCreation {
            kind: definition.kind,
            key: definition.key.clone(),
            version,
            name: name.to_string(),
            labels,
            driver,
            driver_opts: definition.driver_opts.clone(),
            template_driver: definition.template_driver.clone(),
            replaces,
        }),
    }
}

/// Creates the stack's networks that do not exist; refuses when an external secret, config
/// or network is missing, and when a network with one of the stack's names belongs to another
/// stack or to none. Returns the names of the stack's networks.
fn plan_networks(
    namespace: &Namespace,
    converted: &ConvertedProject,
    observed: &Observed,
    mut missing: Vec<String>,
    draft: &mut Draft,
) -> Result<Vec<String>, PlanError> {
    let networks = converted.networks.clone().map_err(PlanError::Invalid)?;
    let named = |name: &str| -> Vec<&NetworkState> {
        observed
            .networks
            .iter()
            .filter(|network| network.name == name)
            .collect()
    };
    for name in &networks.external {
        if named(name).is_empty() {
            missing.push(format!("network {name}"));
        }
    }
    if !missing.is_empty() {
        return Err(PlanError::MissingExternal(missing));
    }
    // A stack's network is the one with its name AND its stack label: stack `a_b`'s `default`
    // and stack `a`'s `b_default` are both named `a_b_default`.
    let stack = namespace.0.as_str();
    let mut taken = Vec::new();
    for name in networks.created.keys() {
        let owner = |network: &NetworkState| {
            network
                .labels
                .get(crate::swarm::labels::STACK_NAMESPACE_LABEL)
                .cloned()
        };
        let same_name = named(name);
        let ours = same_name
            .iter()
            .any(|network| owner(network).as_deref() == Some(stack));
        if let (false, Some(other)) = (ours, same_name.first()) {
            taken.push(match owner(other) {
                Some(owner) => format!("{name} (stack {owner})"),
                None => format!("{name} (no stack)"),
            });
        }
    }
    if !taken.is_empty() {
        return Err(PlanError::NetworkTaken(taken));
    }
    let desired: Vec<String> = networks.created.keys().cloned().collect();
    for (name, spec) in networks.created {
        if named(&name).is_empty() {
            draft.changes.push(Change {
                resource: Resource::Network,
                action: Action::Create,
                name,
                reason: "new network".into(),
                details: Vec::new(),
                content_diff: None,
                impact: None,
                operation: Operation::CreateNetwork(spec),
            });
        }
    }
    Ok(desired)
}

/// Creates the services that do not exist and updates the ones whose spec changed; refuses
/// when a service cannot be converted.
fn plan_services(
    input: &PlanInput<'_>,
    converted: &ConvertedProject,
    observed: &Observed,
    resolved: &ResolvedObjects,
    rotations: &[rotation::Rotation],
    draft: &mut Draft,
) -> Result<Services, PlanError> {
    let mut invalid = Diagnostics::default();
    let mut desired = IndexMap::new();
    let mut unresolved = std::collections::BTreeSet::new();
    let mut provenances: HashMap<String, &Provenance> = HashMap::new();
    for (name, service) in &converted.services {
        if service.problems.has_errors() {
            invalid.extend(service.problems.clone());
            continue;
        }
        let mut spec = service.spec(resolved);
        resolve_network_ids(&mut spec, &observed.networks);
        let scoped = input.namespace.scope(name);
        let live = observed.services.iter().find(|live| live.name == scoped);
        unresolved.extend(images::pin(&mut spec, live, input.images));
        provenances.insert(scoped.clone(), &service.provenance);
        desired.insert(scoped, spec);
    }
    if invalid.has_errors() {
        return Err(PlanError::Invalid(invalid));
    }
    let staged = rotation::staged_services(rotations, &desired);
    let mut services = Services {
        touched: vec![false; observed.services.len()],
        running: Vec::new(),
        unsettled: Vec::new(),
        staged: Vec::new(),
        unresolved,
    };
    for (name, spec) in desired {
        // A service a rotation touches is first written as its first stage wants it.
        let spec = match staged.iter().find(|service| service.name == name) {
            Some(service) => service.start.clone(),
            None => spec,
        };
        let provenance = provenances.get(&name).copied();
        match observed.services.iter().position(|live| live.name == name) {
            None => {
                services.running.push(ServiceSpecs {
                    current: spec.clone(),
                    previous: None,
                });
                draft.changes.push(Change {
                    resource: Resource::Service,
                    action: Action::Create,
                    name,
                    reason: "new service".into(),
                    details: detail::details(canonical::references(&spec), provenance),
                    content_diff: None,
                    impact: Some(impact::of_creation(&spec, observed.nodes)),
                    operation: Operation::CreateService(spec),
                });
            }
            Some(index) => {
                services.touched[index] = true;
                let live = &observed.services[index];
                let update = ServiceUpdate {
                    live,
                    name,
                    spec,
                    provenance,
                    nodes: observed.nodes,
                };
                plan_service_update(update, &mut services, draft);
            }
        }
    }
    services.staged = staged;
    Ok(services)
}

/// The staged rotation each definition with `x-stackroll-rotation` needs, if any. A version
/// the plan creates for one carries the rotation's labels from the start.
fn plan_rotations(
    input: &PlanInput<'_>,
    observed: &Observed,
    index: &KeyVersions<'_>,
    resolved: &ResolvedObjects,
    draft: &mut Draft,
) -> Vec<rotation::Rotation> {
    let mut rotations = Vec::new();
    for kind in [ObjectKind::Secret, ObjectKind::Config] {
        let live = observed.objects(kind);
        for definition in input.project.definitions(kind).values() {
            let (Some(policy), Some(to)) =
                (&definition.rotation, resolved.get(kind, &definition.key))
            else {
                continue;
            };
            let base = base_name(input.namespace, definition);
            let mut candidates: Vec<&SwarmObject> = index
                .of(kind, &definition.key, &base)
                .into_iter()
                .map(|version| version.object)
                .collect();
            candidates.extend(live.iter().filter(|object| object.name == base));
            let state = rotation::KeyState {
                definition,
                policy,
                candidates,
                to: rotation::VersionRef {
                    name: to.name.clone(),
                    id: to.id.clone(),
                },
                services: &observed.services,
            };
            let Some(found) =
                rotation::rotation(&state, input.project, |name| input.namespace.scope(name))
            else {
                continue;
            };
            if let Some(Operation::CreateObject(creation)) = draft
                .changes
                .iter_mut()
                .map(|change| &mut change.operation)
                .find(|operation| matches!(operation, Operation::CreateObject(c) if c.kind == kind && c.name == found.to.name))
            {
                creation.labels = found.labels_at(&creation.labels, rotation::Stage::Created);
            }
            rotations.push(found);
        }
    }
    rotations
}

/// A live service and the spec the Compose files want for it.
struct ServiceUpdate<'a> {
    live: &'a ServiceState,
    name: String,
    spec: Spec,
    /// Which Compose field produced which part of `spec`.
    provenance: Option<&'a Provenance>,
    /// How many nodes the swarm has.
    nodes: u64,
}

/// Updates a live service whose spec differs from the wanted one; leaves an equal one alone,
/// noting a rolling update of it that has not settled.
fn plan_service_update(update: ServiceUpdate<'_>, services: &mut Services, draft: &mut Draft) {
    let ServiceUpdate {
        live,
        name,
        mut spec,
        provenance,
        nodes,
    } = update;
    canonical::keep_force_update(&mut spec, &live.spec);
    let details = detail::details(canonical::differences(&live.spec, &spec), provenance);
    let replaces_tasks = canonical::replaces_tasks(&live.spec, &spec);
    let rollback_paused = live
        .update_status
        .as_ref()
        .is_some_and(|status| status.state == ROLLBACK_PAUSED);
    if details.is_empty() && !rollback_paused {
        services.running.push(ServiceSpecs {
            current: live.spec.clone(),
            previous: live.previous_spec.clone(),
        });
        // Its spec is right, but a rolling update (started by a deploy that was
        // interrupted, say) is still going: wait for it before saying done.
        if let Some(status) = live
            .update_status
            .as_ref()
            .filter(|s| UNSETTLED_STATES.contains(&s.state.as_str()))
        {
            let judged = if status.state == PAUSED {
                "; judged again: a pause Swarm made after shutting down a task it could not start (a lost node's), with every wanted task running this spec on a Ready node, counts as done without a write, so the rollback target (PreviousSpec) is kept"
            } else {
                ""
            };
            draft.notes.push(format!(
                "service {name}: its rolling update is {} ({}); waiting for it{judged}",
                status.state.replace('_', " "),
                if status.message.is_empty() {
                    "no message"
                } else {
                    &status.message
                }
            ));
            services.unsettled.push(UnsettledService {
                id: live.id.clone(),
                name,
            });
        }
        return;
    }
    services.running.push(ServiceSpecs {
        current: spec.clone(),
        previous: Some(live.spec.clone()),
    });
    // Swarm paused rolling back a failed update, and the spec it went back to is the one the
    // files want: Swarm moves only when the service is written, so it is written again (its
    // rollback target, the failed spec, is replaced), which clears the pause.
    let reason = match details.is_empty() {
        true => "Swarm's rollback to this spec is paused; written again to finish it".into(),
        false => "spec changed".into(),
    };
    draft.changes.push(Change {
        resource: Resource::Service,
        action: Action::Update,
        name,
        reason,
        details,
        content_diff: None,
        impact: Some(impact::of_update(&live.spec, &spec, replaces_tasks, nodes)),
        operation: Operation::UpdateService {
            id: live.id.clone(),
            version: live.version,
            replaces_tasks,
            spec,
        },
    });
}

/// The stack's services and networks the Compose files no longer have: removed with
/// `--prune`, else a service is noted and left running.
fn plan_removals(
    input: &PlanInput<'_>,
    observed: &Observed,
    desired_networks: &[String],
    services: &mut Services,
    draft: &mut Draft,
) {
    let gone = "not in the compose files (--prune)";
    for (index, live) in observed.services.iter().enumerate() {
        if services.touched[index] {
            continue;
        }
        if !input.prune {
            draft.notes.push(format!(
                "service {} is not in the compose files; it is left running (--prune removes it)",
                live.name
            ));
            services.running.push(ServiceSpecs {
                current: live.spec.clone(),
                previous: live.previous_spec.clone(),
            });
            continue;
        }
        draft.changes.push(Change {
            resource: Resource::Service,
            action: Action::Delete,
            name: live.name.clone(),
            reason: gone.into(),
            details: Vec::new(),
            content_diff: None,
            impact: None,
            operation: Operation::DeleteService {
                id: live.id.clone(),
            },
        });
    }
    if !input.prune {
        return;
    }
    let label = input.namespace.0.as_str();
    for network in &observed.networks {
        let in_stack = network
            .labels
            .get(STACK_NAMESPACE_LABEL)
            .map(String::as_str)
            == Some(label);
        if in_stack && !desired_networks.contains(&network.name) {
            draft.changes.push(Change {
                resource: Resource::Network,
                action: Action::Delete,
                name: network.name.clone(),
                reason: gone.into(),
                details: Vec::new(),
                content_diff: None,
                impact: None,
                operation: Operation::DeleteNetwork {
                    id: network.id.clone(),
                },
            });
        }
    }
}

/// Deletes the secret and config versions nothing needs any more (see `prune`).
fn plan_superseded(
    input: &PlanInput<'_>,
    observed: &Observed,
    resolved: &ResolvedObjects,
    running: &[ServiceSpecs],
    draft: &mut Draft,
) {
    let in_use: Vec<&String> = resolved.names().collect();
    let mut running = running.to_vec();
    running.extend(observed.others.iter().map(|other| ServiceSpecs {
        current: other.spec.clone(),
        previous: other.previous_spec.clone(),
    }));
    for kind in [ObjectKind::Secret, ObjectKind::Config] {
        for object in prune::prunable(
            kind,
            observed.objects(kind),
            input.namespace,
            input.project,
            &in_use,
            &running,
            input.keep,
        ) {
            draft.changes.push(Change {
                resource: Resource::of(kind),
                action: Action::Delete,
                name: object.object.name.clone(),
                reason: object.reason,
                details: Vec::new(),
                content_diff: None,
                impact: None,
                operation: Operation::DeleteObject {
                    kind,
                    id: object.object.id.clone(),
                },
            });
        }
    }
}

/// Whether `id` is one of the versions stackroll created for the data-carrying definition
/// `key`.
fn existing_version(
    input: &PlanInput<'_>,
    index: &KeyVersions<'_>,
    kind: ObjectKind,
    key: &str,
    id: &str,
) -> bool {
    input
        .project
        .definitions(kind)
        .get(key)
        .filter(|definition| {
            !definition.is_external() && !matches!(definition.source, Source::Driver(_))
        })
        .is_some_and(|definition| {
            index
                .of(kind, key, &base_name(input.namespace, definition))
                .iter()
                .any(|version| version.object.id == id)
        })
}

/// The seal a deploy should record: none when the stored one was verified and names exactly
/// the versions the plan uses.
fn seal_write(
    input: &PlanInput<'_>,
    observed: &Observed,
    resolved: &ResolvedObjects,
    stored: Option<&seal::StoredSeal<'_>>,
    stored_verified: bool,
) -> Option<SealWrite> {
    let mut versions = Vec::new();
    for kind in [ObjectKind::Secret, ObjectKind::Config] {
        for definition in input.project.definitions(kind).values() {
            if definition.is_external()
                || matches!(definition.source, Source::Driver(_))
                || input.contents.get(kind, &definition.key).is_none()
            {
                continue;
            }
            if let Some(object) = resolved.get(kind, &definition.key) {
                versions.push(VersionToSeal {
                    kind,
                    key: definition.key.clone(),
                    name: object.name.clone(),
                    id: object.id.clone(),
                });
            }
        }
    }
    let seals: Vec<&SwarmObject> = observed
        .configs
        .iter()
        .filter(|object| seal::is_seal(object, input.namespace))
        .collect();
    let current = stored.is_some_and(|stored| {
        stored_verified
            && seals.len() == 1
            && stored.versions.len() == versions.len()
            && stored.versions.iter().all(|sealed| {
                versions.iter().any(|version| {
                    version.kind == sealed.kind
                        && version.key == sealed.key
                        && version.id == sealed.id
                })
            })
    });
    if current || (versions.is_empty() && seals.is_empty()) {
        return None;
    }
    let serial = seals
        .iter()
        .filter_map(|object| object.labels.get(SEAL_SERIAL_LABEL)?.parse::<u64>().ok())
        .max()
        .map_or(1, |newest| newest + 1);
    Some(SealWrite {
        serial,
        versions,
        replaces: seals.iter().map(|object| object.id.clone()).collect(),
        reusable: stored.map(seal::reusable).unwrap_or_default(),
    })
}

/// Replaces network names in a spec's attachments with the IDs of existing networks, as the
/// engine stores them (order kept: docker/cli sorts by name before the engine resolves).
fn resolve_network_ids(spec: &mut Spec, networks: &[NetworkState]) {
    let Some(attachments) = spec
        .pointer_mut("/TaskTemplate/Networks")
        .and_then(serde_json::Value::as_array_mut)
    else {
        return;
    };
    for attachment in attachments {
        let target = attachment["Target"].as_str().unwrap_or_default();
        if let Some(network) = networks.iter().find(|network| network.name == target) {
            attachment["Target"] = serde_json::Value::from(network.id.clone());
        }
    }
}

/// For every secret and config with data, the index (newest first) of the existing version
/// whose content it has, if any: the version a verified content seal names (`sealed`), else
/// the one whose fingerprint matches. Fingerprints are deliberately slow to check (Argon2id),
/// so those checks run on every core.
fn matching_versions(
    input: &PlanInput<'_>,
    index: &KeyVersions<'_>,
    sealed: &HashMap<ObjectKey, String>,
) -> HashMap<ObjectKey, Option<usize>> {
    let mut found = HashMap::new();
    let mut jobs = Vec::new();
    for kind in [ObjectKind::Secret, ObjectKind::Config] {
        for definition in input.project.definitions(kind).values() {
            let Some(data) = input.contents.get(kind, &definition.key) else {
                continue;
            };
            if matches!(definition.source, Source::Driver(_)) {
                continue;
            }
            let base = base_name(input.namespace, definition);
            let existing = index.of(kind, &definition.key, &base);
            let key = ObjectKey::new(kind, &definition.key);
            if let Some(id) = sealed.get(&key) {
                // The seal vouches for this version: no check of its own.
                let index = existing.iter().position(|version| &version.object.id == id);
                found.insert(key, index);
                continue;
            }
            let stored = existing
                .into_iter()
                .map(|version| {
                    let labels = &version.object.labels;
                    labels.get(FINGERPRINT_LABEL).map_or("", String::as_str)
                })
                .collect();
            let material = Material {
                stack: &input.namespace.0,
                kind,
                key: &definition.key,
                data: data.expose(),
                template_driver: definition.template_driver.as_deref(),
            };
            jobs.push(FingerprintCheck {
                key,
                material,
                stored,
            });
        }
    }
    found.extend(check_fingerprints(jobs, input.fingerprinter));
    found
}

/// One definition's data to compare with the fingerprints of its versions.
struct FingerprintCheck<'a> {
    key: ObjectKey,
    material: Material<'a>,
    /// The fingerprint label of each version, newest first.
    stored: Vec<&'a str>,
}

/// Runs the checks on every core: for each, the index of the first version whose fingerprint
/// matches.
fn check_fingerprints(
    jobs: Vec<FingerprintCheck<'_>>,
    fingerprinter: &Fingerprinter,
) -> Vec<(ObjectKey, Option<usize>)> {
    let found = on_every_core(&jobs, |job| {
        job.stored
            .iter()
            .position(|stored| fingerprinter.matches(stored, job.material))
    });
    jobs.into_iter().map(|job| job.key).zip(found).collect()
}

enum Chosen<'o> {
    Existing(&'o SwarmObject),
    New { reason: String },
}

/// Picks the version whose content matches (newest first), or says why a new one is needed.
fn choose_version<'o>(
    matches: &HashMap<ObjectKey, Option<usize>>,
    definition: &Definition,
    versions: &[Version<'o>],
    notes: &mut Vec<String>,
) -> Chosen<'o> {
    let kind = definition.kind;
    if let Source::Driver(driver) = &definition.source {
        notes.push(format!(
            "{} {} comes from driver {driver}: its content cannot be fingerprinted, so it is created once and never rotated",
            kind.noun(),
            definition.key
        ));
        return match versions.first() {
            Some(newest) => Chosen::Existing(newest.object),
            None => Chosen::New {
                reason: "new".into(),
            },
        };
    }
    let matched = matches
        .get(&ObjectKey::new(kind, &definition.key))
        .cloned()
        .flatten();
    if let Some(index) = matched {
        let Version {
            number: version,
            object,
        } = versions[index];
        if index > 0 {
            notes.push(format!(
                "{} {}: content equals retained v{version}; switching back to {}",
                kind.noun(),
                definition.key,
                object.name
            ));
        }
        return Chosen::Existing(object);
    }
    Chosen::New {
        reason: match versions.first() {
            Some(newest) => format!("replaces v{}: content changed", newest.number),
            None => "first version".into(),
        },
    }
}
