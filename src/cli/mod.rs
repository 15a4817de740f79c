//! The command line: clap structs that only describe flags, resolved once into the settings
//! the library runs with; one file per command, each rendering its result and picking the
//! exit code. Shared here: the top-level parser, the engine and compose flags, and the
//! helpers every command uses (runtime, connecting, loading, printing).

mod config;
mod deploy;
mod ls;
mod plan;
mod ps;
mod rm;
mod status;
mod unlock;

use std::io::Write;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use indexmap::IndexMap;

use crate::compose::read::read_to_limit;
use crate::compose::{LoadOptions, MAX_FILE_BYTES};
use crate::convert::parse_duration;
use crate::deploy::prepare::{self, LoadedStack, Prepared};
use crate::deploy::ImageOptions;
use crate::engine::docker::DockerEngine;
use crate::engine::Engine;
use crate::error::{CliError, ErrorKind};
use crate::plan::fingerprint::Fingerprinter;
use crate::registry::credentials::{default_config_path, DockerConfig};
use crate::registry::{local_credentials, LocalCredentials, RegistryAuth, ResolveImage};
use crate::render::plan::OutputFormat;
pub use config::ConfigArgs;
pub use deploy::DeployArgs;
pub use ls::LsArgs;
pub use plan::PlanArgs;
pub use rm::RmArgs;
pub use unlock::UnlockArgs;

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

/// Flags of `stackroll ps` and `stackroll status`.
#[derive(Debug, Args)]
pub struct StackArgs {
    /// Which Docker engine to talk to.
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// The stack name.
    pub stack: String,
}

/// How to reach the engine.
#[derive(Debug, Args)]
pub struct EngineArgs {
    /// Docker engine address (unix:///path or tcp://host:port); default: $DOCKER_HOST, else
    /// unix:///var/run/docker.sock.
    #[arg(short = 'H', long = "host", value_name = "ADDRESS")]
    pub host: Option<String>,
}

/// How images and their registries are treated (plan and deploy).
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Send registry credentials from the docker CLI's config ($DOCKER_CONFIG/config.json,
    /// `docker login`, credential helpers) to the swarm, so nodes can pull private images.
    #[arg(long)]
    pub with_registry_auth: bool,
    /// Look image tags up in their registry and pin each service to the digest found:
    /// `always`, `changed` (new services and changed images only) or `never`.
    #[arg(long, value_enum, default_value_t = ResolveImage::Always, value_name = "WHEN")]
    pub resolve_image: ResolveImage,
}

impl RegistryArgs {
    /// Reads the docker configuration for the registries of the prepared project's images:
    /// the credentials to send (with `--with-registry-auth`; a configuration that cannot be read
    /// is then an error) and the image options of the plan.
    fn resolve(&self, prepared: &Prepared) -> Result<(RegistryAuth, ImageOptions), CliError> {
        let path = default_config_path(
            std::env::var("DOCKER_CONFIG").ok().as_deref(),
            std::env::var("HOME").ok().as_deref(),
        );
        let images: Vec<&str> = prepared
            .converted
            .services
            .values()
            .map(|service| service.image())
            .collect();
        let local = match DockerConfig::load(&path) {
            Ok(config) => local_credentials(&config, &images, self.with_registry_auth)?,
            Err(error) if self.with_registry_auth => return Err(error.into()),
            Err(_) => LocalCredentials::default(),
        };
        let options = ImageOptions {
            resolve: self.resolve_image,
            credentials: local.facts,
        };
        Ok((local.auth, options))
    }
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
    /// Activate a profile (repeatable, or comma-separated); default: $COMPOSE_PROFILES.
    #[arg(long = "profile", value_name = "NAME")]
    pub profiles: Vec<String>,
}

impl ComposeArgs {
    /// Resolves the flags and the process state into what the loader needs; `stack` is the
    /// stack argument, when the command has one.
    fn resolve(&self, stack: Option<&str>) -> Result<LoadOptions, CliError> {
        let working_dir = std::env::current_dir().map_err(|error| {
            CliError::new(
                ErrorKind::User,
                format!("cannot read the working directory: {error}"),
            )
        })?;
        let stdin = if self.files.iter().any(|file| file == "-") {
            Some(read_stdin()?)
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
            profiles: self.profiles.clone(),
            project_name: stack.map(str::to_string),
        })
    }
}

/// The process environment, as far as it is valid UTF-8.
/// The compose file on standard input (`-c -`), at most as large as any compose file.
fn read_stdin() -> Result<String, CliError> {
    let refused = |error: String| {
        CliError::new(
            ErrorKind::User,
            format!("cannot read the compose file from standard input: {error}"),
        )
    };
    let bytes = read_to_limit(std::io::stdin().lock(), MAX_FILE_BYTES)
        .map_err(|error| refused(error.to_string()))?;
    String::from_utf8(bytes).map_err(|_| refused("it is not UTF-8 text".into()))
}

fn process_environment() -> IndexMap<String, String> {
    std::env::vars_os()
        .filter_map(|(key, value)| Some((key.into_string().ok()?, value.into_string().ok()?)))
        .collect()
}

/// Prints a loaded project's warnings to stderr.
fn print_warnings(stack: &LoadedStack) {
    let mut stderr = std::io::stderr().lock();
    for warning in stack.loaded.warnings.warnings() {
        let _ = writeln!(stderr, "{warning}");
    }
}

/// Loads the project, finds its stack name (the argument, else `COMPOSE_PROJECT_NAME`, else
/// `name:`) and prepares it for plan and deploy.
fn prepare(compose_args: &ComposeArgs, stack: Option<&str>) -> Result<Prepared, CliError> {
    if let Some(stack) = stack {
        // A bad argument is reported before the files are read.
        prepare::namespace(stack)?;
    }
    let options = compose_args.resolve(stack)?;
    let (namespace, stack) = prepare::load_stack(&options)?;
    print_warnings(&stack);
    let fingerprinter = Fingerprinter::from_key(std::env::var("STACKROLL_FINGERPRINT_KEY").ok())
        .map_err(|short| {
            CliError::new(ErrorKind::User, short.to_string()).hint(
                "set a random key of 32 bytes or more (e.g. `head -c 32 /dev/urandom | base64`), or unset it for Argon2id fingerprints",
            )
        })?;
    Ok(prepare::prepare(
        namespace,
        stack,
        &options.working_dir,
        fingerprinter,
    )?)
}

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    guarded(|| match &cli.command {
        Command::Config(args) => config::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Deploy(args) => deploy::run(args),
        Command::Ls(args) => ls::run(args),
        Command::Ps(args) => ps::run(args),
        Command::Status(args) => status::run(args),
        Command::Rm(args) => rm::run(args),
        Command::Unlock(args) => unlock::run(args),
    })
}

/// Runs a command and turns its outcome into the exit code; a panic is a bug: a short message
/// naming where it happened (never the panic's text, which could quote input) and exit 70.
fn guarded(command: impl FnOnce() -> Result<i32, CliError> + std::panic::UnwindSafe) -> i32 {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|at| format!(" at {}:{}", at.file(), at.line()))
            .unwrap_or_default();
        eprintln!("stackroll: internal error (a bug){location}; please report it");
    }));
    let outcome = std::panic::catch_unwind(command);
    let _ = std::panic::take_hook();
    match outcome {
        Ok(Ok(code)) => code,
        Ok(Err(error)) => {
            eprintln!("{error}");
            error.exit_code()
        }
        Err(_) => CliError::new(ErrorKind::Internal, String::new()).exit_code(),
    }
}

/// Sends tracing output to stderr at the level `-v` asks for (or `RUST_LOG`).
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

/// The single-threaded async runtime a command runs on.
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

/// The first SIGINT or SIGTERM from now on (see [`crate::signal`]); inside the runtime.
fn signalled() -> Result<impl std::future::Future<Output = crate::signal::Signal>, CliError> {
    crate::signal::first_signal().map_err(|error| {
        CliError::new(
            ErrorKind::Internal,
            format!("cannot listen for signals: {error}"),
        )
    })
}

/// Connects to the engine and checks that it is a swarm manager.
async fn connect(args: &EngineArgs) -> Result<DockerEngine, CliError> {
    let engine = DockerEngine::connect(args.host.as_deref()).await?;
    let info = engine.info().await?;
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

/// Writes `text` to stdout. A reader that went away (`| head`) is not an error: what is
/// left unread is dropped, and the exit code still says how the command went.
fn print(text: &str) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::new(
            ErrorKind::Internal,
            format!("cannot write output: {error}"),
        )),
        _ => Ok(()),
    }
}

/// Reads a `--timeout` value.
fn timeout_flag(text: &str) -> Result<Duration, CliError> {
    parse_duration(text)
        .ok()
        .filter(|nanos| *nanos > 0)
        .map(|nanos| Duration::from_nanos(nanos as u64))
        .ok_or_else(|| {
            CliError::new(ErrorKind::User, format!("invalid --timeout {text:?}"))
                .hint("write e.g. 90s or 10m")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_exits_70_and_errors_keep_their_codes() {
        assert_eq!(guarded(|| panic!("a bug")), 70);
        assert_eq!(guarded(|| Ok(3)), 3);
        assert_eq!(
            guarded(|| Err(CliError::new(ErrorKind::User, "bad".to_string()))),
            CliError::new(ErrorKind::User, String::new()).exit_code()
        );
    }
}
