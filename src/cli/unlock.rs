//! `stackroll unlock`: remove a deploy lock left by a deploy that died.

use clap::Args;

use super::{connect, print, runtime, EngineArgs};
use crate::apply::lock;
use crate::error::CliError;
use crate::swarm::namespace::Namespace;

/// Flags of `stackroll unlock`.
#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// Which Docker engine to talk to.
    #[command(flatten)]
    pub engine: EngineArgs,
    /// The stack name.
    pub stack: String,
}

/// Removes the stack's lock, whoever holds it, and says whose it was.
pub(super) fn run(args: &UnlockArgs) -> Result<i32, CliError> {
    let namespace = Namespace(args.stack.clone());
    let holder = runtime()?.block_on(async {
        let engine = connect(&args.engine).await?;
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
