//! `stackroll deploy`: resolve the flags into [`DeployOptions`], run the library's deploy,
//! and print its outcome: in text, the plan before the first write and a closing line after;
//! in JSON, one report at the end.

use std::sync::Mutex;
use std::time::Duration;

use clap::Args;

use super::managers::{connect_first, Managers};
use super::{
    engine_command, prepare, print, runtime, signalled, timeout_flag, ComposeArgs, RegistryArgs,
};
use crate::apply::{ApplyError, ApplyOptions};
use crate::deploy::{self, DeployOptions, DeployOutcome, Failover, ImageOptions, Outcome};
use crate::engine::docker::DockerEngine;
use crate::engine::endpoint::EngineFlags;
use crate::engine::Target;
use crate::error::CliError;
use crate::plan::Plan;
use crate::progress::{Progress, Reporter};
use crate::registry::RegistryAuth;
use crate::render::format::OutputFormat;
use crate::render::plan::{render, Report};
use crate::render::progress::stderr_reporter;

/// Flags of `stackroll deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Which Compose files and environment to load.
    #[command(flatten)]
    pub compose: ComposeArgs,
    /// How images and their registries are treated.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Superseded versions of each secret and config to keep for rollbacks.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub keep: usize,
    /// Do not wait for services to converge (and so do not prune).
    #[arg(long)]
    pub detach: bool,
    /// How long to wait for services to converge, e.g. 90s or 10m.
    #[arg(long, default_value = "10m", value_name = "DURATION")]
    pub timeout: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Only show the plan, like `stackroll plan`.
    #[arg(long)]
    pub dry_run: bool,
    /// Also remove the stack's services and networks that the compose files no longer have.
    #[arg(long)]
    pub prune: bool,
    /// How long to wait for another deploy of the same stack to finish, e.g. 2m.
    #[arg(long, default_value = "2m", value_name = "DURATION")]
    pub lock_timeout: String,
    /// The stack name; default: COMPOSE_PROJECT_NAME, else the compose file's top-level `name:`.
    pub stack: Option<String>,
}

impl DeployArgs {
    /// The deploy settings these flags give (and `STACKROLL_TEST_KILL_AT`, in test builds).
    /// The image options are filled in once the project is loaded ([`RegistryArgs`]).
    fn resolve(&self) -> Result<DeployOptions, CliError> {
        let timeout = timeout_flag(&self.timeout)?;
        let lock_wait = timeout_flag(&self.lock_timeout)?;
        Ok(DeployOptions {
            images: ImageOptions::default(),
            keep: self.keep,
            prune: self.prune,
            dry_run: self.dry_run,
            lock_wait,
            lock_poll: Duration::from_secs(1),
            apply: ApplyOptions {
                detach: self.detach,
                kill_at: test_kill_point(),
                ..ApplyOptions::waiting(timeout)
            },
        })
    }
}

/// `STACKROLL_TEST_KILL_AT`, the fault-injection point of the crash tests: read only in builds
/// with the `test-kill-points` feature, so a release binary ignores it.
fn test_kill_point() -> Option<String> {
    #[cfg(feature = "test-kill-points")]
    return std::env::var("STACKROLL_TEST_KILL_AT").ok();
    #[cfg(not(feature = "test-kill-points"))]
    None
}

/// Deploys and prints the outcome; a failed rollout exits 3 after its report.
pub(super) fn run(args: &DeployArgs, engine: &EngineFlags) -> Result<i32, CliError> {
    let mut options = args.resolve()?;
    let prepared = prepare(&args.compose, args.stack.as_deref())?;
    let (auth, images) = args.registry.resolve(&prepared, engine)?;
    options.images = images;
    let command = engine_command(engine);
    let (deployed, target) = runtime()?
        .block_on(async {
            let (engine, mut managers) = connect_first(engine).await?;
            let engine = engine.with_registry_auth(auth.clone());
            let reporter = DeployReporter {
                progress: stderr_reporter(&command),
                output: args.output,
                target: Mutex::new(managers.target.clone()),
                print_error: Mutex::new(None),
            };
            let stop = signalled()?;
            let deployed = deploy::run_failing_over(
                &engine,
                &mut Retargeting {
                    managers: &mut managers,
                    reporter: &reporter,
                    auth,
                },
                &prepared,
                &options,
                &reporter,
                stop,
            )
            .await?;
            if let Some(error) = reporter.print_error.into_inner().expect("print error lock") {
                return Err(error);
            }
            Ok::<_, CliError>((deployed, managers.target))
        })
        .map_err(|error| error.for_command(&command))?;
    print_outcome(&deployed, &target, args)?;
    match deployed.outcome {
        Outcome::RolloutFailed => Err(ApplyError::Rollout(deployed.failures).into()),
        _ => Ok(0),
    }
}

/// Prints how the deploy ended. A deploy that carried nothing out prints its report; one
/// that did printed its plan already (text) and adds a closing line, or prints the whole
/// report (JSON).
fn print_outcome(
    deployed: &DeployOutcome,
    target: &Target,
    args: &DeployArgs,
) -> Result<(), CliError> {
    if !deployed.executed || args.output == OutputFormat::Json {
        let report = Report {
            target,
            plan: &deployed.plan,
            outcome: deployed.outcome,
            deleted: deployed.deleted.clone(),
            failures: deployed.failures.clone(),
            measured_seconds: measured_seconds(deployed),
        };
        return print(&render(&report, args.output));
    }
    let took = match measured_seconds(deployed) {
        Some(seconds) => format!(
            " Rollout took {seconds} s (estimated about {} s).",
            deployed.plan.impact.estimate_seconds
        ),
        None => String::new(),
    };
    match deployed.outcome {
        Outcome::Applied if args.detach => print("Applied (not waiting for services: --detach).\n"),
        Outcome::Applied => print(&format!("Applied.{took}\n")),
        Outcome::NoChanges => print("Every service converged.\n"),
        Outcome::Planned | Outcome::RolloutFailed => Ok(()),
    }
}

/// How long an executed deploy took to converge, in whole seconds (rounded to nearest), when
/// it waited for its services.
fn measured_seconds(deployed: &DeployOutcome) -> Option<u64> {
    deployed
        .rollout
        .map(|took| (took.as_millis() as u64 + 500) / 1000)
}

/// The deploy's reporter: progress goes to stderr; in text output the plan is printed on
/// stdout before the first write, so the user sees it while the deploy runs.
struct DeployReporter {
    /// The stderr printer.
    progress: Box<dyn Reporter>,
    /// The output format asked for.
    output: OutputFormat,
    /// The engine deployed to, named at the top of the plan (the next manager's after a
    /// failover).
    target: Mutex<Target>,
    /// A failure to print the plan, returned once the deploy is over.
    print_error: Mutex<Option<CliError>>,
}

impl Reporter for DeployReporter {
    fn report(&self, event: Progress<'_>) {
        self.progress.report(event);
    }

    fn applying(&self, plan: &Plan) {
        if self.output != OutputFormat::Text {
            return;
        }
        let target = self.target.lock().expect("target lock").clone();
        let report = Report {
            target: &target,
            plan,
            outcome: Outcome::Planned,
            deleted: Vec::new(),
            failures: Vec::new(),
            measured_seconds: None,
        };
        if let Err(error) = print(&render(&report, OutputFormat::Text)) {
            let mut slot = self.print_error.lock().expect("print error lock");
            slot.get_or_insert(error);
        }
    }
}

/// The managers a deploy may go on with, telling the reporter which one it goes on with.
struct Retargeting<'a> {
    /// The managers named.
    managers: &'a mut Managers,
    /// The reporter whose plan header names the manager in use.
    reporter: &'a DeployReporter,
    /// The registry credentials every manager's engine sends (`--with-registry-auth`).
    auth: RegistryAuth,
}

impl Failover<DockerEngine> for Retargeting<'_> {
    async fn next_manager(&mut self) -> Option<(DockerEngine, String)> {
        let (engine, named) = self.managers.next_manager().await?;
        *self.reporter.target.lock().expect("target lock") = self.managers.target.clone();
        Some((engine.with_registry_auth(self.auth.clone()), named))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only a fault-injection build reads `STACKROLL_TEST_KILL_AT`.
    #[test]
    fn the_kill_switch_is_read_only_in_fault_injection_builds() {
        std::env::set_var("STACKROLL_TEST_KILL_AT", "after-objects");
        let read = test_kill_point();
        std::env::remove_var("STACKROLL_TEST_KILL_AT");
        if cfg!(feature = "test-kill-points") {
            assert_eq!(read.as_deref(), Some("after-objects"));
        } else {
            assert_eq!(read, None);
        }
    }
}
