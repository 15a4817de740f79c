//! `stackroll completions SHELL` and `stackroll man`: shell completion scripts (clap_complete)
//! and the man page (clap_mangen), generated from the same clap definition as the parser.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::{print, Cli};
use crate::error::{CliError, ErrorKind};

/// Flags of `stackroll completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Prints the completion script for the shell.
pub(super) fn completions(args: &CompletionsArgs) -> Result<i32, CliError> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "stackroll", &mut script);
    print(&String::from_utf8_lossy(&script))?;
    Ok(0)
}

/// Prints the man page (roff), e.g. `stackroll man > stackroll.1`.
pub(super) fn man() -> Result<i32, CliError> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .map_err(|error| {
            CliError::new(
                ErrorKind::Internal,
                format!("cannot render the man page: {error}"),
            )
        })?;
    print(&String::from_utf8_lossy(&page))?;
    Ok(0)
}
