//! The one error type every command returns. Its kind picks the exit code; it carries hints
//! and, for bad input, every diagnostic found.

use std::fmt;

use crate::diagnostic::Diagnostics;

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

    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self.kind {
            ErrorKind::User | ErrorKind::Engine => 1,
            ErrorKind::Rollout => 3,
            ErrorKind::Internal => 70,
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
