//! `stackroll ls`: list stacks.

use clap::Args;

use super::{connect, print, runtime};
use crate::engine::endpoint::EngineFlags;
use crate::error::CliError;
use crate::render::format::OutputFormat;
use crate::render::stacks::render_stacks;
use crate::stacks::list_stacks;

/// Flags of `stackroll ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// Lists the stacks and prints them.
pub(super) fn run(args: &LsArgs, engine: &EngineFlags) -> Result<i32, CliError> {
    let stacks = runtime()?.block_on(async {
        let (engine, _) = connect(engine).await?;
        Ok::<_, CliError>(list_stacks(&engine).await?)
    })?;
    print(&render_stacks(&stacks, args.output))?;
    Ok(0)
}
