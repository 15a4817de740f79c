//! Diagnostics: problems found in user input, each pointing at a file, line and column, with
//! the offending field and a hint. Shared by the loader and later stages.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A source file the user gave us: how to name it in messages and where relative paths start.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SourceFile {
    /// The path as the user wrote it (or as it was discovered), for messages.
    pub display: String,
    /// The directory relative `file:` paths in this file resolve against (absolute).
    pub dir: PathBuf,
}

impl SourceFile {
    /// A source file named `display` whose relative paths resolve against `dir`.
    pub fn new(display: impl Into<String>, dir: impl AsRef<Path>) -> Arc<SourceFile> {
        Arc::new(SourceFile {
            display: display.into(),
            dir: dir.as_ref().to_path_buf(),
        })
    }
}

/// A position in a source file. `line` and `column` are 1-based; 0 means "no position".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    /// The file the position is in.
    pub file: Arc<SourceFile>,
    /// 1-based line, or 0 when only the file is known.
    pub line: usize,
    /// 1-based column, or 0 when unknown.
    pub column: usize,
}

impl Location {
    /// A location naming only a file.
    pub fn file_only(file: &Arc<SourceFile>) -> Location {
        Location {
            file: file.clone(),
            line: 0,
            column: 0,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (0, _) => write!(f, "{}", self.file.display),
            (line, 0) => write!(f, "{}:{line}", self.file.display),
            (line, column) => write!(f, "{}:{line}:{column}", self.file.display),
        }
    }
}

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Input is rejected; nothing is done.
    Error,
    /// Input is accepted but probably not what the user meant.
    Warning,
}

/// One problem in the user's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Where it is, when known.
    pub location: Option<Location>,
    /// The dotted path of the offending field, e.g. `services.app.secrets[0].source`.
    pub field: Option<String>,
    /// What is wrong, one sentence, lower case.
    pub message: String,
    /// What the user can do about it.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// An error at `location` with `message`.
    pub fn error(location: Option<Location>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            location,
            field: None,
            message: message.into(),
            hint: None,
        }
    }

    /// A warning at `location` with `message`.
    pub fn warning(location: Option<Location>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(location, message)
        }
    }

    /// The same diagnostic naming the offending field.
    pub fn field(mut self, field: impl Into<String>) -> Diagnostic {
        self.field = Some(field.into());
        self
    }

    /// The same diagnostic with a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    /// Whether this diagnostic rejects the input.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{label}: ")?;
        if let Some(location) = &self.location {
            write!(f, "{location}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Diagnostics collected while processing input, errors and warnings together.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Records one diagnostic.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    /// Records every diagnostic of `other`.
    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    /// Whether any recorded diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    /// All diagnostics in the order they were found.
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }

    /// Only the warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| !d.is_error())
    }

    /// The same diagnostics with, at each location, only the first error: a value that could
    /// not be read is not reported again by later checks of it.
    pub fn first_error_per_location(self) -> Diagnostics {
        let mut seen = std::collections::HashSet::new();
        let items = self
            .items
            .into_iter()
            .filter(|d| !d.is_error() || d.location.is_none() || seen.insert(d.location.clone()))
            .collect();
        Diagnostics { items }
    }

    /// Only the errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.is_error())
    }
}
