//! `stackroll wait`: wait for a stack's services, whoever deployed them, judged as `deploy`
//! judges them; exit 0 when all converged, 3 when one failed or did not converge in time.

use clap::Args;

use super::{connect, engine_command, print, runtime, timeout_flag, StackArgs};
use crate::apply::ApplyOptions;
use crate::engine::endpoint::EngineFlags;
use crate::error::CliError;
use crate::render::progress::stderr_reporter;
use crate::render::stacks::render_wait;
use crate::stacks::wait::wait_for_stack;
use crate::swarm::namespace::Namespace;

/// Flags of `stackroll wait`.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Which stack, on which engine.
    #[command(flatten)]
    pub stack: StackArgs,
    /// How long to wait for the services to converge, e.g. 90s or 10m.
    #[arg(long, default_value = "10m", value_name = "DURATION")]
    pub timeout: String,
}

/// Waits, reporting progress on stderr, prints the outcome and exits with it.
pub(super) fn run(args: &WaitArgs, flags: &EngineFlags) -> Result<i32, CliError> {
    let options = ApplyOptions::waiting(timeout_flag(&args.timeout)?);
    let namespace = Namespace(args.stack.stack.clone());
    let outcome = runtime()?.block_on(async {
        let (engine, _) = connect(flags).await?;
        let reporter = stderr_reporter(&engine_command(flags));
        Ok::<_, CliError>(wait_for_stack(&engine, &namespace, &options, reporter.as_ref()).await?)
    })?;
    print(&render_wait(&outcome, args.stack.output))?;
    Ok(if outcome.failures.is_empty() { 0 } else { 3 })
}
