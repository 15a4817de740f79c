//! Running the stackroll binary the way every test does, and finding the fixtures.

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

/// Variables of the environment the tests run in that would change what stackroll does.
const INHERITED_SETTINGS: &[&str] = &[
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_TLS",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CERT_PATH",
    "STACKROLL_FINGERPRINT_KEY",
    "STACKROLL_TEST_KILL_AT",
];

/// The stackroll binary, run in `dir`, without the settings of the environment tests run in:
/// no engine variables, and a docker configuration directory that does not exist, so the
/// context `docker context use` chose on this machine is not used either (tests that use
/// contexts set `DOCKER_CONFIG` to their own).
pub(crate) fn stackroll_command(dir: &Path) -> StdCommand {
    let mut command = StdCommand::new(env!("CARGO_BIN_EXE_stackroll"));
    command.current_dir(dir);
    for variable in INHERITED_SETTINGS {
        command.env_remove(variable);
    }
    command.env("DOCKER_CONFIG", no_docker_config());
    command
}

/// A docker configuration directory that does not exist.
pub(crate) fn no_docker_config() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-docker-config")
}

/// [`stackroll_command`] as an `assert_cmd` command (assertions on the output, timeouts).
pub(crate) fn stackroll(dir: &Path) -> assert_cmd::Command {
    assert_cmd::Command::from_std(stackroll_command(dir))
}

/// `fixtures/<name>` in the repository.
pub(crate) fn fixtures(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}
