//! The one error type every command returns. Its kind picks the exit code; it carries hints
//! and, for bad input, every diagnostic found. Lower layers' errors become one through the
//! `From` impls here, which add the hints a user needs.

use std::fmt;

use crate::apply::lock::LockError;
use crate::apply::ApplyError;
use crate::deploy::{DeployError, PrepareError};
use crate::diagnostic::Diagnostics;
use crate::engine::endpoint::EndpointError;
use crate::engine::EngineError;
use crate::plan::PlanError;
use crate::registry::credentials::CredentialError;
use crate::stacks::rollback::RollbackError;
use crate::stacks::RemoveError;

/// What kind of failure, which decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad input or usage; nothing was written. Exit 1.
    User,
    /// The engine refused or could not be reached. Exit 1.
    Engine,
    /// A rollout failed or Swarm rolled a service back. Exit 3.
    Rollout,
    /// A bug in stackroll. Exit 70.
    Internal,
    /// Stopped by the signal with this number. Exit 128 + it (130 for SIGINT, 143 for
    /// SIGTERM).
    Interrupted(i32),
}

/// A failed command.
#[derive(Debug)]
pub struct CliError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// One-line summary.
    pub message: String,
    /// What the user can do next.
    pub hints: Vec<String>,
    /// Located problems in the input, printed before the summary.
    pub diagnostics: Diagnostics,
}

impl CliError {
    /// A failure of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> CliError {
        CliError {
            kind,
            message: message.into(),
            hints: Vec::new(),
            diagnostics: Diagnostics::default(),
        }
    }

    /// Bad input: every diagnostic is reported, then a summary counting the errors.
    pub fn invalid_input(diagnostics: Diagnostics) -> CliError {
        let count = diagnostics.errors().count();
        let noun = if count == 1 { "error" } else { "errors" };
        CliError {
            diagnostics,
            ..CliError::new(
                ErrorKind::User,
                format!("the compose files have {count} {noun}; nothing was done"),
            )
        }
    }

    /// The same error with one more hint.
    pub fn hint(mut self, hint: impl Into<String>) -> CliError {
        self.hints.push(hint.into());
        self
    }

    /// The same error with the commands its hints suggest (`` `stackroll ...` ``) starting
    /// with `command` instead: how the user runs stackroll against this engine
    /// (`stackroll -H ...`), so that a hint can be pasted as it is.
    pub fn for_command(mut self, command: &str) -> CliError {
        for hint in &mut self.hints {
            *hint = hint.replace("`stackroll ", &format!("`{command} "));
        }
        self
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self.kind {
            ErrorKind::User | ErrorKind::Engine => 1,
            ErrorKind::Rollout => 3,
            ErrorKind::Internal => 70,
            ErrorKind::Interrupted(signal) => 128 + signal,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for diagnostic in self.diagnostics.iter() {
            writeln!(f, "{diagnostic}")?;
        }
        write!(f, "error: {}", self.message)?;
        for hint in &self.hints {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CliError {}

impl From<EndpointError> for CliError {
    fn from(error: EndpointError) -> CliError {
        let hint = match &error {
            EndpointError::Conflict => "give either --context or -H/--host",
            EndpointError::UnknownContext { .. } => {
                "create it with `docker context create NAME --docker host=...`, or pick one \
                 that exists (--context, DOCKER_CONTEXT, `docker context use`)"
            }
            EndpointError::InvalidAddress { .. } => {
                "write unix:///PATH, tcp://HOST:PORT or ssh://[USER@]HOST[:PORT]"
            }
            EndpointError::File { .. } | EndpointError::NoConfigDir => {
                "`stackroll context` shows which engine and files stackroll would use"
            }
        };
        CliError::new(ErrorKind::User, error.to_string()).hint(hint)
    }
}

impl From<EngineError> for CliError {
    fn from(error: EngineError) -> CliError {
        let hint = match &error {
            EngineError::Unreachable { endpoint, message } => {
                Some(unreachable_hint(endpoint, message))
            }
            EngineError::TooOld { .. } => Some("upgrade Docker to 20.10 or newer"),
            _ => None,
        };
        let error = CliError::new(ErrorKind::Engine, error.to_string());
        match hint {
            Some(hint) => error.hint(hint),
            None => error,
        }
    }
}

impl From<CredentialError> for CliError {
    fn from(error: CredentialError) -> CliError {
        let hint = match &error {
            CredentialError::Config { .. } => "fix the file (`docker login` rewrites it), or point DOCKER_CONFIG at another directory",
            CredentialError::Helper { .. } => "check that the helper is on PATH and works (`docker login` uses it too), or deploy without --with-registry-auth",
        };
        CliError::new(ErrorKind::User, error.to_string()).hint(hint)
    }
}

/// What to try when the engine at `endpoint` could not be reached with `message`.
fn unreachable_hint(endpoint: &str, message: &str) -> &'static str {
    if endpoint.starts_with("ssh://") {
        "check that `ssh HOST docker version` works for this user (key, known hosts, docker on \
         the remote PATH); `stackroll context` shows the address used"
    } else if message.contains("certificate") || message.contains("TLS") {
        "check the CA, client certificate and key; `stackroll context` shows which files are used"
    } else {
        "start Docker, or choose the engine (--context, -H, DOCKER_HOST, DOCKER_CONTEXT); \
         `stackroll context` shows which one stackroll picked"
    }
}

impl From<PrepareError> for CliError {
    fn from(error: PrepareError) -> CliError {
        match error {
            PrepareError::StackName { .. } => CliError::new(ErrorKind::User, error.to_string())
                .hint("stack names use letters, digits, `-` and `_`, and start and end with a letter or digit"),
            PrepareError::NoStackName => CliError::new(ErrorKind::User, error.to_string()).hint(
                "e.g. `stackroll deploy mystack`, or `name: mystack` at the top of compose.yaml",
            ),
            PrepareError::Invalid(problems) => CliError::invalid_input(problems),
        }
    }
}

impl From<PlanError> for CliError {
    fn from(error: PlanError) -> CliError {
        match error {
            PlanError::MissingExternal(_) => CliError::new(ErrorKind::User, error.to_string())
                .hint("create them first (docker secret create / docker config create / docker network create), or drop `external:`"),
            PlanError::Invalid(problems) => CliError::invalid_input(problems),
            PlanError::NetworkTaken(_) => CliError::new(ErrorKind::User, error.to_string())
                .hint("give the network another name in the compose file (`networks: <key>: name:`), or deploy under another stack name"),
            PlanError::NameTaken(_) => CliError::new(ErrorKind::User, error.to_string())
                .hint("stack names and keys join with `_`, so stack `a` key `b_c` and stack `a_b` key `c` share names: set `name:` on the definition, or deploy under another stack name"),
        }
    }
}

impl From<LockError> for CliError {
    fn from(error: LockError) -> CliError {
        match error {
            LockError::Held { ref stack, .. } => {
                let hint = format!("wait for it, raise --lock-timeout, or if that deploy is dead run `stackroll unlock {stack}`");
                CliError::new(ErrorKind::User, error.to_string()).hint(hint)
            }
            LockError::Lost { .. } => CliError::new(ErrorKind::Engine, error.to_string()).hint(
                "another deploy may be writing now; once it is done, run the same deploy again",
            ),
            LockError::Engine(error) => error.into(),
        }
    }
}

impl From<ApplyError> for CliError {
    fn from(error: ApplyError) -> CliError {
        let hint = match &error {
            ApplyError::Engine { done, .. } => {
                let done = if done.is_empty() {
                    "nothing".to_string()
                } else {
                    done.join(", ")
                };
                format!("already written: {done}; run the same deploy again to finish (it picks up where this one stopped)")
            }
            ApplyError::Rollout(_) => "the previous secret and config versions are kept; fix the cause and deploy again (content equal to a kept version reuses it)".to_string(),
            ApplyError::RotationStep(failure) => rotation_step_hint(failure),
        };
        let kind = match error {
            ApplyError::Engine { .. } => ErrorKind::Engine,
            ApplyError::Rollout(_) | ApplyError::RotationStep(_) => ErrorKind::Rollout,
        };
        CliError::new(kind, error.to_string()).hint(hint)
    }
}

/// What a failed rotation command printed (values redacted) and how to go on.
fn rotation_step_hint(failure: &crate::apply::rotation::StepFailure) -> String {
    let mut hint = String::new();
    if !failure.output.is_empty() {
        hint.push_str("its last lines (secret values redacted):\n");
        for line in &failure.output {
            hint.push_str(&format!("    | {line}\n"));
        }
    }
    hint.push_str(match failure.step {
        "apply" => "no consumer moved: the old credential is still what every service uses; ",
        _ => "consumers use the new version and the owners still hold both; ",
    });
    hint.push_str("fix the command and deploy again: the rotation resumes at this step (apply and finalize must be safe to run twice)");
    hint
}

impl From<RemoveError> for CliError {
    fn from(error: RemoveError) -> CliError {
        match error {
            RemoveError::Engine(error) => error.into(),
            RemoveError::Lock(error) => error.into(),
            RemoveError::Interrupted { signal, .. } => {
                CliError::new(ErrorKind::Interrupted(signal.number()), error.to_string())
                    .hint("run `stackroll rm` again to finish")
            }
        }
    }
}

impl From<DeployError> for CliError {
    fn from(error: DeployError) -> CliError {
        match error {
            DeployError::Engine(error) => error.into(),
            DeployError::Plan(error) => error.into(),
            DeployError::Lock(error) => error.into(),
            DeployError::Apply(error) => error.into(),
            DeployError::Interrupted { signal, .. } => {
                CliError::new(ErrorKind::Interrupted(signal.number()), error.to_string()).hint(
                    "run the same deploy again to finish (it picks up where this one stopped)",
                )
            }
        }
    }
}

impl From<RollbackError> for CliError {
    fn from(error: RollbackError) -> CliError {
        match error {
            RollbackError::Engine(error) => error.into(),
            RollbackError::Lock(error) => error.into(),
            RollbackError::NothingToRollBack { .. } => CliError::new(ErrorKind::User, error.to_string())
                .hint("a service gets a previous spec when a deploy updates it; deploy the version you want instead"),
            RollbackError::MissingVersions { .. } => CliError::new(ErrorKind::User, error.to_string())
                .hint("deploy with --keep N to keep more superseded versions; deploy the version you want instead"),
            RollbackError::Rollout(_) => CliError::new(ErrorKind::Rollout, error.to_string())
                .hint("see `stackroll status` and `stackroll ps`; deploy a version that works"),
        }
    }
}
