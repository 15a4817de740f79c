//! `stackroll rollback`: put every service of a stack back on its previous spec, under the
//! deploy lock, and wait; `--dry-run` shows what would go back.

use std::time::Duration;

use clap::Args;

use super::{connect, engine_command, print, runtime, timeout_flag, StackArgs};
use crate::apply::lock::LockTiming;
use crate::apply::ApplyOptions;
use crate::engine::endpoint::EngineFlags;
use crate::error::CliError;
use crate::render::progress::stderr_reporter;
use crate::render::stacks::render_rollback;
use crate::stacks::rollback::{plan_rollback, rollback_stack};
use crate::swarm::namespace::Namespace;

/// Flags of `stackroll rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Which stack, on which engine.
    #[command(flatten)]
    pub stack: StackArgs,
    /// Only show what would go back.
    #[arg(long)]
    pub dry_run: bool,
    /// How long to wait for the services to converge, e.g. 90s or 10m.
    #[arg(long, default_value = "10m", value_name = "DURATION")]
    pub timeout: String,
    /// How long to wait for a deploy of the same stack to finish, e.g. 2m.
    #[arg(long, default_value = "2m", value_name = "DURATION")]
    pub lock_timeout: String,
}

/// Plans or runs the rollback and prints it.
pub(super) fn run(args: &RollbackArgs, flags: &EngineFlags) -> Result<i32, CliError> {
    let options = ApplyOptions::waiting(timeout_flag(&args.timeout)?);
    let lock_timing =
        LockTiming::waiting(timeout_flag(&args.lock_timeout)?, Duration::from_secs(1));
    let namespace = Namespace(args.stack.stack.clone());
    let plan = runtime()?.block_on(async {
        let (engine, _) = connect(flags).await?;
        if args.dry_run {
            return Ok::<_, CliError>(plan_rollback(&engine, &namespace).await?);
        }
        let reporter = stderr_reporter(&engine_command(flags));
        let plan = rollback_stack(
            &engine,
            &namespace,
            &options,
            &lock_timing,
            reporter.as_ref(),
        )
        .await?;
        Ok(plan)
    })?;
    print(&render_rollback(&plan, !args.dry_run, args.stack.output))?;
    Ok(0)
}
