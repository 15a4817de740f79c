//! `stackroll ps`: list the tasks of a stack.

use super::{connect, print, runtime, StackArgs};
use crate::engine::endpoint::EngineFlags;
use crate::error::CliError;
use crate::render::stacks::render_tasks;
use crate::stacks::stack_tasks;
use crate::swarm::namespace::Namespace;

/// Lists the stack's tasks and prints them.
pub(super) fn run(args: &StackArgs, engine: &EngineFlags) -> Result<i32, CliError> {
    let namespace = Namespace(args.stack.clone());
    let tasks = runtime()?.block_on(async {
        let (engine, _) = connect(engine).await?;
        Ok::<_, CliError>(stack_tasks(&engine, &namespace).await?)
    })?;
    print(&render_tasks(&tasks, args.output))?;
    Ok(0)
}
