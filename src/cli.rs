//! The command line: clap structs that only describe flags, resolved in one place
//! ([`Command::resolve`]) into settings the commands run with.

use std::io::{Read, Write};

use clap::{Args, Parser, Subcommand};
use indexmap::IndexMap;

use crate::apply::lock::{self, LockError};
use crate::apply::{apply, record_seal, ApplyError, ApplyInput, ApplyOptions};
use crate::compose::validate::{swarm_name_problem, VERSION_SUFFIX_ROOM};
use crate::compose::{self, LoadOptions, Loaded};
use crate::contents::Contents;
use crate::convert::{self, parse_duration, ConvertedProject, Namespace};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::engine::docker::DockerEngine;
use crate::engine::{Engine, EngineError};
use crate::error::{CliError, ErrorKind};
use crate::model::ObjectKind;
use crate::observe::observe;
use crate::plan::fingerprint::Fingerprinter;
use crate::plan::{plan_converted, Observed, Plan, PlanError, PlanInput};
use crate::render::config::{render_project, ConfigFormat};
use crate::render::plan::{render, FailureReport, Outcome, OutputFormat, Report};
use crate::render::progress::stderr_reporter;
use crate::render::stacks::{render_removed, render_stacks, render_status, render_tasks};
use crate::stacks::{list_stacks, remove_stack, stack_status, stack_tasks};

/// Deploy Docker Compose files to Docker Swarm, with secrets and configs done right.
#[derive(Debug, Parser)]
#[command(name = "stackroll", version, about, propagate_version = true)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG also works.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the resolved Compose model: merged, interpolated, defaults filled.
    Config(ConfigArgs),
    /// Show what `deploy` would change, writing nothing.
    Plan(PlanArgs),
    /// Create versioned secrets and configs, roll services onto them, wait, then prune.
    Deploy(DeployArgs),
    /// List stacks: services, and the secrets and configs stackroll manages in each.
    Ls(LsArgs),
    /// List the tasks of a stack.
    Ps(StackArgs),
    /// Show each secret's and config's versions and each service's rollout state.
    Status(StackArgs),
    /// Remove a stack: services, then networks, then the secrets and configs stackroll created.
    Rm(RmArgs),
    /// Remove a stack's deploy lock left by a deploy that died.
    Unlock(UnlockArgs),
}

/// Flags of `stackroll unlock`.
#[derive(Debug, Args)]
pub struct UnlockArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// The stack name.
    pub stack: String,
}

/// Flags of `stackroll ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// Flags of `stackroll ps` and `stackroll status`.
#[derive(Debug, Args)]
pub struct StackArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// The stack name.
    pub stack: String,
}

/// Flags of `stackroll rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    /// How long to wait for services to go away, e.g. 2m.
    #[arg(long, default_value = "2m", value_name = "DURATION")]
    pub timeout: String,
}

/// How to reach the engine.
#[derive(Debug, Args)]
pub struct EngineArgs {
    /// Docker engine address (unix:///path or tcp://host:port); default: $DOCKER_HOST, else
    /// unix:///var/run/docker.sock.
    #[arg(short = 'H', long = "host", value_name = "ADDRESS")]
    pub host: Option<String>,
}

/// Flags of `stackroll plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub compose: ComposeArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Exit 2 when there are changes (0 when there are none).
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Also plan removing the stack's services and networks that the compose files no longer have.
    #[arg(long)]
    pub prune: bool,
    /// The stack name.
    pub stack: String,
}

/// Flags of `stackroll deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub compose: ComposeArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
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
    /// The stack name.
    pub stack: String,
}

/// Flags that choose and interpret the Compose files.
#[derive(Debug, Args)]
pub struct ComposeArgs {
    /// A Compose file; repeat to merge several (later files win). `-` reads standard input.
    /// Default: compose.yaml, compose.yml, docker-compose.yaml or docker-compose.yml.
    #[arg(short = 'c', long = "compose-file", value_name = "FILE")]
    pub files: Vec<String>,
    /// An env file to interpolate with, instead of `.env`; repeatable, later files win.
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<String>,
    /// Let secret and config files be symlinks that lead outside the project directory.
    #[arg(long)]
    pub allow_external_files: bool,
}

/// Flags of `stackroll config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(flatten)]
    pub compose: ComposeArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ConfigFormat::Yaml)]
    pub format: ConfigFormat,
}

impl ComposeArgs {
    /// Resolves the flags and the process state into what the loader needs.
    fn resolve(&self) -> Result<LoadOptions, CliError> {
        let working_dir = std::env::current_dir().map_err(|error| {
            CliError::new(
                ErrorKind::User,
                format!("cannot read the working directory: {error}"),
            )
        })?;
        let stdin = if self.files.iter().any(|file| file == "-") {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|error| {
                    CliError::new(
                        ErrorKind::User,
                        format!("cannot read the compose file from standard input: {error}"),
                    )
                })?;
            Some(text)
        } else {
            None
        };
        Ok(LoadOptions {
            files: self.files.clone(),
            env_files: self.env_files.clone(),
            working_dir,
            process_env: process_environment(),
            stdin,
            allow_external_files: self.allow_external_files,
        })
    }
}

fn process_environment() -> IndexMap<String, String> {
    std::env::vars_os()
        .filter_map(|(key, value)| Some((key.into_string().ok()?, value.into_string().ok()?)))
        .collect()
}

/// Loads the project, printing the loader's warnings to stderr.
fn load_project(args: &ComposeArgs) -> Result<Loaded, CliError> {
    let options = args.resolve()?;
    let loaded = compose::load(&options).map_err(CliError::invalid_input)?;
    print_warnings(&loaded.warnings);
    Ok(loaded)
}

/// Prints the warnings among `diagnostics` to stderr.
fn print_warnings(diagnostics: &Diagnostics) {
    let mut stderr = std::io::stderr().lock();
    for warning in diagnostics.warnings() {
        let _ = writeln!(stderr, "{warning}");
    }
}

fn run_config(args: &ConfigArgs) -> Result<(), CliError> {
    let loaded = load_project(&args.compose)?;
    print_warnings(&convert::warnings(&loaded.project));
    let text = render_project(&loaded.project, args.format);
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(|error| {
            CliError::new(ErrorKind::Internal, format!("cannot write output: {error}"))
        })
}

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match &cli.command {
        Command::Config(args) => run_config(args).map(|()| 0),
        Command::Plan(args) => run_plan(args),
        Command::Deploy(args) => run_deploy(args),
        Command::Ls(args) => run_ls(args),
        Command::Ps(args) => run_ps(args),
        Command::Status(args) => run_status(args),
        Command::Rm(args) => run_rm(args),
        Command::Unlock(args) => run_unlock(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("{error}");
            error.exit_code()
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "stackroll=info",
        2 => "stackroll=debug",
        _ => "stackroll=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| {
            CliError::new(
                ErrorKind::Internal,
                format!("cannot start the async runtime: {error}"),
            )
        })
}

/// Settings shared by plan and deploy, resolved from flags, environment and files.
struct Prepared {
    namespace: Namespace,
    loaded: Loaded,
    converted: ConvertedProject,
    contents: Contents,
    fingerprinter: Fingerprinter,
}

fn prepare(compose_args: &ComposeArgs, stack: &str) -> Result<Prepared, CliError> {
    if let Some(problem) = swarm_name_problem(stack, 0) {
        return Err(CliError::new(
            ErrorKind::User,
            format!("invalid stack name {stack:?}: {problem}"),
        )
        .hint("stack names use letters, digits, `-`, `_` and `.`"));
    }
    let loaded = load_project(compose_args)?;
    let namespace = Namespace(stack.to_string());
    let converted = ConvertedProject::new(&namespace, &loaded.project);
    print_warnings(&converted.warnings);
    let mut problems = stack_name_problems(&loaded.project, &namespace);
    problems.extend(converted.problems.clone());
    if problems.has_errors() {
        return Err(CliError::invalid_input(problems));
    }
    let working_dir = std::env::current_dir().unwrap_or_default();
    let contents =
        Contents::read(&loaded.project, &working_dir).map_err(CliError::invalid_input)?;
    let fingerprinter = Fingerprinter::from_key(std::env::var("STACKROLL_FINGERPRINT_KEY").ok());
    Ok(Prepared {
        namespace,
        loaded,
        converted,
        contents,
        fingerprinter,
    })
}

/// Names the stack would create that Swarm would refuse.
fn stack_name_problems(project: &crate::model::Project, namespace: &Namespace) -> Diagnostics {
    let mut problems = Diagnostics::default();
    for kind in [ObjectKind::Secret, ObjectKind::Config] {
        for definition in project.definitions(kind).values() {
            if definition.is_external() || definition.name.is_some() {
                continue;
            }
            let base = namespace.scope(&definition.key);
            if let Some(problem) = swarm_name_problem(&base, VERSION_SUFFIX_ROOM) {
                problems.push(
                    Diagnostic::error(
                        Some(definition.location.clone()),
                        format!("invalid swarm name {base:?}: {problem}"),
                    )
                    .field(format!("{}.{}", kind.plural(), definition.key))
                    .hint("use a shorter key or stack name, or set `name:`"),
                );
            }
        }
    }
    for service in project.services.values() {
        let name = namespace.scope(&service.name);
        if let Some(problem) = swarm_name_problem(&name, 1) {
            problems.push(
                Diagnostic::error(
                    Some(service.location.clone()),
                    format!("invalid service name {name:?}: {problem}"),
                )
                .field(format!("services.{}", service.name))
                .hint(
                    "service names are at most 63 characters of letters, digits, `-`, `_` and `.`",
                ),
            );
        }
    }
    problems
}

async fn connect(args: &EngineArgs) -> Result<DockerEngine, CliError> {
    let engine = DockerEngine::connect(args.host.as_deref())
        .await
        .map_err(engine_error)?;
    let info = engine.info().await.map_err(engine_error)?;
    if info.swarm_state != "active" {
        return Err(CliError::new(
            ErrorKind::Engine,
            format!(
                "this Docker engine is not part of a swarm (state: {})",
                info.swarm_state
            ),
        )
        .hint("run `docker swarm init`, or point -H/DOCKER_HOST at a swarm manager"));
    }
    if !info.is_manager {
        return Err(
            CliError::new(ErrorKind::Engine, "this node is not a swarm manager")
                .hint("deploy from a manager node, or point -H/DOCKER_HOST at one"),
        );
    }
    Ok(engine)
}

fn engine_error(error: EngineError) -> CliError {
    let hint = match &error {
        EngineError::Unreachable { .. } => {
            Some("start Docker, or set -H/DOCKER_HOST to the engine's address")
        }
        EngineError::TooOld { .. } => Some("upgrade Docker to 20.10 or newer"),
        _ => None,
    };
    let error = CliError::new(ErrorKind::Engine, error.to_string());
    match hint {
        Some(hint) => error.hint(hint),
        None => error,
    }
}

async fn make_plan(
    engine: &DockerEngine,
    prepared: &Prepared,
    keep: usize,
    prune: bool,
) -> Result<Plan, CliError> {
    let observed = observe(engine, &prepared.namespace)
        .await
        .map_err(engine_error)?;
    plan_against(&observed, prepared, keep, prune)
}

/// Plans the prepared project against an observed state.
fn plan_against(
    observed: &Observed,
    prepared: &Prepared,
    keep: usize,
    prune: bool,
) -> Result<Plan, CliError> {
    let input = PlanInput {
        namespace: &prepared.namespace,
        project: &prepared.loaded.project,
        contents: &prepared.contents,
        fingerprinter: &prepared.fingerprinter,
        keep,
        prune,
    };
    plan_converted(&input, &prepared.converted, observed).map_err(|error| match error {
        PlanError::MissingExternal(missing) => CliError::new(
            ErrorKind::User,
            format!("external objects do not exist: {}; nothing was done", missing.join(", ")),
        )
        .hint("create them first (docker secret create / docker config create / docker network create), or drop `external:`"),
        PlanError::Invalid(problems) => CliError::invalid_input(problems),
    })
}

/// Whether two reads of the swarm saw the same state, the deploy lock set aside.
fn same_state(a: &Observed, b: &Observed, lock: &str) -> bool {
    let configs = |observed: &Observed| -> Vec<_> {
        observed
            .configs
            .iter()
            .filter(|config| config.name != lock)
            .cloned()
            .collect()
    };
    a.secrets == b.secrets
        && a.services == b.services
        && a.networks == b.networks
        && configs(a) == configs(b)
}

fn print(text: &str) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|error| {
            CliError::new(ErrorKind::Internal, format!("cannot write output: {error}"))
        })
}

fn run_plan(args: &PlanArgs) -> Result<i32, CliError> {
    let prepared = prepare(&args.compose, &args.stack)?;
    let plan = runtime()?.block_on(async {
        let engine = connect(&args.engine).await?;
        make_plan(&engine, &prepared, 1, args.prune).await
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

/// Reads a `--timeout` value.
fn timeout_flag(text: &str) -> Result<std::time::Duration, CliError> {
    parse_duration(text)
        .ok()
        .filter(|nanos| *nanos > 0)
        .map(|nanos| std::time::Duration::from_nanos(nanos as u64))
        .ok_or_else(|| {
            CliError::new(ErrorKind::User, format!("invalid --timeout {text:?}"))
                .hint("write e.g. 90s or 10m")
        })
}

fn run_ls(args: &LsArgs) -> Result<i32, CliError> {
    let stacks = runtime()?.block_on(async {
        let engine = connect(&args.engine).await?;
        list_stacks(&engine).await.map_err(engine_error)
    })?;
    print(&render_stacks(&stacks, args.output))?;
    Ok(0)
}

fn run_ps(args: &StackArgs) -> Result<i32, CliError> {
    let namespace = Namespace(args.stack.clone());
    let tasks = runtime()?.block_on(async {
        let engine = connect(&args.engine).await?;
        stack_tasks(&engine, &namespace).await.map_err(engine_error)
    })?;
    print(&render_tasks(&tasks, args.output))?;
    Ok(0)
}

fn run_status(args: &StackArgs) -> Result<i32, CliError> {
    let namespace = Namespace(args.stack.clone());
    let status = runtime()?.block_on(async {
        let engine = connect(&args.engine).await?;
        stack_status(&engine, &namespace)
            .await
            .map_err(engine_error)
    })?;
    print(&render_status(&status, args.output))?;
    Ok(0)
}

fn run_rm(args: &RmArgs) -> Result<i32, CliError> {
    let timeout = timeout_flag(&args.timeout)?;
    let namespace = Namespace(args.stack.stack.clone());
    let removed = runtime()?.block_on(async {
        let engine = connect(&args.stack.engine).await?;
        remove_stack(&engine, &namespace, timeout, stderr_reporter().as_ref())
            .await
            .map_err(engine_error)
    })?;
    print(&render_removed(&namespace.0, &removed, args.stack.output))?;
    Ok(0)
}

fn run_unlock(args: &UnlockArgs) -> Result<i32, CliError> {
    let namespace = Namespace(args.stack.clone());
    let holder = runtime()?.block_on(async {
        let engine = connect(&args.engine).await?;
        lock::force_unlock(&engine, &namespace)
            .await
            .map_err(engine_error)
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

fn run_deploy(args: &DeployArgs) -> Result<i32, CliError> {
    let timeout = timeout_flag(&args.timeout)?;
    let lock_timeout = timeout_flag(&args.lock_timeout)?;
    let prepared = prepare(&args.compose, &args.stack)?;
    runtime()?.block_on(async {
        let engine = connect(&args.engine).await?;
        let observed = observe(&engine, &prepared.namespace)
            .await
            .map_err(engine_error)?;
        let plan = plan_against(&observed, &prepared, args.keep, args.prune)?;
        if args.dry_run || (!plan.needs_apply() && plan.seal.is_none()) {
            // Nothing to write (or not allowed to): no lock either, so a deploy with nothing
            // to do makes no write call at all.
            return finish_deploy(&engine, &prepared, args, timeout, &plan).await;
        }
        // The lock outlives this process by the longest a deploy can take, plus a margin.
        let ttl = timeout + std::time::Duration::from_secs(300);
        let lock = lock::acquire(&engine, &prepared.namespace, ttl, lock_timeout, std::time::Duration::from_secs(1))
            .await
            .map_err(|error| match error {
                LockError::Held { holder, since } => CliError::new(
                    ErrorKind::User,
                    format!("another deploy of stack {} holds the lock: {holder}, since {since} (seconds since 1970); nothing was done", prepared.namespace.0),
                )
                .hint(format!("wait for it, raise --lock-timeout, or if that deploy is dead run `stackroll unlock {}`", prepared.namespace.0)),
                LockError::Engine(error) => engine_error(error),
            })?;
        // Under the lock, read again: another deploy may have written meanwhile. The first plan
        // stands only if the swarm is as it was.
        let result = async {
            let again = observe(&engine, &prepared.namespace)
                .await
                .map_err(engine_error)?;
            let plan = if same_state(&observed, &again, &lock::lock_name(&prepared.namespace)) {
                plan
            } else {
                tracing::debug!("the swarm changed before the lock was taken; planning again");
                plan_against(&again, &prepared, args.keep, args.prune)?
            };
            finish_deploy(&engine, &prepared, args, timeout, &plan).await
        }
        .await;
        if let Err(error) = lock.release(&engine).await {
            eprintln!("warning: could not release the deploy lock: {error}; run `stackroll unlock {}`", prepared.namespace.0);
        }
        result
    })
}

/// Applies a plan (holding the stack's lock when it writes) and reports the outcome.
async fn finish_deploy(
    engine: &DockerEngine,
    prepared: &Prepared,
    args: &DeployArgs,
    timeout: std::time::Duration,
    plan: &Plan,
) -> Result<i32, CliError> {
    let input = ApplyInput {
        plan,
        namespace: &prepared.namespace,
        contents: &prepared.contents,
        fingerprinter: &prepared.fingerprinter,
        project: &prepared.loaded.project,
        keep: args.keep,
    };
    if !args.dry_run && !plan.needs_apply() {
        // Nothing to change, but no current content seal yet (a stack deployed before seals
        // existed, or adopted): record one so the next check is cheap.
        record_seal(engine, &input, &std::collections::HashMap::new()).await;
    }
    if args.dry_run || !plan.needs_apply() {
        let outcome = if args.dry_run {
            Outcome::Planned
        } else {
            Outcome::NoChanges
        };
        let report = Report {
            plan,
            outcome,
            deleted: Vec::new(),
            failures: Vec::new(),
        };
        print(&render(&report, args.output))?;
        return Ok(0);
    }
    if args.output == OutputFormat::Text {
        let report = Report {
            plan,
            outcome: Outcome::Planned,
            deleted: Vec::new(),
            failures: Vec::new(),
        };
        print(&render(&report, OutputFormat::Text))?;
    }
    let options = ApplyOptions {
        detach: args.detach,
        timeout,
        poll: std::time::Duration::from_millis(500),
        kill_at: std::env::var("STACKROLL_TEST_KILL_AT").ok(),
    };
    let result = apply(engine, &input, stderr_reporter().as_ref(), &options).await;
    let (outcome, deleted, failures, error) = match result {
        Ok(applied) if plan.is_empty() => (Outcome::NoChanges, applied.deleted, Vec::new(), None),
        Ok(applied) => (Outcome::Applied, applied.deleted, Vec::new(), None),
        Err(ApplyError::Rollout(failures)) => {
            let reports: Vec<FailureReport> = failures
                .iter()
                .map(|f| FailureReport {
                    service: f.service.clone(),
                    reason: f.reason.clone(),
                })
                .collect();
            let names: Vec<String> = failures
                .iter()
                .map(|f| format!("{} ({})", f.service, f.reason))
                .collect();
            let error = CliError::new(
                    ErrorKind::Rollout,
                    format!("rollout failed for {}; nothing was pruned", names.join("; ")),
                )
                .hint("the previous secret and config versions are kept; fix the cause and deploy again (content equal to a kept version reuses it)");
            (Outcome::RolloutFailed, Vec::new(), reports, Some(error))
        }
        Err(ApplyError::Engine {
            during,
            error,
            done,
        }) => {
            let done = if done.is_empty() {
                "nothing".to_string()
            } else {
                done.join(", ")
            };
            return Err(CliError::new(ErrorKind::Engine, format!("{during} failed: {error}"))
                    .hint(format!("already written: {done}; run the same deploy again to finish (it picks up where this one stopped)")));
        }
    };
    match args.output {
        OutputFormat::Json => {
            let report = Report {
                plan,
                outcome,
                deleted,
                failures,
            };
            print(&render(&report, OutputFormat::Json))?;
        }
        OutputFormat::Text => match outcome {
            Outcome::Applied if args.detach => {
                print("Applied (not waiting for services: --detach).\n")?
            }
            Outcome::Applied => print("Applied.\n")?,
            Outcome::NoChanges => print("Every service converged.\n")?,
            Outcome::Planned | Outcome::RolloutFailed => {}
        },
    }
    match error {
        Some(error) => Err(error),
        None => Ok(0),
    }
}
