//! `stackroll plan`: show what `deploy` would change, writing nothing.

use clap::Args;

use super::{connect, prepare, print, runtime, ComposeArgs, RegistryArgs};
use crate::deploy::{self, Outcome};
use crate::engine::endpoint::EngineFlags;
use crate::error::CliError;
use crate::render::format::PlanFormat;
use crate::render::plan::Report;
use crate::render::render_plan;

/// Flags of `stackroll plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Which Compose files and environment to load.
    #[command(flatten)]
    pub compose: ComposeArgs,
    /// How images and their registries are treated.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub output: PlanFormat,
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
pub(super) fn run(args: &PlanArgs, engine: &EngineFlags) -> Result<i32, CliError> {
    let prepared = prepare(&args.compose, args.stack.as_deref())?;
    let (auth, images) = args.registry.resolve(&prepared, engine)?;
    let (plan, target) = runtime()?.block_on(async {
        let (engine, target) = connect(engine).await?;
        let engine = engine.with_registry_auth(auth);
        let plan = deploy::preview(&engine, &prepared, args.keep, args.prune, &images).await?;
        Ok::<_, CliError>((plan, target))
    })?;
    let report = Report {
        target: &target,
        plan: &plan,
        outcome: Outcome::Planned,
        deleted: Vec::new(),
        failures: Vec::new(),
        measured_seconds: None,
    };
    let warnings: Vec<String> = prepared
        .loaded
        .warnings
        .warnings()
        .map(ToString::to_string)
        .collect();
    print(&render_plan(&report, args.output, &warnings))?;
    Ok(if args.detailed_exitcode && !plan.is_empty() {
        2
    } else {
        0
    })
}
