//! Carrying out staged rotations (`plan::rotation`) once the plan's first write converged:
//! `apply` in an owner, consumers moved to the new version, `finalize`, owners' old version
//! unmounted; every stage waits for convergence and is recorded on the new version's labels
//! before the next begins, so a deploy killed anywhere resumes where it stopped.

use std::time::Duration;

use super::rollout::{self, Watched};
use super::services::{update_service_in_sequence, with_object_ids};
use super::versions::CreatedVersions;
use super::{kill_point, ApplyOptions, Progress, Reporter};
use crate::contents::Contents;
use crate::engine::{Engine, EngineError, ExecRequest, Spec, TaskState};
use crate::model::SensitiveBytes;
use crate::plan::canonical;
use crate::plan::rotation::{Command, Rotation, Stage, StagedService};

/// How many lines of a failed command's output are shown.
const OUTPUT_LINES: usize = 10;

/// Why a rotation stopped.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    /// An engine call failed.
    #[error("{during} failed: {error}")]
    Engine {
        /// What was being done.
        during: String,
        /// The engine's error.
        error: EngineError,
    },
    /// A rotation command failed (or could not run): nothing after it happened.
    #[error("{}", .0)]
    Step(StepFailure),
    /// Services did not converge in a stage.
    #[error("services did not converge")]
    Rollout(Vec<rollout::RolloutFailure>),
}

/// A rotation command that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailure {
    /// `apply` or `finalize`.
    pub step: &'static str,
    /// The key being rotated, e.g. `secret db_password`.
    pub key: String,
    /// The service whose task ran it.
    pub service: String,
    /// Its exit code, when it ran.
    pub exit_code: Option<i64>,
    /// Why it failed, when it did not run.
    pub reason: Option<String>,
    /// The last lines it printed, with both versions' values redacted (empty when they could
    /// not be made safe to show).
    pub output: Vec<String>,
}

impl std::fmt::Display for StepFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the {} step of the rotation of {} in service {} ",
            self.step, self.key, self.service
        )?;
        match (self.exit_code, &self.reason) {
            (Some(code), _) => write!(f, "exited with {code}"),
            (None, Some(reason)) => write!(f, "could not run: {reason}"),
            (None, None) => write!(f, "failed"),
        }
    }
}

/// What the stage runner needs.
pub struct Stages<'a> {
    /// The rotations, in plan order.
    pub rotations: &'a [Rotation],
    /// The specs of every service they touch.
    pub services: &'a [StagedService],
    /// The versions this deploy created.
    pub created: &'a CreatedVersions,
    /// The data of every key (the new versions' values, for redaction).
    pub contents: &'a Contents,
}

/// Records `Created` on the new versions that existed before this deploy (new ones are
/// created with it), before any service is written.
pub async fn begin<E: Engine>(engine: &E, stages: &Stages<'_>) -> Result<(), RotationError> {
    for rotation in stages
        .rotations
        .iter()
        .filter(|r| r.done.is_none() && !r.to.id.is_empty())
    {
        record(engine, rotation, &rotation.to.id, Stage::Created).await?;
    }
    Ok(())
}

/// Runs every stage after the first write, which left owners holding both versions.
pub async fn run<E: Engine>(
    engine: &E,
    stages: &Stages<'_>,
    reporter: &dyn Reporter,
    options: &ApplyOptions,
) -> Result<(), RotationError> {
    record_all(engine, stages, Stage::Holding).await?;
    kill_point(options, "rotation-holding");
    run_commands(engine, stages, Stage::Applied, reporter, options).await?;
    kill_point(options, "rotation-applied");
    write_phase(engine, stages, |service| &service.moved, reporter, options).await?;
    record_all(engine, stages, Stage::Moved).await?;
    kill_point(options, "rotation-moved");
    run_commands(engine, stages, Stage::Finalized, reporter, options).await?;
    kill_point(options, "rotation-finalized");
    write_phase(
        engine,
        stages,
        |service| &service.final_spec,
        reporter,
        options,
    )
    .await?;
    record_all(engine, stages, Stage::Done).await
}

/// Runs the `apply` (or `finalize`) commands of the rotations that still need `stage`, then
/// records it.
async fn run_commands<E: Engine>(
    engine: &E,
    stages: &Stages<'_>,
    stage: Stage,
    reporter: &dyn Reporter,
    options: &ApplyOptions,
) -> Result<(), RotationError> {
    for rotation in stages.rotations.iter().filter(|r| r.needs(stage)) {
        let (step, command) = match stage {
            Stage::Applied => ("apply", &rotation.apply),
            _ => ("finalize", &rotation.finalize),
        };
        if let Some(command) = command {
            reporter.report(Progress::RotationStep {
                step,
                key: &rotation.key,
                service: &command.service,
            });
            run_command(engine, stages, rotation, step, command, options.timeout).await?;
        }
        record(engine, rotation, &to_id(stages, rotation), stage).await?;
    }
    Ok(())
}

/// Runs one command in a running task of its service on this engine's node.
async fn run_command<E: Engine>(
    engine: &E,
    stages: &Stages<'_>,
    rotation: &Rotation,
    step: &'static str,
    command: &Command,
    timeout: Duration,
) -> Result<(), RotationError> {
    let failure = |exit_code, reason: Option<String>, output| {
        RotationError::Step(StepFailure {
            step,
            key: format!("{} {}", rotation.kind.noun(), rotation.key),
            service: command.service.clone(),
            exit_code,
            reason,
            output,
        })
    };
    let container = match running_container(engine, &command.service).await? {
        Ok(container) => container,
        Err(reason) => return Err(failure(None, Some(reason), Vec::new())),
    };
    let request = ExecRequest {
        container_id: container.clone(),
        command: command.command.clone(),
        user: command.user.clone(),
    };
    let outcome = match tokio::time::timeout(timeout, engine.exec(&request)).await {
        Ok(result) => result.map_err(|error| RotationError::Engine {
            during: format!("running the {step} step in service {}", command.service),
            error,
        })?,
        Err(_) => {
            let reason = format!("it did not finish within {}s", timeout.as_secs());
            return Err(failure(None, Some(reason), Vec::new()));
        }
    };
    if outcome.exit_code == 0 {
        return Ok(());
    }
    let output = shown_output(
        engine,
        stages,
        rotation,
        &container,
        command,
        &outcome.output,
    )
    .await;
    Err(failure(Some(outcome.exit_code), None, output))
}

/// The container of a running task of `service` on this engine's node, or why there is none.
async fn running_container<E: Engine>(
    engine: &E,
    service: &str,
) -> Result<Result<String, String>, RotationError> {
    let read = |error| RotationError::Engine {
        during: format!("reading the tasks of service {service}"),
        error,
    };
    let info = engine.info().await.map_err(read)?;
    let live = engine.inspect_service(service).await.map_err(read)?;
    let tasks = engine.list_tasks(&live.id).await.map_err(read)?;
    let running: Vec<&TaskState> = tasks
        .iter()
        .filter(|task| task.state == "running" && task.desired_state == "running")
        .collect();
    if let Some(container) = running
        .iter()
        .filter(|task| task.node_id == info.node_id)
        .find_map(|task| task.container_id.clone())
    {
        return Ok(Ok(container));
    }
    Ok(Err(if running.is_empty() {
        "no task of it is running".to_string()
    } else {
        format!(
            "its running tasks are on other nodes than the manager stackroll talks to ({}); place one task on this node (a placement constraint) or deploy through the node that runs it",
            info.node_id
        )
    }))
}

/// The last lines a failed command printed, with the new and the old value replaced by
/// `[redacted]`. The old value cannot be read from Swarm: it is read from the owner's
/// `previous_target` in the same container; if that fails, no output is shown at all.
async fn shown_output<E: Engine>(
    engine: &E,
    stages: &Stages<'_>,
    rotation: &Rotation,
    container: &str,
    command: &Command,
    output: &SensitiveBytes,
) -> Vec<String> {
    let Some(new) = stages.contents.get(rotation.kind, &rotation.key) else {
        return vec!["(output hidden: the new value is not known to redact it)".into()];
    };
    let Some(old) = old_value(engine, rotation, container, command).await else {
        return vec!["(output hidden: the old value could not be read to redact it)".into()];
    };
    let redacted = redact(output.expose(), &[new.expose(), old.expose()]);
    let text = String::from_utf8_lossy(&redacted).into_owned();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[lines.len().saturating_sub(OUTPUT_LINES)..].to_vec()
}

/// The old version's value, read with `cat` from where the owner mounts it.
async fn old_value<E: Engine>(
    engine: &E,
    rotation: &Rotation,
    container: &str,
    command: &Command,
) -> Option<SensitiveBytes> {
    let owner = rotation
        .owners
        .iter()
        .find(|o| o.service == command.service)?;
    let path = rotation.kind.effective_target(&owner.previous_target);
    let request = ExecRequest {
        container_id: container.to_string(),
        command: vec!["cat".into(), path],
        user: command.user.clone(),
    };
    let outcome = engine.exec(&request).await.ok()?;
    (outcome.exit_code == 0 && !outcome.output.is_empty()).then_some(outcome.output)
}

/// `bytes` with every occurrence of each value (and of the value without its trailing
/// newline) replaced by `[redacted]`.
pub fn redact(bytes: &[u8], values: &[&[u8]]) -> Vec<u8> {
    let mut needles: Vec<&[u8]> = values
        .iter()
        .flat_map(|value| [*value, value.trim_ascii_end(), value.trim_ascii()])
        .filter(|needle| !needle.is_empty())
        .collect();
    // Longest first, so a value is not left half-shown by a shorter one inside it.
    needles.sort_by_key(|needle| std::cmp::Reverse(needle.len()));
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        match needles
            .iter()
            .find(|needle| bytes[at..].starts_with(needle))
        {
            Some(needle) => {
                out.extend_from_slice(b"[redacted]");
                at += needle.len();
            }
            None => {
                out.push(bytes[at]);
                at += 1;
            }
        }
    }
    out
}

/// Writes every staged service whose live spec differs from `phase`'s, then waits for them.
async fn write_phase<E: Engine>(
    engine: &E,
    stages: &Stages<'_>,
    phase: impl Fn(&StagedService) -> &Spec,
    reporter: &dyn Reporter,
    options: &ApplyOptions,
) -> Result<(), RotationError> {
    let mut watched = Vec::new();
    for service in stages.services {
        let during = |what: &str| format!("{what} service {}", service.name);
        let live = engine
            .inspect_service(&service.name)
            .await
            .map_err(|error| RotationError::Engine {
                during: during("reading"),
                error,
            })?;
        let mut spec = with_object_ids(phase(service), stages.created);
        canonical::keep_force_update(&mut spec, &live.spec);
        if canonical::differences(&live.spec, &spec).is_empty() {
            continue;
        }
        let replaces_tasks = canonical::replaces_tasks(&live.spec, &spec);
        update_service_in_sequence(engine, &live.id, live.version, spec)
            .await
            .map_err(|error| RotationError::Engine {
                during: during("updating"),
                error,
            })?;
        reporter.report(Progress::Updated {
            name: &service.name,
        });
        watched.push(Watched {
            id: live.id,
            name: service.name.clone(),
            replaces_tasks,
        });
    }
    let failures = rollout::wait_for_rollouts(engine, &watched, options, reporter)
        .await
        .map_err(|error| RotationError::Engine {
            during: "waiting for services to converge".into(),
            error,
        })?;
    if failures.is_empty() {
        Ok(())
    } else {
        Err(RotationError::Rollout(failures))
    }
}

/// The new version's ID: from the plan, or created by this deploy.
fn to_id(stages: &Stages<'_>, rotation: &Rotation) -> String {
    if !rotation.to.id.is_empty() {
        return rotation.to.id.clone();
    }
    stages
        .created
        .id(rotation.kind, &rotation.to.name)
        .unwrap_or_default()
        .to_string()
}

/// Records `stage` on every rotation that had not reached it yet.
async fn record_all<E: Engine>(
    engine: &E,
    stages: &Stages<'_>,
    stage: Stage,
) -> Result<(), RotationError> {
    for rotation in stages.rotations.iter().filter(|r| r.needs(stage)) {
        record(engine, rotation, &to_id(stages, rotation), stage).await?;
    }
    Ok(())
}

/// Records `stage` on the rotation's new version (its other labels are kept).
async fn record<E: Engine>(
    engine: &E,
    rotation: &Rotation,
    id: &str,
    stage: Stage,
) -> Result<(), RotationError> {
    let during = || {
        format!(
            "recording stage {} of the rotation of {}",
            stage.label(),
            rotation.to.name
        )
    };
    let objects = engine
        .list_objects(rotation.kind, None)
        .await
        .map_err(|error| RotationError::Engine {
            during: during(),
            error,
        })?;
    let labels = objects
        .iter()
        .find(|object| object.id == id)
        .map(|object| rotation.labels_at(&object.labels, stage))
        .ok_or_else(|| RotationError::Engine {
            during: during(),
            error: EngineError::NotFound(format!("{} {}", rotation.kind.noun(), rotation.to.name)),
        })?;
    engine
        .set_object_labels(rotation.kind, id, &labels)
        .await
        .map_err(|error| RotationError::Engine {
            during: during(),
            error,
        })
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn values_are_redacted_with_and_without_their_trailing_newline() {
        let output = b"old=hunter2 new=s3cret\ns3cret\n\nhunter2x";
        let redacted = redact(output, &[b"s3cret\n", b"hunter2"]);
        assert_eq!(
            String::from_utf8(redacted).unwrap(),
            "old=[redacted] new=[redacted][redacted]\n[redacted]x"
        );
    }
}
