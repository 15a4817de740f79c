//! `stackroll plan`: show what `deploy` would change, writing nothing.

use clap::Args;

use super::{connect, prepare, print, runtime, ComposeArgs, EngineArgs, RegistryArgs};
use crate::deploy::{self, Outcome};
use crate::error::CliError;
use crate::render::plan::{render, OutputFormat, Report};

/// Flags of `stackroll plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Which Compose files and environment to load.
    #[command(flatten)]
    pub compose: ComposeArgs,
    /// Which Docker engine to talk to.
    #[command(flatten)]
    pub engine: EngineArgs,
    /// How images and their registries are treated.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Superseded versions of each secret and config to keep, as `deploy --keep` (what the
    /// plan deletes depends on it).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub keep: usize,
    /// Exit 2 when there are changes (0 when there are none).
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Also plan removing the stack's services and networks that the compose files no longer have.
    #[arg(long)]
    pub prune: bool,
    /// The stack name; default: COMPOSE_PROJECT_NAME, else the compose file's top-level `name:`.
    pub stack: Option<String>,
}

/// Plans against the swarm and prints the plan.
pub(super) fn run(args: &PlanArgs) -> Result<i32, CliError> {
    let prepared = prepare(&args.compose, args.stack.as_deref())?;
    let (auth, images) = args.registry.resolve(&prepared)?;
    let plan = runtime()?.block_on(async {
        let engine = connect(&args.engine).await?.with_registry_auth(auth);
        let plan = deploy::preview(&engine, &prepared, args.keep, args.prune, &images).await?;
        Ok::<_, CliError>(plan)
    })?;
    let report = Report {
        plan: &plan,
        outcome: Outcome::Planned,
        deleted: Vec::new(),
        failures: Vec::new(),
    };
    print(&render(&report, args.output))?;
    Ok(if args.detailed_exitcode && !plan.is_empty() {
        2
    } else {
        0
    })
}
