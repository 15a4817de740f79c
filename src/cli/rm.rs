//! `stackroll rm`: remove a stack, under its deploy lock.

use std::time::Duration;

use clap::Args;

use super::{connect, engine_command, print, runtime, signalled, timeout_flag, StackArgs};
use crate::apply::lock::LockTiming;
use crate::engine::endpoint::EngineFlags;
use crate::error::CliError;
use crate::render::progress::stderr_reporter;
use crate::render::stacks::render_removed;
use crate::stacks::remove_stack;
use crate::swarm::namespace::Namespace;

/// Flags of `stackroll rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Which stack, and the output format.
    #[command(flatten)]
    pub stack: StackArgs,
    /// How long to wait for services to go away, e.g. 2m.
    #[arg(long, default_value = "2m", value_name = "DURATION")]
    pub timeout: String,
    /// How long to wait for a deploy of the same stack to finish, e.g. 2m.
    #[arg(long, default_value = "2m", value_name = "DURATION")]
    pub lock_timeout: String,
}

/// Removes the stack, reporting progress on stderr, and prints what was removed.
pub(super) fn run(args: &RmArgs, engine: &EngineFlags) -> Result<i32, CliError> {
    let timeout = timeout_flag(&args.timeout)?;
    let lock_timing =
        LockTiming::waiting(timeout_flag(&args.lock_timeout)?, Duration::from_secs(1));
    let namespace = Namespace(args.stack.stack.clone());
    let command = engine_command(engine);
    let (removed, target) = runtime()?
        .block_on(async {
            let (engine, target) = connect(engine).await?;
            let reporter = stderr_reporter(&command);
            let stop = signalled()?;
            let removed = remove_stack(
                &engine,
                &namespace,
                timeout,
                &lock_timing,
                reporter.as_ref(),
                stop,
            )
            .await?;
            Ok::<_, CliError>((removed, target))
        })
        .map_err(|error| error.for_command(&command))?;
    print(&render_removed(
        &target,
        &namespace.0,
        &removed,
        args.stack.output,
    ))?;
    Ok(0)
}
