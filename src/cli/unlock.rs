//! `stackroll unlock`: remove a deploy lock left by a deploy that died.

use clap::Args;

use super::{connect, print, runtime};
use crate::apply::lock;
use crate::engine::endpoint::EngineFlags;
use crate::error::CliError;
use crate::swarm::namespace::Namespace;

/// Flags of `stackroll unlock`.
#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// The stack name.
    pub stack: String,
}

/// Removes the stack's lock, whoever holds it, and says whose it was.
pub(super) fn run(args: &UnlockArgs, engine: &EngineFlags) -> Result<i32, CliError> {
    let namespace = Namespace(args.stack.clone());
    let holder = runtime()?.block_on(async {
        let (engine, _) = connect(engine).await?;
        Ok::<_, CliError>(lock::force_unlock(&engine, &namespace).await?)
    })?;
    match holder {
        Some(holder) => print(&format!(
            "Removed the deploy lock of stack {} (held by {holder}).\n",
            namespace.0
        ))?,
        None => print(&format!("Stack {} has no deploy lock.\n", namespace.0))?,
    }
    Ok(0)
}
