//! `stackroll config`: print the resolved Compose model.

use clap::Args;

use super::{load_project, print, ComposeArgs};
use crate::error::CliError;
use crate::render::config::{render_project, ConfigFormat};

/// Flags of `stackroll config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(flatten)]
    pub compose: ComposeArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ConfigFormat::Yaml)]
    pub format: ConfigFormat,
}

/// Loads the project and prints it.
pub(super) fn run(args: &ConfigArgs) -> Result<i32, CliError> {
    let loaded = load_project(&args.compose.resolve()?)?;
    print(&render_project(&loaded.project, args.format))?;
    Ok(0)
}
