//! Staged rotation of a credential held by services (Docker's "Rotate a secret"; a definition's
//! `x-stackroll-rotation:`): deciding, purely from the Compose project and the observed swarm,
//! which keys rotate, from which version to which, where an interrupted rotation resumes, and
//! the service specs of each stage.
//!
//! The stages, each recorded on the new version's labels once done so that a deploy killed in
//! any of them resumes there: the new version exists ([`Stage::Created`]) → every owner mounts
//! the new version at its usual target and the old one at `previous_target`, converged
//! ([`Stage::Holding`]) → the `apply` command ran in an owner ([`Stage::Applied`]) → every
//! consumer uses the new version, converged ([`Stage::Moved`]) → `finalize` ran
//! ([`Stage::Finalized`]) → owners lost the old version, converged ([`Stage::Done`]).
//!
//! Which version the owners' credential is ("the holder") follows from the newest rotation of
//! the key (highest serial): once its `apply` ran, its new version; before that, its old one;
//! with no rotation recorded, the version the owners mount at their usual target.

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::Value;

use crate::engine::{ServiceState, Spec, SwarmObject};
use crate::model::{Definition, ObjectKind, Project, RotationPolicy, RotationStep};

/// Label on a rotation's new version: the rotation's serial number (highest = newest).
pub const SERIAL_LABEL: &str = "io.stackroll.rotation.serial";
/// Label on a rotation's new version: the last stage done.
pub const STAGE_LABEL: &str = "io.stackroll.rotation.stage";
/// Label on a rotation's new version: the name of the version it rotates from.
pub const FROM_LABEL: &str = "io.stackroll.rotation.from";

/// A stage of a rotation, as recorded once done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// The new version exists (or was chosen, when its content equals a kept version).
    Created,
    /// Every owner mounts both versions and converged.
    Holding,
    /// The `apply` command succeeded (or there is none).
    Applied,
    /// Every consumer uses the new version and converged.
    Moved,
    /// The `finalize` command succeeded (or there is none).
    Finalized,
    /// Owners mount only the new version and converged: the rotation is over.
    Done,
}

impl Stage {
    /// Every stage, in order.
    pub const ALL: [Stage; 6] = [
        Stage::Created,
        Stage::Holding,
        Stage::Applied,
        Stage::Moved,
        Stage::Finalized,
        Stage::Done,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Stage::Created => "created",
            Stage::Holding => "holding",
            Stage::Applied => "applied",
            Stage::Moved => "moved",
            Stage::Finalized => "finalized",
            Stage::Done => "done",
        }
    }

    /// The stage a label value names.
    pub fn from_label(text: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|stage| stage.label() == text)
    }

    /// Which references the services have while this stage is the last one done: the phase
    /// a resumed deploy brings them to with its first write.
    fn phase(self) -> Phase {
        match self {
            Stage::Created | Stage::Holding => Phase::Holding,
            Stage::Applied | Stage::Moved => Phase::Moved,
            Stage::Finalized | Stage::Done => Phase::Final,
        }
    }
}

/// Which references the services of a rotation have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Owners: both versions; consumers: the old one.
    Holding,
    /// Owners: both; consumers: the new one.
    Moved,
    /// Everyone: the new one only.
    Final,
}

/// A version of a key, by name and ID (the ID is empty for a version the deploy creates).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionRef {
    /// Its swarm name.
    pub name: String,
    /// Its swarm ID.
    #[serde(skip)]
    pub id: String,
}

/// One owner and where it mounts the old version during the rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Owner {
    /// The service's swarm name.
    pub service: String,
    /// Its target for the old version, as written.
    pub previous_target: String,
}

/// A command of a rotation (`apply` or `finalize`), run in one running task of `service`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Command {
    /// The owner service's swarm name.
    pub service: String,
    /// The command and its arguments.
    pub command: Vec<String>,
    /// The user it runs as, if not the container's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// One key's rotation: what the executor needs, and what the plan shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rotation {
    /// Secret or config.
    pub kind: ObjectKind,
    /// The Compose key.
    pub key: String,
    /// The version whose credential the owners hold now.
    pub from: VersionRef,
    /// The version the key moves to.
    pub to: VersionRef,
    /// The rotation's serial number (recorded on `to`).
    #[serde(skip)]
    pub serial: u64,
    /// The last stage already done (`None`: nothing yet, `to` is not labelled).
    pub done: Option<Stage>,
    /// The owners.
    pub owners: Vec<Owner>,
    /// The other services of the stack that use the key (swarm names).
    pub consumers: Vec<String>,
    /// Run once the owners hold both versions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apply: Option<Command>,
    /// Run once every consumer moved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finalize: Option<Command>,
    /// The stages in order, for the plan to show.
    pub stages: Vec<StageStep>,
}

/// One stage of a rotation as the plan shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageStep {
    /// Its position, from 1.
    pub number: usize,
    /// The stage it reaches.
    pub stage: Stage,
    /// Whether an earlier deploy already did it.
    pub done: bool,
    /// What happens, in words.
    pub action: String,
    /// The services it writes or runs in (swarm names).
    pub services: Vec<String>,
}

impl Rotation {
    /// Whether `stage` still has to be done.
    pub fn needs(&self, stage: Stage) -> bool {
        self.done.is_none_or(|done| done < stage)
    }

    /// The labels `to` carries once `stage` is done, from the labels it has.
    pub fn labels_at(
        &self,
        labels: &IndexMap<String, String>,
        stage: Stage,
    ) -> IndexMap<String, String> {
        let mut labels = labels.clone();
        labels.insert(SERIAL_LABEL.into(), self.serial.to_string());
        labels.insert(STAGE_LABEL.into(), stage.label().into());
        labels.insert(FROM_LABEL.into(), self.from.name.clone());
        labels
    }

    /// The phase the first write of a deploy brings this rotation's services to.
    fn start_phase(&self) -> Phase {
        self.done.map_or(Phase::Holding, Stage::phase)
    }
}

/// The specs a service affected by rotations has at each phase.
#[derive(Debug, Clone, PartialEq)]
pub struct StagedService {
    /// Its swarm name.
    pub name: String,
    /// After the first write: every rotation's phase as it resumes (at least holding).
    pub start: Spec,
    /// Once consumers moved.
    pub moved: Spec,
    /// The desired spec: everyone on the new versions only.
    pub final_spec: Spec,
}

/// The newest rotation recorded on a key's versions.
struct Recorded<'o> {
    version: &'o SwarmObject,
    serial: u64,
    stage: Stage,
    from: Option<&'o str>,
}

fn newest_recorded<'o>(versions: &[&'o SwarmObject]) -> Option<Recorded<'o>> {
    versions
        .iter()
        .filter_map(|object| {
            Some(Recorded {
                version: object,
                serial: object.labels.get(SERIAL_LABEL)?.parse().ok()?,
                stage: Stage::from_label(object.labels.get(STAGE_LABEL)?)?,
                from: object.labels.get(FROM_LABEL).map(String::as_str),
            })
        })
        .max_by_key(|recorded| recorded.serial)
}

/// Everything [`rotation`] needs to know about one key.
pub struct KeyState<'a> {
    /// The definition (with its rotation policy).
    pub definition: &'a Definition,
    /// The policy.
    pub policy: &'a RotationPolicy,
    /// Every object of the key's kind that may be a version of it or an adopted original:
    /// the key's versions and its unversioned name, if it exists.
    pub candidates: Vec<&'a SwarmObject>,
    /// The version the plan uses for the key.
    pub to: VersionRef,
    /// Observed services of the stack.
    pub services: &'a [ServiceState],
}

/// The rotation one key needs, if any: none on a first deploy (no owner mounts a version
/// yet), none when the owners already hold the chosen version and nothing is unfinished.
pub fn rotation(
    state: &KeyState<'_>,
    project: &Project,
    scope: impl Fn(&str) -> String,
) -> Option<Rotation> {
    let definition = state.definition;
    let recorded = newest_recorded(&state.candidates);
    let (from, serial, done) = match &recorded {
        // `to`'s own rotation, unfinished: resume it, from the version it started from.
        Some(recorded)
            if recorded.version.name == state.to.name && recorded.stage < Stage::Done =>
        {
            let from = recorded.from.and_then(|name| by_name(state, name))?;
            (from, recorded.serial, Some(recorded.stage))
        }
        _ => {
            let holder = holder(state, recorded.as_ref(), &scope)?;
            if holder.name == state.to.name {
                return None;
            }
            (holder, recorded.as_ref().map_or(1, |r| r.serial + 1), None)
        }
    };
    let owners: Vec<Owner> = state
        .policy
        .owners
        .iter()
        .map(|owner| Owner {
            service: scope(&owner.service.value),
            previous_target: owner.previous_target.value.clone(),
        })
        .collect();
    let consumers = project
        .services
        .values()
        .filter(|service| {
            service
                .references(definition.kind)
                .iter()
                .any(|reference| reference.source.value == definition.key)
        })
        .map(|service| scope(&service.name))
        .filter(|name| !owners.iter().any(|owner| &owner.service == name))
        .collect();
    let command = |step: &Option<RotationStep>| {
        step.as_ref().map(|step| Command {
            service: scope(&step.service.value),
            command: step.command.clone(),
            user: step.user.clone(),
        })
    };
    let mut rotation = Rotation {
        kind: definition.kind,
        key: definition.key.clone(),
        from,
        to: state.to.clone(),
        serial,
        done,
        owners,
        consumers,
        apply: command(&state.policy.apply),
        finalize: command(&state.policy.finalize),
        stages: Vec::new(),
    };
    rotation.stages = stage_steps(&rotation);
    Some(rotation)
}

/// The six stages of `rotation`, in words.
fn stage_steps(rotation: &Rotation) -> Vec<StageStep> {
    let owners: Vec<String> = rotation.owners.iter().map(|o| o.service.clone()).collect();
    let (from, to) = (&rotation.from.name, &rotation.to.name);
    let run = |what: &str, command: &Option<Command>| match command {
        Some(command) => (
            format!(
                "{what}: run `{}` in a running task of {}",
                command.command.join(" "),
                command.service
            ),
            vec![command.service.clone()],
        ),
        None => (format!("no {what} step"), Vec::new()),
    };
    let holding = owners
        .iter()
        .zip(&rotation.owners)
        .map(|(name, owner)| format!("{name} ({from} at {})", owner.previous_target))
        .collect::<Vec<_>>()
        .join(", ");
    let (apply, apply_services) = run("apply", &rotation.apply);
    let (finalize, finalize_services) = run("finalize", &rotation.finalize);
    let consumers = if rotation.consumers.is_empty() {
        "no consumers to move".to_string()
    } else {
        format!(
            "consumers {} move to {to}; wait",
            rotation.consumers.join(", ")
        )
    };
    let created = if rotation.to.id.is_empty() {
        format!("create {to}")
    } else {
        format!("use {to} (it exists)")
    };
    let steps = [
        (Stage::Created, created, Vec::new()),
        (
            Stage::Holding,
            format!(
                "owners mount {to} at their usual targets and the old version too: {holding}; wait"
            ),
            owners.clone(),
        ),
        (Stage::Applied, apply, apply_services),
        (Stage::Moved, consumers, rotation.consumers.clone()),
        (Stage::Finalized, finalize, finalize_services),
        (
            Stage::Done,
            format!("owners unmount {from}; wait"),
            owners.clone(),
        ),
    ];
    steps
        .into_iter()
        .enumerate()
        .map(|(index, (stage, action, services))| StageStep {
            number: index + 1,
            stage,
            done: !rotation.needs(stage),
            action,
            services,
        })
        .collect()
}

/// The version whose credential the owners hold (see the module documentation).
fn holder(
    state: &KeyState<'_>,
    recorded: Option<&Recorded<'_>>,
    scope: &impl Fn(&str) -> String,
) -> Option<VersionRef> {
    let by_name = |name: &str| by_name(state, name);
    if let Some(recorded) = recorded {
        if recorded.stage >= Stage::Applied {
            return by_name(&recorded.version.name);
        }
        if let Some(found) = recorded.from.and_then(by_name) {
            return Some(found);
        }
    }
    // No usable record: the version an owner mounts at the key's usual target.
    let kind = state.definition.kind;
    let (list, _, name_key) = kind.spec_keys();
    state.policy.owners.iter().find_map(|owner| {
        let live = state
            .services
            .iter()
            .find(|service| service.name == scope(&owner.service.value))?;
        let refs = live
            .spec
            .pointer(&format!("/TaskTemplate/ContainerSpec/{list}"))?;
        refs.as_array()?
            .iter()
            .filter_map(|reference| reference[name_key].as_str())
            .find_map(by_name)
    })
}

/// The candidate called `name`.
fn by_name(state: &KeyState<'_>, name: &str) -> Option<VersionRef> {
    state
        .candidates
        .iter()
        .find(|object| object.name == name)
        .map(|object| VersionRef {
            name: object.name.clone(),
            id: object.id.clone(),
        })
}

/// The specs of every service the rotations touch, from each one's desired (final) spec.
pub fn staged_services(
    rotations: &[Rotation],
    desired: &IndexMap<String, Spec>,
) -> Vec<StagedService> {
    desired
        .iter()
        .filter(|(name, _)| {
            rotations
                .iter()
                .any(|rotation| role(rotation, name).is_some())
        })
        .map(|(name, final_spec)| StagedService {
            name: name.clone(),
            start: spec_at(final_spec, name, rotations, Phase::Holding),
            moved: spec_at(final_spec, name, rotations, Phase::Moved),
            final_spec: final_spec.clone(),
        })
        .collect()
}

/// A service's part in a rotation.
enum Role<'r> {
    Owner(&'r Owner),
    Consumer,
}

fn role<'r>(rotation: &'r Rotation, service: &str) -> Option<Role<'r>> {
    if let Some(owner) = rotation
        .owners
        .iter()
        .find(|owner| owner.service == service)
    {
        return Some(Role::Owner(owner));
    }
    rotation
        .consumers
        .iter()
        .any(|consumer| consumer == service)
        .then_some(Role::Consumer)
}

/// `final_spec` as it is at `phase` (each rotation at least at the phase it resumes from).
fn spec_at(final_spec: &Spec, service: &str, rotations: &[Rotation], phase: Phase) -> Spec {
    let mut spec = final_spec.clone();
    for rotation in rotations {
        let phase = phase.max(rotation.start_phase());
        match role(rotation, service) {
            Some(Role::Owner(owner)) if phase < Phase::Final => {
                add_previous(&mut spec, rotation, &owner.previous_target)
            }
            Some(Role::Consumer) if phase < Phase::Moved => point_to_previous(&mut spec, rotation),
            _ => {}
        }
    }
    spec
}

fn references_mut(spec: &mut Spec, kind: ObjectKind) -> Option<&mut Vec<Value>> {
    let (list, _, _) = kind.spec_keys();
    spec.pointer_mut(&format!("/TaskTemplate/ContainerSpec/{list}"))
        .and_then(Value::as_array_mut)
}

/// Consumers keep the old version at every target of the key.
fn point_to_previous(spec: &mut Spec, rotation: &Rotation) {
    let (_, id_key, name_key) = rotation.kind.spec_keys();
    let Some(refs) = references_mut(spec, rotation.kind) else {
        return;
    };
    for reference in refs.iter_mut() {
        if reference[name_key] == rotation.to.name.as_str() {
            reference[name_key] = Value::from(rotation.from.name.clone());
            reference[id_key] = Value::from(rotation.from.id.clone());
        }
    }
}

/// Owners also mount the old version at `previous_target`, with the owner, group and mode of
/// their first reference to the key, next to it.
fn add_previous(spec: &mut Spec, rotation: &Rotation, previous_target: &str) {
    let (_, id_key, name_key) = rotation.kind.spec_keys();
    let Some(refs) = references_mut(spec, rotation.kind) else {
        return;
    };
    let Some(at) = refs
        .iter()
        .position(|reference| reference[name_key] == rotation.to.name.as_str())
    else {
        return;
    };
    let mut previous = refs[at].clone();
    previous["File"]["Name"] = Value::from(previous_target);
    previous[name_key] = Value::from(rotation.from.name.clone());
    previous[id_key] = Value::from(rotation.from.id.clone());
    refs.insert(at + 1, previous);
}

#[cfg(test)]
mod tests;
