//! `stackroll status`: each secret's and config's versions and each service's rollout state;
//! exits with the stack's state (0 converged, 3 failed, 4 still updating).

use super::{connect, print, runtime, StackArgs};
use crate::engine::endpoint::EngineFlags;
use crate::error::CliError;
use crate::render::stacks::render_status;
use crate::stacks::stack_status;
use crate::swarm::namespace::Namespace;

/// Reads the stack's status, prints it and exits with its state.
pub(super) fn run(args: &StackArgs, engine: &EngineFlags) -> Result<i32, CliError> {
    let namespace = Namespace(args.stack.clone());
    let status = runtime()?.block_on(async {
        let (engine, _) = connect(engine).await?;
        Ok::<_, CliError>(stack_status(&engine, &namespace).await?)
    })?;
    print(&render_status(&status, args.output))?;
    Ok(status.state().exit_code())
}
