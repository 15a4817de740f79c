//! `stackroll context`: which engine stackroll would talk to, what chose it and how it would be
//! reached, resolved as the docker CLI resolves it, without connecting.

use clap::Args;

use super::{print, resolve_endpoint};
use crate::engine::endpoint::EngineFlags;
use crate::error::CliError;
use crate::render::format::OutputFormat;
use crate::render::target::render_endpoint;

/// Flags of `stackroll context`.
#[derive(Debug, Args)]
pub struct ContextArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// Resolves the endpoint and prints it.
pub(super) fn run(args: &ContextArgs, engine: &EngineFlags) -> Result<i32, CliError> {
    let endpoint = resolve_endpoint(engine)?;
    print(&render_endpoint(&endpoint, args.output))?;
    Ok(0)
}
