//! `stackroll config`: print the resolved Compose model.

use clap::Args;

use super::{print, print_warnings, ComposeArgs};
use crate::deploy::prepare;
use crate::error::CliError;
use crate::render::config::{render_project, ConfigFormat};
use crate::swarm::namespace::Namespace;

/// Flags of `stackroll config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Which Compose files and environment to load.
    #[command(flatten)]
    pub compose: ComposeArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ConfigFormat::Yaml)]
    pub format: ConfigFormat,
}

/// Loads the project and prints it.
pub(super) fn run(args: &ConfigArgs) -> Result<i32, CliError> {
    // What docker stack deploy ignores does not depend on the stack's name.
    let namespace = Namespace("stack".into());
    let stack = prepare::load(&args.compose.resolve(None)?, &namespace)?;
    print_warnings(&stack);
    print(&render_project(&stack.loaded.project, args.format))?;
    Ok(0)
}
