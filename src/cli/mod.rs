//! The command line: clap structs that only describe flags, resolved once into the settings
//! the library runs with; one file per command, each rendering its result and picking the
//! exit code. Shared here: the top-level parser, the engine and compose flags, and the
//! helpers every command uses (runtime, connecting, loading, printing).

mod completions;
mod config;
mod context;
mod deploy;
mod ls;
mod managers;
mod plan;
mod plugin;
mod ps;
mod rm;
mod rollback;
mod status;
mod unlock;
mod wait;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use indexmap::IndexMap;

use crate::compose::read::read_to_limit;
use crate::compose::{LoadOptions, MAX_FILE_BYTES};
use crate::convert::parse_duration;
use crate::decrypt::AgeKeys;
use crate::deploy::prepare::{self, LoadedStack, Prepared};
use crate::deploy::ImageOptions;
use crate::engine::docker::DockerEngine;
use crate::engine::endpoint::{self, DockerEnv, EngineFlags, RealFiles};
use crate::engine::Target;
use crate::error::{CliError, ErrorKind};
use crate::plan::fingerprint::Fingerprinter;
use crate::registry::credentials::{default_config_path, DockerConfig, DOCKER_AUTH_CONFIG};
use crate::registry::direct::{RegistryClient, TagDigests, DOCKER_CERTS_DIR};
use crate::registry::{local_credentials, LocalCredentials, RegistryAuth, ResolveImage};
use crate::render::format::OutputFormat;
pub use completions::CompletionsArgs;
pub use config::ConfigArgs;
pub use context::ContextArgs;
pub use deploy::DeployArgs;
pub use ls::LsArgs;
pub use plan::PlanArgs;
pub use plugin::{PluginAction, PluginArgs};
pub use rm::RmArgs;
pub use rollback::RollbackArgs;
pub use unlock::UnlockArgs;
pub use wait::WaitArgs;

/// Deploy Docker Compose files to Docker Swarm, with secrets and configs done right.
#[derive(Debug, Parser)]
#[command(name = "stackroll", version, about, propagate_version = true)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG also works.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Which Docker engine to talk to (the docker CLI's global flags).
    #[command(flatten)]
    pub engine: EngineArgs,
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
    /// Show each secret's and config's versions and each service's rollout state; exit 0 when
    /// converged, 3 when failed, paused or rolled back, 4 while still updating.
    Status(StackArgs),
    /// Wait for a stack's services to converge, whoever deployed them (exit 3 on a rollback).
    Wait(WaitArgs),
    /// Put every service of a stack back on its previous spec and wait.
    Rollback(RollbackArgs),
    /// Remove a stack: services, then networks, then the secrets and configs stackroll created.
    Rm(RmArgs),
    /// Remove a stack's deploy lock left by a deploy that died.
    Unlock(UnlockArgs),
    /// Show which engine stackroll would talk to and what chose it, without connecting.
    Context(ContextArgs),
    /// Install stackroll as the docker CLI plugin `docker stackroll`.
    Plugin(PluginArgs),
    /// Print a shell completion script (bash, zsh, fish, ...).
    Completions(CompletionsArgs),
    /// Print the man page (roff).
    Man,
}

/// Flags of `stackroll ps` and `stackroll status`.
#[derive(Debug, Args)]
pub struct StackArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// The stack name.
    pub stack: String,
}

/// Which engine to talk to and how: the docker CLI's global flags, with its precedence
/// (`--context`, `-H`, `DOCKER_HOST`, `DOCKER_CONTEXT`, `docker context use`, the local socket).
/// They go before or after the subcommand.
#[derive(Debug, Args)]
pub struct EngineArgs {
    /// Docker context to use (overrides DOCKER_HOST, DOCKER_CONTEXT and `docker context use`).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// Engine address: unix:///PATH, tcp://HOST:PORT or ssh://[USER@]HOST[:PORT]; default:
    /// $DOCKER_HOST, else the current docker context, else unix:///var/run/docker.sock.
    /// Repeat for several managers of one swarm: the first that answers as a manager is used,
    /// and a deploy that loses it goes on with the next.
    #[arg(short = 'H', long = "host", global = true, value_name = "ADDRESS")]
    pub hosts: Vec<String>,
    /// Use TLS; implied by --tlsverify ($DOCKER_TLS).
    #[arg(long, global = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub tls: Option<bool>,
    /// Use TLS and verify the engine ($DOCKER_TLS_VERIFY).
    #[arg(long = "tlsverify", global = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub tls_verify: Option<bool>,
    /// Trust certificates signed only by this CA (default $DOCKER_CERT_PATH/ca.pem).
    #[arg(long = "tlscacert", global = true, value_name = "PATH")]
    pub tls_ca_cert: Option<PathBuf>,
    /// TLS client certificate (default $DOCKER_CERT_PATH/cert.pem).
    #[arg(long = "tlscert", global = true, value_name = "PATH")]
    pub tls_cert: Option<PathBuf>,
    /// TLS client key (default $DOCKER_CERT_PATH/key.pem).
    #[arg(long = "tlskey", global = true, value_name = "PATH")]
    pub tls_key: Option<PathBuf>,
    /// The docker CLI's configuration directory, with its contexts (default $DOCKER_CONFIG,
    /// else ~/.docker; the docker CLI's --config).
    #[arg(long = "docker-config", global = true, value_name = "DIR")]
    pub docker_config: Option<PathBuf>,
}

impl EngineArgs {
    /// The flags as the endpoint resolution reads them.
    fn flags(&self) -> EngineFlags {
        EngineFlags {
            context: self.context.clone(),
            hosts: self.hosts.clone(),
            tls: self.tls,
            tls_verify: self.tls_verify,
            tls_ca_cert: self.tls_ca_cert.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            docker_config: self.docker_config.clone(),
        }
    }
}

/// How the user runs stackroll against this engine: `stackroll` and the engine flags given
/// (quoted for a shell when needed), for the commands hints and warnings suggest.
fn engine_command(engine: &EngineFlags) -> String {
    let mut words = vec!["stackroll".to_string()];
    let mut flag = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            words.push(format!("{name} {}", shell_word(&value)));
        }
    };
    let path = |path: &Option<PathBuf>| path.as_ref().map(|p| p.display().to_string());
    flag("--docker-config", path(&engine.docker_config));
    flag("--context", engine.context.clone());
    for host in &engine.hosts {
        flag("-H", Some(host.clone()));
    }
    flag("--tlscacert", path(&engine.tls_ca_cert));
    flag("--tlscert", path(&engine.tls_cert));
    flag("--tlskey", path(&engine.tls_key));
    if engine.tls_verify.is_some() {
        words.push("--tlsverify".into());
    } else if engine.tls == Some(true) {
        words.push("--tls".into());
    }
    words.join(" ")
}

/// `word` as one shell word: as it is when it holds only safe characters, else single-quoted.
fn shell_word(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/:._-@=+,%".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
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
    /// is then an error) and the image options of the plan, with the client that asks
    /// registries directly (the same credentials; registries on a loopback address only when
    /// the engine given by `engine` runs on this host).
    fn resolve(
        &self,
        prepared: &Prepared,
        engine: &EngineFlags,
    ) -> Result<(RegistryAuth, ImageOptions), CliError> {
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
        let env_auths = std::env::var(DOCKER_AUTH_CONFIG).ok();
        let local = match DockerConfig::load(&path) {
            Ok(config) => {
                let config = config.with_env_auths(env_auths.as_deref());
                for warning in config.warnings() {
                    eprintln!("warning: {warning}");
                }
                local_credentials(&config, &images, self.with_registry_auth)?
            }
            Err(error) if self.with_registry_auth => return Err(error.into()),
            Err(_) => LocalCredentials::default(),
        };
        let direct = (self.resolve_image != ResolveImage::Never).then(|| {
            let client = RegistryClient::new(
                local.auth.clone(),
                std::path::Path::new(DOCKER_CERTS_DIR),
                engine_on_this_host(engine),
            );
            std::sync::Arc::new(client) as std::sync::Arc<dyn TagDigests>
        });
        let options = ImageOptions {
            resolve: self.resolve_image,
            credentials: local.facts,
            direct,
        };
        Ok((local.auth, options))
    }
}

/// Whether every engine `engine` names runs on this host (a Unix socket, or TCP to a loopback
/// address), so a registry on a loopback address is the one the engine sees too.
fn engine_on_this_host(engine: &EngineFlags) -> bool {
    let Ok(endpoints) = endpoint::resolve_all(engine, &DockerEnv::from_process(), &RealFiles)
    else {
        return false;
    };
    endpoints.iter().all(|endpoint| match &endpoint.transport {
        endpoint::Transport::Unix { .. } => true,
        endpoint::Transport::Tcp { host, .. } => {
            host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        endpoint::Transport::Ssh(_) => false,
    })
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
    /// An age identity file (as `age-keygen` writes) to decrypt SOPS and age files with;
    /// repeatable, tried before $SOPS_AGE_KEY_FILE and $SOPS_AGE_KEY.
    #[arg(long = "age-identity", value_name = "FILE")]
    pub age_identities: Vec<String>,
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
        let mut process_env = process_environment();
        let age_keys = AgeKeys::resolve(&self.age_identities, &working_dir, &process_env);
        // The identities are key material: no compose file may read or pass them on.
        if let Some(mut key) = process_env.shift_remove("SOPS_AGE_KEY") {
            zeroize::Zeroize::zeroize(&mut key);
        }
        Ok(LoadOptions {
            files: self.files.clone(),
            env_files: self.env_files.clone(),
            age_keys,
            working_dir,
            process_env,
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
    let args = match plugin::invocation(std::env::args_os().collect()) {
        Ok(plugin::Invocation::Metadata) => {
            return guarded(|| print(&plugin::metadata_json()).map(|()| 0))
        }
        Ok(plugin::Invocation::Run(args)) => args,
        Err(error) => return guarded(|| Err(error)),
    };
    let cli = Cli::parse_from(args);
    init_logging(cli.verbose);
    let engine = cli.engine.flags();
    guarded(|| match &cli.command {
        Command::Config(args) => config::run(args),
        Command::Plan(args) => plan::run(args, &engine),
        Command::Deploy(args) => deploy::run(args, &engine),
        Command::Ls(args) => ls::run(args, &engine),
        Command::Ps(args) => ps::run(args, &engine),
        Command::Status(args) => status::run(args, &engine),
        Command::Wait(args) => wait::run(args, &engine),
        Command::Rollback(args) => rollback::run(args, &engine),
        Command::Rm(args) => rm::run(args, &engine),
        Command::Unlock(args) => unlock::run(args, &engine),
        Command::Context(args) => context::run(args, &engine),
        Command::Plugin(args) => plugin::run(args),
        Command::Completions(args) => completions::completions(args),
        Command::Man => completions::man(),
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

/// Sends tracing output to stderr at the level `-v` asks for (or `RUST_LOG`), coloured only on
/// a terminal and never when `NO_COLOR` is set (https://no-color.org).
fn init_logging(verbose: u8) {
    use std::io::IsTerminal as _;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
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
        .with_ansi(std::io::stderr().is_terminal() && !no_color)
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

/// Resolves which engine to talk to, as the docker CLI would, and prints its warnings.
fn resolve_endpoint(engine: &EngineFlags) -> Result<endpoint::Endpoint, CliError> {
    let mut endpoints = resolve_endpoints(&EngineFlags {
        hosts: engine.hosts.iter().take(1).cloned().collect(),
        ..engine.clone()
    })?;
    Ok(endpoints.remove(0))
}

/// Resolves every engine the flags name (several with several `-H`) and prints their
/// warnings.
fn resolve_endpoints(engine: &EngineFlags) -> Result<Vec<endpoint::Endpoint>, CliError> {
    let endpoints = endpoint::resolve_all(engine, &DockerEnv::from_process(), &RealFiles)?;
    let mut stderr = std::io::stderr().lock();
    for warning in endpoints.iter().flat_map(|endpoint| &endpoint.warnings) {
        let _ = writeln!(stderr, "warning: {warning}");
    }
    Ok(endpoints)
}

/// Connects to the first engine named that answers as a swarm manager and says which one it
/// is.
async fn connect(engine: &EngineFlags) -> Result<(DockerEngine, Target), CliError> {
    let (docker, managers) = managers::connect_first(engine).await?;
    Ok((docker, managers.target))
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
    fn commands_in_hints_repeat_the_engine_flags() {
        let host = |host: &str| EngineFlags {
            hosts: vec![host.into()],
            ..EngineFlags::default()
        };
        assert_eq!(
            engine_command(&host("unix:///run/my engine.sock")),
            "stackroll -H 'unix:///run/my engine.sock'"
        );
        let plain = host("tcp://10.0.0.1:2376");
        assert_eq!(engine_command(&plain), "stackroll -H tcp://10.0.0.1:2376");
        assert_eq!(engine_command(&EngineFlags::default()), "stackroll");
        let context = EngineFlags {
            context: Some("prod".into()),
            ..EngineFlags::default()
        };
        assert_eq!(engine_command(&context), "stackroll --context prod");
        let error = CliError::new(ErrorKind::User, "held")
            .hint("if that deploy is dead run `stackroll unlock demo`")
            .for_command(&engine_command(&plain));
        assert_eq!(
            error.hints,
            ["if that deploy is dead run `stackroll -H tcp://10.0.0.1:2376 unlock demo`"]
        );
    }

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
