//! `stackroll rm`: remove a stack.

use clap::Args;

use super::{connect, print, runtime, timeout_flag, StackArgs};
use crate::error::CliError;
use crate::render::progress::stderr_reporter;
use crate::render::stacks::render_removed;
use crate::stacks::remove_stack;
use crate::swarm::namespace::Namespace;

/// Flags of `stackroll rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Which stack, on which engine.
    #[command(flatten)]
    pub stack: StackArgs,
    /// How long to wait for services to go away, e.g. 2m.
    #[arg(long, default_value = "2m", value_name = "DURATION")]
    pub timeout: String,
}

/// Removes the stack, reporting progress on stderr, and prints what was removed.
pub(super) fn run(args: &RmArgs) -> Result<i32, CliError> {
    let timeout = timeout_flag(&args.timeout)?;
    let namespace = Namespace(args.stack.stack.clone());
    let removed = runtime()?.block_on(async {
        let engine = connect(&args.stack.engine).await?;
        let reporter = stderr_reporter();
        Ok::<_, CliError>(remove_stack(&engine, &namespace, timeout, reporter.as_ref()).await?)
    })?;
    print(&render_removed(&namespace.0, &removed, args.stack.output))?;
    Ok(0)
}
