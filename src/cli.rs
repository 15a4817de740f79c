//! The command line: clap structs that only describe flags, resolved in one place
//! ([`Command::resolve`]) into settings the commands run with.

use std::io::{Read, Write};

use clap::{Args, Parser, Subcommand};
use indexmap::IndexMap;

use crate::compose::{self, LoadOptions, Loaded};
use crate::error::{CliError, ErrorKind};
use crate::render::config::{render_project, ConfigFormat};

/// Deploy Docker Compose files to Docker Swarm, with secrets and configs done right.
#[derive(Debug, Parser)]
#[command(name = "stackroll", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the resolved Compose model: merged, interpolated, defaults filled.
    Config(ConfigArgs),
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
        })
    }
}

fn process_environment() -> IndexMap<String, String> {
    std::env::vars_os()
        .filter_map(|(key, value)| Some((key.into_string().ok()?, value.into_string().ok()?)))
        .collect()
}

/// Loads the project, printing warnings to stderr.
fn load_project(args: &ComposeArgs) -> Result<Loaded, CliError> {
    let options = args.resolve()?;
    let loaded = compose::load(&options).map_err(CliError::invalid_input)?;
    let mut stderr = std::io::stderr().lock();
    for warning in loaded.warnings.warnings() {
        let _ = writeln!(stderr, "{warning}");
    }
    Ok(loaded)
}

fn run_config(args: &ConfigArgs) -> Result<(), CliError> {
    let loaded = load_project(&args.compose)?;
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
    let result = match &cli.command {
        Command::Config(args) => run_config(args),
    };
    match result {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("{error}");
            error.exit_code()
        }
    }
}
