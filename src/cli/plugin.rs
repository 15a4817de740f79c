//! stackroll as a docker CLI plugin (`docker stackroll ...`) and `stackroll plugin install`.
//!
//! The docker CLI finds `docker-stackroll` in its plugin directories, asks it
//! `docker-stackroll docker-cli-plugin-metadata` for a JSON description, and runs
//! `docker stackroll ARGS` as `docker-stackroll [DOCKER GLOBAL FLAGS] stackroll ARGS` with
//! `DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND` set. [`invocation`] turns that into stackroll's own
//! command line: the docker CLI's `--context`, `-H`, `--tls*` and `--config` become stackroll's,
//! `-D` becomes `-v`, `--log-level` is dropped.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde::Serialize;

use super::print;
use crate::engine::endpoint::DockerEnv;
use crate::error::{CliError, ErrorKind};

/// The docker CLI's name for the plugin's command, and the plugin executable's name.
const PLUGIN_COMMAND: &str = "stackroll";
const PLUGIN_EXECUTABLE: &str = "docker-stackroll";

/// The argument the docker CLI asks a plugin's metadata with.
const METADATA_ARGUMENT: &str = "docker-cli-plugin-metadata";

/// Set by the docker CLI when it runs a plugin (to the docker CLI's own path).
const PLUGIN_ENV: &str = "DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND";

/// What the docker CLI reads from `docker-cli-plugin-metadata`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Metadata {
    schema_version: &'static str,
    vendor: &'static str,
    version: &'static str,
    short_description: &'static str,
    #[serde(rename = "URL")]
    url: &'static str,
}

/// The metadata answer.
pub(super) fn metadata_json() -> String {
    let metadata = Metadata {
        schema_version: "0.1.0",
        vendor: "stackroll",
        version: env!("CARGO_PKG_VERSION"),
        short_description: "Deploy Compose files to Swarm with versioned, rotated secrets",
        url: "https://stackroll.dev",
    };
    let mut text = serde_json::to_string_pretty(&metadata).expect("metadata serializes");
    text.push('\n');
    text
}

/// How the process was invoked.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Invocation {
    /// The docker CLI asks for the plugin's metadata.
    Metadata,
    /// Run stackroll with these arguments (the program name first).
    Run(Vec<OsString>),
}

/// Reads the process's arguments: stackroll's own, or the docker CLI's plugin call, translated.
pub(super) fn invocation(args: Vec<OsString>) -> Result<Invocation, CliError> {
    if args.get(1).is_some_and(|arg| arg == METADATA_ARGUMENT) {
        return Ok(Invocation::Metadata);
    }
    let called_as_plugin = args
        .first()
        .and_then(|program| Path::new(program).file_name())
        .is_some_and(|name| name == PLUGIN_EXECUTABLE);
    if !called_as_plugin && std::env::var_os(PLUGIN_ENV).is_none() {
        return Ok(Invocation::Run(args));
    }
    translate(&args[1.min(args.len())..])
        .map(Invocation::Run)
        .map_err(|message| {
            CliError::new(ErrorKind::User, message)
                .hint("run it as `docker [GLOBAL FLAGS] stackroll COMMAND ...`")
        })
}

/// The docker CLI's global flags before `stackroll`, as stackroll's, then the rest.
fn translate(args: &[OsString]) -> Result<Vec<OsString>, String> {
    let mut translated: Vec<OsString> = vec![PLUGIN_COMMAND.into()];
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let text = arg.to_str().unwrap_or_default();
        if text == PLUGIN_COMMAND {
            translated.extend(rest.cloned());
            return Ok(translated);
        }
        let (name, attached) = match text.split_once('=') {
            Some((name, value)) if name.starts_with('-') => (name, Some(OsString::from(value))),
            _ => (text, None),
        };
        let (name, attached) = match (name, attached) {
            (short, None)
                if short.len() > 2 && short.starts_with('-') && !short.starts_with("--") =>
            {
                (&short[..2], Some(OsString::from(&short[2..])))
            }
            other => other,
        };
        let mut value = |flag: &str| -> Result<OsString, String> {
            attached
                .clone()
                .or_else(|| rest.next().cloned())
                .ok_or_else(|| format!("docker flag {flag} needs a value"))
        };
        match name {
            "-c" | "--context" => translated.extend(["--context".into(), value(name)?]),
            "-H" | "--host" => translated.extend(["--host".into(), value(name)?]),
            "--config" => translated.extend(["--docker-config".into(), value(name)?]),
            "--tlscacert" | "--tlscert" | "--tlskey" => {
                translated.extend([OsString::from(name), value(name)?])
            }
            "-l" | "--log-level" => {
                value(name)?;
            }
            "-D" | "--debug" => translated.push("-v".into()),
            "--tls" | "--tlsverify" => translated.push(with_value(name, attached.as_deref())),
            _ => {
                return Err(format!(
                    "unexpected argument {arg:?} before `{PLUGIN_COMMAND}` in the docker CLI's \
                     plugin call"
                ))
            }
        }
    }
    Err(format!(
        "the docker CLI's plugin call lacks `{PLUGIN_COMMAND}`"
    ))
}

/// `--flag` or `--flag=value`.
fn with_value(name: &str, value: Option<&OsStr>) -> OsString {
    let mut flag = OsString::from(name);
    if let Some(value) = value {
        flag.push("=");
        flag.push(value);
    }
    flag
}

/// Flags of `stackroll plugin`.
#[derive(Debug, Args)]
pub struct PluginArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: PluginAction,
}

/// The `stackroll plugin` subcommands.
#[derive(Debug, Subcommand)]
pub enum PluginAction {
    /// Install stackroll as the docker CLI plugin `docker stackroll`: a symbolic link to this
    /// binary named docker-stackroll in the docker CLI's plugin directory.
    Install {
        /// The plugin directory (default: $DOCKER_CONFIG/cli-plugins, else ~/.docker/cli-plugins).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// Runs `stackroll plugin ...`.
pub(super) fn run(args: &PluginArgs) -> Result<i32, CliError> {
    match &args.action {
        PluginAction::Install { dir } => {
            let dir = match dir {
                Some(dir) => dir.clone(),
                None => DockerEnv::from_process()
                    .config_dir()
                    .ok_or_else(|| {
                        CliError::new(
                            ErrorKind::User,
                            "cannot find the docker configuration directory",
                        )
                        .hint("set DOCKER_CONFIG or HOME, or give --dir")
                    })?
                    .join("cli-plugins"),
            };
            let link = install(&dir)?;
            print(&format!(
                "Installed {} -> {}; run `docker stackroll --help`.\n",
                link.display(),
                std::env::current_exe()
                    .map(|exe| exe.display().to_string())
                    .unwrap_or_default()
            ))?;
            Ok(0)
        }
    }
}

/// Links `dir/docker-stackroll` to this binary, replacing an older link.
fn install(dir: &Path) -> Result<PathBuf, CliError> {
    let failed = |what: &str, error: std::io::Error| {
        CliError::new(ErrorKind::User, format!("cannot {what}: {error}"))
    };
    let exe = std::env::current_exe().map_err(|error| failed("find this binary", error))?;
    std::fs::create_dir_all(dir)
        .map_err(|error| failed(&format!("create {}", dir.display()), error))?;
    let link = dir.join(PLUGIN_EXECUTABLE);
    match std::fs::symlink_metadata(&link) {
        Ok(meta) if meta.file_type().is_symlink() => std::fs::remove_file(&link)
            .map_err(|error| failed(&format!("replace {}", link.display()), error))?,
        Ok(_) => {
            return Err(CliError::new(
                ErrorKind::User,
                format!("{} exists and is not a link stackroll made", link.display()),
            )
            .hint("remove it, or give another --dir"))
        }
        Err(_) => {}
    }
    std::os::unix::fs::symlink(&exe, &link)
        .map_err(|error| failed(&format!("create {}", link.display()), error))?;
    Ok(link)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    /// Arguments, and the translation or a part of the error.
    type Case = (
        &'static [&'static str],
        Result<&'static [&'static str], &'static str>,
    );

    #[test]
    fn docker_global_flags_become_stackroll_s() {
        let table: &[Case] = &[
            (
                &["stackroll", "plan", "demo"],
                Ok(&["stackroll", "plan", "demo"]),
            ),
            (
                &[
                    "--context",
                    "prod",
                    "stackroll",
                    "plan",
                    "-c",
                    "x.yaml",
                    "demo",
                ],
                Ok(&[
                    "stackroll",
                    "--context",
                    "prod",
                    "plan",
                    "-c",
                    "x.yaml",
                    "demo",
                ]),
            ),
            (
                &["-c", "prod", "-D", "stackroll", "ls"],
                Ok(&["stackroll", "--context", "prod", "-v", "ls"]),
            ),
            (
                &["-cprod", "stackroll", "ls"],
                Ok(&["stackroll", "--context", "prod", "ls"]),
            ),
            (
                &["--context=prod", "stackroll", "ls"],
                Ok(&["stackroll", "--context", "prod", "ls"]),
            ),
            (
                &[
                    "-H",
                    "ssh://m",
                    "--tlsverify",
                    "--tls=false",
                    "stackroll",
                    "ls",
                ],
                Ok(&[
                    "stackroll",
                    "--host",
                    "ssh://m",
                    "--tlsverify",
                    "--tls=false",
                    "ls",
                ]),
            ),
            (
                &[
                    "--config",
                    "/cfg",
                    "-l",
                    "debug",
                    "--tlscacert=/ca.pem",
                    "stackroll",
                    "ls",
                ],
                Ok(&[
                    "stackroll",
                    "--docker-config",
                    "/cfg",
                    "--tlscacert",
                    "/ca.pem",
                    "ls",
                ]),
            ),
            (&["--context"], Err("needs a value")),
            (&["--bogus", "stackroll", "ls"], Err("unexpected argument")),
            (&["plan", "demo"], Err("unexpected argument")),
            (&[], Err("lacks")),
        ];
        for (args, expected) in table {
            let got = translate(&os(args));
            match (got, expected) {
                (Ok(got), Ok(expected)) => assert_eq!(got, os(expected), "{args:?}"),
                (Err(error), Err(part)) => assert!(error.contains(part), "{args:?}: {error}"),
                (got, expected) => panic!("{args:?}: {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn the_plugin_executable_translates_and_answers_metadata() {
        assert_eq!(
            invocation(os(&["/p/docker-stackroll", "docker-cli-plugin-metadata"])).unwrap(),
            Invocation::Metadata
        );
        assert_eq!(
            invocation(os(&[
                "/p/docker-stackroll",
                "-c",
                "prod",
                "stackroll",
                "ls"
            ]))
            .unwrap(),
            Invocation::Run(os(&["stackroll", "--context", "prod", "ls"]))
        );
        let metadata: serde_json::Value = serde_json::from_str(&metadata_json()).unwrap();
        assert_eq!(metadata["SchemaVersion"], "0.1.0");
        assert_eq!(metadata["Version"], env!("CARGO_PKG_VERSION"));
        assert!(metadata["Vendor"].as_str().is_some_and(|v| !v.is_empty()));
        assert!(metadata["ShortDescription"].is_string());
    }
}
